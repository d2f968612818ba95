"""provisioning.inventory: the fleet inventory, its checks and their line numbers.

Each bad inventory is checked for the exact lines the operator reads: file, line,
field, what is wrong. Line numbers in the YAML texts below are counted from 1 at the
first line after the opening quotes.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioning import inventory, lab_plan
from provisioning.inventory import (
    Access,
    ClusterSettings,
    Inventory,
    InventoryError,
    Machine,
    Ports,
    dump_inventory,
    load_inventory,
)

FLEET = """\
machines:
  - {name: cp1, address: 10.0.0.11, role: control-plane}
  - {name: cp2, address: 10.0.0.12, role: control-plane}
  - {name: cp3, address: 10.0.0.13, role: control-plane}
"""
FLEET8 = textwrap.indent(FLEET, " " * 8)   # to start the indented texts below


def problems(text: str, **kwargs: object) -> list[str]:
    """The lines an operator reads for `text`; [] when it loads."""
    try:
        load_inventory(textwrap.dedent(text), **kwargs)  # type: ignore[arg-type]
    except InventoryError as exc:
        assert str(exc) == "\n".join(exc.problems)
        return exc.problems
    return []


# --- what a good inventory gives -----------------------------------------------------

def test_a_full_inventory_loads_with_every_field(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "id_ed25519").write_text("private key")
    path = tmp_path / "fleet.yaml"
    path.write_text(textwrap.dedent("""\
        machines:
          - name: cp1
            address: 192.168.56.11
            port: 2222
            key: keys/id_ed25519
            role: control-plane
          - {name: cp2, address: 192.168.56.12, role: control-plane}
          - {name: cp3, address: cp3.example.net, role: control-plane}
          - name: w1
            address: 192.168.56.21
            user: debian
            sudo: true
            role: worker
            labels: {disk: ssd, topology.kubernetes.io/zone: a}
            taints:
              - {key: dedicated, value: db, effect: NoSchedule}
              - {key: spot, effect: PreferNoSchedule}
            python: /usr/bin/python3.11
        cluster:
          name: lab-a
          cluster_cidr: 10.200.0.0/16
          node_cidr_mask_size: 26
          ports: {apiserver: 16443}
          load_balancer: api.example.net
        """))
    inv = load_inventory(path)
    assert [m.name for m in inv.control_planes] == ["cp1", "cp2", "cp3"]
    assert [m.name for m in inv.workers] == ["w1"]
    cp1, w1 = inv.by_name["cp1"], inv.by_name["w1"]
    # A relative key is taken from the inventory's directory.
    assert cp1 == Machine(name="cp1", address="192.168.56.11", port=2222, user="root",
                          key=str(tmp_path / "keys" / "id_ed25519"), role="control-plane")
    assert cp1.is_control_plane and not w1.is_control_plane
    assert inv.by_name["cp2"].key is None and inv.by_name["cp2"].port == 22
    assert w1.user == "debian" and w1.sudo is True
    assert w1.labels == {"disk": "ssd", "topology.kubernetes.io/zone": "a"}
    assert w1.taints == ({"key": "dedicated", "value": "db", "effect": "NoSchedule"},
                         {"key": "spot", "effect": "PreferNoSchedule"})
    assert w1.python == "/usr/bin/python3.11"
    assert inv.cluster == ClusterSettings(name="lab-a", cluster_cidr="10.200.0.0/16",
                                          node_cidr_mask_size=26,
                                          ports=Ports(apiserver=16443),
                                          load_balancer="api.example.net")
    assert inv.cluster.service_cidr == "10.96.0.0/12"
    assert inv.cluster.kubernetes_version == "v1.32"
    assert inv.load_balancer_addresses == ["api.example.net"]
    assert inv.access == Access()


def test_defaults_when_the_inventory_lists_only_machines() -> None:
    inv = load_inventory(FLEET)
    assert inv.cluster == ClusterSettings()
    assert inv.cluster.ports == Ports(store_client=2379, store_peer=2380, apiserver=6443,
                                      load_balancer=7443, agent=10250)
    assert inv.cluster.data_dir == "/var/lib/kubelite"
    assert inv.cluster.install_dir == "/var/lib/kubelite/venv"
    assert inv.cluster.load_balancer == "control-planes"
    # HAProxy on every control plane by default.
    assert inv.load_balancer_addresses == ["10.0.0.11", "10.0.0.12", "10.0.0.13"]
    assert inv.workers == []
    m = inv.machines[0]
    assert (m.port, m.user, m.key, m.sudo, m.labels, m.taints, m.python) == (
        22, "root", None, False, {}, (), "python3")


def test_the_labs_inventory_is_read_as_written(tmp_path: Path) -> None:
    key, known = tmp_path / "id_ed25519", tmp_path / "known_hosts"
    key.write_text("private key")
    plan = lab_plan.plan("lab", 3, 2, "10.250.0")
    path = tmp_path / "inventory.yaml"
    path.write_text(lab_plan.render_inventory(plan, str(key), str(known)))
    inv = load_inventory(path)
    assert [(m.name, m.address, m.port, m.user, m.key, m.role) for m in inv.machines] == [
        (m.name, m.address, 22, "root", str(key), m.role) for m in plan.machines]
    assert inv.access == Access(netns="lab-ctl", known_hosts=str(known),
                                subnet="10.250.0.0/24")
    assert [m.name for m in inv.control_planes] == ["lab-cp1", "lab-cp2", "lab-cp3"]
    assert load_inventory(dump_inventory(inv)) == inv


def test_a_single_control_plane_lab_needs_the_development_switch(tmp_path: Path) -> None:
    key = tmp_path / "id"
    key.write_text("k")
    plan = lab_plan.plan("lab", 1, 1, "10.250.0")
    text = lab_plan.render_inventory(plan, str(key), str(tmp_path / "kh"))
    assert "allow_single_control_plane: true" in text  # the lab asks for it itself
    assert problems(text) == []
    without = text.replace("cluster:\n  allow_single_control_plane: true\n", "")
    assert problems(without) == [
        "inventory.yaml:1: machines: 1 control planes: a cluster needs 3 or 5, so that the "
        "store keeps a majority when one (3) or two (5) fail; 1 is allowed for development "
        "with `cluster.allow_single_control_plane: true`"]
    inv = load_inventory(text)
    assert [m.name for m in inv.control_planes] == ["lab-cp1"]


def test_inventories_built_in_code_equal_loaded_ones() -> None:
    built = Inventory([Machine("cp1", "10.0.0.11", role="control-plane"),
                       Machine("cp2", "10.0.0.12", role="control-plane"),
                       Machine("cp3", "10.0.0.13", role="control-plane")])
    assert built == load_inventory(FLEET)
    assert inventory.validate(built) == []


# --- every rule, with its line ---------------------------------------------------------

BAD = [
    ("port out of range", """\
        machines:
          - {name: cp1, address: 10.0.0.11, role: control-plane}
          - {name: cp2, address: 10.0.0.12, role: control-plane}
          - name: cp3
            address: 10.0.0.13
            port: 70000
            role: control-plane
        """, ["inventory.yaml:6: machines[2].port: must be an integer 1-65535"]),
    ("port as a string", """\
        machines:
          - {name: cp1, address: 10.0.0.11, role: control-plane, port: "22"}
          - {name: cp2, address: 10.0.0.12, role: control-plane, port: true}
          - {name: cp3, address: 10.0.0.13, role: control-plane, port: 0}
        """, ["inventory.yaml:2: machines[0].port: must be an integer 1-65535",
              "inventory.yaml:3: machines[1].port: must be an integer 1-65535",
              "inventory.yaml:4: machines[2].port: must be an integer 1-65535"]),
    ("a typo in a field", """\
        machines:
          - {name: cp1, address: 10.0.0.11, role: control-plane}
          - {name: cp2, address: 10.0.0.12, role: control-plane}
          - name: cp3
            adress: 10.0.0.13
            role: control-plane
        """, ["inventory.yaml:4: machines[2].address: required field is missing",
              "inventory.yaml:5: machines[2].adress: unknown field (did you mean 'address'?)"]),
    ("missing role", """\
        machines:
          - {name: cp1, address: 10.0.0.11, role: control-plane}
          - {name: cp2, address: 10.0.0.12, role: control-plane}
          - {name: cp3, address: 10.0.0.13}
        """, ["inventory.yaml:4: machines[2].role: required field is missing"]),
    ("unknown role", """\
        machines:
          - {name: cp1, address: 10.0.0.11, role: control-plane}
          - {name: cp2, address: 10.0.0.12, role: control-plane}
          - {name: cp3, address: 10.0.0.13, role: master}
        """, ["inventory.yaml:4: machines[2].role: must be 'control-plane' or 'worker'"]),
    ("duplicate names", FLEET8 + """\
          - {name: cp2, address: 10.0.0.21, role: worker}
        """, ["inventory.yaml:5: machines[3].name: 'cp2' is also machines[1]'s name"]),
    ("duplicate address and port", FLEET8 + """\
          - {name: w1, address: 10.0.0.21, role: worker}
          - {name: w2, address: 10.0.0.21, port: 2222, role: worker}
          - {name: w3, address: 10.0.0.21, role: worker}
        """, ["inventory.yaml:7: machines[5].address: 10.0.0.21:22 is also machines[3]'s "
              "address and port"]),
    ("names that cannot be node names", FLEET8 + """\
          - {name: Worker_1, address: 10.0.0.21, role: worker}
          - {name: w.2, address: 10.0.0.22, role: worker}
        """, ["inventory.yaml:5: machines[3].name: 'Worker_1': a lowercase RFC 1123 label "
              "must consist of lower case alphanumeric characters or '-', and must start "
              "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
              "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?') (machine names "
              "become node names)",
              "inventory.yaml:6: machines[4].name: 'w.2': must not contain dots (machine "
              "names become node names)"]),
    ("bad addresses", FLEET8 + """\
          - {name: w1, address: 10.0.0.256, role: worker}
          - {name: w2, address: "fd00::5", role: worker}
          - {name: w3, address: bad_host, role: worker}
          - {name: w4, address: 0.0.0.0, role: worker}
          - {name: w5, address: 7, role: worker}
          - {name: w6, address: w6.example.net, role: worker}
        """, ["inventory.yaml:5: machines[3].address: '10.0.0.256' is not a valid IPv4 address",
              "inventory.yaml:6: machines[4].address: 'fd00::5': IPv6 addresses are not "
              "supported; use IPv4 or a hostname",
              "inventory.yaml:7: machines[5].address: 'bad_host' is not a valid hostname",
              "inventory.yaml:8: machines[6].address: 0.0.0.0 cannot be a machine's address",
              "inventory.yaml:9: machines[7].address: must be an IPv4 address or a hostname"]),
    ("two control planes", """\
        machines:
          - {name: cp1, address: 10.0.0.11, role: control-plane}
          - {name: cp2, address: 10.0.0.12, role: control-plane}
          - {name: w1, address: 10.0.0.21, role: worker}
        """, ["inventory.yaml:1: machines: 2 control planes: a cluster needs 3 or 5, so "
              "that the store keeps a majority when one (3) or two (5) fail; 1 is allowed "
              "for development with `cluster.allow_single_control_plane: true`"]),
    ("no machines", "machines: []\n",
     ["inventory.yaml:1: machines: no machines: list the control planes and workers"]),
    ("no machines section", "cluster: {}\n",
     ["inventory.yaml:1: machines: required field is missing"]),
    ("not a mapping", "- cp1\n- cp2\n",
     ["inventory.yaml:1: machines: the inventory must be a mapping with `machines:`"]),
    ("an item that is not a mapping", FLEET + "  - w1\n",
     ["inventory.yaml:5: machines[3]: must be a mapping of fields"]),
    ("cidrs", FLEET8 + """\
        cluster:
          cluster_cidr: 10.244.0.1/16
          service_cidr: 10.96.0.0/33
        """, ["inventory.yaml:6: cluster.cluster_cidr: '10.244.0.1/16' is not a valid IPv4 "
              "CIDR (10.244.0.1/16 has host bits set)",
              "inventory.yaml:7: cluster.service_cidr: '10.96.0.0/33' is not a valid IPv4 "
              "CIDR ('33' is not a valid netmask)"]),
    ("overlapping cidrs", FLEET8 + """\
        cluster:
          cluster_cidr: 10.96.0.0/16
        """, ["inventory.yaml:5: cluster.service_cidr: 10.96.0.0/12 overlaps "
              "cluster.cluster_cidr 10.96.0.0/16: pod and service addresses must differ"]),
    ("a machine inside the pod range", FLEET8 + """\
        cluster:
          cluster_cidr: 10.0.0.0/16
        """, [f"inventory.yaml:{line}: machines[{i}].address: 10.0.0.1{i + 1} is inside "
              "cluster.cluster_cidr 10.0.0.0/16" for i, line in ((0, 2), (1, 3), (2, 4))]),
    ("service range too large", FLEET8 + """\
        cluster: {service_cidr: 10.64.0.0/10}
        """, ["inventory.yaml:5: cluster.service_cidr: is larger than a /12, the most a "
              "service range may hold"]),
    ("node ranges that do not fit", FLEET8 + """\
        cluster:
          cluster_cidr: 10.244.0.0/24
          node_cidr_mask_size: 25
        """, ["inventory.yaml:7: cluster.node_cidr_mask_size: /24 holds only 2 node ranges "
              "of /25, for 3 machines"]),
    ("node mask not longer than the pod range", FLEET8 + """\
        cluster: {node_cidr_mask_size: 16}
        """, ["inventory.yaml:5: cluster.node_cidr_mask_size: must be longer than "
              "cluster_cidr's /16"]),
    ("ports", FLEET8 + """\
        cluster:
          ports:
            apiserver: 2379
            agent: 65536
            agnet: 10250
        """, ["inventory.yaml:7: cluster.ports.apiserver: 2379 is also cluster.ports.store_client",
              "inventory.yaml:8: cluster.ports.agent: must be an integer 1-65535",
              "inventory.yaml:9: cluster.ports.agnet: unknown field (did you mean 'agent'?)"]),
    ("cluster fields", FLEET8 + """\
        cluster:
          name: Prod_1
          kubernetes_version: "1.32"
          data_dir: var/lib/kubelite
          load_balancer: "not an address!"
          allow_single_control_plane: "yes please"
          clusterCIDR: 10.244.0.0/16
        """, ["inventory.yaml:6: cluster.name: must be a DNS-1123 label (lower case letters, "
              "digits and '-', at most 63)",
              "inventory.yaml:7: cluster.kubernetes_version: must look like v1.32 or v1.32.1",
              "inventory.yaml:8: cluster.data_dir: must be an absolute path without '..'",
              "inventory.yaml:9: cluster.load_balancer: must be 'control-planes' or the "
              "address of a balancer in front of the apiservers",
              "inventory.yaml:10: cluster.allow_single_control_plane: must be true or false",
              "inventory.yaml:11: cluster.clusterCIDR: unknown field (did you mean "
              "'cluster_cidr'?)"]),
    ("unknown sections", FLEET + "workers: []\nclusters: {}\n",
     ["inventory.yaml:5: workers: unknown field",
      "inventory.yaml:6: clusters: unknown field (did you mean 'cluster'?)"]),
    ("labels and taints", FLEET8 + """\
          - name: w1
            address: 10.0.0.21
            role: worker
            labels:
              zone: 1
              "bad key!": x
            taints:
              - {key: a, effect: Sometimes}
              - {key: b, effect: NoSchedule, value: x, operator: Equal}
              - {key: b, effect: NoSchedule}
        """, ["inventory.yaml:9: machines[3].labels[zone]: must be a string (quote it: \"1\")",
              "inventory.yaml:10: machines[3].labels[bad key!]: key 'bad key!': name part "
              "must consist of alphanumeric characters, '-', '_' or '.', and must start and "
              "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
              "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
              "inventory.yaml:12: machines[3].taints[0].effect: must be one of NoSchedule, "
              "PreferNoSchedule, NoExecute",
              "inventory.yaml:13: machines[3].taints[1].operator: unknown field (a taint has "
              "key, value and effect)",
              "inventory.yaml:14: machines[3].taints[2]: same key and effect as "
              "machines[3].taints[1]"]),
    ("a user that is not root needs sudo", FLEET8 + """\
          - {name: w1, address: 10.0.0.21, user: debian, role: worker}
          - {name: w2, address: 10.0.0.22, user: "Bad User", sudo: "yes", role: worker}
        """, ["inventory.yaml:5: machines[3].sudo: user 'debian' is not root: set "
              "`sudo: true` (kubelite needs root on every machine)",
              "inventory.yaml:6: machines[4].sudo: must be true or false",
              "inventory.yaml:6: machines[4].user: must be a user name (lower case letters, "
              "digits, '_', '-' and '.', starting with a letter or '_')"]),
    ("python", FLEET8 + """\
          - {name: w1, address: 10.0.0.21, role: worker, python: "python3; rm -rf /"}
        """, ["inventory.yaml:5: machines[3].python: must be a command or path such as "
              "python3 or /usr/bin/python3.11"]),
    ("not YAML", FLEET + "  - {name: w1\n",
     ["inventory.yaml:6: not valid YAML: expected ',' or '}', but got '<stream end>'"]),
    ("a key twice in one mapping", """\
        machines:
          - name: cp1
            address: 10.0.0.11
            role: control-plane
            address: 10.0.0.99
          - {name: cp2, address: 10.0.0.12, role: control-plane}
          - {name: cp3, address: 10.0.0.13, role: control-plane}
        """, ["inventory.yaml:5: machines[0].address: appears twice in its mapping"]),
    ("the lab's subnet", """\
        machines:
          - {name: cp1, address: 10.250.0.11, role: control-plane}
          - {name: cp2, address: 10.250.0.12, role: control-plane}
          - {name: cp3, address: 10.251.0.13, role: control-plane}
        lab:
          netns: lab/ctl
          subnet: 10.250.0.0/24
          known_host: /tmp/kh
        """, ["inventory.yaml:4: machines[2].address: 10.251.0.13 is outside 10.250.0.0/24, "
              "the subnet the machines are dialled in",
              "inventory.yaml:6: lab.netns: must be a network namespace name",
              "inventory.yaml:8: lab.known_host: unknown field (did you mean 'known_hosts'?)"]),
    ("both access sections", FLEET + "access: {netns: a}\nlab: {netns: b}\n",
     ["inventory.yaml:6: lab: give `access:` or `lab:`, not both"]),
]


@pytest.mark.parametrize(("text", "expected"), [(t, e) for _, t, e in BAD],
                         ids=[name for name, _, _ in BAD])
def test_each_problem_names_its_line_and_field(text: str, expected: list[str]) -> None:
    assert problems(text, check_keys=False) == expected


def test_every_problem_is_reported_at_once_in_line_order() -> None:
    text = """\
        machines:
          - {name: cp1, address: 10.0.0.11, role: control-plane, port: 0}
          - {name: cp2, address: 10.0.0.12, role: control-plane}
          - {name: CP3, address: 10.0.0.13, role: control-plane}
          - {name: w1, address: 10.0.0.21, role: worker, labels: {a: [1]}}
        cluster:
          service_cidr: nonsense
          ports: {agent: 6443}
        """
    got = problems(text, check_keys=False)
    assert [p.split(": ", 2)[:2] for p in got] == [
        ["inventory.yaml:2", "machines[0].port"],
        ["inventory.yaml:4", "machines[2].name"],
        ["inventory.yaml:5", "machines[3].labels[a]"],
        ["inventory.yaml:7", "cluster.service_cidr"],
        ["inventory.yaml:8", "cluster.ports.agent"],
    ]


def test_five_control_planes_and_a_single_one_for_development() -> None:
    five = "machines:\n" + "".join(
        f"  - {{name: cp{i}, address: 10.0.0.1{i}, role: control-plane}}\n" for i in range(1, 6))
    assert [m.name for m in load_inventory(five).control_planes] == [
        "cp1", "cp2", "cp3", "cp4", "cp5"]
    four = five.rsplit("  - ", 1)[0]
    assert problems(four)[0].startswith("inventory.yaml:1: machines: 4 control planes")
    single = "machines:\n  - {name: cp1, address: 10.0.0.11, role: control-plane}\n"
    assert problems(single)[0].startswith("inventory.yaml:1: machines: 1 control planes")
    assert problems(single + "cluster: {allow_single_control_plane: true}\n") == []


def test_key_files_must_exist_unless_keys_come_from_elsewhere(tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    key.write_text("k")
    text = FLEET.replace("role: control-plane}", "role: control-plane, key: id_ed25519}", 1)
    text = text.replace("cp2, address: 10.0.0.12,", "cp2, address: 10.0.0.12, key: /nonexistent/key,")
    path = tmp_path / "hosts.yaml"
    path.write_text(text)
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    assert caught.value.problems == [f"{path}:3: machines[1].key: /nonexistent/key: no such file"]
    inv = load_inventory(path, check_keys=False)
    assert inv.machines[0].key == str(key)
    # Text: relative paths are taken from base_dir; the name in messages is chosen.
    with pytest.raises(InventoryError) as caught:
        load_inventory(text, base_dir=tmp_path / "elsewhere", name="fleet")
    assert [p.split(": ")[0:2] for p in caught.value.problems] == [
        ["fleet:2", "machines[0].key"], ["fleet:3", "machines[1].key"]]


def test_a_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="cannot read"):
        load_inventory(tmp_path / "absent.yaml")


def test_validate_reports_on_inventories_built_in_code() -> None:
    inv = Inventory([Machine("cp1", "10.0.0.11", role="control-plane", port=99999),
                     Machine("cp1", "10.0.0.12", role="control-plane"),
                     Machine("cp3", "10.0.0.13", role="control-plane")],
                    ClusterSettings(ports=Ports(agent=2380)))
    assert inventory.validate(inv) == [
        ("machines[0].port", "must be an integer 1-65535"),
        ("machines[1].name", "'cp1' is also machines[0]'s name"),
        ("cluster.ports.agent", "2380 is also cluster.ports.store_peer"),
    ]
    with pytest.raises(InventoryError) as caught:
        inventory.raise_if_invalid(inv, source="Vagrantfile")
    assert caught.value.problems[0] == "Vagrantfile: machines[0].port: must be an integer 1-65535"


# --- writing -------------------------------------------------------------------------

def test_dump_writes_every_section_and_reads_back(tmp_path: Path) -> None:
    inv = Inventory(
        [Machine("cp1", "10.0.0.11", role="control-plane", labels={"a": "true"}),
         Machine("cp2", "10.0.0.12", role="control-plane", sudo=True, user="admin"),
         Machine("cp3", "10.0.0.13", port=2200, role="control-plane",
                 taints=[{"key": "k", "effect": "NoExecute"}]),
         Machine("w1", "node-1.example.net", role="worker", python="/opt/py/bin/python3")],
        ClusterSettings(name="c1", ports=Ports(load_balancer=8443), load_balancer="10.0.0.100"),
        Access(netns="lab-ctl", known_hosts=str(tmp_path / "kh")))
    text = dump_inventory(inv)
    assert "  labels:\n    a: 'true'\n" in text          # stays a string
    assert "access:\n  netns: lab-ctl\n" in text
    assert load_inventory(text) == inv


_labels = st.dictionaries(st.sampled_from(["zone", "disk", "example.com/tier"]),
                          st.sampled_from(["a", "ssd", "", "true", "1", "x.y_z"]), max_size=3)
_taints = st.lists(st.fixed_dictionaries(
    {"key": st.sampled_from(["dedicated", "example.com/gpu"]),
     "effect": st.sampled_from(["NoSchedule", "PreferNoSchedule", "NoExecute"])},
    optional={"value": st.sampled_from(["db", "", "yes"])}),
    max_size=2, unique_by=lambda t: (t["key"], t["effect"]))


@st.composite
def inventories(draw: st.DrawFn) -> Inventory:
    control_planes = draw(st.sampled_from([3, 5]))
    workers = draw(st.integers(0, 4))
    roles = ["control-plane"] * control_planes + ["worker"] * workers
    machines = []
    for i, role in enumerate(roles):
        user = draw(st.sampled_from(["root", "debian"]))
        machines.append(Machine(
            name=f"m{i}", address=draw(st.sampled_from([f"192.168.7.{i + 1}", f"m{i}.example.net"])),
            port=draw(st.integers(1, 65535)), user=user,
            role=role, sudo=user != "root" or draw(st.booleans()),
            labels=draw(_labels), taints=draw(_taints),
            python=draw(st.sampled_from(["python3", "/usr/bin/python3.11"]))))
    cluster = ClusterSettings(
        name=draw(st.sampled_from(["kubelite", "prod-2"])),
        node_cidr_mask_size=draw(st.integers(20, 30)),
        load_balancer=draw(st.sampled_from(["control-planes", "10.1.2.3", "lb.example.net"])),
        kubernetes_version=draw(st.sampled_from(["v1.32", "v1.31.4"])),
        allow_single_control_plane=draw(st.booleans()))
    access = draw(st.sampled_from([Access(), Access(netns="lab-ctl", known_hosts="/tmp/kh")]))
    return Inventory(machines, cluster, access)


@settings(max_examples=60, deadline=None)
@given(inventories())
def test_dump_and_load_round_trip(inv: Inventory) -> None:
    assert inventory.validate(inv) == []
    assert load_inventory(dump_inventory(inv)) == inv


_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.text(max_size=12),
                     st.sampled_from(["10.0.0.1", "control-plane", "worker", "cp1"]))
_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.sampled_from(["name", "address", "port", "role", "labels", "taints",
                                     "key", "effect", "ports", "netns", "x"]), inner,
                    max_size=4)), max_leaves=12)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(["machines", "cluster", "lab", "access", "extra"]),
                       _values, max_size=4))
def test_any_yaml_gives_an_inventory_or_a_located_error(data: dict) -> None:
    try:
        load_inventory(yaml.safe_dump(data), check_keys=False)
    except InventoryError as exc:
        assert exc.problems
        assert all(p.startswith("inventory.yaml:") and p.split(":")[1].isdigit()
                   for p in exc.problems)
