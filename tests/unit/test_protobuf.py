"""Protobuf request bodies: real kubectl 1.32 bytes (tests/unit/data) and bodies built by a tiny test encoder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from apiserver import protobuf
from apiserver.protobuf import ProtobufError

CAPTURED = json.loads(
    (Path(__file__).parent / "data" / "kubectl-protobuf-bodies.json").read_text()
)["bodies"]


def without_null_timestamps(obj: Any) -> Any:
    """kubectl's JSON carries `"creationTimestamp": null`; the decoder leaves unset times out."""
    if isinstance(obj, dict):
        return {
            k: without_null_timestamps(v)
            for k, v in obj.items()
            if not (k == "creationTimestamp" and v is None)
        }
    if isinstance(obj, list):
        return [without_null_timestamps(v) for v in obj]
    return obj


@pytest.mark.parametrize("name", sorted(CAPTURED))
def test_kubectl_132_bodies_decode_to_what_kubectl_131_sent_as_json(name: str) -> None:
    captured = CAPTURED[name]
    decoded = protobuf.decode(bytes.fromhex(captured["body_hex"]))
    assert decoded == without_null_timestamps(captured["json_from_kubectl_1_31"]), captured[
        "command"
    ]


def test_the_namespace_bytes_quoted_in_the_requirements() -> None:
    quoted = (
        "6b387300 0a0f 0a027631 12094e616d657370616365 121e 0a16 0a06706274657374 1200 1a00 2200"
        " 2a00 3200 3800 4200 1200 1a020a00 1a00 2200"
    )
    assert protobuf.decode(bytes.fromhex(quoted.replace(" ", ""))) == {
        "kind": "Namespace",
        "apiVersion": "v1",
        "metadata": {"name": "pbtest"},
        "spec": {},
        "status": {},
    }


def test_zero_replicas_and_drain_grace_period_survive() -> None:
    assert (
        protobuf.decode(bytes.fromhex(CAPTURED["deployment-zero"]["body_hex"]))["spec"]["replicas"]
        == 0
    )
    options = protobuf.decode(bytes.fromhex(CAPTURED["drain-delete-options"]["body_hex"]))
    assert options == {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 5}


# -- a minimal encoder, to build bodies kubectl's generators do not produce ------------


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def num(field: int, value: int) -> bytes:
    return varint(field << 3) + varint(value)


def ld(field: int, value: bytes | str) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return varint(field << 3 | 2) + varint(len(data)) + data


def entry(field: int, key: str, value: bytes | str) -> bytes:
    return ld(field, ld(1, key) + ld(2, value))


def envelope(kind: str, raw: bytes, api_version: str = "v1", encoding: str = "") -> bytes:
    type_meta = ld(1, api_version) + ld(2, kind)
    return protobuf.MAGIC + ld(1, type_meta) + ld(2, raw) + ld(3, encoding) + ld(4, "")


def test_a_richer_deployment() -> None:
    meta = ld(1, "web") + ld(3, "prod") + num(7, 0) + ld(8, num(1, 1795356000))
    meta += entry(11, "app", "web") + entry(12, "note", "x")
    meta += ld(13, ld(5, "apps/v1") + ld(1, "ReplicaSet") + ld(3, "rs") + ld(4, "u1") + num(6, 0))
    meta += ld(14, "example.com/guard") + ld(17, b"\x0a\x03mgr")  # managedFields: skipped
    env = ld(7, ld(1, "POD") + ld(3, ld(1, ld(2, "metadata.name"))))
    env += ld(7, ld(1, "PW") + ld(3, ld(4, ld(1, ld(1, "creds")) + ld(2, "pw") + num(3, 0))))
    resources = ld(8, entry(1, "cpu", ld(1, "500m")) + entry(2, "memory", ld(1, "128Mi")))
    container = ld(1, "main") + ld(2, "busybox") + ld(4, "-c") + ld(4, "sleep 1") + env + resources
    container += ld(9, ld(1, "cfg") + ld(3, "/etc/cfg") + num(2, 1))
    volume = ld(1, ld(1, "cfg") + ld(2, ld(19, ld(1, ld(1, "settings")) + num(3, 0o644))))
    toleration = ld(22, ld(1, "node.kubernetes.io/not-ready") + ld(2, "Exists") + num(5, 0))
    pod_spec = (
        volume
        + ld(2, container)
        + ld(3, "Always")
        + num(4, 30)
        + toleration
        + ld(99, "future field")
    )
    template = ld(1, entry(11, "app", "web")) + ld(2, pod_spec)
    rolling = ld(2, ld(1, num(1, 1) + ld(3, "25%")) + ld(2, num(1, 0) + num(2, 2)))
    spec = (
        num(1, 2)
        + ld(2, entry(1, "app", "web"))
        + ld(3, template)
        + ld(4, ld(1, "RollingUpdate") + rolling)
    )
    spec += num(6, 0) + num(9, (1 << 64) - 1)  # revisionHistoryLimit 0 kept; a negative int32
    body = envelope("Deployment", ld(1, meta) + ld(2, spec) + ld(3, b""), "apps/v1")
    assert protobuf.decode(body) == {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": {
            "name": "web",
            "namespace": "prod",
            "creationTimestamp": "2026-11-22T14:00:00Z",
            "labels": {"app": "web"},
            "annotations": {"note": "x"},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "rs",
                    "uid": "u1",
                    "controller": False,
                }
            ],
            "finalizers": ["example.com/guard"],
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "volumes": [
                        {"name": "cfg", "configMap": {"name": "settings", "defaultMode": 420}}
                    ],
                    "containers": [
                        {
                            "name": "main",
                            "image": "busybox",
                            "args": ["-c", "sleep 1"],
                            "env": [
                                {
                                    "name": "POD",
                                    "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                                },
                                {
                                    "name": "PW",
                                    "valueFrom": {
                                        "secretKeyRef": {
                                            "name": "creds",
                                            "key": "pw",
                                            "optional": False,
                                        }
                                    },
                                },
                            ],
                            "resources": {
                                "limits": {"cpu": "500m"},
                                "requests": {"memory": "128Mi"},
                            },
                            "volumeMounts": [
                                {"name": "cfg", "mountPath": "/etc/cfg", "readOnly": True}
                            ],
                        }
                    ],
                    "restartPolicy": "Always",
                    "terminationGracePeriodSeconds": 30,
                    "tolerations": [
                        {
                            "key": "node.kubernetes.io/not-ready",
                            "operator": "Exists",
                            "tolerationSeconds": 0,
                        }
                    ],
                },
            },
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 2},
            },
            "revisionHistoryLimit": 0,
            "progressDeadlineSeconds": -1,
        },
        "status": {},
    }


def test_secret_string_data_and_delete_options_with_preconditions() -> None:
    raw = (
        ld(1, ld(1, "s"))
        + entry(2, "bin", b"\x00\xff")
        + entry(4, "plain", "text")
        + ld(3, "Opaque")
        + num(5, 1)
    )
    assert protobuf.decode(envelope("Secret", raw)) == {
        "kind": "Secret",
        "apiVersion": "v1",
        "metadata": {"name": "s"},
        "data": {"bin": "AP8="},
        "stringData": {"plain": "text"},
        "type": "Opaque",
        "immutable": True,
    }
    raw = num(1, 0) + ld(2, ld(1, "u1") + ld(2, "42")) + ld(4, "Foreground") + ld(5, "All")
    assert protobuf.decode(envelope("DeleteOptions", raw, "meta.k8s.io/v1")) == {
        "kind": "DeleteOptions",
        "apiVersion": "meta.k8s.io/v1",
        "gracePeriodSeconds": 0,
        "preconditions": {"uid": "u1", "resourceVersion": "42"},
        "propagationPolicy": "Foreground",
        "dryRun": ["All"],
    }


def test_fixed_width_and_unknown_fields_are_skipped() -> None:
    raw = (
        ld(1, ld(1, "cm"))
        + varint(9 << 3 | 1)
        + bytes(8)
        + varint(10 << 3 | 5)
        + bytes(4)
        + entry(2, "k", "v")
    )
    assert protobuf.decode(envelope("ConfigMap", raw)) == {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"name": "cm"},
        "data": {"k": "v"},
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"kind": "Namespace"}', "magic"),
        (
            envelope("Ingress", b"", "networking.k8s.io/v1"),
            "protobuf bodies for Ingress are not supported; use JSON",
        ),
        (envelope("Namespace", b"", encoding="gzip"), "content encoding 'gzip'"),
        (protobuf.MAGIC + b"\x0a\x05\x0a\x02v1", "truncated protobuf field"),
        (protobuf.MAGIC + b"\x08\xff", "truncated protobuf varint"),
        (protobuf.MAGIC + b"\x0b", "wire type 3"),
        (protobuf.MAGIC + b"\x00\x00", "field number 0"),
        (envelope("Namespace", num(1, 5)), "has wire type 0, expected 2"),
        (envelope("Namespace", ld(1, ld(1, b"\xff\xfe"))), "not valid UTF-8"),
    ],
)
def test_undecodable_bodies(body: bytes, message: str) -> None:
    with pytest.raises(ProtobufError, match=message.replace("(", r"\(")):
        protobuf.decode(body)
