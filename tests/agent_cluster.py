"""A small cluster with real node agents, for the agent's integration tests.

Two shapes:

- `netns` (root): every machine is a network namespace created for the test. A
  control namespace holds the machines' bridge (LAN `10.77.0.0/24`, gateway .1) and
  runs the control plane (one store member, one apiserver, the scheduler and the
  controller-manager), bound inside it, so agents reach the apiserver at 10.77.0.1 and
  the apiserver reaches agents at their machine address, as on a real fleet. Each
  machine namespace gets a veth into the bridge and runs one `kubelite agent`, whose
  pods get network namespaces of their own. No namespace has a route out of the
  machine. The test process reaches the apiserver through a forward from 127.0.0.1
  (provisioning.netns_forward), as an operator outside the fleet would.
- `loopback` (no root needed): the same processes on 127.0.0.1, agents with
  `--network host` on their own ports.

Names (namespaces, the agents' pod-namespace prefixes, cgroups) carry a random prefix
per fleet, so concurrent runs never collide; `close()` stops every process by PID and
removes every namespace carrying the prefix.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from apiserver.auth import kubeconfig, pki
from provisioning import netns
from provisioning.netns_forward import Forward
from tests import ports
from tests.clusters import Member, tail
from tests.control_plane import LoopThread
from tests.kubelite_cluster import REPO

LAN = "10.77.0"
API_PORT = 6443
STORE_PORT = 2379
PEER_PORT = 2380
READY_TIMEOUT = 60.0


def _ip(*args: str) -> None:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {proc.stderr.strip()}")


class AgentFleet:
    """A control plane and `machines` agents (see the module docstring)."""

    def __init__(self, directory: Path, loop: LoopThread, *, machines: int = 2,
                 mode: str = "netns") -> None:
        self.dir = directory
        self.loop = loop
        self.mode = mode
        self.prefix = "ka" + secrets.token_hex(3)
        self.count = machines
        self.members: dict[str, Member] = {}
        self.forward: Forward | None = None
        self.namespaces: list[str] = []
        self.node_names = [f"node-{i + 1}" for i in range(machines)]
        self.node_tokens = {name: secrets.token_hex(16) for name in self.node_names}
        self.admin_token = secrets.token_hex(16)
        self.env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
        self.agent_ports: dict[str, int] = {}
        self._argv: dict[str, list[str]] = {}
        self.api_url = ""
        self.kubeconfig = self.dir / "admin.kubeconfig"

    # --- where things run -----------------------------------------------------------

    @property
    def ctl(self) -> str:
        return f"{self.prefix}c"

    def machine(self, i: int) -> str:
        return f"{self.prefix}m{i + 1}"

    def machine_ip(self, i: int) -> str:
        return f"{LAN}.{11 + i}" if self.mode == "netns" else "127.0.0.1"

    def in_netns(self, name: str | None, argv: list[str]) -> list[str]:
        if self.mode != "netns" or name is None:
            return argv
        return ["nsenter", f"--net={netns.netns_path(name)}", "--", *argv]

    def run_in(self, name: str, argv: list[str], timeout: float = 30.0
               ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.in_netns(name, argv), capture_output=True, text=True,
                              timeout=timeout)

    # --- life cycle -----------------------------------------------------------------

    def start(self) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            if self.mode == "netns":
                self._make_network()
            self._make_pki()
            self._start_control_plane()
            for i in range(self.count):
                self.start_agent(i)
        except BaseException:
            self.close()
            raise

    def _make_network(self) -> None:
        netns.create(self.ctl)
        self.namespaces.append(self.ctl)
        _ip("-n", self.ctl, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.ctl, "addr", "add", f"{LAN}.1/24", "dev", "br0")
        _ip("-n", self.ctl, "link", "set", "br0", "up")
        for i in range(self.count):
            name = self.machine(i)
            netns.create(name)
            self.namespaces.append(name)
            veth = f"{self.prefix}v{i + 1}"
            _ip("-n", self.ctl, "link", "add", veth, "type", "veth", "peer", "name", "eth0",
                "netns", name)
            _ip("-n", self.ctl, "link", "set", veth, "master", "br0", "up")
            _ip("-n", name, "addr", "add", f"{self.machine_ip(i)}/24", "dev", "eth0")
            _ip("-n", name, "link", "set", "eth0", "up")

    def _make_pki(self) -> None:
        hosts = ["127.0.0.1", "localhost", f"{LAN}.1"]
        self.paths = pki.ensure_pki(self.dir / "pki", hosts)
        ca_cert = pki.load_cert(self.paths.ca_cert)
        ca_key = pki.load_private_key(self.paths.ca_key)
        cert, key = pki.issue_client_cert(ca_cert, ca_key, "kube-apiserver-kubelet-client",
                                          ["system:masters"])
        self.kubelet_client_cert = self.dir / "pki" / "apiserver-kubelet-client.crt"
        self.kubelet_client_key = self.dir / "pki" / "apiserver-kubelet-client.key"
        pki.write_pem(self.kubelet_client_cert, pki.cert_pem(cert))
        pki.write_pem(self.kubelet_client_key, pki.key_pem(key), private=True)
        lines = [f'{self.admin_token},admin,admin-uid,"system:masters"',
                 f"{secrets.token_hex(16)},system:kube-scheduler,scheduler-uid,",
                 f"{secrets.token_hex(16)},system:kube-controller-manager,cm-uid,"]
        lines += [f'{token},system:node:{name},{name}-uid,"system:nodes"'
                  for name, token in self.node_tokens.items()]
        self.tokens = self.dir / "tokens.csv"
        self.tokens.write_text("\n".join(lines) + "\n")
        self.tokens.chmod(0o600)
        self._component_tokens = {"scheduler": lines[1].split(",")[0],
                                  "controller-manager": lines[2].split(",")[0]}

    def _spawn(self, name: str, where: str | None, argv: list[str]) -> Member:
        member = Member(name, self.dir / name, self.dir / f"{name}.log")
        member.data_dir.mkdir(parents=True, exist_ok=True)
        member.spawn(self.in_netns(where, argv), self.env)
        self.members[name] = member
        self._argv[name] = self.in_netns(where, argv)
        return member

    def stop_member(self, name: str) -> None:
        self.members[name].stop()

    def start_member(self, name: str) -> None:
        """Start a stopped control-plane process again (same flags, same data)."""
        self.members[name].spawn(self._argv[name], self.env)
        if name == "apiserver":
            self._wait_ready(name)

    def _start_control_plane(self) -> None:
        if self.mode == "netns":
            store_port, peer_port, api_port = STORE_PORT, PEER_PORT, API_PORT
            api_listen = f"0.0.0.0:{api_port}"
            where: str | None = self.ctl
        else:
            store_port, peer_port, api_port = ports.free_ports(3)
            api_listen = f"127.0.0.1:{api_port}"
            where = None
        secret = self.dir / "peer.secret"
        secret.write_text(secrets.token_hex(32))
        secret.chmod(0o600)
        self._spawn("store", where, [
            sys.executable, "-m", "store.main", "--name", "s1",
            "--data-dir", str(self.dir / "store" / "data"),
            "--listen-client-urls", f"http://127.0.0.1:{store_port}",
            "--listen-peer-urls", f"127.0.0.1:{peer_port}",
            "--initial-cluster", f"s1=127.0.0.1:{peer_port}",
            "--peer-secret-file", str(secret)])
        self._spawn("apiserver", where, [
            sys.executable, "-m", "apiserver.main",
            "--store-endpoints", f"http://127.0.0.1:{store_port}",
            "--listen", api_listen,
            "--tls-cert-file", str(self.paths.serving_cert),
            "--tls-private-key-file", str(self.paths.serving_key),
            "--client-ca-file", str(self.paths.ca_cert),
            "--token-auth-file", str(self.tokens),
            "--service-account-key-file", str(self.paths.sa_pub),
            "--kubelet-client-certificate", str(self.kubelet_client_cert),
            "--kubelet-client-key", str(self.kubelet_client_key)])
        if self.mode == "netns":
            self.forward = Forward("127.0.0.1", 0, netns.netns_path(self.ctl), "127.0.0.1",
                                   api_port)
            self.loop.run(self.forward.start())
            self.api_url = f"https://127.0.0.1:{self.forward.port}"
            inside_url = f"https://127.0.0.1:{api_port}"
            self.agent_api_url = f"https://{LAN}.1:{api_port}"
        else:
            self.api_url = inside_url = self.agent_api_url = f"https://127.0.0.1:{api_port}"
        kubeconfig.write_kubeconfig(self.kubeconfig, [self.api_url], self.paths.ca_cert,
                                    "admin", token=self.admin_token)
        self._wait_ready("apiserver")
        for component, token in self._component_tokens.items():
            config = self.dir / f"{component}.kubeconfig"
            kubeconfig.write_kubeconfig(config, [inside_url], self.paths.ca_cert,
                                        f"system:kube-{component}", token=token)
            extra = ["--service-account-private-key-file", str(self.paths.sa_key),
                     "--cluster-cidr", "10.244.0.0/16"] \
                if component == "controller-manager" else []
            self._spawn(component, where, [sys.executable, "-m", "kubelite_cli", component,
                                           "--kubeconfig", str(config), *extra])

    def _wait_ready(self, name: str) -> None:
        context = ssl.create_default_context(cafile=str(self.paths.ca_cert))
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            member = self.members[name]
            if not member.running:
                raise RuntimeError(f"{name} exited\n{tail(member.log_path)}")
            try:
                with urllib.request.urlopen(self.api_url + "/readyz", timeout=2.0,
                                            context=context) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{name} did not become ready\n{tail(self.members[name].log_path)}")

    def agent_argv(self, i: int) -> list[str]:
        name = self.node_names[i]
        config = self.dir / f"{name}.kubeconfig"
        kubeconfig.write_kubeconfig(config, [self.agent_api_url], self.paths.ca_cert,
                                    f"system:node:{name}", token=self.node_tokens[name])
        if name not in self.agent_ports:
            self.agent_ports[name] = 10250 if self.mode == "netns" else ports.free_port()
        argv = [sys.executable, "-m", "kubelite_cli", "agent", "--kubeconfig", str(config),
                "--node-name", name, "--data-dir", str(self.dir / f"agent-{name}"),
                "--node-ip", self.machine_ip(i), "--port", str(self.agent_ports[name]),
                "--netns-prefix", f"{self.prefix}{i + 1}-",
                "--cgroup-root", f"kubelite-{self.prefix}",
                "--lease-interval", "2", "--status-interval", "10",
                "--client-ca-file", str(self.paths.ca_cert),
                "--network", "pods" if self.mode == "netns" else "host"]
        return argv

    def start_agent(self, i: int) -> Member:
        name = self.node_names[i]
        where = self.machine(i) if self.mode == "netns" else None
        member = Member(f"agent-{name}", self.dir / f"agent-{name}",
                        self.dir / f"agent-{name}.log")
        if f"agent-{name}" in self.members:
            member = self.members[f"agent-{name}"]
        else:
            self.members[member.name] = member
        member.spawn(self.in_netns(where, self.agent_argv(i)), self.env)
        return member

    def stop_agent(self, i: int, *, kill: bool = False) -> None:
        member = self.members[f"agent-{self.node_names[i]}"]
        if kill:
            member.kill()
        else:
            member.stop()

    def cleanup_agent(self, i: int) -> None:
        """Stop every container the agent started and remove its pod network."""
        where = self.machine(i) if self.mode == "netns" else None
        argv = self.agent_argv(i) + ["--cleanup"]
        subprocess.run(self.in_netns(where, argv), env=self.env, capture_output=True,
                       timeout=60)

    def close(self) -> None:
        for name, member in list(self.members.items()):
            if name.startswith("agent-"):
                member.stop()
        for i in range(self.count):
            if f"agent-{self.node_names[i]}" in self.members:
                self.cleanup_agent(i)
        for name, member in list(self.members.items()):
            if not name.startswith("agent-"):
                member.stop()
        if self.forward is not None:
            self.loop.run(self.forward.stop())
            self.forward = None
        for name in netns.list_with_prefix(self.prefix):
            if name not in self.namespaces:
                netns.remove(name)
        for name in reversed(self.namespaces):
            netns.remove(name)
        self.namespaces.clear()

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n{tail(m.log_path)}" for name, m in self.members.items())


async def wait_for(check: Any, timeout: float, interval: float = 0.2,
                   what: str = "condition") -> Any:
    """Await `check()` until it returns something truthy; bounded by `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise TimeoutError(f"timed out waiting for {what} (last: {last!r})")
