"""Pod status as the kubelet reports it: container states, phases, conditions, QoS."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents import pod_status as ps
from agents.pod_status import ContainerView

T0 = 1_700_000_000.0          # 2023-11-14T22:13:20Z
T0_TEXT = "2023-11-14T22:13:20Z"


@dataclass
class Instance:
    """One container instance, shaped like agents.runtime.ContainerStatus."""

    id: str
    name: str
    attempt: int
    state: str
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    reason: str | None = None
    message: str | None = None
    image: str = ""
    pod_uid: str = "uid-1"
    pid: int | None = None


def running(name: str, attempt: int = 0, at: float = T0) -> Instance:
    return Instance(f"{name}-{attempt}", name, attempt, "running", started_at=at, pid=4242)


def exited(name: str, code: int = 0, attempt: int = 0, at: float = T0, ran: float = 5,
           reason: str | None = None) -> Instance:
    return Instance(f"{name}-{attempt}", name, attempt, "exited", started_at=at,
                    finished_at=at + ran, exit_code=code, reason=reason)


def view(name: str, current: Instance | None = None, previous: Instance | None = None,
         **fields: Any) -> ContainerView:
    return ContainerView(name=name, image=f"{name}:1", current=current, previous=previous,
                         restart_count=current.attempt if current else 0, **fields)


def pod(*names: str, policy: str = "Always", inits: tuple[str, ...] = (),
        sidecars: tuple[str, ...] = (), **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"containers": [{"name": n, "image": f"{n}:1"} for n in names],
                            "restartPolicy": policy, **spec}
    init = [{"name": n, "image": f"{n}:1", "restartPolicy": "Always"} for n in sidecars]
    init += [{"name": n, "image": f"{n}:1"} for n in inits]
    if init:
        body["initContainers"] = init
    return {"metadata": {"name": "web-abc", "namespace": "default", "uid": "uid-1"},
            "spec": body, "status": {"phase": "Pending",
                                     "conditions": [{"type": "PodScheduled", "status": "True"}]}}


def status(p: dict[str, Any], views=(), inits=(), *, now: float = T0, previous=None,
           **kw: Any) -> dict[str, Any]:
    kw.setdefault("pod_ip", "10.244.1.7")
    kw.setdefault("host_ip", "192.168.56.11")
    kw.setdefault("start_time", T0)
    return ps.pod_status(p, list(inits), list(views), previous_status=previous, now=now, **kw)


def cond(s: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in s["conditions"] if c["type"] == kind)


# --- container statuses -------------------------------------------------------------

def test_a_running_container():
    entry = ps.container_status(view("web", running("web"), ready=True))
    assert entry == {
        "name": "web", "state": {"running": {"startedAt": T0_TEXT}}, "lastState": {},
        "ready": True, "restartCount": 0, "image": "web:1", "imageID": "web:1",
        "containerID": "process://web-0", "started": True}


def test_nothing_ran_yet_waits_creating():
    entry = ps.container_status(view("web"))
    assert entry["state"] == {"waiting": {"reason": "ContainerCreating"}}
    assert entry["ready"] is False and entry["started"] is False
    assert "containerID" not in entry and entry["imageID"] == ""


def test_crash_loop_back_off_waits_with_the_last_exit_as_last_state():
    message = "back-off 20s restarting failed container=web pod=web-abc_default(uid-1)"
    entry = ps.container_status(view(
        "web", exited("web", 1, attempt=3), exited("web", 1, attempt=2),
        waiting_reason="CrashLoopBackOff", waiting_message=message))
    assert entry["state"] == {"waiting": {"reason": "CrashLoopBackOff", "message": message}}
    assert entry["lastState"]["terminated"]["containerID"] == "process://web-3"
    assert entry["lastState"]["terminated"]["reason"] == "Error"
    assert entry["restartCount"] == 3 and entry["containerID"] == "process://web-3"
    assert entry["ready"] is False


def test_after_a_restart_last_state_is_the_previous_instance():
    entry = ps.container_status(view("web", running("web", 1, T0 + 60),
                                     exited("web", 2, attempt=0, ran=30), ready=True))
    assert entry["state"] == {"running": {"startedAt": "2023-11-14T22:14:20Z"}}
    assert entry["lastState"] == {"terminated": {
        "exitCode": 2, "reason": "Error", "startedAt": T0_TEXT,
        "finishedAt": "2023-11-14T22:13:50Z", "containerID": "process://web-0"}}
    assert entry["restartCount"] == 1


def test_oom_killed_keeps_its_reason_and_code():
    killed = exited("web", 137, reason="OOMKilled")
    killed.message = "memory limit 64Mi reached"
    term = ps.container_status(view("web", killed))["state"]["terminated"]
    assert (term["exitCode"], term["reason"], term["message"]) == \
        (137, "OOMKilled", "memory limit 64Mi reached")


def test_started_and_ready_need_a_running_container_that_passed_startup():
    assert ps.container_status(view("web", running("web"), ready=True, started=False))[
        "ready"] is False
    gone = ps.container_status(view("web", exited("web", 0), ready=True, started=True))
    assert gone["ready"] is False and gone["started"] is False


def test_a_container_the_runtime_lost_while_running_shows_terminated_unknown():
    lost = Instance("web-0", "web", 0, "unknown")
    old = {"name": "web", "state": {"running": {"startedAt": T0_TEXT}}, "restartCount": 4}
    entry = ps.container_status(view("web", lost), old=old)
    assert entry["state"]["terminated"]["reason"] == "ContainerStatusUnknown"
    assert entry["state"]["terminated"]["exitCode"] == 137
    assert entry["restartCount"] == 5
    assert ps.container_status(view("web", lost))["state"] == {"waiting": {}}


def test_volume_mounts_are_reported_from_the_spec():
    p = pod("web")
    p["spec"]["containers"][0]["volumeMounts"] = [
        {"name": "data", "mountPath": "/data"},
        {"name": "token", "mountPath": "/var/run/secrets", "readOnly": True}]
    entry = status(p, [view("web", running("web"))])["containerStatuses"][0]
    assert entry["volumeMounts"] == [
        {"name": "data", "mountPath": "/data"},
        {"name": "token", "mountPath": "/var/run/secrets", "readOnly": True,
         "recursiveReadOnly": "Disabled"}]


# --- phases -----------------------------------------------------------------------

@pytest.mark.parametrize(("policy", "codes", "phase"), [
    ("Always", [0], "Running"), ("Always", [1], "Running"), ("Always", [0, 1], "Running"),
    ("OnFailure", [0], "Succeeded"), ("OnFailure", [1], "Running"),
    ("OnFailure", [0, 1], "Running"),
    ("Never", [0], "Succeeded"), ("Never", [1], "Failed"), ("Never", [0, 1], "Failed"),
    ("Never", [0, 0], "Succeeded"),
])
def test_all_stopped_depends_on_the_restart_policy(policy, codes, phase):
    names = [f"c{i}" for i in range(len(codes))]
    views = [view(n, exited(n, code)) for n, code in zip(names, codes, strict=True)]
    assert ps.pod_phase(pod(*names, policy=policy)["spec"], [], views) == phase


@pytest.mark.parametrize("policy", ["Always", "OnFailure", "Never"])
def test_one_running_is_running_and_one_waiting_is_pending(policy):
    spec = pod("a", "b", policy=policy)["spec"]
    assert ps.pod_phase(spec, [], [view("a", running("a")), view("b", exited("b", 0))]) == "Running"
    assert ps.pod_phase(spec, [], [view("a", running("a")), view("b")]) == "Pending"
    assert ps.pod_phase(spec, [], []) == "Pending"


def test_crash_looping_counts_as_stopped_not_waiting():
    spec = pod("web", policy="Always")["spec"]
    looping = view("web", exited("web", 1, attempt=2), waiting_reason="CrashLoopBackOff")
    assert ps.pod_phase(spec, [], [looping]) == "Running"


def test_a_terminal_pod_settles_even_under_always():
    spec = pod("a", "b", policy="Always")["spec"]
    done = [view("a", exited("a", 0)), view("b", exited("b", 0))]
    assert ps.pod_phase(spec, [], done, terminal=True) == "Succeeded"
    done[1] = view("b", exited("b", 143))
    assert ps.pod_phase(spec, [], done, terminal=True) == "Failed"


# --- init containers ----------------------------------------------------------------

def test_init_containers_run_in_order():
    spec = pod("web", inits=("first", "second"))["spec"]
    assert ps.init_progress(spec, []) == (0, False)
    assert ps.init_progress(spec, [view("first", running("first"))]) == (None, False)
    done_first = [view("first", exited("first", 0))]
    assert ps.init_progress(spec, done_first) == (1, False)
    assert not ps.initialized(spec, done_first)
    both = done_first + [view("second", exited("second", 0))]
    assert ps.init_progress(spec, both) == (None, False)
    assert ps.initialized(spec, both)
    assert ps.pod_phase(spec, done_first, [view("web")]) == "Pending"


@pytest.mark.parametrize(("policy", "progress", "phase"), [
    ("Never", (None, True), "Failed"),
    ("OnFailure", (0, False), "Pending"),
    ("Always", (0, False), "Pending"),
])
def test_a_failed_init_container(policy, progress, phase):
    spec = pod("web", policy=policy, inits=("setup",))["spec"]
    failed = [view("setup", exited("setup", 3))]
    assert ps.init_progress(spec, failed) == progress
    assert ps.pod_phase(spec, failed, [view("web")]) == phase


def test_init_status_while_initializing():
    p = pod("web", inits=("setup", "migrate"))
    s = status(p, [view("web")], [view("setup", exited("setup", 0)),
                                  view("migrate", running("migrate"))])
    assert s["phase"] == "Pending"
    setup, migrate = s["initContainerStatuses"]
    assert setup["ready"] is True and setup["state"]["terminated"]["reason"] == "Completed"
    assert migrate["ready"] is False and "running" in migrate["state"]
    assert s["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert cond(s, "Initialized") == {
        "type": "Initialized", "status": "False", "lastProbeTime": None,
        "lastTransitionTime": T0_TEXT, "reason": "ContainersNotInitialized",
        "message": "containers with incomplete status: [migrate]"}


def test_initialized_pod_runs():
    p = pod("web", inits=("setup",))
    s = status(p, [view("web", running("web"), ready=True)], [view("setup", exited("setup", 0))])
    assert s["phase"] == "Running"
    assert cond(s, "Initialized")["status"] == "True"
    assert cond(s, "Ready")["status"] == "True"


def test_sidecars_start_before_and_run_beside_the_containers():
    spec = pod("web", sidecars=("proxy",), inits=("setup",))["spec"]
    assert ps.init_progress(spec, []) == (0, False)
    starting = [view("proxy", running("proxy"), started=False)]
    assert ps.init_progress(spec, starting) == (None, False)
    assert ps.pod_phase(spec, starting, [view("web")]) == "Pending"
    up = [view("proxy", running("proxy"), ready=True, started=True)]
    assert ps.init_progress(spec, up) == (1, False)
    initialized = up + [view("setup", exited("setup", 0))]
    assert ps.init_progress(spec, initialized) == (None, False)
    assert ps.initialized(spec, initialized)
    s = status(pod("web", sidecars=("proxy",), inits=("setup",)),
               [view("web", running("web"), ready=True)], initialized)
    assert s["phase"] == "Running" and cond(s, "Ready")["status"] == "True"
    # A sidecar that stopped is started again, and the pod stays Running.
    fell = [view("proxy", exited("proxy", 1), ready=True), view("setup", exited("setup", 0))]
    assert ps.init_progress(spec, fell) == (0, False)
    assert ps.pod_phase(spec, fell, [view("web", running("web"))]) == "Running"


# --- conditions -------------------------------------------------------------------

def test_conditions_in_the_kubelets_order_with_reasons():
    s = status(pod("web", "db"), [view("web", running("web"), ready=True),
                                  view("db", running("db"))])
    assert [c["type"] for c in s["conditions"]] == [
        "PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]
    assert cond(s, "ContainersReady") == {
        "type": "ContainersReady", "status": "False", "lastProbeTime": None,
        "lastTransitionTime": T0_TEXT, "reason": "ContainersNotReady",
        "message": "containers with unready status: [db]"}
    assert cond(s, "Ready")["reason"] == "ContainersNotReady"
    assert cond(s, "Initialized")["status"] == "True"
    assert cond(s, "PodReadyToStartContainers")["status"] == "True"


def test_transition_times_change_only_when_the_status_flips():
    p = pod("web")
    first = status(p, [view("web", running("web"))], now=T0)
    later = T0 + 3600
    second = status(p, [view("web", running("web"), ready=True)], now=later, previous=first)
    later_text = "2023-11-14T23:13:20Z"
    assert cond(second, "Ready")["lastTransitionTime"] == later_text
    assert cond(second, "ContainersReady")["lastTransitionTime"] == later_text
    for kind in ("PodReadyToStartContainers", "Initialized", "PodScheduled"):
        assert cond(second, kind)["lastTransitionTime"] == T0_TEXT
    third = status(p, [view("web", running("web"), ready=True)], now=later + 60,
                   previous=second)
    assert cond(third, "Ready")["lastTransitionTime"] == later_text


def test_conditions_the_kubelet_does_not_own_are_kept_and_gate_readiness():
    p = pod("web", readinessGates=[{"conditionType": "example.com/lb"}])
    views = [view("web", running("web"), ready=True)]
    s = status(p, views)
    assert cond(s, "Ready") == {
        "type": "Ready", "status": "False", "lastProbeTime": None, "lastTransitionTime": T0_TEXT,
        "reason": "ReadinessGatesNotReady",
        "message": 'corresponding condition of pod readiness gate "example.com/lb" does not exist.'}
    assert cond(s, "ContainersReady")["status"] == "True"
    p["status"]["conditions"].append({"type": "example.com/lb", "status": "True"})
    s = status(p, views, previous=s)
    assert s["conditions"][0] == {"type": "example.com/lb", "status": "True"}
    assert cond(s, "Ready")["status"] == "True"


def test_a_succeeded_pod_reports_completed():
    s = status(pod("job", policy="Never"), [view("job", exited("job", 0))])
    assert s["phase"] == "Succeeded"
    assert (cond(s, "ContainersReady")["status"], cond(s, "ContainersReady")["reason"]) == \
        ("False", "PodCompleted")
    assert cond(s, "Ready")["reason"] == "PodCompleted"
    assert (cond(s, "Initialized")["status"], cond(s, "Initialized")["reason"]) == \
        ("True", "PodCompleted")


def test_a_failed_pod_reports_failed():
    s = status(pod("job", policy="Never"), [view("job", exited("job", 2))])
    assert s["phase"] == "Failed" and cond(s, "Ready")["reason"] == "PodFailed"


# --- the whole status -------------------------------------------------------------

def test_the_whole_status_has_every_field_kubectl_shows():
    s = status(pod("web", resources={}), [view("web", running("web"), ready=True)])
    assert list(s) == ["phase", "conditions", "hostIP", "hostIPs", "podIP", "podIPs",
                       "startTime", "containerStatuses", "qosClass"]
    assert s["podIPs"] == [{"ip": "10.244.1.7"}] and s["hostIPs"] == [{"ip": "192.168.56.11"}]
    assert s["startTime"] == T0_TEXT and s["qosClass"] == "BestEffort"


def test_container_statuses_are_sorted_by_name_and_init_statuses_keep_spec_order():
    p = pod("zeta", "alpha", inits=("second", "first"))
    p["spec"]["initContainers"] = list(reversed(p["spec"]["initContainers"]))
    s = status(p)
    assert [c["name"] for c in s["containerStatuses"]] == ["alpha", "zeta"]
    assert [c["name"] for c in s["initContainerStatuses"]] == ["first", "second"]


def test_a_terminal_phase_never_changes_again():
    p = pod("web", policy="Never")
    done = status(p, [view("web", exited("web", 1))])
    assert done["phase"] == "Failed"
    again = status(p, [view("web", running("web", 1))], previous=done)
    assert again["phase"] == "Failed"
    p["status"] = {"phase": "Succeeded"}
    assert status(p, [view("web", running("web"))])["phase"] == "Succeeded"


def test_a_whole_pod_failure_carries_reason_and_message_until_the_phase_changes():
    p = pod("web")
    evicted = status(p, [view("web", running("web"))], reason="Evicted",
                     message="The node was low on resource: memory.")
    assert (evicted["phase"], evicted["reason"], evicted["message"]) == \
        ("Failed", "Evicted", "The node was low on resource: memory.")
    later = status(p, [view("web", exited("web", 137))], previous=evicted)
    assert (later["phase"], later["reason"]) == ("Failed", "Evicted")


def test_addresses_and_start_time_stay_once_known():
    p = pod("web")
    first = status(p, [view("web", running("web"))])
    later = status(p, [view("web", exited("web", 0))], pod_ip=None, start_time=None,
                   previous=first, sandbox_ready=False)
    assert later["podIP"] == "10.244.1.7" and later["startTime"] == T0_TEXT
    assert cond(later, "PodReadyToStartContainers")["status"] == "False"
    assert status(p, start_time="2020-01-01T00:00:00Z")["startTime"] == "2020-01-01T00:00:00Z"


def test_host_network_pods_use_the_host_ip():
    s = status(pod("web", hostNetwork=True), [view("web", running("web"))], pod_ip=None)
    assert s["podIP"] == "192.168.56.11"
    assert cond(s, "PodReadyToStartContainers")["status"] == "True"


def test_restart_decision():
    assert ps.restart_decision("Always", 0) and ps.restart_decision(None, 0)
    assert ps.restart_decision("OnFailure", 1) and not ps.restart_decision("OnFailure", 0)
    assert not ps.restart_decision("Never", 1)


# --- QoS --------------------------------------------------------------------------

def qos(*containers: dict[str, Any], inits: tuple[dict[str, Any], ...] = ()) -> str:
    spec: dict[str, Any] = {"containers": [{"name": f"c{i}", "resources": r}
                                           for i, r in enumerate(containers)]}
    if inits:
        spec["initContainers"] = [{"name": f"i{i}", "resources": r} for i, r in enumerate(inits)]
    return ps.qos_class({"spec": spec})


BOTH = {"cpu": "500m", "memory": "128Mi"}


@pytest.mark.parametrize(("containers", "expected"), [
    (({},), "BestEffort"),
    (({"requests": {"cpu": "0", "memory": "0"}},), "BestEffort"),
    (({"requests": {"ephemeral-storage": "1Gi"}},), "BestEffort"),
    (({"requests": {"cpu": "100m"}},), "Burstable"),
    (({"requests": BOTH, "limits": BOTH},), "Guaranteed"),
    (({"requests": {"cpu": "0.5", "memory": "134217728"}, "limits": BOTH},), "Guaranteed"),
    (({"requests": {"cpu": "250m", "memory": "128Mi"}, "limits": BOTH},), "Burstable"),
    (({"requests": {"cpu": "500m"}, "limits": {"cpu": "500m"}},), "Burstable"),
    (({"requests": BOTH, "limits": BOTH}, {}), "Burstable"),
    (({"requests": BOTH, "limits": BOTH}, {"requests": BOTH, "limits": BOTH}), "Guaranteed"),
])
def test_qos_class(containers, expected):
    assert qos(*containers) == expected


def test_qos_counts_init_containers():
    assert qos({"requests": BOTH, "limits": BOTH},
               inits=({"requests": {"cpu": "1"}},)) == "Burstable"
    assert qos({}, inits=({"requests": {"memory": "1Gi"}},)) == "Burstable"


# --- invariants over many pods ----------------------------------------------------

INSTANCE = st.one_of(
    st.none(),
    st.builds(lambda a: ("running", a), st.integers(0, 3)),
    st.builds(lambda c, a: ("exited", c, a), st.sampled_from([0, 1, 137]), st.integers(0, 3)))


def make_view(name: str, raw, ready: bool, backing_off: bool) -> ContainerView:
    if raw is None:
        return view(name)
    if raw[0] == "running":
        return view(name, running(name, raw[1]), ready=ready)
    return view(name, exited(name, raw[1], raw[2]),
                waiting_reason="CrashLoopBackOff" if backing_off else None)


@given(st.sampled_from(["Always", "OnFailure", "Never"]),
       st.lists(st.tuples(INSTANCE, st.booleans(), st.booleans()), min_size=1, max_size=4))
def test_phase_and_conditions_agree(policy, containers):
    names = [f"c{i}" for i in range(len(containers))]
    p = pod(*names, policy=policy)
    views = [make_view(n, raw, ready, off) for n, (raw, ready, off) in zip(names, containers,
                                                                         strict=True)]
    before = copy.deepcopy(p)
    s = status(p, views)
    assert p == before                                 # the input is never modified
    states = [c["state"] for c in s["containerStatuses"]]
    assert s["phase"] in ("Pending", "Running", "Succeeded", "Failed")
    if cond(s, "Ready")["status"] == "True":
        assert s["phase"] == "Running" and all("running" in st_ for st_ in states)
    if s["phase"] == "Succeeded":
        assert all(st_.get("terminated", {}).get("exitCode") == 0 for st_ in states)
        assert policy != "Always"
    if s["phase"] == "Failed":
        assert policy == "Never"
    if any("waiting" in st_ and "terminated" not in c["lastState"]
           for st_, c in zip(states, s["containerStatuses"], strict=True)):
        assert s["phase"] == "Pending"
