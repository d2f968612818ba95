"""provisioning.vagrant: python-vagrant's view of a fleet, turned into an Inventory.

The inputs are what the real tools gave (Vagrant 2.3.4, vagrant-libvirt 0.11.2,
python-vagrant 1.0.0; shared/anchors/fleet/README.md, "Vagrant, exactly as run", and
runs of this repository's Vagrantfile): Status tuples, `vagrant ssh-config` text parsed
by python-vagrant itself, the machine table the Vagrantfile writes, and the
machine-readable error vagrant prints when a provider is missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import vagrant as python_vagrant
from vagrant import Status

from provisioning import inventory
from provisioning import vagrant as pv
from provisioning.inventory import Inventory, Machine

NAMES = ["cp1", "cp2", "cp3", "w1", "w2"]

# `vagrant status` through python-vagrant, nothing created yet (libvirt installed).
NOT_CREATED = [Status(name=n, state="not_created", provider="libvirt") for n in NAMES]
# After `vagrant up cp1`.
CP1_UP = [Status(name="cp1", state="running", provider="libvirt"), *NOT_CREATED[1:]]
ALL_UP = [Status(name=n, state="running", provider="libvirt") for n in NAMES]

# `vagrant ssh-config cp1` of a libvirt machine: HostName is the management network.
SSH_CONFIG = """\
Host {name}
  HostName 192.168.121.{octet}
  User vagrant
  Port 22
  UserKnownHostsFile /dev/null
  StrictHostKeyChecking no
  PasswordAuthentication no
  IdentityFile /home/op/fleet/.vagrant/machines/{name}/libvirt/private_key
  IdentitiesOnly yes
  LogLevel FATAL
"""

# What the Vagrantfile writes to $KUBELITE_VAGRANT_FLEET (KUBELITE_WORKERS=2).
FLEET_TABLE = (
    '{"machines":[{"name":"cp1","role":"control-plane","ip":"192.168.56.11","memory":2048,"cpus":2},'
    '{"name":"cp2","role":"control-plane","ip":"192.168.56.12","memory":2048,"cpus":2},'
    '{"name":"cp3","role":"control-plane","ip":"192.168.56.13","memory":2048,"cpus":2},'
    '{"name":"w1","role":"worker","ip":"192.168.56.21","memory":1024,"cpus":1},'
    '{"name":"w2","role":"worker","ip":"192.168.56.22","memory":1024,"cpus":1}]}')

# `VAGRANT_DEFAULT_PROVIDER=virtualbox vagrant status --machine-readable` without VirtualBox
# (the last lines, the error message shortened).
NO_VIRTUALBOX = (
    "1795372861,,ui,error,The provider 'virtualbox' that was requested to back the machine\\n"
    "'cp1' is reporting that it isn't usable on this system. The\\nreason is shown below:\\n\\n"
    "Vagrant could not detect VirtualBox! Make sure VirtualBox is properly installed.\n"
    "1795372861,,error-exit,Vagrant::Errors::ProviderNotUsable,The provider 'virtualbox' that "
    "was requested to back the machine\\n'cp1' is reporting that it isn't usable on this "
    "system. The\\nreason is shown below:\\n\\nVagrant could not detect VirtualBox! Make sure "
    "VirtualBox is properly installed.\\nVagrant uses the `VBoxManage` binary that ships with "
    "VirtualBox%!(VAGRANT_COMMA) and requires\\nthis to be available on the PATH.\n")


def confs(tmp_path: Path) -> dict[str, dict[str, str]]:
    """Each machine's ssh-config, parsed the way python-vagrant parses it."""
    parser = python_vagrant.Vagrant(root=str(tmp_path))   # conf(ssh_config=...) runs nothing
    return {name: parser.conf(ssh_config=SSH_CONFIG.format(name=name, octet=170 + i),
                              vm_name=name)
            for i, name in enumerate(NAMES)}


def test_python_vagrant_parses_the_recorded_ssh_config(tmp_path: Path) -> None:
    conf = confs(tmp_path)["cp1"]
    # The keys the anchor recorded from conf() on a running libvirt machine.
    assert {k: conf[k] for k in ("Host", "HostName", "User", "Port", "IdentitiesOnly")} == {
        "Host": "cp1", "HostName": "192.168.121.170", "User": "vagrant", "Port": "22",
        "IdentitiesOnly": "yes"}
    assert conf["IdentityFile"].endswith("/.vagrant/machines/cp1/libvirt/private_key")


def test_a_running_fleet_becomes_machines_on_their_private_addresses(tmp_path: Path) -> None:
    ips, roles = pv.parse_fleet(FLEET_TABLE)
    machines = pv.machines_from(ALL_UP, confs(tmp_path), ips, roles)
    key = "/home/op/fleet/.vagrant/machines/{}/libvirt/private_key"
    assert machines == [
        Machine(name="cp1", address="192.168.56.11", port=22, user="vagrant",
                key=key.format("cp1"), role="control-plane", sudo=True),
        Machine(name="cp2", address="192.168.56.12", port=22, user="vagrant",
                key=key.format("cp2"), role="control-plane", sudo=True),
        Machine(name="cp3", address="192.168.56.13", port=22, user="vagrant",
                key=key.format("cp3"), role="control-plane", sudo=True),
        Machine(name="w1", address="192.168.56.21", port=22, user="vagrant",
                key=key.format("w1"), role="worker", sudo=True),
        Machine(name="w2", address="192.168.56.22", port=22, user="vagrant",
                key=key.format("w2"), role="worker", sudo=True),
    ]
    # The same rules as a YAML inventory; the keys are Vagrant's, not checked here.
    assert inventory.validate(Inventory(machines), check_keys=False) == []


def test_the_management_address_and_port_are_not_used(tmp_path: Path) -> None:
    # VirtualBox's ssh-config points at a NAT port on this host; the machine's node
    # address and SSH endpoint stay its private_network address on port 22.
    conf = dict(confs(tmp_path)["w1"], HostName="127.0.0.1", Port="2222")
    [machine] = pv.machines_from([Status("w1", "running", "virtualbox")], {"w1": conf},
                                 {"w1": "192.168.56.21"})
    assert (machine.address, machine.port, machine.role) == ("192.168.56.21", 22, "worker")


@pytest.mark.parametrize(("statuses", "stopped"), [
    (NOT_CREATED, "cp1 (not_created), cp2 (not_created), cp3 (not_created), "
                  "w1 (not_created), w2 (not_created)"),
    (CP1_UP, "cp2 (not_created), cp3 (not_created), w1 (not_created), w2 (not_created)"),
    ([*ALL_UP[:4], Status("w2", "poweroff", "libvirt")], "w2 (poweroff)"),
])
def test_machines_that_are_not_running_are_named(statuses: list[Status], stopped: str,
                                                  tmp_path: Path) -> None:
    ips, roles = pv.parse_fleet(FLEET_TABLE)
    with pytest.raises(pv.VagrantError) as caught:
        pv.machines_from(statuses, confs(tmp_path), ips, roles, directory="/home/op/fleet")
    assert str(caught.value) == (f"Vagrant machines not running: {stopped}; run `vagrant up` "
                                 "in /home/op/fleet first")
    assert isinstance(caught.value, inventory.InventoryError)


def test_what_cannot_be_known_is_reported_for_every_machine(tmp_path: Path) -> None:
    statuses = [Status("cp1", "running", "libvirt"), Status("db", "running", "libvirt")]
    with pytest.raises(pv.VagrantError) as caught:
        pv.machines_from(statuses, {"cp1": confs(tmp_path)["cp1"]}, {})
    assert caught.value.problems == [
        "cp1: no private_network address known (kubelite's Vagrantfile publishes them "
        "through KUBELITE_VAGRANT_FLEET); db: no `vagrant ssh-config` for it; "
        "db: no private_network address known (kubelite's Vagrantfile publishes them "
        "through KUBELITE_VAGRANT_FLEET); db: cannot tell its role: name control planes "
        "cp1.. and workers w1.."]
    with pytest.raises(pv.VagrantError, match="defines no machines"):
        pv.machines_from([], {}, {})


def test_roles_come_from_the_table_before_the_name(tmp_path: Path) -> None:
    conf = confs(tmp_path)["w1"]
    [machine] = pv.machines_from([Status("w1", "running", "libvirt")], {"w1": conf},
                                 {"w1": "192.168.56.21"}, {"w1": "control-plane"})
    assert machine.role == "control-plane"


@pytest.mark.parametrize(("name", "role"), [
    ("cp1", "control-plane"), ("cp", "control-plane"), ("control-2", "control-plane"),
    ("control3", "control-plane"), ("w1", "worker"), ("worker-12", "worker"),
    ("worker", "worker"), ("web1", None), ("cpu1", None), ("db", None), ("w1a", None),
])
def test_role_from_name(name: str, role: str | None) -> None:
    assert pv.role_from_name(name) == role


def test_the_machine_table_is_parsed_or_refused() -> None:
    ips, roles = pv.parse_fleet(FLEET_TABLE)
    assert ips == {"cp1": "192.168.56.11", "cp2": "192.168.56.12", "cp3": "192.168.56.13",
                   "w1": "192.168.56.21", "w2": "192.168.56.22"}
    assert roles == {"cp1": "control-plane", "cp2": "control-plane", "cp3": "control-plane",
                     "w1": "worker", "w2": "worker"}
    for bad in ("", "[]", '{"machines": [{"name": "cp1"}]}', '{"machines": 3}'):
        with pytest.raises(pv.VagrantError, match="machine table"):
            pv.parse_fleet(bad)


def test_vagrants_machine_readable_error_is_extracted() -> None:
    assert pv.error_exit(NO_VIRTUALBOX.encode()) == (
        "The provider 'virtualbox' that was requested to back the machine 'cp1' is reporting "
        "that it isn't usable on this system. The reason is shown below: Vagrant could not "
        "detect VirtualBox! Make sure VirtualBox is properly installed. Vagrant uses the "
        "`VBoxManage` binary that ships with VirtualBox, and requires this to be available "
        "on the PATH.")
    assert pv.error_exit(b"1795372103,cp1,state,running\n") == ""
    assert pv.error_exit(None) == ""


def test_a_directory_without_a_vagrantfile_is_refused(tmp_path: Path) -> None:
    with pytest.raises(pv.VagrantError, match=f"no Vagrantfile in {tmp_path}"):
        pv.inventory_from_vagrant(tmp_path)
