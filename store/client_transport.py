"""HTTP to a list of gateway endpoints, with failover that never repeats a write blindly.

Every call is a POST of one JSON body. When an endpoint fails, the call moves on to the
next one after a short back-off, for at most the client's `timeout` in total. Whether it
may move on depends on what the failure says about the request:

- connect refused or timed out: nothing reached a member, so any call may go elsewhere;
- the connection broke or the reply timed out after the request was sent, or a member
  answered "timed out" / 503: it may have been applied. A read is simply asked again
  elsewhere; a write raises `StoreUnavailable(maybe_applied=True)` instead, because
  sending a put twice can overwrite a write that came in between, and a txn's guards were
  checked against a state that is gone;
- a 503 whose message says the member refused before proposing (no leader, too many
  requests): certainly not applied, any call may go elsewhere;
- any other error reply is the answer, raised as `EtcdError` at once.

The endpoint that answered last is tried first next time, so a client stays on one
healthy member (keep-alive connection, warm watch cache) instead of spreading out.
"""

from __future__ import annotations

import asyncio
import enum
import ssl as ssl_module
from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson

from store import client_codec, errors
from store.client_types import StoreUnavailable

_HEADERS = {"Content-Type": "application/json"}

# 503 replies that etcd sends before proposing anything: safe to send elsewhere.
NOT_APPLIED_MESSAGES = frozenset({
    "etcdserver: no leader",
    "etcdserver: too many requests",
    "etcdserver: not capable",
    # member add/remove while a peer was not connected for the last 5 s (strict reconfig)
    "etcdserver: unhealthy cluster",
})
# Non-503 replies that mean "gave up waiting", not "refused": outcome unknown.
_TIMEOUT_MESSAGES = frozenset({"context deadline exceeded"})
# The deadline ends every call long before this; it only keeps the loop visibly bounded.
_MAX_ATTEMPTS = 10_000


class Failure(enum.Enum):
    """What a failed attempt says about whether the request was processed."""

    ANSWER = "answer"            # the server decided: raise its error
    NOT_APPLIED = "not_applied"  # certainly not processed: anyone may retry elsewhere
    UNKNOWN = "unknown"          # perhaps processed: only reads may retry elsewhere


def classify_reply(status: int, error: errors.EtcdError) -> Failure:
    """Pure: how to treat an error reply. 503 is etcd's Unavailable (code 14)."""
    if status == 503 or error.code == errors.GrpcCode.UNAVAILABLE:
        if error.message in NOT_APPLIED_MESSAGES:
            return Failure.NOT_APPLIED
        return Failure.UNKNOWN
    if error.code == errors.GrpcCode.DEADLINE_EXCEEDED or error.message in _TIMEOUT_MESSAGES:
        return Failure.UNKNOWN
    return Failure.ANSWER


def backoff_delay(attempt: int) -> float:
    """Short first (the next endpoint is probably fine), growing while all are down."""
    return min(0.025 * 2.0 ** min(attempt, 6), 1.0)


class _AttemptFailed(Exception):
    def __init__(self, cause: str, failure: Failure) -> None:
        super().__init__(cause)
        self.cause = cause
        self.failure = failure


class Transport:
    """One aiohttp session (keep-alive, no pool limit: watches hold their connections)."""

    def __init__(
        self,
        endpoints: list[str],
        *,
        timeout: float,
        connect_timeout: float,
        read_attempt_timeout: float,
        ssl: ssl_module.SSLContext | bool | None,
    ) -> None:
        if not endpoints:
            raise ValueError("at least one endpoint is required")
        self.endpoints = [endpoint.rstrip("/") for endpoint in endpoints]
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.read_attempt_timeout = read_attempt_timeout
        self._ssl = True if ssl is None else ssl
        self._preferred = 0
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    # --- session --------------------------------------------------------------------

    def session(self) -> aiohttp.ClientSession:
        """Created on first use, because aiohttp wants a running event loop for it."""
        if self._closed:
            raise RuntimeError("the store client is closed")
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=0, ssl=self._ssl, keepalive_timeout=30)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def close(self) -> None:
        """Final: a watch still open ends instead of reconnecting on a new session."""
        self._closed = True
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    # --- endpoint choice ------------------------------------------------------------

    def rotation(self) -> list[str]:
        """Endpoints in the order to try them: the one that last worked first."""
        first = self._preferred
        return self.endpoints[first:] + self.endpoints[:first]

    def mark_good(self, endpoint: str) -> None:
        if endpoint in self.endpoints:
            self._preferred = self.endpoints.index(endpoint)

    def loop_time(self) -> float:
        return asyncio.get_running_loop().time()

    # --- unary calls ----------------------------------------------------------------

    async def call(
        self,
        path: str,
        body: Mapping[str, Any],
        *,
        read_only: bool,
        endpoint: str | None = None,
    ) -> dict[str, Any]:
        """POST `body` to `path`; fail over as the module docstring says.

        With `endpoint`, exactly that member is asked, once (status of one member).
        """
        data = client_codec.dumps(body)
        candidates = [endpoint.rstrip("/")] if endpoint else self.rotation()
        deadline = self.loop_time() + self.timeout
        causes: list[str] = []
        for attempt in range(_MAX_ATTEMPTS):
            target = candidates[attempt % len(candidates)]
            remaining = deadline - self.loop_time()
            if remaining <= 0 and attempt > 0:
                break
            budget = min(remaining, self.read_attempt_timeout) if read_only else remaining
            try:
                reply = await self._attempt(target, path, data, budget)
            except _AttemptFailed as failed:
                causes.append(failed.cause)
                if failed.failure is Failure.UNKNOWN and not read_only:
                    raise StoreUnavailable(
                        f"{path}: outcome unknown", maybe_applied=True, causes=causes
                    ) from failed
            else:
                if endpoint is None:
                    self.mark_good(target)
                return reply
            delay = min(backoff_delay(attempt), deadline - self.loop_time())
            if endpoint is not None or delay <= 0:
                break
            await asyncio.sleep(delay)
        raise StoreUnavailable(f"{path}: no endpoint answered", causes=causes)

    async def _attempt(
        self, endpoint: str, path: str, data: bytes, budget: float
    ) -> dict[str, Any]:
        """One POST; raises `_AttemptFailed` when another endpoint might do better."""
        status, raw = await self._post(endpoint, path, data, budget)
        if status == 200:
            return _parse_reply(raw)
        error = client_codec.decode_error(status, raw)
        failure = classify_reply(status, error)
        if failure is Failure.ANSWER:
            raise error
        raise _AttemptFailed(f"{endpoint}: HTTP {status} {error.message}", failure)

    async def _post(self, endpoint: str, path: str, data: bytes, budget: float) -> tuple[int, bytes]:
        timeout = aiohttp.ClientTimeout(total=budget, sock_connect=min(budget, self.connect_timeout))
        try:
            async with self.session().post(
                endpoint + path, data=data, headers=_HEADERS, timeout=timeout
            ) as resp:
                return resp.status, await resp.read()
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise _AttemptFailed(_describe(endpoint, exc), Failure.NOT_APPLIED) from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise _AttemptFailed(_describe(endpoint, exc), Failure.UNKNOWN) from exc

    # --- streams --------------------------------------------------------------------

    async def open_stream(
        self, endpoint: str, path: str, body: Mapping[str, Any], headers: Mapping[str, str]
    ) -> aiohttp.ClientResponse:
        """POST and return the open response once its headers arrived (status 200).

        Raises `StoreUnavailable` if the member cannot be reached or answers 503, and the
        decoded `EtcdError` for any other error reply.
        """
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout)
        try:
            async with asyncio.timeout(self.read_attempt_timeout):
                resp = await self.session().post(
                    endpoint + path,
                    data=client_codec.dumps(body),
                    headers={**_HEADERS, **headers},
                    timeout=timeout,
                )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise StoreUnavailable(f"{path}: cannot open", causes=[_describe(endpoint, exc)]) from exc
        if resp.status == 200:
            return resp
        try:
            async with asyncio.timeout(self.read_attempt_timeout):
                raw = await resp.read()
        except (aiohttp.ClientError, TimeoutError, OSError):
            raw = b""
        finally:
            resp.close()
        error = client_codec.decode_error(resp.status, raw)
        if classify_reply(resp.status, error) is Failure.ANSWER:
            raise error
        raise StoreUnavailable(f"{path}: {error.message}", causes=[f"{endpoint}: {error.message}"])


def _parse_reply(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.EtcdError(f"unparsable reply: {raw[:200]!r}", errors.GrpcCode.UNKNOWN) from exc
    if not isinstance(body, dict):
        raise errors.EtcdError(f"unexpected reply: {raw[:200]!r}", errors.GrpcCode.UNKNOWN)
    return body


def _describe(endpoint: str, exc: BaseException) -> str:
    return f"{endpoint}: {type(exc).__name__}: {exc}".rstrip(": ")
