"""Column definitions of Kubernetes' server-side printing, per resource.

Names, types, priorities and descriptions as in kubernetes/pkg/printers/internalversion
(printers.go, AddHandlers): priority 0 columns always print, priority 1 only with
`-o wide`. Descriptions are the Go API docs the printers reference (the swagger text of
ObjectMeta.name, PodStatus.podIP, ...), so `kubectl get -o json --raw`-style consumers
see what a real apiserver sends. The cells come from `table_printers`.
"""

from __future__ import annotations

from typing import Any

DOCS: dict[str, str] = {
    "NAME": "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
    "AGE": "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
    "POD_IP": "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
    "POD_NODE": "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename",
    "POD_NOMINATED": "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.",
    "POD_GATES": 'If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to "True" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates',
    "RS_DESIRED": "Replicas is the number of desired pods. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset",
    "RS_CURRENT": "Replicas is the most recently observed number of non-terminating pods. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset",
    "RS_READY": "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition.",
    "RS_SELECTOR": "Selector is a label query over pods that should match the replica count. If the selector is empty, it is defaulted to the labels present on the pod template. Label keys and values that must match in order to be controlled by this replica set. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
    "DS_DESIRED": "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod). More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/",
    "DS_CURRENT": "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod. More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/",
    "DS_READY": "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready.",
    "DS_UPDATED": "The total number of nodes that are running updated daemon pod",
    "DS_AVAILABLE": "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)",
    "DS_NODE_SELECTOR": "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match a node's labels for the pod to be scheduled on that node. More info: https://kubernetes.io/docs/concepts/configuration/assign-pod-node/",
    "DS_SELECTOR": "A label query over pods that are managed by the daemon set. Must match in order to be controlled. If empty, defaulted to labels on Pod template. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
    "JOB_SUCCEEDED": "The number of pods which reached phase Succeeded. The value increases monotonically for a given spec. However, it may decrease in reaction to scale down of elastic indexed jobs.",
    "JOB_SELECTOR": "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
    "SVC_TYPE": 'type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer. "ClusterIP" allocates a cluster-internal IP address for load-balancing to endpoints. Endpoints are determined by the selector or if that is not specified, by manual construction of an Endpoints object or EndpointSlice objects. If clusterIP is "None", no virtual IP is allocated and the endpoints are published as a set of endpoints rather than a virtual IP. "NodePort" builds on ClusterIP and allocates a port on every node which routes to the same endpoints as the clusterIP. "LoadBalancer" builds on NodePort and creates an external load-balancer (if supported in the current cloud) which routes to the same endpoints as the clusterIP. "ExternalName" aliases this service to the specified externalName. Several other fields do not apply to ExternalName services. More info: https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types',
    "SVC_CLUSTER_IP": 'clusterIP is the IP address of the service and is usually assigned randomly. If an address is specified manually, is in-range (as per system configuration), and is not in use, it will be allocated to the service; otherwise creation of the service will fail. This field may not be changed through updates unless the type field is also being changed to ExternalName (which requires this field to be blank) or the type field is being changed from ExternalName (in which case this field may optionally be specified, as describe above).  Valid values are "None", empty string (""), or a valid IP address. Setting this to "None" makes a "headless service" (no virtual IP), which is useful when direct endpoint connections are preferred and proxying is not required.  Only applies to types ClusterIP, NodePort, and LoadBalancer. If this field is specified when creating a Service of type ExternalName, creation will fail. This field will be wiped when updating a Service to type ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies',
    "SVC_EXTERNAL_IPS": "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.  These IPs are not managed by Kubernetes.  The user is responsible for ensuring that traffic arrives at a node with this IP.  A common example is external load-balancers that are not part of the Kubernetes system.",
    "SVC_PORTS": "The list of ports that are exposed by this service. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies",
    "SVC_SELECTOR": "Route service traffic to pods with label keys and values matching this selector. If empty or not present, the service is assumed to have an external process managing its endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/",
    "EP_SUBSETS": "The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to the IPs they share. A single address with multiple ports, some of which are ready and some of which are not (because they come from different containers) will result in the address being displayed in different subsets for the different ports. No address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service.",
    "NODE_VERSION": "Kubelet Version reported by the node.",
    "NODE_ADDRESSES": "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change during the lifetime of a Node. However, there are some exceptions where this may not be possible, such as Pods that inherit a Node's address in its own status or consumers of the downward API (status.hostIP).",
    "NODE_OS": "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
    "NODE_KERNEL": "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
    "NODE_RUNTIME": "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
    "EV_LAST": "The time at which the most recent occurrence of this event was recorded.",
    "EV_TYPE": "Type of this event (Normal, Warning), new types could be added in the future",
    "EV_REASON": "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
    "EV_OBJECT": "The object that this event is about.",
    "EV_SUBOBJECT": 'If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: "spec.containers{name}" (where "name" refers to the name of the container that triggered the event) or if no container name is specified "spec.containers[2]" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.',
    "EV_SOURCE": "The component reporting this event. Should be a short machine understandable string.",
    "EV_MESSAGE": "A human-readable description of the status of this operation.",
    "EV_FIRST": "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
    "EV_COUNT": "The number of times this event has occurred.",
    "SECRET_TYPE": "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types",
    "SECRET_DATA": "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4",
    "SA_SECRETS": 'Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use. Pods are only limited to this list if this service account has a "kubernetes.io/enforce-mountable-secrets" annotation set to "true". The "kubernetes.io/enforce-mountable-secrets" annotation is deprecated since v1.32. Prefer separate namespaces to isolate access to mounted secrets. This field should not be used to find auto-generated service account token secrets for use outside of pods. Instead, tokens can be requested directly using the TokenRequest API, or service account token secrets can be manually created. More info: https://kubernetes.io/docs/concepts/configuration/secret',
    "DEPLOY_UPDATED": "Total number of non-terminating pods targeted by this deployment that have the desired template spec.",
    "DEPLOY_AVAILABLE": "Total number of available non-terminating pods (ready for at least minReadySeconds) targeted by this deployment.",
    "DEPLOY_SELECTOR": "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
    "CM_DATA": "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.",
    "RB_ROLE": "roleRef can reference a Role in the current namespace or a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error.",
    "CRB_ROLE": "roleRef can only reference a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error.",
    "LEASE_HOLDER": "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.",
}

CONTAINERS = "Names of each container in the template."
IMAGES = "Images referenced by each container in the template."


def column(
    name: str, type_: str, description: str, priority: int = 0, fmt: str = ""
) -> dict[str, Any]:
    """One TableColumnDefinition, keys in Kubernetes' JSON order."""
    return {
        "name": name,
        "type": type_,
        "format": fmt,
        "description": description,
        "priority": priority,
    }


def _name(priority: int = 0) -> dict[str, Any]:
    return column("Name", "string", DOCS["NAME"], priority, "name")


def _age() -> dict[str, Any]:
    return column("Age", "string", DOCS["AGE"])


def _template(selector_doc: str) -> list[dict[str, Any]]:
    return [
        column("Containers", "string", CONTAINERS, 1),
        column("Images", "string", IMAGES, 1),
        column("Selector", "string", selector_doc, 1),
    ]


def _binding(kind: str, role_doc: str) -> list[dict[str, Any]]:
    return [
        _name(),
        column("Role", "string", role_doc),
        _age(),
        column("Users", "string", f"Users in the {kind}", 1),
        column("Groups", "string", f"Groups in the {kind}", 1),
        column("ServiceAccounts", "string", f"ServiceAccounts in the {kind}", 1),
    ]


COLUMNS: dict[str, list[dict[str, Any]]] = {
    "Pod": [
        _name(),
        column(
            "Ready", "string", "The aggregate readiness state of this pod for accepting traffic."
        ),
        column("Status", "string", "The aggregate status of the containers in this pod."),
        column(
            "Restarts",
            "string",
            "The number of times the containers in this pod have been restarted and when the "
            "last container in this pod has restarted.",
        ),
        _age(),
        column("IP", "string", DOCS["POD_IP"], 1),
        column("Node", "string", DOCS["POD_NODE"], 1),
        column("Nominated Node", "string", DOCS["POD_NOMINATED"], 1),
        column("Readiness Gates", "string", DOCS["POD_GATES"], 1),
    ],
    "Node": [
        _name(),
        column("Status", "string", "The status of the node"),
        column("Roles", "string", "The roles of the node"),
        _age(),
        column("Version", "string", DOCS["NODE_VERSION"]),
        column("Internal-IP", "string", DOCS["NODE_ADDRESSES"], 1),
        column("External-IP", "string", DOCS["NODE_ADDRESSES"], 1),
        column("OS-Image", "string", DOCS["NODE_OS"], 1),
        column("Kernel-Version", "string", DOCS["NODE_KERNEL"], 1),
        column("Container-Runtime", "string", DOCS["NODE_RUNTIME"], 1),
    ],
    "Namespace": [_name(), column("Status", "string", "The status of the namespace"), _age()],
    "Deployment": [
        _name(),
        column("Ready", "string", "Number of the pod with ready state"),
        column("Up-to-date", "string", DOCS["DEPLOY_UPDATED"]),
        column("Available", "string", DOCS["DEPLOY_AVAILABLE"]),
        _age(),
        *_template(DOCS["DEPLOY_SELECTOR"]),
    ],
    "ReplicaSet": [
        _name(),
        column("Desired", "integer", DOCS["RS_DESIRED"]),
        column("Current", "integer", DOCS["RS_CURRENT"]),
        column("Ready", "integer", DOCS["RS_READY"]),
        _age(),
        *_template(DOCS["RS_SELECTOR"]),
    ],
    "DaemonSet": [
        _name(),
        column("Desired", "integer", DOCS["DS_DESIRED"]),
        column("Current", "integer", DOCS["DS_CURRENT"]),
        column("Ready", "integer", DOCS["DS_READY"]),
        column("Up-to-date", "integer", DOCS["DS_UPDATED"]),
        column("Available", "integer", DOCS["DS_AVAILABLE"]),
        column("Node Selector", "string", DOCS["DS_NODE_SELECTOR"]),
        _age(),
        *_template(DOCS["DS_SELECTOR"]),
    ],
    "Job": [
        _name(),
        column("Status", "string", "Status of the job."),
        column("Completions", "string", DOCS["JOB_SUCCEEDED"]),
        column("Duration", "string", "Time required to complete the job."),
        _age(),
        *_template(DOCS["JOB_SELECTOR"]),
    ],
    "Service": [
        _name(),
        column("Type", "string", DOCS["SVC_TYPE"]),
        column("Cluster-IP", "string", DOCS["SVC_CLUSTER_IP"]),
        column("External-IP", "string", DOCS["SVC_EXTERNAL_IPS"]),
        column("Port(s)", "string", DOCS["SVC_PORTS"]),
        _age(),
        column("Selector", "string", DOCS["SVC_SELECTOR"], 1),
    ],
    "Endpoints": [_name(), column("Endpoints", "string", DOCS["EP_SUBSETS"]), _age()],
    "Event": [
        column("Last Seen", "string", DOCS["EV_LAST"]),
        column("Type", "string", DOCS["EV_TYPE"]),
        column("Reason", "string", DOCS["EV_REASON"]),
        column("Object", "string", DOCS["EV_OBJECT"]),
        column("Subobject", "string", DOCS["EV_SUBOBJECT"], 1),
        column("Source", "string", DOCS["EV_SOURCE"], 1),
        column("Message", "string", DOCS["EV_MESSAGE"]),
        column("First Seen", "string", DOCS["EV_FIRST"], 1),
        column("Count", "string", DOCS["EV_COUNT"], 1),
        _name(1),
    ],
    "ConfigMap": [_name(), column("Data", "string", DOCS["CM_DATA"]), _age()],
    "Secret": [
        _name(),
        column("Type", "string", DOCS["SECRET_TYPE"]),
        column("Data", "string", DOCS["SECRET_DATA"]),
        _age(),
    ],
    "ServiceAccount": [_name(), column("Secrets", "string", DOCS["SA_SECRETS"]), _age()],
    "Lease": [_name(), column("Holder", "string", DOCS["LEASE_HOLDER"]), _age()],
    "RoleBinding": _binding("roleBinding", DOCS["RB_ROLE"]),
    "ClusterRoleBinding": _binding("clusterRoleBinding", DOCS["CRB_ROLE"]),
    "PodDisruptionBudget": [
        _name(),
        column("Min Available", "string", "The minimum number of pods that must be available."),
        column("Max Unavailable", "string", "The maximum number of pods that may be unavailable."),
        column(
            "Allowed Disruptions",
            "integer",
            "Calculated number of pods that may be disrupted at this time.",
        ),
        _age(),
    ],
}

# rest.NewDefaultTableConvertor, which Kubernetes uses for Role and ClusterRole.
CREATED_AT = [_name(), column("Created At", "date", DOCS["AGE"])]
# Our fallback for every other kind.
DEFAULT = [_name(), _age()]
