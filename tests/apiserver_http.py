"""A raw HTTPS client for apiserver integration tests: exact codes, headers and bytes.

Standard library only, so what a test checks is what went over the wire, not what a
client library made of it. Non-2xx answers are returned, never raised. `watch` reads a
watch stream line by line until the server ends it (pass `timeoutSeconds`), so a test
never waits on a stream without a bound. `store_revision` reads the store's current
revision straight from its v3 JSON gateway, for "nothing was written" checks.
"""

from __future__ import annotations

import http.client
import json
import ssl
import time
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from tests import http as gateway

DEFAULT_TIMEOUT = 15.0
JSON = "application/json"


@dataclass
class Reply:
    code: int
    headers: Message
    raw: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")

    @property
    def json(self) -> Any:
        return json.loads(self.raw)

    def __repr__(self) -> str:  # what an assertion failure shows
        return f"Reply({self.code}, {self.content_type!r}, {self.raw[:500]!r})"


class Api:
    """Requests to one apiserver as one identity (a bearer token, a client certificate,
    or nobody); a fresh connection per request, as the tests are not about speed."""

    def __init__(self, url: str, ca: Path, token: str | None = None,
                 cert: tuple[Path, Path] | None = None) -> None:
        parts = urlsplit(url)
        self.url = url
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 443
        self.token = token
        self.ssl = ssl.create_default_context(cafile=str(ca))
        if cert is not None:
            self.ssl.load_cert_chain(str(cert[0]), str(cert[1]))

    def as_token(self, token: str | None) -> Api:
        other = Api.__new__(Api)
        other.__dict__.update(self.__dict__)
        other.token = token
        return other

    def _connection(self, timeout: float) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(self.host, self.port, context=self.ssl,
                                           timeout=timeout)

    def _headers(self, content_type: str | None, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {"Accept": JSON}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        if content_type is not None:
            headers["Content-Type"] = content_type
        headers.update(extra or {})
        return headers

    def request(self, method: str, path: str, body: Any = None, *,
                content_type: str | None = JSON, headers: dict[str, str] | None = None,
                timeout: float = DEFAULT_TIMEOUT) -> Reply:
        """`body`: bytes as they are, anything else as JSON; None sends no body."""
        data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
        conn = self._connection(timeout)
        try:
            conn.request(method, path, body=data,
                         headers=self._headers(content_type if data is not None else None,
                                               headers))
            resp = conn.getresponse()
            return Reply(resp.status, resp.headers, resp.read())
        finally:
            conn.close()

    def get(self, path: str, **kw: Any) -> Reply:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any, **kw: Any) -> Reply:
        return self.request("POST", path, body, **kw)

    def put(self, path: str, body: Any, **kw: Any) -> Reply:
        return self.request("PUT", path, body, **kw)

    def patch(self, path: str, body: Any, patch_type: str = "merge", **kw: Any) -> Reply:
        kinds = {"merge": "application/merge-patch+json", "json": "application/json-patch+json",
                 "strategic": "application/strategic-merge-patch+json"}
        return self.request("PATCH", path, body, content_type=kinds[patch_type], **kw)

    def delete(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return self.request("DELETE", path, body, **kw)

    def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        """The parsed body of a request that must succeed."""
        reply = self.request(method, path, body, **kw)
        assert 200 <= reply.code < 300, f"{method} {path}: {reply!r}"
        return reply.json

    def watch(self, path: str, timeout: float = DEFAULT_TIMEOUT,
              headers: dict[str, str] | None = None) -> tuple[Reply, list[dict]]:
        """Open a watch and read events until the server ends the stream.

        `path` must carry `timeoutSeconds`; `timeout` only bounds each socket read.
        An error answer (not 200) is returned with no events.
        """
        assert "timeoutSeconds=" in path, "a watch in a test needs timeoutSeconds"
        conn = self._connection(timeout)
        try:
            conn.request("GET", path, headers=self._headers(None, headers))
            resp = conn.getresponse()
            if resp.status != 200:
                return Reply(resp.status, resp.headers, resp.read()), []
            events = []
            while line := resp.readline():
                if line.strip():
                    events.append(json.loads(line))
            return Reply(resp.status, resp.headers, b""), events
        finally:
            conn.close()


def q(text: str) -> str:
    """A query-parameter value, percent-encoded (selectors have spaces, `!`, `=`)."""
    return quote(text, safe="")


def store_revision(endpoint: str) -> int:
    """The store's current revision, read from its v3 JSON gateway."""
    code, _, body = gateway.post_json(endpoint, "/v3/kv/range",
                                      {"key": gateway.b64("/registry/"), "count_only": True,
                                       "range_end": gateway.b64("/registry0")})
    assert code == 200, body
    return int(json.loads(body)["header"]["revision"])


def compact_store(endpoint: str, revision: int) -> None:
    """Compact the store's history up to `revision` (physical: wait until done)."""
    code, _, body = gateway.post_json(endpoint, "/v3/kv/compaction",
                                      {"revision": revision, "physical": True})
    assert code == 200, body


def wait_for(predicate: Any, timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll `predicate` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout:.0f} s")
        time.sleep(0.1)


def namespace_body(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def deployment(name: str, replicas: int = 1, labels: dict | None = None) -> dict:
    app = {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": labels or dict(app)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": app},
            "template": {
                "metadata": {"labels": app},
                "spec": {"containers": [{"name": "main", "image": "busybox",
                                         "ports": [{"containerPort": 8080}]}]},
            },
        },
    }


def pod(name: str, node: str | None = None, labels: dict | None = None) -> dict:
    spec: dict = {"containers": [{"name": "main", "image": "busybox"}]}
    if node is not None:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels or {}}, "spec": spec}


def configmap(name: str, data: dict | None = None, labels: dict | None = None) -> dict:
    meta: dict = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data or {}}
