"""Label selectors: the string syntax, `matchLabels`/`matchExpressions`, matching, printing.

A port of apimachinery's labels.Parse and metav1.LabelSelectorAsSelector, so that a
`?labelSelector=` a client sends is accepted or refused with the same words a real
apiserver uses ("unable to parse requirement: ..."), and so that `to_string()` prints
the canonical form kubectl reads back from Scale.status.selector ("app=web").

Grammar (whitespace between tokens is ignored):

    selector    ::= requirement ("," requirement)*
    requirement ::= ["!"] KEY [ ("in" | "notin") "(" VALUES ")" | ("=" | "==" | "!=") VALUE ]

Requirements are kept sorted by key; set values are de-duplicated and sorted, as Go's
parser does. Field selectors live in apiserver.field_selectors and are re-exported here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from apiserver import field_selectors, validation_errors

EQUALS = "="
DOUBLE_EQUALS = "=="
NOT_EQUALS = "!="
IN = "in"
NOT_IN = "notin"
EXISTS = "exists"
DOES_NOT_EXIST = "!"
GREATER_THAN = "gt"
LESS_THAN = "lt"
_BINARY_OPERATORS = (IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN)
_INT_RE = re.compile(r"[+-]?[0-9]{1,20}")
_DICT_OPERATORS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}

# Re-exported so callers have one module for both kinds of selector.
FieldSelector = field_selectors.FieldSelector
parse_field_selector = field_selectors.parse_field_selector
field_matches = field_selectors.field_matches
object_fields = field_selectors.object_fields
supported_fields = field_selectors.supported_fields


@dataclass(frozen=True)
class Requirement:
    """One `key op values` term; `values` is empty for exists / does-not-exist."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator in (IN, EQUALS, DOUBLE_EQUALS):
            return present and labels[self.key] in self.values
        if self.operator in (NOT_IN, NOT_EQUALS):
            return not present or labels[self.key] not in self.values
        if self.operator == EXISTS:
            return present
        if self.operator == DOES_NOT_EXIST:
            return not present
        if not present or len(self.values) != 1:
            return False
        try:
            have, want = _go_int(labels[self.key]), _go_int(self.values[0])
        except ValueError:
            return False
        return have > want if self.operator == GREATER_THAN else have < want

    def __str__(self) -> str:
        if self.operator == EXISTS:
            return self.key
        if self.operator == DOES_NOT_EXIST:
            return "!" + self.key
        values = self.values[0] if len(self.values) == 1 else ",".join(sorted(self.values))
        if self.operator in (IN, NOT_IN):
            return f"{self.key} {self.operator} ({values})"
        symbol = {GREATER_THAN: ">", LESS_THAN: "<"}.get(self.operator, self.operator)
        return f"{self.key}{symbol}{values}"


@dataclass(frozen=True)
class LabelSelector:
    """AND of requirements. `nothing` is the selector of a nil LabelSelector: matches none."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        have = labels or {}
        return all(r.matches(have) for r in self.requirements)

    def empty(self) -> bool:
        """True when it selects everything (Go's Selector.Empty)."""
        return not self.nothing and not self.requirements

    def requires_exact_match(self, key: str) -> str | None:
        for r in self.requirements:
            if r.key == key:
                exact = r.operator in (EQUALS, DOUBLE_EQUALS, IN) and len(r.values) == 1
                return r.values[0] if exact else None
        return None

    def to_string(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    __str__ = to_string


EVERYTHING = LabelSelector()
NOTHING = LabelSelector(nothing=True)


def parse_label_selector(text: str) -> LabelSelector:
    """labels.Parse; ValueError carries Kubernetes' message."""
    return _sorted(_Parser(text).parse())


def label_selector_from_dict(spec: Mapping[str, object] | None) -> LabelSelector:
    """metav1.LabelSelectorAsSelector: None selects nothing, {} selects everything."""
    if spec is None:
        return NOTHING
    match_labels = spec.get("matchLabels") or {}
    expressions = spec.get("matchExpressions") or []
    if not isinstance(match_labels, Mapping) or not isinstance(expressions, list):
        raise ValueError("invalid label selector")
    reqs = [_new_requirement(str(k), EQUALS, [str(v)]) for k, v in match_labels.items()]
    for expr in expressions:
        expr = expr if isinstance(expr, Mapping) else {}
        operator = _DICT_OPERATORS.get(str(expr.get("operator", "")))
        if operator is None:
            raise ValueError(f"{validation_errors.go_quote(str(expr.get('operator', '')))} is not a valid label selector operator")
        values = [str(v) for v in expr.get("values") or []]
        reqs.append(_new_requirement(str(expr.get("key", "")), operator, values))
    return _sorted(reqs)


def selector_from_set(labels: Mapping[str, str] | None) -> LabelSelector:
    """labels.SelectorFromSet: key=value for every pair, no validation."""
    return _sorted(Requirement(k, EQUALS, (v,)) for k, v in (labels or {}).items())


def _sorted(reqs: Iterable[Requirement]) -> LabelSelector:
    return LabelSelector(tuple(sorted(reqs, key=lambda r: r.key)))


def _go_int(text: str) -> int:
    """strconv.ParseInt(text, 10, 64)."""
    if not _INT_RE.fullmatch(text):
        raise ValueError(text)
    value = int(text)
    if not -(2**63) <= value < 2**63:
        raise ValueError(text)
    return value


def _new_requirement(key: str, operator: str, values: list[str]) -> Requirement:
    """labels.NewRequirement: validate, and fail with the aggregate of field errors."""
    errs: list[str] = []
    shown = validation_errors.go_string_slice(values or None)  # Go passes a nil slice when empty
    key_msgs = validation_errors.label_key_errors(key)
    if key_msgs:
        errs.append(validation_errors.invalid_text("key", key, "; ".join(key_msgs)))
    if operator in (IN, NOT_IN) and not values:
        errs.append(validation_errors.invalid_text("values", shown, "for 'in', 'notin' operators, values set can't be empty"))
    if operator in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS) and len(values) != 1:
        errs.append(validation_errors.invalid_text("values", shown, "exact-match compatibility requires one single value"))
    if operator in (EXISTS, DOES_NOT_EXIST) and values:
        errs.append(validation_errors.invalid_text("values", shown, "values set must be empty for exists and does not exist"))
    if operator in (GREATER_THAN, LESS_THAN):
        if len(values) != 1:
            errs.append(validation_errors.invalid_text("values", shown, "for 'Gt', 'Lt' operators, exactly one value is required"))
        for i, value in enumerate(values):
            try:
                _go_int(value)
            except ValueError:
                errs.append(validation_errors.invalid_text(f"values[{i}]", value, "for 'Gt', 'Lt' operators, the value must be an integer"))
    for i, value in enumerate(values):
        msgs = validation_errors.label_value_errors(value)
        if msgs:
            errs.append(validation_errors.invalid_text(f"values[{i}][{key}]", value, "; ".join(msgs)))
    if errs:
        raise ValueError(validation_errors.aggregate(errs))
    return Requirement(key, operator, tuple(values))


# --- lexer and parser (labels/selector.go) ------------------------------------------

_ERROR, _END, _CLOSE, _COMMA, _NOT, _DOUBLE_EQ, _EQ, _GT, _IDENT, _IN, _LT, _NEQ, _NOTIN, _OPEN = range(14)
_TOKENS = {
    ")": _CLOSE, ",": _COMMA, "!": _NOT, "==": _DOUBLE_EQ, "=": _EQ, ">": _GT, "in": _IN,
    "<": _LT, "!=": _NEQ, "notin": _NOTIN, "(": _OPEN,
}
_SPECIAL = frozenset("=!(),><")
_WHITESPACE = frozenset(" \t\r\n")
_OPERATOR_TOKENS = {
    _IN: IN, _EQ: EQUALS, _DOUBLE_EQ: DOUBLE_EQUALS, _GT: GREATER_THAN, _LT: LESS_THAN,
    _NOTIN: NOT_IN, _NEQ: NOT_EQUALS,
}


def _lex(text: str) -> list[tuple[int, str]]:
    items: list[tuple[int, str]] = []
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos] in _WHITESPACE:
            pos += 1
        if pos >= end:
            items.append((_END, ""))
            return items
        if text[pos] in _SPECIAL:
            buffer, last = "", None
            while pos < end and text[pos] in _SPECIAL:
                if buffer + text[pos] in _TOKENS:
                    buffer += text[pos]
                    last = (_TOKENS[buffer], buffer)
                elif last is not None:
                    break
                else:
                    buffer += text[pos]
                pos += 1
            items.append(last or (_ERROR, f"error expected: keyword found '{buffer}'"))
            continue
        start = pos
        while pos < end and text[pos] not in _SPECIAL and text[pos] not in _WHITESPACE:
            pos += 1
        word = text[start:pos]
        items.append((_TOKENS.get(word, _IDENT), word))


class _Parser:
    """Recursive descent over the scanned tokens, with Go's error messages."""

    def __init__(self, text: str) -> None:
        self.items = _lex(text)
        self.pos = 0

    def _peek(self, values: bool = True) -> tuple[int, str]:
        tok, lit = self.items[self.pos]
        return (_IDENT if values and tok in (_IN, _NOTIN) else tok), lit

    def _next(self, values: bool = True) -> tuple[int, str]:
        item = self._peek(values)
        self.pos += 1
        return item

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            tok, lit = self._peek()
            if tok == _END:
                return reqs
            if tok not in (_IDENT, _NOT):
                raise ValueError(f"found '{lit}', expected: !, identifier, or 'end of string'")
            try:
                reqs.append(self._requirement())
            except ValueError as exc:
                raise ValueError(f"unable to parse requirement: {exc}") from None
            tok, lit = self._next()
            if tok == _END:
                return reqs
            if tok != _COMMA:
                raise ValueError(f"found '{lit}', expected: ',' or 'end of string'")
            tok, lit = self._peek()
            if tok not in (_IDENT, _NOT):
                raise ValueError(f"found '{lit}', expected: identifier after ','")

    def _requirement(self) -> Requirement:
        operator = None
        tok, key = self._next()
        if tok == _NOT:
            operator = DOES_NOT_EXIST
            tok, key = self._next()
        if tok != _IDENT:
            raise ValueError(f"found '{key}', expected: identifier")
        key_msgs = validation_errors.label_key_errors(key)
        if key_msgs:
            raise ValueError(validation_errors.invalid_text("<nil>", key, "; ".join(key_msgs)))
        if self._peek()[0] in (_END, _COMMA):
            return _new_requirement(key, operator or EXISTS, [])
        if operator == DOES_NOT_EXIST:
            return _new_requirement(key, operator, [])
        tok, lit = self._next(values=False)
        if tok not in _OPERATOR_TOKENS:
            raise ValueError(f"found '{lit}', expected: {', '.join(_BINARY_OPERATORS)}")
        operator = _OPERATOR_TOKENS[tok]
        values = self._set_values() if operator in (IN, NOT_IN) else self._exact_value()
        return _new_requirement(key, operator, sorted(values))

    def _set_values(self) -> set[str]:
        tok, lit = self._next()
        if tok != _OPEN:
            raise ValueError(f"found '{lit}' expected: '('")
        tok, lit = self._peek()
        if tok == _CLOSE:
            self._next()
            return {""}
        if tok not in (_IDENT, _COMMA):
            raise ValueError(f"found '{lit}', expected: ',', ')' or identifier")
        values = self._identifiers()
        if self._next()[0] != _CLOSE:
            raise ValueError(f"found '{lit}', expected: ')'")
        return values

    def _identifiers(self) -> set[str]:
        values: set[str] = set()
        while True:
            tok, lit = self._next()
            if tok == _IDENT:
                values.add(lit)
                tok2, lit2 = self._peek()
                if tok2 == _CLOSE:
                    return values
                if tok2 != _COMMA:
                    raise ValueError(f"found '{lit2}', expected: ',' or ')'")
            elif tok == _COMMA:
                if not values:
                    values.add("")
                tok2 = self._peek()[0]
                if tok2 in (_CLOSE, _COMMA):
                    values.add("")
                if tok2 == _CLOSE:
                    return values
            else:
                raise ValueError(f"found '{lit}', expected: ',', or identifier")

    def _exact_value(self) -> set[str]:
        if self._peek()[0] in (_END, _COMMA):
            return {""}
        tok, lit = self._next()
        if tok == _IDENT:
            return {lit}
        raise ValueError(f"found '{lit}', expected: identifier")
