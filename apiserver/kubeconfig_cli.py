"""`kubelite kubeconfig`: write a kubeconfig that kubectl and kubelite's clients read.

    kubelite kubeconfig --server https://10.0.0.9:7443 \\
        --server https://10.0.0.1:6443,https://10.0.0.2:6443,https://10.0.0.3:6443 \\
        --certificate-authority pki/ca.crt --token-file admin.token --user admin \\
        --output admin.kubeconfig

The first --server is the one kubectl uses (a load balancer, typically); every server
is also listed in the `kubelite` cluster extension, which kubelite's own clients read to
fail over between apiservers themselves (apiserver/auth/kubeconfig.py). Credentials are
a bearer token or a client certificate and key. Files are referenced by absolute path,
or embedded with --embed-certs. A file written with --output is mode 0600.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from apiserver.auth import kubeconfig


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kubelite kubeconfig",
        description="Write a kubeconfig (one cluster, user and context, made current) for "
                    "kubectl and kubelite's clients.")
    p.add_argument("--server", action="append", default=[], required=True,
                   help="apiserver or load balancer URL, https://HOST:PORT; repeat (or comma "
                        "separate) for several: kubectl uses the first, kubelite's clients "
                        "fail over between all")
    p.add_argument("--certificate-authority", help="CA certificate (PEM) the servers' "
                                                   "certificates chain to")
    p.add_argument("--embed-certs", action="store_true",
                   help="embed the CA, client certificate and key instead of their paths")
    creds = p.add_mutually_exclusive_group()
    creds.add_argument("--token", help="bearer token (visible in the process list: prefer "
                                       "--token-file)")
    creds.add_argument("--token-file", help="file holding the bearer token")
    p.add_argument("--client-certificate", help="client certificate (PEM)")
    p.add_argument("--client-key", help="client key (PEM)")
    p.add_argument("--user", default="admin", help="user entry name (default admin)")
    p.add_argument("--namespace", default="default", help="the context's namespace")
    p.add_argument("--cluster-name", default=kubeconfig.DEFAULT_CLUSTER,
                   help=f"cluster entry name (default {kubeconfig.DEFAULT_CLUSTER})")
    p.add_argument("--output", "-o", default="-", help="file to write (default: stdout)")
    return p


def _source(path: str | None, embed: bool) -> bytes | Path | None:
    if path is None:
        return None
    return Path(path).read_bytes() if embed else Path(path)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    servers = [s.strip() for arg in args.server for s in arg.split(",") if s.strip()]
    try:
        token = args.token
        if args.token_file:
            token = Path(args.token_file).read_text().strip()
            if not token:
                raise kubeconfig.KubeconfigError(f"{args.token_file} is empty")
        ca = _source(args.certificate_authority, args.embed_certs)
        cert = _source(args.client_certificate, args.embed_certs)
        key = _source(args.client_key, args.embed_certs)
        if args.output == "-":
            config = kubeconfig.render_kubeconfig(servers, ca, args.user, token, cert, key,
                                                  args.namespace, args.cluster_name)
            yaml.safe_dump(config, sys.stdout, default_flow_style=False, sort_keys=False)
        else:
            kubeconfig.write_kubeconfig(args.output, servers, ca, args.user, token, cert, key,
                                        args.namespace, args.cluster_name)
    except (kubeconfig.KubeconfigError, OSError) as exc:
        print(f"kubelite kubeconfig: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
