"""Job reconcile: parallelism, completions, back-off, deadlines, the final conditions."""

from __future__ import annotations

from datetime import timedelta

from controllers import actions, job, meta
from tests.unit.controller_world import T0, World, make_pod, suffixes

UID = "uid-pi"
SELECTOR = {"batch.kubernetes.io/controller-uid": UID}


def _job(completions: int | None = 5, parallelism: int = 2, backoff: int = 6,
         restart: str = "Never", deadline: int | None = None) -> dict:
    labels = {"batch.kubernetes.io/controller-uid": UID, "controller-uid": UID,
              "batch.kubernetes.io/job-name": "pi", "job-name": "pi"}
    spec: dict = {"parallelism": parallelism, "backoffLimit": backoff,
                  "selector": {"matchLabels": dict(SELECTOR)},
                  "template": {"metadata": {"labels": labels},
                               "spec": {"restartPolicy": restart,
                                        "containers": [{"name": "pi", "image": "perl"}]}}}
    if completions is not None:
        spec["completions"] = completions
    if deadline is not None:
        spec["activeDeadlineSeconds"] = deadline
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "pi", "namespace": "ns", "uid": UID, "resourceVersion": "1",
                         "generation": 1},
            "spec": spec, "status": {}}


def _pod(name: str, j: dict, phase: str = "Running", finished: timedelta | None = None,
         restarts: int = 0) -> dict:
    pod = make_pod(name, dict(SELECTOR), owner=j, owner_kind="Job", node="n1", phase=phase,
                   restarts=restarts)
    if finished is not None:
        pod["status"]["containerStatuses"] = [{"name": "pi", "restartCount": restarts, "state": {
            "terminated": {"exitCode": 0 if phase == "Succeeded" else 1,
                           "finishedAt": meta.format_time(T0 + finished)}}}]
    return pod


def _of(kind: type, todo: list[actions.Action]) -> list:
    return [a for a in todo if isinstance(a, kind)]


def test_starts_parallelism_pods_labelled_for_the_job() -> None:
    j = _job()
    todo, status = job.reconcile(j, [], T0, suffixes())
    creates = _of(actions.Create, todo)
    assert len(creates) == 2
    labels = creates[0].obj["metadata"]["labels"]
    assert labels["job-name"] == labels["batch.kubernetes.io/job-name"] == "pi"
    assert labels["controller-uid"] == labels["batch.kubernetes.io/controller-uid"] == UID
    assert creates[0].obj["metadata"]["ownerReferences"][0]["kind"] == "Job"
    assert creates[0].obj["metadata"]["name"] == "pi-p1"
    assert status == {"startTime": "2026-01-01T12:00:00Z", "active": 2, "ready": 0}


def test_never_more_active_than_remaining_completions() -> None:
    j = _job(completions=5, parallelism=4)
    pods = [_pod(f"s{i}", j, "Succeeded", finished=timedelta(0)) for i in range(3)]
    todo, status = job.reconcile(j, pods, T0, suffixes())
    assert len(_of(actions.Create, todo)) == 2
    assert (status["succeeded"], status["active"]) == (3, 2)


def test_extra_active_pods_are_deleted() -> None:
    j = _job(completions=None, parallelism=1)
    pods = [_pod("a", j), _pod("b", j, phase="Pending")]
    todo, status = job.reconcile(j, pods, T0, suffixes())
    assert [d.name for d in _of(actions.Delete, todo)] == ["b"]
    assert status["active"] == 1


def test_completes_with_condition_and_completion_time() -> None:
    j = _job(completions=2)
    pods = [_pod(f"s{i}", j, "Succeeded", finished=timedelta(0)) for i in range(2)]
    j["status"] = {"startTime": meta.format_time(T0)}
    todo, status = job.reconcile(j, pods, T0 + timedelta(seconds=9), suffixes())
    assert status["conditions"] == [{
        "type": "Complete", "status": "True", "lastProbeTime": "2026-01-01T12:00:09Z",
        "lastTransitionTime": "2026-01-01T12:00:09Z", "reason": "CompletionsReached",
        "message": "Reached expected number of succeeded pods"}]
    assert status["completionTime"] == "2026-01-01T12:00:09Z"
    assert status["succeeded"] == 2 and "active" not in status
    assert [e.event["reason"] for e in _of(actions.Emit, todo)] == ["Completed"]
    finished = dict(j, status=status)
    assert job.reconcile(finished, pods, T0 + timedelta(hours=1), suffixes()) == ([], status)


def test_without_completions_one_success_ends_it_once_others_finish() -> None:
    j = _job(completions=None, parallelism=3)
    pods = [_pod("s", j, "Succeeded", finished=timedelta(0)), _pod("r", j)]
    todo, status = job.reconcile(j, pods, T0, suffixes())
    assert not _of(actions.Create, todo) and "conditions" not in status
    pods[1]["status"]["phase"] = "Succeeded"
    _, status = job.reconcile(j, pods, T0, suffixes())
    assert status["conditions"][0]["type"] == "Complete"


def test_backoff_limit_fails_the_job_and_kills_active_pods() -> None:
    j = _job(backoff=2)
    pods = [_pod(f"f{i}", j, "Failed", finished=timedelta(seconds=i)) for i in range(3)]
    pods.append(_pod("running", j))
    todo, status = job.reconcile(j, pods, T0 + timedelta(minutes=5), suffixes())
    cond = status["conditions"][0]
    assert (cond["type"], cond["status"], cond["reason"]) == ("Failed", "True",
                                                             "BackoffLimitExceeded")
    assert cond["message"] == "Job has reached the specified backoff limit"
    assert [d.name for d in _of(actions.Delete, todo)] == ["running"]
    assert not _of(actions.Create, todo)
    assert (status["failed"], "active" in status) == (3, False)
    assert [e.event["type"] for e in _of(actions.Emit, todo)][-1] == "Warning"


def test_failures_within_the_limit_are_retried_after_a_back_off() -> None:
    j = _job(completions=1, parallelism=1, backoff=6)
    pods = [_pod("f1", j, "Failed", finished=timedelta(0)),
            _pod("f2", j, "Failed", finished=timedelta(seconds=1))]
    todo, status = job.reconcile(j, pods, T0 + timedelta(seconds=5), suffixes())
    assert not _of(actions.Create, todo)
    assert actions.requeue_after(todo) == 16.0  # 2nd failure: 20 s after t=1
    assert status["failed"] == 2 and "conditions" not in status
    todo, _ = job.reconcile(j, pods, T0 + timedelta(seconds=22), suffixes())
    assert len(_of(actions.Create, todo)) == 1


def test_on_failure_restarts_count_against_the_limit() -> None:
    j = _job(backoff=3, restart="OnFailure", parallelism=1, completions=1)
    ok = [_pod("p", j, restarts=2)]
    _, status = job.reconcile(j, ok, T0, suffixes())
    assert "conditions" not in status
    _, status = job.reconcile(j, [_pod("p", j, restarts=3)], T0, suffixes())
    assert status["conditions"][0]["reason"] == "BackoffLimitExceeded"


def test_active_deadline_fails_the_job() -> None:
    j = _job(deadline=30)
    j["status"] = {"startTime": meta.format_time(T0)}
    pods = [_pod("a", j), _pod("b", j)]
    todo, status = job.reconcile(j, pods, T0 + timedelta(seconds=10), suffixes())
    assert actions.requeue_after(todo) == 20.0 and "conditions" not in status
    todo, status = job.reconcile(j, pods, T0 + timedelta(seconds=30), suffixes())
    cond = status["conditions"][0]
    assert (cond["reason"], cond["message"]) == (
        "DeadlineExceeded", "Job was active longer than specified deadline")
    assert sorted(d.name for d in _of(actions.Delete, todo)) == ["a", "b"]


def test_five_completions_two_at_a_time_run_to_completion() -> None:
    world = World()
    world.add("jobs", _job(completions=5, parallelism=2))
    names = suffixes()
    peak = 0
    for _ in range(20):
        j = world.get("jobs", "ns", "pi")
        if job.is_finished(j):
            break
        todo, _ = job.reconcile(j, world.list("pods", "ns"), world.now, names)
        assert world.apply(todo) is None
        running = [p for p in world.list("pods", "ns")
                   if p.get("status", {}).get("phase") != "Succeeded"]
        peak = max(peak, len(running))
        for pod in running[:1]:  # one pod finishes per step
            live = world.objects[("pods", "ns", meta.name(pod))]
            live["status"] = {"phase": "Succeeded"}
        world.tick(1)
    j = world.get("jobs", "ns", "pi")
    assert job.is_finished(j) and j["status"]["succeeded"] == 5
    assert peak == 2 and len(world.list("pods", "ns")) == 5
