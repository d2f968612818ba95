"""The record of a drill's workload: one `Op` per client request, as Jepsen records them.

Every request a drill client makes is recorded once, when its outcome is known, with the
monotonic time it was sent (`invoke`) and the time its answer arrived (`complete`). The
outcome is one of three, and the difference matters to the checkers:

- "ok": the request took effect and its result is known (a read's value, a write's ack);
- "fail": the request certainly did not take effect (a refused precondition, a
  connection that was never made), so the checkers drop it;
- "unknown": a timeout or a connection lost mid-request: the write may or may not have
  taken effect, at any moment after it was sent, so `complete` is None and the checkers
  treat the operation as optional and open-ended.

Operations on registers are "read", "write" and "cas" (`value` is `[expected, new]`);
operations on lists are "append" (`value` is the element) and "read-list" (`result` is
the whole list). Values are JSON values, so a history round-trips through JSON lines
(`to_jsonl`/`from_jsonl`) and can be checked again later, away from the fleet.

    history = History()
    history.append(Op(process=1, kind="write", key="r1", value=3, invoke=t0, complete=t1))
    history.to_jsonl(report_dir / "history.jsonl")
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KINDS = ("read", "write", "cas", "append", "read-list")
STATUSES = ("ok", "fail", "unknown")
WRITE_KINDS = frozenset({"write", "cas", "append"})
READ_KINDS = frozenset({"read", "read-list"})


@dataclass(frozen=True)
class Op:
    process: int            # client id (one client never has two ops in flight)
    kind: str               # "read" | "write" | "cas" | "append" | "read-list"
    key: str
    value: Any = None       # write: the value; cas: [expected, new]; append: the element; reads: None
    invoke: float = 0.0     # monotonic seconds when the request was sent
    complete: float | None = None   # when the answer arrived; None for status "unknown"
    status: str = "ok"      # "ok" (took effect, result known) | "fail" (certainly did not take effect) | "unknown" (timeout/connection lost: may or may not have)
    result: Any = None      # read: the value seen (None = key absent); read-list: the list seen; cas ok: True
    index: int = 0          # position in the recorded history (set by History)

    @property
    def is_write(self) -> bool:
        """Whether the op may change the state (a write, a cas or an append)."""
        return self.kind in WRITE_KINDS

    def describe(self) -> str:
        """One short line, e.g. `p3 cas r1 [1, 2] -> True` or `p1 read r1 -> 7 (unknown)`."""
        if self.kind in READ_KINDS:
            text = f"p{self.process} {self.kind} {self.key}"
            text += f" -> {_short(self.result)}" if self.status == "ok" else ""
        else:
            text = f"p{self.process} {self.kind} {self.key} {_short(self.value)}"
            if self.kind == "cas" and self.status == "ok":
                text += f" -> {_short(self.result)}"
        return text if self.status == "ok" else f"{text} ({self.status})"


def validate(op: Op) -> None:
    """Raise ValueError for an op the checkers could not interpret."""
    if op.kind not in KINDS:
        raise ValueError(f"op {op.index}: unknown kind {op.kind!r}")
    if op.status not in STATUSES:
        raise ValueError(f"op {op.index}: unknown status {op.status!r}")
    if op.status == "ok" and op.complete is None:
        raise ValueError(f"op {op.index}: status ok needs a completion time")
    if op.complete is not None and op.complete < op.invoke:
        raise ValueError(f"op {op.index}: completes ({op.complete}) before it is invoked "
                         f"({op.invoke})")
    if op.kind == "cas" and not (isinstance(op.value, (list, tuple)) and len(op.value) == 2):
        raise ValueError(f"op {op.index}: cas value must be [expected, new], not {op.value!r}")


class History:
    """The ops of one drill in the order they were recorded; `append` numbers them."""

    def __init__(self, ops: Iterable[Op] = ()) -> None:
        self._ops: list[Op] = []
        for op in ops:
            self.append(op)

    def append(self, op: Op) -> Op:
        """Record `op` (its `index` set to its position) and return the recorded op."""
        validate(op)
        op = dataclasses.replace(op, index=len(self._ops))
        self._ops.append(op)
        return op

    @property
    def ops(self) -> list[Op]:
        return list(self._ops)

    def __len__(self) -> int:
        return len(self._ops)

    def __iter__(self) -> Iterator[Op]:
        return iter(self._ops)

    def __getitem__(self, i: int) -> Op:
        return self._ops[i]

    def by_key(self) -> dict[str, list[Op]]:
        """Ops per key, each list in recorded order (registers are independent per key)."""
        return by_key(self._ops)

    def ok_ops(self) -> list[Op]:
        return ok_ops(self._ops)

    def invoked_between(self, t0: float, t1: float) -> list[Op]:
        return invoked_between(self._ops, t0, t1)

    def to_jsonl(self, path: str | Path) -> None:
        """Write one JSON object per op, one per line (values must be JSON values)."""
        with open(path, "w", encoding="utf-8") as f:
            for op in self._ops:
                f.write(json.dumps(dataclasses.asdict(op), separators=(",", ":")) + "\n")

    @classmethod
    def from_jsonl(cls, path: str | Path) -> History:
        """Read a history written by `to_jsonl` (indexes are renumbered in file order)."""
        fields = {f.name for f in dataclasses.fields(Op)}
        history = cls()
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    raw = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{lineno}: not JSON: {e}") from None
                unknown = set(raw) - fields
                if unknown:
                    raise ValueError(f"{path}:{lineno}: unknown fields {sorted(unknown)}")
                history.append(Op(**raw))
        return history


def by_key(ops: Iterable[Op]) -> dict[str, list[Op]]:
    """Ops grouped per key, in the given order; keys in order of first appearance."""
    out: dict[str, list[Op]] = {}
    for op in ops:
        out.setdefault(op.key, []).append(op)
    return out


def ok_ops(ops: Iterable[Op]) -> list[Op]:
    """The ops that took effect with a known result."""
    return [op for op in ops if op.status == "ok"]


def invoked_between(ops: Iterable[Op], t0: float, t1: float) -> list[Op]:
    """The ops sent in [t0, t1) (e.g. during one fault window)."""
    return [op for op in ops if t0 <= op.invoke < t1]


def _short(value: Any, limit: int = 40) -> str:
    text = json.dumps(value, separators=(",", ":"), default=str) \
        if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
