"""Field tables for the protobuf bodies kubectl sends: number -> (JSON name, code, sub-table).

Numbers are from `generated.proto` in k8s.io/api (core/v1, apps/v1, batch/v1) and
k8s.io/apimachinery (meta/v1, runtime, util/intstr, api/resource). The tables cover
what the `kubectl create` generators and drain send, plus the common pod-template
fields (so a Job created `--from=cronjob/...` keeps its template); anything else is
skipped by the decoder.

Codes:
  s, i, t    string, integer (varint), bool; zero values dropped as Go's JSON omits them
  s?, i?, t? the same for Go pointer fields: present means set, zero included
  b          bytes, rendered base64 as in JSON
  m, rm      nested message, repeated message (empty messages stay `{}`)
  I          inline message: its fields merge into the parent (`json:",inline"`)
  rs         repeated string
  ms, mb, mq map<string, string | bytes | Quantity>
  ios, ios?  IntOrString (value, pointer); q Quantity; time metav1.Time
"""

from __future__ import annotations

from typing import Any

Schema = dict[int, tuple[str, str, Any]]

OWNER_REFERENCE: Schema = {
    1: ("kind", "s", None),
    3: ("name", "s", None),
    4: ("uid", "s", None),
    5: ("apiVersion", "s", None),
    6: ("controller", "t?", None),
    7: ("blockOwnerDeletion", "t?", None),
}
OBJECT_META: Schema = {
    1: ("name", "s", None),
    2: ("generateName", "s", None),
    3: ("namespace", "s", None),
    5: ("uid", "s", None),
    6: ("resourceVersion", "s", None),
    7: ("generation", "i", None),
    8: ("creationTimestamp", "time", None),
    9: ("deletionTimestamp", "time", None),
    10: ("deletionGracePeriodSeconds", "i?", None),
    11: ("labels", "ms", None),
    12: ("annotations", "ms", None),
    13: ("ownerReferences", "rm", OWNER_REFERENCE),
    14: ("finalizers", "rs", None),
}
LABEL_SELECTOR: Schema = {
    1: ("matchLabels", "ms", None),
    2: (
        "matchExpressions",
        "rm",
        {1: ("key", "s", None), 2: ("operator", "s", None), 3: ("values", "rs", None)},
    ),
}
LOCAL_REF: Schema = {1: ("name", "s", None)}
KEY_SELECTOR: Schema = {1: ("", "I", LOCAL_REF), 2: ("key", "s", None), 3: ("optional", "t?", None)}
ENV_VAR: Schema = {
    1: ("name", "s", None),
    2: ("value", "s", None),
    3: (
        "valueFrom",
        "m",
        {
            1: ("fieldRef", "m", {1: ("apiVersion", "s", None), 2: ("fieldPath", "s", None)}),
            2: (
                "resourceFieldRef",
                "m",
                {
                    1: ("containerName", "s", None),
                    2: ("resource", "s", None),
                    3: ("divisor", "q", None),
                },
            ),
            3: ("configMapKeyRef", "m", KEY_SELECTOR),
            4: ("secretKeyRef", "m", KEY_SELECTOR),
        },
    ),
}
ENV_SOURCE_REF: Schema = {1: ("", "I", LOCAL_REF), 2: ("optional", "t?", None)}
CONTAINER: Schema = {
    1: ("name", "s", None),
    2: ("image", "s", None),
    3: ("command", "rs", None),
    4: ("args", "rs", None),
    5: ("workingDir", "s", None),
    6: (
        "ports",
        "rm",
        {
            1: ("name", "s", None),
            2: ("hostPort", "i", None),
            3: ("containerPort", "i", None),
            4: ("protocol", "s", None),
            5: ("hostIP", "s", None),
        },
    ),
    19: (
        "envFrom",
        "rm",
        {
            1: ("prefix", "s", None),
            2: ("configMapRef", "m", ENV_SOURCE_REF),
            3: ("secretRef", "m", ENV_SOURCE_REF),
        },
    ),
    7: ("env", "rm", ENV_VAR),
    8: ("resources", "m", {1: ("limits", "mq", None), 2: ("requests", "mq", None)}),
    24: ("restartPolicy", "s?", None),
    9: (
        "volumeMounts",
        "rm",
        {
            1: ("name", "s", None),
            2: ("readOnly", "t", None),
            3: ("mountPath", "s", None),
            4: ("subPath", "s", None),
            5: ("mountPropagation", "s?", None),
            6: ("subPathExpr", "s", None),
        },
    ),
    13: ("terminationMessagePath", "s", None),
    20: ("terminationMessagePolicy", "s", None),
    14: ("imagePullPolicy", "s", None),
    16: ("stdin", "t", None),
    17: ("stdinOnce", "t", None),
    18: ("tty", "t", None),
}
KEY_TO_PATH: Schema = {1: ("key", "s", None), 2: ("path", "s", None), 3: ("mode", "i?", None)}
VOLUME_SOURCE: Schema = {
    1: ("hostPath", "m", {1: ("path", "s", None), 2: ("type", "s?", None)}),
    2: ("emptyDir", "m", {1: ("medium", "s", None), 2: ("sizeLimit", "q", None)}),
    6: (
        "secret",
        "m",
        {
            1: ("secretName", "s", None),
            2: ("items", "rm", KEY_TO_PATH),
            3: ("defaultMode", "i?", None),
            4: ("optional", "t?", None),
        },
    ),
    10: ("persistentVolumeClaim", "m", {1: ("claimName", "s", None), 2: ("readOnly", "t", None)}),
    19: (
        "configMap",
        "m",
        {
            1: ("", "I", LOCAL_REF),
            2: ("items", "rm", KEY_TO_PATH),
            3: ("defaultMode", "i?", None),
            4: ("optional", "t?", None),
        },
    ),
}
TOLERATION: Schema = {
    1: ("key", "s", None),
    2: ("operator", "s", None),
    3: ("value", "s", None),
    4: ("effect", "s", None),
    5: ("tolerationSeconds", "i?", None),
}
POD_SPEC: Schema = {
    1: ("volumes", "rm", {1: ("name", "s", None), 2: ("", "I", VOLUME_SOURCE)}),
    20: ("initContainers", "rm", CONTAINER),
    2: ("containers", "rm", CONTAINER),
    3: ("restartPolicy", "s", None),
    4: ("terminationGracePeriodSeconds", "i?", None),
    5: ("activeDeadlineSeconds", "i?", None),
    6: ("dnsPolicy", "s", None),
    7: ("nodeSelector", "ms", None),
    8: ("serviceAccountName", "s", None),
    9: ("serviceAccount", "s", None),
    21: ("automountServiceAccountToken", "t?", None),
    10: ("nodeName", "s", None),
    11: ("hostNetwork", "t", None),
    12: ("hostPID", "t", None),
    13: ("hostIPC", "t", None),
    15: ("imagePullSecrets", "rm", LOCAL_REF),
    16: ("hostname", "s", None),
    17: ("subdomain", "s", None),
    19: ("schedulerName", "s", None),
    22: ("tolerations", "rm", TOLERATION),
    24: ("priorityClassName", "s", None),
    25: ("priority", "i?", None),
    28: ("readinessGates", "rm", {1: ("conditionType", "s", None)}),
    29: ("runtimeClassName", "s?", None),
    30: ("enableServiceLinks", "t?", None),
}
POD_TEMPLATE: Schema = {1: ("metadata", "m", OBJECT_META), 2: ("spec", "m", POD_SPEC)}

DEPLOYMENT: Schema = {
    1: ("metadata", "m", OBJECT_META),
    2: (
        "spec",
        "m",
        {
            1: ("replicas", "i?", None),
            2: ("selector", "m", LABEL_SELECTOR),
            3: ("template", "m", POD_TEMPLATE),
            4: (
                "strategy",
                "m",
                {
                    1: ("type", "s", None),
                    2: (
                        "rollingUpdate",
                        "m",
                        {1: ("maxUnavailable", "ios?", None), 2: ("maxSurge", "ios?", None)},
                    ),
                },
            ),
            5: ("minReadySeconds", "i", None),
            6: ("revisionHistoryLimit", "i?", None),
            7: ("paused", "t", None),
            9: ("progressDeadlineSeconds", "i?", None),
        },
    ),
    3: ("status", "m", {}),
}
JOB: Schema = {
    1: ("metadata", "m", OBJECT_META),
    2: (
        "spec",
        "m",
        {
            1: ("parallelism", "i?", None),
            2: ("completions", "i?", None),
            3: ("activeDeadlineSeconds", "i?", None),
            7: ("backoffLimit", "i?", None),
            4: ("selector", "m", LABEL_SELECTOR),
            5: ("manualSelector", "t?", None),
            6: ("template", "m", POD_TEMPLATE),
            8: ("ttlSecondsAfterFinished", "i?", None),
            9: ("completionMode", "s?", None),
            10: ("suspend", "t?", None),
        },
    ),
    3: ("status", "m", {}),
}
SERVICE_PORT: Schema = {
    1: ("name", "s", None),
    2: ("protocol", "s", None),
    6: ("appProtocol", "s?", None),
    3: ("port", "i", None),
    4: ("targetPort", "ios", None),
    5: ("nodePort", "i", None),
}
SERVICE: Schema = {
    1: ("metadata", "m", OBJECT_META),
    2: (
        "spec",
        "m",
        {
            1: ("ports", "rm", SERVICE_PORT),
            2: ("selector", "ms", None),
            3: ("clusterIP", "s", None),
            18: ("clusterIPs", "rs", None),
            4: ("type", "s", None),
            5: ("externalIPs", "rs", None),
            7: ("sessionAffinity", "s", None),
            8: ("loadBalancerIP", "s", None),
            10: ("externalName", "s", None),
            11: ("externalTrafficPolicy", "s", None),
            12: ("healthCheckNodePort", "i", None),
            13: ("publishNotReadyAddresses", "t", None),
            19: ("ipFamilies", "rs", None),
            17: ("ipFamilyPolicy", "s?", None),
            20: ("allocateLoadBalancerNodePorts", "t?", None),
            21: ("loadBalancerClass", "s?", None),
            22: ("internalTrafficPolicy", "s?", None),
        },
    ),
    3: ("status", "m", {1: ("loadBalancer", "m", {})}),
}
OBJECT_REFERENCE: Schema = {
    1: ("kind", "s", None),
    2: ("namespace", "s", None),
    3: ("name", "s", None),
    4: ("uid", "s", None),
    5: ("apiVersion", "s", None),
    6: ("resourceVersion", "s", None),
    7: ("fieldPath", "s", None),
}

KINDS: dict[str, Schema] = {
    "Namespace": {
        1: ("metadata", "m", OBJECT_META),
        2: ("spec", "m", {1: ("finalizers", "rs", None)}),
        3: ("status", "m", {1: ("phase", "s", None)}),
    },
    "ConfigMap": {
        1: ("metadata", "m", OBJECT_META),
        4: ("immutable", "t?", None),
        2: ("data", "ms", None),
        3: ("binaryData", "mb", None),
    },
    "Secret": {
        1: ("metadata", "m", OBJECT_META),
        5: ("immutable", "t?", None),
        2: ("data", "mb", None),
        4: ("stringData", "ms", None),
        3: ("type", "s", None),
    },
    "ServiceAccount": {
        1: ("metadata", "m", OBJECT_META),
        2: ("secrets", "rm", OBJECT_REFERENCE),
        3: ("imagePullSecrets", "rm", LOCAL_REF),
        4: ("automountServiceAccountToken", "t?", None),
    },
    "Service": SERVICE,
    "Pod": {1: ("metadata", "m", OBJECT_META), 2: ("spec", "m", POD_SPEC), 3: ("status", "m", {})},
    "Deployment": DEPLOYMENT,
    "Job": JOB,
    "DeleteOptions": {
        1: ("gracePeriodSeconds", "i?", None),
        2: ("preconditions", "m", {1: ("uid", "s?", None), 2: ("resourceVersion", "s?", None)}),
        3: ("orphanDependents", "t?", None),
        4: ("propagationPolicy", "s?", None),
        5: ("dryRun", "rs", None),
        6: ("ignoreStoreReadErrorWithClusterBreakingPotential", "t?", None),
    },
}
