"""How long to wait before starting a crashed container again, and before retrying a call (pure).

Crash-loop back-off follows the kubelet (pkg/kubelet/kuberuntime doBackOff over
client-go's flowcontrol.Backoff, 10 s initial, 300 s cap, no jitter), counted here per
exit of a container, keyed by (pod uid, container name):

- the first exit restarts at once; the kubelet only arms its back-off (10 s) on that
  first restart, so `CrashLoopBackOff ... back-off 10s` shows after the *second* crash;
- each further exit waits the armed delay, and the delay doubles for the next one:
  exits 1, 2, 3, 4, ... wait 0, 10, 20, 40, ... 300, 300 seconds;
- a container that ran for more than twice the cap (10 minutes) before exiting was
  stable: its exit counts as a first one again (the kubelet's `hasExpired`);
- the wait is measured from the container's finish time, as the kubelet measures it
  from `FinishedAt`.

Time is always an argument; nothing here reads a clock or a random source, except that
`RetryBackoff` takes a `random.Random` for its jitter (seed it in tests).
"""

from __future__ import annotations

import random
from collections.abc import Hashable
from dataclasses import dataclass

INITIAL = 10.0
CAP = 300.0
REASON = "CrashLoopBackOff"


@dataclass
class _Entry:
    delay: float        # the wait applied to the latest exit
    exit_at: float      # when the latest exit happened
    armed: float        # the wait the next exit will get
    container_id: str | None


class Backoff:
    """Crash-loop back-off per container; keys are `(pod_uid, container_name)` tuples.

    The pod worker calls `record_exit` for each exit it observes (repeating it for the
    same exit is harmless), then asks `next_start`/`in_backoff` on every sync until the
    wait is over.
    """

    def __init__(self, initial: float = INITIAL, cap: float = CAP) -> None:
        if initial <= 0 or cap < initial:
            raise ValueError("back-off needs 0 < initial <= cap")
        self.initial = initial
        self.cap = cap
        self._entries: dict[Hashable, _Entry] = {}

    @property
    def stable_after(self) -> float:
        """A run longer than this resets the back-off (the kubelet's 2 x cap)."""
        return 2 * self.cap

    def record_exit(self, key: Hashable, ran_seconds: float, now: float, *,
                    container_id: str | None = None) -> float:
        """Count one exit that happened at `now` (its finish time) after running
        `ran_seconds`; returns its wait.

        Recording the same exit again (same finish time, or same `container_id`) changes
        nothing, so a sync loop may call this on every pass.
        """
        entry = self._entries.get(key)
        if entry is not None and (entry.exit_at == now or (
                container_id is not None and entry.container_id == container_id)):
            return entry.delay
        if entry is None or ran_seconds > self.stable_after:
            entry = _Entry(delay=0.0, exit_at=now, armed=self.initial, container_id=container_id)
        else:
            entry = _Entry(delay=entry.armed, exit_at=now, armed=min(entry.armed * 2, self.cap),
                           container_id=container_id)
        self._entries[key] = entry
        return entry.delay

    def delay(self, key: Hashable) -> float:
        """The wait applied to the latest recorded exit (0 if none)."""
        entry = self._entries.get(key)
        return entry.delay if entry is not None else 0.0

    def next_start(self, key: Hashable, finished_at: float, now: float) -> float:
        """The earliest time, not before `now`, at which the container may start again."""
        return max(now, finished_at + self.delay(key))

    def in_backoff(self, key: Hashable, now: float) -> bool:
        """True while the latest recorded exit is still waiting out its delay."""
        entry = self._entries.get(key)
        return entry is not None and now < entry.exit_at + entry.delay

    def remaining(self, key: Hashable, now: float) -> float:
        entry = self._entries.get(key)
        if entry is None:
            return 0.0
        return max(0.0, entry.exit_at + entry.delay - now)

    def message(self, key: tuple[str, str], *, pod: str, container: str | None = None) -> str:
        """The CrashLoopBackOff waiting message, word for word the kubelet's.

        `pod` is the kubelet's pod reference, `name_namespace(uid)` (see `pod_ref`);
        `container` defaults to the key's container name.
        """
        name = container if container is not None else key[1]
        return (f"back-off {go_duration(self.delay(key))} restarting failed "
                f"container={name} pod={pod}")

    def forget(self, key: Hashable) -> None:
        self._entries.pop(key, None)

    def forget_pod(self, pod_uid: str) -> None:
        """Drop every container of a pod that is gone."""
        for key in [k for k in self._entries if isinstance(k, tuple) and k and k[0] == pod_uid]:
            del self._entries[key]

    def gc(self, now: float) -> None:
        """Drop entries quiet for longer than the stable period (they would reset anyway)."""
        for key in [k for k, e in self._entries.items()
                    if now - (e.exit_at + e.delay) > self.stable_after]:
            del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)


def pod_ref(name: str, namespace: str, uid: str) -> str:
    """How the kubelet names a pod in messages (format.Pod): `web-abc_default(uid)`."""
    return f"{name}_{namespace}({uid})"


def go_duration(seconds: float) -> str:
    """A whole-second duration as Go's time.Duration prints it: 10s, 1m20s, 5m0s, 1h0m0s."""
    total = int(round(seconds))
    if total == 0:
        return "0s"
    sign = "-" if total < 0 else ""
    total = abs(total)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{sign}{minutes}m{secs}s"
    return f"{sign}{secs}s"


def retry_delay(attempt: int, *, initial: float, cap: float, factor: float = 2.0,
                jitter: float = 0.0, draw: float = 0.0) -> float:
    """The wait before retry `attempt + 1`: capped exponential, jittered downwards.

    `draw` in [0, 1) takes away up to `jitter` (a fraction) of the delay, so many agents
    retrying at once spread out and the result never exceeds `cap`.
    """
    if attempt < 0:
        raise ValueError("attempt must be >= 0")
    base = cap if attempt > 1000 else min(initial * factor ** attempt, cap)
    return base * (1.0 - jitter * draw)


class RetryBackoff:
    """Jittered capped exponential back-off for retrying API calls; `reset` on success."""

    def __init__(self, initial: float = 0.2, cap: float = 30.0, *, factor: float = 2.0,
                 jitter: float = 0.5, rng: random.Random | None = None) -> None:
        if initial <= 0 or cap < initial or factor < 1 or not 0 <= jitter <= 1:
            raise ValueError("retry back-off needs 0 < initial <= cap, factor >= 1, 0 <= jitter <= 1")
        self.initial = initial
        self.cap = cap
        self.factor = factor
        self.jitter = jitter
        self.attempt = 0
        self._rng = rng if rng is not None else random.Random()

    def next_delay(self) -> float:
        """The wait before the next attempt; each call counts one more failure."""
        delay = retry_delay(self.attempt, initial=self.initial, cap=self.cap, factor=self.factor,
                            jitter=self.jitter, draw=self._rng.random())
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0
