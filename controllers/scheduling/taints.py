"""Taints and tolerations: parsing and v1 Toleration.ToleratesTaint.

A toleration matches a taint when its effect is empty or equal, its key is empty or
equal, and either its operator is Exists or (Equal, the default) its value is equal. So
`{operator: Exists}` with no key and no effect tolerates every taint, and a NoExecute
toleration with tolerationSeconds still tolerates the taint for scheduling: the seconds
only bound how long a pod already running may stay (the taint manager's business).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

NO_SCHEDULE = "NoSchedule"
PREFER_NO_SCHEDULE = "PreferNoSchedule"
NO_EXECUTE = "NoExecute"
EXISTS = "Exists"
EQUAL = "Equal"

UNSCHEDULABLE_KEY = "node.kubernetes.io/unschedulable"
NOT_READY_KEY = "node.kubernetes.io/not-ready"
UNREACHABLE_KEY = "node.kubernetes.io/unreachable"


class Taint(NamedTuple):
    key: str
    value: str
    effect: str


class Toleration(NamedTuple):
    key: str
    operator: str
    value: str
    effect: str

    def tolerates(self, taint: Taint) -> bool:
        if self.effect and self.effect != taint.effect:
            return False
        if self.key and self.key != taint.key:
            return False
        if self.operator == EXISTS:
            return True
        return self.operator in ("", EQUAL) and self.value == taint.value


def parse_taints(raw: Any) -> tuple[Taint, ...]:
    """node.spec.taints in order (the first untolerated one names the failure)."""
    return tuple(
        Taint(str(t.get("key") or ""), str(t.get("value") or ""), str(t.get("effect") or ""))
        for t in _dicts(raw)
    )


def parse_tolerations(raw: Any) -> tuple[Toleration, ...]:
    return tuple(
        Toleration(str(t.get("key") or ""), str(t.get("operator") or ""), str(t.get("value") or ""), str(t.get("effect") or ""))
        for t in _dicts(raw)
    )


def tolerated(tolerations: Iterable[Toleration], taint: Taint) -> bool:
    """TolerationsTolerateTaint: any toleration matches."""
    return any(t.tolerates(taint) for t in tolerations)


def first_untolerated(taints: Iterable[Taint], tolerations: tuple[Toleration, ...], effects: tuple[str, ...]) -> Taint | None:
    """FindMatchingUntoleratedTaint restricted to `effects`: the first taint nobody tolerates."""
    for taint in taints:
        if taint.effect in effects and not tolerated(tolerations, taint):
            return taint
    return None


def count_untolerated(taints: Iterable[Taint], tolerations: tuple[Toleration, ...], effect: str) -> int:
    return sum(1 for taint in taints if taint.effect == effect and not tolerated(tolerations, taint))


def _dicts(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []
