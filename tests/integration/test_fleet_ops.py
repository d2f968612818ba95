"""Fleet operations end to end on the lab (root): refused SSH keys and changed host keys
stop `up` before any change; two control planes join a running fleet one at a time
(the store grows 3 -> 4 -> 5 through its leader); `certs rotate --force` renews every
leaf and restarts the processes one machine at a time while the cluster keeps
answering; a snapshot is saved, listed and restored; `down` leaves nothing behind.

One lab (5 control planes + 1 worker) serves the module; the first inventory lists
three of the control planes, the other two are added before they join. The tests run
in file order and build on each other, as an operator's day would. The prefix carries a
random token and the subnet is a free 10.251.x.0/24, so parallel runs never meet; all
traffic stays inside the lab.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from provisioning import cluster_pki, lab, lab_build, lab_plan, netns
from tests.privileges import require_root

pytestmark = pytest.mark.timeout(300)
REPO = Path(__file__).resolve().parents[2]
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"

# Run inside the lab's ctl namespace: read one ConfigMap through each kubeconfig given
# (one per apiserver), or create it first when asked to.
API_SCRIPT = r"""
import asyncio, json, sys
from apiserver.client import ApiClient
from apiserver.client_policy import ApiStatusError

async def main(action, name, paths):
    out = []
    for path in paths:
        async with ApiClient.from_kubeconfig(path, timeout=10.0) as api:
            if action == "create":
                await api.create({"apiVersion": "v1", "kind": "ConfigMap",
                                  "metadata": {"name": name}, "data": {"k": name}},
                                 namespace="default")
                action = "get"
            try:
                obj = await api.get(f"/api/v1/namespaces/default/configmaps/{name}")
                out.append(obj["data"]["k"])
            except ApiStatusError as exc:
                out.append(exc.code)
    print(json.dumps(out))

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
"""


@dataclass
class Fleet:
    lab_dir: Path
    plan: lab_plan.LabPlan
    base: Path
    inventory: Path                  # what the tests provision (grows with the joins)
    cluster: Path
    done: set[str] = field(default_factory=set)

    @property
    def args(self) -> list[str]:
        return ["-i", str(self.inventory), "--dir", str(self.cluster)]

    def name(self, short: str) -> str:
        return f"{self.plan.prefix}-{short}"

    def lab_inventory(self) -> dict:
        return yaml.safe_load((self.lab_dir / lab_build.INVENTORY_FILE).read_text())

    def need(self, *steps: str) -> None:
        missing = [s for s in steps if s not in self.done]
        if missing:
            pytest.fail(f"needs the earlier step(s) {missing}", pytrace=False)


def kubelite(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "kubelite_cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def ok(*args: str) -> str:
    result = kubelite(*args)
    assert result.returncode == 0, (f"kubelite {' '.join(args[:2])} failed:\n"
                                    f"{result.stdout[-4000:]}\n{result.stderr[-3000:]}")
    return result.stdout


def on_machine(fleet: Fleet, machine: str, command: str) -> str:
    argv = lab.exec_argv(fleet.lab_dir, machine, ["sh", "-c", command])
    return subprocess.run(argv, capture_output=True, text=True, timeout=60,
                          check=False).stdout


def status(fleet: Fleet) -> dict:
    return json.loads(ok("status", *fleet.args, "--json"))


def api(fleet: Fleet, action: str, name: str, kubeconfigs: list[Path]) -> list:
    """Through each kubeconfig, from inside the lab (where every apiserver is reachable)."""
    argv = ["nsenter", f"--net={netns.netns_path(fleet.plan.ctl_netns)}", sys.executable,
            "-c", API_SCRIPT, action, name, *map(str, kubeconfigs)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def per_apiserver(fleet: Fleet, names: list[str]) -> list[Path]:
    """An admin kubeconfig for each control plane's own apiserver."""
    port = yaml.safe_load(fleet.inventory.read_text()).get("cluster", {}) \
        .get("ports", {}).get("apiserver", 6443)
    paths = []
    for name in names:
        address = fleet.plan.machine(name).address
        paths.append(cluster_pki.kubeconfig_for(
            fleet.cluster / "pki", "admin", [f"https://{address}:{port}"],
            path=fleet.base / f"admin-{name}.kubeconfig"))
    return paths


def through_forward(fleet: Fleet, action: str, name: str, kubeconfig: Path) -> list:
    """Through the admin kubeconfig, as the operator uses it (the lab's local forward)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", API_SCRIPT, action, name, str(kubeconfig)],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def members(report: dict) -> list[dict]:
    return report["store"]["members"]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    require_root("the lab")
    prefix = f"ko{secrets.token_hex(3)}"
    plan = lab_plan.plan(prefix, 5, 1, lab_build.free_subnet(prefix))
    base = tmp_path_factory.mktemp("fleetops")
    lab_dir = base / "lab"
    lab_build.up(plan, lab_dir)
    everything = base / "inventory-all.yaml"
    try:
        doc = yaml.safe_load((lab_dir / lab_build.INVENTORY_FILE).read_text())
        everything.write_text(yaml.safe_dump(doc, sort_keys=False))
        late = {f"{prefix}-cp4", f"{prefix}-cp5"}
        doc["machines"] = [m for m in doc["machines"] if m["name"] not in late]
        inventory = base / "inventory.yaml"
        inventory.write_text(yaml.safe_dump(doc, sort_keys=False))
        yield Fleet(lab_dir, plan, base, inventory, base / "cluster")
    finally:
        kubelite("down", "-i", str(everything), "--dir", str(base / "cluster"))
        problems = lab_build.down(lab_dir)
        assert not problems, problems


def _untouched(fleet: Fleet, cluster: Path) -> None:
    assert not (cluster / "state.json").exists() and not (cluster / "pki").exists()
    for m in fleet.plan.machines:
        assert on_machine(fleet, m.name, "ls /var/lib/kubelite 2>/dev/null; echo end"
                          ).strip() == "end", m.name


def test_a_refused_key_stops_up_before_any_change(fleet: Fleet, tmp_path: Path) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    stranger = tmp_path / "stranger_key"
    stranger.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.OpenSSH,
                                           serialization.NoEncryption()))
    stranger.chmod(0o600)
    doc = yaml.safe_load(fleet.inventory.read_text())
    victim = fleet.name("cp2")
    next(m for m in doc["machines"] if m["name"] == victim)["key"] = str(stranger)
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump(doc, sort_keys=False))
    cluster = tmp_path / "cluster"

    result = kubelite("up", "-i", str(inventory), "--dir", str(cluster))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "nothing was changed" in result.stderr
    problems = [ln for ln in result.stderr.splitlines() if ln.startswith("  - ")]
    assert len(problems) == 1, result.stderr
    assert f"root@{victim}: the key {stranger} was refused" in problems[0]
    _untouched(fleet, cluster)


def test_a_changed_host_key_is_refused_even_with_accept_new(fleet: Fleet, tmp_path: Path
                                                           ) -> None:
    doc = yaml.safe_load(fleet.inventory.read_text())
    known = Path(doc["lab"]["known_hosts"]).read_text().splitlines()
    victim, other = fleet.name("cp3"), fleet.name("w1")
    line = next(i for i, text in enumerate(known) if text.startswith(f"{victim},"))
    theirs = next(text for text in known if text.startswith(f"{other},"))
    known[line] = known[line].split()[0] + " " + " ".join(theirs.split()[1:])
    forged = tmp_path / "known_hosts"
    forged.write_text("\n".join(known) + "\n")
    doc["lab"]["known_hosts"] = str(forged)
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump(doc, sort_keys=False))
    cluster = tmp_path / "cluster"

    for extra in ([], ["--accept-new-host-keys"]):
        result = kubelite("up", "-i", str(inventory), "--dir", str(cluster), *extra)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "nothing was changed" in result.stderr
        problems = [ln for ln in result.stderr.splitlines() if ln.startswith("  - ")]
        assert len(problems) == 1, result.stderr
        assert f"{victim} (" in problems[0] and "HOST KEY CHANGED" in problems[0]
        assert f"{forged} line {line + 1} expects" in problems[0], problems[0]
    assert forged.read_text().splitlines() == known      # nothing was recorded
    _untouched(fleet, cluster)


def test_control_planes_join_one_at_a_time_through_the_leader(fleet: Fleet) -> None:
    ok("up", *fleet.args)
    first = status(fleet)
    assert len(members(first)) == 3, first["store"]
    fleet.done.add("up")

    doc = yaml.safe_load(fleet.inventory.read_text())
    lab_doc = {m["name"]: m for m in fleet.lab_inventory()["machines"]}
    doc["machines"][3:3] = [lab_doc[fleet.name("cp4")], lab_doc[fleet.name("cp5")]]
    fleet.inventory.write_text(yaml.safe_dump(doc, sort_keys=False))
    leader = first["store"]["leader"]
    out = ok("join", *fleet.args, fleet.name("cp4"), fleet.name("cp5"))
    # one member at a time, each added through the leader: 3 -> 4, then 4 -> 5
    steps = [f"{fleet.name('cp4')}: adding to the store through its leader {leader} "
             "(3 members now)",
             f"{fleet.name('cp4')}: joined the store (4 members)",
             f"{fleet.name('cp5')}: adding to the store through its leader ",
             f"{fleet.name('cp5')}: joined the store (5 members)"]
    at = [out.find(step) for step in steps]
    assert -1 not in at and at == sorted(at), (at, out[-4000:])
    assert "(4 members now)" in out[at[2]:at[3]], out[-4000:]

    report = status(fleet)
    store = report["store"]
    cps = [fleet.name(f"cp{i}") for i in range(1, 6)]
    assert sorted(m["name"] for m in store["members"]) == sorted(cps)
    assert not any(m["is_learner"] for m in store["members"])
    assert store["leader"] in cps
    assert sum(s.get("is_leader", False) for s in store["statuses"]) == 1, store
    assert all("error" not in s for s in store["statuses"]), store
    for cp in cps:
        procs = report["machines"][cp]["processes"]
        assert procs and all(p["running"] for p in procs.values()), (cp, procs)
    assert through_forward(fleet, "create", "after-join", fleet.cluster /
                           "admin.kubeconfig") == ["after-join"]
    assert api(fleet, "get", "after-join", per_apiserver(fleet, cps)) == ["after-join"] * 5
    fleet.done.add("join")


def test_certs_rotate_renews_every_leaf_one_machine_at_a_time(fleet: Fleet) -> None:
    fleet.need("up")
    before = status(fleet)
    old_admin = fleet.base / "old-admin.kubeconfig"
    old_admin.write_bytes((fleet.cluster / "admin.kubeconfig").read_bytes())
    old_pids = {name: {p: s["pid"] for p, s in m["processes"].items()}
                for name, m in before["machines"].items()}

    out = ok("certs", "rotate", "--force", *fleet.args)
    leaves = [c["name"] for c in before["certs"] if c["name"] != "ca"]
    assert f"renewed {len(leaves)} certificates" in out

    after = status(fleet)
    was = {c["name"]: c for c in before["certs"]}
    now = {c["name"]: c for c in after["certs"]}
    assert now["ca"] == was["ca"]
    for name in leaves:
        assert now[name]["serial"] != was[name]["serial"], name
        assert now[name]["not_after"] > was[name]["not_after"], name
    # every process that reads a certificate was restarted; the store and the balancer
    # (which read none) were not
    # (a bundle rebuilt meanwhile, because the sources changed, restarts everything)
    cert_users = {"apiserver", "scheduler", "controller-manager", "agent"}
    reinstalled = "install kubelite" in out
    for name, machine in after["machines"].items():
        for proc, state in machine["processes"].items():
            assert state["running"], (name, proc)
            changed = state["pid"] != old_pids[name][proc]
            assert changed == (proc in cert_users) or (changed and reinstalled), \
                (name, proc, out[-3000:])
    # one machine at a time: each machine's steps form one block in the output, up to
    # the final checks of the whole cluster
    rollout = out.split("fleet: waiting for the store's leader")[0]
    seen: list[str] = []
    for match in re.finditer(r"\] (\S+): ", rollout):
        machine = match.group(1)
        if machine != "fleet" and (not seen or seen[-1] != machine):
            assert machine not in seen, f"{machine} touched twice:\n{out[-4000:]}"
            seen.append(machine)
    assert len(seen) == len(after["machines"]), out[-3000:]
    assert [n["ready"] for n in after["nodes"]] == [True], after["nodes"]
    assert through_forward(fleet, "create", "after-rotate",
                           fleet.cluster / "admin.kubeconfig") == ["after-rotate"]
    assert through_forward(fleet, "get", "after-rotate", old_admin) == ["after-rotate"]
    fleet.done.add("rotate")


def test_snapshot_save_list_and_restore(fleet: Fleet) -> None:
    fleet.need("up")
    admin = fleet.cluster / "admin.kubeconfig"
    assert through_forward(fleet, "create", "before-snapshot", admin) == ["before-snapshot"]
    saved = ok("snapshot", "save", *fleet.args)
    path = Path(saved.strip().splitlines()[-1].removeprefix("saved "))
    assert path.is_file() and path.parent == fleet.cluster / "snapshots", saved
    assert through_forward(fleet, "create", "after-snapshot", admin) == ["after-snapshot"]
    listing = ok("snapshot", "list", *fleet.args)
    assert listing.startswith(path.name), listing

    restored = ok("snapshot", "restore", path.name, *fleet.args)
    assert f"restored {path.name}" in restored
    assert "all nodes Ready" in restored
    assert through_forward(fleet, "get", "before-snapshot", admin) == ["before-snapshot"]
    assert through_forward(fleet, "get", "after-snapshot", admin) == [404]
    report = status(fleet)
    assert [n["ready"] for n in report["nodes"]] == [True], report["nodes"]
    assert len(members(report)) == len([m for m in report["machines"]
                                        if report["machines"][m]["role"] == "control-plane"])
    assert through_forward(fleet, "create", "after-restore", admin) == ["after-restore"]


def test_down_leaves_nothing(fleet: Fleet) -> None:
    fleet.need("up")
    ok("down", *fleet.args)
    for m in fleet.plan.machines:
        processes = on_machine(fleet, m.name, "ps -eo args=")
        assert "kubelite" not in processes and "haproxy" not in processes, processes
        assert on_machine(fleet, m.name, "ip netns list; nft list tables; "
                          "ls -A /var/lib/kubelite 2>/dev/null").strip() == ""
        assert not list(Path("/sys/fs/cgroup").glob(f"*/kubelite-{m.name}"))
    assert not (fleet.cluster / "state.json").exists()
    assert not (fleet.cluster / "admin.kubeconfig").exists()
