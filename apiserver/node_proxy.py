"""The apiserver's way to a node agent: `pods/NAME/log` and `nodes/NAME/proxy/...`.

As Kubernetes does, the apiserver has already authenticated and authorized the caller
(for `pods/log` or `nodes/proxy`); it then finds the node's agent from the Node object
(its InternalIP and `status.daemonEndpoints.kubeletEndpoint.Port`) and relays the
agent's answer, streaming it (so `kubectl logs -f` follows a container for as long as the
caller keeps the connection).

Agents always serve HTTPS (a self-signed certificate unless given one). The apiserver
verifies it when started with `--kubelet-certificate-authority`, and presents
`--kubelet-client-certificate` so that agents started with a client CA accept it.
The pure parts (which container, which query reaches the agent) are functions.
"""

from __future__ import annotations

import logging
import ssl as ssl_module
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from aiohttp import web

from apiserver import status

log = logging.getLogger(__name__)

# Query parameters of `pods/log` and the values each accepts (Kubernetes' PodLogOptions).
LOG_BOOLEANS = ("follow", "previous", "timestamps", "insecureSkipTLSVerifyBackend")
LOG_INTEGERS = ("tailLines", "sinceSeconds", "limitBytes")
CONNECT_TIMEOUT = 5.0
CHUNK = 64 * 1024


def log_container(pod: Mapping[str, Any], requested: str) -> str:
    """The container whose log is asked for, or a 400 with Kubernetes' wording."""
    spec = pod.get("spec") or {}
    name = (pod.get("metadata") or {}).get("name", "")
    containers = [c.get("name", "") for c in spec.get("containers") or []]
    init = [c.get("name", "") for c in spec.get("initContainers") or []]
    if requested:
        if requested not in containers and requested not in init:
            raise status.bad_request(
                f"container {requested} is not valid for pod {name}")
        return requested
    if len(containers) == 1:
        return containers[0]
    choices = " ".join(containers)
    message = (f"a container name must be specified for pod {name}, "
               f"choose one of: [{choices}]")
    if init:
        message += f" or one of the init containers: [{' '.join(init)}]"
    raise status.bad_request(message)


def log_query(query: Mapping[str, str]) -> dict[str, str]:
    """The PodLogOptions the agent gets, validated as the apiserver validates them."""
    out: dict[str, str] = {}
    for key in LOG_BOOLEANS:
        if key in query:
            value = query[key]
            if value not in ("true", "false", "1", "0", "True", "False", ""):
                raise status.bad_request(f"{key}: invalid boolean value {value!r}")
            out[key] = "true" if value in ("true", "1", "True", "") else "false"
    for key in LOG_INTEGERS:
        if key in query:
            try:
                number = int(query[key])
            except ValueError:
                raise status.bad_request(f"{key}: invalid integer {query[key]!r}") from None
            if number < 0 or (number == 0 and key != "tailLines"):
                raise status.bad_request(f"{key}: must be greater than "
                                         f"{'or equal to ' if key == 'tailLines' else ''}0")
            out[key] = str(number)
    if "sinceTime" in query:
        if "sinceSeconds" in out:
            raise status.bad_request("at most one of `sinceTime` or `sinceSeconds` may be "
                                     "specified")
        out["sinceTime"] = query["sinceTime"]
    return out


def agent_endpoint(node: Mapping[str, Any]) -> tuple[str, int]:
    """Where a node's agent listens: its InternalIP (else any address) and daemon port."""
    node_status = node.get("status") or {}
    addresses = node_status.get("addresses") or []
    chosen = next((a.get("address") for a in addresses if a.get("type") == "InternalIP"),
                  None)
    if chosen is None:
        chosen = next((a.get("address") for a in addresses
                       if a.get("type") in ("ExternalIP", "Hostname")), None)
    port = (((node_status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {})
            .get("Port"))
    name = (node.get("metadata") or {}).get("name", "")
    if not chosen or not port:
        raise status.service_unavailable(
            f"node {name} has no agent address yet (no InternalIP or daemon port in its "
            f"status)")
    return str(chosen), int(port)


class AgentDialer:
    """How the apiserver reaches agents: its TLS settings and one HTTP session."""

    def __init__(self, *, ca_file: str | None = None, client_cert: str | None = None,
                 client_key: str | None = None) -> None:
        context = ssl_module.create_default_context(cafile=ca_file)
        if ca_file is None:
            # Without --kubelet-certificate-authority Kubernetes does not verify agents.
            context.check_hostname = False
            context.verify_mode = ssl_module.CERT_NONE
        else:
            context.check_hostname = False  # agents' certificates name their node IPs
        if client_cert and client_key:
            context.load_cert_chain(client_cert, client_key)
        self._ssl = context
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self._ssl, limit=0)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def relay(self, request: web.Request, node: Mapping[str, Any], path: str,
                    query: Mapping[str, str]) -> web.StreamResponse:
        """GET `path` on the node's agent and stream its answer back to the caller."""
        host, port = agent_endpoint(node)
        url = f"https://{_host(host)}:{port}/{path.lstrip('/')}"
        if query:
            url += "?" + urlencode(query)
        name = (node.get("metadata") or {}).get("name", "")
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT)
        try:
            upstream = await self._http().get(url, timeout=timeout)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise status.service_unavailable(
                f"cannot reach the agent of node {name} at {host}:{port}: "
                f"{exc or type(exc).__name__}") from exc
        async with upstream:
            if upstream.status >= 400 and upstream.content_type == "application/json":
                body = await upstream.read()
                return web.Response(status=upstream.status, body=body,
                                    content_type="application/json")
            response = web.StreamResponse(status=upstream.status)
            response.content_type = upstream.content_type or "text/plain"
            await response.prepare(request)
            try:
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
            except (aiohttp.ClientError, ConnectionResetError) as exc:
                log.info("agent stream from node %s ended: %s", name, exc)
            await response.write_eof()
            return response


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def container_log_path(namespace: str, pod: str, container: str) -> str:
    return "containerLogs/" + "/".join(quote(p, safe="") for p in (namespace, pod, container))
