"""Node affinity: nodeSelector, required and preferred nodeSelectorTerms (component-helpers).

Terms are ORed, the requirements inside a term ANDed; a term with neither matchExpressions
nor matchFields matches nothing. matchExpressions are label requirements (In, NotIn,
Exists, DoesNotExist, Gt, Lt; NotIn and DoesNotExist match a node without the label; Gt
and Lt compare integers and never match a label that is not one). matchFields support only
`metadata.name` with In or NotIn. A term that does not parse (unknown operator or field)
is dropped, as Go drops it "for backwards compatibility", so it never matches.

A required affinity whose every term pins `metadata.name In [...]` also narrows the nodes
kube-scheduler looks at (NodeAffinity's PreFilter): `prefilter_node_names`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from apiserver import selectors
from apiserver.selectors import Requirement

NODE_NAME_FIELD = "metadata.name"
_OPERATORS = {
    "In": selectors.IN,
    "NotIn": selectors.NOT_IN,
    "Exists": selectors.EXISTS,
    "DoesNotExist": selectors.DOES_NOT_EXIST,
    "Gt": selectors.GREATER_THAN,
    "Lt": selectors.LESS_THAN,
}
_FIELD_OPERATORS = {"In": selectors.IN, "NotIn": selectors.NOT_IN}


class Term(NamedTuple):
    """One nodeSelectorTerm: label requirements and node-name requirements, ANDed."""

    labels: tuple[Requirement, ...]
    fields: tuple[Requirement, ...]

    def matches(self, node_labels: Mapping[str, str], node_name: str) -> bool:
        if not self.labels and not self.fields:
            return False
        if not all(r.matches(node_labels) for r in self.labels):
            return False
        return all(r.matches({NODE_NAME_FIELD: node_name}) for r in self.fields)


def parse_terms(raw: Any) -> tuple[Term, ...]:
    """nodeSelectorTerms without the ones that fail to parse."""
    terms: list[Term] = []
    for item in raw if isinstance(raw, list) else []:
        term = _parse_term(item)
        if term is not None:
            terms.append(term)
    return tuple(terms)


def parse_preferred(raw: Any) -> tuple[tuple[int, Term], ...]:
    """preferredDuringScheduling terms as (weight, term); weight 0 and empty terms skipped."""
    parsed: list[tuple[int, Term]] = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, Mapping):
            continue
        weight = item.get("weight")
        term = _parse_term(item.get("preference"))
        if isinstance(weight, int) and weight and term is not None and (term.labels or term.fields):
            parsed.append((weight, term))
    return tuple(parsed)


def required_terms(spec: Mapping[str, Any]) -> tuple[Term, ...] | None:
    """The pod's required nodeSelectorTerms, or None when it has no required node affinity."""
    node_affinity = _node_affinity(spec)
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    if not isinstance(required, Mapping):
        return None
    return parse_terms(required.get("nodeSelectorTerms"))


def preferred_terms(spec: Mapping[str, Any]) -> tuple[tuple[int, Term], ...]:
    return parse_preferred(_node_affinity(spec).get("preferredDuringSchedulingIgnoredDuringExecution"))


def matches_required(
    node_selector: selectors.LabelSelector | None,
    terms: tuple[Term, ...] | None,
    node_labels: Mapping[str, str],
    node_name: str,
) -> bool:
    """RequiredNodeAffinity.Match: the nodeSelector map AND any required term."""
    if node_selector is not None and not node_selector.matches(node_labels):
        return False
    return terms is None or any(t.matches(node_labels, node_name) for t in terms)


def preferred_score(preferred: tuple[tuple[int, Term], ...], node_labels: Mapping[str, str], node_name: str) -> int:
    """PreferredSchedulingTerms.Score: the sum of the weights of the matching terms."""
    return sum(weight for weight, term in preferred if term.matches(node_labels, node_name))


def prefilter_node_names(spec: Mapping[str, Any]) -> frozenset[str] | None:
    """NodeAffinity.PreFilter: the only node names worth filtering, or None for all nodes.

    An empty set means every term pins names that exclude each other ("pod affinity terms
    conflict"). Unlike `parse_terms`, this reads the raw terms, as Go does.
    """
    required = _node_affinity(spec).get("requiredDuringSchedulingIgnoredDuringExecution")
    if not isinstance(required, Mapping):
        return None
    raw_terms = required.get("nodeSelectorTerms")
    if not isinstance(raw_terms, list) or not raw_terms:
        return None
    names: set[str] = set()
    for term in raw_terms:
        term_names: set[str] | None = None
        for field in _list(term.get("matchFields") if isinstance(term, Mapping) else None):
            if isinstance(field, Mapping) and field.get("key") == NODE_NAME_FIELD and field.get("operator") == "In":
                values = {str(v) for v in _list(field.get("values"))}
                term_names = values if term_names is None else term_names & values
        if term_names is None:
            return None  # this term does not pin names; terms are ORed, so all nodes qualify
        names |= term_names
    return frozenset(names)


def _parse_term(raw: Any) -> Term | None:
    if not isinstance(raw, Mapping):
        return None
    labels: list[Requirement] = []
    for expr in _list(raw.get("matchExpressions")):
        operator = _OPERATORS.get(str(expr.get("operator"))) if isinstance(expr, Mapping) else None
        if operator is None:
            return None
        labels.append(Requirement(str(expr.get("key") or ""), operator, tuple(str(v) for v in _list(expr.get("values")))))
    fields: list[Requirement] = []
    for expr in _list(raw.get("matchFields")):
        operator = _FIELD_OPERATORS.get(str(expr.get("operator"))) if isinstance(expr, Mapping) else None
        if operator is None or expr.get("key") != NODE_NAME_FIELD:
            return None
        fields.append(Requirement(NODE_NAME_FIELD, operator, tuple(str(v) for v in _list(expr.get("values")))))
    return Term(tuple(labels), tuple(fields))


def _node_affinity(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    affinity = spec.get("affinity")
    node_affinity = affinity.get("nodeAffinity") if isinstance(affinity, Mapping) else None
    return node_affinity if isinstance(node_affinity, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
