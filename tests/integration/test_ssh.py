"""SSH to a real lab machine (root): a namespace with its own sshd, dialled from inside
the lab's ctl namespace, exactly as provisioning reaches any host.

One single-machine lab serves the module; its prefix carries a random 6-hex token and
its subnet is a free 10.251.x.0/24 chosen from it, so parallel runs never meet. All
traffic stays inside the lab's namespaces, which have no route out.
"""

from __future__ import annotations

import os
import secrets
import shlex
import stat
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from provisioning import lab_build, lab_plan, preflight, ssh
from provisioning.ssh import SshTarget
from tests.privileges import require_root

pytestmark = pytest.mark.timeout(180)


@dataclass
class Lab:
    directory: Path
    plan: lab_plan.LabPlan

    @property
    def machine(self) -> lab_plan.Machine:
        return self.plan.machines[0]

    @property
    def known_hosts(self) -> Path:
        return self.directory / lab_build.KNOWN_HOSTS_FILE

    @property
    def target(self) -> SshTarget:
        m = self.machine
        return SshTarget(m.name, m.address, lab_plan.SSH_PORT, lab_plan.SSH_USER,
                         str(self.directory / lab_build.KEY_FILE), netns=self.plan.ctl_netns)

    def unused_address(self) -> str:
        """An address in the lab's subnet where no machine is."""
        return f"{self.plan.subnet}.250"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    require_root("the lab")
    try:
        lab_build.preflight()
    except lab_build.LabError as exc:
        pytest.fail(str(exc), pytrace=False)   # root without sshd: a broken setup
    prefix = f"ks{secrets.token_hex(3)}"
    plan = lab_plan.plan(prefix, 1, 0, lab_build.free_subnet(prefix))
    directory = tmp_path_factory.mktemp("ssh-lab") / "state"
    lab_build.up(plan, directory)
    try:
        yield Lab(directory, plan)
    finally:
        assert lab_build.down(directory) == []


@pytest.fixture
def conn(lab: Lab) -> Iterator[ssh.Connection]:
    with ssh.connect(lab.target, known_hosts=lab.known_hosts) as c:
        yield c


def _new_key(path: Path) -> Path:
    key = Ed25519PrivateKey.generate()
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.OpenSSH,
                                       serialization.NoEncryption()))
    path.chmod(0o600)
    return path


def test_run_through_the_lab_netns(lab: Lab, conn: ssh.Connection) -> None:
    r = conn.run("hostname; cat /proc/1/comm; id -u; echo oops >&2; exit 3")
    assert (r.code, r.stdout.split(), r.stderr) == (3, [lab.machine.name, "sshd", "0"],
                                                     "oops\n")
    assert conn.run("true", check=True).ok
    with pytest.raises(ssh.CommandFailed, match=f"{lab.machine.name}: `echo nope >&2; false` "
                                                "exited 1: nope") as info:
        conn.run("echo nope >&2; false", check=True)
    assert info.value.result.code == 1 and info.value.machine == lab.machine.name
    assert conn.run("cat", input=b"from stdin\n").stdout == "from stdin\n"


def test_large_output_on_both_streams_does_not_stall(conn: ssh.Connection) -> None:
    # Far beyond SSH's 2 MB channel window, all on stderr first: read as it comes.
    r = conn.run("head -c 3000000 /dev/zero | tr '\\0' e >&2; "
                 "head -c 3000000 /dev/zero | tr '\\0' o", timeout=60)
    assert r.ok
    assert (len(r.stdout), set(r.stdout)) == (3_000_000, {"o"})
    assert (len(r.stderr), set(r.stderr)) == (3_000_000, {"e"})


def test_a_command_that_hangs_times_out_and_the_connection_lives_on(
        conn: ssh.Connection) -> None:
    with pytest.raises(ssh.CommandTimeout, match="did not finish within 1 s"):
        conn.run("sleep 30", timeout=1)
    assert conn.run("echo still here").stdout == "still here\n"


def test_a_connection_that_dies_mid_command_is_reported(conn: ssh.Connection) -> None:
    # The shell's parent is sshd's process for this one connection: kill it, as a crash
    # or a reboot of the machine would.
    with pytest.raises(ssh.ConnectionLost, match="connection"):
        conn.run("kill -9 $PPID; sleep 30", timeout=60)
    with pytest.raises(ssh.ConnectionLost, match="closed"):
        conn.run("true")


def test_put_and_get(lab: Lab, conn: ssh.Connection, tmp_path: Path) -> None:
    token = secrets.token_hex(4)
    remote = f"/var/lib/kl-{token}/sub/config.yaml"          # parents do not exist yet
    conn.put(b"a: 1\n", remote, mode=0o640)
    r = conn.run(f"stat -c '%a %s' {remote}; ls -a /var/lib/kl-{token}/sub")
    assert r.stdout.split() == ["640", "5", ".", "..", "config.yaml"]   # no temp files left
    local = tmp_path / "big.bin"
    local.write_bytes(os.urandom(1_500_000))
    conn.put(local, remote, mode=0o600)                                 # replaces it
    copy = tmp_path / "copy.bin"
    assert conn.get(remote, copy) == local.read_bytes()
    assert copy.read_bytes() == local.read_bytes()
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    with pytest.raises(ssh.TransferFailed, match="does not exist"):
        conn.get(f"/var/lib/kl-{token}/missing")
    # It landed on the machine's own /var (its overlay), not on this host's.
    assert not Path(f"/var/lib/kl-{token}").exists()
    conn.run(f"rm -rf /var/lib/kl-{token}", check=True)


def test_a_full_disk_is_reported_as_such(conn: ssh.Connection) -> None:
    # A 64 KiB tmpfs in the machine's own mount namespace (its /tmp is private).
    mnt = f"/tmp/kl-full-{secrets.token_hex(4)}"
    conn.run(f"mkdir {mnt} && mount -t tmpfs -o size=64k kl-full {mnt}", check=True)
    try:
        with pytest.raises(ssh.TransferFailed, match="is full") as info:
            conn.put(b"x" * 300_000, f"{mnt}/venv.tar")
        assert f"the filesystem holding {mnt} is full" in str(info.value)
        assert "free space on" in str(info.value)
        assert conn.run(f"ls -A {mnt}").stdout == ""              # the partial file is gone
    finally:
        conn.run(f"umount {mnt}; rmdir {mnt}")


def test_wrong_key_is_refused_by_name(lab: Lab, tmp_path: Path) -> None:
    key = _new_key(tmp_path / "id_other")
    with pytest.raises(ssh.AuthFailed) as info:
        ssh.connect(replace(lab.target, key_path=str(key)), known_hosts=lab.known_hosts)
    assert str(info.value) == (
        f"root@{lab.machine.name}: the key {key} was refused — is its public key in root's "
        f"authorized_keys on {lab.machine.name}?")
    with pytest.raises(ssh.KeyProblem, match="does not exist"):
        ssh.connect(replace(lab.target, key_path=str(tmp_path / "nope")),
                    known_hosts=lab.known_hosts)


def test_unknown_host_key_needs_accept_new(lab: Lab, tmp_path: Path) -> None:
    known = tmp_path / "ssh" / "known_hosts"
    with pytest.raises(ssh.HostKeyUnknown, match="--accept-new-host-keys") as info:
        ssh.connect(lab.target, known_hosts=known)
    assert "SHA256:" in str(info.value) and str(known) in str(info.value)
    assert not known.exists()
    with ssh.connect(lab.target, known_hosts=known, accept_new=True) as c:
        assert c.run("hostname").stdout.strip() == lab.machine.name
    recorded = known.read_text().split()
    expected = lab.known_hosts.read_text().split()      # what the lab generated
    assert recorded == [lab.machine.address, *expected[1:3]]
    assert stat.S_IMODE(known.stat().st_mode) == 0o600
    with ssh.connect(lab.target, known_hosts=known) as c:   # known now: no flag needed
        assert c.run("true").ok


def test_changed_host_key_is_refused_even_with_accept_new(lab: Lab, tmp_path: Path) -> None:
    impostor = paramiko.Ed25519Key.from_private_key_file(str(_new_key(tmp_path / "hk")))
    known = tmp_path / "known_hosts"
    # Line 3 in OpenSSH's hashed form (HashKnownHosts yes), as Debian writes it.
    hashed = paramiko.HostKeys.hash_host(lab.machine.address)
    text = (f"# operator's file\nother.example {impostor.get_name()} {impostor.get_base64()}\n"
            f"{hashed} {impostor.get_name()} {impostor.get_base64()}\n")
    known.write_text(text)
    for accept_new in (False, True):
        with pytest.raises(ssh.HostKeyMismatch) as info:
            ssh.connect(lab.target, known_hosts=known, accept_new=accept_new)
        message = str(info.value)
        assert f"{known} line 3 expects ssh-ed25519 {ssh.fingerprint(impostor)}" in message
        assert "HOST KEY CHANGED" in message
        assert f"ssh-keygen -f {known} -R '{lab.machine.address}'" in message
    assert known.read_text() == text                                # never rewritten


def test_unreachable_addresses(lab: Lab) -> None:
    nobody = replace(lab.target, name="ghost", address=lab.unused_address())
    with pytest.raises(ssh.Unreachable) as info:
        ssh.connect(nobody, known_hosts=lab.known_hosts, timeout=10)
    assert str(info.value).startswith(f"ghost: cannot reach {lab.unused_address()}:22: ")
    assert str(info.value).endswith("— is the machine up and sshd running?")
    closed = replace(lab.target, port=2222)                         # up, nothing listens
    with pytest.raises(ssh.Unreachable, match=":2222: connection refused"):
        ssh.connect(closed, known_hosts=lab.known_hosts)
    gone = replace(lab.target, netns=f"{lab.plan.prefix}-nosuch")
    with pytest.raises(ssh.Unreachable, match="is the lab up"):
        ssh.connect(gone, known_hosts=lab.known_hosts)


def test_preflight_on_the_lab_machine(lab: Lab, conn: ssh.Connection) -> None:
    port = 20000 + secrets.randbelow(10000)
    server = ("import os, socket, time\n"
              f"s = socket.create_server(('0.0.0.0', {port}))\n"
              "print(os.getpid(), flush=True)\n"
              "time.sleep(120)\n")
    _, out, _ = conn.client.exec_command(f"python3 -c {shlex.quote(server)}", timeout=60)
    pid = int(out.readline())
    try:
        facts = preflight.gather({lab.machine.name: conn})[lab.machine.name]
    finally:
        conn.run(f"kill {pid}")
    assert facts.error is None
    assert facts.python is not None and facts.python >= (3, 11)
    assert facts.uid == 0 and facts.pid1 == "sshd" and not facts.systemd
    assert {"ip", "nsenter", "nft"} <= set(facts.tools)
    assert port in facts.listening and 22 in facts.listening
    assert facts.disk_free_bytes is not None and facts.disk_free_bytes > 0
    assert facts.clock_skew is not None and facts.skew_uncertainty is not None
    assert abs(facts.clock_skew) <= facts.skew_uncertainty + 0.01    # one kernel clock
    found = preflight.problems(lab.machine.name, facts, required_ports=[port, port + 1],
                               min_disk_bytes=1)
    assert found == [f"{lab.machine.name}: port {port} is already in use — stop what "
                     f"listens there (see `ss -ltnp 'sport = :{port}'`) or choose another "
                     "port in the cluster settings"]


def test_connect_all_reports_good_and_bad_together(lab: Lab, tmp_path: Path) -> None:
    good = lab.target
    wrong_key = replace(good, name="wrong-key", key_path=str(_new_key(tmp_path / "k")))
    ghost = replace(good, name="ghost", address=lab.unused_address())
    connections, errors = ssh.connect_all([ghost, good, wrong_key],
                                          known_hosts=lab.known_hosts, parallel=3)
    try:
        assert list(connections) == [good.name]
        assert list(errors) == ["ghost", "wrong-key"]
        assert isinstance(errors["ghost"], ssh.Unreachable)
        assert isinstance(errors["wrong-key"], ssh.AuthFailed)
        assert connections[good.name].run("hostname").stdout.strip() == good.name
        facts = preflight.gather(connections)
        assert preflight.all_problems(facts, min_disk_bytes=1) == []
    finally:
        ssh.close_all(connections.values())
