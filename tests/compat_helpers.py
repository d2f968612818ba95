"""Helpers for the compatibility suite (tests/integration/test_compat_*.py).

The suite runs the same tests against real etcd 3.4 and kubelite's store and compares
replies as JSON structures, byte-level details (chunk framing) included. Three ideas:

- `Gateway` speaks the v3 JSON gateway of one member with the standard library only, so a
  test sees exactly what a client would: the status, the content type and the raw JSON.
- `normalize` makes a reply comparable across runs and store kinds. The header fields
  that identify the cluster (`cluster_id`, `member_id`, `raft_term`) become placeholders
  after their format is checked, and every revision becomes relative to a revision the
  test measured at its start: revision base+2 reads "R+2". Everything else, including
  which fields are absent (etcd omits zero values) and that int64s are JSON strings, is
  compared as is. Expected replies are written with `header`, `kv` and `rev`.
- `ChunkedStream` reads a streaming reply (watch, lease keepalive) from a raw socket and
  decodes the chunked transfer coding itself, so a test can check that every HTTP chunk
  holds exactly one JSON message followed by "\\n": etcd3gw `json.loads` each chunk.
  etcd 3.4 keeps to that only for messages under about 2 KiB (a longer one is written as
  the JSON in one chunk and the "\\n" in a second), so watch tests keep messages short.
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from tests import http

DECIMAL = re.compile(r"^(0|-?[1-9][0-9]*)$")
VOLATILE_HEADER_FIELDS = ("cluster_id", "member_id", "raft_term")
REVISION_FIELDS = frozenset({"revision", "create_revision", "mod_revision", "compact_revision"})
READ_TIMEOUT = 5.0  # one streamed message; etcd answers in milliseconds when idle

b64 = http.b64


# --- unary calls ------------------------------------------------------------------------


class Reply:
    """A raw HTTP reply: status, Content-Type and body; `json` parses the body."""

    def __init__(self, status: int, content_type: str, body: bytes) -> None:
        self.status = status
        self.content_type = content_type
        self.body = body

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"Reply({self.status}, {self.content_type!r}, {self.body[:300]!r})"


class Gateway:
    """The v3 JSON gateway of one member: POST a body to `<prefix>/<path>`."""

    def __init__(self, endpoint: str, prefix: str = "/v3") -> None:
        self.endpoint = endpoint
        self.prefix = prefix

    def post(self, path: str, body: Any | bytes = None) -> Reply:
        """POST `body`: JSON-encoded, or sent as is if it is bytes (for malformed input)."""
        raw = body if isinstance(body, bytes) else json.dumps({} if body is None else body).encode()
        status, headers, reply = http.request(
            self.endpoint,
            f"{self.prefix}/{path}",
            method="POST",
            body=raw,
            headers={"Content-Type": "application/json"},
        )
        return Reply(status, headers.get("Content-Type", ""), reply)

    def ok(self, path: str, body: Any | bytes = None) -> dict:
        """The parsed reply of a call that must succeed with HTTP 200 and a JSON body."""
        reply = self.post(path, body)
        assert reply.status == 200, reply
        assert reply.content_type == "application/json", reply
        return reply.json

    def put(self, key: str | bytes, value: str | bytes = b"", **fields: Any) -> dict:
        return self.ok("kv/put", {"key": b64(key), "value": b64(value), **fields})

    def range(self, key: str | bytes, **fields: Any) -> dict:
        return self.ok("kv/range", {"key": b64(key), **fields})

    def revision(self) -> int:
        """The store's current revision (a linearizable read of a key nobody writes)."""
        return int(self.range("compat/never-written")["header"]["revision"])


def error_body(message: str, code: int) -> dict:
    """The body of a gateway error: `error` and `message` are the same text."""
    return {"error": message, "message": message, "code": code}


def prefix_end(prefix: str | bytes) -> str:
    """base64 of the range_end that makes [prefix, range_end) the keys under prefix."""
    raw = prefix.encode() if isinstance(prefix, str) else prefix
    return b64(raw[:-1] + bytes([raw[-1] + 1]))


# --- normalising replies ----------------------------------------------------------------


def rev(offset: int) -> str:
    """The normalised form of revision base+offset."""
    return f"R{offset:+d}"


def header(offset: int | None) -> dict:
    """An expected full response header at revision base+offset (None: no revision)."""
    expected = {f: f"<{f}>" for f in VOLATILE_HEADER_FIELDS}
    if offset is not None:
        expected["revision"] = rev(offset)
    return expected


def kv(
    key: str | bytes,
    value: str | bytes = b"",
    *,
    create: int,
    mod: int,
    version: int,
    lease: int | None = None,
    keys_only: bool = False,
) -> dict:
    """An expected KeyValue; zero values (empty value, no lease) are absent, as in etcd."""
    expected: dict[str, Any] = {
        "key": b64(key),
        "create_revision": rev(create),
        "mod_revision": rev(mod),
        "version": str(version),
    }
    if value and not keys_only:
        expected["value"] = b64(value)
    if lease:
        expected["lease"] = str(lease)
    return expected


def deleted_kv(key: str | bytes, *, mod: int) -> dict:
    """The kv of a DELETE event: the key and the revision of the delete only."""
    return {"key": b64(key), "mod_revision": rev(mod)}


class Rev:
    """A revision inside a request body, relative to the test's base: Rev(2) is base+2.

    `resolve` turns it into a JSON string, or into a JSON number with `number=True`.
    """

    def __init__(self, offset: int, *, number: bool = False) -> None:
        self.offset = offset
        self.number = number

    def __repr__(self) -> str:
        return f"Rev({self.offset})"


def resolve(body: Any, base: int) -> Any:
    """`body` with every `Rev` replaced by the absolute revision."""
    if isinstance(body, Rev):
        absolute = base + body.offset
        return absolute if body.number else str(absolute)
    if isinstance(body, list):
        return [resolve(item, base) for item in body]
    if isinstance(body, dict):
        return {name: resolve(value, base) for name, value in body.items()}
    return body


def normalize(reply: Any, base: int) -> Any:
    """`reply` with volatile header fields replaced and revisions made relative to `base`.

    A volatile field must be a decimal string to be replaced, and a revision must be a
    decimal string to be made relative; anything else is left alone so the comparison
    with the expected value fails and shows it.
    """
    if isinstance(reply, list):
        return [normalize(item, base) for item in reply]
    if not isinstance(reply, dict):
        return reply
    out: dict[str, Any] = {}
    for name, value in reply.items():
        if name == "header" and isinstance(value, dict):
            out[name] = _normalize_header(value, base)
        elif name in REVISION_FIELDS and isinstance(value, str) and DECIMAL.match(value):
            out[name] = rev(int(value) - base)
        else:
            out[name] = normalize(value, base)
    return out


def _normalize_header(value: dict, base: int) -> dict:
    out = normalize(value, base)
    for name in VOLATILE_HEADER_FIELDS:
        field = value.get(name)
        if isinstance(field, str) and DECIMAL.match(field) and int(field) >= 0:
            out[name] = f"<{name}>"
    return out


# --- streaming replies ------------------------------------------------------------------


class StreamClosed(AssertionError):
    pass


class ChunkedStream:
    """One POST on a raw socket whose reply is read chunk by chunk.

    The whole request body is sent at once with a Content-Length: etcd's gateway answers
    a streaming call only once the request body is complete, so every request of a watch
    stream (create, cancel, progress) is in that one body.
    """

    def __init__(self, endpoint: str, path: str, body: bytes) -> None:
        url = urlsplit(endpoint)
        assert url.hostname is not None and url.port is not None, endpoint
        self.sock = socket.create_connection((url.hostname, url.port), timeout=READ_TIMEOUT)
        self.sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        self._buf = b""
        self._ended = False
        status_line, *header_lines = self._read_until(b"\r\n\r\n").decode().split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self.chunked = self.headers.get("transfer-encoding", "").lower() == "chunked"

    def __enter__(self) -> ChunkedStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no data from the server in time")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            raise TimeoutError("no data from the server in time") from None
        if not data:
            raise StreamClosed("the server closed the connection")
        self._buf += data

    def _read_until(self, marker: bytes, timeout: float = READ_TIMEOUT) -> bytes:
        deadline = time.monotonic() + timeout
        while marker not in self._buf:
            self._fill(deadline)
        head, _, self._buf = self._buf.partition(marker)
        return head

    def _read_exactly(self, n: int, timeout: float = READ_TIMEOUT) -> bytes:
        deadline = time.monotonic() + timeout
        while len(self._buf) < n:
            self._fill(deadline)
        data, self._buf = self._buf[:n], self._buf[n:]
        return data

    def chunk(self, timeout: float = READ_TIMEOUT) -> bytes | None:
        """The next HTTP chunk's data; None once the terminating chunk has come."""
        assert self.chunked, f"reply is not chunked: {self.headers}"
        if self._ended:
            return None
        size_line = self._read_until(b"\r\n", timeout)
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            self._read_until(b"\r\n", timeout)  # no trailers
            self._ended = True
            return None
        data = self._read_exactly(size, timeout)
        assert self._read_exactly(2, timeout) == b"\r\n", "chunk data not followed by CRLF"
        return data

    def _next_framed(self, timeout: float) -> dict | None:
        """The next chunk as a message, None at the end of the stream."""
        try:
            data = self.chunk(timeout)
        except TimeoutError:
            raise AssertionError(f"no streamed message within {timeout} s") from None
        if data is None:
            return None
        # One message per chunk: the JSON text and its "\n", nothing before or after.
        assert data.endswith(b"\n") and data.count(b"\n") == 1, f"chunk framing: {data!r}"
        return json.loads(data)  # raises on two objects in one chunk ("Extra data")

    def message(self, timeout: float = READ_TIMEOUT) -> dict:
        """The next message: one chunk holding exactly one JSON object plus "\\n"."""
        message = self._next_framed(timeout)
        if message is None:
            raise StreamClosed("the stream ended")
        return message

    def results(self, timeout: float = READ_TIMEOUT) -> Iterator[dict]:
        """The `result` of every message until the stream ends."""
        while (message := self._next_framed(timeout)) is not None:
            assert list(message) == ["result"], message
            yield message["result"]

    def body(self, timeout: float = READ_TIMEOUT) -> bytes:
        """The whole body of a reply that is not a stream (for instance an error)."""
        if self.chunked:
            parts = []
            while (part := self.chunk(timeout)) is not None:
                parts.append(part)
            return b"".join(parts)
        if "content-length" in self.headers:
            return self._read_exactly(int(self.headers["content-length"]), timeout)
        deadline = time.monotonic() + timeout  # delimited by the server closing
        try:
            while True:
                self._fill(deadline)
        except StreamClosed:
            data, self._buf = self._buf, b""
            return data


def stream_body(*requests: dict) -> bytes:
    """Several request objects back to back, as one streaming request body."""
    return b"".join(json.dumps(r).encode() for r in requests)


# --- watch ------------------------------------------------------------------------------


def create_request(key: str | bytes, **fields: Any) -> dict:
    return {"create_request": {"key": b64(key), **fields}}


def open_watch(endpoint: str, *requests: dict) -> ChunkedStream:
    """POST /v3/watch with `requests` as the body; check the reply is a JSON stream."""
    stream = ChunkedStream(endpoint, "/v3/watch", stream_body(*requests))
    try:
        assert stream.status == 200, (stream.status, stream.headers)
        assert stream.headers.get("content-type") == "application/json", stream.headers
        assert stream.chunked, stream.headers
    except BaseException:
        stream.close()
        raise
    return stream


def next_result(stream: ChunkedStream, timeout: float = READ_TIMEOUT) -> dict:
    message = stream.message(timeout)
    assert list(message) == ["result"], message
    return message["result"]


def watch_id_of(result: dict) -> str:
    """The watch a message belongs to; etcd omits watch_id 0."""
    return result.get("watch_id", "0")


class WatchLog:
    """Messages of one stream sorted by watch, for assertions that must not depend on how
    the server interleaves watches or batches history across messages."""

    def __init__(self, stream: ChunkedStream, base: int) -> None:
        self.stream = stream
        self.base = base
        self.messages: dict[str, list[dict]] = {}

    def read(self) -> dict:
        """The next message, normalised, after checking what holds for every message:
        events come after `created`, and none is newer than the message's header."""
        result = next_result(self.stream)
        watch_id = watch_id_of(result)
        seen = self.messages.setdefault(watch_id, [])
        if result.get("events"):
            assert seen and seen[0].get("created"), f"events before created: {result}"
            header_rev = int(result["header"]["revision"])
            assert all(int(e["kv"]["mod_revision"]) <= header_rev for e in result["events"])
        seen.append(normalize(result, self.base))
        return seen[-1]

    def events(self, watch_id: str) -> list[dict]:
        return [e for m in self.messages.get(watch_id, []) for e in m.get("events", [])]

    def read_events(self, watch_id: str, count: int) -> list[dict]:
        """Read until watch `watch_id` has `count` events in all; return them."""
        deadline = time.monotonic() + 2 * READ_TIMEOUT
        while len(self.events(watch_id)) < count:
            assert time.monotonic() < deadline, f"watch {watch_id}: {self.messages}"
            self.read()
        events = self.events(watch_id)
        assert len(events) == count, events
        return events

    def read_until(self, watch_id: str, predicate: Any) -> dict:
        """Read until a message of `watch_id` satisfies `predicate`; return it."""
        deadline = time.monotonic() + 2 * READ_TIMEOUT
        while True:
            assert time.monotonic() < deadline, f"watch {watch_id}: {self.messages}"
            message = self.read()
            if watch_id_of(message) == watch_id and predicate(message):
                return message


def revisions_in_one_message_each(messages: list[dict]) -> bool:
    """True if no revision's events are split over two messages."""
    owner: dict[str, int] = {}
    for i, message in enumerate(messages):
        for event in message.get("events", []):
            if owner.setdefault(event["kv"]["mod_revision"], i) != i:
                return False
    return True
