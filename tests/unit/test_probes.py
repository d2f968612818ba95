"""Probe specs (defaults, validation, named ports) and the probe state machine."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.probes import (
    INITIAL_RESULT,
    ContainerProbes,
    ProbeError,
    ProbeSpec,
    ProbeState,
    Result,
)

CONTAINER = {"name": "web", "image": "web:1",
             "ports": [{"name": "http", "containerPort": 8080}, {"containerPort": 9090}]}


# --- parsing ----------------------------------------------------------------------

def test_defaults_are_kubernetes_defaults():
    spec = ProbeSpec.parse({"httpGet": {"port": 8080}}, "readiness")
    assert (spec.initial_delay, spec.period, spec.timeout) == (0, 10, 1)
    assert (spec.success_threshold, spec.failure_threshold) == (1, 3)
    assert (spec.handler, spec.scheme, spec.path, spec.host, spec.port) == \
        ("httpGet", "HTTP", "/", "", 8080)


def test_zero_means_unset_and_takes_the_default():
    spec = ProbeSpec.parse({"tcpSocket": {"port": 1}, "periodSeconds": 0, "timeoutSeconds": 0,
                            "successThreshold": 0, "failureThreshold": 0}, "liveness")
    assert (spec.period, spec.timeout, spec.success_threshold, spec.failure_threshold) == \
        (10, 1, 1, 3)


def test_everything_given_is_kept():
    spec = ProbeSpec.parse({
        "httpGet": {"port": "http", "path": "/healthz?full=1", "scheme": "HTTPS", "host": "h",
                    "httpHeaders": [{"name": "X-Probe", "value": "1"}]},
        "initialDelaySeconds": 5, "periodSeconds": 2, "timeoutSeconds": 3,
        "successThreshold": 2, "failureThreshold": 4}, "readinessProbe", CONTAINER)
    assert spec.kind == "readiness" and spec.event_name == "Readiness"
    assert (spec.port, spec.path, spec.scheme, spec.host) == (8080, "/healthz?full=1", "HTTPS", "h")
    assert spec.headers == (("X-Probe", "1"),)
    assert (spec.initial_delay, spec.period, spec.timeout) == (5, 2, 3)
    assert (spec.success_threshold, spec.failure_threshold) == (2, 4)


def test_exec_probe_keeps_its_argv():
    spec = ProbeSpec.parse({"exec": {"command": ["cat", "/tmp/healthy"]}}, "startup")
    assert spec.handler == "exec" and spec.command == ("cat", "/tmp/healthy")


@pytest.mark.parametrize(("port", "ports", "expected"), [
    ("http", None, 8080),          # named, from the container
    ("9090", None, 9090),          # digits in a string
    ("admin", {"admin": 7000}, 7000),
])
def test_ports_resolve_by_name_or_number(port, ports, expected):
    spec = ProbeSpec.parse({"tcpSocket": {"port": port}}, "liveness", CONTAINER, ports=ports)
    assert spec.port == expected


@pytest.mark.parametrize(("probe", "kind", "message"), [
    ({}, "liveness", "livenessProbe: Required value: must specify a handler type"),
    ({"exec": {"command": ["true"]}, "tcpSocket": {"port": 1}}, "liveness",
     "livenessProbe: Forbidden: may not specify more than 1 handler type"),
    ({"grpc": {"port": 9000}}, "readiness",
     "readinessProbe.grpc: Unsupported value: grpc probes are not supported"),
    ({"httpGet": {"path": "/"}}, "readiness", "readinessProbe.httpGet.port: Required value"),
    ({"tcpSocket": {"port": "metrics"}}, "liveness",
     'livenessProbe.tcpSocket.port: Invalid value: "metrics": no port of that name'),
    ({"tcpSocket": {"port": 70000}}, "liveness",
     "livenessProbe.tcpSocket.port: Invalid value: 70000: must be between 1 and 65535"),
    ({"exec": {"command": []}}, "startup", "startupProbe.exec.command: Required value"),
    ({"exec": {"command": ["true"]}, "successThreshold": 2}, "liveness",
     "livenessProbe.successThreshold: Invalid value: 2: must be 1"),
    ({"exec": {"command": ["true"]}, "successThreshold": 3}, "startup",
     "startupProbe.successThreshold: Invalid value: 3: must be 1"),
    ({"exec": {"command": ["true"]}, "periodSeconds": -1}, "readiness",
     "readinessProbe.periodSeconds: Invalid value: -1: must be greater than or equal to 0"),
    ({"exec": {"command": ["true"]}, "timeoutSeconds": "1"}, "readiness",
     "readinessProbe.timeoutSeconds: Invalid value: '1': must be an integer"),
    ({"httpGet": {"port": 80, "scheme": "FTP"}}, "liveness",
     'livenessProbe.httpGet.scheme: Unsupported value: "FTP"'),
    ({"httpGet": {"port": 80, "httpHeaders": [{"value": "x"}]}}, "liveness",
     "livenessProbe.httpGet.httpHeaders[0].name: Required value"),
    ({"exec": {"command": ["true"]}, "terminationGracePeriodSeconds": 5}, "readiness",
     "readinessProbe.terminationGracePeriodSeconds: Invalid value: 5: must not be set"),
])
def test_unrunnable_probes_say_why(probe, kind, message):
    with pytest.raises(ProbeError) as caught:
        ProbeSpec.parse(probe, kind, CONTAINER)
    assert str(caught.value).startswith(message)


def test_readiness_may_ask_for_several_successes_and_kinds_are_checked():
    assert ProbeSpec.parse({"exec": {"command": ["true"]}, "successThreshold": 3},
                           "readiness").success_threshold == 3
    with pytest.raises(ProbeError, match="unknown probe kind"):
        ProbeSpec.parse({"exec": {"command": ["true"]}}, "sideways")


# --- the state machine ------------------------------------------------------------

def state(kind: str, **fields) -> ProbeState:
    probe = {"exec": {"command": ["true"]}, **fields}
    return ProbeState(ProbeSpec.parse(probe, kind), started_at=100.0)


def test_initial_results_are_the_kubelets():
    assert state("readiness").result is Result.FAILURE
    assert state("liveness").result is Result.SUCCESS
    assert state("startup").result is Result.UNKNOWN
    assert INITIAL_RESULT == {"readiness": Result.FAILURE, "liveness": Result.SUCCESS,
                              "startup": Result.UNKNOWN}


def test_nothing_runs_before_the_initial_delay_then_once_per_period():
    s = state("readiness", initialDelaySeconds=5, periodSeconds=3)
    assert not s.due(104.9)                  # 4.9 s: the kubelet counts whole seconds
    assert s.next_due() == 105.0
    assert s.due(105.0)
    s.record(True, 105.0)
    assert not s.due(107.9)
    assert s.due(108.0) and s.next_due() == 108.0


def test_no_container_no_probe():
    s = ProbeState(ProbeSpec.parse({"exec": {"command": ["true"]}}, "readiness"))
    assert not s.due(1e9) and s.next_due() is None


def test_thresholds_need_outcomes_in_a_row():
    s = state("readiness", successThreshold=2, failureThreshold=3)
    assert s.record(True, 1) is False and s.result is Result.FAILURE
    assert s.record(True, 2) is True and s.success
    assert s.record(False, 3) is False
    assert s.record(False, 4) is False
    assert s.record(True, 5) is False          # breaks the run of failures
    assert s.record(False, 6) is False
    assert s.record(False, 7) is False
    assert s.record(False, 8) is True and s.failed
    assert s.record(False, 9) is False         # already failed: no change to report


def test_liveness_failure_holds_probing_until_a_new_container():
    s = state("liveness", failureThreshold=2)
    s.record(False, 110)
    assert s.success and s.due(120)
    assert s.record(False, 120) is True and s.failed
    assert s.on_hold and not s.due(1000)
    s.reset(started_at=2000.0)
    assert s.success and not s.on_hold and s.due(2000.0)


def test_startup_stops_once_it_succeeded_and_holds_after_failing():
    s = state("startup", failureThreshold=1)
    assert s.due(100)
    s.record(True, 100)
    assert s.success and not s.due(500)
    t = state("startup", failureThreshold=1)
    assert t.record(False, 100) is True and t.on_hold


def test_readiness_keeps_probing_after_failing():
    s = state("readiness", failureThreshold=1, periodSeconds=1)
    s.record(True, 100)
    s.record(False, 101)
    assert s.failed and not s.on_hold and s.due(102)


def test_unknown_is_not_an_outcome():
    with pytest.raises(ValueError):
        state("readiness").record(Result.UNKNOWN, 1)


def test_liveness_and_readiness_wait_for_startup():
    container = {
        "name": "web",
        "startupProbe": {"exec": {"command": ["s"]}, "failureThreshold": 2},
        "livenessProbe": {"exec": {"command": ["l"]}},
        "readinessProbe": {"exec": {"command": ["r"]}},
    }
    probes = ContainerProbes(container, started_at=0.0)
    assert [s.spec.kind for s in probes.due(0.0)] == ["startup"]
    assert not probes.started and not probes.ready
    probes.record("startup", True, 0.0)
    assert probes.started and not probes.ready
    assert [s.spec.kind for s in probes.due(1.0)] == ["liveness", "readiness"]
    probes.record("readiness", True, 1.0)
    assert probes.ready and probes.kill_reason() is None
    for t in (11.0, 21.0, 31.0):
        probes.record("liveness", False, t)
    assert probes.kill_reason() == "Container web failed liveness probe, will be restarted"
    probes.reset(started_at=100.0)
    assert not probes.started and probes.kill_reason() is None
    assert [s.spec.kind for s in probes.due(100.0)] == ["startup"]


def test_a_container_without_probes_is_started_and_ready():
    probes = ContainerProbes({"name": "plain"}, started_at=0.0)
    assert probes.started and probes.ready and probes.due(0.0) == []


def test_startup_failure_is_a_kill_reason():
    probes = ContainerProbes({"name": "slow", "startupProbe": {
        "tcpSocket": {"port": 80}, "failureThreshold": 1}}, started_at=0.0)
    probes.record("startup", False, 0.0)
    assert probes.kill_reason() == "Container slow failed startup probe, will be restarted"


def model_result(kind: str, outcomes: list[bool], success_needed: int, failure_needed: int
                 ) -> Result:
    """The result after `outcomes`: that of the latest run which reached its threshold
    (for liveness and startup, probing stops at the first failure verdict)."""
    result, run, last = INITIAL_RESULT[kind], 0, None
    for ok in outcomes:
        run = run + 1 if ok == last else 1
        last = ok
        if run >= (success_needed if ok else failure_needed):
            result = Result.SUCCESS if ok else Result.FAILURE
            if kind != "readiness" and not ok:
                break
    return result


@given(st.sampled_from(["readiness", "liveness", "startup"]), st.lists(st.booleans(), max_size=30),
       st.integers(1, 4), st.integers(1, 4))
def test_results_follow_the_threshold_model(kind, outcomes, success_needed, failure_needed):
    if kind != "readiness":
        success_needed = 1
    s = state(kind, successThreshold=success_needed, failureThreshold=failure_needed)
    changes = 0
    previous = s.result
    for t, ok in enumerate(outcomes):
        if s.on_hold:
            break
        changed = s.record(ok, 100.0 + 10 * t)
        assert changed == (s.result is not previous)
        changes += changed
        previous = s.result
    assert s.result is model_result(kind, outcomes, success_needed, failure_needed)
