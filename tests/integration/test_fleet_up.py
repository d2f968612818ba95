"""`kubelite up` end to end on the lab (root): 3 control planes and 2 workers over real
SSH, the sample application through its ClusterIP, a second `up` that changes nothing,
the join of a third worker, `status`, and a `down` that leaves nothing behind; and an
unreachable machine that stops `up` before anything changes.

One lab (3 + 3 machines, the third worker kept out of the inventory until it joins)
serves the module; its prefix carries a random token and its subnet is a free
10.251.x.0/24, so parallel runs never meet. All traffic stays inside the lab.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from provisioning import lab, lab_build, lab_plan, sample, ssh
from provisioning.inventory import load_inventory
from tests.privileges import require_root

pytestmark = pytest.mark.timeout(420)
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Fleet:
    lab_dir: Path
    plan: lab_plan.LabPlan
    inventory: Path           # what `up` provisions (the third worker is added later)
    cluster: Path

    def machine_doc(self, name: str) -> dict:
        doc = yaml.safe_load((self.lab_dir / lab_build.INVENTORY_FILE).read_text())
        return next(m for m in doc["machines"] if m["name"] == name)


def kubelite(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "kubelite_cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def on_machine(fleet: Fleet, machine: str, command: str) -> str:
    argv = lab.exec_argv(fleet.lab_dir, machine, ["sh", "-c", command])
    return subprocess.run(argv, capture_output=True, text=True, timeout=60,
                          check=False).stdout


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    require_root("the lab")
    prefix = f"kf{secrets.token_hex(3)}"
    plan = lab_plan.plan(prefix, 3, 3, lab_build.free_subnet(prefix))
    base = tmp_path_factory.mktemp("fleet")
    lab_dir = base / "lab"
    lab_build.up(plan, lab_dir)
    try:
        doc = yaml.safe_load((lab_dir / lab_build.INVENTORY_FILE).read_text())
        doc["machines"] = [m for m in doc["machines"] if m["name"] != f"{prefix}-w3"]
        inventory = base / "inventory.yaml"
        inventory.write_text(yaml.safe_dump(doc, sort_keys=False))
        yield Fleet(lab_dir, plan, inventory, base / "cluster")
    finally:
        kubelite("down", "-i", str(base / "inventory.yaml"), "--dir", str(base / "cluster"))
        problems = lab_build.down(lab_dir)
        assert not problems, problems


def test_an_unreachable_machine_stops_up_before_any_change(fleet: Fleet, tmp_path: Path
                                                           ) -> None:
    doc = yaml.safe_load(fleet.inventory.read_text())
    ghost = dict(doc["machines"][-1], name=f"{fleet.plan.prefix}-ghost",
                 address=f"{fleet.plan.subnet}.250")
    doc["machines"].append(ghost)
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump(doc, sort_keys=False))
    cluster = tmp_path / "cluster"
    result = kubelite("up", "-i", str(inventory), "--dir", str(cluster))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "nothing was changed" in result.stderr
    assert f"{ghost['name']}: cannot reach {ghost['address']}:22" in result.stderr
    assert not (cluster / "state.json").exists() and not (cluster / "pki").exists()
    cp1 = fleet.plan.machines[0].name
    assert on_machine(fleet, cp1, "ls /var/lib/kubelite 2>/dev/null; echo end").strip() == "end"


def test_up_sample_again_join_status_and_down(fleet: Fleet) -> None:
    prefix = fleet.plan.prefix
    inv_args = ["-i", str(fleet.inventory), "--dir", str(fleet.cluster)]
    first = kubelite("up", *inv_args)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "all nodes Ready" in first.stdout
    kubeconfig = fleet.cluster / "admin.kubeconfig"

    inv = load_inventory(fleet.inventory)
    w1 = inv.by_name[f"{prefix}-w1"]
    target = ssh.SshTarget.from_machine(w1, inv.access.netns)
    with ssh.connect(target, known_hosts=Path(inv.access.known_hosts or "")) as conn:
        result = sample.check(kubeconfig, conn)
    assert result["answers"] and all(a.startswith("hello from web-")
                                     for a in result["answers"]), result

    again = kubelite("up", *inv_args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "no change: the fleet already runs as the inventory says" in again.stdout

    doc = yaml.safe_load(fleet.inventory.read_text())
    doc["machines"].append(fleet.machine_doc(f"{prefix}-w3"))
    fleet.inventory.write_text(yaml.safe_dump(doc, sort_keys=False))
    joined = kubelite("join", *inv_args, f"{prefix}-w3")
    assert joined.returncode == 0, joined.stdout[-3000:] + joined.stderr[-3000:]

    status = kubelite("status", *inv_args)
    assert status.returncode == 0, status.stderr
    assert "store leader: " + prefix in status.stdout
    for name in (f"{prefix}-cp1", f"{prefix}-cp2", f"{prefix}-cp3"):
        assert f"{name}  " in status.stdout
    for name in (f"{prefix}-w1", f"{prefix}-w2", f"{prefix}-w3"):
        assert f"{name}  Ready" in status.stdout

    gone = kubelite("down", *inv_args)
    assert gone.returncode == 0, gone.stdout[-3000:] + gone.stderr[-3000:]
    for m in fleet.plan.machines:
        processes = on_machine(fleet, m.name, "ps -eo args=")
        assert "kubelite" not in processes and "haproxy" not in processes, processes
        assert on_machine(fleet, m.name, "ip netns list; nft list tables; "
                          "ls -A /var/lib/kubelite 2>/dev/null").strip() == ""
        assert not list(Path("/sys/fs/cgroup").glob(f"*/kubelite-{m.name}"))
    assert not (fleet.cluster / "state.json").exists()
    assert not (fleet.cluster / "admin.kubeconfig").exists()
