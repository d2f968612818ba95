"""The agent's own HTTPS port (10250 by default): what the apiserver asks a node for.

- `GET /healthz`: 200 "ok" while the agent runs (no authentication, like the kubelet's).
- `GET /containerLogs/NAMESPACE/POD/CONTAINER`: a container's log with the query of
  Kubernetes' PodLogOptions (follow, tailLines, previous, timestamps, sinceSeconds,
  sinceTime, limitBytes); following streams until the container ends or the caller
  leaves. The apiserver proxies `pods/NAME/log` here.
- `GET /stats/summary`: node and pod usage in the Summary API's shape (`kubelite top`).
- `GET /pods`: the pods this agent runs, as a PodList.

It always speaks TLS: with the certificate it is given, or a self-signed one made at
start (as the kubelet does). Given a client CA, it requires a client certificate signed
by it for everything but /healthz, so only the apiserver (or another holder of a
cluster certificate) can read logs.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from agents import container_logs

Obj = dict[str, Any]
LOG_TAIL_CHUNK = 64 * 1024


class AgentApi:
    """What the server reads from the rest of the agent."""

    def __init__(self, *, find_pod: Callable[[str, str], Obj | None],
                 pods: Callable[[], list[Obj]],
                 log_location: Callable[[Obj, str, bool], tuple[Path, int] | None],
                 container_running: Callable[[Obj, str], bool],
                 summary: Callable[[], Awaitable[Obj]]) -> None:
        self.find_pod = find_pod
        self.pods = pods
        self.log_location = log_location
        self.container_running = container_running
        self.summary = summary


def _error(code: int, reason: str, message: str) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}
    return web.Response(status=code, body=orjson.dumps(body),
                        content_type="application/json")


def _since(query: Any) -> float | None:
    if "sinceSeconds" in query:
        return dt.datetime.now(dt.UTC).timestamp() - int(query["sinceSeconds"])
    if "sinceTime" in query:
        text = query["sinceTime"].replace("Z", "+00:00")
        return dt.datetime.fromisoformat(text).timestamp()
    return None


def build_app(api: AgentApi) -> web.Application:
    async def healthz(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def pods(_request: web.Request) -> web.Response:
        body = {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": api.pods()}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def summary(_request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(await api.summary()),
                            content_type="application/json")

    async def container_log(request: web.Request) -> web.StreamResponse:
        namespace = request.match_info["namespace"]
        name = request.match_info["pod"]
        container = request.match_info["container"]
        query = request.query
        pod = api.find_pod(namespace, name)
        if pod is None:
            return _error(404, "NotFound", f"pod {namespace}/{name} is not on this node")
        previous = query.get("previous") == "true"
        location = api.log_location(pod, container, previous)
        if location is None:
            what = "previous terminated" if previous else "current"
            return _error(400, "BadRequest",
                          f'{what} container "{container}" in pod "{name}" not found')
        log_dir, attempt = location
        try:
            tail = int(query["tailLines"]) if "tailLines" in query else None
            limit = int(query["limitBytes"]) if "limitBytes" in query else None
            since = _since(query)
        except ValueError as exc:
            return _error(400, "BadRequest", f"invalid log options: {exc}")
        timestamps = query.get("timestamps") == "true"
        follow = query.get("follow") == "true" and not previous
        if not follow:
            body = container_logs.read_logs(log_dir, attempt, tail_lines=tail,
                                            since_time=since, timestamps=timestamps,
                                            limit_bytes=limit)
            return web.Response(body=body, content_type="text/plain")
        response = web.StreamResponse()
        response.content_type = "text/plain"
        response.enable_chunked_encoding()
        await response.prepare(request)
        sent = 0
        async for chunk in container_logs.follow_logs(
                log_dir, attempt, tail_lines=tail, since_time=since, timestamps=timestamps,
                stop=lambda: not api.container_running(pod, container)):
            if limit is not None:
                chunk = chunk[:max(0, limit - sent)]
            if chunk:
                await response.write(chunk)
                sent += len(chunk)
            if limit is not None and sent >= limit:
                break
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/pods", pods)
    app.router.add_get("/stats/summary", summary)
    app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", container_log)
    return app


def ssl_context(*, cert_file: str | None, key_file: str | None, client_ca: str | None,
                node_name: str, addresses: list[str], directory: Path) -> ssl.SSLContext:
    """The serving context: the given certificate, else a self-signed one kept in
    `directory`, requiring client certificates when a client CA is given."""
    if not (cert_file and key_file):
        cert_file, key_file = _self_signed(directory, node_name, addresses)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    if client_ca:
        context.load_verify_locations(client_ca)
        context.verify_mode = ssl.CERT_OPTIONAL  # /healthz stays open; see middleware
    return context


def client_cert_middleware(required: bool) -> Any:
    @web.middleware
    async def check(request: web.Request, handler: Any) -> web.StreamResponse:
        if required and request.path != "/healthz":
            transport = request.transport
            peer = transport.get_extra_info("peercert") if transport else None
            if not peer:
                return _error(401, "Unauthorized",
                              "a client certificate signed by the cluster CA is required")
        return await handler(request)

    return check


def _self_signed(directory: Path, node_name: str, addresses: list[str]) -> tuple[str, str]:
    from apiserver.auth import pki

    cert_path = directory / "agent.crt"
    key_path = directory / "agent.key"
    hosts = [node_name, "localhost", "127.0.0.1", *addresses]
    if cert_path.exists() and key_path.exists():
        cert = pki.load_cert(cert_path)
        if pki.covers(cert, hosts) and pki.expires_in(cert) > dt.timedelta(days=30):
            return str(cert_path), str(key_path)
    directory.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = pki.create_ca(f"{node_name}-ca@{int(dt.datetime.now().timestamp())}")
    cert, key = pki.issue_serving_cert(ca_cert, ca_key, [h for h in hosts if _valid_host(h)],
                                       common_name=node_name)
    pki.write_pem(cert_path, pki.cert_pem(cert) + pki.cert_pem(ca_cert))
    pki.write_pem(key_path, pki.key_pem(key), private=True)
    return str(cert_path), str(key_path)


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return bool(host)
