"""Label selectors: the string syntax with Kubernetes' errors, LabelSelector dicts, printing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apiserver import selectors
from apiserver.selectors import (
    EVERYTHING,
    NOTHING,
    Requirement,
    label_selector_from_dict,
    parse_label_selector,
    selector_from_set,
)

KEY_ERROR = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
VALUE_ERROR = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
    "for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


@pytest.mark.parametrize(("text", "printed"), [
    ("a=b", "a=b"), ("a==b", "a==b"), ("a!=b", "a!=b"), ("a", "a"), ("!a", "!a"),
    ("x in (foo,,baz),y,z notin ()", "x in (,baz,foo),y,z notin ()"),
    (" app = web ,  tier in ( b , a ) ", "app=web,tier in (a,b)"),
    ("b=1,a=2", "a=2,b=1"), ("a=", "a="), ("a in (x,x)", "a in (x)"), ("in in (in)", "in in (in)"),
    ("example.com/role notin (db)", "example.com/role notin (db)"), ("a>1,b<2", "a>1,b<2"), ("", ""),
])
def test_parse_and_print(text: str, printed: str) -> None:
    selector = parse_label_selector(text)
    assert selector.to_string() == printed == str(selector)
    assert parse_label_selector(printed) == selector


@pytest.mark.parametrize(("text", "message"), [
    ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
    ("a in b", "unable to parse requirement: found 'b' expected: '('"),
    ("a in (x", "unable to parse requirement: found '', expected: ',' or ')'"),
    ("a in (x y)", "unable to parse requirement: found 'y', expected: ',' or ')'"),
    ("a,", "found '', expected: identifier after ','"),
    ("a=b c", "found 'c', expected: ',' or 'end of string'"),
    (",a", "found ',', expected: !, identifier, or 'end of string'"),
    ("!a=b", "found '=', expected: ',' or 'end of string'"),
    ("a=(", "unable to parse requirement: found '(', expected: identifier"),
    ("-k", f'unable to parse requirement: <nil>: Invalid value: "-k": {KEY_ERROR}'),
    ("a=-x", f'unable to parse requirement: values[0][a]: Invalid value: "-x": {VALUE_ERROR}'),
    ("a>x", 'unable to parse requirement: values[0]: Invalid value: "x": '
            "for 'Gt', 'Lt' operators, the value must be an integer"),
])
def test_syntax_errors_use_kubernetes_messages(text: str, message: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_label_selector(text)
    assert str(err.value) == message


def test_matching() -> None:
    labels = {"app": "web", "tier": "fe", "n": "5"}
    assert parse_label_selector("app=web").matches(labels)
    assert parse_label_selector("app==web,tier in (fe,be)").matches(labels)
    assert not parse_label_selector("app!=web").matches(labels)
    assert parse_label_selector("missing!=x,tier notin (be),!missing").matches(labels)
    assert not parse_label_selector("missing in (x)").matches(labels)
    assert parse_label_selector("app").matches(labels) and not parse_label_selector("!app").matches(labels)
    assert parse_label_selector("n>4,n<6").matches(labels) and not parse_label_selector("app>1").matches(labels)
    assert parse_label_selector("").matches(None) and EVERYTHING.empty()
    assert not NOTHING.matches({}) and not NOTHING.empty() and NOTHING.to_string() == ""


def test_from_label_selector_dict() -> None:
    selector = label_selector_from_dict({
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["fe", "be"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "env", "operator": "Exists"},
        ],
    })
    assert selector.to_string() == "app=web,!canary,env,tier in (be,fe)"
    assert selector.matches({"app": "web", "tier": "be", "env": "x"})
    assert not selector.matches({"app": "web", "tier": "be", "env": "x", "canary": "1"})
    assert label_selector_from_dict({"matchLabels": {"app": "web"}}).to_string() == "app=web"
    assert label_selector_from_dict({}) == EVERYTHING and label_selector_from_dict(None) == NOTHING
    assert selectors.label_selector_from_dict({"matchLabels": {}}).empty()
    assert selector.requires_exact_match("app") == "web" and selector.requires_exact_match("tier") is None


def test_from_dict_errors() -> None:
    with pytest.raises(ValueError, match='^"Foo" is not a valid label selector operator$'):
        label_selector_from_dict({"matchExpressions": [{"key": "a", "operator": "Foo"}]})
    with pytest.raises(ValueError) as err:
        label_selector_from_dict({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]})
    assert str(err.value) == "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty"
    with pytest.raises(ValueError) as err:
        label_selector_from_dict({"matchLabels": {"-a": "-b"}})
    assert str(err.value) == (
        f'[key: Invalid value: "-a": {KEY_ERROR}, values[0][-a]: Invalid value: "-b": {VALUE_ERROR}]')


def test_selector_from_set_sorts_by_key() -> None:
    assert selector_from_set({"b": "2", "a": "1"}).to_string() == "a=1,b=2"
    assert selector_from_set(None) == EVERYTHING


label_names = st.from_regex(r"[a-z0-9]([-a-z0-9_.]{0,8}[a-z0-9])?", fullmatch=True)
label_keys = st.builds(lambda prefix, name: f"{prefix}/{name}" if prefix else name,
                       st.none() | st.from_regex(r"[a-z]{1,5}(\.[a-z]{1,5})?", fullmatch=True), label_names)
label_values = st.just("") | label_names
spaces = st.sampled_from(["", " ", "  ", "\t"])


@st.composite
def requirement_texts(draw: st.DrawFn) -> str:
    key = draw(label_keys)
    op = draw(st.sampled_from(["=", "==", "!=", "in", "notin", "exists", "!"]))
    pad = draw(spaces)
    if op == "exists":
        return f"{pad}{key}{pad}"
    if op == "!":
        return f"{pad}!{pad}{key}"
    if op in ("in", "notin"):
        values = draw(st.lists(label_values, min_size=1, max_size=4))
        return f"{key} {op}{pad}({pad}{(pad + ',' + pad).join(values)}{pad})"
    return f"{key}{pad}{op}{pad}{draw(label_values)}"


@given(st.lists(requirement_texts(), max_size=5))
def test_parse_print_parse_is_stable(parts: list[str]) -> None:
    selector = parse_label_selector(",".join(parts))
    printed = selector.to_string()
    again = parse_label_selector(printed)
    assert again == selector and again.to_string() == printed


@given(st.lists(requirement_texts(), max_size=5), st.dictionaries(label_keys, label_names, max_size=4))
def test_string_and_dict_forms_agree_on_matching(parts: list[str], labels: dict[str, str]) -> None:
    selector = parse_label_selector(",".join(parts))
    printed = parse_label_selector(selector.to_string())
    assert selector.matches(labels) == printed.matches(labels)
    assert all(isinstance(r, Requirement) for r in selector.requirements)
