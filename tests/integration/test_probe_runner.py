"""Probes against real things: an aiohttp server (HTTP and HTTPS) on 127.0.0.1, real TCP
listeners and a closed port, and commands run as real subprocesses."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import ssl
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web

from agents.probe_runner import ProbeResult, run_probe
from agents.probes import ProbeSpec
from apiserver.auth import pki
from tests import ports

T = TypeVar("T")
HOST = "127.0.0.1"
SEEN = web.AppKey("seen", list)
OTHER_HOST = "127.0.0.2"      # another name for the same machine: a different host


def run(coro: Coroutine[Any, Any, T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, 30)

    return asyncio.run(bounded())


async def no_exec(argv: list[str], timeout: float) -> tuple[int, bytes]:
    raise AssertionError(f"no command expected, got {argv}")


async def subprocess_exec(argv: list[str], timeout: float) -> tuple[int, bytes]:
    """Run argv as a real process, as a runtime's exec would; kill it (by PID) on timeout."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        start_new_session=True)
    try:
        output, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        raise
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, output


def probe(kind: str = "readiness", **fields: Any) -> ProbeSpec:
    return ProbeSpec.parse(fields, kind)


# --- HTTP -------------------------------------------------------------------------

def app(port: int) -> web.Application:
    seen: list[dict[str, str]] = []

    async def ok(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.Response(text="fine")

    async def fail(request: web.Request) -> web.Response:
        return web.Response(status=500, text="secret details stay out of events")

    async def missing(request: web.Request) -> web.Response:
        return web.Response(status=404)

    async def same_host(request: web.Request) -> web.Response:
        raise web.HTTPFound("/ok")

    async def other_host(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"http://{OTHER_HOST}:{port}/ok", text="moved")

    async def to_failure(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect("/fail")

    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound("/loop")

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(text="too late")

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * (1 << 20))

    application = web.Application()
    application[SEEN] = seen
    application.router.add_get("/ok", ok)
    application.router.add_get("/fail", fail)
    application.router.add_get("/missing", missing)
    application.router.add_get("/same-host", same_host)
    application.router.add_get("/other-host", other_host)
    application.router.add_get("/to-failure", to_failure)
    application.router.add_get("/loop", loop)
    application.router.add_get("/slow", slow)
    application.router.add_get("/big", big)
    return application


@contextlib.asynccontextmanager
async def serving(tls: ssl.SSLContext | None = None) -> AsyncIterator[tuple[int, web.Application]]:
    [port] = ports.free_ports(1)
    application = app(port)
    runner = web.AppRunner(application, shutdown_timeout=1)
    await runner.setup()
    try:
        # OTHER_HOST reaches the same server under another host name.
        for address in (HOST, OTHER_HOST):
            await web.TCPSite(runner, address, port, ssl_context=tls).start()
        yield port, application
    finally:
        await runner.cleanup()
        ports.release([port])


def http(port: int, path: str, **fields: Any) -> ProbeSpec:
    return probe(httpGet={"port": port, "path": path, **fields.pop("get", {})}, **fields)


async def http_probe(spec: ProbeSpec) -> ProbeResult:
    return await run_probe(spec, host=HOST, exec_fn=no_exec)


def test_http_success_failure_and_headers():
    async def scenario() -> None:
        async with serving() as (port, application):
            result = await http_probe(http(port, "/ok", get={
                "httpHeaders": [{"name": "X-Check", "value": "deep"}]}))
            assert result == ProbeResult(True)
            headers = application[SEEN][-1]
            assert headers["User-Agent"] == "kube-probe/1.32"
            assert headers["X-Check"] == "deep" and headers["Accept"] == "*/*"
            assert await http_probe(http(port, "/fail")) == ProbeResult(
                False, "Readiness probe failed: HTTP probe failed with statuscode: 500")
            assert (await run_probe(http(port, "/missing", kind="liveness"), host=HOST,
                                    exec_fn=no_exec)).message == \
                "Liveness probe failed: HTTP probe failed with statuscode: 404"
            assert await http_probe(http(port, "/big")) == ProbeResult(True)

    run(scenario())


def test_http_host_header_and_explicit_host():
    async def scenario() -> None:
        async with serving() as (port, application):
            spec = http(port, "/ok", get={"host": OTHER_HOST,
                                          "httpHeaders": [{"name": "Host", "value": "svc.local"}]})
            assert (await run_probe(spec, host="192.0.2.1", exec_fn=no_exec)).ok
            assert application[SEEN][-1]["Host"] == "svc.local"

    run(scenario())


def test_redirects_on_the_same_host_are_followed():
    async def scenario() -> None:
        async with serving() as (port, _):
            assert await http_probe(http(port, "/same-host")) == ProbeResult(True)
            assert await http_probe(http(port, "/to-failure")) == ProbeResult(
                False, "Readiness probe failed: HTTP probe failed with statuscode: 500")
            looped = await http_probe(http(port, "/loop"))
            assert not looped.ok
            assert looped.message == (f'Readiness probe failed: Get "http://{HOST}:{port}/loop": '
                                      "stopped after 10 redirects")

    run(scenario())


def test_a_redirect_to_another_host_passes_with_a_warning():
    async def scenario() -> None:
        async with serving() as (port, application):
            before = len(application[SEEN])
            result = await http_probe(http(port, "/other-host"))
            assert result.ok and result.warning
            assert result.message.startswith(
                "Readiness probe warning: Probe terminated redirects, Response body: ")
            assert len(application[SEEN]) == before       # not followed

    run(scenario())


def test_http_timeout_and_refused_connection():
    async def scenario() -> None:
        async with serving() as (port, _):
            slow = await http_probe(http(port, "/slow", kind="liveness", timeoutSeconds=1))
            assert slow == ProbeResult(False, (
                f'Liveness probe failed: Get "http://{HOST}:{port}/slow": context deadline '
                "exceeded (Client.Timeout exceeded while awaiting headers)"))
        [closed] = ports.free_ports(1)
        refused = await http_probe(http(closed, "/healthz"))
        assert refused == ProbeResult(False, (
            f'Readiness probe failed: Get "http://{HOST}:{closed}/healthz": '
            f"dial tcp {HOST}:{closed}: connect: connection refused"))

    run(scenario())


@pytest.fixture
def tls_context(tmp_path: Path) -> ssl.SSLContext:
    """A certificate from a CA nobody trusts, for a name that is not the one probed."""
    ca_cert, ca_key = pki.create_ca("untrusted-test-ca")
    cert, key = pki.issue_serving_cert(ca_cert, ca_key, ["elsewhere.invalid"])
    pki.write_pem(tmp_path / "tls.crt", pki.cert_pem(cert))
    pki.write_pem(tmp_path / "tls.key", pki.key_pem(key), private=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    return context


def test_https_probes_do_not_verify_certificates(tls_context: ssl.SSLContext):
    async def scenario() -> None:
        async with serving(tls_context) as (port, _):
            assert await http_probe(http(port, "/ok", get={"scheme": "HTTPS"})) == ProbeResult(True)
            assert not (await http_probe(http(port, "/fail", get={"scheme": "HTTPS"}))).ok

    run(scenario())


# --- TCP --------------------------------------------------------------------------

@contextlib.contextmanager
def listener(backlog: int = 16) -> Any:
    [port] = ports.free_ports(1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))
        sock.listen(backlog)
        yield sock, port
    finally:
        sock.close()
        ports.release([port])


def test_tcp_open_and_refused():
    async def scenario() -> None:
        with listener() as (sock, port):
            assert await run_probe(probe("liveness", tcpSocket={"port": port}), host=HOST,
                                   exec_fn=no_exec) == ProbeResult(True)
            accepted, _ = sock.accept()      # the probe really connected
            accepted.close()
        [closed] = ports.free_ports(1)
        result = await run_probe(probe("readiness", tcpSocket={"port": closed}), host=HOST,
                                 exec_fn=no_exec)
        assert result == ProbeResult(False, f"Readiness probe failed: dial tcp {HOST}:{closed}: "
                                            "connect: connection refused")

    run(scenario())


def test_tcp_timeout_when_the_listener_drops_connection_attempts():
    async def scenario() -> None:
        # A full accept queue makes the kernel drop further SYNs: the connect hangs.
        with listener(backlog=0) as (_, port):
            fillers = []
            try:
                for _ in range(8):
                    filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    filler.setblocking(False)
                    fillers.append(filler)
                    with contextlib.suppress(BlockingIOError):
                        filler.connect((HOST, port))
                await asyncio.sleep(0.2)
                result = await run_probe(probe("liveness", tcpSocket={"port": port},
                                               timeoutSeconds=1), host=HOST, exec_fn=no_exec)
            finally:
                for filler in fillers:
                    filler.close()
            assert result == ProbeResult(False, f"Liveness probe failed: dial tcp {HOST}:{port}: "
                                                "i/o timeout")

    run(scenario())


# --- exec -------------------------------------------------------------------------

def exec_probe(command: list[str], **fields: Any) -> ProbeSpec:
    return probe(fields.pop("kind", "liveness"), exec={"command": command}, **fields)


def test_exec_exit_codes_and_output(tmp_path: Path):
    async def scenario() -> None:
        flag = tmp_path / "healthy"
        assert await run_probe(exec_probe(["test", "-e", str(flag)]), host=HOST,
                               exec_fn=subprocess_exec) == ProbeResult(False, "Liveness probe failed: ")
        flag.write_text("")
        assert await run_probe(exec_probe(["test", "-e", str(flag)]), host=HOST,
                               exec_fn=subprocess_exec) == ProbeResult(True)
        result = await run_probe(exec_probe(["sh", "-c", "echo not ready; exit 3"],
                                            kind="readiness"), host=HOST, exec_fn=subprocess_exec)
        assert result == ProbeResult(False, "Readiness probe failed: not ready\n")

    run(scenario())


def test_exec_timeout_fails_and_the_command_is_killed(tmp_path: Path):
    async def scenario() -> None:
        marker = tmp_path / "finished"
        result = await run_probe(
            exec_probe(["sh", "-c", f"sleep 3; touch {marker}"], timeoutSeconds=1),
            host=HOST, exec_fn=subprocess_exec)
        assert result == ProbeResult(
            False, f'Liveness probe failed: command "sh -c sleep 3; touch {marker}" timed out')
        await asyncio.sleep(3.5)
        assert not marker.exists()

    run(scenario())


def test_exec_that_cannot_run_is_an_error():
    async def scenario() -> None:
        result = await run_probe(exec_probe(["/nonexistent/probe-binary"]), host=HOST,
                                 exec_fn=subprocess_exec)
        assert not result.ok
        assert result.message.startswith(
            "Liveness probe errored and resulted in unknown state: ")
        assert "/nonexistent/probe-binary" in result.message

    run(scenario())


def test_an_exec_fn_that_ignores_its_timeout_is_cut_off():
    async def stuck(argv: list[str], timeout: float) -> tuple[int, bytes]:
        await asyncio.sleep(60)
        return 0, b""

    async def scenario() -> None:
        result = await run_probe(exec_probe(["hang"], timeoutSeconds=1), host=HOST, exec_fn=stuck)
        assert result == ProbeResult(False, 'Liveness probe failed: command "hang" timed out')

    run(scenario())
