"""provisioning.netns_forward and provisioning.netns against the real kernel (root).

Each test gets a network namespace of its own (`kfw-<6 hex>`, only `lo`, no route out).
Servers "inside" it are asyncio servers of this process on listening sockets that a
`NetnsDialer` bound in the namespace; clients in the root namespace reach them only
through a `Forward` on root 127.0.0.1. All traffic stays on loopback interfaces.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from provisioning import netns
from provisioning.netns_forward import Forward, parse_endpoint
from tests import ports
from tests.privileges import require_root

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parents[2]
BIG = 5 * 1024 * 1024
CONCURRENT = 200

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
def ns() -> Iterator[str]:
    """A fresh namespace with lo up; removed afterwards, and checked to be gone."""
    require_root("network namespaces")
    name = f"kfw-{secrets.token_hex(3)}"
    assert not netns.exists(name)
    netns.create(name)
    try:
        yield name
    finally:
        netns.remove(name)
        assert not netns.exists(name)
        assert name not in netns.list_with_prefix("kfw-")


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Echo until end of stream, then close."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


async def digest_after_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read everything, and only once the peer half-closed, answer length and sha256."""
    h, n = hashlib.sha256(), 0
    while data := await reader.read(65536):
        h.update(data)
        n += len(data)
    writer.write(f"{n} {h.hexdigest()}\n".encode())
    await writer.drain()
    writer.close()


@asynccontextmanager
async def server_in(path: str, handler: Handler, port: int = 0) -> AsyncIterator[int]:
    """Serve `handler` on 127.0.0.1:`port` inside the namespace; yield the port."""
    with netns.NetnsDialer(path, max_workers=1) as dialer:
        sock = dialer.listen_socket("127.0.0.1", port)
    server = await asyncio.start_server(handler, sock=sock)
    try:
        yield int(sock.getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


async def exchange(port: int, payload: bytes) -> bytes:
    """Send payload while reading the answer concurrently; half-close; return all read."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def send() -> None:
        for i in range(0, len(payload), 65536):
            writer.write(payload[i:i + 65536])
            await writer.drain()
        writer.write_eof()

    sender = asyncio.create_task(send())
    received = await reader.read(-1)
    await sender
    writer.close()
    await writer.wait_closed()
    return received


def test_names_and_listing(ns: str) -> None:
    path = netns.netns_path(ns)
    assert path == f"/run/netns/{ns}"
    assert netns.exists(ns)
    assert netns.list_with_prefix(ns) == [ns]
    assert netns.create(ns) == path  # idempotent
    with pytest.raises(ValueError):
        netns.netns_path("../etc")


def test_a_dialer_thread_lives_in_the_namespace(ns: str) -> None:
    with netns.NetnsDialer(netns.netns_path(ns)) as dialer:
        inside = dialer.submit(os.readlink, "/proc/thread-self/ns/net").result()
    assert inside != os.readlink("/proc/self/ns/net")
    assert inside == f"net:[{os.stat(netns.netns_path(ns)).st_ino}]"
    with pytest.raises(netns.NetnsError):
        netns.NetnsDialer("/run/netns/kfw-does-not-exist")


def test_echo_through_the_forward_and_isolation(ns: str) -> None:
    root_port = ports.free_port()  # free on root 127.0.0.1; the server takes it in ns

    async def scenario() -> None:
        async with server_in(netns.netns_path(ns), echo, port=root_port) as port:
            assert port == root_port
            # The same address in the root namespace has no listener: isolation.
            with pytest.raises(ConnectionRefusedError):
                await asyncio.open_connection("127.0.0.1", root_port)
            async with Forward("127.0.0.1", 0, netns.netns_path(ns),
                               "127.0.0.1", port) as forward:
                assert forward.port not in (0, root_port)
                assert await exchange(forward.port, b"hello, namespace") == b"hello, namespace"
            with pytest.raises(ConnectionRefusedError):
                await asyncio.open_connection("127.0.0.1", forward.port)

    asyncio.run(scenario())


def test_five_mib_both_ways(ns: str) -> None:
    payload = os.urandom(BIG)

    async def scenario() -> bytes:
        async with server_in(netns.netns_path(ns), echo) as port, \
                Forward("127.0.0.1", 0, netns.netns_path(ns), "127.0.0.1", port) as fwd:
            return await exchange(fwd.port, payload)

    received = asyncio.run(scenario())
    assert len(received) == BIG
    assert received == payload


def test_half_close_reaches_the_server_and_the_answer_comes_back(ns: str) -> None:
    payload = os.urandom(BIG)

    async def scenario() -> bytes:
        async with server_in(netns.netns_path(ns), digest_after_eof) as port, \
                Forward("127.0.0.1", 0, netns.netns_path(ns), "127.0.0.1", port) as fwd:
            return await exchange(fwd.port, payload)

    answer = asyncio.run(scenario())
    assert answer == f"{BIG} {hashlib.sha256(payload).hexdigest()}\n".encode()


def test_many_concurrent_connections(ns: str) -> None:
    async def scenario() -> list[tuple[bytes, bytes]]:
        async with server_in(netns.netns_path(ns), echo) as port, \
                Forward("127.0.0.1", 0, netns.netns_path(ns), "127.0.0.1", port) as fwd:
            payloads = [secrets.token_bytes(1024 + i * 37) for i in range(CONCURRENT)]
            answers = await asyncio.gather(*(exchange(fwd.port, p) for p in payloads))
            return list(zip(payloads, answers, strict=True))

    pairs = asyncio.run(scenario())
    assert len(pairs) == CONCURRENT
    assert all(sent == got for sent, got in pairs)


def test_unreachable_target_closes_the_client_and_the_forward_keeps_serving(ns: str) -> None:
    async def scenario() -> tuple[bytes, bytes]:
        path = netns.netns_path(ns)
        async with server_in(path, echo) as live:
            dead_port = ports.free_port()  # nothing listens on it inside ns
            async with Forward("127.0.0.1", 0, path, "127.0.0.1", dead_port,
                               connect_timeout=5.0) as dead, \
                    Forward("127.0.0.1", 0, path, "127.0.0.1", live) as alive:
                reader, writer = await asyncio.open_connection("127.0.0.1", dead.port)
                try:
                    got = await reader.read(-1)
                except ConnectionResetError:
                    got = b""
                writer.close()
                return got, await exchange(alive.port, b"still here")

    refused, alive_answer = asyncio.run(scenario())
    assert refused == b""
    assert alive_answer == b"still here"


def test_stop_resets_open_connections(ns: str) -> None:
    async def scenario() -> tuple[bytes, int]:
        async with server_in(netns.netns_path(ns), echo) as port:
            fwd = Forward("127.0.0.1", 0, netns.netns_path(ns), "127.0.0.1", port)
            await fwd.start()
            reader, writer = await asyncio.open_connection("127.0.0.1", fwd.port)
            writer.write(b"ping")
            await writer.drain()
            first = await reader.readexactly(4)
            await fwd.stop()
            try:
                rest = await reader.read(-1)
            except ConnectionResetError:
                rest = b""
            writer.close()
            return first + rest, fwd.active_connections

    seen, active = asyncio.run(scenario())
    assert seen == b"ping"
    assert active == 0


def test_reverse_listen_inside_the_namespace_dial_root(ns: str) -> None:
    async def scenario() -> bytes:
        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        root_port = server.sockets[0].getsockname()[1]
        try:
            async with Forward("127.0.0.1", 0, None, "127.0.0.1", root_port,
                               listen_netns_path=netns.netns_path(ns)) as fwd:
                with netns.NetnsDialer(netns.netns_path(ns)) as inside:
                    reader, writer = await inside.open_connection("127.0.0.1", fwd.port)
                    writer.write(b"from inside")
                    writer.write_eof()
                    answer = await reader.read(-1)
                    writer.close()
                    return answer
        finally:
            server.close()
            await server.wait_closed()

    assert asyncio.run(scenario()) == b"from inside"


def test_command_line_runs_until_sigterm(ns: str) -> None:
    async def scenario() -> tuple[bytes, int]:
        async with server_in(netns.netns_path(ns), echo) as port:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "provisioning.netns_forward", "--listen", "127.0.0.1:0",
                "--netns", ns, "--to", f"127.0.0.1:{port}", cwd=REPO,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
            try:
                assert proc.stdout is not None
                line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
                assert line.startswith("listening on 127.0.0.1:"), line
                answer = await exchange(int(line.rsplit(":", 1)[1]), b"via the CLI")
            finally:
                if proc.returncode is None:
                    proc.send_signal(signal.SIGTERM)
                code = await asyncio.wait_for(proc.wait(), 30)
            return answer, code

    answer, code = asyncio.run(scenario())
    assert answer == b"via the CLI"
    assert code == 0


def test_listen_socket_is_bound_inside(ns: str) -> None:
    with netns.NetnsDialer(netns.netns_path(ns)) as dialer:
        port = ports.free_port()  # free on root 127.0.0.1
        listener = dialer.listen_socket("127.0.0.1", port)
        with listener:
            conn = dialer.connect("127.0.0.1", port, timeout=5)
            with conn, listener.accept()[0] as accepted:
                conn.sendall(b"x")
                assert accepted.recv(1) == b"x"
            with socket.socket() as outside, pytest.raises(ConnectionRefusedError):
                outside.connect(("127.0.0.1", port))


def test_endpoints_parse_like_the_command_line_takes_them() -> None:
    assert parse_endpoint("127.0.0.1:6443") == ("127.0.0.1", 6443)
    assert parse_endpoint("[::1]:0") == ("::1", 0)
    for bad in ("127.0.0.1", ":80", "host:http", "::1:80", "h:70000"):
        with pytest.raises(ValueError):
            parse_endpoint(bad)
