"""The nftables text for Services: what is balanced, rejected, masqueraded, and that nft
accepts it (checked with `nft -c` in a throwaway network namespace when running as root)."""

from __future__ import annotations

import random
import subprocess
from typing import Any

import pytest

from agents import service_rules
from agents.service_rules import Backend, render, service_ports
from tests.privileges import needs_nft


def svc(name: str, cluster_ip: str, ports: list[dict[str, Any]], type_: str = "ClusterIP",
        namespace: str = "default", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace},
            "spec": {"type": type_, "clusterIP": cluster_ip, "ports": ports, **spec}}


def eps(name: str, subsets: list[dict[str, Any]], namespace: str = "default") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace}, "subsets": subsets}


def subset(ips: list[str], ports: list[dict[str, Any]], not_ready: list[str] = ()) -> dict:
    out: dict[str, Any] = {"addresses": [{"ip": ip} for ip in ips], "ports": ports}
    if not_ready:
        out["notReadyAddresses"] = [{"ip": ip} for ip in not_ready]
    return out


WEB = svc("web", "10.96.0.10", [{"port": 80, "targetPort": 8080, "nodePort": 30080}],
          type_="NodePort")
WEB_EPS = eps("web", [subset(["10.244.2.2", "10.244.1.2"], [{"port": 8080}],
                             not_ready=["10.244.1.9"])])
DNS = svc("dns", "10.96.0.53", [{"name": "dns", "port": 53, "protocol": "UDP"},
                                {"name": "dns-tcp", "port": 53, "protocol": "TCP"}],
          namespace="kube-system")
DNS_EPS = eps("dns", [subset(["10.244.1.3"], [{"name": "dns", "port": 5353, "protocol": "UDP"},
                                              {"name": "dns-tcp", "port": 5353,
                                               "protocol": "TCP"}])],
              namespace="kube-system")
EMPTY = svc("empty", "10.96.0.20", [{"port": 80, "nodePort": 30081},
                                    {"name": "u", "port": 81, "protocol": "UDP"}],
            type_="NodePort")
HEADLESS = svc("headless", "None", [{"port": 80}])
EXTERNAL = svc("ext", "", [{"port": 80}], type_="ExternalName", externalName="example.org")
ALL_SERVICES = [WEB, DNS, EMPTY, HEADLESS, EXTERNAL]
ALL_ENDPOINTS = [WEB_EPS, DNS_EPS, eps("headless", [subset(["10.244.1.4"], [{"port": 80}])])]


def rules_of(text: str, chain: str) -> list[str]:
    """The rule lines of one chain in rendered text."""
    lines = text.splitlines()
    start = lines.index(f"\tchain {chain} {{")
    end = lines.index("\t}", start)
    return [line.strip() for line in lines[start + 1:end]]


def test_table_is_replaced_as_a_whole() -> None:
    text = render(ALL_SERVICES, ALL_ENDPOINTS, table="kltest")
    assert text.splitlines()[:3] == ["add table ip kltest", "delete table ip kltest",
                                     "table ip kltest {"]
    assert text.endswith("}\n")


def test_cluster_ip_balances_randomly_over_ready_endpoints_only() -> None:
    text = render(ALL_SERVICES, ALL_ENDPOINTS)
    assert ("10.96.0.10 . tcp . 80 : jump svc-default/web/tcp/80" in rules_of(text, "services")[0])
    assert rules_of(text, "svc-default/web/tcp/80") == [
        "numgen random mod 2 vmap { "
        "0 : jump ep-default/web/tcp/80__10.244.1.2/8080, "
        "1 : jump ep-default/web/tcp/80__10.244.2.2/8080 }"]
    assert rules_of(text, "ep-default/web/tcp/80__10.244.2.2/8080") == [
        "meta l4proto tcp dnat to 10.244.2.2:8080"]
    assert "10.244.1.9" not in text  # not ready


def test_named_ports_map_to_their_own_target_ports_and_protocols() -> None:
    text = render([DNS], [DNS_EPS])
    services = rules_of(text, "services")[0]
    assert "10.96.0.53 . udp . 53 : jump svc-kube-system/dns/udp/53" in services
    assert "10.96.0.53 . tcp . 53 : jump svc-kube-system/dns/tcp/53" in services
    # One backend: a plain jump, no numgen.
    assert rules_of(text, "svc-kube-system/dns/udp/53") == [
        "jump ep-kube-system/dns/udp/53__10.244.1.3/5353"]
    assert rules_of(text, "ep-kube-system/dns/udp/53__10.244.1.3/5353") == [
        "meta l4proto udp dnat to 10.244.1.3:5353"]


def test_node_ports_reach_the_same_backends_and_are_masqueraded() -> None:
    text = render(ALL_SERVICES, ALL_ENDPOINTS)
    assert rules_of(text, "services")[-1] == \
        "fib daddr type local ip daddr != 127.0.0.0/8 jump nodeports"
    assert rules_of(text, "nodeports") == [
        "meta l4proto . th dport vmap { tcp . 30080 : jump ext-default/web/tcp/80 }"]
    assert rules_of(text, "ext-default/web/tcp/80") == [
        "meta mark set meta mark | 0x4000", "jump svc-default/web/tcp/80"]
    assert "meta mark & 0x4000 == 0x4000 masquerade" in rules_of(text, "nat-postrouting")


def test_both_nat_hooks_lead_to_the_services() -> None:
    text = render(ALL_SERVICES, ALL_ENDPOINTS)
    assert rules_of(text, "nat-prerouting") == [
        "type nat hook prerouting priority dstnat; policy accept;", "jump services"]
    assert rules_of(text, "nat-output") == [
        "type nat hook output priority -100; policy accept;", "jump services"]


def test_hairpin_masquerade_within_the_local_pod_cidr() -> None:
    with_cidr = render([WEB], [WEB_EPS], pod_cidr="10.244.1.0/24")
    assert "ct status dnat ip saddr 10.244.1.0/24 ip daddr 10.244.1.0/24 masquerade" \
        in rules_of(with_cidr, "nat-postrouting")
    without = render([WEB], [WEB_EPS])
    assert "ct status dnat" not in without
    on_bridge = render([WEB], [WEB_EPS], pod_cidr="10.244.1.0/24", bridge="kl0")
    assert 'oifname "kl0" ct status dnat ip saddr 10.244.1.0/24 ip daddr 10.244.1.0/24 ' \
        'masquerade' in rules_of(on_bridge, "nat-postrouting")


def test_services_without_ready_endpoints_are_rejected() -> None:
    text = render(ALL_SERVICES, ALL_ENDPOINTS)
    assert rules_of(text, "no-endpoints") == [
        "ip daddr 10.96.0.20 tcp dport 80 reject with tcp reset",
        "fib daddr type local ip daddr != 127.0.0.0/8 tcp dport 30081 reject with tcp reset",
        "ip daddr 10.96.0.20 udp dport 81 reject",
    ]
    assert "svc-default/empty" not in text
    for hook in ("input", "forward", "output"):
        assert "ct state new jump no-endpoints" in rules_of(text, f"filter-{hook}")


def test_headless_and_external_name_services_get_no_rules() -> None:
    text = render(ALL_SERVICES, ALL_ENDPOINTS)
    assert "headless" not in text and "/ext/" not in text
    assert "10.244.1.4" not in text


def test_endpoint_ports_must_match_name_and_protocol() -> None:
    service = svc("m", "10.96.0.30", [{"name": "http", "port": 80}])
    wrong = eps("m", [subset(["10.244.1.5"], [{"name": "other", "port": 8080}]),
                      subset(["10.244.1.6"], [{"name": "http", "port": 8080,
                                               "protocol": "UDP"}])])
    (port,) = service_ports([service], [wrong])
    assert port.backends == ()
    right = eps("m", [subset(["10.244.1.7"], [{"name": "http", "port": 8080}])])
    (port,) = service_ports([service], [right])
    assert port.backends == (Backend("10.244.1.7", 8080),)


def test_output_is_deterministic_whatever_the_input_order() -> None:
    expected = render(ALL_SERVICES, ALL_ENDPOINTS, pod_cidr="10.244.1.0/24")
    rng = random.Random(7)
    for _ in range(20):
        services = [dict(s) for s in ALL_SERVICES]
        endpoints = []
        for e in ALL_ENDPOINTS:
            shuffled = []
            for sub in e["subsets"]:
                addresses = list(sub["addresses"])
                rng.shuffle(addresses)
                shuffled.append({**sub, "addresses": addresses})
            endpoints.append({**e, "subsets": shuffled})
        rng.shuffle(services)
        rng.shuffle(endpoints)
        assert render(services, endpoints, pod_cidr="10.244.1.0/24") == expected


def test_an_empty_cluster_still_renders_a_loadable_table() -> None:
    text = render([], [])
    assert rules_of(text, "services") == [
        "fib daddr type local ip daddr != 127.0.0.0/8 jump nodeports"]
    assert rules_of(text, "nodeports") == []
    assert rules_of(text, "no-endpoints") == []


def test_clashing_cluster_ips_keep_one_entry() -> None:
    a = svc("a", "10.96.0.40", [{"port": 80}])
    b = svc("b", "10.96.0.40", [{"port": 80}])
    endpoints = [eps(n, [subset(["10.244.1.8"], [{"port": 80}])]) for n in ("a", "b")]
    services_line = rules_of(render([b, a], endpoints), "services")[0]
    assert services_line.count("10.96.0.40 . tcp . 80") == 1
    assert "jump svc-default/a/tcp/80" in services_line


def _nft_check(text: str) -> subprocess.CompletedProcess[str]:
    # A fresh network namespace that dies with the process: the check touches nothing.
    return subprocess.run(["unshare", "--net", "nft", "-c", "-f", "-"], input=text,
                          capture_output=True, text=True, timeout=60, check=False)




@needs_nft
@pytest.mark.parametrize(("pod_cidr", "bridge"), [(None, None), ("10.244.1.0/24", None),
                                                  ("10.244.1.0/24", "kl0")])
def test_nft_accepts_the_rendered_text(pod_cidr: str | None, bridge: str | None) -> None:
    many = [svc(f"s{i}", f"10.96.1.{i}", [{"port": 80, "nodePort": 30100 + i},
                                          {"name": "u", "port": 53, "protocol": "UDP"},
                                          {"name": "s", "port": 9, "protocol": "SCTP"}],
                type_="LoadBalancer") for i in range(1, 6)]
    many_eps = [eps(f"s{i}", [subset([f"10.244.{i}.{j}" for j in range(2, 2 + i)],
                                     [{"port": 8080}, {"name": "u", "port": 5353,
                                                       "protocol": "UDP"},
                                      {"name": "s", "port": 9, "protocol": "SCTP"}])])
                for i in range(1, 6) if i != 3]
    for text in (render(ALL_SERVICES + many, ALL_ENDPOINTS + many_eps, pod_cidr=pod_cidr,
                        bridge=bridge),
                 render([], [], pod_cidr=pod_cidr, bridge=bridge)):
        done = _nft_check(text)
        assert done.returncode == 0, done.stderr


@needs_nft
def test_nft_rejects_a_broken_text_so_the_check_means_something() -> None:
    broken = render([WEB], [WEB_EPS]).replace("dnat to", "dnat too")
    assert _nft_check(broken).returncode != 0


def test_default_table_name() -> None:
    assert render([], []).startswith(f"add table ip {service_rules.DEFAULT_TABLE}\n")
