"""Effective pod requests (init containers, sidecars, overhead), non-zero defaults, host ports."""

from __future__ import annotations

from controllers.scheduling import resources
from controllers.scheduling.resources import HostPort
from tests.unit.scheduling_objects import container, pod

MI = 1024 * 1024


def test_containers_add_up() -> None:
    p = pod("p", containers=[container("a", cpu="200m", memory="64Mi"), container("b", cpu="0.3", memory="1Gi")])
    assert resources.pod_requests(p) == {"cpu": 500, "memory": 64 * MI + 1024 * MI}


def test_an_init_container_bigger_than_the_containers_sets_the_request() -> None:
    # Kubernetes' own example: init 2 cpu/1G and 2 cpu/3G, containers 2+1 cpu, 1G+1G.
    p = pod("p", containers=[container("c1", cpu="2", memory="1G"), container("c2", cpu="1", memory="1G")],
            init=[container("i1", cpu="2", memory="1G"), container("i2", cpu="2", memory="3G")])
    assert resources.pod_requests(p) == {"cpu": 3000, "memory": 3 * 10**9}
    big_init = pod("p", cpu="100m", init=[container("i", cpu="4")])
    assert resources.pod_requests(big_init) == {"cpu": 4000}


def test_sidecars_run_beside_the_containers_and_later_init_containers() -> None:
    p = pod("p", containers=[container("app", cpu="500m")], init=[
        container("before", cpu="1"),
        container("sidecar", cpu="100m", restartPolicy="Always"),
        container("after", cpu="1"),
    ])
    # max(500m + 100m, 1, 1 + 100m)
    assert resources.pod_requests(p) == {"cpu": 1100}


def test_overhead_is_added_last_and_extended_resources_count() -> None:
    p = pod("p", containers=[container(cpu="1", requests={"nvidia.com/gpu": "2", "ephemeral-storage": "1Gi"})],
            overhead={"cpu": "250m", "memory": "120Mi"})
    assert resources.pod_requests(p) == {"cpu": 1250, "memory": 120 * MI, "nvidia.com/gpu": 2, "ephemeral-storage": 1024 * MI}


def test_missing_requests_count_zero_for_fit_and_defaults_for_scoring() -> None:
    p = pod("p", containers=[container("a"), container("b", cpu="0", memory="1Mi")])
    assert resources.pod_requests(p) == {"cpu": 0, "memory": MI}
    # a: 100m + 200Mi by default; b asked for 0 cpu explicitly, which stays 0.
    assert resources.nonzero_requests(p) == (100, 200 * MI + MI)
    assert resources.nonzero_requests(pod("q", containers=[])) == (0, 0)


def test_quantities_round_up_and_bad_ones_count_zero() -> None:
    p = pod("p", containers=[container(cpu="0.0001", memory="1.5")])
    assert resources.pod_requests(p) == {"cpu": 1, "memory": 2}
    assert resources.pod_requests(pod("q", containers=[container(cpu="lots")])) == {"cpu": 0}
    assert resources.resource_list({"cpu": 2, "memory": 1.5}) == {"cpu": 2000, "memory": 2}


def test_host_ports_default_to_tcp_on_every_address() -> None:
    p = pod("p", containers=[container(ports=[
        {"containerPort": 80, "hostPort": 8080},
        {"containerPort": 53, "hostPort": 53, "protocol": "UDP", "hostIP": "10.0.0.1"},
        {"containerPort": 9090},
    ])])
    assert resources.host_ports(p) == (HostPort("0.0.0.0", "TCP", 8080), HostPort("10.0.0.1", "UDP", 53))


def test_scalar_names() -> None:
    assert resources.is_scalar("nvidia.com/gpu") and resources.is_scalar("hugepages-2Mi")
    assert not resources.is_scalar("cpu") and not resources.is_scalar("pods")
