"""provisioning.lab_plan: the lab's names, addresses and files, decided without root."""

from __future__ import annotations

import ipaddress

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from provisioning import lab, lab_build, lab_plan
from provisioning.lab_plan import CONTROL_PLANE, WORKER, PlanError


def test_control_planes_come_first_and_addresses_follow_the_order() -> None:
    p = lab_plan.plan("lab", 3, 2, "10.250.0")
    assert [(m.name, m.role, m.address) for m in p.machines] == [
        ("lab-cp1", CONTROL_PLANE, "10.250.0.11"),
        ("lab-cp2", CONTROL_PLANE, "10.250.0.12"),
        ("lab-cp3", CONTROL_PLANE, "10.250.0.13"),
        ("lab-w1", WORKER, "10.250.0.14"),
        ("lab-w2", WORKER, "10.250.0.15"),
    ]
    assert p.ctl_netns == "lab-ctl"
    assert p.gateway == "10.250.0.1"
    assert p.cidr == "10.250.0.0/24"
    assert p.netns_names == ["lab-ctl", "lab-cp1", "lab-cp2", "lab-cp3", "lab-w1", "lab-w2"]
    assert [m.port_name for m in p.machines] == ["m1", "m2", "m3", "m4", "m5"]
    assert p.machine("lab-w2").index == 5
    with pytest.raises(KeyError):
        p.machine("lab-w3")


@pytest.mark.parametrize(("prefix", "cps", "workers", "subnet"), [
    ("Lab", 1, 0, "10.250.0"),           # upper case
    ("1lab", 1, 0, "10.250.0"),          # starts with a digit
    ("a/b", 1, 0, "10.250.0"),
    ("x" * 21, 1, 0, "10.250.0"),
    ("lab", 0, 2, "10.250.0"),           # no control plane
    ("lab", 1, -1, "10.250.0"),
    ("lab", 150, 51, "10.250.0"),        # more than the /24 can hold
    ("lab", 1, 0, "10.250"),
    ("lab", 1, 0, "10.250.300"),
    ("lab", 1, 0, "192.0.2"),            # not a private LAN range (this host's uplink)
    ("lab", 1, 0, "8.8.8"),
    ("lab", 1, 0, "127.0.0"),
])
def test_impossible_labs_are_refused(prefix: str, cps: int, workers: int, subnet: str) -> None:
    with pytest.raises(PlanError):
        lab_plan.plan(prefix, cps, workers, subnet)


def test_the_largest_lab_stays_inside_its_subnet() -> None:
    p = lab_plan.plan("big", 1, lab_plan.MAX_MACHINES - 1, "172.16.5")
    net = ipaddress.ip_network(p.cidr)
    addresses = [ipaddress.ip_address(m.address) for m in p.machines]
    assert len(set(addresses)) == lab_plan.MAX_MACHINES
    assert all(a in net and a != net.broadcast_address for a in addresses)
    assert ipaddress.ip_address(p.gateway) not in addresses


@given(st.from_regex(r"[a-z][a-z0-9-]{0,19}", fullmatch=True), st.integers(0, 50))
def test_subnet_for_is_stable_private_and_under_its_base(prefix: str, attempt: int) -> None:
    subnet = lab_plan.subnet_for(prefix, attempt=attempt)
    assert subnet == lab_plan.subnet_for(prefix, attempt=attempt)
    assert subnet.startswith("10.251.")
    assert lab_plan.check_subnet(subnet) == subnet


def test_subnet_for_walks_on_to_other_subnets() -> None:
    seen = {lab_plan.subnet_for("kl0a1b2c", attempt=a) for a in range(20)}
    assert len(seen) > 10


def test_root_networks_parse_ip_output_and_find_overlaps() -> None:
    routes = [
        "default via 192.0.2.1 dev eth0 ",
        "192.0.2.0/24 dev eth0 proto kernel scope link src 192.0.2.2 ",
        "unreachable 10.251.7.0/24 proto static ",
        "local 127.0.0.0/8 dev lo table local proto kernel scope host src 127.0.0.1 ",
        "broadcast 192.0.2.255 dev eth0 table local proto kernel scope link src 192.0.2.2 ",
        "",
    ]
    addrs = ["4: eth0    inet 172.17.3.4/16 brd 172.17.255.255 scope global eth0"]
    nets = lab_plan.root_networks(routes, addrs)
    assert ipaddress.ip_network("0.0.0.0/0") not in nets
    assert lab_plan.subnet_taken("10.251.7", nets)       # another lab's guard route
    assert lab_plan.subnet_taken("172.17.200", nets)     # inside an address's network
    assert not lab_plan.subnet_taken("10.251.8", nets)
    assert not lab_plan.subnet_taken("10.250.0", nets)


def test_only_directories_a_machine_cannot_see_are_shared() -> None:
    assert lab_plan.shares_for(["/work/main", "/opt/venv", "/usr", "/root/x"]) == []
    assert lab_plan.shares_for(["/tmp/repo", "/tmp/repo/.venv", "/var/lib/x",
                                "/tmp/repo/"]) == ["/tmp/repo", "/var/lib/x"]
    assert lab_plan.needs_share("/run/user/0")
    assert not lab_plan.needs_share("/tmpfoo")
    assert lab_plan.shares_for(["/var/../tmp/a/", "/usr/../tmp/a/b"]) == ["/tmp/a"]
    for bad in ("/tmp", "/etc/", "/var/lib/..", "relative/dir"):
        with pytest.raises(PlanError):
            lab_plan.shares_for([bad])


def test_inventory_lists_every_machine_as_an_ssh_target() -> None:
    p = lab_plan.plan("lab", 1, 1, "10.250.0")
    text = lab_plan.render_inventory(p, "/d/id_ed25519", "/d/known_hosts")
    assert yaml.safe_load(text) == {
        "machines": [
            {"name": "lab-cp1", "address": "10.250.0.11", "port": 22, "user": "root",
             "key": "/d/id_ed25519", "role": "control-plane"},
            {"name": "lab-w1", "address": "10.250.0.12", "port": 22, "user": "root",
             "key": "/d/id_ed25519", "role": "worker"},
        ],
        "lab": {"netns": "lab-ctl", "subnet": "10.250.0.0/24",
                "known_hosts": "/d/known_hosts"},
        "cluster": {"allow_single_control_plane": True},  # one control plane: development
    }


def test_known_hosts_and_etc_hosts_name_every_machine() -> None:
    p = lab_plan.plan("lab", 1, 1, "10.250.0")
    text = lab_plan.known_hosts(p, {"lab-cp1": "ssh-ed25519 AAAA1 lab-cp1\n",
                                    "lab-w1": "ssh-ed25519 AAAA2"})
    assert text == ("lab-cp1,10.250.0.11 ssh-ed25519 AAAA1\n"
                    "lab-w1,10.250.0.12 ssh-ed25519 AAAA2\n")
    hosts = lab_plan.etc_hosts(p).splitlines()
    assert hosts == ["127.0.0.1 localhost", "10.250.0.1 lab-ctl", "10.250.0.11 lab-cp1",
                     "10.250.0.12 lab-w1"]


def test_sshd_config_allows_root_by_key_only() -> None:
    lines = set(lab_plan.sshd_config("/etc/ssh/lab").splitlines())
    assert {"PermitRootLogin prohibit-password", "PasswordAuthentication no",
            "KbdInteractiveAuthentication no", "UsePAM no", "UseDNS no",
            "HostKey /etc/ssh/lab/ssh_host_ed25519_key",
            "AuthorizedKeysFile /etc/ssh/lab/authorized_keys"} <= lines


def test_boot_script_isolates_then_becomes_sshd() -> None:
    script = lab_plan.boot_script("lab-cp1", "/tmp/l d/lab-cp1", ["/tmp/repo"],
                                  "/usr/sbin/sshd", "/etc/ssh/lab/sshd_config")
    lines = script.splitlines()
    assert lines[0] == "set -e"
    assert "echo lab-cp1 > /proc/sys/kernel/hostname" in lines
    # shares are bound aside before the overlays and tmpfs hide them, moved back after
    stash = lines.index("mount --bind /tmp/repo /mnt/0")
    overlay = next(i for i, line in enumerate(lines) if line.startswith("mount -t overlay"))
    tmp = lines.index("mount -t tmpfs -o mode=1777 tmpfs /tmp")
    move = lines.index("mount --move /mnt/0 /tmp/repo")
    assert stash < overlay < tmp < move
    assert "upperdir='/tmp/l d/lab-cp1/etc-upper'" in script
    assert lines[-2] == "umount /mnt"
    assert lines[-1] == "exec /usr/sbin/sshd -D -e -f /etc/ssh/lab/sshd_config"
    no_shares = lab_plan.boot_script("m", "/d", [], "/usr/sbin/sshd", "/c")
    assert "/mnt" not in no_shares


def test_status_table_lines_up() -> None:
    rows = [{"name": "lab-cp1", "role": CONTROL_PLANE, "address": "10.250.0.11",
             "running": True, "ssh": True, "pid": 42},
            {"name": "lab-w1", "role": WORKER, "address": "10.250.0.12",
             "running": False, "ssh": None, "pid": None}]
    assert lab.render_table(rows).splitlines() == [
        "NAME     ROLE           ADDRESS      STATE    SSH  PID",
        "lab-cp1  control-plane  10.250.0.11  running  up   42",
        "lab-w1   worker         10.250.0.12  stopped  -    -",
    ]


def test_state_round_trips_to_the_same_plan() -> None:
    p = lab_plan.plan("lab", 2, 1, "10.250.0")
    state = {"prefix": "lab", "subnet": "10.250.0",
             "machines": [{"name": m.name, "role": m.role, "index": m.index,
                           "address": m.address} for m in p.machines]}
    assert lab_build.plan_of(state) == p
