"""One watch request's events, read from the chunked stream of JSON lines.

Kubernetes frames a watch as one JSON object per line, `{"type": ..., "object": ...}`,
over chunked HTTP; a line may span chunks and a chunk may hold several lines. Types are
ADDED, MODIFIED, DELETED, BOOKMARK (only a resourceVersion) and ERROR (a Status, e.g.
410 Expired when the requested version is gone).

`WatchStream` opens lazily, on the first event asked for, through the opener the client
gives it (which fails over like a GET). Once open it stays on its server: a break (the
apiserver died, or no byte within the idle timeout) raises ApiUnavailable, an ERROR
event raises its ApiStatusError, and a clean end (the server's timeoutSeconds) ends the
iteration; the caller watches again from the last resourceVersion it saw.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import aiohttp
import orjson

from apiserver import client_policy
from apiserver.client_policy import ApiStatusError, ApiUnavailable

MAX_EVENT_BYTES = 16 * 1024 * 1024  # one watch event line (objects are at most ~3 MiB)

Event = tuple[str, dict[str, Any]]


class WatchStream:
    """An async iterator of (type, object); use it in `async with` to close it early."""

    def __init__(self, open_stream: Callable[[], Awaitable[aiohttp.ClientResponse]],
                 path: str) -> None:
        self._open = open_stream
        self.path = path
        self.server: str | None = None  # where the stream is open, once it is
        self._events: AsyncGenerator[Event, None] | None = None

    async def __aenter__(self) -> WatchStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __aiter__(self) -> WatchStream:
        return self

    async def __anext__(self) -> Event:
        if self._events is None:
            self._events = self._run()
        return await self._events.__anext__()

    async def aclose(self) -> None:
        if self._events is not None:
            await self._events.aclose()

    async def _run(self) -> AsyncGenerator[Event, None]:
        response = await self._open()
        self.server = str(response.url.origin())
        buffer = bytearray()
        try:
            async for chunk in response.content.iter_any():
                buffer += chunk
                while (end := buffer.find(b"\n")) >= 0:
                    line = bytes(buffer[:end])
                    del buffer[:end + 1]
                    if line.strip():
                        yield parse_event(line)
                if len(buffer) > MAX_EVENT_BYTES:
                    raise ApiUnavailable(f"watch {self.path}: an event over "
                                         f"{MAX_EVENT_BYTES} bytes", maybe_applied=False,
                                         causes=[self.server])
            if buffer.strip():
                yield parse_event(bytes(buffer))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise ApiUnavailable(f"watch {self.path}: the stream from {self.server} broke",
                                 maybe_applied=False,
                                 causes=[f"{self.server}: {type(exc).__name__}: {exc}"]) from exc
        finally:
            response.close()


def parse_event(line: bytes) -> Event:
    """One line: (type, object), or the ApiStatusError an ERROR event carries."""
    try:
        event = orjson.loads(line)
        kind, obj = event["type"], event["object"]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise ApiStatusError(500, "InvalidResponse", client_policy.status_body(
            500, "InvalidResponse", f"bad watch event: {line[:200]!r}")) from exc
    if kind == "ERROR":
        code = int(obj.get("code") or 500) if isinstance(obj, dict) else 500
        raise client_policy.error_from_reply(code, obj)
    return str(kind), obj
