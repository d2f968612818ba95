"""A TCP proxy that adds a fixed delay, for kernels without netem (run on a machine).

    python3 delay_proxy.py --listen 127.0.0.1:0 --delay 0.1 --mark 27500 \\
        --state-file /var/lib/kubelite/drill/delay_proxy.json --max-seconds 90

An nftables `redirect` rule (provisioning/drills/faults.py) sends the machine's new
connections to its peers' Raft port here. For each one the proxy reads where it was
going (SO_ORIGINAL_DST, kept by conntrack), connects there itself with SO_MARK set
(the rule skips marked packets, so this connection is not redirected again), and
relays both directions, each chunk released `delay` seconds after it arrived, in
order. The added round-trip time is therefore twice the delay.

It writes {"pid", "port"} to the state file once listening, and exits on SIGTERM, or
by itself after --max-seconds so that a drill that died cannot leave it behind.
Standard library only: it is copied to the machine and run with any Python 3.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import struct
import sys
import time

SO_ORIGINAL_DST = 80
CHUNK = 65536


def original_destination(sock: socket.socket) -> tuple[str, int]:
    raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    port, packed = struct.unpack("!2xH4s8x", raw)
    return socket.inet_ntoa(packed), port


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                delay: float) -> None:
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def release() -> None:
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(release())
    try:
        while True:
            data = await reader.read(CHUNK)
            await queue.put((time.monotonic() + delay, data))
            if not data:
                break
        await sender
    finally:
        sender.cancel()


async def _handle(delay: float, mark: int, reader: asyncio.StreamReader,
                  writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    upstream: asyncio.StreamWriter | None = None
    try:
        host, port = original_destination(sock)
        out = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        out.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, mark)
        out.setblocking(False)
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(out, (host, port)), 5)
        up_reader, upstream = await asyncio.open_connection(sock=out)
        await asyncio.gather(_pump(reader, upstream, delay), _pump(up_reader, writer, delay))
    except (TimeoutError, OSError):
        pass
    finally:
        for w in (writer, upstream):
            if w is not None:
                w.close()


async def serve(host: str, port: int, delay: float, mark: int, state_file: str,
                max_seconds: float) -> None:
    server = await asyncio.start_server(lambda r, w: _handle(delay, mark, r, w), host, port)
    bound = server.sockets[0].getsockname()[1]
    tmp = state_file + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"pid": os.getpid(), "port": bound, "delay": delay}, f)
    os.replace(tmp, state_file)
    print(f"listening on {host}:{bound}, delay {delay} s", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), max_seconds)
    except TimeoutError:
        print("max-seconds reached", flush=True)
    server.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="delay_proxy")
    p.add_argument("--listen", default="127.0.0.1:0")
    p.add_argument("--delay", type=float, required=True, help="seconds, each direction")
    p.add_argument("--mark", type=int, required=True)
    p.add_argument("--state-file", required=True)
    p.add_argument("--max-seconds", type=float, default=600.0)
    args = p.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    asyncio.run(serve(host, int(port), args.delay, args.mark, args.state_file,
                      args.max_seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
