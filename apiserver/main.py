"""`kubelite apiserver`: a stateless Kubernetes API server over the store.

    kubelite apiserver --store-endpoints http://10.0.0.1:2379,http://10.0.0.2:2379 \\
        --listen 0.0.0.0:6443 --tls-cert-file apiserver.crt --tls-private-key-file apiserver.key \\
        --token-auth-file tokens.csv --client-ca-file ca.crt \\
        --service-account-key-file sa.pub

Run as many as you like over one store cluster; each keeps one watch on the store.
Put them behind a load balancer configured by

    kubelite apiserver haproxy-config --backend https://10.0.0.1:6443 ... --listen 0.0.0.0:7443

(apiserver/haproxy.py; see `kubelite apiserver haproxy-config --help`).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import ssl
import sys

from aiohttp import web

log = logging.getLogger("kubelite.apiserver")

# Python's default (700, 10, 10) runs a young collection every 700 allocations: a LIST of
# 10,000 pods (a million decoded objects) then spends most of its time in the collector,
# scanning the growing list again and again (bench/PROFILE-apiserver.md). Decoded objects
# hold no reference cycles; the few cycles aiohttp and asyncio leave are still collected.
GC_THRESHOLDS = (50_000, 20, 10)

DEFAULT_SA_ISSUER = "https://kubernetes.default.svc.cluster.local"  # = tokens.DEFAULT_ISSUER


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kubelite apiserver",
        description="Serve the Kubernetes API (core/v1, apps/v1, batch/v1, "
                    "coordination.k8s.io/v1, rbac.authorization.k8s.io/v1) from a store "
                    "cluster that speaks etcd's v3 JSON gateway (kubelite's store or etcd). "
                    "'kubelite apiserver haproxy-config --help' generates a load balancer "
                    "configuration for several apiservers.")
    p.add_argument("--store-endpoints", required=True,
                   help="store client URLs, comma separated (failover in order)")
    p.add_argument("--listen", default="127.0.0.1:6443", help="HOST:PORT to serve on")
    p.add_argument("--tls-cert-file", help="serving certificate (PEM); required unless "
                                           "--insecure-http")
    p.add_argument("--tls-private-key-file", help="serving key (PEM)")
    p.add_argument("--client-ca-file", help="CA whose client certificates authenticate users "
                                            "(CN = user, O = groups)")
    p.add_argument("--token-auth-file", help="static tokens: token,user,uid,\"group1,group2\"")
    p.add_argument("--service-account-key-file", action="append", default=[],
                   help="public key(s) that verify service-account tokens")
    # The defaults are those apiserver.auth.tokens mints with (kubeadm's issuer).
    p.add_argument("--service-account-issuer", default=DEFAULT_SA_ISSUER,
                   help="issuer expected in service-account tokens")
    p.add_argument("--api-audiences", default=DEFAULT_SA_ISSUER,
                   help="audiences accepted in service-account tokens, comma separated")
    p.add_argument("--authorization-mode", default="RBAC", choices=("RBAC", "AlwaysAllow"),
                   help="RBAC (default) or AlwaysAllow (development only)")
    p.add_argument("--insecure-http", action="store_true",
                   help="serve plain HTTP with no authentication (loopback development only)")
    p.add_argument("--store-timeout", type=float, default=10.0,
                   help="seconds for one store request including failover")
    p.add_argument("--service-cluster-ip-range", default="10.96.0.0/12",
                   help="CIDR from which Services get their ClusterIP")
    p.add_argument("--etcd-compaction-interval", type=float, default=300.0,
                   help="seconds between store compactions (0 disables); history of one "
                        "interval is always kept for watchers")
    p.add_argument("--kubelet-certificate-authority",
                   help="CA that signed the node agents' serving certificates; without it "
                        "agents' certificates are not verified (as in Kubernetes)")
    p.add_argument("--kubelet-client-certificate",
                   help="client certificate presented to node agents (logs, node proxy)")
    p.add_argument("--kubelet-client-key", help="its key")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    return p


def _listen(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise SystemExit(f"kubelite apiserver: --listen {text!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "haproxy-config":
        from apiserver import haproxy
        return haproxy.main(argv[1:])
    args = parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    host, port = _listen(args.listen)
    if args.insecure_http:
        if not host.startswith("127.") and host != "localhost":
            raise SystemExit("kubelite apiserver: --insecure-http serves without "
                             "authentication and is allowed on loopback addresses only")
    elif not (args.tls_cert_file and args.tls_private_key_file):
        raise SystemExit("kubelite apiserver: give --tls-cert-file and --tls-private-key-file "
                         "(or --insecure-http on loopback for development)")
    gc.set_threshold(*GC_THRESHOLDS)
    asyncio.run(_serve(args, host, port))
    return 0


async def _serve(args: argparse.Namespace, host: str, port: int) -> None:
    from apiserver import bootstrap, maintenance, security
    from apiserver.app import build_app
    from apiserver.node_proxy import AgentDialer
    from apiserver.resources import ResourceHandlers
    from apiserver.service_ips import ServiceIPs
    from apiserver.storage import Storage
    from apiserver.watch_cache import WatchCache
    from store.client import StoreClient

    endpoints = [e.strip() for e in args.store_endpoints.split(",") if e.strip()]
    client = StoreClient(endpoints, timeout=args.store_timeout)
    await client.__aenter__()
    storage = Storage(client)
    cache = WatchCache(client)
    await cache.start()
    guard = None if args.insecure_http else security.from_args(args, storage)
    agents = AgentDialer(ca_file=args.kubelet_certificate_authority,
                         client_cert=args.kubelet_client_certificate,
                         client_key=args.kubelet_client_key)
    handlers = ResourceHandlers(storage, cache,
                                ServiceIPs(storage, args.service_cluster_ip_range), agents)

    async def ready() -> bool:
        if not cache.healthy():
            return False
        try:
            await asyncio.wait_for(storage.current_revision(), 2.0)
        except Exception:  # noqa: BLE001 (any failure means not ready)
            return False
        return True

    app = build_app(handlers, guard, ready, f"{host}:{port}")
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    ssl_ctx = None
    if not args.insecure_http:
        ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_ctx.load_cert_chain(args.tls_cert_file, args.tls_private_key_file)
        if args.client_ca_file:
            ssl_ctx.load_verify_locations(args.client_ca_file)
            ssl_ctx.verify_mode = ssl.CERT_OPTIONAL
    site = web.TCPSite(runner, host, port, ssl_context=ssl_ctx, reuse_address=True,
                       backlog=1024)
    await site.start()
    scheme = "http" if args.insecure_http else "https"
    log.info("apiserver serving on %s://%s:%d, store %s", scheme, host, port, endpoints)
    tasks = [asyncio.create_task(bootstrap.ensure_defaults(storage), name="bootstrap"),
             asyncio.create_task(maintenance.namespace_loop(storage), name="namespaces")]
    if args.etcd_compaction_interval > 0:
        tasks.append(asyncio.create_task(
            maintenance.compaction_loop(storage, args.etcd_compaction_interval),
            name="compaction"))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for task in tasks:
        task.cancel()
    await runner.cleanup()
    await agents.close()
    await cache.close()
    await client.close()


if __name__ == "__main__":
    sys.exit(main())
