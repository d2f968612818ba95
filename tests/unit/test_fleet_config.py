"""Pure parts of fleet provisioning: per-machine configuration, plans, systemd units,
the supervisor's decisions and the bundle's hash."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from provisioning import bundle, machine_config, plan, snapshot, supervisor, units
from provisioning.inventory import ClusterSettings, Inventory, Machine

CPS = [Machine(f"cp{i}", f"10.0.0.{10 + i}", role="control-plane") for i in (1, 2, 3)]
WORKERS = [Machine("w1", "10.0.0.21", labels={"disk": "ssd"}), Machine("w2", "10.0.0.22")]
INV = Inventory(tuple(CPS + WORKERS), ClusterSettings())


def material(inv: Inventory = INV) -> dict[str, bytes]:
    names = ["ca.crt", "apiserver-kubelet-client.crt", "apiserver-kubelet-client.key",
             "sa.pub", "sa.key", "peer-secret", "scheduler.crt", "scheduler.key",
             "controller-manager.crt", "controller-manager.key"]
    for m in inv.control_planes:
        names += [f"apiserver/{m.name}.crt", f"apiserver/{m.name}.key"]
    for m in inv.workers:
        names += [f"agents/{m.name}.crt", f"agents/{m.name}.key", f"nodes/{m.name}.crt",
                  f"nodes/{m.name}.key"]
    return {n: f"-----BEGIN {n}-----\n".encode() for n in names}


def flag(argv: tuple[str, ...], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_control_planes_run_the_control_plane_and_workers_the_agent() -> None:
    configs = machine_config.render(INV, material(), ["cp1", "cp2", "cp3"])
    assert list(configs) == ["cp1", "cp2", "cp3", "w1", "w2"]
    assert [p.name for p in configs["cp1"].processes] == [
        "store", "apiserver", "haproxy", "scheduler", "controller-manager"]
    assert [p.name for p in configs["w1"].processes] == ["agent"]
    assert configs["cp1"].ports == [2379, 2380, 6443, 7443]


def test_store_flags_form_one_cluster_and_apiserver_prefers_its_own_member() -> None:
    configs = machine_config.render(INV, material(), ["cp1", "cp2", "cp3"])
    store = configs["cp2"].process("store").argv
    assert flag(store, "--initial-cluster") == \
        "cp1=10.0.0.11:2380,cp2=10.0.0.12:2380,cp3=10.0.0.13:2380"
    assert flag(store, "--initial-cluster-state") == "new"
    assert flag(store, "--listen-client-urls") == "http://10.0.0.12:2379"
    api = configs["cp2"].process("apiserver").argv
    assert flag(api, "--store-endpoints").split(",")[0] == "http://10.0.0.12:2379"
    assert flag(api, "--kubelet-client-certificate").endswith("pki/apiserver-kubelet-client.crt")
    cm = configs["cp2"].process("controller-manager").argv
    assert flag(cm, "--cluster-cidr") == "10.244.0.0/16"
    assert flag(cm, "--service-account-private-key-file").endswith("pki/sa.key")


def test_a_joined_member_keeps_its_flags_and_earlier_members_are_untouched() -> None:
    before = machine_config.render(INV, material(), ["cp1", "cp2", "cp3"], 3)
    assert machine_config.initial_cluster(["cp1", "cp2", "cp3", "cp4"],
                                          {f"cp{i}": f"a{i}" for i in range(1, 5)},
                                          "cp4", 3, 2380) == (
        "cp1=a1:2380,cp2=a2:2380,cp3=a3:2380,cp4=a4:2380", "existing")
    again = machine_config.render(INV, material(), ["cp1", "cp2", "cp3"], 3)
    assert before["cp1"].process("store") == again["cp1"].process("store")


def test_agent_flags_and_node_kubeconfig() -> None:
    w1 = machine_config.render(INV, material(), ["cp1", "cp2", "cp3"])["w1"]
    argv = w1.process("agent").argv
    assert flag(argv, "--node-ip") == "10.0.0.21"
    assert flag(argv, "--node-labels") == "disk=ssd"
    assert flag(argv, "--client-ca-file").endswith("pki/ca.crt")
    assert flag(argv, "--tls-cert-file").endswith("pki/agent.crt")
    kubeconfig = w1.files["/var/lib/kubelite/etc/node.kubeconfig"]
    assert kubeconfig.mode == 0o600
    text = kubeconfig.content.decode()
    assert "system:node:w1" in text and "https://10.0.0.11:7443" in text
    assert w1.files["/var/lib/kubelite/etc/pki/agent.key"].mode == 0o600


def test_haproxy_balances_every_apiserver() -> None:
    cp = machine_config.render(INV, material(), ["cp1", "cp2", "cp3"])["cp3"]
    cfg = cp.files["/var/lib/kubelite/etc/haproxy.cfg"].content.decode()
    for address in ("10.0.0.11:6443", "10.0.0.12:6443", "10.0.0.13:6443"):
        assert address in cfg
    assert "bind 0.0.0.0:7443" in cfg


def test_config_hash_follows_the_files_a_process_reads() -> None:
    base = machine_config.render(INV, material(), ["cp1", "cp2", "cp3"])["cp1"]
    changed = material()
    changed["apiserver/cp1.crt"] = b"renewed"
    after = machine_config.render(INV, changed, ["cp1", "cp2", "cp3"])["cp1"]
    differs = {p.name for p in base.processes
               if p.config_hash != after.process(p.name).config_hash}
    assert differs == {"apiserver"}


def test_missing_material_is_named() -> None:
    incomplete = material()
    del incomplete["nodes/w2.key"]
    with pytest.raises(machine_config.ConfigError, match="nodes/w2.key"):
        machine_config.render(INV, incomplete, ["cp1", "cp2", "cp3"])


def test_control_planes_not_in_the_store_yet_are_left_for_join() -> None:
    assert "cp3" not in machine_config.render(INV, material(), ["cp1", "cp2"])


# --- plan --------------------------------------------------------------------------------

def observed_as(desired: machine_config.MachineConfig, digest: str) -> plan.Observed:
    return plan.Observed(digest, {p: f.digest for p, f in desired.files.items()},
                         {p.name: plan.ProcessState(True, p.config_hash)
                          for p in desired.processes}, True)


def test_a_fresh_machine_gets_everything() -> None:
    desired = machine_config.render(INV, material(), ["cp1", "cp2", "cp3"])["w1"]
    p = plan.plan(desired, plan.Observed(), "b1")
    assert p.install and set(p.write) == set(desired.files) and p.start == ("agent",)
    assert not p.empty and "install kubelite" in p.describe()


def test_a_machine_that_matches_needs_no_change() -> None:
    desired = machine_config.render(INV, material(), ["cp1", "cp2", "cp3"])["cp1"]
    p = plan.plan(desired, observed_as(desired, "b1"), "b1")
    assert p.empty and p.describe() == "no change"


def test_a_changed_file_restarts_only_its_process_and_crashed_ones_start() -> None:
    desired = machine_config.render(INV, material(), ["cp1", "cp2", "cp3"])["cp1"]
    obs = observed_as(desired, "b1")
    files = dict(obs.files)
    files["/var/lib/kubelite/etc/haproxy.cfg"] = "old"
    procs = dict(obs.processes)
    procs["haproxy"] = plan.ProcessState(True, "old-hash")
    procs["scheduler"] = plan.ProcessState(False, desired.process("scheduler").config_hash)
    procs["leftover"] = plan.ProcessState(True, "x")
    p = plan.plan(desired, plan.Observed("b1", files, procs, True), "b1")
    assert p.write == ("/var/lib/kubelite/etc/haproxy.cfg",)
    assert p.restart == ("haproxy",) and p.start == ("scheduler",) and p.stop == ("leftover",)
    assert not p.install


def test_a_new_bundle_restarts_everything_running() -> None:
    desired = machine_config.render(INV, material(), ["cp1", "cp2", "cp3"])["cp1"]
    p = plan.plan(desired, observed_as(desired, "b1"), "b2")
    assert p.install and set(p.restart) == {x.name for x in desired.processes}


def test_our_own_ports_are_not_preflight_problems() -> None:
    desired = machine_config.render(INV, material(), ["cp1", "cp2", "cp3"])["cp1"]
    obs = observed_as(desired, "b1")
    assert plan.ports_in_use_by_us(desired, obs) == {2379, 2380, 6443, 7443}
    assert plan.ports_in_use_by_us(desired, plan.Observed()) == set()


# --- units -------------------------------------------------------------------------------

def test_unit_runs_the_argv_with_its_environment_and_carries_the_hash() -> None:
    proc = machine_config.ProcessSpec("apiserver", ("/v/bin/kubelite", "apiserver", "--x", "50%"),
                                      (("PATH", "/usr/bin"),), "abc123")
    text = units.render_unit(proc, "/var/lib/kubelite/log")
    exec_line = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    assert shlex.split(exec_line.removeprefix("ExecStart=")) == [
        "/v/bin/kubelite", "apiserver", "--x", "50%%"]
    assert "Restart=always" in text and "After=network-online.target kubelite-store.service" in text
    assert units.hash_of(text) == "abc123"
    assert units.unit_path("store") == "/etc/systemd/system/kubelite-store.service"


# --- supervisor --------------------------------------------------------------------------

def test_backoff_doubles_up_to_a_limit() -> None:
    assert [supervisor.backoff(n) for n in range(0, 8)] == [0, 1, 2, 4, 8, 16, 30, 30]


def test_spec_diff() -> None:
    running = {"a": {"argv": ["x"]}, "b": {"argv": ["y"]}, "c": {"argv": ["z"]}}
    wanted = {"a": {"argv": ["x"]}, "b": {"argv": ["y2"]}, "d": {"argv": ["w"]}}
    assert supervisor.diff(running, wanted) == (["d"], ["c"], ["b"])


def test_spec_file_round_trip(tmp_path: Path) -> None:
    config = machine_config.render(INV, material(), ["cp1", "cp2", "cp3"])["w1"]
    path = tmp_path / "processes.json"
    path.write_bytes(config.spec_json())
    entries, run_dir, log_dir = supervisor.load_spec(path)
    assert list(entries) == ["agent"] and run_dir == "/var/lib/kubelite/run"
    assert entries["agent"]["config_hash"] == config.process("agent").config_hash
    assert json.loads(path.read_text())["log_dir"] == log_dir


# --- bundle and snapshots ----------------------------------------------------------------

def test_bundle_hash_changes_with_sources_and_pins(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    files = [tmp_path / "a.py"]
    first = bundle.digest(files, {"aiohttp": "3.0"}, tmp_path)
    assert first == bundle.digest(files, {"aiohttp": "3.0"}, tmp_path)
    assert first != bundle.digest(files, {"aiohttp": "3.1"}, tmp_path)
    (tmp_path / "a.py").write_text("x = 2\n")
    assert first != bundle.digest(files, {"aiohttp": "3.0"}, tmp_path)


def test_runtime_pins_hold_the_requirements_and_what_they_need() -> None:
    pins = bundle.runtime_pins(bundle.install_requires())
    assert {"aiohttp", "pysyncobj", "multidict", "cffi"} <= set(pins)
    assert "pytest" not in pins and "hypothesis" not in pins


def test_snapshot_retention_keeps_the_newest() -> None:
    names = [f"snapshot-2026010{i}T000000000000Z.db" for i in range(1, 6)] + ["other.txt"]
    kept, dropped = snapshot.retain(names, 2)
    assert kept == names[3:5] and dropped == names[:3]
