"""The lab for real (root): machines made of namespaces, reached over SSH from here.

One lab (1 control plane + 1 worker) serves the module; the tests that create and tear
down labs of their own use prefixes of their own. Every name carries a random 6-hex
token and every subnet is a free 10.251.x.0/24 chosen from it, so parallel runs never
meet. All traffic stays inside the lab's namespaces, which have no route out; from the
root namespace only route lookups touch lab addresses.
"""

from __future__ import annotations

import os
import secrets
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import yaml

from provisioning import lab, lab_build, lab_plan, netns
from provisioning.lab_ssh import LabAccess, run
from tests.privileges import require_root

pytestmark = pytest.mark.timeout(180)

PYTHON = sys.executable  # under /work or /root: every machine sees it


@dataclass
class Lab:
    directory: Path
    plan: lab_plan.LabPlan
    state: dict
    share: Path

    @property
    def cp(self) -> lab_plan.Machine:
        return self.plan.machines[0]

    @property
    def worker(self) -> lab_plan.Machine:
        return self.plan.machines[1]


def _require_root() -> None:
    require_root("the lab")
    try:
        lab_build.preflight()
    except lab_build.LabError as exc:
        pytest.fail(str(exc), pytrace=False)  # root without sshd: a broken setup


def new_plan(control_planes: int = 1, workers: int = 1) -> lab_plan.LabPlan:
    prefix = f"kl{secrets.token_hex(3)}"
    return lab_plan.plan(prefix, control_planes, workers, lab_build.free_subnet(prefix))


def leftovers(plan: lab_plan.LabPlan) -> list[str]:
    """Anything of this lab still on the machine: namespaces, routes, addresses."""
    found = [f"netns {n}" for n in netns.list_with_prefix(plan.prefix + "-")]
    routes = subprocess.run(["ip", "-o", "-4", "route", "show", "table", "all"],
                            capture_output=True, text=True, check=True).stdout
    found += [f"route {line}" for line in routes.splitlines() if plan.subnet + "." in line]
    return found


@pytest.fixture(scope="module")
def the_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    _require_root()
    plan = new_plan()
    directory = tmp_path_factory.mktemp("lab") / "state"
    share = tmp_path_factory.mktemp("shared")   # under /tmp: private unless shared
    state = lab_build.up(plan, directory, shares=[str(share)])
    try:
        yield Lab(directory, plan, state, share)
    finally:
        assert lab_build.down(directory) == []
        assert leftovers(plan) == []


@pytest.fixture(scope="module")
def access(the_lab: Lab) -> Iterator[LabAccess]:
    with LabAccess(the_lab.directory) as a:
        yield a


def on(access: LabAccess, machine: str, command: str) -> subprocess.CompletedProcess[str]:
    with access.ssh(machine) as client:
        r = run(client, command)
    return subprocess.CompletedProcess(command, r.code, r.stdout, r.stderr)


def test_files_describe_the_lab(the_lab: Lab) -> None:
    d = the_lab.directory
    inventory = yaml.safe_load((d / lab_build.INVENTORY_FILE).read_text())
    assert [(m["name"], m["address"], m["port"], m["user"], m["role"])
            for m in inventory["machines"]] == [
        (the_lab.cp.name, the_lab.cp.address, 22, "root", "control-plane"),
        (the_lab.worker.name, the_lab.worker.address, 22, "root", "worker")]
    assert {m["key"] for m in inventory["machines"]} == {str(d / lab_build.KEY_FILE)}
    assert inventory["lab"]["netns"] == the_lab.plan.ctl_netns
    assert (d / lab_build.KEY_FILE).stat().st_mode & 0o777 == 0o600
    state = lab_build.load_state(d)
    assert state is not None and state["ready"]
    assert state["netns"] == the_lab.plan.netns_names
    assert state["guard_routes"] == [the_lab.plan.cidr]
    for record in state["machines"]:
        assert psutil.Process(record["init_pid"]).name() == "sshd"


def test_ssh_reaches_each_machine_by_its_own_name(the_lab: Lab, access: LabAccess) -> None:
    for m in the_lab.plan.machines:
        r = on(access, m.name, "hostname; cat /etc/hostname; cat /proc/1/comm; id -u")
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == [m.name, m.name, "sshd", "0"]


def test_no_route_leads_out_of_a_machine(the_lab: Lab, access: LabAccess) -> None:
    for m in the_lab.plan.machines:
        r = on(access, m.name, "ip route get 192.0.2.1")
        assert r.returncode != 0
        assert "unreachable" in r.stderr
        assert on(access, m.name, "ip route show default").stdout.strip() == ""
    # And from the root namespace the guard makes lab addresses unreachable (a lookup,
    # no packet is sent).
    lookup = subprocess.run(["ip", "route", "get", the_lab.cp.address],
                            capture_output=True, text=True, check=False)
    assert lookup.returncode != 0 or lookup.stdout.startswith("unreachable")


def test_var_and_tmp_are_per_machine(the_lab: Lab, access: LabAccess) -> None:
    token = secrets.token_hex(4)
    cp, worker = the_lab.cp.name, the_lab.worker.name
    write = on(access, cp, f"mkdir -p /var/lib/kl-{token} && echo {token} > "
                           f"/var/lib/kl-{token}/marker && echo {token} > /tmp/marker-{token}")
    assert write.returncode == 0, write.stderr
    assert on(access, cp, f"cat /var/lib/kl-{token}/marker").stdout.strip() == token
    assert on(access, worker, f"test -e /var/lib/kl-{token}").returncode == 1
    assert on(access, worker, f"test -e /tmp/marker-{token}").returncode == 1
    assert not Path(f"/var/lib/kl-{token}").exists()        # not on the real disk
    assert not Path(f"/tmp/marker-{token}").exists()
    upper = the_lab.directory / cp / "var-upper" / "lib" / f"kl-{token}" / "marker"
    assert upper.read_text().strip() == token


def test_each_machine_sees_only_its_own_processes(the_lab: Lab, access: LabAccess) -> None:
    r = on(access, the_lab.cp.name, "ps -e --no-headers -o comm")
    names = r.stdout.split()
    assert "sshd" in names
    assert len(names) < 10          # sshd, its per-connection sshd, the shell and ps: not the host's
    assert "pytest" not in " ".join(names)


def test_shared_directories_are_the_hosts(the_lab: Lab, access: LabAccess) -> None:
    (the_lab.share / "from-host").write_text("hello machine\n")
    share = shlex.quote(str(the_lab.share))
    r = on(access, the_lab.worker.name,
           f"cat {share}/from-host && echo hello host > {share}/from-machine")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello machine\n"
    assert (the_lab.share / "from-machine").read_text() == "hello host\n"
    # Elsewhere under /tmp the machine has its own empty tmpfs.
    state_dir = shlex.quote(str(the_lab.directory))
    assert on(access, the_lab.worker.name, f"test -e {state_dir}").returncode == 1


def test_machines_reach_each_other_over_tcp(the_lab: Lab, access: LabAccess) -> None:
    port = 20000 + secrets.randbelow(10000)
    server = (
        "import socket\n"
        f"s = socket.create_server(('0.0.0.0', {port}))\n"
        "s.settimeout(60)\n"
        "print('ready', flush=True)\n"
        "c, peer = s.accept()\n"
        "c.sendall(c.recv(100)[::-1] + b' from ' + socket.gethostname().encode())\n"
        "print(peer[0], flush=True)\n")
    client = (
        "import socket\n"
        f"c = socket.create_connection(('{the_lab.worker.name}', {port}), timeout=10)\n"
        "c.sendall(b'olleh')\n"
        "print(c.recv(100).decode())\n")
    with access.ssh(the_lab.worker.name) as w:
        _, out, err = w.exec_command(f"{PYTHON} -c {shlex.quote(server)}", timeout=60)
        assert out.readline().strip() == "ready", err.read()
        r = on(access, the_lab.cp.name, f"{PYTHON} -c {shlex.quote(client)}")
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == f"hello from {the_lab.worker.name}"
        assert out.readline().strip() == the_lab.cp.address
        assert out.channel.recv_exit_status() == 0


def test_ctl_namespace_reaches_ssh_but_not_the_root_namespace(the_lab: Lab,
                                                              access: LabAccess) -> None:
    with access.socket(the_lab.cp.name, 22) as s:
        assert s.recv(64).startswith(b"SSH-2.0-OpenSSH")
    lookup = subprocess.run(["ip", "-n", the_lab.plan.ctl_netns, "route", "get", "192.0.2.1"],
                            capture_output=True, text=True, check=False)
    assert lookup.returncode != 0


def test_lab_exec_and_status(the_lab: Lab, capfd: pytest.CaptureFixture[str]) -> None:
    d = str(the_lab.directory)
    assert lab.main(["exec", "--dir", d, the_lab.worker.name, "--", "hostname"]) == 0
    assert capfd.readouterr().out.strip() == the_lab.worker.name
    assert lab.main(["exec", "--dir", d, the_lab.plan.ctl_netns, "--",
                     "ip", "-br", "link", "show", "br0"]) == 0
    assert capfd.readouterr().out.startswith("br0")
    assert lab.main(["exec", "--dir", d, the_lab.cp.name, "--", "sh", "-c", "exit 3"]) == 3
    assert lab.main(["exec", "--dir", d, "nope", "--", "true"]) == 1
    assert "no machine 'nope'" in capfd.readouterr().err
    assert lab.main(["status", "--dir", d]) == 0
    table = capfd.readouterr().out.splitlines()
    assert table[0].split() == ["NAME", "ROLE", "ADDRESS", "STATE", "SSH", "PID"]
    assert [line.split()[:5] for line in table[1:]] == [
        [m.name, m.role, m.address, "running", "up"] for m in the_lab.plan.machines]


def test_up_refuses_names_or_subnet_in_use(the_lab: Lab, tmp_path: Path,
                                           access: LabAccess) -> None:
    same_names = lab_plan.plan(the_lab.plan.prefix, 1, 1, lab_build.free_subnet("other"))
    with pytest.raises(lab_build.LabError, match="already exist"):
        lab_build.up(same_names, tmp_path / "a")
    other_prefix = f"kl{secrets.token_hex(3)}"
    same_subnet = lab_plan.plan(other_prefix, 1, 0, the_lab.plan.subnet)
    with pytest.raises(lab_build.LabError, match="pick another --subnet"):
        lab_build.up(same_subnet, tmp_path / "b")
    assert lab_build.load_state(tmp_path / "a") is None
    assert lab_build.load_state(tmp_path / "b") is None
    assert netns.list_with_prefix(other_prefix) == []
    with pytest.raises(lab_build.LabError, match="already holds a lab"):
        lab_build.up(new_plan(), the_lab.directory)
    # The running lab is untouched.
    assert on(access, the_lab.cp.name, "hostname").stdout.strip() == the_lab.cp.name


def _processes(state: dict) -> list[tuple[int, float]]:
    return [(r[f"{k}_pid"], r[f"{k}_created"]) for r in state["machines"]
            for k in ("init", "launcher") if r.get(f"{k}_pid")]


def _running(pid: int, created: float) -> bool:
    try:
        return psutil.Process(pid).create_time() == created
    except psutil.NoSuchProcess:
        return False


def test_down_removes_everything_even_after_a_machine_died(tmp_path: Path) -> None:
    _require_root()
    plan = new_plan(control_planes=1, workers=2)
    directory = tmp_path / "lab"
    state = lab_build.up(plan, directory)
    try:
        # A stray process entered into a machine's namespace from outside, and one
        # machine "losing power" before down.
        stray = subprocess.Popen(["ip", "netns", "exec", plan.machines[1].name,
                                  "sleep", "600"])
        os.kill(state["machines"][2]["init_pid"], signal.SIGKILL)
        assert lab.main(["status", "--dir", str(directory)]) == 1
    finally:
        problems = lab_build.down(directory)
    assert problems == []
    assert stray.wait(timeout=30) == -signal.SIGKILL
    assert leftovers(plan) == []
    assert not any(_running(pid, created) for pid, created in _processes(state))
    assert not directory.exists()
    assert lab_build.down(directory) == []                      # idempotent
    assert lab.main(["down", "--dir", str(directory)]) == 0


def test_a_failed_up_rolls_back(tmp_path: Path) -> None:
    _require_root()
    plan = new_plan(control_planes=1, workers=1)
    directory = tmp_path / "lab"
    # A "sshd" that exits at once: the machines boot, then never answer.
    with pytest.raises(lab_build.LabError, match="stopped while booting"):
        lab_build.up(plan, directory, sshd="/bin/false", ready_timeout=30)
    assert leftovers(plan) == []
    assert lab_build.load_state(directory) is None


def test_lab_needs_root_and_says_so(tmp_path: Path) -> None:
    # Imports first: the interpreter's own files may not be readable by nobody.
    drop = "os.setuid(65534); " if os.geteuid() == 0 else ""
    script = (f"import sys, os; from provisioning import lab; {drop}"
              f"sys.exit(lab.main(['up', '--dir', '{tmp_path}/x', '--prefix', 'klnoroot']))")
    proc = subprocess.run([PYTHON, "-c", script], cwd=Path(__file__).resolve().parents[2],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "needs root" in proc.stderr
    assert not (tmp_path / "x").exists()
