"""What each machine of a fleet runs: its files and its processes, decided without I/O.

`render(inventory, material, store_order)` turns the inventory and the cluster's PKI
bytes into one `MachineConfig` per machine, following the same logic as the loopback
control plane (provisioning/loopback.py), spread over machines:

    control plane:  store  -> apiserver -> haproxy (balancer) -> scheduler, controller-manager
    worker:         agent

Everything a machine gets lives under the cluster's data_dir (`Layout`): `etc/` (0700)
holds the PKI files and kubeconfigs, `store/` and `agent/` the processes' state, `log/`
and `run/` what the supervisor writes; the software itself is the venv at install_dir.

The store's `--initial-cluster` is a function of `store_order` (the order in which
control planes entered the store): the first `bootstrap` members form the cluster
together (state `new`), each later one is told the members up to and including itself
(state `existing`). So a member's flags never change after it joined, and running
`up` again never restarts a store member because the fleet grew.

Each process carries a `config_hash` over its argv, environment and the content of
every file it reads, so that a re-run restarts exactly the processes whose inputs
changed (a renewed certificate restarts its process, nothing else).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import yaml

from apiserver import haproxy
from apiserver.auth import kubeconfig
from provisioning.inventory import Inventory, Machine

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HAPROXY = "/usr/sbin/haproxy"
STORE, APISERVER, BALANCER = "store", "apiserver", "haproxy"
SCHEDULER, CONTROLLER_MANAGER, AGENT = "scheduler", "controller-manager", "agent"
START_ORDER = (STORE, APISERVER, BALANCER, SCHEDULER, CONTROLLER_MANAGER, AGENT)
PRIVATE, PUBLIC = 0o600, 0o644


class ConfigError(ValueError):
    """The fleet cannot be configured as asked (e.g. PKI material is missing)."""


@dataclass(frozen=True)
class Layout:
    """Where things live on a machine."""

    data_dir: str
    install_dir: str

    @property
    def etc(self) -> str:
        return f"{self.data_dir}/etc"

    @property
    def pki(self) -> str:
        return f"{self.etc}/pki"

    @property
    def run(self) -> str:
        return f"{self.data_dir}/run"

    @property
    def log(self) -> str:
        return f"{self.data_dir}/log"

    @property
    def spec(self) -> str:
        """The supervisor's list of processes."""
        return f"{self.etc}/processes.json"

    @property
    def bundle_marker(self) -> str:
        return f"{self.install_dir}/.kubelite-bundle"

    def bin(self, name: str = "kubelite") -> str:
        return f"{self.install_dir}/bin/{name}"

    @property
    def python(self) -> str:
        return f"{self.install_dir}/bin/python"


@dataclass(frozen=True)
class FileSpec:
    content: bytes
    mode: int = PUBLIC

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    config_hash: str = ""
    ports: tuple[int, ...] = ()

    def to_json(self) -> dict:
        return {"name": self.name, "argv": list(self.argv), "env": dict(self.env),
                "config_hash": self.config_hash}


@dataclass(frozen=True)
class MachineConfig:
    name: str
    role: str
    address: str
    layout: Layout
    files: dict[str, FileSpec] = field(default_factory=dict)
    processes: tuple[ProcessSpec, ...] = ()

    @property
    def ports(self) -> list[int]:
        return sorted({p for proc in self.processes for p in proc.ports})

    def process(self, name: str) -> ProcessSpec:
        return next(p for p in self.processes if p.name == name)

    def spec_json(self) -> bytes:
        """The supervisor's spec file for these processes."""
        doc = {"processes": [p.to_json() for p in self.processes],
               "log_dir": self.layout.log, "run_dir": self.layout.run}
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


# --- the store's membership (pure) ----------------------------------------------------

def initial_cluster(order: Sequence[str], addresses: Mapping[str, str], name: str,
                    bootstrap: int, peer_port: int) -> tuple[str, str]:
    """(`--initial-cluster`, `--initial-cluster-state`) for member `name`."""
    if name not in order:
        raise ConfigError(f"{name} is not a store member")
    index = order.index(name)
    members = order[:max(bootstrap, index + 1)]
    text = ",".join(f"{m}={addresses[m]}:{peer_port}" for m in members)
    return text, "new" if index < bootstrap else "existing"


# --- rendering (pure) -------------------------------------------------------------------

def _hash(argv: Sequence[str], env: Mapping[str, str], files: Mapping[str, FileSpec],
          used: Sequence[str]) -> str:
    h = hashlib.sha256(json.dumps([list(argv), sorted(env.items())]).encode())
    for path in sorted(used):
        h.update(path.encode() + b"\0" + files[path].digest.encode())
    return h.hexdigest()[:16]


def _proc(name: str, argv: list[str], files: Mapping[str, FileSpec], ports: Sequence[int],
          extra_env: Mapping[str, str] | None = None) -> ProcessSpec:
    env = {"PATH": PATH, "PYTHONUNBUFFERED": "1", **(extra_env or {})}
    used = [a for a in argv if a in files]
    for a in argv:                        # --flag=value spellings
        if "=" in a and a.split("=", 1)[1] in files:
            used.append(a.split("=", 1)[1])
    return ProcessSpec(name, tuple(argv), tuple(sorted(env.items())),
                       _hash(argv, env, files, used), tuple(ports))


def _kubeconfig(servers: Sequence[str], ca: bytes, user: str, cert: bytes, key: bytes) -> bytes:
    doc = kubeconfig.render_kubeconfig(list(servers), ca, user, client_cert=cert,
                                       client_key=key)
    return yaml.safe_dump(doc, default_flow_style=False, sort_keys=False).encode()


def _need(material: Mapping[str, bytes], name: str) -> bytes:
    try:
        return material[name]
    except KeyError:
        raise ConfigError(f"PKI material {name!r} is missing") from None


def apiserver_urls(inv: Inventory, first: str | None = None) -> list[str]:
    """Every apiserver, `first` (a control plane's name) leading."""
    cps = sorted(inv.control_planes, key=lambda m: m.name != first)
    return [f"https://{m.address}:{inv.cluster.ports.apiserver}" for m in cps]


def balancer_urls(inv: Inventory) -> list[str]:
    port = inv.cluster.ports.load_balancer
    return [f"https://{a}:{port}" for a in inv.load_balancer_addresses]


def control_plane(inv: Inventory, m: Machine, material: Mapping[str, bytes],
                  store_order: Sequence[str], bootstrap: int) -> MachineConfig:
    c, ports = inv.cluster, inv.cluster.ports
    lay = Layout(c.data_dir, c.install_dir)
    pk = lay.pki
    ca = _need(material, "ca.crt")
    files = {
        f"{pk}/ca.crt": FileSpec(ca),
        f"{pk}/apiserver.crt": FileSpec(_need(material, f"apiserver/{m.name}.crt")),
        f"{pk}/apiserver.key": FileSpec(_need(material, f"apiserver/{m.name}.key"), PRIVATE),
        f"{pk}/apiserver-kubelet-client.crt":
            FileSpec(_need(material, "apiserver-kubelet-client.crt")),
        f"{pk}/apiserver-kubelet-client.key":
            FileSpec(_need(material, "apiserver-kubelet-client.key"), PRIVATE),
        f"{pk}/sa.pub": FileSpec(_need(material, "sa.pub")),
        f"{pk}/sa.key": FileSpec(_need(material, "sa.key"), PRIVATE),
        f"{pk}/peer-secret": FileSpec(_need(material, "peer-secret"), PRIVATE),
    }
    own_api = apiserver_urls(inv, m.name)
    for user, leaf in ((SCHEDULER, "scheduler"), (CONTROLLER_MANAGER, "controller-manager")):
        files[f"{lay.etc}/{user}.kubeconfig"] = FileSpec(_kubeconfig(
            own_api, ca, leaf, _need(material, f"{leaf}.crt"), _need(material, f"{leaf}.key")),
            PRIVATE)
    addresses = {x.name: x.address for x in inv.control_planes}
    members = [n for n in store_order if n in addresses]
    initial, state = initial_cluster(members, addresses, m.name, bootstrap, ports.store_peer)
    store_urls = [f"http://{addresses[n]}:{ports.store_client}"
                  for n in sorted(members, key=lambda n: n != m.name)]
    kl = lay.bin()
    procs = [
        _proc(STORE, [kl, "store", "--name", m.name, "--data-dir", f"{c.data_dir}/store",
                      "--listen-client-urls", f"http://{m.address}:{ports.store_client}",
                      "--listen-peer-urls", f"{m.address}:{ports.store_peer}",
                      "--initial-cluster", initial, "--initial-cluster-state", state,
                      "--initial-cluster-token", c.name,
                      "--peer-secret-file", f"{pk}/peer-secret"],
              files, (ports.store_client, ports.store_peer)),
        _proc(APISERVER, [kl, "apiserver", "--store-endpoints", ",".join(store_urls),
                          "--listen", f"0.0.0.0:{ports.apiserver}",
                          "--tls-cert-file", f"{pk}/apiserver.crt",
                          "--tls-private-key-file", f"{pk}/apiserver.key",
                          "--client-ca-file", f"{pk}/ca.crt",
                          "--service-account-key-file", f"{pk}/sa.pub",
                          "--service-cluster-ip-range", c.service_cidr,
                          "--kubelet-certificate-authority", f"{pk}/ca.crt",
                          "--kubelet-client-certificate", f"{pk}/apiserver-kubelet-client.crt",
                          "--kubelet-client-key", f"{pk}/apiserver-kubelet-client.key"],
              files, (ports.apiserver,)),
    ]
    if c.load_balancer == "control-planes":
        cfg = f"{lay.etc}/haproxy.cfg"
        files[cfg] = FileSpec(haproxy.render(apiserver_urls(inv), f"0.0.0.0:{ports.load_balancer}",
                                             ca_file=f"{pk}/ca.crt").encode())
        procs.append(_proc(BALANCER, [HAPROXY, "-f", cfg, "-db"], files, (ports.load_balancer,)))
    procs.append(_proc(SCHEDULER, [kl, "scheduler", "--kubeconfig",
                                   f"{lay.etc}/{SCHEDULER}.kubeconfig"], files, ()))
    procs.append(_proc(CONTROLLER_MANAGER, [
        kl, "controller-manager", "--kubeconfig", f"{lay.etc}/{CONTROLLER_MANAGER}.kubeconfig",
        "--service-account-private-key-file", f"{pk}/sa.key", "--root-ca-file", f"{pk}/ca.crt",
        "--cluster-cidr", c.cluster_cidr, "--node-cidr-mask-size", str(c.node_cidr_mask_size)],
        files, ()))
    return MachineConfig(m.name, m.role, m.address, lay, files, tuple(procs))


def worker(inv: Inventory, m: Machine, material: Mapping[str, bytes]) -> MachineConfig:
    c = inv.cluster
    lay = Layout(c.data_dir, c.install_dir)
    pk = lay.pki
    ca = _need(material, "ca.crt")
    files = {
        f"{pk}/ca.crt": FileSpec(ca),
        f"{pk}/agent.crt": FileSpec(_need(material, f"agents/{m.name}.crt")),
        f"{pk}/agent.key": FileSpec(_need(material, f"agents/{m.name}.key"), PRIVATE),
        f"{lay.etc}/node.kubeconfig": FileSpec(_kubeconfig(
            balancer_urls(inv), ca, f"system:node:{m.name}",
            _need(material, f"nodes/{m.name}.crt"), _need(material, f"nodes/{m.name}.key")),
            PRIVATE),
    }
    argv = [lay.bin(), "agent", "--kubeconfig", f"{lay.etc}/node.kubeconfig",
            "--node-name", m.name, "--data-dir", f"{c.data_dir}/agent",
            "--node-ip", m.address, "--port", str(c.ports.agent),
            "--tls-cert-file", f"{pk}/agent.crt", "--tls-private-key-file", f"{pk}/agent.key",
            "--client-ca-file", f"{pk}/ca.crt", "--cgroup-root", cgroup_root(m.name)]
    if m.labels:
        argv += ["--node-labels", ",".join(f"{k}={v}" for k, v in sorted(m.labels.items()))]
    procs = (_proc(AGENT, argv, files, (c.ports.agent,)),)
    return MachineConfig(m.name, m.role, m.address, lay, files, procs)


def cgroup_root(node: str) -> str:
    """Per node, so that machines sharing one kernel (the lab) keep their pods apart."""
    return f"kubelite-{node}"


def render(inv: Inventory, material: Mapping[str, bytes], store_order: Sequence[str],
           bootstrap: int | None = None) -> dict[str, MachineConfig]:
    """Every machine's configuration, in inventory order. Control planes not yet in
    `store_order` are left out (they enter through a join, one at a time)."""
    bootstrap = len(store_order) if bootstrap is None else bootstrap
    out: dict[str, MachineConfig] = {}
    for m in inv.machines:
        if m.is_control_plane:
            if m.name in store_order:
                out[m.name] = control_plane(inv, m, material, store_order, bootstrap)
        else:
            out[m.name] = worker(inv, m, material)
    return out
