"""Field selectors (`metadata.name=x,status.phase!=Failed`) and each kind's selectable fields.

Clients depend on a handful of these: delete/wait/rollout watch `metadata.name=X` (kr8s
sends it twice), drain lists `spec.nodeName=N`, describe lists events by
`involvedObject.*`. Parsing follows apimachinery's fields.ParseSelector (terms split
on unescaped commas, `\\,` `\\=` `\\\\` escapes, operators `!=`, `==`, `=`); checking the
field names follows each kind's field-label conversion, with its own error text, which
the apiserver returns as a 400 BadRequest. Values are read from the object the way the
registries' GetAttrs do (a missing field reads as "", numbers and booleans as text).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

_META = ("metadata.name", "metadata.namespace")
_KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "Pod": _META + (
        "spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
        "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName",
    ),
    "Event": _META + (
        "involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
        "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
        "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type",
    ),
    "Node": _META + ("spec.unschedulable",),
    "Secret": _META + ("type",),
    "Namespace": _META + ("status.phase",),
    "Job": _META + ("status.successful",),
    "ReplicaSet": _META + ("status.replicas",),
}
# Kubernetes' batch/v1 conversion words its refusal differently from core/v1's.
_UNSUPPORTED = {"Job": 'field label "{0}" not supported for batchv1.Job'}
_CORE_UNSUPPORTED = "field label not supported: {0}"
_META_UNSUPPORTED = '"{0}" is not a known field selector: only "metadata.name", "metadata.namespace"'


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    operator: str  # "=" (also for "==") or "!="
    value: str

    def __str__(self) -> str:
        return f"{self.field}{self.operator}{escape_value(self.value)}"


@dataclass(frozen=True)
class FieldSelector:
    """AND of terms; an empty selector matches everything."""

    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, fields: Mapping[str, str]) -> bool:
        for r in self.requirements:
            if (fields.get(r.field, "") == r.value) != (r.operator == "="):
                return False
        return True

    def empty(self) -> bool:
        return not self.requirements

    def requires_exact_match(self, field: str) -> str | None:
        for r in self.requirements:
            if r.field == field and r.operator == "=":
                return r.value
        return None

    def to_string(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    __str__ = to_string


def supported_fields(kind: str) -> tuple[str, ...]:
    return _KIND_FIELDS.get(kind, _META)


def parse_field_selector(text: str, kind: str | None = None) -> FieldSelector:
    """fields.ParseSelector, then (with `kind`) the kind's field-label check."""
    terms: list[FieldRequirement] = []
    for part in sorted(_split_terms(text)):
        if not part:
            continue
        split = _split_term(part)
        if split is None:
            raise ValueError(f"invalid selector: '{text}'; can't understand '{part}'")
        lhs, op, rhs = split
        terms.append(FieldRequirement(lhs, "!=" if op == "!=" else "=", _unescape(rhs)))
    if kind is not None:
        allowed = supported_fields(kind)
        for term in terms:
            if term.field not in allowed:
                template = _UNSUPPORTED.get(kind, _CORE_UNSUPPORTED if kind in _KIND_FIELDS else _META_UNSUPPORTED)
                raise ValueError(template.format(term.field))
    return FieldSelector(tuple(terms))


def escape_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def object_fields(obj: Mapping[str, object], kind: str | None = None) -> dict[str, str]:
    """The selectable fields of one object, as GetAttrs/ToSelectableFields build them."""
    kind = kind or str(obj.get("kind", ""))
    meta = _dict(obj.get("metadata"))
    fields = {"metadata.name": _text(meta.get("name"))}
    if kind not in ("Namespace", "Node"):
        fields["metadata.namespace"] = _text(meta.get("namespace"))
    spec, status = _dict(obj.get("spec")), _dict(obj.get("status"))
    if kind == "Pod":
        pod_ips = status.get("podIPs")
        first_ip = _dict(pod_ips[0]).get("ip") if isinstance(pod_ips, list) and pod_ips else None
        fields.update({
            "spec.nodeName": _text(spec.get("nodeName")),
            "spec.restartPolicy": _text(spec.get("restartPolicy")),
            "spec.schedulerName": _text(spec.get("schedulerName")),
            "spec.serviceAccountName": _text(spec.get("serviceAccountName")),
            "spec.hostNetwork": _text(bool(spec.get("hostNetwork"))),
            "status.phase": _text(status.get("phase")),
            "status.podIP": _text(first_ip if first_ip else status.get("podIP")),
            "status.nominatedNodeName": _text(status.get("nominatedNodeName")),
        })
    elif kind == "Event":
        involved = _dict(obj.get("involvedObject"))
        for key in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath"):
            fields[f"involvedObject.{key}"] = _text(involved.get(key))
        source = _text(_dict(obj.get("source")).get("component"))
        fields.update({
            "reason": _text(obj.get("reason")),
            "reportingComponent": _text(obj.get("reportingComponent")),
            "source": source or _text(obj.get("reportingComponent")),
            "type": _text(obj.get("type")),
        })
    elif kind == "Node":
        fields["spec.unschedulable"] = _text(bool(spec.get("unschedulable")))
    elif kind == "Secret":
        fields["type"] = _text(obj.get("type"))
    elif kind == "Namespace":
        fields["status.phase"] = _text(status.get("phase"))
    elif kind == "Job":
        fields["status.successful"] = _text(status.get("succeeded") or 0)
    elif kind == "ReplicaSet":
        fields["status.replicas"] = _text(status.get("replicas") or 0)
    return fields


def field_matches(obj: Mapping[str, object], selector: FieldSelector | str, kind: str | None = None) -> bool:
    """Does `obj` satisfy the selector? A string selector is parsed (and checked) first."""
    kind = kind or str(obj.get("kind", ""))
    if isinstance(selector, str):
        selector = parse_field_selector(selector, kind or None)
    return selector.matches(object_fields(obj, kind))


def _split_terms(text: str) -> list[str]:
    if not text:
        return []
    terms, start, in_slash = [], 0, False
    for i, ch in enumerate(text):
        if in_slash:
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    for i in range(len(term)):
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op):]
    return None


def _unescape(value: str) -> str:
    if not any(c in value for c in "\\,="):
        return value
    out, in_slash = [], False
    for ch in value:
        if in_slash:
            if ch not in "\\,=":
                raise ValueError(f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch in ",=":
            raise ValueError(f"invalid field selector: unescaped character in value: {ord(ch)}")
        else:
            out.append(ch)
    if in_slash:
        raise ValueError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _dict(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
