"""Doing things on one machine over SSH: observe it, install the bundle, write its files,
run its processes under the supervisor or systemd, and remove all of it again.

Each function takes an open `ssh.Connection` and raises `ssh.SshError` (naming the
machine) when the machine refuses. What to do is decided elsewhere (provisioning/plan.py);
this module only carries it out. The order within `apply` makes a failure harmless to
re-run: the install marker is written last, so a half-done install is redone; files go
in atomically (ssh.put); processes are (re)started only after their files are in place.
"""

from __future__ import annotations

import json
import shlex

from provisioning import ssh, units
from provisioning.bundle import Bundle
from provisioning.machine_config import AGENT, Layout, MachineConfig, cgroup_root
from provisioning.plan import MachinePlan, Observed, ProcessState

INSTALL_TIMEOUT = 600.0
q = shlex.quote

# Runs with the machine's own python3 (the venv may not exist yet); stdlib only.
_OBSERVE = r"""
import glob, hashlib, json, os, subprocess, sys
a = json.load(sys.stdin)
out = {"bundle": None, "files": {}, "processes": {}, "manager": False}
try:
    out["bundle"] = open(a["marker"]).read().strip() or None
except OSError:
    pass
for p in a["paths"]:
    try:
        out["files"][p] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    except OSError:
        pass
def alive(pid):
    try:
        return open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError, TypeError):
        return False
if a["systemd"]:
    for u in glob.glob(a["unit_glob"]):
        name = os.path.basename(u)[len("kubelite-"):-len(".service")]
        h = None
        for line in open(u):
            if line.startswith(a["mark"]):
                h = line[len(a["mark"]):].strip()
        rc = subprocess.run(["systemctl", "is-active", "--quiet", os.path.basename(u)]).returncode
        out["processes"][name] = {"running": rc == 0, "config_hash": h}
        out["manager"] = True
else:
    run = a["run_dir"]
    try:
        pid = int(open(run + "/supervisor.pid").read().split()[0])
        sup = b"supervis" in open("/proc/%d/cmdline" % pid, "rb").read() and alive(pid)
    except (OSError, ValueError, IndexError):
        sup = False
    out["manager"] = sup
    try:
        doc = json.load(open(run + "/status.json"))
    except (OSError, ValueError):
        doc = {}
    for name, e in doc.get("processes", {}).items():
        out["processes"][name] = {"running": sup and alive(e.get("pid")), "pid": e.get("pid"),
                                  "config_hash": e.get("config_hash"),
                                  "restarts": e.get("restarts", 0)}
print(json.dumps(out))
"""


def observe(conn: ssh.Connection, desired: MachineConfig, *, python: str = "python3",
            systemd: bool = False) -> Observed:
    args = {"marker": desired.layout.bundle_marker, "paths": sorted(desired.files),
            "systemd": systemd, "run_dir": desired.layout.run,
            "unit_glob": f"{units.UNIT_DIR}/{units.PREFIX}*.service", "mark": units.HASH_MARK}
    result = conn.run(f"{q(python)} -c {q(_OBSERVE)}", input=json.dumps(args).encode(),
                      check=True, timeout=60)
    doc = json.loads(result.stdout)
    procs = {n: ProcessState(bool(e["running"]), e.get("config_hash"), e.get("pid"),
                             int(e.get("restarts") or 0))
             for n, e in doc["processes"].items()}
    return Observed(doc["bundle"], doc["files"], procs, bool(doc["manager"]))


def install(conn: ssh.Connection, bundle: Bundle, layout: Layout, python: str = "python3"
            ) -> None:
    """Replace the venv with one made from `bundle`; the marker comes last."""
    staging = f"{layout.data_dir}/bundle"
    tar = f"{staging}/{bundle.path.name}"
    conn.run(f"mkdir -p {q(staging)} && chmod 700 {q(layout.data_dir)}", check=True)
    conn.put(bundle.path, tar, 0o600)
    venv = layout.install_dir
    script = " && ".join([
        f"rm -rf {q(staging)}/wheels {q(venv)}",
        f"mkdir -p {q(staging)}/wheels",
        f"tar -xf {q(tar)} -C {q(staging)}/wheels",
        f"{q(python)} -m venv {q(venv)}",
        f"{q(venv)}/bin/python -m pip install -q --no-index --no-deps --no-compile "
        f"--disable-pip-version-check {q(staging)}/wheels/*.whl",
        f"echo {q(bundle.digest)} > {q(layout.bundle_marker)}.tmp",
        f"mv {q(layout.bundle_marker)}.tmp {q(layout.bundle_marker)}",
        f"rm -rf {q(staging)}",
    ])
    result = conn.run(script, timeout=INSTALL_TIMEOUT)
    if not result.ok:
        err = result.stderr.strip().splitlines()[-3:]
        why = " | ".join(err) or "(no output)"
        hint = ""
        if "No space left" in result.stderr:
            hint = f"; the disk holding {layout.data_dir} is full: free space and run `up` again"
        conn.run(f"rm -rf {q(staging)}")
        raise ssh.CommandFailed(conn.name, f"{conn.name}: installing kubelite into {venv} "
                                           f"failed: {why}{hint}", result)


def write_files(conn: ssh.Connection, desired: MachineConfig, paths: tuple[str, ...]) -> None:
    lay = desired.layout
    conn.run(f"mkdir -p {q(lay.pki)} {q(lay.run)} {q(lay.log)} && chmod 700 "
             f"{q(lay.data_dir)} {q(lay.etc)} {q(lay.pki)}", check=True)
    for path in paths:
        spec = desired.files[path]
        conn.put(spec.content, path, spec.mode)


def stop_all(conn: ssh.Connection, layout: Layout, systemd: bool) -> None:
    """Stop every kubelite process on the machine (and the supervisor)."""
    if systemd:
        conn.run(f"for u in {units.UNIT_DIR}/{units.PREFIX}*.service; do [ -e \"$u\" ] && "
                 "systemctl stop \"$(basename \"$u\")\"; done; true", check=True, timeout=120)
        return
    conn.run(f"if [ -x {q(layout.python)} ]; then {q(layout.python)} -m provisioning.supervisor "
             f"stop --run-dir {q(layout.run)}; else "
             f"p=$(cat {q(layout.run)}/supervisor.pid 2>/dev/null) && kill $p; fi; true",
             check=True, timeout=120)


def run_processes(conn: ssh.Connection, desired: MachineConfig, plan: MachinePlan,
                  systemd: bool) -> None:
    """Hand the desired processes to the supervisor (or systemd); it starts new ones,
    restarts changed ones and stops those no longer wanted."""
    lay = desired.layout
    if not systemd:
        conn.put(desired.spec_json(), lay.spec, 0o600)
        conn.run(f"{q(lay.python)} -m provisioning.supervisor start --spec {q(lay.spec)}",
                 check=True, timeout=60)
        return
    for name in plan.stop:
        unit = units.unit_name(name)
        conn.run(f"systemctl disable --now {unit}; rm -f {units.unit_path(name)}", timeout=120)
    for proc in desired.processes:
        conn.put(units.render_unit(proc, lay.log).encode(), units.unit_path(proc.name), 0o644)
    conn.run("systemctl daemon-reload", check=True)
    for proc in desired.processes:
        unit = units.unit_name(proc.name)
        if proc.name in plan.restart:
            conn.run(f"systemctl enable {unit} && systemctl restart {unit}", check=True)
        elif proc.name in plan.start:
            conn.run(f"systemctl enable {unit} && systemctl start {unit}", check=True)


def apply(conn: ssh.Connection, desired: MachineConfig, plan: MachinePlan, bundle: Bundle,
          *, python: str = "python3", systemd: bool = False) -> None:
    if plan.empty:
        return
    if plan.install:
        stop_all(conn, desired.layout, systemd)
        install(conn, bundle, desired.layout, python)
    write_files(conn, desired, plan.write)
    if plan.install or plan.start or plan.restart or plan.stop or plan.write:
        run_processes(conn, desired, plan, systemd)


def teardown(conn: ssh.Connection, layout: Layout, name: str, role_worker: bool,
             systemd: bool) -> None:
    """Stop everything, clean the agent's pods and network, remove every file."""
    stop_all(conn, layout, systemd)
    if systemd:
        conn.run(f"for u in {units.UNIT_DIR}/{units.PREFIX}*.service; do [ -e \"$u\" ] && "
                 "systemctl disable \"$(basename \"$u\")\"; rm -f \"$u\"; done; "
                 "systemctl daemon-reload; true", timeout=120)
    if role_worker:
        conn.run(f"if [ -x {q(layout.bin())} ]; then {q(layout.bin())} {AGENT} --cleanup "
                 f"--kubeconfig /dev/null --node-name {q(name)} --data-dir "
                 f"{q(layout.data_dir)}/agent --cgroup-root {q(cgroup_root(name))}; fi; true",
                 timeout=180)
        conn.run(f"for d in /sys/fs/cgroup/*/{q(cgroup_root(name))} "
                 f"/sys/fs/cgroup/{q(cgroup_root(name))}; do [ -d \"$d\" ] && "
                 "find \"$d\" -depth -type d -exec rmdir {} + 2>/dev/null; done; true")
    conn.run(f"rm -rf {q(layout.install_dir)} {q(layout.data_dir)}", check=True, timeout=120)
