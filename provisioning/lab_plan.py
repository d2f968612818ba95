"""What a lab looks like, decided without touching the machine: names, addresses, files.

The lab (see provisioning/lab.py) is a fleet of "machines" made of namespaces on this
one host:

    netns <P>-ctl:  br0 <S>.1/24, ports m1..mN ─ veth ─ eth0 <S>.(10+i)/24  netns <P>-cp1 ...
                                                                          netns <P>-w1 ...

Control planes come first: with 3 control planes and 2 workers, <P>-cp1..3 get
<S>.11..13 and <P>-w1..2 get <S>.14..15. No namespace has a default route, so nothing
in the lab reaches beyond <S>.0/24, and the root namespace holds one `unreachable
<S>.0/24` route while the lab is up, so a lab address dialled from the wrong namespace
fails at once instead of leaving through the default route.

Everything here is a pure function of its arguments, so the lab's layout and files are
unit-tested without root: the plan, the subnet choice, the inventory and known_hosts,
the sshd configuration and the boot script that turns a process into a machine.
"""

from __future__ import annotations

import hashlib
import ipaddress
import posixpath
import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

import yaml

CONTROL_PLANE = "control-plane"
WORKER = "worker"
DEFAULT_SUBNET = "10.250.0"
FIRST_HOST_OCTET = 10          # machine i (1-based) is <subnet>.(10 + i)
MAX_MACHINES = 200
BRIDGE = "br0"
SSH_PORT = 22
SSH_USER = "root"
# Trees a lab machine does not share with this host: overlays (/etc, /var) and private
# tmpfs (/run, /tmp). A directory under one of them must be bind-mounted back to be
# seen (or written through) as on the host.
PRIVATE_TREES = ("/etc", "/var", "/run", "/tmp")
RFC1918 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12",
                                                 "192.168.0.0/16"))
STASH = "/mnt"                 # hidden by a private tmpfs while the boot script runs
_PREFIX_RE = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
_ROUTE_TYPES = {"unicast", "local", "broadcast", "multicast", "anycast", "unreachable",
                "blackhole", "prohibit", "throw", "nat"}


class PlanError(ValueError):
    """The requested lab is not possible as asked."""


@dataclass(frozen=True)
class Machine:
    name: str
    role: str
    index: int          # 1-based over all machines; fixes the address and the bridge port
    address: str

    @property
    def port_name(self) -> str:
        """This machine's veth end on the bridge (inside the ctl namespace)."""
        return f"m{self.index}"


@dataclass(frozen=True)
class LabPlan:
    prefix: str
    subnet: str                      # first three octets of the /24, e.g. "10.250.0"
    machines: tuple[Machine, ...]

    @property
    def ctl_netns(self) -> str:
        return f"{self.prefix}-ctl"

    @property
    def cidr(self) -> str:
        return f"{self.subnet}.0/24"

    @property
    def gateway(self) -> str:
        return f"{self.subnet}.1"

    @property
    def netns_names(self) -> list[str]:
        return [self.ctl_netns, *(m.name for m in self.machines)]

    def machine(self, name: str) -> Machine:
        for m in self.machines:
            if m.name == name:
                return m
        raise KeyError(name)


def check_prefix(prefix: str) -> str:
    if not _PREFIX_RE.match(prefix):
        raise PlanError(f"prefix {prefix!r}: use 1-20 of a-z, 0-9 and '-', starting "
                        "with a letter")
    return prefix


def check_subnet(subnet: str) -> str:
    """Three octets of a private /24 ("10.250.0"); anything else could be someone's."""
    parts = subnet.split(".")
    if len(parts) != 3 or not all(p.isdigit() and int(p) < 256 for p in parts):
        raise PlanError(f"subnet {subnet!r}: give the first three octets, e.g. 10.250.0")
    network = ipaddress.ip_network(f"{subnet}.0/24")
    if not any(network.subnet_of(lan) for lan in RFC1918):
        raise PlanError(f"subnet {subnet}.0/24 is not a private LAN range "
                        "(use 10.x.y, 172.16-31.x or 192.168.x)")
    return ".".join(str(int(p)) for p in parts)


def plan(prefix: str, control_planes: int, workers: int,
         subnet: str = DEFAULT_SUBNET) -> LabPlan:
    """The lab's machines: <prefix>-cp1..N first, then <prefix>-w1..M."""
    check_prefix(prefix)
    subnet = check_subnet(subnet)
    if control_planes < 1 or workers < 0:
        raise PlanError("a lab needs at least one control plane and no negative count")
    if control_planes + workers > MAX_MACHINES:
        raise PlanError(f"at most {MAX_MACHINES} machines")
    roles = [(f"cp{i}", CONTROL_PLANE) for i in range(1, control_planes + 1)]
    roles += [(f"w{i}", WORKER) for i in range(1, workers + 1)]
    machines = tuple(
        Machine(f"{prefix}-{short}", role, k, f"{subnet}.{FIRST_HOST_OCTET + k}")
        for k, (short, role) in enumerate(roles, start=1))
    return LabPlan(prefix, subnet, machines)


def subnet_for(prefix: str, base: str = "10.251", attempt: int = 0) -> str:
    """A /24 under `base`.0.0/16 derived from the prefix, so that labs with different
    prefixes rarely collide; `attempt` walks on when the first choice is taken."""
    digest = hashlib.sha256(f"{prefix}/{attempt}".encode()).digest()
    return check_subnet(f"{base}.{digest[0]}")


def root_networks(route_lines: Iterable[str],
                  addr_lines: Iterable[str]) -> list[ipaddress.IPv4Network]:
    """Destinations and addresses from `ip -o -4 route show table all` and
    `ip -o -4 addr show` output, except the default route."""
    found = []
    for line in route_lines:
        words = line.split()
        if not words:
            continue
        dst = words[1] if words[0] in _ROUTE_TYPES and len(words) > 1 else words[0]
        if dst != "default":
            found.append(ipaddress.ip_network(dst, strict=False))
    for line in addr_lines:
        words = line.split()
        if "inet" in words:
            found.append(ipaddress.ip_network(words[words.index("inet") + 1], strict=False))
    return found


def subnet_taken(subnet: str, networks: Iterable[ipaddress.IPv4Network]) -> bool:
    mine = ipaddress.ip_network(f"{subnet}.0/24")
    return any(mine.overlaps(n) for n in networks)


def needs_share(path: str) -> bool:
    """True when a lab machine would not see `path` as this host does."""
    p = PurePosixPath(path)
    return any(p == PurePosixPath(t) or PurePosixPath(t) in p.parents for t in PRIVATE_TREES)


def shares_for(paths: Iterable[str]) -> list[str]:
    """The directories among `paths` to bind-mount into every machine, outermost first,
    without ones already inside another share."""
    wanted = set()
    for path in paths:
        if not PurePosixPath(path).is_absolute():
            raise PlanError(f"share {path!r} must be an absolute path")
        normal = posixpath.normpath(path)
        if normal in PRIVATE_TREES:
            raise PlanError(f"cannot share all of {normal}: it is what keeps machines apart")
        if needs_share(normal):
            wanted.add(normal)
    chosen: list[str] = []
    for path in sorted(wanted):
        if not any(PurePosixPath(path).is_relative_to(c) for c in chosen):
            chosen.append(path)
    return chosen


def inventory(lab: LabPlan, key_path: str, known_hosts: str) -> dict:
    """The SSH targets, in the shape provisioning reads for any fleet; `lab` says how to
    reach them from this host (dial from inside the ctl namespace)."""
    return {
        "machines": [
            {"name": m.name, "address": m.address, "port": SSH_PORT, "user": SSH_USER,
             "key": key_path, "role": m.role}
            for m in lab.machines
        ],
        "lab": {"netns": lab.ctl_netns, "subnet": lab.cidr, "known_hosts": known_hosts},
        **({"cluster": {"allow_single_control_plane": True}}
           if sum(m.role == CONTROL_PLANE for m in lab.machines) == 1 else {}),
    }


def render_inventory(lab: LabPlan, key_path: str, known_hosts: str) -> str:
    return yaml.safe_dump(inventory(lab, key_path, known_hosts), sort_keys=False)


def known_hosts(lab: LabPlan, host_keys: dict[str, str]) -> str:
    """known_hosts lines ("name,address type base64") for the given public host keys."""
    lines = []
    for m in lab.machines:
        key = " ".join(host_keys[m.name].split()[:2])
        lines.append(f"{m.name},{m.address} {key}")
    return "\n".join(lines) + "\n"


def etc_hosts(lab: LabPlan) -> str:
    lines = ["127.0.0.1 localhost", f"{lab.gateway} {lab.ctl_netns}"]
    lines += [f"{m.address} {m.name}" for m in lab.machines]
    return "\n".join(lines) + "\n"


def sshd_config(config_dir: str) -> str:
    """A minimal sshd for one machine: root by key only, no PAM, no DNS (the lab has no
    resolver), sftp in-process; `config_dir` is where the machine sees its key files."""
    return "\n".join([
        f"Port {SSH_PORT}",
        "ListenAddress 0.0.0.0",
        f"HostKey {config_dir}/ssh_host_ed25519_key",
        "PidFile /run/sshd.pid",
        f"AuthorizedKeysFile {config_dir}/authorized_keys",
        "PermitRootLogin prohibit-password",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "UseDNS no",
        "StrictModes no",
        "PrintMotd no",
        "X11Forwarding no",
        "AllowTcpForwarding yes",
        "MaxStartups 100:30:200",
        "MaxSessions 50",
        "Subsystem sftp internal-sftp",
        "",
    ])


def boot_script(name: str, state_dir: str, shares: Sequence[str], sshd: str,
                sshd_config_path: str) -> str:
    """The shell script that runs as PID 1 of a fresh mount/UTS/IPC/PID namespace and
    turns it into machine `name`, then becomes its sshd.

    Order matters: shares are bind-mounted aside (under a private tmpfs on STASH) while
    they are still the host's directories, before the overlays and tmpfs hide them; they
    are moved back into place at the end.
    """
    q = shlex.quote
    d = state_dir
    lines = ["set -e", f"echo {q(name)} > /proc/sys/kernel/hostname"]
    if shares:
        lines.append(f"mount -t tmpfs -o mode=700 lab-stash {STASH}")
        for i, path in enumerate(shares):
            lines += [f"mkdir {STASH}/{i}", f"mount --bind {q(path)} {STASH}/{i}"]
    for tree in ("etc", "var"):
        lines.append(
            f"mount -t overlay overlay -o lowerdir=/{tree},upperdir={q(d + '/' + tree + '-upper')}"
            f",workdir={q(d + '/' + tree + '-work')} /{tree}")
    lines += [
        "mount -t tmpfs -o mode=755 tmpfs /run",
        "mkdir -p /run/sshd",
        "mount -t tmpfs -o mode=1777 tmpfs /tmp",
    ]
    if shares:
        for i, path in enumerate(shares):
            lines += [f"mkdir -p {q(path)}", f"mount --move {STASH}/{i} {q(path)}"]
        lines.append(f"umount {STASH}")
    lines.append(f"exec {q(sshd)} -D -e -f {q(sshd_config_path)}")
    return "\n".join(lines) + "\n"
