"""Container logs in the CRI format: the runtime writes them, the agent's log endpoint
reads them back the way `kubectl logs` shows them.

One record per line, as containerd writes them for the kubelet:

    2024-05-01T12:00:00.123456Z stdout F hello world
    <RFC3339Nano UTC>           <stream> <tag> <text>

The tag is F for a record that ends a line and P for a part of a line. The writer holds
an unfinished line back until its end arrives (programs often write a line's text and
its newline separately), but no longer than 16 KiB (a longer line is cut into 16 KiB
parts) and no longer than its owner lets it: `flush()` writes what is held as a P
record, for a prompt or a progress bar to show up; the runtime calls it shortly after
output stops, and `close()` does too. Readers join each stream's P records with the F
record that ends them.

Files: `<log_dir>/<attempt>.log`, rotated when the next record would take it past
`max_bytes` to `<attempt>.log.1`, `.2`, ... keeping `max_files` files in all (the oldest
is dropped). The writer closes a file before renaming it, so a renamed file is final;
a follower reads its old file to the end and then moves on to the file that replaced
it, found by inode, so a rotation loses nothing.

Reading (`read_logs`, `follow_logs`) returns the text with a newline after each whole
line, each prefixed by the time of its first record when asked for timestamps, in the
kubelet's output format (nine fraction digits, UTC). `since_time` keeps records at or
after that time; `tail_lines` keeps the last whole lines; `limit_bytes` cuts the output.
`previous` in the API maps to reading `previous_attempt(...)`.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import os
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

STDOUT = "stdout"
STDERR = "stderr"
STREAMS = (STDOUT, STDERR)
MAX_RECORD_BYTES = 16 * 1024  # containerd's maximum record text
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_FILES = 5
READ_CHUNK = 1024 * 1024
MAX_HOPS = 64  # rotations a follower moves through in one read

_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})")


# --- pure: records ----------------------------------------------------------------------

@dataclass(frozen=True)
class LogRecord:
    ts_text: str  # the timestamp as written
    ts: float  # unix time
    stream: str  # STDOUT or STDERR
    partial: bool  # a P record: the line goes on in the stream's next record
    text: bytes  # without the newline


def format_timestamp(ts: float) -> str:
    """RFC3339Nano in UTC as Go formats it (trailing fraction zeros dropped); floats
    carry microseconds, so that is the precision written."""
    micros = round(ts * 1_000_000)
    seconds, fraction = divmod(micros, 1_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    digits = f"{fraction:06d}".rstrip("0")
    return f"{text}.{digits}Z" if digits else f"{text}Z"


def parse_timestamp(text: str) -> tuple[int, int]:
    """RFC3339 with up to nine fraction digits -> (unix seconds, nanoseconds), exactly."""
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        raise ValueError(f"bad timestamp {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    zone = match.group(8)
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return seconds, int((match.group(7) or "0").ljust(9, "0"))


def output_timestamp(ts_text: str) -> str:
    """The kubelet's `--timestamps` prefix: UTC with nine fraction digits."""
    seconds, nanos = parse_timestamp(ts_text)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


def format_line(ts: float, stream: str, text: bytes, partial: bool) -> bytes:
    if stream not in STREAMS:
        raise ValueError(f"bad stream {stream!r}")
    if b"\n" in text:
        raise ValueError("a record's text holds no newline")
    tag = b"P" if partial else b"F"
    return b"%s %s %s %s\n" % (format_timestamp(ts).encode(), stream.encode(), tag, text)


def parse_line(line: bytes) -> LogRecord:
    """One record (with or without its newline); ValueError if it is not one."""
    if line.endswith(b"\n"):
        line = line[:-1]
    parts = line.split(b" ", 3)
    if len(parts) < 3:
        raise ValueError(f"not a CRI log record: {line[:80]!r}")
    ts_text, stream, tag = (p.decode("ascii", "replace") for p in parts[:3])
    if stream not in STREAMS or tag not in ("F", "P"):
        raise ValueError(f"not a CRI log record: {line[:80]!r}")
    seconds, nanos = parse_timestamp(ts_text)
    return LogRecord(ts_text, seconds + nanos / 1e9, stream, tag == "P",
                     parts[3] if len(parts) == 4 else b"")


def chunk_records(data: bytes, max_len: int = MAX_RECORD_BYTES) -> list[tuple[bytes, bool]]:
    """A chunk of one stream as (text, partial) records: one F record per line, lines
    over `max_len` cut into P parts, and text after the last newline as P parts."""
    records: list[tuple[bytes, bool]] = []
    *lines, rest = data.split(b"\n")
    for line in lines:
        while len(line) > max_len:
            records.append((line[:max_len], True))
            line = line[max_len:]
        records.append((line, False))
    for start in range(0, len(rest), max_len):
        records.append((rest[start:start + max_len], True))
    return records


def split_lines(data: bytes) -> tuple[list[bytes], bytes]:
    """Whole lines (with their newline) and the unfinished rest."""
    end = data.rfind(b"\n") + 1
    return data[:end].splitlines(keepends=True), data[end:]


def parse_records(lines: Iterable[bytes]) -> list[LogRecord]:
    """The records among the lines; anything else (a torn or foreign line) is skipped."""
    records = []
    for line in lines:
        try:
            records.append(parse_line(line))
        except ValueError:
            continue
    return records


class LineJoiner:
    """Joins each stream's P records with the record that ends them into whole lines."""

    def __init__(self, timestamps: bool) -> None:
        self.timestamps = timestamps
        self._pending: dict[str, tuple[str, bytearray]] = {}

    def _line(self, ts_text: str, text: bytes) -> bytes:
        return (output_timestamp(ts_text).encode() + b" " + text) if self.timestamps else text

    def feed(self, record: LogRecord) -> bytes | None:
        """The whole line this record ends, or None while the line goes on."""
        first_ts, text = self._pending.pop(record.stream, (record.ts_text, bytearray()))
        text += record.text
        if record.partial:
            self._pending[record.stream] = (first_ts, text)
            return None
        return self._line(first_ts, bytes(text) + b"\n")

    def flush(self) -> list[bytes]:
        """Unfinished lines (no newline), once no more records will come."""
        lines = [self._line(ts, bytes(text)) for ts, text in self._pending.values()]
        self._pending.clear()
        return lines


def render(records: Iterable[LogRecord], timestamps: bool) -> list[bytes]:
    """All the lines of these records, unfinished ones (no newline) last."""
    joiner = LineJoiner(timestamps)
    lines = [line for r in records if (line := joiner.feed(r)) is not None]
    return lines + joiner.flush()


def tail(lines: list[bytes], tail_lines: int | None) -> list[bytes]:
    if tail_lines is None:
        return lines
    return lines[-tail_lines:] if tail_lines > 0 else []


def _since(records: Iterable[LogRecord], since_time: float | None) -> list[LogRecord]:
    return [r for r in records if since_time is None or r.ts >= since_time]


# --- files ------------------------------------------------------------------------------

def log_path(log_dir: Path, attempt: int) -> Path:
    return Path(log_dir) / f"{attempt}.log"


def log_files(log_dir: Path, attempt: int) -> list[Path]:
    """The attempt's files, oldest first (the current file last)."""
    pattern = re.compile(rf"{attempt}\.log\.(\d+)")
    try:
        names = os.listdir(log_dir)
    except FileNotFoundError:
        return []
    rotated = sorted(((int(m.group(1)), name) for name in names
                      if (m := pattern.fullmatch(name))), reverse=True)
    files = [Path(log_dir) / name for _, name in rotated]
    current = log_path(log_dir, attempt)
    return files + [current] if current.exists() else files


def attempts(log_dir: Path) -> list[int]:
    """The attempts that have logs here, in order."""
    try:
        names = os.listdir(log_dir)
    except FileNotFoundError:
        return []
    return sorted({int(m.group(1)) for name in names
                   if (m := re.fullmatch(r"(\d+)\.log(?:\.\d+)?", name))})


def previous_attempt(log_dir: Path, attempt: int) -> int | None:
    """The attempt before `attempt` that left logs (`kubectl logs --previous`)."""
    earlier = [a for a in attempts(log_dir) if a < attempt]
    return earlier[-1] if earlier else None


class LogWriter:
    """Appends one attempt's output as CRI records, rotating by size.

    Opening appends to an existing file, so a restarted agent goes on where the last
    one stopped. An unfinished line held back when the process dies is lost (at most
    16 KiB per stream, and only until the owner's next flush).
    """

    def __init__(self, log_dir: Path, attempt: int, *, max_bytes: int = DEFAULT_MAX_BYTES,
                 max_files: int = DEFAULT_MAX_FILES,
                 clock: Callable[[], float] = time.time) -> None:
        if max_files < 1 or max_bytes < 1:
            raise ValueError("max_files and max_bytes must be positive")
        self.log_dir = Path(log_dir)
        self.attempt = attempt
        self.path = log_path(self.log_dir, attempt)
        self.max_bytes = max_bytes
        self.max_files = max_files
        self._clock = clock
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = None
        self._size = 0
        self._pending: dict[str, bytes] = {}
        self._open()

    def _open(self) -> None:
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
                           0o640)
        self._size = os.fstat(self._fd).st_size

    def _rotated(self, n: int) -> Path:
        return self.log_dir / f"{self.attempt}.log.{n}"

    def _rotate(self) -> None:
        self._close_fd()
        if self.max_files == 1:
            self.path.unlink(missing_ok=True)
        for n in range(self.max_files - 1, 0, -1):
            source = self._rotated(n - 1) if n > 1 else self.path
            with contextlib.suppress(FileNotFoundError):
                os.replace(source, self._rotated(n))
        self._open()

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view and self._fd is not None:
            view = view[os.write(self._fd, view):]

    def write(self, stream: str, data: bytes) -> None:
        """Write one chunk read from a stream: its whole lines now, an unfinished line
        once it ends, reaches MAX_RECORD_BYTES, or is flushed."""
        if self._fd is None:
            raise ValueError("the log writer is closed")
        data = self._pending.pop(stream, b"") + data
        rest = data[data.rfind(b"\n") + 1:]
        keep = len(rest) % MAX_RECORD_BYTES
        if keep:
            self._pending[stream] = rest[-keep:]
            data = data[:-keep]
        self._write_records(stream, data)

    def pending(self) -> bool:
        """Whether an unfinished line is held back."""
        return bool(self._pending)

    def flush(self) -> None:
        """Write the unfinished lines held back, as P records."""
        pending, self._pending = self._pending, {}
        for stream, data in pending.items():
            self._write_records(stream, data)

    def _write_records(self, stream: str, data: bytes) -> None:
        """Write the chunk's records, rotating first whenever one would overflow."""
        if self._fd is None:
            raise ValueError("the log writer is closed")
        if not data:
            return
        ts = self._clock()
        batch = bytearray()
        for text, partial in chunk_records(data):
            line = format_line(ts, stream, text, partial)
            if self._size and self._size + len(line) > self.max_bytes:
                self._write_all(bytes(batch))
                batch.clear()
                self._rotate()
            batch += line
            self._size += len(line)
        self._write_all(bytes(batch))

    def _close_fd(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def close(self) -> None:
        if self._fd is not None:
            self.flush()
        self._close_fd()


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, READ_CHUNK):
        chunks.append(chunk)
    return b"".join(chunks)


def _records_newest_first(opened: Iterable[bytes], tail_lines: int | None,
                          since_time: float | None) -> list[LogRecord]:
    """Records of files given newest first, reading no older file than `tail_lines`
    needs (one line to spare, for a line begun in the older file)."""
    chunks: list[list[LogRecord]] = []
    whole = 0
    for data in opened:
        records = _since(parse_records(split_lines(data)[0]), since_time)
        chunks.append(records)
        whole += sum(not r.partial for r in records)
        if tail_lines is not None and whole > tail_lines:
            break
    return [r for chunk in reversed(chunks) for r in chunk]


def _file_contents(paths: Iterable[Path]) -> Iterable[bytes]:
    for path in paths:
        try:
            yield path.read_bytes()
        except FileNotFoundError:  # rotated away meanwhile
            continue


def read_logs(log_dir: Path, attempt: int, *, tail_lines: int | None = None,
              since_time: float | None = None, timestamps: bool = False,
              limit_bytes: int | None = None) -> bytes:
    """An attempt's logs across its rotated files, as `kubectl logs` prints them."""
    files = list(reversed(log_files(log_dir, attempt)))
    records = _records_newest_first(_file_contents(files), tail_lines, since_time)
    output = b"".join(tail(render(records, timestamps), tail_lines))
    return output if limit_bytes is None else output[:limit_bytes]


# --- following ----------------------------------------------------------------------------

class _Cursor:
    """A reader that stays with an attempt's log across rotations."""

    def __init__(self, log_dir: Path, attempt: int) -> None:
        self.log_dir = Path(log_dir)
        self.attempt = attempt
        self.fd: int | None = None
        self.inode: int | None = None
        self.carry = b""

    def _adopt(self, fd: int) -> None:
        self.close()
        self.fd, self.inode, self.carry = fd, os.fstat(fd).st_ino, b""

    def _records(self, data: bytes) -> list[LogRecord]:
        lines, self.carry = split_lines(self.carry + data)
        return parse_records(lines)

    def start(self, tail_lines: int | None, since_time: float | None) -> list[LogRecord]:
        """What is there now (as much as `tail_lines` needs); stays at the newest file.

        Files are opened newest first, so that a rotation meanwhile can only show a file
        twice (skipped by inode), never hide one.
        """
        seen: set[int] = set()

        def contents() -> Iterable[bytes]:
            for path in reversed(log_files(self.log_dir, self.attempt)):
                try:
                    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                except FileNotFoundError:
                    continue
                inode = os.fstat(fd).st_ino
                if inode in seen:
                    os.close(fd)
                    continue
                seen.add(inode)
                data = _read_all(fd)
                if self.fd is None:
                    self._adopt(fd)
                    complete, self.carry = split_lines(data)
                    data = b"".join(complete)
                else:
                    os.close(fd)
                yield data

        return _records_newest_first(contents(), tail_lines, since_time)

    def _successor(self) -> int | None:
        """The file that took the place of ours, opened, if ours was rotated."""
        names = list(reversed(log_files(self.log_dir, self.attempt)))
        inodes = []
        for path in names:
            try:
                inodes.append(path.stat().st_ino)
            except FileNotFoundError:
                inodes.append(None)
        if self.inode in inodes:
            index = inodes.index(self.inode)
            candidates = names[index - 1:index] if index > 0 else []
        else:  # ours was dropped off the end: go on with the oldest left
            candidates = names[-1:]
        for path in candidates:
            try:
                return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                return None
        return None

    def read_new(self) -> list[LogRecord]:
        if self.fd is None:
            try:
                self._adopt(os.open(log_path(self.log_dir, self.attempt),
                                    os.O_RDONLY | os.O_CLOEXEC))
            except FileNotFoundError:
                return []
        records = []
        for _ in range(MAX_HOPS):
            assert self.fd is not None
            records += self._records(_read_all(self.fd))
            successor = self._successor()
            if successor is None:
                break
            # Our file was renamed, so its writer had closed it: read its last records.
            records += self._records(_read_all(self.fd))
            self._adopt(successor)
        return records

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


async def follow_logs(log_dir: Path, attempt: int, *,
                      stop: Callable[[], bool] | asyncio.Event,
                      tail_lines: int | None = None, since_time: float | None = None,
                      timestamps: bool = False, limit_bytes: int | None = None,
                      poll_interval: float = 0.2) -> AsyncIterator[bytes]:
    """The logs so far, then new output as it is written, until `stop` says the
    container ended and everything it wrote was read (or `limit_bytes` were sent).

    New records are picked up by polling every `poll_interval` seconds. An unfinished
    line is held back until its end arrives (or the container ended).
    """
    stopped = stop.is_set if isinstance(stop, asyncio.Event) else stop
    cursor = _Cursor(log_dir, attempt)
    joiner = LineJoiner(timestamps)
    budget = limit_bytes

    def emit(lines: list[bytes]) -> bytes:
        nonlocal budget
        data = b"".join(lines)
        if budget is not None:
            data, budget = data[:budget], budget - min(budget, len(data))
        return data

    try:
        initial = cursor.start(tail_lines, since_time)
        lines = [line for r in initial if (line := joiner.feed(r)) is not None]
        if data := emit(tail(lines, tail_lines)):
            yield data
        while budget is None or budget > 0:
            finished = stopped()  # read once more after it says so: nothing is missed
            records = _since(cursor.read_new(), since_time)
            lines = [line for r in records if (line := joiner.feed(r)) is not None]
            if finished:
                lines += joiner.flush()
            if data := emit(lines):
                yield data
            if finished:
                return
            if not records:
                await asyncio.sleep(poll_interval)
    finally:
        cursor.close()
