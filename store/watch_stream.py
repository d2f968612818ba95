"""One `POST /v3/watch` HTTP stream: many watchers, one chunked response.

The request body is read incrementally (clients keep it open to send cancel requests);
each message goes out as exactly one HTTP chunk holding one `{"result": ...}` line,
which is what etcd3gw and other gateway clients rely on. The stream never ends on its
own; the client closes it.
"""

from __future__ import annotations

import asyncio
import codecs
import logging
from collections import deque
from typing import TYPE_CHECKING

import orjson
from aiohttp import web

from store import codec, errors, stream_codec
from store.watch_hub import Watcher

if TYPE_CHECKING:
    from store.member import Member

log = logging.getLogger(__name__)

_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Grpc-Metadata-Content-Type": "application/grpc",
}


class WatchStream:
    """The outgoing side: a queue of messages drained by one writer task."""

    def __init__(self, member: Member) -> None:
        self._member = member
        self._queue: deque[dict] = deque()
        self._wakeup = asyncio.Event()
        self.closed = False

    def send(self, message: dict) -> None:
        if self.closed:
            return
        self._queue.append(message)
        self._wakeup.set()

    def backlog(self) -> int:
        return len(self._queue)

    async def write_loop(self, response: web.StreamResponse) -> None:
        while not self.closed:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            message = self._queue.popleft()
            line = orjson.dumps({"result": codec.encode_obj("WatchResponse", message)}) + b"\n"
            await response.write(line)


async def handle_watch(member: Member, request: web.Request) -> web.StreamResponse:
    reader = _RequestReader(request)
    try:
        first = await reader.next()
    except errors.EtcdError as err:
        body = codec.encode_error(errors.EtcdError(err.message, errors.GrpcCode.UNKNOWN))
        return web.Response(body=body, status=500, content_type="application/json",
                            headers=_HEADERS)
    response = web.StreamResponse(status=200, headers=_HEADERS)
    response.content_type = "application/json"
    response.enable_chunked_encoding()
    await response.prepare(request)
    stream = WatchStream(member)
    session = _Session(member, stream)
    writer = asyncio.create_task(stream.write_loop(response), name="watch-writer")
    progress = asyncio.create_task(session.progress_loop(), name="watch-progress")
    try:
        request_obj = first
        while request_obj is not None:
            session.handle(request_obj)
            try:
                request_obj = await reader.next()
            except errors.EtcdError as err:
                stream.send({"header": member.header(0), "canceled": True,
                             "cancel_reason": err.message})
                request_obj = None
        # Request body ended: keep streaming until the client goes away.
        await writer
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        stream.closed = True
        session.close()
        for task in (writer, progress):
            task.cancel()
    return response


class _Session:
    """The watchers created on one stream, by watch id."""

    def __init__(self, member: Member, stream: WatchStream) -> None:
        self._member = member
        self._stream = stream
        self._watchers: dict[int, Watcher] = {}
        self._next_id = 0

    def handle(self, req: dict) -> None:
        if "create_request" in req:
            self._create(req["create_request"])
        elif "cancel_request" in req:
            self._cancel(req["cancel_request"]["watch_id"])
        elif "progress_request" in req:
            self._stream.send({"header": self._member.header(self._member.hub.published_revision),
                               "watch_id": -1})

    def _create(self, create: dict) -> None:
        hub = self._member.hub
        watch_id = create["watch_id"]
        if watch_id == 0:
            while self._next_id in self._watchers:
                self._next_id += 1
            watch_id = self._next_id
            self._next_id += 1
        header = self._member.header(hub.published_revision)
        if watch_id in self._watchers:
            self._stream.send({"header": header, "watch_id": -1, "created": True,
                               "canceled": True,
                               "cancel_reason": "mvcc: duplicate watch ID provided on "
                                                "the WatchStream"})
            return
        watcher = Watcher(watch_id=watch_id, key=create["key"], range_end=create["range_end"],
                          start_revision=create["start_revision"], prev_kv=create["prev_kv"],
                          filters=frozenset(create["filters"]),
                          progress_notify=create["progress_notify"], stream=self._stream)
        self._watchers[watch_id] = watcher
        self._stream.send({"header": header, "watch_id": watch_id, "created": True})
        hub.add(watcher)

    def _cancel(self, watch_id: int) -> None:
        watcher = self._watchers.pop(watch_id, None)
        if watcher is None:
            return
        self._member.hub.remove(watcher)
        self._stream.send({"header": self._member.header(self._member.hub.published_revision),
                           "watch_id": watch_id, "canceled": True})

    async def progress_loop(self) -> None:
        interval = self._member.progress_interval
        while True:
            await asyncio.sleep(interval)
            wanted = [w for w in self._watchers.values() if w.progress_notify]
            if wanted:
                self._member.hub.progress(wanted, only_idle=True)

    def close(self) -> None:
        for watcher in self._watchers.values():
            self._member.hub.remove(watcher)
        self._watchers.clear()


class _RequestReader:
    """Yields decoded WatchRequest objects as they arrive on the request body."""

    def __init__(self, request: web.Request) -> None:
        self._content = request.content
        self._buffer = ""
        self._ready: deque[str] = deque()
        self._eof = False
        self._utf8 = codecs.getincrementaldecoder("utf-8")()

    async def next(self) -> dict | None:
        while not self._ready:
            if self._eof:
                if self._buffer.strip():
                    codec.decode("WatchRequest", self._buffer)  # raises with etcd's wording
                    raise errors.invalid_argument("unexpected EOF")
                return None
            chunk = await self._content.readany()
            if not chunk:
                self._eof = True
                continue
            try:
                self._buffer += self._utf8.decode(chunk)
            except UnicodeDecodeError as exc:
                raise errors.invalid_argument("invalid character in watch request") from exc
            try:
                objects, self._buffer = stream_codec.split_objects(self._buffer)
            except errors.EtcdError:
                codec.decode("WatchRequest", self._buffer)  # raises with etcd's own wording
                raise
            self._ready.extend(objects)
        return codec.decode("WatchRequest", self._ready.popleft())
