"""Apiservers for integration tests: real `kubelite apiserver` processes over a store.

`ApiserverCluster` starts N apiservers (TLS, token auth, RBAC) over any store cluster
handle (kubelite's or real etcd), writes the PKI, a token file and a kubeconfig into its
directory, and stops what it started.
"""

from __future__ import annotations

import os
import secrets
import ssl
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from apiserver.auth import kubeconfig, pki
from tests import ports
from tests.clusters import READY_TIMEOUT, ClusterStartError, Member, StoreClusterHandle, tail
from tests.kubelite_cluster import REPO


class ApiserverCluster:
    def __init__(self, store: StoreClusterHandle, directory: Path, count: int = 1,
                 extra_args: tuple[str, ...] = ()) -> None:
        self.store = store
        self.kind = f"apiservers over {store.kind}"
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.extra_args = extra_args
        self.pki_dir = self.dir / "pki"
        self.paths = pki.ensure_pki(self.pki_dir, ["127.0.0.1", "localhost"])
        self.admin_token = secrets.token_hex(16)
        self.viewer_token = secrets.token_hex(16)
        self.node_token = secrets.token_hex(16)
        (self.dir / "tokens.csv").write_text(
            f'{self.admin_token},admin,admin-uid,"system:masters"\n'
            f"{self.viewer_token},viewer,viewer-uid,\n"
            f'{self.node_token},system:node:node-1,node-1-uid,"system:nodes"\n')
        self._ports = ports.free_ports(count)
        self.urls = [f"https://127.0.0.1:{p}" for p in self._ports]
        self.members = [Member(f"apiserver{i}", self.dir / f"a{i}", self.dir / f"a{i}.log")
                        for i in range(count)]
        self.kubeconfig = self.dir / "kubeconfig"
        kubeconfig.write_kubeconfig(self.kubeconfig, self.urls, self.paths.ca_cert, "admin",
                                    token=self.admin_token)
        try:
            for i in range(count):
                self.start(i)
        except BaseException:
            self.close()
            raise

    def argv(self, i: int) -> list[str]:
        return [sys.executable, "-m", "apiserver.main",
                "--store-endpoints", ",".join(self.store.endpoints),
                "--listen", f"127.0.0.1:{self._ports[i]}",
                "--tls-cert-file", str(self.paths.serving_cert),
                "--tls-private-key-file", str(self.paths.serving_key),
                "--client-ca-file", str(self.paths.ca_cert),
                "--token-auth-file", str(self.dir / "tokens.csv"),
                "--service-account-key-file", str(self.paths.sa_pub),
                *self.extra_args]

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.paths.ca_cert))

    def ready(self, i: int) -> bool:
        try:
            with urllib.request.urlopen(self.urls[i] + "/readyz", timeout=1.0,
                                        context=self.ssl_context()) as resp:
                return resp.status == 200
        except urllib.error.HTTPError as err:  # e.g. 500 while the store is unreachable
            err.close()
            return False
        except OSError:
            return False

    def start(self, i: int) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        self.members[i].spawn(self.argv(i), env)
        deadline = time.monotonic() + READY_TIMEOUT
        while not self.ready(i):
            if not self.members[i].running or time.monotonic() > deadline:
                self.members[i].kill()
                raise ClusterStartError(f"apiserver {i} did not become ready\n"
                                        + tail(self.members[i].log_path))
            time.sleep(0.1)

    def kill(self, i: int) -> None:
        self.members[i].kill()

    def restart(self, i: int) -> None:
        """Kill apiserver i and start it again: a fresh watch cache, same port and PKI."""
        self.members[i].kill()
        self.start(i)

    def wait_bootstrapped(self, timeout: float = READY_TIMEOUT) -> None:
        """Wait until every apiserver serves the admin: the system namespaces and the
        default RBAC policy (which makes system:masters an admin) are written in the
        background after /readyz already answers."""
        probes = ["/api/v1/namespaces/kube-node-lease",
                  "/apis/rbac.authorization.k8s.io/v1/clusterroles/view"]
        deadline = time.monotonic() + timeout
        for url in self.urls:
            while not all(self._admin_gets(url, path) for path in probes):
                if time.monotonic() > deadline:
                    raise ClusterStartError("apiservers did not bootstrap within "
                                            f"{timeout:.0f} s\n" + self.log_tails())
                time.sleep(0.1)

    def _admin_gets(self, url: str, path: str) -> bool:
        req = urllib.request.Request(url + path,
                                     headers={"Authorization": f"Bearer {self.admin_token}"})
        try:
            with urllib.request.urlopen(req, timeout=2.0, context=self.ssl_context()) as resp:
                return resp.status == 200
        except urllib.error.HTTPError as err:
            err.close()
            return False
        except OSError:
            return False

    def log_tails(self) -> str:
        return "\n".join(f"--- {m.log_path} ---\n{tail(m.log_path)}" for m in self.members)

    def close(self) -> None:
        for member in self.members:
            member.kill()
        ports.release(self._ports)
