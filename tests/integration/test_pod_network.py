"""Pod networking and the service proxy on real namespaces, veths, routes and nftables.

Two "machines" are network namespaces joined by a bridge in a third ("lan"), with no
link to the root namespace and no default route anywhere, so no packet can leave:

    <P>-lan:  br0 ── p-a ═veth═ eth0 10.250.0.11/24   <P>-a  (podCIDR 10.244.1.0/24)
                 └── p-b ═veth═ eth0 10.250.0.12/24   <P>-b  (podCIDR 10.244.2.0/24)

Each machine runs `tests.netns_driver` (PodNetwork + ServiceProxy) under
`nsenter --net`, exactly as the agent would run there; pods are the namespaces it makes
(`<P>a-<id>`, `<P>b-<id>`), and the test starts servers and clients inside them with
`nsenter --net=<pod netns path>`. <P> is `kn` plus 6 random hex digits per test; at the
end every process the test started is killed by PID and every namespace whose name starts
with <P> is deleted, whatever happened.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import select
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents import routes
from agents.pod_network import HostNetwork, PodAddress, PodNetwork, PodNetworkError, short_id
from agents.service_proxy import ServiceProxy
from tests.privileges import needs_root

REPO = Path(__file__).resolve().parents[2]
NETNS_DIR = "/run/netns"
CALL_TIMEOUT = 60.0
SERVER_START_TIMEOUT = 15.0
CLIENT_TIMEOUT = 60.0
BACKEND_PORT = 8080
MACHINES = {
    "a": {"ip": "10.250.0.11", "pod_cidr": "10.244.1.0/24"},
    "b": {"ip": "10.250.0.12", "pod_cidr": "10.244.2.0/24"},
}
SERVICE_CIDR = "10.96.0.0/24"

CLIENT = r"""
import json, sys, urllib.request
url, count = sys.argv[1], int(sys.argv[2])
out = []
for _ in range(count):
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            out.append(reply.read().decode().strip())
    except Exception as exc:
        out.append(f"error: {type(exc).__name__}: {getattr(exc, 'reason', exc)}")
print(json.dumps(out))
"""



def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=30, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed: {done.stderr.strip()}")
    return done


class Driver:
    """A tests.netns_driver process inside one machine namespace."""

    def __init__(self, machine_netns: str, log_path: Path) -> None:
        self.log = open(log_path, "ab")  # noqa: SIM115 (closed in close())
        self.proc = subprocess.Popen(
            ["nsenter", f"--net={NETNS_DIR}/{machine_netns}", sys.executable, "-m",
             "tests.netns_driver"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, cwd=REPO,
            text=True)

    def call(self, op: str, **args: Any) -> Any:
        reply = self.try_call(op, **args)
        if not reply["ok"]:
            raise AssertionError(f"{op} failed: {reply['error']}\n{reply.get('trace', '')}")
        return reply["result"]

    def try_call(self, op: str, **args: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], CALL_TIMEOUT)
        if not ready:
            raise AssertionError(f"driver gave no answer to {op} within {CALL_TIMEOUT} s")
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"driver exited during {op} (rc={self.proc.poll()})")
        return json.loads(line)

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(10)
        finally:
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.log.close()


class Lab:
    """Two machine namespaces on a private lan; everything named with one random prefix."""

    def __init__(self, tmp_path: Path) -> None:
        self.prefix = f"kn{secrets.token_hex(3)}"
        self.tmp = tmp_path
        self.lan = f"{self.prefix}-lan"
        self.table = f"kl{self.prefix}"
        self.drivers: dict[str, Driver] = {}
        self.processes: list[subprocess.Popen[bytes]] = []

    # -- machines ------------------------------------------------------------------

    def machine_netns(self, m: str) -> str:
        return f"{self.prefix}-{m}"

    def pod_prefix(self, m: str) -> str:
        return f"{self.prefix}{m}-"

    def data_dir(self, m: str) -> Path:
        return self.tmp / f"machine-{m}"

    def up(self) -> None:
        run("ip", "netns", "add", self.lan)
        run("ip", "-n", self.lan, "link", "set", "lo", "up")
        run("ip", "-n", self.lan, "link", "add", "br0", "type", "bridge")
        run("ip", "-n", self.lan, "link", "set", "br0", "up")
        for m, spec in MACHINES.items():
            ns = self.machine_netns(m)
            run("ip", "netns", "add", ns)
            run("ip", "-n", self.lan, "link", "add", f"p-{m}", "type", "veth",
                "peer", "name", "eth0", "netns", ns)
            run("ip", "-n", self.lan, "link", "set", f"p-{m}", "master", "br0", "up")
            run("ip", "-n", ns, "link", "set", "lo", "up")
            run("ip", "-n", ns, "addr", "add", f"{spec['ip']}/24", "dev", "eth0")
            run("ip", "-n", ns, "link", "set", "eth0", "up")
            self.start_driver(m)

    def start_driver(self, m: str) -> Driver:
        driver = Driver(self.machine_netns(m), self.tmp / f"driver-{m}.log")
        self.drivers[m] = driver
        driver.call("init", data_dir=str(self.data_dir(m)), netns_prefix=self.pod_prefix(m),
                    service_cidr=SERVICE_CIDR)
        return driver

    def setup_nodes(self) -> None:
        """Bridges up on both machines, routes to each other's podCIDR, proxies ready."""
        nodes = [node_object(m, spec) for m, spec in MACHINES.items()]
        for m, spec in MACHINES.items():
            self.drivers[m].call("setup", pod_cidr=spec["pod_cidr"], node_ip=spec["ip"])
            self.drivers[m].call("sync_routes", desired=routes.desired_routes(nodes, f"node-{m}"))
            self.drivers[m].call("proxy_init", table=self.table, pod_cidr=spec["pod_cidr"],
                                bridge="kl0")

    def sync_services(self, services: list[dict], endpoints: list[dict]) -> None:
        for driver in self.drivers.values():
            driver.call("proxy_sync", services=services, endpoints=endpoints)

    # -- pods ----------------------------------------------------------------------

    def add_pod(self, m: str, name: str) -> dict[str, Any]:
        return self.drivers[m].call("add_pod", uid=f"uid-{self.prefix}-{name}",
                                    namespace="default", name=name)

    def serve(self, pod: dict[str, Any], body: str, port: int = BACKEND_PORT) -> None:
        """`python -m http.server` in the pod, answering `body` at /id."""
        root = self.tmp / f"www-{body}-{port}"
        root.mkdir()
        (root / "id").write_text(body + "\n")
        proc = subprocess.Popen(
            ["nsenter", f"--net={pod['netns_path']}", sys.executable, "-u", "-m", "http.server",
             "--bind", pod["ip"], "--directory", str(root), str(port)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.processes.append(proc)
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], SERVER_START_TIMEOUT)
        line = proc.stdout.readline().decode() if ready else ""
        assert "Serving HTTP" in line, f"http.server in {body} did not start: {line!r}"

    def fetch(self, netns_path: str, url: str, count: int = 1) -> list[str]:
        """GET `url` `count` times from inside the namespace (one connection each)."""
        done = subprocess.run(
            ["nsenter", f"--net={netns_path}", sys.executable, "-c", CLIENT, url, str(count)],
            capture_output=True, text=True, timeout=CLIENT_TIMEOUT, check=False)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    # -- cleanup -------------------------------------------------------------------

    def our_netns(self) -> list[str]:
        return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(self.prefix)) \
            if os.path.isdir(NETNS_DIR) else []

    def down(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
            if proc.stdout is not None:
                proc.stdout.close()
        for driver in self.drivers.values():
            driver.close()
        for name in self.our_netns():
            run("ip", "netns", "del", name, check=False)


def node_object(m: str, spec: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"name": f"node-{m}"}, "spec": {"podCIDR": spec["pod_cidr"]},
            "status": {"addresses": [{"type": "InternalIP", "address": spec["ip"]},
                                     {"type": "Hostname", "address": f"node-{m}"}]}}


def service(name: str, cluster_ip: str, port: int = 80, node_port: int | None = None) -> dict:
    spec_port: dict[str, Any] = {"port": port, "targetPort": BACKEND_PORT, "protocol": "TCP"}
    spec: dict[str, Any] = {"type": "ClusterIP", "clusterIP": cluster_ip, "ports": [spec_port]}
    if node_port is not None:
        spec["type"] = "NodePort"
        spec_port["nodePort"] = node_port
    return {"metadata": {"name": name, "namespace": "default"}, "spec": spec}


def endpoints(name: str, *pods: dict[str, Any]) -> dict:
    subsets = [{"addresses": [{"ip": p["ip"]} for p in pods],
                "ports": [{"port": BACKEND_PORT, "protocol": "TCP"}]}] if pods else []
    return {"metadata": {"name": name, "namespace": "default"}, "subsets": subsets}


def links(netns: str) -> list[str]:
    out = run("ip", "-n", netns, "-o", "link", "show").stdout
    return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]


def sysctl(netns: str, name: str) -> str:
    return run("nsenter", f"--net={NETNS_DIR}/{netns}", "cat", f"/proc/sys/{name}").stdout.strip()


def route_table(netns: str) -> str:
    return run("ip", "-n", netns, "-4", "route", "show").stdout


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    the_lab = Lab(tmp_path)
    try:
        the_lab.up()
        yield the_lab
    finally:
        the_lab.down()
    assert the_lab.our_netns() == []


# -- tests ---------------------------------------------------------------------------------


@needs_root
def test_pod_to_pod_across_machines(lab: Lab) -> None:
    lab.setup_nodes()
    client = lab.add_pod("a", "client")
    server = lab.add_pod("b", "server")
    assert client["ip"].startswith("10.244.1.") and server["ip"].startswith("10.244.2.")
    assert client["gateway"] == "10.244.1.1" and server["gateway"] == "10.244.2.1"
    lab.serve(server, "server-on-b")

    assert lab.fetch(client["netns_path"], f"http://{server['ip']}:{BACKEND_PORT}/id") \
        == ["server-on-b"]
    assert "10.244.2.0/24 via 10.250.0.12 dev eth0 proto 75" \
        in route_table(lab.machine_netns("a"))
    assert sysctl(lab.machine_netns("a"), "net/ipv4/ip_forward") == "1"
    # The gateway's MAC is fixed, not the lowest of the pods' veths.
    assert "link/ether 0a:4b:0a:f4:01:01" in run("ip", "-n", lab.machine_netns("a"), "link",
                                                 "show", "kl0").stdout
    assert sysctl(lab.machine_netns("a"), "net/bridge/bridge-nf-call-iptables") == "0"


@needs_root
def test_concurrent_add_pods_get_distinct_working_addresses(lab: Lab) -> None:
    lab.setup_nodes()
    pods = [{"uid": f"uid-{lab.prefix}-c{i}", "namespace": "default", "name": f"c{i}"}
            for i in range(8)]
    added = lab.drivers["b"].call("add_pods", pods=pods)
    assert len({p["ip"] for p in added}) == 8
    assert len({p["netns_name"] for p in added}) == 8
    assert sorted(lab.drivers["b"].call("list_pods")) == sorted(p["uid"] for p in pods)
    # Each can be reached from a pod on the other machine.
    lab.serve(added[0], "c0")
    lab.serve(added[7], "c7")
    client = lab.add_pod("a", "client")
    assert lab.fetch(client["netns_path"], f"http://{added[0]['ip']}:{BACKEND_PORT}/id") \
        == ["c0"]
    assert lab.fetch(client["netns_path"], f"http://{added[7]['ip']}:{BACKEND_PORT}/id") \
        == ["c7"]


@needs_root
def test_cluster_ip_balances_over_backends_on_both_machines(lab: Lab) -> None:
    lab.setup_nodes()
    backend_a, backend_b = lab.add_pod("a", "web-a"), lab.add_pod("b", "web-b")
    client = lab.add_pod("a", "client")
    lab.serve(backend_a, "web-a")
    lab.serve(backend_b, "web-b")
    lab.sync_services([service("web", "10.96.0.10")], [endpoints("web", backend_a, backend_b)])

    answers = lab.fetch(client["netns_path"], "http://10.96.0.10/id", count=30)
    assert sorted(set(answers)) == ["web-a", "web-b"], answers
    # From machine b itself (the nat output hook), not only from pods.
    from_node = lab.fetch(f"{NETNS_DIR}/{lab.machine_netns('b')}", "http://10.96.0.10/id", 30)
    assert sorted(set(from_node)) == ["web-a", "web-b"], from_node


@needs_root
def test_hairpin_to_itself_and_to_a_pod_on_the_same_node(lab: Lab) -> None:
    lab.setup_nodes()
    lonely, neighbour, caller = (lab.add_pod("a", n) for n in ("lonely", "neighbour", "caller"))
    lab.serve(lonely, "lonely")
    lab.serve(neighbour, "neighbour")
    lab.sync_services([service("self", "10.96.0.11"), service("near", "10.96.0.12")],
                      [endpoints("self", lonely), endpoints("near", neighbour)])

    assert lab.fetch(lonely["netns_path"], "http://10.96.0.11/id", 3) == ["lonely"] * 3
    assert lab.fetch(caller["netns_path"], "http://10.96.0.12/id", 3) == ["neighbour"] * 3


@needs_root
def test_node_port_from_the_other_machine(lab: Lab) -> None:
    lab.setup_nodes()
    backend_a, backend_b = lab.add_pod("a", "np-a"), lab.add_pod("b", "np-b")
    client_b = lab.add_pod("b", "np-client")
    lab.serve(backend_a, "np-a")
    lab.serve(backend_b, "np-b")
    lab.sync_services([service("np", "10.96.0.13", node_port=30080)],
                      [endpoints("np", backend_a, backend_b)])

    url = f"http://{MACHINES['a']['ip']}:30080/id"
    # From a pod on b and from machine b itself to a's NodePort; a's choice of backend
    # includes b's pod, which answers through a thanks to the masquerade.
    from_pod = lab.fetch(client_b["netns_path"], url, 30)
    from_node = lab.fetch(f"{NETNS_DIR}/{lab.machine_netns('b')}", url, 30)
    assert sorted(set(from_pod)) == ["np-a", "np-b"], from_pod
    assert sorted(set(from_node)) == ["np-a", "np-b"], from_node


@needs_root
def test_service_without_ready_endpoints_is_refused(lab: Lab) -> None:
    lab.setup_nodes()
    client = lab.add_pod("a", "client")
    lab.sync_services([service("empty", "10.96.0.14", node_port=30081)],
                      [endpoints("empty")])

    answers = lab.fetch(client["netns_path"], "http://10.96.0.14/id")
    answers += lab.fetch(f"{NETNS_DIR}/{lab.machine_netns('b')}",
                         f"http://{MACHINES['a']['ip']}:30081/id")
    assert all("Connection refused" in a for a in answers), answers


@needs_root
def test_proxy_applies_only_changes(lab: Lab) -> None:
    lab.setup_nodes()
    driver = lab.drivers["a"]
    # This kernel has nf_tables but no IPVS (checked, not assumed).
    expected = "ipvs" if os.path.exists("/proc/net/ip_vs") else "nftables"
    assert driver.call("detect_proxy_mode") == expected
    objects = {"services": [service("web", "10.96.0.10")],
               "endpoints": [endpoints("web", {"ip": "10.244.1.50"})]}
    assert driver.call("proxy_sync", **objects) is True
    assert driver.call("proxy_sync", **objects) is False
    listing = run("ip", "netns", "exec", lab.machine_netns("a"), "nft", "list", "table", "ip",
                  lab.table).stdout
    assert "dnat to 10.244.1.50:8080" in listing
    objects["endpoints"] = [endpoints("web", {"ip": "10.244.1.51"})]
    assert driver.call("proxy_sync", **objects) is True
    listing = run("ip", "netns", "exec", lab.machine_netns("a"), "nft", "list", "table", "ip",
                  lab.table).stdout
    assert "10.244.1.51:8080" in listing and "10.244.1.50" not in listing
    driver.call("proxy_teardown")
    gone = run("ip", "netns", "exec", lab.machine_netns("a"), "nft", "list", "tables").stdout
    assert lab.table not in gone


@needs_root
def test_add_pod_is_idempotent_and_survives_a_restart(lab: Lab) -> None:
    lab.setup_nodes()
    first = lab.add_pod("a", "steady")
    assert lab.add_pod("a", "steady") == first
    machine = lab.machine_netns("a")
    assert links(machine).count(first["host_veth"]) == 1
    pod_ns = first["netns_name"]
    addresses = run("ip", "-n", pod_ns, "-4", "-o", "addr", "show", "dev", "eth0").stdout
    assert addresses.count("inet ") == 1 and f"inet {first['ip']}/24" in addresses
    assert "default via 10.244.1.1 dev eth0" in route_table(pod_ns)

    lab.drivers["a"].close()  # the agent stops; the pod's namespace stays
    driver = lab.start_driver("a")
    assert driver.call("list_pods") == [f"uid-{lab.prefix}-steady"]
    driver.call("setup", pod_cidr=MACHINES["a"]["pod_cidr"], node_ip=MACHINES["a"]["ip"])
    second = lab.add_pod("a", "steady")
    assert second == first
    assert links(machine).count(first["host_veth"]) == 1
    other = lab.add_pod("a", "another")
    assert other["ip"] != first["ip"]


@needs_root
def test_remove_pod_leaves_nothing(lab: Lab) -> None:
    lab.setup_nodes()
    kept = lab.add_pod("a", "kept")
    gone = lab.add_pod("a", "gone")
    uid = f"uid-{lab.prefix}-gone"
    lab.drivers["a"].call("remove_pod", uid=uid)
    lab.drivers["a"].call("remove_pod", uid=uid)  # again: nothing left to do, no error

    machine = lab.machine_netns("a")
    assert not os.path.exists(gone["netns_path"])
    assert gone["host_veth"] not in links(machine)
    assert kept["host_veth"] in links(machine)
    assert gone["ip"] not in route_table(machine)
    assert lab.drivers["a"].call("list_pods") == [f"uid-{lab.prefix}-kept"]
    table = json.loads((lab.data_dir("a") / "ipam.json").read_text())
    assert table["allocations"] == {f"uid-{lab.prefix}-kept": kept["ip"]}
    assert lab.fetch(kept["netns_path"], "http://10.244.1.1:1/", 1)[0].startswith("error")


@needs_root
def test_sync_routes_touches_only_its_own_routes(lab: Lab) -> None:
    lab.setup_nodes()
    machine, driver = lab.machine_netns("a"), lab.drivers["a"]
    run("ip", "-n", machine, "route", "add", "10.244.8.0/24", "via", "10.250.0.12")
    driver.call("sync_routes", desired={"10.244.2.0/24": "10.250.0.12",
                                        "10.244.9.0/24": "10.250.0.13"})
    owned = driver.call("owned_routes")
    assert owned == {"10.244.2.0/24": "10.250.0.12", "10.244.9.0/24": "10.250.0.13",
                     SERVICE_CIDR: ""}
    driver.call("sync_routes", desired={"10.244.2.0/24": "10.250.0.14"})
    assert driver.call("owned_routes") == {"10.244.2.0/24": "10.250.0.14", SERVICE_CIDR: ""}
    assert "10.244.8.0/24 via 10.250.0.12" in route_table(machine)


@needs_root
def test_teardown_leaves_nothing(lab: Lab) -> None:
    lab.setup_nodes()
    pods = [lab.add_pod("a", "t1"), lab.add_pod("a", "t2")]
    lab.sync_services([service("web", "10.96.0.10")], [endpoints("web", *pods)])
    driver, machine = lab.drivers["a"], lab.machine_netns("a")
    driver.call("proxy_teardown")
    driver.call("teardown")
    driver.call("teardown")  # twice: nothing left, no error

    assert not [n for n in os.listdir(NETNS_DIR) if n.startswith(lab.pod_prefix("a"))]
    assert links(machine) == ["lo", "eth0"]
    assert route_table(machine).strip() == "10.250.0.0/24 dev eth0 proto kernel scope link src 10.250.0.11"
    assert lab.table not in run("ip", "netns", "exec", machine, "nft", "list", "tables").stdout
    assert not (lab.data_dir("a") / "ipam.json").exists()
    assert driver.call("list_pods") == []


# -- userspace mode: loopback only, no root ------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_userspace_proxy_round_robins_node_port_on_loopback() -> None:
    async def scenario() -> list[bytes]:
        async def answer(name: bytes, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
            request = await reader.read(100)
            writer.write(name + b":" + request)
            await writer.drain()
            writer.close()

        servers = [await asyncio.start_server(lambda r, w, n=n: answer(n, r, w), "127.0.0.1", 0)
                   for n in (b"one", b"two")]
        ports = [s.sockets[0].getsockname()[1] for s in servers]
        node_port = free_port()
        svc = {"metadata": {"name": "u", "namespace": "default"},
               "spec": {"type": "NodePort", "clusterIP": "10.96.0.99",
                        "ports": [{"port": 80, "nodePort": node_port, "protocol": "TCP"}]}}
        eps = {"metadata": {"name": "u", "namespace": "default"},
               "subsets": [{"addresses": [{"ip": "127.0.0.1"}],
                            "ports": [{"port": ports[0], "protocol": "TCP"}]},
                           {"addresses": [{"ip": "127.0.0.1"}],
                            "ports": [{"port": ports[1], "protocol": "TCP"}]}]}
        # Two subsets with different ports for one address: both are backends.
        proxy = ServiceProxy("userspace", node_ip="127.0.0.1")
        answers = []
        try:
            assert await proxy.sync([svc], [eps]) is True
            assert await proxy.sync([svc], [eps]) is False
            for _ in range(4):
                reader, writer = await asyncio.open_connection("127.0.0.1", node_port)
                writer.write(b"hi")
                writer.write_eof()
                answers.append(await asyncio.wait_for(reader.read(), 10))
                writer.close()
                await writer.wait_closed()
        finally:
            await proxy.teardown()
            for s in servers:
                s.close()
                await s.wait_closed()
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", node_port)
        return answers

    answers = asyncio.run(scenario())
    assert sorted(answers) == [b"one:hi", b"one:hi", b"two:hi", b"two:hi"]



def test_host_network_gives_every_pod_the_node_address(tmp_path: Path) -> None:
    async def scenario() -> None:
        host = HostNetwork()
        with pytest.raises(PodNetworkError):
            await host.add_pod("u1", "default", "p1")
        await host.setup("10.244.1.0/24", "127.0.0.7")
        address = await host.add_pod("u1", "default", "p1")
        assert address == PodAddress(ip="127.0.0.7", gateway=None, netns_name=None,
                                     netns_path=None, host_veth=None)
        assert await host.list_pods() == ["u1"]
        await host.sync_routes({"10.244.2.0/24": "127.0.0.8"})
        await host.remove_pod("u1")
        await host.remove_pod("u1")
        assert await host.list_pods() == []

    asyncio.run(scenario())


def test_pod_names_fit_link_names_and_are_stable(tmp_path: Path) -> None:
    net = PodNetwork(data_dir=tmp_path, netns_prefix="kl-")
    uid = "0c6a3f1e-6b7c-4a51-9d55-2f0b6f3d8a11"
    assert net.host_veth(uid) == net.host_veth(uid) == f"klv{short_id(uid)}"
    assert len(net.host_veth(uid)) <= 15
    assert net.netns_name(uid) == f"kl-{short_id(uid)}"
    assert net.host_veth(uid) != net.host_veth(uid.replace("0c", "0d"))
    with pytest.raises(ValueError):
        PodNetwork(data_dir=tmp_path, veth_prefix="too-long-")

    async def before_setup() -> None:
        with pytest.raises(PodNetworkError, match="setup"):
            await net.add_pod(uid, "default", "p")

    asyncio.run(before_setup())
