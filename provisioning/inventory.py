"""The fleet inventory: which machines kubelite provisions, how to reach them, and the
cluster-wide settings; loaded from YAML and checked before anything touches a machine.

One format serves bare metal, Vagrant VMs and the local lab. It is the one
`kubelite lab up` writes (provisioning/lab_plan.py): a list of machines, each with its
own role, plus optional sections:

    machines:
      - {name: cp1, address: 10.0.0.11, port: 22, user: root, key: ~/.ssh/id_ed25519,
         role: control-plane}
      - name: w1
        address: w1.example.net
        user: debian
        sudo: true
        role: worker
        labels: {disk: ssd}
        taints: [{key: dedicated, value: db, effect: NoSchedule}]
    cluster:                         # every field optional; defaults in ClusterSettings
      service_cidr: 10.96.0.0/12
    access:                          # or `lab:`, as the lab writes it
      netns: lab-ctl                 # dial the machines from inside this network namespace
      known_hosts: /path/known_hosts

Checking happens in two passes, so that the operator sees every problem at once, each
with the line it sits on:

1. the shape (`_from_data`): known fields, required fields, sections of the right kind.
   Values are taken as they come, wrong types included, and nothing is dropped;
2. the values (`validate`), on the Inventory itself, so that an inventory built from
   another source (python-vagrant, provisioning/vagrant.py) passes the same rules: types,
   names, addresses, CIDRs, ports, the number of control planes, uniqueness, key files.

Problems carry a field path (`machines[2].port`); `load_inventory` turns the path into a
line through PyYAML's composed nodes, whose marks remember where every key and item
started. The only I/O besides reading the file is a stat of each key file.

The load balancer (`cluster.load_balancer`): "control-planes" (the default) runs HAProxy
on every control plane at `ports.load_balancer`, each forwarding to every apiserver.
Clients of kubelite itself list every apiserver and fail over on their own, so no
virtual IP is needed and no single machine is in the path; tools that take one server
(kubectl) use any control plane's balancer. Any other value is the address of a
balancer the operator runs (a VIP or DNS name in front of the apiservers at
`ports.load_balancer`): kubelite installs no HAProxy then, and names that address in
certificates and kubeconfigs.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path, PurePosixPath

import yaml

from apiserver import validation_errors as ve

CONTROL_PLANE = "control-plane"
WORKER = "worker"
ROLES = (CONTROL_PLANE, WORKER)
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
LB_ON_CONTROL_PLANES = "control-planes"
CONTROL_PLANE_COUNTS = (3, 5)
DEFAULT_SOURCE = "inventory.yaml"

_USER_RE = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")
_PYTHON_RE = re.compile(r"[A-Za-z0-9_./+-]+")
_NETNS_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_HOST_LABEL_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_VERSION_RE = re.compile(r"v\d+\.\d+(\.\d+)?")
REQUIRED = "required field is missing"
_IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LAST_SEGMENT_RE = re.compile(r"(\.[^.\[\]]+|\[[^\]]*\]|^[^.\[\]]+)$")


class InventoryError(ValueError):
    """The inventory cannot be used; str() lists every problem, one per line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Machine:
    """One SSH target and the node it becomes. `key` is a private key file (None: the
    SSH agent and ~/.ssh defaults); `python` is the interpreter kubelite runs there."""

    name: str
    address: str
    port: int = 22
    user: str = "root"
    key: str | None = None
    role: str = WORKER
    sudo: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[dict[str, str], ...] = ()
    python: str = "python3"

    def __post_init__(self) -> None:
        # Lists and tuples compare unequal: keep one form, so that equal inventories are
        # equal however they were built.
        if isinstance(self.taints, list):
            object.__setattr__(self, "taints", tuple(self.taints))

    @property
    def is_control_plane(self) -> bool:
        return self.role == CONTROL_PLANE


@dataclass(frozen=True)
class Ports:
    store_client: int = 2379
    store_peer: int = 2380
    apiserver: int = 6443
    load_balancer: int = 7443
    agent: int = 10250


@dataclass(frozen=True)
class ClusterSettings:
    name: str = "kubelite"
    cluster_cidr: str = "10.244.0.0/16"      # pod addresses; each node gets one /node_cidr_mask_size
    service_cidr: str = "10.96.0.0/12"
    node_cidr_mask_size: int = 24
    ports: Ports = field(default_factory=Ports)
    load_balancer: str = LB_ON_CONTROL_PLANES
    kubernetes_version: str = "v1.32"        # what /version reports to clients
    data_dir: str = "/var/lib/kubelite"
    install_dir: str = "/var/lib/kubelite/venv"
    allow_single_control_plane: bool = False  # development only: no store quorum to lose


@dataclass(frozen=True)
class Access:
    """How this host reaches the machines: from inside network namespace `netns` (the
    lab's ctl namespace) or directly; `known_hosts` pins their host keys; `subnet` is
    the lab's network, which every machine address must be in."""

    netns: str | None = None
    known_hosts: str | None = None
    subnet: str | None = None


@dataclass(frozen=True)
class Inventory:
    machines: tuple[Machine, ...]
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    access: Access = field(default_factory=Access)

    def __post_init__(self) -> None:
        if isinstance(self.machines, list):
            object.__setattr__(self, "machines", tuple(self.machines))

    @property
    def control_planes(self) -> list[Machine]:
        return [m for m in self.machines if m.role == CONTROL_PLANE]

    @property
    def workers(self) -> list[Machine]:
        return [m for m in self.machines if m.role == WORKER]

    @property
    def by_name(self) -> dict[str, Machine]:
        return {m.name: m for m in self.machines}

    @property
    def load_balancer_addresses(self) -> list[str]:
        """Where clients find a balancer: every control plane, or the operator's one."""
        if self.cluster.load_balancer == LB_ON_CONTROL_PLANES:
            return [m.address for m in self.control_planes]
        return [self.cluster.load_balancer]


# --- loading --------------------------------------------------------------------------

def load_inventory(source: str | os.PathLike[str], *, check_keys: bool = True,
                   name: str | None = None, base_dir: str | os.PathLike[str] | None = None,
                   ) -> Inventory:
    """The inventory in `source`: a path (a Path, or a one-line str naming a file) or the
    YAML text itself. Relative key and known_hosts paths are taken from the file's
    directory (`base_dir` for text, default the working directory). `check_keys=False`
    when keys come from elsewhere (Vagrant). Raises InventoryError listing every problem
    as `NAME:LINE: FIELD: what is wrong`."""
    if isinstance(source, os.PathLike) or ("\n" not in source and os.path.isfile(source)):
        path = Path(source)
        name = name or str(path)
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise InventoryError([f"{name}: cannot read: {exc}"]) from None
        base = Path(base_dir) if base_dir is not None else path.parent
    else:
        text, name = str(source), name or DEFAULT_SOURCE
        base = Path(base_dir) if base_dir is not None else Path.cwd()
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        reason = getattr(exc, "problem", None) or str(exc)
        raise InventoryError([f"{name}:{line}: not valid YAML: {reason}"]) from None
    lines, duplicates = _index(root)
    inv, access_key, problems, quiet = _from_data(data, base)
    if inv is not None:
        problems += [(p, m) for p, m in validate(inv, check_keys=check_keys)
                     if not any(p == q or p.startswith((q + ".", q + "[")) for q in quiet)]
    located = [(line, p, "appears twice in its mapping") for p, line in duplicates]
    located += [(_line_of(p, lines), p, m)
                for p, m in ((_rename_access(p, access_key), m) for p, m in problems)]
    if located:
        raise InventoryError([f"{name}:{line}: {p}: {m}" for line, p, m in sorted(located)])
    assert inv is not None
    return inv


def _rename_access(path: str, section: str) -> str:
    return section + path[len("access"):] if path.startswith("access") else path


def _index(root: yaml.Node | None) -> tuple[dict[str, int], list[tuple[str, int]]]:
    """1-based lines of every key and item by field path, and the keys that appear
    twice in one mapping, with the line of the second (safe_load keeps the last)."""
    lines: dict[str, int] = {}
    duplicates: list[tuple[str, int]] = []

    def walk(node: yaml.Node, path: str, depth: int) -> None:
        if depth > 20:                     # anchors can make a tree refer to itself
            return
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                key = str(key_node.value)
                child = _child(path, key)
                line = key_node.start_mark.line + 1
                if key in seen:
                    duplicates.append((child, line))
                seen.add(key)
                lines.setdefault(child, line)
                lines.setdefault(f"{path}[{key}]", line)
                walk(value_node, child, depth + 1)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                lines.setdefault(f"{path}[{i}]", item.start_mark.line + 1)
                walk(item, f"{path}[{i}]", depth + 1)

    if root is not None:
        walk(root, "", 0)
    return lines, duplicates


def _child(path: str, key: str) -> str:
    if _IDENTIFIER_RE.fullmatch(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{key}]"


def _line_of(path: str, lines: Mapping[str, int]) -> int:
    """The line of `path`, or of the nearest enclosing field that is in the file (a
    missing field is reported where its mapping starts)."""
    for _ in range(path.count(".") + path.count("[") + 1):
        if path in lines:
            return lines[path]
        path = _LAST_SEGMENT_RE.sub("", path)
    return 1


# --- pass 1: the shape ----------------------------------------------------------------

Problems = list[tuple[str, str]]


def _defaults(cls: type) -> dict[str, object]:
    """Every field of `cls` with its default (None for those without one)."""
    out: dict[str, object] = {}
    for f in fields(cls):
        if f.default_factory is not MISSING:
            out[f.name] = f.default_factory()
        else:
            out[f.name] = None if f.default is MISSING else f.default
    return out


def _fields_of(section: object, path: str, known: dict[str, object], required: tuple[str, ...],
               problems: Problems) -> dict[str, object] | None:
    """The section's values over `known`'s defaults; unknown and missing fields reported."""
    if section is None:
        section = {}
    if not isinstance(section, dict):
        problems.append((path, "must be a mapping of fields"))
        return None
    values = dict(known)
    for key, value in section.items():
        if key in known:
            values[key] = value
            continue
        hint = difflib.get_close_matches(str(key), list(known), n=1)
        problems.append((_child(path, str(key)), "unknown field"
                         + (f" (did you mean {hint[0]!r}?)" if hint else "")))
    for key in required:
        if key not in section:
            problems.append((_child(path, key), REQUIRED))
            values[key] = None           # validate() stays quiet about it: see load_inventory
    return values


def _from_data(data: object, base: Path) -> tuple[Inventory | None, str, Problems, set[str]]:
    """The Inventory as written, the name of its access section, the shape's problems,
    and the paths validate() need not report on (missing, or not a mapping at all).
    Every machine item keeps its index, so that paths name the right item."""
    problems: Problems = []
    if data is not None and not isinstance(data, dict):
        return None, "access", [("machines", "the inventory must be a mapping with `machines:`")], set()
    top = _fields_of(data, "", {"machines": None, "cluster": None, "access": None, "lab": None},
                     ("machines",), problems)
    assert top is not None
    access_key = "lab" if top["lab"] is not None and top["access"] is None else "access"
    if top["lab"] is not None and top["access"] is not None:
        problems.append(("lab", "give `access:` or `lab:`, not both"))
    quiet: set[str] = set()

    machines: list[Machine] = []
    raw_machines = top["machines"]
    if raw_machines is not None and not isinstance(raw_machines, list):
        problems.append(("machines", "must be a list of machines"))
    elif isinstance(raw_machines, list):
        for i, item in enumerate(raw_machines):
            at = f"machines[{i}]"
            values = _fields_of(item, at, _defaults(Machine), ("name", "address", "role"),
                                problems)
            if values is None:
                quiet.add(at)
                values = {**_defaults(Machine), "name": None, "address": None, "role": None}
            values["key"] = _resolve(values["key"], base)
            if isinstance(values["taints"], list):
                values["taints"] = [_taint_shape(t, f"{at}.taints[{j}]", problems)
                                    for j, t in enumerate(values["taints"])]
            machines.append(Machine(**values))  # type: ignore[arg-type]

    cluster = ClusterSettings()
    values = _fields_of(top["cluster"], "cluster", _defaults(ClusterSettings), (), problems)
    if values is not None:
        raw_ports = None if isinstance(values["ports"], Ports) else values["ports"]
        ports = _fields_of(raw_ports, "cluster.ports", _defaults(Ports), (), problems)
        values["ports"] = Ports(**ports) if ports is not None else Ports()  # type: ignore[arg-type]
        cluster = ClusterSettings(**values)  # type: ignore[arg-type]

    access = Access()
    values = _fields_of(top[access_key], access_key, _defaults(Access), (), problems)
    if values is not None:
        values["known_hosts"] = _resolve(values["known_hosts"], base)
        access = Access(**values)  # type: ignore[arg-type]
    quiet |= {p for p, m in problems if m == REQUIRED}
    return Inventory(tuple(machines), cluster, access), access_key, problems, quiet


def _taint_shape(taint: object, path: str, problems: Problems) -> object:
    if not isinstance(taint, dict):
        return taint                     # reported by validate()
    for key in taint:
        if key not in ("key", "value", "effect"):
            problems.append((_child(path, str(key)), "unknown field (a taint has key, "
                             "value and effect)"))
    return {k: v for k, v in taint.items() if k in ("key", "value", "effect")}


def _resolve(path: object, base: Path) -> object:
    """An absolute path for a key or known_hosts file written relative to the inventory."""
    if not isinstance(path, str) or not path:
        return path
    return str(base / os.path.expanduser(path))


# --- pass 2: the values ---------------------------------------------------------------

def validate(inv: Inventory, *, check_keys: bool = True) -> Problems:
    """Every problem of `inv` as (field path, message); empty when it can be used."""
    problems: Problems = []
    for i, m in enumerate(inv.machines):
        problems += _machine_problems(m, f"machines[{i}]", check_keys)
    problems += _fleet_problems(inv)
    problems += _cluster_problems(inv.cluster, len(inv.machines))
    problems += _address_space_problems(inv)
    problems += _access_problems(inv.access)
    return problems


def _machine_problems(m: Machine, at: str, check_keys: bool) -> Problems:
    out: Problems = []
    if not isinstance(m.name, str):
        out.append((f"{at}.name", "must be a string"))
    else:
        out += [(f"{at}.name", f"{m.name!r}: {e} (machine names become node names)")
                for e in ve.dns1123_label_errors(m.name)]
    if (why := _address_problem(m.address)) is not None:
        out.append((f"{at}.address", why))
    if not _is_port(m.port):
        out.append((f"{at}.port", "must be an integer 1-65535"))
    if not isinstance(m.user, str) or not _USER_RE.fullmatch(m.user):
        out.append((f"{at}.user", "must be a user name (lower case letters, digits, "
                    "'_', '-' and '.', starting with a letter or '_')"))
    if m.role not in ROLES:
        out.append((f"{at}.role", f"must be {CONTROL_PLANE!r} or {WORKER!r}"))
    if not isinstance(m.sudo, bool):
        out.append((f"{at}.sudo", "must be true or false"))
    elif m.user != "root" and not m.sudo and isinstance(m.user, str):
        out.append((f"{at}.sudo", f"user {m.user!r} is not root: set `sudo: true` "
                    "(kubelite needs root on every machine)"))
    if m.key is not None:
        if not isinstance(m.key, str) or not m.key:
            out.append((f"{at}.key", "must be the path of a private key file"))
        elif check_keys and not os.path.isfile(m.key):
            out.append((f"{at}.key", f"{m.key}: no such file"))
    if not isinstance(m.python, str) or not _PYTHON_RE.fullmatch(m.python):
        out.append((f"{at}.python", "must be a command or path such as python3 or "
                    "/usr/bin/python3.11"))
    out += _labels_problems(m.labels, f"{at}.labels")
    out += _taints_problems(m.taints, f"{at}.taints")
    return out


def _labels_problems(labels: object, at: str) -> Problems:
    if not isinstance(labels, dict):
        return [(at, "must be a mapping of label keys to values")]
    out: Problems = []
    for key, value in labels.items():
        where = f"{at}[{key}]"
        if not isinstance(key, str):
            out.append((where, "label keys must be strings"))
            continue
        out += [(where, f"key {key!r}: {e}") for e in ve.label_key_errors(key)]
        if not isinstance(value, str):
            out.append((where, f"must be a string (quote it: \"{value}\")"))
        else:
            out += [(where, f"value {value!r}: {e}") for e in ve.label_value_errors(value)]
    return out


def _taints_problems(taints: object, at: str) -> Problems:
    if not isinstance(taints, tuple | list):
        return [(at, "must be a list of taints ({key, value, effect})")]
    out: Problems = []
    seen: dict[tuple[object, object], int] = {}
    for j, taint in enumerate(taints):
        where = f"{at}[{j}]"
        if not isinstance(taint, dict):
            out.append((where, "must be a mapping with key, value and effect"))
            continue
        key, value, effect = taint.get("key"), taint.get("value", ""), taint.get("effect")
        if not isinstance(key, str):
            out.append((f"{where}.key", "required: a label key"))
        else:
            out += [(f"{where}.key", e) for e in ve.label_key_errors(key)]
        if not isinstance(value, str):
            out.append((f"{where}.value", "must be a string"))
        else:
            out += [(f"{where}.value", e) for e in ve.label_value_errors(value)]
        if effect not in TAINT_EFFECTS:
            out.append((f"{where}.effect", f"must be one of {', '.join(TAINT_EFFECTS)}"))
        pair = (key, effect)
        if isinstance(key, str) and effect in TAINT_EFFECTS:
            if pair in seen:
                out.append((where, f"same key and effect as {at}[{seen[pair]}]"))
            seen.setdefault(pair, j)
    return out


def _fleet_problems(inv: Inventory) -> Problems:
    """Across machines: unique names and endpoints, how many control planes."""
    out: Problems = []
    names: dict[str, int] = {}
    endpoints: dict[tuple[str, int], int] = {}
    for i, m in enumerate(inv.machines):
        if isinstance(m.name, str):
            if m.name in names:
                out.append((f"machines[{i}].name", f"{m.name!r} is also machines[{names[m.name]}]'s name"))
            names.setdefault(m.name, i)
        if _address_problem(m.address) is None and _is_port(m.port):
            endpoint = (m.address.lower(), m.port)
            if endpoint in endpoints:
                out.append((f"machines[{i}].address", f"{m.address}:{m.port} is also "
                            f"machines[{endpoints[endpoint]}]'s address and port"))
            endpoints.setdefault(endpoint, i)
    if not inv.machines:
        return out + [("machines", "no machines: list the control planes and workers")]
    if any(m.role not in ROLES for m in inv.machines):
        return out                        # counted once the roles are right
    count = len(inv.control_planes)
    single_ok = inv.cluster.allow_single_control_plane is True
    if count not in CONTROL_PLANE_COUNTS and not (count == 1 and single_ok):
        out.append(("machines", f"{count} control planes: a cluster needs 3 or 5, so that "
                    "the store keeps a majority when one (3) or two (5) fail; 1 is allowed "
                    "for development with `cluster.allow_single_control_plane: true`"))
    return out


def _cluster_problems(c: ClusterSettings, machine_count: int) -> Problems:
    out: Problems = []
    if not isinstance(c.name, str) or ve.dns1123_label_errors(c.name):
        out.append(("cluster.name", "must be a DNS-1123 label (lower case letters, digits "
                    "and '-', at most 63)"))
    nets: dict[str, ipaddress.IPv4Network] = {}
    for key in ("cluster_cidr", "service_cidr"):
        net, why = _network(getattr(c, key))
        if why is not None:
            out.append((f"cluster.{key}", why))
        else:
            assert net is not None
            nets[key] = net
    if "cluster_cidr" in nets and "service_cidr" in nets and nets["cluster_cidr"].overlaps(nets["service_cidr"]):
        out.append(("cluster.service_cidr", f"{c.service_cidr} overlaps cluster.cluster_cidr "
                    f"{c.cluster_cidr}: pod and service addresses must differ"))
    if "service_cidr" in nets and nets["service_cidr"].prefixlen < 12:
        out.append(("cluster.service_cidr", "is larger than a /12, the most a service "
                    "range may hold"))
    mask = c.node_cidr_mask_size
    if not _is_int(mask) or not 1 <= mask <= 30:
        out.append(("cluster.node_cidr_mask_size", "must be an integer 1-30"))
    elif "cluster_cidr" in nets:
        prefix = nets["cluster_cidr"].prefixlen
        if mask <= prefix:
            out.append(("cluster.node_cidr_mask_size", f"must be longer than cluster_cidr's "
                        f"/{prefix}"))
        elif 2 ** (mask - prefix) < machine_count:
            out.append(("cluster.node_cidr_mask_size", f"/{prefix} holds only "
                        f"{2 ** (mask - prefix)} node ranges of /{mask}, for {machine_count} "
                        "machines"))
    out += _ports_problems(c.ports)
    lb = c.load_balancer
    if lb != LB_ON_CONTROL_PLANES and _address_problem(lb) is not None:
        out.append(("cluster.load_balancer", f"must be {LB_ON_CONTROL_PLANES!r} or the address "
                    "of a balancer in front of the apiservers"))
    if not isinstance(c.kubernetes_version, str) or not _VERSION_RE.fullmatch(c.kubernetes_version):
        out.append(("cluster.kubernetes_version", "must look like v1.32 or v1.32.1"))
    for key in ("data_dir", "install_dir"):
        value = getattr(c, key)
        if not isinstance(value, str) or not PurePosixPath(value).is_absolute() or ".." in value.split("/"):
            out.append((f"cluster.{key}", "must be an absolute path without '..'"))
    if not isinstance(c.allow_single_control_plane, bool):
        out.append(("cluster.allow_single_control_plane", "must be true or false"))
    return out


def _ports_problems(ports: Ports) -> Problems:
    out: Problems = []
    taken: dict[int, str] = {}
    for f in fields(Ports):
        value = getattr(ports, f.name)
        if not _is_port(value):
            out.append((f"cluster.ports.{f.name}", "must be an integer 1-65535"))
        elif value in taken:
            out.append((f"cluster.ports.{f.name}", f"{value} is also cluster.ports.{taken[value]}"))
        else:
            taken[value] = f.name
    return out


def _address_space_problems(inv: Inventory) -> Problems:
    """Pod and service ranges must not hide a machine: routes to them would swallow
    traffic meant for it. In the lab, machines must sit in the lab's subnet."""
    out: Problems = []
    ranges = []
    for key in ("cluster_cidr", "service_cidr"):
        net, _ = _network(getattr(inv.cluster, key))
        if net is not None:
            ranges.append((f"cluster.{key}", net))
    subnet, _ = _network(inv.access.subnet) if inv.access.subnet is not None else (None, None)
    for i, m in enumerate(inv.machines):
        ip = _ipv4(m.address)
        if ip is None:
            continue
        for where, net in ranges:
            if ip in net:
                out.append((f"machines[{i}].address", f"{ip} is inside {where} {net}"))
        if subnet is not None and ip not in subnet:
            out.append((f"machines[{i}].address", f"{ip} is outside {subnet}, the subnet "
                        "the machines are dialled in"))
    if subnet is not None:
        for where, net in ranges:
            if net.overlaps(subnet):
                out.append(("access.subnet", f"{subnet} overlaps {where} {net}"))
    return out


def _access_problems(a: Access) -> Problems:
    out: Problems = []
    if a.netns is not None and (not isinstance(a.netns, str) or not _NETNS_RE.fullmatch(a.netns)):
        out.append(("access.netns", "must be a network namespace name"))
    if a.known_hosts is not None and (not isinstance(a.known_hosts, str) or not a.known_hosts):
        out.append(("access.known_hosts", "must be the path of a known_hosts file"))
    if a.subnet is not None:
        _, why = _network(a.subnet)
        if why is not None:
            out.append(("access.subnet", why))
    return out


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_port(value: object) -> bool:
    return _is_int(value) and 1 <= value <= 65535  # type: ignore[operator]


def _ipv4(value: object) -> ipaddress.IPv4Address | None:
    try:
        return ipaddress.IPv4Address(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _address_problem(value: object) -> str | None:
    """Why `value` is not an IPv4 address or hostname a machine can be dialled at."""
    if not isinstance(value, str) or not value:
        return "must be an IPv4 address or a hostname"
    if re.fullmatch(r"[0-9.]+", value):
        ip = _ipv4(value)
        if ip is None:
            return f"{value!r} is not a valid IPv4 address"
        if ip.is_unspecified or ip.is_multicast or ip == ipaddress.IPv4Address("255.255.255.255"):
            return f"{value} cannot be a machine's address"
        return None
    if ":" in value:
        return f"{value!r}: IPv6 addresses are not supported; use IPv4 or a hostname"
    labels = value.rstrip(".").split(".")
    if len(value) > 253 or not all(_HOST_LABEL_RE.fullmatch(p) for p in labels):
        return f"{value!r} is not a valid hostname"
    return None


def _network(value: object) -> tuple[ipaddress.IPv4Network | None, str | None]:
    if not isinstance(value, str):
        return None, "must be an IPv4 CIDR such as 10.244.0.0/16"
    try:
        return ipaddress.IPv4Network(value, strict=True), None
    except ValueError as exc:
        return None, f"{value!r} is not a valid IPv4 CIDR ({exc})"


# --- writing --------------------------------------------------------------------------

def to_data(inv: Inventory) -> dict:
    """The YAML-ready form of `inv`: every machine field, the cluster section in full,
    access only when set."""
    machines = []
    for m in inv.machines:
        entry: dict[str, object] = {
            "name": m.name, "address": m.address, "port": m.port, "user": m.user,
            "key": m.key, "role": m.role, "sudo": m.sudo}
        if m.labels:
            entry["labels"] = dict(m.labels)
        if m.taints:
            entry["taints"] = [dict(t) for t in m.taints]
        entry["python"] = m.python
        machines.append(entry)
    cluster = {f.name: getattr(inv.cluster, f.name) for f in fields(ClusterSettings)}
    cluster["ports"] = {f.name: getattr(inv.cluster.ports, f.name) for f in fields(Ports)}
    data: dict[str, object] = {"machines": machines, "cluster": cluster}
    access = {f.name: getattr(inv.access, f.name) for f in fields(Access)
              if getattr(inv.access, f.name) is not None}
    if access:
        data["access"] = access
    return data


def dump_inventory(inv: Inventory) -> str:
    """YAML that load_inventory reads back into an equal Inventory."""
    return yaml.safe_dump(to_data(inv), sort_keys=False, default_flow_style=False)


def raise_if_invalid(inv: Inventory, *, source: str, check_keys: bool = True) -> Inventory:
    """`inv` when it passes validate(); else InventoryError with `source: path: message`
    lines, for inventories that come from somewhere other than a YAML file."""
    problems = validate(inv, check_keys=check_keys)
    if problems:
        raise InventoryError([f"{source}: {p}: {m}" for p, m in problems])
    return inv
