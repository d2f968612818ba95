"""Watches that outlive the member they are connected to, with no gap and no duplicate.

A watch is one `POST /v3/watch` whose chunked reply carries one `{"result": ...}` JSON
object per line (lines are split here, never assumed to match HTTP chunks). The watch
remembers the next revision it owes the consumer:

- after the `created` message of a watch that started "now" (start_revision 0), it is the
  created header's revision + 1: etcd reads that revision and starts the watcher at the
  one after it, under the same lock;
- after events, the last event's mod_revision + 1 (not the header revision: a replay
  batch capped at 1000 revisions carries the store's current revision in its header);
- after a progress notification (header only), its revision + 1: etcd sends those only
  for watchers that have caught up.

When the stream breaks (member killed, connection reset, the member lost its leader, or
a silent member fails a status probe) the watch reopens on another endpoint from that
revision. Events below it are dropped as a last guard against duplicates. A compacted
revision ends the watch with `WatchCompacted`; the consumer re-lists.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, NamedTuple

import aiohttp
import orjson

from store import client_codec, errors
from store.client_transport import Transport, backoff_delay
from store.client_types import StoreUnavailable, WatchBatch, WatchCompacted, WatchFilter

log = logging.getLogger(__name__)

_PATH = "/v3/watch"
# grpc-gateway turns Grpc-Metadata-* headers into gRPC metadata. With "hasleader" etcd
# ends the stream when its member loses the leader (clientv3.WithRequireLeader), so a watch
# on a partitioned member breaks and resumes elsewhere instead of going quiet.
_REQUIRE_LEADER = {"Grpc-Metadata-Hasleader": "true"}
_MAX_ATTEMPTS = 10_000  # the time budget ends reconnecting long before this


class WatchSpec(NamedTuple):
    """What to watch; the start revision lives in the `Watch`, as it moves."""

    key: bytes
    range_end: bytes
    prev_kv: bool
    progress_notify: bool
    filters: tuple[WatchFilter, ...]


def create_request(spec: WatchSpec, start_revision: int) -> dict[str, Any]:
    fields = {
        "key": spec.key,
        "range_end": spec.range_end,
        "start_revision": start_revision,
        "prev_kv": spec.prev_kv,
        "progress_notify": spec.progress_notify,
        "filters": list(spec.filters),
    }
    return {"create_request": client_codec.encode_fields(fields)}


class _StreamBroken(Exception):
    """The current HTTP stream cannot deliver more; reconnect elsewhere."""


class _Lines:
    """Splits a byte stream into lines; a line may span many reads, a read many lines."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def pop(self) -> bytes | None:
        end = self._buffer.find(b"\n")
        if end < 0:
            return None
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        return line

    def clear(self) -> None:
        self._buffer.clear()


class Watch:
    """An async iterator of `WatchBatch`; also an async context manager that closes it.

    `async with client.watch(...) as w:` returns once the watch is established, so writes
    made after it are seen. Any exception out of the iterator (including cancellation)
    closes the HTTP stream and ends the watch.
    """

    def __init__(
        self, transport: Transport, spec: WatchSpec, *, start_revision: int, idle_probe: float
    ) -> None:
        self._transport = transport
        self._spec = spec
        self._next_revision = start_revision
        self._idle_probe = idle_probe
        self._resp: aiohttp.ClientResponse | None = None
        self._endpoint = ""
        self._lines = _Lines()
        self._pending: client_codec.WatchMessage | None = None
        self._done = False

    @property
    def next_revision(self) -> int:
        """The revision the watch resumes from; 0 until the first stream is created."""
        return self._next_revision

    @property
    def endpoint(self) -> str:
        """The endpoint the stream is currently open on ("" when none)."""
        return self._endpoint if self._resp is not None else ""

    async def __aenter__(self) -> Watch:
        if self._resp is not None or self._done:
            return self
        try:
            await self._connect()
        except BaseException:
            self._finish()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __aiter__(self) -> Watch:
        return self

    async def __anext__(self) -> WatchBatch:
        try:
            return await self._next_batch()
        except BaseException:
            self._finish()
            raise

    async def aclose(self) -> None:
        self._finish()

    # --- the loop ---------------------------------------------------------------------

    async def _next_batch(self) -> WatchBatch:
        # Each turn waits on the network; reconnecting is bounded by the client's timeout.
        while not self._done:
            if self._resp is None:
                await self._connect()
            try:
                message = self._take_pending()
                if message is None:
                    message = await self._read_message()
            except _StreamBroken as broken:
                log.info("watch stream on %s broke (%s); resuming at revision %d",
                         self._endpoint, broken, self._next_revision)
                self._close_stream()
                continue
            batch = self._apply(message)
            if batch is not None:
                return batch
        raise StopAsyncIteration

    def _take_pending(self) -> client_codec.WatchMessage | None:
        message, self._pending = self._pending, None
        return message

    def _apply(self, message: client_codec.WatchMessage) -> WatchBatch | None:
        """Advance the resume revision; the batch to hand out, if any."""
        if message.canceled:
            self._finish()
            if message.compact_revision:
                raise WatchCompacted(message.compact_revision)
            return WatchBatch(message.revision, [], 0, True)
        if message.created:
            return None
        if message.events:
            events = [e for e in message.events if e.kv.mod_revision >= self._next_revision]
            if not events:
                return None
            self._next_revision = events[-1].kv.mod_revision + 1
            return WatchBatch(message.revision, events)
        self._next_revision = max(self._next_revision, message.revision + 1)
        return WatchBatch(message.revision, [])

    # --- connecting -----------------------------------------------------------------

    def _candidates(self) -> list[str]:
        """Preferred endpoint first, but the one whose stream just broke last."""
        order = self._transport.rotation()
        if self._endpoint in order:
            order.remove(self._endpoint)
            order.append(self._endpoint)
        return order

    async def _connect(self) -> None:
        transport = self._transport
        deadline = transport.loop_time() + transport.timeout
        candidates = self._candidates()
        causes: list[str] = []
        for attempt in range(_MAX_ATTEMPTS):
            if transport.loop_time() >= deadline:
                break
            endpoint = candidates[attempt % len(candidates)]
            try:
                await self._open(endpoint)
                return
            except (StoreUnavailable, _StreamBroken) as exc:
                causes.append(f"{endpoint}: {exc}")
            delay = min(backoff_delay(attempt), deadline - transport.loop_time())
            await asyncio.sleep(max(0.0, delay))
        raise StoreUnavailable("watch: no endpoint accepted the watch", causes=causes)

    async def _open(self, endpoint: str) -> None:
        """Open a stream on `endpoint` and wait for its `created` message."""
        body = create_request(self._spec, self._next_revision)
        self._resp = await self._transport.open_stream(endpoint, _PATH, body, _REQUIRE_LEADER)
        self._endpoint = endpoint
        self._lines.clear()
        try:
            async with asyncio.timeout(self._transport.read_attempt_timeout):
                first = await self._read_message(probe=False)
        except (TimeoutError, _StreamBroken) as exc:
            self._close_stream()
            raise _StreamBroken(f"no created message: {exc!r}") from exc
        if first.created and not first.canceled:
            if self._next_revision == 0:
                self._next_revision = first.revision + 1
        else:
            self._pending = first
        self._transport.mark_good(endpoint)

    # --- reading --------------------------------------------------------------------

    async def _read_message(self, *, probe: bool = True) -> client_codec.WatchMessage:
        """The next `result` on the stream; `_StreamBroken` when there will be none."""
        # Each turn either returns a buffered line or waits for bytes (or probes).
        while True:
            line = self._lines.pop()
            if line is not None:
                message = _parse_line(line)
                if message is not None:
                    return message
                continue
            self._lines.feed(await self._read_chunk(probe))

    async def _read_chunk(self, probe: bool) -> bytes:
        assert self._resp is not None
        try:
            if not probe:
                chunk = await self._resp.content.readany()
            else:
                async with asyncio.timeout(self._idle_probe):
                    chunk = await self._resp.content.readany()
        except TimeoutError:
            await self._probe()
            return b""
        except (aiohttp.ClientError, OSError) as exc:
            raise _StreamBroken(repr(exc)) from exc
        if not chunk:
            raise _StreamBroken("stream ended")
        return chunk

    async def _probe(self) -> None:
        """A quiet stream is normal; a quiet member that fails a status call is not."""
        try:
            body = await self._transport.call(
                "/v3/maintenance/status", {}, read_only=True, endpoint=self._endpoint
            )
        except (StoreUnavailable, errors.EtcdError) as exc:
            raise _StreamBroken(f"status probe failed: {exc}") from exc
        if not client_codec.as_int(body.get("leader")):
            raise _StreamBroken("member has no leader")

    def _close_stream(self) -> None:
        if self._resp is not None:
            resp, self._resp = self._resp, None
            resp.close()
        self._pending = None

    def _finish(self) -> None:
        self._done = True
        self._close_stream()


def _parse_line(line: bytes) -> client_codec.WatchMessage | None:
    """A `{"result": ...}` line; `{"error": ...}` (the gateway's stream error) breaks it."""
    if not line.strip():
        return None
    try:
        body = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise _StreamBroken(f"unparsable line {line[:200]!r}") from exc
    if isinstance(body, dict) and isinstance(body.get("result"), dict):
        return client_codec.decode_watch_message(body["result"])
    if isinstance(body, dict) and "error" in body:
        raise _StreamBroken(client_codec.decode_error(500, line).message)
    raise _StreamBroken(f"unexpected line {line[:200]!r}")
