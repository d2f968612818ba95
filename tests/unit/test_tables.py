"""Server-side printing: the Table shape kubectl accepted (REQUIREMENTS.md section 4) and Kubernetes' cells per kind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from apiserver import tables
from apiserver.durations import human_duration, since

NOW = datetime(2026, 11, 22, 14, 0, 0, tzinfo=UTC)


def ts(ago: timedelta) -> str:
    return (NOW - ago).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(name: str, ago: timedelta = timedelta(seconds=2), **extra: Any) -> dict[str, Any]:
    return {"name": name, "creationTimestamp": ts(ago), **extra}


def cells(kind: str, obj: dict[str, Any]) -> list[Any]:
    return tables.to_table(kind, [obj], NOW, "1")["rows"][0]["cells"]


def names(kind: str) -> list[tuple[str, int]]:
    return [
        (c["name"], c["priority"]) for c in tables.to_table(kind, [], NOW, "1")["columnDefinitions"]
    ]


# -- HumanDuration --------------------------------------------------------------------

H, D, Y = 3600, 86400, 365 * 86400


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-2, "<invalid>"),
        (-1.999999, "0s"),
        (0, "0s"),
        (0.999, "0s"),
        (1, "1s"),
        (70, "70s"),
        (119.999, "119s"),
        (120, "2m"),
        (121, "2m1s"),
        (190, "3m10s"),
        (599.999, "9m59s"),
        (600, "10m"),
        (601, "10m"),
        (70 * 60, "70m"),
        (3 * H - 0.001, "179m"),
        (3 * H, "3h"),
        (3 * H + 60, "3h1m"),
        (8 * H - 0.001, "7h59m"),
        (8 * H + 59 * 60, "8h"),
        (47 * H, "47h"),
        (2 * D, "2d"),
        (49 * H, "2d1h"),
        (8 * D - 0.001, "7d23h"),
        (8 * D + 23 * H, "8d"),
        (367 * D, "367d"),
        (2 * Y - 0.001, "729d"),
        (2 * Y, "2y"),
        (2 * Y + D - 0.001, "2y"),
        (2 * Y + 25 * H, "2y1d"),
        (8 * Y - 0.001, "7y364d"),
        (8 * Y + 2 * H, "8y"),
        (9 * Y, "9y"),
    ],
)
def test_human_duration_matches_kubernetes(seconds: float, text: str) -> None:
    assert human_duration(timedelta(seconds=seconds)) == text


def test_age_of_a_missing_or_unparsable_timestamp_is_unknown() -> None:
    assert since(None, NOW) == "<unknown>"
    assert since("yesterday", NOW) == "<unknown>"
    assert since("2026-11-22T13:55:00.123456Z", NOW) == "4m59s"


# -- Table shape ----------------------------------------------------------------------


def running_pod() -> dict[str, Any]:
    return {
        "metadata": meta(
            "web-7mzd9kvjd9-mnl57",
            namespace="default",
            labels={"app": "web"},
            uid="179a5b45",
            resourceVersion="187",
        ),
        "spec": {"nodeName": "node-1", "containers": [{"name": "main", "image": "busybox"}]},
        "status": {
            "phase": "Running",
            "podIP": "10.244.0.7",
            "podIPs": [{"ip": "10.244.0.7"}],
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {
                    "name": "main",
                    "ready": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": ts(timedelta(seconds=1))}},
                }
            ],
        },
    }


def test_table_shape_as_kubectl_accepted_it() -> None:
    pod = running_pod()
    table = tables.to_table("Pod", [pod], NOW, "205")
    assert list(table) == ["kind", "apiVersion", "metadata", "columnDefinitions", "rows"]
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {"resourceVersion": "205"}
    first = table["columnDefinitions"][0]
    assert list(first) == ["name", "type", "format", "description", "priority"]
    assert (first["name"], first["type"], first["format"], first["priority"]) == (
        "Name",
        "string",
        "name",
        0,
    )
    assert first["description"].startswith("Name must be unique within a namespace.")
    assert names("Pod") == [
        ("Name", 0),
        ("Ready", 0),
        ("Status", 0),
        ("Restarts", 0),
        ("Age", 0),
        ("IP", 1),
        ("Node", 1),
        ("Nominated Node", 1),
        ("Readiness Gates", 1),
    ]
    (row,) = table["rows"]
    assert row["cells"] == [
        "web-7mzd9kvjd9-mnl57",
        "1/1",
        "Running",
        "0",
        "2s",
        "10.244.0.7",
        "node-1",
        "<none>",
        "<none>",
    ]
    assert row["object"] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": pod["metadata"],
    }
    assert "conditions" not in row


def test_a_naive_now_is_taken_as_utc() -> None:
    assert (
        tables.to_table("Pod", [running_pod()], NOW.replace(tzinfo=None), "1")["rows"][0]["cells"][
            4
        ]
        == "2s"
    )


# -- pods -----------------------------------------------------------------------------


def pod_with(status: dict[str, Any], **spec: Any) -> dict[str, Any]:
    pod = running_pod()
    pod["status"] = status
    pod["spec"].update(spec)
    return pod


def test_pending_pod_before_scheduling() -> None:
    pod = {
        "metadata": meta("p"),
        "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
        "status": {"phase": "Pending"},
    }
    assert cells("Pod", pod) == [
        "p",
        "0/2",
        "Pending",
        "0",
        "2s",
        "<none>",
        "<none>",
        "<none>",
        "<none>",
    ]
    waiting = pod_with(
        {
            "phase": "Pending",
            "containerStatuses": [
                {"name": "main", "state": {"waiting": {"reason": "ContainerCreating"}}}
            ],
        }
    )
    assert cells("Pod", waiting)[1:3] == ["0/1", "ContainerCreating"]


def test_finished_pods_read_completed_or_error_and_carry_row_conditions() -> None:
    done = pod_with(
        {
            "phase": "Succeeded",
            "containerStatuses": [
                {"name": "main", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
            ],
        }
    )
    row = tables.to_table("Pod", [done], NOW, "1")["rows"][0]
    assert row["cells"][1:3] == ["0/1", "Completed"]
    assert row["conditions"] == [
        {
            "type": "Completed",
            "status": "True",
            "reason": "Succeeded",
            "message": "The pod has completed successfully.",
        }
    ]
    failed = pod_with(
        {
            "phase": "Failed",
            "containerStatuses": [
                {"name": "main", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}
            ],
        }
    )
    row = tables.to_table("Pod", [failed], NOW, "1")["rows"][0]
    assert row["cells"][2] == "Error" and row["conditions"][0]["reason"] == "Failed"
    signalled = pod_with(
        {
            "phase": "Failed",
            "containerStatuses": [
                {"name": "main", "state": {"terminated": {"exitCode": 137, "signal": 9}}}
            ],
        }
    )
    assert cells("Pod", signalled)[2] == "Signal:9"
    assert cells("Pod", pod_with({"phase": "Succeeded"}))[2] == "Succeeded"


def test_crash_loop_shows_restarts_and_when() -> None:
    pod = pod_with(
        {
            "phase": "Running",
            "containerStatuses": [
                {
                    "name": "main",
                    "restartCount": 3,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {
                        "terminated": {"exitCode": 1, "finishedAt": ts(timedelta(minutes=5))}
                    },
                }
            ],
        }
    )
    assert cells("Pod", pod)[1:4] == ["0/1", "CrashLoopBackOff", "3 (5m ago)"]


def test_terminating_unknown_and_gated() -> None:
    pod = running_pod()
    pod["metadata"]["deletionTimestamp"] = ts(timedelta(0))
    assert cells("Pod", pod)[2] == "Terminating"
    pod["status"]["reason"] = "NodeLost"
    assert cells("Pod", pod)[2] == "Unknown"
    gated = pod_with(
        {
            "phase": "Pending",
            "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}
            ],
        }
    )
    assert cells("Pod", gated)[2] == "SchedulingGated"


def test_init_containers() -> None:
    init = [{"name": "i1"}, {"name": "i2"}]
    first_done = {"name": "i1", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
    second = {"name": "i2", "state": {"running": {}}}
    pod = pod_with(
        {"phase": "Pending", "initContainerStatuses": [first_done, second]}, initContainers=init
    )
    assert cells("Pod", pod)[1:3] == ["0/1", "Init:1/2"]
    crashed = {
        "name": "i2",
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "restartCount": 2,
    }
    pod = pod_with(
        {"phase": "Pending", "initContainerStatuses": [first_done, crashed]}, initContainers=init
    )
    assert cells("Pod", pod)[1:4] == ["0/1", "Init:CrashLoopBackOff", "2"]
    failed = {"name": "i1", "state": {"terminated": {"exitCode": 2}}}
    pod = pod_with({"phase": "Pending", "initContainerStatuses": [failed]}, initContainers=init)
    assert cells("Pod", pod)[2] == "Init:ExitCode:2"


def test_sidecars_count_as_containers_and_not_ready_pods() -> None:
    sidecar = {"name": "proxy", "restartPolicy": "Always"}
    status = {
        "phase": "Running",
        "conditions": [{"type": "Initialized", "status": "True"}],
        "initContainerStatuses": [
            {"name": "proxy", "started": True, "ready": True, "state": {"running": {}}}
        ],
        "containerStatuses": [{"name": "main", "ready": False, "state": {"running": {}}}],
    }
    assert cells("Pod", pod_with(status, initContainers=[sidecar]))[1:3] == ["1/2", "Running"]


def test_readiness_gates_and_nominated_node() -> None:
    pod = running_pod()
    pod["spec"]["readinessGates"] = [{"conditionType": "a"}, {"conditionType": "b"}]
    pod["status"]["conditions"].append({"type": "a", "status": "True"})
    pod["status"]["nominatedNodeName"] = "node-2"
    assert cells("Pod", pod)[7:] == ["node-2", "1/2"]


# -- other kinds ----------------------------------------------------------------------


def test_nodes() -> None:
    node = {
        "metadata": meta(
            "node-1",
            timedelta(days=3),
            labels={"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "worker"},
        ),
        "spec": {"unschedulable": True},
        "status": {
            "conditions": [
                {"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": "True"},
            ],
            "addresses": [
                {"type": "Hostname", "address": "n1"},
                {"type": "InternalIP", "address": "10.0.0.1"},
            ],
            "nodeInfo": {
                "kubeletVersion": "v1.32.0",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "kernelVersion": "6.1.0",
            },
        },
    }
    assert names("Node")[:5] == [
        ("Name", 0),
        ("Status", 0),
        ("Roles", 0),
        ("Age", 0),
        ("Version", 0),
    ]
    assert cells("Node", node) == [
        "node-1",
        "Ready,SchedulingDisabled",
        "control-plane,worker",
        "3d",
        "v1.32.0",
        "10.0.0.1",
        "<none>",
        "Debian GNU/Linux 12 (bookworm)",
        "6.1.0",
        "<unknown>",
    ]
    node["status"]["conditions"][1]["status"] = "Unknown"
    node["spec"] = {}
    assert cells("Node", node)[1] == "NotReady"
    assert cells("Node", {"metadata": meta("n")})[1:3] == ["Unknown", "<none>"]


def test_namespaces_configmaps_secrets_serviceaccounts_leases() -> None:
    assert cells("Namespace", {"metadata": meta("ns"), "status": {"phase": "Terminating"}}) == [
        "ns",
        "Terminating",
        "2s",
    ]
    cm = {"metadata": meta("cm"), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}}
    assert names("ConfigMap") == [("Name", 0), ("Data", 0), ("Age", 0)]
    assert cells("ConfigMap", cm) == ["cm", 3, "2s"]
    secret = {"metadata": meta("s"), "type": "Opaque", "data": {"a": "MQ=="}}
    assert names("Secret") == [("Name", 0), ("Type", 0), ("Data", 0), ("Age", 0)]
    assert cells("Secret", secret) == ["s", "Opaque", 1, "2s"]
    assert cells("ServiceAccount", {"metadata": meta("default")}) == ["default", 0, "2s"]
    lease = {"metadata": meta("node-1"), "spec": {"holderIdentity": "node-1"}}
    assert names("Lease") == [("Name", 0), ("Holder", 0), ("Age", 0)]
    assert cells("Lease", lease) == ["node-1", "node-1", "2s"]


def template(*images: str) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": i.split(":")[0], "image": i} for i in images]},
    }


def test_deployments_and_replicasets() -> None:
    selector = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]}],
    }
    deploy = {
        "metadata": meta("web", timedelta(minutes=5, seconds=3)),
        "spec": {"replicas": 3, "selector": selector, "template": template("main:1", "side:2")},
        "status": {"replicas": 3, "updatedReplicas": 3, "readyReplicas": 2, "availableReplicas": 2},
    }
    assert names("Deployment")[:5] == [
        ("Name", 0),
        ("Ready", 0),
        ("Up-to-date", 0),
        ("Available", 0),
        ("Age", 0),
    ]
    assert cells("Deployment", deploy) == [
        "web",
        "2/3",
        3,
        2,
        "5m3s",
        "main,side",
        "main:1,side:2",
        "app=web,tier in (be,fe)",
    ]
    rs = {
        "metadata": meta("web-1"),
        "spec": {"replicas": 2, "template": template("main:1")},
        "status": {"replicas": 1},
    }
    assert cells("ReplicaSet", rs) == ["web-1", 2, 1, 0, "2s", "main", "main:1", "<none>"]


def test_daemonsets_and_disruption_budgets() -> None:
    ds = {
        "metadata": meta("agent"),
        "spec": {
            "selector": {"matchExpressions": [{"key": "x", "operator": "DoesNotExist"}]},
            "template": template("a"),
        },
        "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2},
    }
    assert cells("DaemonSet", ds) == ["agent", 3, 3, 2, 0, 0, "<none>", "2s", "a", "a", "!x"]
    pdb = {
        "metadata": meta("pdb"),
        "spec": {"minAvailable": "50%"},
        "status": {"disruptionsAllowed": 1},
    }
    assert cells("PodDisruptionBudget", pdb) == ["pdb", "50%", "N/A", 1, "2s"]


def test_jobs() -> None:
    job = {
        "metadata": meta("once", timedelta(minutes=3)),
        "spec": {"completions": 1, "template": template("busybox")},
        "status": {
            "succeeded": 1,
            "startTime": ts(timedelta(minutes=3)),
            "completionTime": ts(timedelta(minutes=2, seconds=50)),
            "conditions": [{"type": "Complete", "status": "True"}],
        },
    }
    assert names("Job")[:5] == [
        ("Name", 0),
        ("Status", 0),
        ("Completions", 0),
        ("Duration", 0),
        ("Age", 0),
    ]
    assert cells("Job", job)[:5] == ["once", "Complete", "1/1", "10s", "3m"]
    running = {
        "metadata": meta("par"),
        "spec": {"parallelism": 3},
        "status": {"startTime": ts(timedelta(seconds=40))},
    }
    assert cells("Job", running)[:4] == ["par", "Running", "0/1 of 3", "40s"]
    assert cells("Job", {"metadata": meta("new")})[1:4] == ["Running", "0/1", ""]


def test_services() -> None:
    svc = {
        "metadata": meta("web"),
        "spec": {
            "type": "ClusterIP",
            "clusterIP": "10.96.0.10",
            "selector": {"app": "web"},
            "ports": [{"port": 80, "protocol": "TCP"}],
        },
    }
    assert cells("Service", svc) == [
        "web",
        "ClusterIP",
        "10.96.0.10",
        "<none>",
        "80/TCP",
        "2s",
        "app=web",
    ]
    node_port = {
        "metadata": meta("np"),
        "spec": {
            "type": "NodePort",
            "clusterIPs": ["10.96.0.11"],
            "externalIPs": ["1.2.3.4"],
            "ports": [
                {"port": 80, "nodePort": 30080, "protocol": "TCP"},
                {"port": 53, "protocol": "UDP"},
            ],
        },
    }
    assert cells("Service", node_port)[2:5] == ["10.96.0.11", "1.2.3.4", "80:30080/TCP,53/UDP"]
    lb = {"metadata": meta("lb"), "spec": {"type": "LoadBalancer", "clusterIP": "None"}}
    assert cells("Service", lb)[2:5] == ["None", "<pending>", "<none>"]
    lb["status"] = {"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}, {"hostname": "a.example"}]}}
    assert cells("Service", lb)[3] == "5.6.7.8,a.example"
    ext = {"metadata": meta("ext"), "spec": {"type": "ExternalName", "externalName": "example.com"}}
    assert cells("Service", ext)[1:4] == ["ExternalName", "<none>", "example.com"]


def test_endpoints_show_three_then_a_count() -> None:
    addresses = [{"ip": f"10.244.0.{i}"} for i in range(1, 6)]
    ep = {
        "metadata": meta("web"),
        "subsets": [{"addresses": addresses, "ports": [{"name": "http", "port": 8080}]}],
    }
    assert cells("Endpoints", ep) == [
        "web",
        "10.244.0.1:8080,10.244.0.2:8080,10.244.0.3:8080 + 2 more...",
        "2s",
    ]
    assert cells("Endpoints", {"metadata": meta("none")})[1] == "<none>"
    headless = {
        "metadata": meta("h"),
        "subsets": [
            {"addresses": [{"ip": "fd00::1"}]},
            {"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 53}]},
        ],
    }
    assert cells("Endpoints", headless)[1] == "fd00::1,10.0.0.1:53"


def test_events() -> None:
    event = {
        "metadata": meta("web.17a"),
        "involvedObject": {"kind": "Pod", "name": "web-1", "fieldPath": "spec.containers{main}"},
        "reason": "Pulled",
        "message": "Successfully pulled image\n",
        "type": "Normal",
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": ts(timedelta(minutes=10)),
        "lastTimestamp": ts(timedelta(seconds=30)),
        "count": 4,
    }
    assert [n for n, p in names("Event") if p == 0] == [
        "Last Seen",
        "Type",
        "Reason",
        "Object",
        "Message",
    ]
    assert cells("Event", event) == [
        "30s",
        "Normal",
        "Pulled",
        "pod/web-1",
        "spec.containers{main}",
        "kubelet, node-1",
        "Successfully pulled image",
        "10m",
        4,
        "web.17a",
    ]
    new_style = {
        "metadata": meta("e2"),
        "involvedObject": {"kind": "Node"},
        "eventTime": "2026-11-22T13:59:00.000000Z",
        "reportingComponent": "scheduler",
        "series": {"count": 7, "lastObservedTime": "2026-11-22T13:59:50.000000Z"},
    }
    assert cells("Event", new_style) == ["10s", "", "", "node", "", "scheduler", "", "60s", 7, "e2"]


def test_roles_use_created_at_and_bindings_list_subjects() -> None:
    role = {"metadata": meta("reader", timedelta(hours=1))}
    table = tables.to_table("ClusterRole", [role], NOW, "1")
    assert [(c["name"], c["type"]) for c in table["columnDefinitions"]] == [
        ("Name", "string"),
        ("Created At", "date"),
    ]
    assert table["rows"][0]["cells"] == ["reader", "2026-11-22T13:00:00Z"]
    binding = {
        "metadata": meta("rb"),
        "roleRef": {"kind": "ClusterRole", "name": "view"},
        "subjects": [
            {"kind": "User", "name": "bob"},
            {"kind": "User", "name": "alice"},
            {"kind": "Group", "name": "devs"},
            {"kind": "ServiceAccount", "name": "ci", "namespace": "tools"},
        ],
    }
    assert names("RoleBinding") == [
        ("Name", 0),
        ("Role", 0),
        ("Age", 0),
        ("Users", 1),
        ("Groups", 1),
        ("ServiceAccounts", 1),
    ]
    assert cells("ClusterRoleBinding", binding) == [
        "rb",
        "ClusterRole/view",
        "2s",
        "bob, alice",
        "devs",
        "tools/ci",
    ]


def test_anything_else_gets_name_and_age() -> None:
    assert names("PriorityClass") == [("Name", 0), ("Age", 0)]
    assert cells("PriorityClass", {"metadata": meta("high", timedelta(days=400))}) == [
        "high",
        "400d",
    ]
    assert cells("Widget", {"metadata": {"name": "w"}}) == ["w", "<unknown>"]
