"""Object metadata validation and the shared wording (names, labels, annotations, updates)."""

from __future__ import annotations

from apiserver import validation
from apiserver import validation_errors as fe

SUBDOMAIN = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and "
    "end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035 = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)


def lines(causes: list[dict]) -> list[str]:
    """Causes as kubectl prints them: `<field>: <message>`."""
    return [f"{c['field']}: {c['message']}" for c in causes]


def config_map(**meta: object) -> dict:
    return {"metadata": {"name": "cfg", "namespace": "default", **meta}}


def test_invalid_name_matches_requirements_text() -> None:
    causes = validation.validate("ConfigMap", config_map(name="Invalid_Name"))
    assert causes == [{"reason": "FieldValueInvalid", "field": "metadata.name",
                       "message": f'Invalid value: "Invalid_Name": {SUBDOMAIN}'}]


def test_name_rules_per_kind() -> None:
    assert validation.name_errors("Namespace", "a.b") == ["must not contain dots"]
    assert validation.name_errors("Namespace", "Bad") == [LABEL]
    assert validation.name_errors("Service", "1web") == [DNS1035]
    assert validation.name_errors("Pod", "web.v1") == []
    assert validation.name_errors("ClusterRole", "system:controller:x") == []
    assert validation.name_errors("Role", "a/b") == ["may not contain '/'"]
    assert validation.name_errors("Pod", "x" * 254)[0] == "must be no more than 253 characters"
    assert validation.invalid_name_message("Pod", "ok") is None
    assert validation.invalid_name_message("Namespace", "Bad") == f'metadata.name: Invalid value: "Bad": {LABEL}'
    assert validation.url_name_errors("..") == ["may not be '..'"]
    assert validation.url_name_errors("a%2Fb/c") == ["may not contain '/'", "may not contain '%'"]


def test_generate_name_stands_in_for_name() -> None:
    assert validation.validate("ConfigMap", {"metadata": {"generateName": "cfg-", "namespace": "default"}}) == []
    assert lines(validation.validate("ConfigMap", {"metadata": {"namespace": "default"}})) == [
        "metadata.name: Required value: name or generateName is required"]
    assert lines(validation.validate("ConfigMap", {"metadata": {"generateName": "Cfg-", "namespace": "default"}})) == [
        f'metadata.generateName: Invalid value: "Cfg-": {SUBDOMAIN}']


def test_namespace_rules_follow_scope() -> None:
    assert lines(validation.validate("ConfigMap", {"metadata": {"name": "c"}})) == ["metadata.namespace: Required value"]
    assert lines(validation.validate("ConfigMap", config_map(namespace="Bad_NS"))) == [
        f'metadata.namespace: Invalid value: "Bad_NS": {LABEL}']
    assert lines(validation.validate("Node", {"metadata": {"name": "n1", "namespace": "default"}})) == [
        "metadata.namespace: Forbidden: not allowed on this type"]
    assert validation.is_namespaced("Pod") and not validation.is_namespaced("ClusterRoleBinding")


def test_labels_and_annotations() -> None:
    causes = validation.validate("ConfigMap", config_map(labels={"-bad": "ok", "good": "-bad"}))
    assert lines(causes) == [
        'metadata.labels: Invalid value: "-bad": name part must consist of alphanumeric characters, \'-\', \'_\' or '
        "'.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', "
        "regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        'metadata.labels: Invalid value: "-bad": a valid label must be an empty string or consist of alphanumeric '
        "characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
        "'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
    ]
    assert validation.validate("ConfigMap", config_map(annotations={"Example.COM/Mixed-Case": "x"})) == []
    assert lines(validation.validate("ConfigMap", config_map(labels={"a/b/c": "x"})))[0].startswith(
        'metadata.labels: Invalid value: "a/b/c": a valid label key must consist of')
    big = {"k": "x" * (256 * 1024)}
    assert lines(validation.validate("ConfigMap", config_map(annotations=big))) == [
        "metadata.annotations: Too long: must have at most 262144 bytes"]


def test_owner_references_and_finalizers() -> None:
    refs = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "a", "uid": "1", "controller": True},
            {"apiVersion": "apps/", "kind": "", "name": "b", "uid": "2", "controller": True}]
    assert lines(validation.validate("ConfigMap", config_map(ownerReferences=refs))) == [
        'metadata.ownerReferences.apiVersion: Invalid value: "apps/": version must not be empty',
        'metadata.ownerReferences.kind: Invalid value: "": must not be empty',
        'metadata.ownerReferences: Invalid value: []v1.OwnerReference{...}: Only one reference can have Controller '
        'set to true. Found "true" in references for ReplicaSet/a and /b',
    ]
    assert lines(validation.validate("ConfigMap", config_map(finalizers=["kubernetes", "custom", "example.com/x"]))) == [
        'metadata.finalizers[1]: Invalid value: "custom": name is neither a standard finalizer name nor is it '
        "fully qualified"]


def test_update_keeps_identity() -> None:
    old = config_map(uid="u1", generation=3)
    assert validation.validate("ConfigMap", config_map(generation=3), old) == []  # uid omitted: unchanged
    causes = validation.validate("ConfigMap", config_map(name="other", uid="u2", generation=2), old)
    assert lines(causes) == [
        'metadata.generation: Invalid value: 2: must not be decremented',
        'metadata.name: Invalid value: "other": field is immutable',
        'metadata.uid: Invalid value: "u2": field is immutable',
    ]
    deleting = config_map(deletionTimestamp="2026-01-01T00:00:00Z", finalizers=["kubernetes"])
    assert lines(validation.validate("ConfigMap", config_map(finalizers=["kubernetes", "orphan"]), deleting)) == [
        'metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new '
        'finalizers []string{"orphan"}']


def test_unknown_kinds_get_metadata_validation_only() -> None:
    assert validation.validate("Widget", config_map()) == []
    assert lines(validation.validate("Widget", config_map(name="A"))) == [f'metadata.name: Invalid value: "A": {SUBDOMAIN}']


def test_go_value_printing() -> None:
    assert fe.go_quote('a"b\\c\n\x00é\u00a0') == '"a\\"b\\\\c\\n\\x00é\\u00a0"'
    assert fe.go_value(None) == "null" and fe.go_value(True) == "true" and fe.go_value(80) == "80"
    assert fe.go_value(1.5) == "1.5" and fe.go_value(2.0) == "2" and fe.go_value(1e21) == "1e+21"
    assert fe.go_value({"b": "2", "a": "1"}) == 'map[string]string{"a":"1", "b":"2"}'
    assert fe.go_string_map(None) == "map[string]string(nil)"
    assert fe.not_supported("spec.x", "y", ("A", "B"))["message"] == 'Unsupported value: "y": supported values: "A", "B"'
    assert fe.aggregate(["a", "b", "a"]) == "[a, b]" and fe.aggregate(["a", "a"]) == "a"
