"""The cells of each Table row, computed as Kubernetes' printers compute them.

One function per kind (pods are in `table_pod`), following
kubernetes/pkg/printers/internalversion/printers.go, always with the wide columns (the
apiserver prints with `Wide: true`; kubectl hides priority-1 columns itself). Objects are plain JSON dicts; a missing field reads as Go's
zero value. Where the printer reads an internal-API field that v1 conversion derives
(pod `podIPs`, service `clusterIPs`), we fall back to the v1 singular field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from apiserver.durations import human_duration, parse_time, since

Obj = dict[str, Any]
Cells = list[Any]


def get(obj: Any, *path: str) -> Any:
    """obj[path[0]][path[1]]..., or None where a level is missing."""
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def age(obj: Obj, now: datetime) -> str:
    """The AGE cell: time since metadata.creationTimestamp."""
    return since(get(obj, "metadata", "creationTimestamp"), now)


def format_labels(labels: dict[str, str] | None) -> str:
    """labels.FormatLabels: sorted `k=v` pairs, or `<none>`."""
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items())) or "<none>"


def format_selector(selector: Obj | None) -> str:
    """A LabelSelector in selector syntax, requirements sorted by key (`app=web,tier in (a,b)`)."""
    requirements = [(k, f"{k}={v}") for k, v in ((selector or {}).get("matchLabels") or {}).items()]
    for expr in (selector or {}).get("matchExpressions") or []:
        key, op, values = (
            expr.get("key", ""),
            expr.get("operator", ""),
            sorted(expr.get("values") or []),
        )
        text = {
            "In": f"{key} in ({','.join(values)})",
            "NotIn": f"{key} notin ({','.join(values)})",
            "Exists": key,
            "DoesNotExist": f"!{key}",
        }.get(op, f"{key} {op}")
        requirements.append((key, text))
    return ",".join(text for _, text in sorted(requirements, key=lambda r: r[0]))


def _template_cells(obj: Obj, template: Obj | None, selector: str) -> Cells:
    containers = get(template, "spec", "containers") or []
    names = ",".join(c.get("name", "") for c in containers)
    images = ",".join(c.get("image", "") for c in containers)
    return [names, images, selector]


# -- workloads ------------------------------------------------------------------------


def deployment_cells(obj: Obj, now: datetime) -> Cells:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    desired = spec.get("replicas", 1)  # defaulted to 1 when the object was created
    return [
        get(obj, "metadata", "name") or "",
        f"{status.get('readyReplicas', 0)}/{desired}",
        status.get("updatedReplicas", 0),
        status.get("availableReplicas", 0),
        age(obj, now),
        *_template_cells(obj, spec.get("template"), format_selector(spec.get("selector"))),
    ]


def replicaset_cells(obj: Obj, now: datetime) -> Cells:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return [
        get(obj, "metadata", "name") or "",
        spec.get("replicas", 1),
        status.get("replicas", 0),
        status.get("readyReplicas", 0),
        age(obj, now),
        *_template_cells(
            obj, spec.get("template"), format_selector(spec.get("selector")) or "<none>"
        ),
    ]


def daemonset_cells(obj: Obj, now: datetime) -> Cells:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    counts = (
        "desiredNumberScheduled",
        "currentNumberScheduled",
        "numberReady",
        "updatedNumberScheduled",
        "numberAvailable",
    )
    return [
        get(obj, "metadata", "name") or "",
        *(status.get(c, 0) for c in counts),
        format_labels(get(spec, "template", "spec", "nodeSelector")),
        age(obj, now),
        *_template_cells(
            obj, spec.get("template"), format_selector(spec.get("selector")) or "<none>"
        ),
    ]


def _job_condition(obj: Obj, type_: str) -> bool:
    for condition in get(obj, "status", "conditions") or []:
        if condition.get("type") == type_:
            return condition.get("status") == "True"
    return False


def job_cells(obj: Obj, now: datetime) -> Cells:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    succeeded = status.get("succeeded", 0)
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{spec['completions']}"
    elif (spec.get("parallelism") or 0) > 1:
        completions = f"{succeeded}/1 of {spec['parallelism']}"
    else:
        completions = f"{succeeded}/1"
    start, end = parse_time(status.get("startTime")), parse_time(status.get("completionTime"))
    took = "" if start is None else human_duration((end or now) - start)
    if _job_condition(obj, "Complete"):
        state = "Complete"
    elif _job_condition(obj, "Failed"):
        state = "Failed"
    elif get(obj, "metadata", "deletionTimestamp") is not None:
        state = "Terminating"
    elif _job_condition(obj, "Suspended"):
        state = "Suspended"
    elif _job_condition(obj, "FailureTarget"):
        state = "FailureTarget"
    else:
        state = "Running"
    return [
        get(obj, "metadata", "name") or "",
        state,
        completions,
        took,
        age(obj, now),
        *_template_cells(
            obj, spec.get("template"), format_selector(spec.get("selector")) or "<none>"
        ),
    ]


def pdb_cells(obj: Obj, now: datetime) -> Cells:
    spec = obj.get("spec") or {}
    bounds = [
        str(spec[k]) if spec.get(k) is not None else "N/A"
        for k in ("minAvailable", "maxUnavailable")
    ]
    allowed = get(obj, "status", "disruptionsAllowed") or 0
    return [get(obj, "metadata", "name") or "", *bounds, allowed, age(obj, now)]


# -- cluster and networking -----------------------------------------------------------


def node_cells(obj: Obj, now: datetime) -> Cells:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    states = []
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Ready":
            states = ["Ready" if condition.get("status") == "True" else "NotReady"]
    states = states or ["Unknown"]
    if spec.get("unschedulable"):
        states.append("SchedulingDisabled")
    roles = set()
    for key, value in (get(obj, "metadata", "labels") or {}).items():
        if key.startswith("node-role.kubernetes.io/") and key != "node-role.kubernetes.io/":
            roles.add(key.removeprefix("node-role.kubernetes.io/"))
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    info = status.get("nodeInfo") or {}

    def address(kind: str) -> str:
        found = [a.get("address") for a in status.get("addresses") or [] if a.get("type") == kind]
        return found[0] if found else "<none>"

    return [
        get(obj, "metadata", "name") or "",
        ",".join(states),
        ",".join(sorted(roles)) or "<none>",
        age(obj, now),
        info.get("kubeletVersion", ""),
        address("InternalIP"),
        address("ExternalIP"),
        info.get("osImage") or "<unknown>",
        info.get("kernelVersion") or "<unknown>",
        info.get("containerRuntimeVersion") or "<unknown>",
    ]


def namespace_cells(obj: Obj, now: datetime) -> Cells:
    return [get(obj, "metadata", "name") or "", get(obj, "status", "phase") or "", age(obj, now)]


def _external_ip(spec: Obj, status: Obj) -> str:
    external = ",".join(spec.get("externalIPs") or [])
    kind = spec.get("type")
    if kind in ("ClusterIP", "NodePort"):
        return external or "<none>"
    if kind == "LoadBalancer":
        ingress = {
            i.get("ip") or i.get("hostname") for i in get(status, "loadBalancer", "ingress") or []
        }
        balancers = ",".join(sorted(i for i in ingress if i))
        return ",".join(x for x in (balancers, external) if x) or "<pending>"
    if kind == "ExternalName":
        return spec.get("externalName", "")
    return "<unknown>"


def service_cells(obj: Obj, now: datetime) -> Cells:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    cluster_ips = spec.get("clusterIPs") or [spec.get("clusterIP")]
    ports = []
    for port in spec.get("ports") or []:
        node_port = f":{port['nodePort']}" if port.get("nodePort") else ""
        ports.append(f"{port.get('port', 0)}{node_port}/{port.get('protocol', '')}")
    return [
        get(obj, "metadata", "name") or "",
        spec.get("type", ""),
        cluster_ips[0] or "<none>",
        _external_ip(spec, status),
        ",".join(ports) or "<none>",
        age(obj, now),
        format_labels(spec.get("selector")),
    ]


def format_endpoints(subsets: list[Obj] | None, limit: int = 3) -> str:
    """`ip:port,...` for the first three, then ` + N more...`; `<none>` when empty."""
    if not subsets:
        return "<none>"
    shown: list[str] = []
    count = 0
    for subset in subsets:
        addresses = [a.get("ip", "") for a in subset.get("addresses") or []]
        for port in subset.get("ports") or [None]:
            count += len(addresses)
            for ip in addresses:
                if len(shown) == limit:
                    break
                if port is None:
                    shown.append(ip)
                else:
                    host = f"[{ip}]" if ":" in ip else ip
                    shown.append(f"{host}:{port.get('port', 0)}")
    text = ",".join(shown)
    return f"{text} + {count - limit} more..." if count > limit else text


def endpoints_cells(obj: Obj, now: datetime) -> Cells:
    return [
        get(obj, "metadata", "name") or "",
        format_endpoints(obj.get("subsets")),
        age(obj, now),
    ]


def event_cells(obj: Obj, now: datetime) -> Cells:
    first = since(obj.get("firstTimestamp"), now)
    if parse_time(obj.get("firstTimestamp")) is None:
        first = since(obj.get("eventTime"), now)
    last = since(obj.get("lastTimestamp"), now)
    if parse_time(obj.get("lastTimestamp")) is None:
        last = first
    count = obj.get("count") or 0
    if obj.get("series") is not None:
        last = since(get(obj, "series", "lastObservedTime"), now)
        count = get(obj, "series", "count") or 0
    elif count == 0:
        count = 1
    involved = obj.get("involvedObject") or {}
    kind = (involved.get("kind") or "").lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    component = get(obj, "source", "component") or obj.get("reportingComponent") or ""
    instance = get(obj, "source", "host") or obj.get("reportingInstance") or ""
    return [
        last,
        obj.get("type", ""),
        obj.get("reason", ""),
        target,
        involved.get("fieldPath", ""),
        f"{component}, {instance}" if instance else component,
        (obj.get("message") or "").strip(),
        first,
        count,
        get(obj, "metadata", "name") or "",
    ]


# -- configuration and access ---------------------------------------------------------


def configmap_cells(obj: Obj, now: datetime) -> Cells:
    size = len(obj.get("data") or {}) + len(obj.get("binaryData") or {})
    return [get(obj, "metadata", "name") or "", size, age(obj, now)]


def secret_cells(obj: Obj, now: datetime) -> Cells:
    name, kind = get(obj, "metadata", "name") or "", obj.get("type", "")
    return [name, kind, len(obj.get("data") or {}), age(obj, now)]


def serviceaccount_cells(obj: Obj, now: datetime) -> Cells:
    return [get(obj, "metadata", "name") or "", len(obj.get("secrets") or []), age(obj, now)]


def lease_cells(obj: Obj, now: datetime) -> Cells:
    holder = get(obj, "spec", "holderIdentity") or ""
    return [get(obj, "metadata", "name") or "", holder, age(obj, now)]


def binding_cells(obj: Obj, now: datetime) -> Cells:
    ref = obj.get("roleRef") or {}
    users, groups, accounts = [], [], []
    for subject in obj.get("subjects") or []:
        kind, name = subject.get("kind"), subject.get("name", "")
        if kind == "ServiceAccount":
            accounts.append(f"{subject.get('namespace', '')}/{name}")
        elif kind == "User":
            users.append(name)
        elif kind == "Group":
            groups.append(name)
    return [
        get(obj, "metadata", "name") or "",
        f"{ref.get('kind', '')}/{ref.get('name', '')}",
        age(obj, now),
        ", ".join(users),
        ", ".join(groups),
        ", ".join(accounts),
    ]
