"""A TCP relay between network namespaces: listen in one, dial the target in another.

The lab's machines live in network namespaces with no route out, so nothing in the root
namespace can reach them by address. A `Forward` bridges that gap for one port without
adding a route or a link: it accepts connections on a socket bound in one namespace and,
for each, opens a connection from inside the target namespace (sockets made on a
`NetnsDialer` thread) and copies bytes both ways.

    root netns                                   netns X
    127.0.0.1:P  --accept-->  Forward  --dial from inside X-->  127.0.0.1:6443

`None` for a namespace means this process's own. The reverse direction (listening
socket inside a namespace, target dialled here) is `listen_netns_path`.

Each direction is a copy loop that awaits `drain()` after every write, so a slow reader
slows its writer down instead of filling memory. End of stream on one side becomes a
half-close (`write_eof`) on the other, so request/response protocols that shut down
their sending side still get their answer; the connection closes once both directions
ended, and at once (both sides) on an error.

    python -m provisioning.netns_forward --listen 127.0.0.1:7443 --netns NAME --to 10.0.0.1:7443

runs until SIGTERM or SIGINT and prints `listening on HOST:PORT` once it accepts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
import sys

from provisioning import netns

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
CONNECT_TIMEOUT = 10.0
DIALER_THREADS = 8


def parse_endpoint(text: str) -> tuple[str, int]:
    """`host:port` or `[v6addr]:port` -> (host, port); a port must be 0..65535."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"write an IPv6 address in brackets: {text!r}")
    port = int(port_text)
    if port > 65535:
        raise ValueError(f"port out of range in {text!r}")
    return host, port


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until end of stream, then half-close the other side."""
    while True:
        data = await reader.read(CHUNK)
        if not data:
            break
        writer.write(data)
        await writer.drain()
    if writer.can_write_eof() and not writer.is_closing():
        writer.write_eof()


def _abort(writer: asyncio.StreamWriter) -> None:
    transport = writer.transport
    if not transport.is_closing():
        transport.abort()


async def relay(a: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                b: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
    """Copy a -> b and b -> a until both ended; on any error reset both connections."""
    (a_reader, a_writer), (b_reader, b_writer) = a, b
    forward = asyncio.create_task(_pump(a_reader, b_writer), name="relay-forward")
    backward = asyncio.create_task(_pump(b_reader, a_writer), name="relay-backward")
    clean = False
    try:
        done, pending = await asyncio.wait({forward, backward},
                                           return_when=asyncio.FIRST_EXCEPTION)
        clean = not pending and all(t.exception() is None for t in done)
    finally:
        # Close before the first await: a cancellation arriving there (stop()) must not
        # leave a connection open.
        for task in (forward, backward):
            task.cancel()
        for writer in (a_writer, b_writer):
            if clean:
                writer.close()
            else:
                _abort(writer)
        await asyncio.gather(forward, backward, return_exceptions=True)
        for writer in (a_writer, b_writer):
            with contextlib.suppress(OSError):
                await writer.wait_closed()


class Forward:
    """Relay connections accepted on (listen_host, listen_port) to (target_host,
    target_port), each side in its namespace (a path under /run/netns, or None)."""

    def __init__(self, listen_host: str, listen_port: int, target_netns_path: str | None,
                 target_host: str, target_port: int, *, listen_netns_path: str | None = None,
                 connect_timeout: float = CONNECT_TIMEOUT) -> None:
        self.listen_host = listen_host
        self.listen_port = listen_port
        self.target_netns_path = target_netns_path
        self.target = (target_host, target_port)
        self.listen_netns_path = listen_netns_path
        self.connect_timeout = connect_timeout
        self._server: asyncio.Server | None = None
        self._dialer: netns.NetnsDialer | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._bound_port: int | None = None

    @property
    def port(self) -> int:
        """The port actually bound (useful when asked for 0)."""
        if self._bound_port is None:
            raise RuntimeError("the forward is not started")
        return self._bound_port

    @property
    def active_connections(self) -> int:
        return len(self._connections)

    async def start(self) -> None:
        if self._server is not None:
            return
        if self.listen_netns_path is None:
            family = socket.AF_INET6 if ":" in self.listen_host else socket.AF_INET
            sock = socket.create_server((self.listen_host, self.listen_port), family=family,
                                        backlog=netns.DEFAULT_BACKLOG)
        else:
            with netns.NetnsDialer(self.listen_netns_path, max_workers=1) as placer:
                sock = placer.listen_socket(self.listen_host, self.listen_port)
        try:
            if self.target_netns_path is not None:
                self._dialer = netns.NetnsDialer(self.target_netns_path,
                                                 max_workers=DIALER_THREADS)
            self._bound_port = int(sock.getsockname()[1])
            self._server = await asyncio.start_server(self._accepted, sock=sock)
        except BaseException:
            sock.close()
            await self._close_dialer()
            raise

    async def stop(self) -> None:
        """Stop accepting, reset the connections still open, release the namespace."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        if server is not None:
            await server.wait_closed()
        await self._close_dialer()

    async def _close_dialer(self) -> None:
        dialer, self._dialer = self._dialer, None
        if dialer is not None:
            await asyncio.to_thread(dialer.shutdown, True)

    async def __aenter__(self) -> Forward:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _open_target(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        host, port = self.target
        if self.target_netns_path is None:
            return await asyncio.wait_for(asyncio.open_connection(host, port),
                                          self.connect_timeout)
        dialer = self._dialer
        if dialer is None:  # stopped: never fall back to dialling from our namespace
            raise ConnectionAbortedError("the forward is stopped")
        return await dialer.open_connection(host, port, self.connect_timeout)

    async def _accepted(self, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            if self._server is None:  # accepted just before stop()
                _abort(writer)
                return
            try:
                target = await self._open_target()
            except (OSError, TimeoutError, RuntimeError) as exc:
                log.warning("forward %s:%s: cannot reach %s:%s: %s", self.listen_host,
                            self._bound_port, *self.target, exc)
                _abort(writer)
                return
            await relay((reader, writer), target)
        except asyncio.CancelledError:
            _abort(writer)
        except Exception:  # a relay must never take the server down
            log.exception("forward %s:%s: connection failed", self.listen_host,
                          self._bound_port)
            _abort(writer)
        finally:
            self._connections.discard(task)


async def _serve(forward: Forward) -> None:
    await forward.start()
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    print(f"listening on {forward.listen_host}:{forward.port}", flush=True)
    try:
        await stopped.wait()
    finally:
        await forward.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m provisioning.netns_forward",
        description="Relay TCP connections from one network namespace to another.")
    parser.add_argument("--listen", required=True, metavar="HOST:PORT",
                        help="where to accept connections (port 0 picks a free one)")
    parser.add_argument("--listen-netns", metavar="NAME",
                        help="bind the listening socket in this namespace (default: ours)")
    parser.add_argument("--netns", metavar="NAME",
                        help="dial the target from inside this namespace (default: ours)")
    parser.add_argument("--to", required=True, metavar="HOST:PORT", help="the target")
    parser.add_argument("--connect-timeout", type=float, default=CONNECT_TIMEOUT)
    args = parser.parse_args(argv)
    try:
        listen_host, listen_port = parse_endpoint(args.listen)
        to_host, to_port = parse_endpoint(args.to)
        target_path = netns.netns_path(args.netns) if args.netns else None
        listen_path = netns.netns_path(args.listen_netns) if args.listen_netns else None
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    forward = Forward(listen_host, listen_port, target_path, to_host, to_port,
                      listen_netns_path=listen_path, connect_timeout=args.connect_timeout)
    try:
        asyncio.run(_serve(forward))
    except (OSError, netns.NetnsError) as exc:
        print(f"netns_forward: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
