"""Running one probe: an HTTP GET, a TCP connect, or a command in the container (I/O).

Each handler behaves as the kubelet's (pkg/probe/{http,tcp,exec}) where a user can see
it, in the outcome and in the words of the `Unhealthy` event:

- httpGet: GET `scheme://host:port/path` (host defaults to the pod IP), with the
  probe's headers, `User-Agent: kube-probe/1.32` and `Accept: */*` unless given, and
  TLS without certificate checks. 200 <= status < 400 passes. Redirects are followed
  on the same host name, at most 10; a redirect to another host is not followed and
  passes with a warning (`Probe terminated redirects`). At most 10 KiB of body is read.
- tcpSocket: a connection that opens within the timeout passes; it is closed at once.
- exec: `exec_fn(argv, timeout)` runs the command in the container and returns its exit
  code and output; exit 0 passes, a timeout fails with `command "..." timed out`.

Failures carry Go's error text (`dial tcp 10.0.0.5:8080: connect: connection refused`),
so `kubectl describe` reads as it would on a real node. `ProbeResult.message` is the
whole event message (`Readiness probe failed: ...`), ready to record.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
from yarl import URL

from agents.probes import ProbeSpec

USER_AGENT = "kube-probe/1.32"
MAX_BODY = 10 * 1024
MAX_REDIRECTS = 10
_REDIRECTS = frozenset({301, 302, 303, 307, 308})

ExecFn = Callable[[list[str], float], Awaitable[tuple[int, bytes]]]


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    message: str = ""       # the event message for a failure or a warning, else ""
    warning: bool = False   # passed, but the kubelet would record a ProbeWarning event


async def run_probe(spec: ProbeSpec, *, host: str, exec_fn: ExecFn) -> ProbeResult:
    """Run `spec` once against a pod whose IP is `host`."""
    if spec.handler == "httpGet":
        ok, output, warning = await _http(spec, host)
    elif spec.handler == "tcpSocket":
        ok, output = await _tcp(spec.host or host, spec.port, spec.timeout)
        warning = False
    elif spec.handler == "exec":
        try:
            ok, output = await _exec(spec, exec_fn)
        except Exception as err:  # the runtime could not run it: the kubelet's "errored"
            return ProbeResult(False, f"{spec.event_name} probe errored and resulted in "
                                      f"unknown state: {err}")
        warning = False
    else:
        return ProbeResult(False, f"{spec.event_name} probe errored: unsupported handler "
                                  f"{spec.handler!r}")
    if not ok:
        return ProbeResult(False, f"{spec.event_name} probe failed: {output}")
    if warning:
        return ProbeResult(True, f"{spec.event_name} probe warning: {output}", warning=True)
    return ProbeResult(True)


def join_host_port(host: str, port: int) -> str:
    """Go's net.JoinHostPort: brackets around IPv6 literals."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def probe_url(spec: ProbeSpec, host: str) -> str:
    path = spec.path if spec.path.startswith("/") else "/" + spec.path
    return f"{spec.scheme.lower()}://{join_host_port(spec.host or host, spec.port)}{path}"


def _request_headers(spec: ProbeSpec) -> dict[str, str]:
    headers = {name: value for name, value in spec.headers}
    lowered = {name.lower() for name in headers}
    if "user-agent" not in lowered:
        headers["User-Agent"] = USER_AGENT
    if "accept" not in lowered:
        headers["Accept"] = "*/*"
    return headers


async def _http(spec: ProbeSpec, host: str) -> tuple[bool, str, bool]:
    url = probe_url(spec, host)
    first_host = URL(url).host
    connector = aiohttp.TCPConnector(ssl=False, force_close=True)
    timeout = aiohttp.ClientTimeout(total=spec.timeout)
    target = URL(url, encoded=True)
    try:
        async with aiohttp.ClientSession(connector=connector, timeout=timeout,
                                         auto_decompress=False) as session:
            async with asyncio.timeout(spec.timeout):
                for _ in range(MAX_REDIRECTS + 1):
                    async with session.get(target, headers=_request_headers(spec),
                                           allow_redirects=False) as resp:
                        body = await _read_at_most(resp, MAX_BODY)
                        location = resp.headers.get("Location")
                        if resp.status in _REDIRECTS and location:
                            following = target.join(URL(location))
                            if following.host == first_host:
                                target = following
                                continue
                        return _judge(resp.status, body)
                return False, f'Get "{target}": stopped after {MAX_REDIRECTS} redirects', False
    except TimeoutError:
        return False, (f'Get "{url}": context deadline exceeded '
                       "(Client.Timeout exceeded while awaiting headers)"), False
    except aiohttp.ClientConnectorError as err:
        return False, f'Get "{url}": {_dial_error(spec.host or host, spec.port, err.os_error)}', False
    except (aiohttp.ClientError, OSError) as err:
        return False, f'Get "{url}": {_describe(err)}', False


def _judge(status: int, body: bytes) -> tuple[bool, str, bool]:
    if 200 <= status < 400:
        if status >= 300:
            text = body.decode("utf-8", "replace")
            return True, f"Probe terminated redirects, Response body: {text}", True
        return True, "", False
    # The kubelet keeps the body out of the message on purpose (issue 99425).
    return False, f"HTTP probe failed with statuscode: {status}", False


async def _read_at_most(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await resp.content.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


async def _tcp(host: str, port: int, timeout: float) -> tuple[bool, str]:
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        return False, f"dial tcp {join_host_port(host, port)}: i/o timeout"
    except OSError as err:
        return False, _dial_error(host, port, err)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True, ""


async def _exec(spec: ProbeSpec, exec_fn: ExecFn) -> tuple[bool, str]:
    argv = list(spec.command)
    try:
        # exec_fn enforces the timeout itself (it must kill the command); the bound here
        # only keeps a runtime that does not from hanging the prober.
        async with asyncio.timeout(spec.timeout + 1):
            code, output = await exec_fn(argv, float(spec.timeout))
    except TimeoutError:
        return False, f"command {_go_quote(' '.join(argv))} timed out"
    text = output[:MAX_BODY].decode("utf-8", "replace")
    return code == 0, text


def _go_quote(text: str) -> str:
    """Go's %q for plain text: double quotes, with quotes, backslashes and newlines escaped."""
    return json.dumps(text, ensure_ascii=False)


def _dial_error(host: str, port: int, err: OSError | None) -> str:
    address = join_host_port(host, port)
    if isinstance(err, socket.gaierror):
        return f"dial tcp: lookup {host}: no such host"
    if err is None or err.errno is None:
        return f"dial tcp {address}: {_describe(err) if err else 'connect failed'}"
    return f"dial tcp {address}: connect: {_strerror(err.errno)}"


def _strerror(errno: int) -> str:
    text = os.strerror(errno)
    return text[:1].lower() + text[1:]


def _describe(err: BaseException) -> str:
    if isinstance(err, OSError) and err.errno is not None:
        return _strerror(err.errno)
    return str(err) or type(err).__name__
