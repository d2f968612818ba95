"""`kubelite store`: run a store member, or back up and restore a cluster's data.

    kubelite store --name n1 --data-dir /var/lib/kubelite/store \\
        --listen-client-urls http://10.0.0.1:2379 --listen-peer-urls 10.0.0.1:2380 \\
        --initial-cluster n1=10.0.0.1:2380,n2=10.0.0.2:2380,n3=10.0.0.3:2380 \\
        --peer-secret-file /etc/kubelite/peer-secret
    kubelite store backup --endpoints http://10.0.0.1:2379 backup.db
    kubelite store restore backup.db --data-dir D --name n1 --initial-cluster ...
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from urllib.parse import urlsplit

from store import membership
from store.raft_node import RaftTimings

log = logging.getLogger("kubelite.store")

SWITCH_INTERVAL = 0.0005  # seconds; see run_member


def member_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kubelite store",
        description="Run one member of kubelite's Raft-replicated key-value store. It speaks "
                    "etcd 3.4's v3 JSON gateway API on its client URLs, so etcd clients work "
                    "unchanged. Other actions: 'kubelite store backup --help', "
                    "'kubelite store restore --help'.")
    p.add_argument("--name", required=True, help="this member's name in --initial-cluster")
    p.add_argument("--data-dir", required=True, help="Raft journal and snapshots live here")
    p.add_argument("--listen-client-urls", default="http://127.0.0.1:2379",
                   help="where clients reach the gateway (one http:// URL)")
    p.add_argument("--advertise-client-urls", default=None,
                   help="client URLs to publish to other members (default: listen URLs)")
    p.add_argument("--listen-peer-urls", default="127.0.0.1:2380",
                   help="HOST:PORT for Raft traffic between members")
    p.add_argument("--initial-advertise-peer-urls", default=None,
                   help="peer address other members use (default: --listen-peer-urls)")
    p.add_argument("--initial-cluster", default=None,
                   help="NAME=HOST:PORT,... of every member (default: this member alone)")
    p.add_argument("--initial-cluster-state", choices=("new", "existing"), default="new",
                   help="'existing' when joining a cluster after cluster/member/add")
    p.add_argument("--initial-cluster-token", default="kubelite-cluster",
                   help="distinguishes clusters; determines the cluster ID")
    p.add_argument("--peer-secret-file", default=None,
                   help="file holding the shared secret that encrypts and authenticates "
                        "Raft traffic (or set KUBELITE_PEER_SECRET); required")
    p.add_argument("--request-timeout", type=float, default=7.0,
                   help="seconds before a request that cannot commit fails (etcd: 7)")
    p.add_argument("--experimental-watch-progress-notify-interval", type=float, default=600.0,
                   dest="progress_interval", help="seconds between watch progress messages")
    p.add_argument("--max-response-bytes", type=int, default=512 * 1024 * 1024,
                   help="a range whose answer would be larger fails with code 8 instead of "
                        "exhausting memory; use limit and pagination")
    p.add_argument("--election-timeout-ms", type=int, default=800,
                   help="minimum Raft election timeout; the maximum is twice this")
    p.add_argument("--heartbeat-interval-ms", type=int, default=100,
                   help="leader heartbeat period")
    p.add_argument("--snapshot-count", type=int, default=20000,
                   help="Raft entries between snapshots (each entry holds a batch of requests)")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    return p


def _read_secret(path: str | None) -> str:
    if path:
        with open(path) as f:
            secret = f.read().strip()
    else:
        secret = os.environ.get("KUBELITE_PEER_SECRET", "").strip()
    if len(secret) < 16:
        raise SystemExit("kubelite store: peer traffic is always encrypted: give "
                         "--peer-secret-file (or KUBELITE_PEER_SECRET) with a secret of at "
                         "least 16 characters, the same on every member")
    return secret


def _client_listen(url: str) -> tuple[str, int]:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme != "http" or not parts.hostname or not parts.port:
        raise SystemExit(f"kubelite store: --listen-client-urls {url!r} must be "
                         "http://HOST:PORT")
    return parts.hostname, parts.port


def run_member(argv: list[str]) -> int:
    args = member_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from store.member import Member, MemberConfig  # after logging, for clean start-up logs
    from store.server import serve

    secret = _read_secret(args.peer_secret_file)
    listen_urls = [u.strip() for u in args.listen_client_urls.split(",") if u.strip()]
    host, port = _client_listen(listen_urls[0])
    advertise = [u.strip() for u in (args.advertise_client_urls or args.listen_client_urls)
                 .split(",") if u.strip()]
    try:
        peer = membership.peer_addr(args.initial_advertise_peer_urls or args.listen_peer_urls)
        initial = membership.parse_initial_cluster(args.initial_cluster or
                                                   f"{args.name}={peer}")
    except ValueError as exc:
        raise SystemExit(f"kubelite store: {exc}") from exc
    mine = [m for m in initial if m.name == args.name]
    if not mine or mine[0].peer_addr != peer:
        raise SystemExit(f"kubelite store: --initial-cluster must list {args.name}={peer}")
    election = args.election_timeout_ms / 1000.0
    timings = RaftTimings(heartbeat=args.heartbeat_interval_ms / 1000.0,
                          election_min=election, election_max=2 * election,
                          leader_fallback=max(2.0, 2.5 * election),
                          snapshot_entries=args.snapshot_count)
    config = MemberConfig(name=args.name, data_dir=args.data_dir, client_urls=advertise,
                          peer_addr=peer, initial_cluster=initial, secret=secret,
                          initial_cluster_state=args.initial_cluster_state,
                          cluster_token=args.initial_cluster_token,
                          request_timeout=args.request_timeout,
                          progress_interval=args.progress_interval,
                          max_response_bytes=args.max_response_bytes, timings=timings)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        member = Member(config, loop)
        member.start()
        runner = await serve(member, host, port)
        log.info("member %s (%x) serving clients on %s, peers on %s", args.name,
                 member.member_id, listen_urls[0], peer)
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        stopper = asyncio.create_task(member.stopped.wait())
        await asyncio.wait([asyncio.create_task(stop.wait()), stopper],
                           return_when=asyncio.FIRST_COMPLETED)
        log.info("member %s stopping", args.name)
        member.proposer.close()  # answer waiting requests now, not at their timeouts
        await runner.cleanup()
        await member.close()

    # Two threads share the GIL here: the HTTP loop and pysyncobj's Raft thread. A thread
    # that wakes up (a peer message, a client request) waits for the other to let go of
    # the GIL, by default up to 5 ms; every Raft round crosses that several times.
    sys.setswitchinterval(SWITCH_INTERVAL)
    asyncio.run(main())
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("backup", "restore"):
        from store import backup
        return backup.main(argv)
    return run_member(argv)


if __name__ == "__main__":
    sys.exit(main())
