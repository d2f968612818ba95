"""agents.container_logs: CRI records, rotation, and reading them back as kubectl shows them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents import container_logs as logs
from agents.container_logs import LogWriter, format_line, parse_line


class Clock:
    """A clock the test moves: each reading is `step` seconds after the previous."""

    def __init__(self, start: float = 1_714_564_800.0, step: float = 1.0) -> None:
        self.now = start - step
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def write_lines(writer: LogWriter, lines: list[str], stream: str = logs.STDOUT) -> None:
    for line in lines:
        writer.write(stream, f"{line}\n".encode())


# --- records ----------------------------------------------------------------------------

@pytest.mark.parametrize(("ts", "text"), [
    (0.0, "1970-01-01T00:00:00Z"),
    (1.5, "1970-01-01T00:00:01.5Z"),
    (1_714_564_800.123456, "2024-05-01T12:00:00.123456Z"),
    (1_714_564_800.1000004, "2024-05-01T12:00:00.1Z"),
])
def test_timestamps_are_rfc3339nano_in_utc_with_trailing_zeros_dropped(ts: float,
                                                                       text: str) -> None:
    assert logs.format_timestamp(ts) == text


def test_a_record_is_one_line_as_containerd_writes_it() -> None:
    assert format_line(1_714_564_800.25, "stdout", b"hello world", False) == \
        b"2024-05-01T12:00:00.25Z stdout F hello world\n"
    assert format_line(1_714_564_800.0, "stderr", b"", True) == \
        b"2024-05-01T12:00:00Z stderr P \n"
    with pytest.raises(ValueError):
        format_line(0.0, "stdout", b"two\nlines", False)
    with pytest.raises(ValueError):
        format_line(0.0, "stdin", b"x", False)


def test_parse_reads_containerd_records_exactly() -> None:
    record = parse_line(b"2016-10-06T00:17:09.669794202Z stdout F log content 1\n")
    assert record.ts_text == "2016-10-06T00:17:09.669794202Z"
    assert record.stream == "stdout" and not record.partial
    assert record.text == b"log content 1"
    assert record.ts == pytest.approx(1475713029.669794202)
    assert logs.output_timestamp(record.ts_text) == "2016-10-06T00:17:09.669794202Z"

    partial = parse_line(b"2016-10-06T00:17:09.669794203Z stderr P log content 2")
    assert partial.stream == "stderr" and partial.partial and partial.text == b"log content 2"


def test_parse_converts_offsets_to_utc_and_pads_fractions_for_output() -> None:
    record = parse_line(b"2024-05-01T14:00:00.5+02:00 stdout F x")
    assert record.ts == 1_714_564_800.5
    assert logs.output_timestamp(record.ts_text) == "2024-05-01T12:00:00.500000000Z"


@pytest.mark.parametrize("line", [
    b"", b"garbage", b"2024-05-01T12:00:00Z stdin F x", b"2024-05-01T12:00:00Z stdout X x",
    b"yesterday stdout F x", b"2024-05-01 12:00:00Z stdout F x",
])
def test_parse_rejects_what_is_not_a_record(line: bytes) -> None:
    with pytest.raises(ValueError):
        parse_line(line)


@given(ts=st.floats(min_value=0, max_value=4_000_000_000, allow_nan=False),
       stream=st.sampled_from(logs.STREAMS), partial=st.booleans(),
       text=st.binary(max_size=200).map(lambda b: b.replace(b"\n", b"")))
def test_format_then_parse_gives_the_record_back(ts: float, stream: str, partial: bool,
                                                 text: bytes) -> None:
    record = parse_line(format_line(ts, stream, text, partial))
    assert (record.stream, record.partial, record.text) == (stream, partial, text)
    assert abs(record.ts - ts) <= 1e-6


@given(data=st.binary(max_size=300) | st.lists(st.sampled_from([b"a", b"\n", b"bc"]),
                                               max_size=80).map(b"".join),
       max_len=st.integers(min_value=1, max_value=20))
def test_chunk_records_cut_lines_without_losing_a_byte(data: bytes, max_len: int) -> None:
    records = logs.chunk_records(data, max_len)
    rebuilt = b"".join(text + (b"" if partial else b"\n") for text, partial in records)
    assert rebuilt == data
    assert all(len(text) <= max_len and b"\n" not in text for text, _ in records)
    assert sum(not partial for _, partial in records) == data.count(b"\n")


def test_long_lines_are_cut_into_16_kib_partial_records() -> None:
    records = logs.chunk_records(b"x" * 40_000 + b"\nrest")
    assert [(len(t), p) for t, p in records] == [(16384, True), (16384, True), (7232, False),
                                                 (4, True)]


def test_partial_records_join_per_stream_with_the_time_of_their_first_part() -> None:
    records = [parse_line(line) for line in [
        b"2024-05-01T12:00:01Z stdout P hel",
        b"2024-05-01T12:00:02Z stderr F oops",
        b"2024-05-01T12:00:03Z stdout P lo ",
        b"2024-05-01T12:00:04Z stdout F world",
        b"2024-05-01T12:00:05Z stderr P no newline",
    ]]
    assert logs.render(records, timestamps=False) == [b"oops\n", b"hello world\n",
                                                      b"no newline"]
    assert logs.render(records, timestamps=True)[:2] == [
        b"2024-05-01T12:00:02.000000000Z oops\n",
        b"2024-05-01T12:00:01.000000000Z hello world\n"]
    joiner = logs.LineJoiner(timestamps=False)
    assert [joiner.feed(r) for r in records] == [None, b"oops\n", None, b"hello world\n",
                                                 None]


# --- writing and reading files ------------------------------------------------------------

def test_writer_rotates_by_size_and_keeps_max_files(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path, 0, max_bytes=300, max_files=3, clock=Clock())
    lines = [f"line {i:03d}" for i in range(100)]
    write_lines(writer, lines)
    writer.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0.log", "0.log.1", "0.log.2"]
    for path in tmp_path.iterdir():
        assert path.stat().st_size <= 300
        for line in path.read_bytes().splitlines():
            parse_line(line)
    kept = logs.read_logs(tmp_path, 0).decode().splitlines()
    assert kept == lines[-len(kept):] and 0 < len(kept) < len(lines)


def test_writer_with_one_file_starts_over(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path, 2, max_bytes=100, max_files=1, clock=Clock())
    write_lines(writer, [f"line {i}" for i in range(10)])
    writer.close()
    assert [p.name for p in tmp_path.iterdir()] == ["2.log"]
    assert logs.read_logs(tmp_path, 2).decode().splitlines()[-1] == "line 9"


def test_a_new_writer_appends_where_the_last_one_stopped(tmp_path: Path) -> None:
    first = LogWriter(tmp_path, 0, clock=Clock())
    write_lines(first, ["one"])
    first.close()
    second = LogWriter(tmp_path, 0, clock=Clock(start=1_714_564_900.0))
    write_lines(second, ["two"])
    second.close()
    assert logs.read_logs(tmp_path, 0) == b"one\ntwo\n"


def test_an_unfinished_line_waits_for_its_end_or_a_flush(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path, 0, clock=Clock())

    def records() -> list[tuple[str, bool, bytes]]:
        return [(r.stream, r.partial, r.text) for r in
                map(parse_line, (tmp_path / "0.log").read_bytes().splitlines())]

    writer.write(logs.STDOUT, b"one line, written")
    assert writer.pending() and records() == []
    writer.write(logs.STDOUT, b" in two parts\nprompt> ")
    assert records() == [("stdout", False, b"one line, written in two parts")]
    writer.flush()
    assert not writer.pending()
    assert records()[-1] == ("stdout", True, b"prompt> ")
    writer.write(logs.STDERR, b"y" * 40_000)
    assert records()[-2:] == [("stderr", True, b"y" * 16384)] * 2
    writer.close()
    assert records()[-1] == ("stderr", True, b"y" * 7232)
    assert logs.read_logs(tmp_path, 0) == \
        b"one line, written in two parts\nprompt> " + b"y" * 40_000


def test_tail_spans_rotated_files_in_order(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path, 0, max_bytes=200, max_files=5, clock=Clock())
    lines = [f"l{i:02d}" for i in range(20)]
    write_lines(writer, lines)
    writer.close()
    files = logs.log_files(tmp_path, 0)
    assert [p.name for p in files] == ["0.log.3", "0.log.2", "0.log.1", "0.log"]
    newest = files[-1].read_bytes().count(b"\n")
    tail = newest + 2  # reaches into the previous file
    assert logs.read_logs(tmp_path, 0, tail_lines=tail).decode().splitlines() == lines[-tail:]
    assert logs.read_logs(tmp_path, 0, tail_lines=0) == b""
    assert logs.read_logs(tmp_path, 0, tail_lines=1000).decode().splitlines() == lines


def test_since_keeps_records_at_or_after_the_time(tmp_path: Path) -> None:
    clock = Clock(start=1000.0, step=1.0)
    writer = LogWriter(tmp_path, 0, max_bytes=150, clock=clock)
    write_lines(writer, [f"at {1000 + i}" for i in range(10)])
    writer.close()
    assert logs.read_logs(tmp_path, 0, since_time=1007.0) == b"at 1007\nat 1008\nat 1009\n"
    assert logs.read_logs(tmp_path, 0, since_time=1007.0, tail_lines=2) == \
        b"at 1008\nat 1009\n"


def test_timestamps_and_limit_bytes(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path, 0, clock=Clock(start=1_714_564_800.5))
    write_lines(writer, ["first", "second"])
    writer.close()
    assert logs.read_logs(tmp_path, 0, timestamps=True) == (
        b"2024-05-01T12:00:00.500000000Z first\n2024-05-01T12:00:01.500000000Z second\n")
    assert logs.read_logs(tmp_path, 0, limit_bytes=8) == b"first\nse"


def test_a_line_cut_by_the_pipe_and_by_rotation_reads_back_whole(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path, 0, max_bytes=120, max_files=5, clock=Clock())
    writer.write(logs.STDOUT, b"start of a ")
    writer.write(logs.STDERR, b"an error\n")
    writer.write(logs.STDOUT, b"line that goes ")
    writer.write(logs.STDOUT, b"on\nnext\n")
    writer.close()
    assert len(logs.log_files(tmp_path, 0)) > 1
    assert logs.read_logs(tmp_path, 0) == \
        b"an error\nstart of a line that goes on\nnext\n"


def test_torn_and_foreign_lines_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "0.log").write_bytes(
        b"2024-05-01T12:00:00Z stdout F good\nnot a record\n2024-05-01T12:00:01Z stdout F to")
    assert logs.read_logs(tmp_path, 0) == b"good\n"


def test_attempts_and_previous(tmp_path: Path) -> None:
    for name in ["0.log", "0.log.1", "1.log", "3.log", "3.log.2", "other.txt"]:
        (tmp_path / name).write_bytes(b"")
    assert logs.attempts(tmp_path) == [0, 1, 3]
    assert logs.previous_attempt(tmp_path, 3) == 1
    assert logs.previous_attempt(tmp_path, 0) is None
    assert logs.attempts(tmp_path / "missing") == []


# --- following ----------------------------------------------------------------------------

def run(coro):  # type: ignore[no-untyped-def]
    async def bounded():  # type: ignore[no-untyped-def]
        return await asyncio.wait_for(coro, 30)
    return asyncio.run(bounded())


async def collect(iterator) -> bytes:  # type: ignore[no-untyped-def]
    return b"".join([chunk async for chunk in iterator])


def test_follow_gets_everything_across_rotations_until_stopped(tmp_path: Path) -> None:
    lines = [f"line {i:03d}" for i in range(200)]

    async def scenario() -> bytes:
        writer = LogWriter(tmp_path, 0, max_bytes=400, max_files=50, clock=Clock())
        write_lines(writer, lines[:10])
        done = asyncio.Event()
        follower = asyncio.create_task(collect(logs.follow_logs(
            tmp_path, 0, stop=done, poll_interval=0.01)))
        for start in range(10, len(lines), 7):
            write_lines(writer, lines[start:start + 7])
            await asyncio.sleep(0.005)
        writer.write(logs.STDOUT, b"no newline at the end")
        writer.close()
        done.set()
        return await follower

    output = run(scenario())
    assert len(logs.log_files(tmp_path, 0)) > 10
    assert output == "".join(f"{line}\n" for line in lines).encode() + b"no newline at the end"


def test_follow_starts_with_tail_and_since(tmp_path: Path) -> None:
    async def scenario() -> tuple[bytes, bytes]:
        writer = LogWriter(tmp_path, 0, max_bytes=100, clock=Clock(start=1000.0))
        write_lines(writer, [f"old {i}" for i in range(6)])
        stopped = False
        tail = asyncio.create_task(collect(logs.follow_logs(
            tmp_path, 0, stop=lambda: stopped, tail_lines=2, poll_interval=0.01)))
        since = asyncio.create_task(collect(logs.follow_logs(
            tmp_path, 0, stop=lambda: stopped, since_time=1004.0, timestamps=True,
            poll_interval=0.01)))
        await asyncio.sleep(0.05)
        write_lines(writer, ["new"])
        writer.close()
        stopped = True
        return await tail, await since

    tail, since = run(scenario())
    assert tail == b"old 4\nold 5\nnew\n"
    assert since == (b"1970-01-01T00:16:44.000000000Z old 4\n"
                     b"1970-01-01T00:16:45.000000000Z old 5\n"
                     b"1970-01-01T00:16:46.000000000Z new\n")


def test_follow_waits_for_the_file_and_honours_limit_bytes(tmp_path: Path) -> None:
    async def scenario() -> bytes:
        follower = asyncio.create_task(collect(logs.follow_logs(
            tmp_path, 0, stop=lambda: False, limit_bytes=10, poll_interval=0.01)))
        await asyncio.sleep(0.03)
        writer = LogWriter(tmp_path, 0, clock=Clock())
        write_lines(writer, ["0123456", "789abc"])
        writer.close()
        return await follower

    assert run(scenario()) == b"0123456\n78"
