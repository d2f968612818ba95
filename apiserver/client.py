"""The async Kubernetes API client every kubelite component uses (our client-go).

Objects are plain dicts; paths come from `apiserver.client_paths` (checked against the
registry). One client talks to several apiservers and fails over between them by the
rules in `apiserver.client_policy`: a request goes to the server that last answered;
on a connection error, 429, or 502/503/504 it goes to the next one after a short
back-off (honouring Retry-After), all within the call's `timeout`; a request that is not
safe to repeat (a create, a patch) goes again only if it certainly was not processed.
Servers that failed are probed on /readyz in the background and preferred again once
ready.

    async with ApiClient.from_kubeconfig("admin.kubeconfig") as api:
        cm = await api.create({"apiVersion": "v1", "kind": "ConfigMap",
                               "metadata": {"name": "c", "namespace": "default"}})
        items, rv = await api.list(api.path("v1", "configmaps", "default"))
        async with api.watch(api.path("v1", "configmaps", "default"), rv) as events:
            async for type_, obj in events:
                ...

Errors are `ApiStatusError(code, reason, status)` built from the server's Status; when
no server answered in time, `ApiUnavailable` (a subclass, code 503 or the last retryable
code, with `maybe_applied`). A watch raises `ApiStatusError` for an ERROR event (410
Expired: re-list) and `ApiUnavailable` when the stream breaks; it simply ends when the
server closes it (timeoutSeconds), and the caller watches again from the last version.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl as ssl_module
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import aiohttp
import orjson

from apiserver import client_paths, client_policy
from apiserver.auth import kubeconfig
from apiserver.client_policy import ApiStatusError, ApiUnavailable, Failure, ServerSet
from apiserver.client_watch import WatchStream

__all__ = ["ApiClient", "ApiStatusError", "ApiUnavailable", "ObjectList", "WatchStream"]

log = logging.getLogger(__name__)

PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
}
USER_AGENT = "kubelite/0.1.0 (python; aiohttp)"
DEFAULT_PAGE_SIZE = 500
MAX_PAGES = 100_000  # keeps pagination visibly bounded; a list never gets near it
MAX_ATTEMPTS = 10_000  # the deadline ends every call long before this
BOOKMARK_IDLE_TIMEOUT = 90.0  # our apiserver sends a bookmark after 30 s without events
PROBE_INTERVAL = 1.0
PROBE_TIMEOUT = 1.0


class Fenced(RuntimeError):
    """A write refused before it was sent: the caller's leadership term is (maybe) over
    (controllers.leader_election's FencedClient raises it)."""


class ObjectList(NamedTuple):
    """A list answer: every page's items, and the resourceVersion of the first page's
    snapshot (to watch from)."""

    items: list[dict[str, Any]]
    resource_version: str


class _Reply(NamedTuple):
    code: int
    headers: Mapping[str, str]
    raw: bytes
    stream: aiohttp.ClientResponse | None  # an open 2xx response, for watches


class _AttemptFailed(Exception):
    def __init__(self, cause: str, failure: Failure) -> None:
        super().__init__(cause)
        self.cause = cause
        self.failure = failure


class ApiClient:
    """A Kubernetes API client over one or more apiservers (https:// or http:// URLs).

    `ssl` is the TLS context (None: the system's CAs); `client_cert` a (cert, key) pair
    of PEM paths loaded into it. `timeout` bounds every call including its failover,
    `connect_timeout` one connect; a read's single attempt gets `attempt_timeout`
    (default timeout / 2) so that a hung server leaves time to ask another.
    """

    def __init__(
        self,
        servers: Sequence[str],
        *,
        ssl: ssl_module.SSLContext | bool | None = None,
        token: str | None = None,
        client_cert: tuple[str | Path, str | Path] | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 2.0,
        attempt_timeout: float | None = None,
        namespace: str = "default",
        user_agent: str = USER_AGENT,
    ) -> None:
        self.servers = ServerSet(servers)
        if client_cert is not None:
            if not isinstance(ssl, ssl_module.SSLContext):
                ssl = ssl_module.create_default_context()
            ssl.load_cert_chain(str(client_cert[0]), str(client_cert[1]))
        self._ssl: ssl_module.SSLContext | bool = True if ssl is None else ssl
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.attempt_timeout = attempt_timeout or timeout / 2
        self.namespace = namespace
        self._headers = {"Accept": "application/json", "User-Agent": user_agent}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._session: aiohttp.ClientSession | None = None
        self._probe: asyncio.Task[None] | None = None
        self._closed = False

    @classmethod
    def from_kubeconfig(cls, path: str | Path, *, context: str | None = None,
                        **options: Any) -> ApiClient:
        """Every apiserver the kubeconfig lists (server, then the kubelite extension's),
        its CA, token or client certificate, and its namespace."""
        config = kubeconfig.load_kubeconfig(path, context)
        return cls(config.servers, ssl=kubeconfig.ssl_context(config), token=config.token,
                   namespace=config.namespace, **options)

    # --- life cycle -----------------------------------------------------------------

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        self._closed = True
        if self._probe is not None:
            self._probe.cancel()
            await asyncio.gather(self._probe, return_exceptions=True)
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def _http(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("the API client is closed")
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=0, ssl=self._ssl, keepalive_timeout=30)
            self._session = aiohttp.ClientSession(connector=connector, headers=self._headers)
        return self._session

    @property
    def current_server(self) -> str:
        """The apiserver the next request goes to first."""
        return self.servers.order()[0]

    # --- paths ----------------------------------------------------------------------

    path = staticmethod(client_paths.resource_path)
    object_path = staticmethod(client_paths.object_path)

    # --- verbs ----------------------------------------------------------------------

    async def get(self, path: str, *, timeout: float | None = None) -> dict[str, Any]:
        return await self.request("GET", path, timeout=timeout)

    async def list(
        self,
        path: str,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        timeout: float | None = None,
    ) -> ObjectList:
        """Every item of a collection, following `continue` tokens page by page.

        All pages come from one snapshot (the store revision of the first page); if that
        snapshot is compacted away mid-way (410), the list starts over unpaginated, once.
        """
        items: list[dict[str, Any]] = []
        resource_version = ""
        token: str | None = None
        limit: int | None = page_size or None
        restarted = False
        for _ in range(MAX_PAGES):
            query = {"labelSelector": label_selector, "fieldSelector": field_selector,
                     "limit": limit, "continue": token}
            try:
                page = await self.get(client_paths.with_query(path, query), timeout=timeout)
            except ApiStatusError as err:
                if err.code != 410 or token is None or restarted:
                    raise
                items, token, limit, restarted = [], None, None, True
                continue
            items.extend(page.get("items") or [])
            meta = page.get("metadata") or {}
            if token is None:
                resource_version = str(meta.get("resourceVersion") or "")
            token = meta.get("continue") or None
            if token is None:
                return ObjectList(items, resource_version)
        raise RuntimeError(f"{path}: more than {MAX_PAGES} pages")

    async def create(self, obj: Mapping[str, Any], *, namespace: str | None = None,
                     path: str | None = None, timeout: float | None = None) -> dict[str, Any]:
        """POST `obj` to its collection (namespace from the object, else `namespace`,
        else the client's). Not resent once it may have reached a server."""
        target = path or client_paths.object_path(
            obj, namespace=namespace or self.namespace, collection=True)
        return await self.request("POST", target, body=obj, timeout=timeout)

    async def update(self, obj: Mapping[str, Any], *, subresource: str | None = None,
                     timeout: float | None = None) -> dict[str, Any]:
        """PUT `obj` (with metadata.resourceVersion: refused with 409 if stale)."""
        target = client_paths.object_path(obj, subresource, namespace=self.namespace)
        return await self.request("PUT", target, body=obj, timeout=timeout)

    async def update_status(self, obj: Mapping[str, Any], *,
                            timeout: float | None = None) -> dict[str, Any]:
        return await self.update(obj, subresource="status", timeout=timeout)

    async def patch(self, path: str, patch: Any, *, type: str = "merge",
                    timeout: float | None = None) -> dict[str, Any]:
        """PATCH with a merge (dict), JSON (list of operations) or strategic patch."""
        if type not in PATCH_TYPES:
            raise ValueError(f"patch type {type!r} is not one of {sorted(PATCH_TYPES)}")
        return await self.request("PATCH", path, body=patch, content_type=PATCH_TYPES[type],
                                  timeout=timeout)

    async def delete(self, path: str, options: Mapping[str, Any] | None = None, *,
                     timeout: float | None = None) -> dict[str, Any]:
        """DELETE with DeleteOptions (gracePeriodSeconds, preconditions,
        propagationPolicy); answers the deleted object, or the object marked for
        deletion, or a Status."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1", **options} if options else None
        return await self.request("DELETE", path, body=body, timeout=timeout)

    async def bind(self, namespace: str, pod: str, node: str, *,
                   timeout: float | None = None) -> dict[str, Any]:
        """Assign a pod to a node through pods/binding (409 if it already has one)."""
        binding = {"apiVersion": "v1", "kind": "Binding",
                   "metadata": {"name": pod, "namespace": namespace},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
        target = client_paths.resource_path("v1", "pods", namespace, pod, "binding")
        return await self.request("POST", target, body=binding, timeout=timeout)

    def watch(
        self,
        path: str,
        resource_version: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        allow_bookmarks: bool = True,
        timeout_seconds: int | None = None,
        idle_timeout: float | None = None,
    ) -> WatchStream:
        """(type, object) events of a collection after `resource_version` (none: the
        current objects first, as ADDED). Iterate it, inside `async with` to close it
        early. `idle_timeout` (default 90 s with bookmarks, none without) treats a
        silent stream as broken."""
        query = {"watch": "true", "resourceVersion": resource_version or None,
                 "labelSelector": label_selector, "fieldSelector": field_selector,
                 "allowWatchBookmarks": True if allow_bookmarks else None,
                 "timeoutSeconds": timeout_seconds}
        if idle_timeout is None and allow_bookmarks:
            idle_timeout = BOOKMARK_IDLE_TIMEOUT
        target = client_paths.with_query(path, query)

        async def open_stream() -> aiohttp.ClientResponse:
            reply = await self._exchange("GET", target, data=None,
                                         content_type="application/json", safe=True,
                                         timeout=self.timeout, stream=True,
                                         stream_idle=idle_timeout)
            assert reply.stream is not None
            return reply.stream

        return WatchStream(open_stream, target)

    # --- requests with failover -----------------------------------------------------

    async def request(self, method: str, path: str, *, body: Any = None,
                      content_type: str = "application/json",
                      timeout: float | None = None) -> dict[str, Any]:
        """One API call with failover; the decoded 2xx answer or an ApiStatusError."""
        data = orjson.dumps(body) if body is not None else None
        safe = client_policy.safe_to_repeat(method, body if isinstance(body, Mapping) else None)
        reply = await self._exchange(method, path, data=data, content_type=content_type,
                                     safe=safe, timeout=timeout or self.timeout)
        try:
            decoded = orjson.loads(reply.raw) if reply.raw else {}
        except orjson.JSONDecodeError as exc:
            raise ApiStatusError(reply.code, "InvalidResponse", client_policy.status_body(
                reply.code, "InvalidResponse", f"unparsable answer: {reply.raw[:200]!r}")) \
                from exc
        if not isinstance(decoded, dict):
            raise ApiStatusError(reply.code, "InvalidResponse", client_policy.status_body(
                reply.code, "InvalidResponse", "the answer is not a JSON object"))
        return decoded

    async def _exchange(self, method: str, path: str, *, data: bytes | None,
                        content_type: str, safe: bool, timeout: float,
                        stream_idle: float | None = None, stream: bool = False) -> _Reply:
        """Send until some server answers; raise its error, or ApiUnavailable."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        order = self.servers.order()
        causes: list[str] = []
        last: ApiStatusError | None = None
        unknown = False  # some attempt may have been processed (only safe ones go on)
        headers = {"Content-Type": content_type} if data is not None else {}
        for attempt in range(MAX_ATTEMPTS):
            server = order[attempt % len(order)]
            remaining = deadline - loop.time()
            if remaining <= 0 and attempt > 0:
                break
            budget = min(remaining, self.attempt_timeout) if safe else remaining
            wait = client_policy.backoff_delay(attempt) * random.uniform(0.8, 1.2)
            try:
                reply = await self._attempt(server, method, path, data, headers, budget,
                                            stream, stream_idle)
            except _AttemptFailed as failed:
                log.debug("%s %s: %s", method, path, failed.cause)
                causes.append(failed.cause)
                unknown = unknown or failed.failure is Failure.UNKNOWN
                self._suspect(server)
                if not client_policy.may_retry(failed.failure, safe):
                    raise ApiUnavailable(f"{method} {path}: outcome unknown", maybe_applied=True,
                                         causes=causes) from failed
            else:
                if 200 <= reply.code < 300:
                    self.servers.answered(server)
                    return reply
                parsed = _parse_json(reply.raw)
                err = client_policy.error_from_reply(reply.code, parsed, reply.raw)
                delay = client_policy.retry_after(reply.headers.get("Retry-After"), err.status)
                failure = client_policy.classify_reply(reply.code, delay)
                if failure is Failure.ANSWER:
                    self.servers.answered(server)
                    raise err
                causes.append(f"{server}: HTTP {reply.code} {err.reason}: {err.message}")
                log.debug("%s %s: %s", method, path, causes[-1])
                last = err
                unknown = unknown or failure is Failure.UNKNOWN
                if reply.code != 429:
                    self._suspect(server)
                if not client_policy.may_retry(failure, safe):
                    raise ApiUnavailable(f"{method} {path}: outcome unknown",
                                         maybe_applied=True, causes=causes, last=err)
                if delay is not None:
                    if delay > deadline - loop.time():
                        break
                    wait = max(wait, delay)
            wait = min(wait, deadline - loop.time())
            if wait <= 0:
                break
            await asyncio.sleep(wait)
        raise ApiUnavailable(f"{method} {path}: no apiserver answered within {timeout:g} s",
                             maybe_applied=unknown, causes=causes, last=last)

    async def _attempt(self, server: str, method: str, path: str, data: bytes | None,
                       headers: Mapping[str, str], budget: float, stream: bool,
                       stream_idle: float | None) -> _Reply:
        """One request to one server; `_AttemptFailed` when no answer came back."""
        timeout = aiohttp.ClientTimeout(
            total=None if stream else budget,
            sock_connect=min(budget, self.connect_timeout),
            sock_read=stream_idle if stream else None)
        response: aiohttp.ClientResponse | None = None
        try:
            async with asyncio.timeout(budget):
                response = await self._http().request(method, server + path, data=data,
                                                      headers=headers, timeout=timeout)
                if stream and 200 <= response.status < 300:
                    opened, response = response, None
                    return _Reply(opened.status, opened.headers, b"", opened)
                raw = await response.read()
                return _Reply(response.status, response.headers, raw, None)
        except aiohttp.ClientConnectorCertificateError as exc:
            # A certificate that does not verify is a configuration error: no retry fixes it.
            raise ApiUnavailable(f"{server}: TLS verification failed: {exc}",
                                 maybe_applied=False, causes=[_describe(server, exc)]) from exc
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise _AttemptFailed(_describe(server, exc), Failure.NOT_SENT) from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise _AttemptFailed(_describe(server, exc), Failure.UNKNOWN) from exc
        finally:
            if response is not None:
                response.release()

    # --- readiness probes -----------------------------------------------------------

    def _suspect(self, server: str) -> None:
        """`server` just failed: rank it last and probe /readyz until it recovers."""
        self.servers.failed(server)
        if self._closed or (self._probe is not None and not self._probe.done()):
            return
        self._probe = asyncio.get_running_loop().create_task(
            self._probe_suspects(), name="apiclient-readyz-probe")
        self._probe.add_done_callback(_log_crash)

    async def _probe_suspects(self) -> None:
        """Probe every failed server each PROBE_INTERVAL until none is left failed."""
        while not self._closed:
            suspects = self.servers.suspects()
            if not suspects:
                return
            results = await asyncio.gather(*(self._ready(s) for s in suspects))
            for server, ok in zip(suspects, results, strict=True):
                if ok and self.servers.ready[server] is False:
                    self.servers.probed(server, True)
            await asyncio.sleep(PROBE_INTERVAL)

    async def _ready(self, server: str) -> bool:
        try:
            timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT)
            async with self._http().get(server + "/readyz", timeout=timeout) as resp:
                return resp.status == 200 and (await resp.text()).strip() == "ok"
        except (aiohttp.ClientError, TimeoutError, OSError, RuntimeError):
            return False


def _parse_json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return None


def _describe(server: str | None, exc: BaseException) -> str:
    return f"{server}: {type(exc).__name__}: {exc}".rstrip(": ")


def _log_crash(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("task %s crashed", task.get_name(), exc_info=task.exception())

