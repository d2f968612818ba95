"""Field selectors: parsing, escapes, each kind's selectable fields and their values."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apiserver import selectors
from apiserver.field_selectors import (
    FieldRequirement,
    escape_value,
    field_matches,
    object_fields,
    parse_field_selector,
)

POD = {
    "kind": "Pod",
    "metadata": {"name": "web-1", "namespace": "shop"},
    "spec": {"nodeName": "node-1", "restartPolicy": "Always", "schedulerName": "default-scheduler",
             "serviceAccountName": "default"},
    "status": {"phase": "Running", "podIP": "10.0.0.7", "podIPs": [{"ip": "10.0.0.7"}]},
}
EVENT = {
    "kind": "Event", "metadata": {"name": "web-1.17a", "namespace": "shop"},
    "involvedObject": {"kind": "Pod", "namespace": "shop", "name": "web-1", "uid": "u-1"},
    "reason": "Started", "type": "Normal", "source": {"component": "kubelet"},
}


def test_parse_forms_and_printing() -> None:
    selector = parse_field_selector("status.phase!=Failed,metadata.name==x,spec.nodeName=n")
    assert selector.requirements == (
        FieldRequirement("metadata.name", "=", "x"),
        FieldRequirement("spec.nodeName", "=", "n"),
        FieldRequirement("status.phase", "!=", "Failed"),
    )
    assert selector.to_string() == "metadata.name=x,spec.nodeName=n,status.phase!=Failed"
    assert parse_field_selector("").empty() and parse_field_selector(",,").empty()
    assert parse_field_selector("a=").requirements == (FieldRequirement("a", "=", ""),)
    assert parse_field_selector(r"a=x\,y\=z\\").requirements[0].value == "x,y=z\\"
    assert str(parse_field_selector(r"a=x\,y")) == r"a=x\,y"


def test_duplicates_are_allowed_as_kr8s_sends_them() -> None:
    selector = parse_field_selector("metadata.name=web-1,metadata.name=web-1", "Pod")
    assert len(selector.requirements) == 2 and selector.matches(object_fields(POD))
    assert selector.requires_exact_match("metadata.name") == "web-1"


@pytest.mark.parametrize(("text", "message"), [
    ("a", "invalid selector: 'a'; can't understand 'a'"),
    ("a=b,c", "invalid selector: 'a=b,c'; can't understand 'c'"),
    ("a=b=c", "invalid field selector: unescaped character in value: 61"),
    (r"a=b\c", r"invalid field selector: invalid escape sequence: \c"),
    ("a=b\\", "invalid field selector: invalid escape sequence: \\"),
])
def test_syntax_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_field_selector(text)
    assert str(err.value) == message


@pytest.mark.parametrize(("kind", "text", "message"), [
    ("Pod", "spec.foo=1", "field label not supported: spec.foo"),
    ("Event", "involvedObject.bad=1", "field label not supported: involvedObject.bad"),
    ("Job", "status.failed=1", 'field label "status.failed" not supported for batchv1.Job'),
    ("Deployment", "spec.replicas=1",
     '"spec.replicas" is not a known field selector: only "metadata.name", "metadata.namespace"'),
])
def test_unsupported_fields_per_kind(kind: str, text: str, message: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_field_selector(text, kind)
    assert str(err.value) == message


def test_every_listed_field_is_accepted() -> None:
    for kind in ("Pod", "Event", "Node", "Secret", "Namespace", "Job", "ReplicaSet", "ConfigMap"):
        for field in selectors.supported_fields(kind):
            parse_field_selector(f"{field}=x", kind)


def test_pod_fields_and_matching() -> None:
    fields = object_fields(POD)
    assert fields["spec.nodeName"] == "node-1" and fields["status.podIP"] == "10.0.0.7"
    assert fields["spec.hostNetwork"] == "false" and fields["status.nominatedNodeName"] == ""
    assert field_matches(POD, "spec.nodeName=node-1")
    assert field_matches(POD, "status.phase!=Failed,status.phase!=Succeeded")
    assert not field_matches(POD, "metadata.namespace=other")
    assert field_matches(POD, "status.nominatedNodeName=")  # a missing field reads as ""


def test_event_node_secret_namespace_job_replicaset_fields() -> None:
    assert field_matches(EVENT, "involvedObject.name=web-1,involvedObject.namespace=shop,involvedObject.uid=u-1")
    assert field_matches(EVENT, "source=kubelet,reason=Started,type=Normal,involvedObject.kind=Pod")
    node = {"kind": "Node", "metadata": {"name": "n1"}, "spec": {"unschedulable": True}}
    assert field_matches(node, "spec.unschedulable=true") and field_matches(node, "metadata.name=n1")
    assert object_fields({"kind": "Node", "metadata": {"name": "n1"}})["spec.unschedulable"] == "false"
    assert field_matches({"kind": "Secret", "metadata": {"name": "s"}, "type": "Opaque"}, "type=Opaque")
    assert field_matches({"kind": "Namespace", "metadata": {"name": "a"}, "status": {"phase": "Active"}},
                         "status.phase=Active")
    assert field_matches({"kind": "Job", "metadata": {"name": "j"}, "status": {"succeeded": 1}}, "status.successful=1")
    assert field_matches({"kind": "Job", "metadata": {"name": "j"}}, "status.successful=0")
    assert field_matches({"kind": "ReplicaSet", "metadata": {"name": "r"}, "status": {"replicas": 3}},
                         "status.replicas=3")


def test_kind_may_come_from_the_argument() -> None:
    bare = {k: v for k, v in POD.items() if k != "kind"}
    assert field_matches(bare, parse_field_selector("spec.nodeName=node-1"), "Pod")
    with pytest.raises(ValueError):
        field_matches(bare, "spec.bogus=1", "Pod")


values = st.text(alphabet="abc,=\\ .-", max_size=8)


@given(st.lists(st.tuples(st.sampled_from(["metadata.name", "spec.nodeName", "status.phase"]),
                          st.sampled_from(["=", "==", "!="]), values), max_size=4))
def test_escaped_values_round_trip(terms: list[tuple[str, str, str]]) -> None:
    text = ",".join(f"{f}{op}{escape_value(v)}" for f, op, v in terms)
    selector = parse_field_selector(text, "Pod")
    again = parse_field_selector(selector.to_string(), "Pod")
    assert sorted(map(str, again.requirements)) == sorted(map(str, selector.requirements))  # Go sorts raw terms
    assert sorted(r.value for r in selector.requirements) == sorted(v for _, _, v in terms)
