"""Which faults a drill injects, and when: a pure schedule from a scenario name and a seed.

    plan("partition", duration=60, control_planes=[...], workers=[...], seed=7)
      -> [Injection(at=4.0, hold=6.0, kind="isolate", targets=("leader",), ...),
          Injection(at=14.0, hold=6.0, kind="split", targets=("lab-cp3",), ...), ...]

Every choice that can be made in advance is made here, from `random.Random(seed)`:
which member is killed, which minority is cut off, how long a fault holds. So a failing
run is replayed exactly by giving the same scenario, duration, fleet and seed. Only the
store's leader is resolved when the fault is injected (the symbolic target "leader"),
because who leads depends on the run.

Times are seconds after the workload started. Each schedule leaves WARMUP seconds of
fault-free operation first (a baseline for the availability plot) and at least QUIET
seconds after the last heal (the fleet settles before the final reads and the
comparison of the store's members). An `Injection` with `hold` None heals by itself
(a killed process is restarted by its supervisor); the runner records when it is back.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

WARMUP = 3.0
QUIET = 6.0
LEADER = "leader"

# kind -> what it does (the runner's faults.py implements each)
KINDS = {
    "kill-store": "SIGKILL a store member (the supervisor restarts it)",
    "kill-all-stores": "SIGKILL every store member at once (cold restart)",
    "pause-store": "SIGSTOP a store member, SIGCONT at heal",
    "isolate": "drop traffic between one control plane and the other control planes",
    "split": "drop traffic between a minority of control planes and the majority",
    "loss": "drop a share of packets between control planes at random",
    "delay": "delay peer (Raft) traffic between control planes",
    "machine-loss": "kill every kubelite process of a control plane and cut it off",
    "apiserver-loss": "stop one apiserver behind the load balancer",
    "worker-loss": "cut a worker off the control plane; its pods must move",
    "rolling-restart": "restart each control plane's processes, one machine at a time",
}

SCENARIOS = {
    "leader-kill": "kill the store's leader, repeatedly",
    "member-kill": "kill a random store member, repeatedly",
    "cold-restart": "kill every store member at once; they start again",
    "pause": "pause a random store member (SIGSTOP/SIGCONT), repeatedly",
    "partition": "isolate the leader's machine, heal, then a majority/minority split, heal",
    "minority-partition": "cut a random minority of control planes off, heal, repeatedly",
    "loss": "random packet loss between control planes",
    "delay": "added latency on the store's peer traffic",
    "machine-loss": "lose a whole control-plane machine and bring it back",
    "apiserver-loss": "lose an apiserver behind the load balancer",
    "worker-loss": "lose a worker; its pods are rescheduled after the eviction timeout",
    "rolling-restart": "restart the control plane one machine at a time",
    "random": "a seeded mix of the above",
}

_RANDOM_KINDS = ("kill-store", "kill-all-stores", "pause-store", "isolate", "split", "loss",
                 "delay", "machine-loss", "apiserver-loss")


class ScenarioError(ValueError):
    """The scenario cannot run on this fleet or in this time; the message says why."""


@dataclass(frozen=True)
class Injection:
    at: float                       # seconds after the start of the workload
    hold: float | None              # seconds until healed; None: heals by itself
    kind: str
    targets: tuple[str, ...]        # machine names, or (LEADER,)
    params: tuple[tuple[str, Any], ...] = field(default=())

    @property
    def heal_at(self) -> float | None:
        return None if self.hold is None else self.at + self.hold

    def param(self, name: str, default: Any = None) -> Any:
        return dict(self.params).get(name, default)

    def to_json(self) -> dict[str, Any]:
        return {"at": round(self.at, 3), "hold": self.hold, "kind": self.kind,
                "targets": list(self.targets), "params": dict(self.params)}


def _minority(rng: random.Random, cps: Sequence[str]) -> tuple[str, ...]:
    size = max(1, (len(cps) - 1) // 2)
    return tuple(sorted(rng.sample(list(cps), size)))


def _repeat(duration: float, period: float, make: Any) -> list[Injection]:
    """Injections every `period` seconds from WARMUP while one still ends before QUIET."""
    out: list[Injection] = []
    at = WARMUP
    for k in range(10_000):
        inj = make(k, at)
        end = inj.heal_at if inj.heal_at is not None else at + min(period, 3.0)
        if end > duration - QUIET:
            break
        out.append(inj)
        at += period
    return out


def _hold(duration: float) -> float:
    """How long a fault holds: long enough for elections and timeouts to play out,
    short enough that a short run still sees two of them."""
    return max(3.0, min(8.0, (duration - WARMUP - QUIET) / 4))


def plan(scenario: str, duration: float, control_planes: Sequence[str],
         workers: Sequence[str] = (), seed: int = 0) -> list[Injection]:
    """The injections of `scenario` in a run of `duration` seconds (see module doc)."""
    if scenario not in SCENARIOS:
        raise ScenarioError(f"unknown scenario {scenario!r}; one of: {', '.join(SCENARIOS)}")
    cps = sorted(control_planes)
    if not cps:
        raise ScenarioError("the fleet has no control plane")
    rng = random.Random(f"{scenario}/{seed}")
    hold = _hold(duration)
    needs_peers = {"partition", "minority-partition", "loss", "delay", "leader-kill",
                   "member-kill", "pause", "machine-loss", "random"}
    if scenario in needs_peers and len(cps) < 3:
        raise ScenarioError(f"{scenario} needs at least 3 control planes (a store that "
                            f"survives one failure); the fleet has {len(cps)}")
    if scenario == "leader-kill":
        out = _repeat(duration, max(6.0, hold + 2),
                      lambda k, at: Injection(at, None, "kill-store", (LEADER,)))
    elif scenario == "member-kill":
        out = _repeat(duration, max(6.0, hold + 2),
                      lambda k, at: Injection(at, None, "kill-store", (rng.choice(cps),)))
    elif scenario == "cold-restart":
        out = _repeat(duration, 15.0,
                      lambda k, at: Injection(at, None, "kill-all-stores", tuple(cps)))
    elif scenario == "pause":
        out = _repeat(duration, hold + 3,
                      lambda k, at: Injection(at, hold, "pause-store",
                                              (LEADER,) if k % 2 == 0 else (rng.choice(cps),)))
    elif scenario == "partition":
        def step(k: int, at: float) -> Injection:
            if k % 2 == 0:
                return Injection(at, hold, "isolate", (LEADER,))
            return Injection(at, hold, "split", _minority(rng, cps))
        out = _repeat(duration, hold + 3, step)
    elif scenario == "minority-partition":
        out = _repeat(duration, hold + 3,
                      lambda k, at: Injection(at, hold, "split", _minority(rng, cps)))
    elif scenario == "loss":
        out = _repeat(duration, hold + 3,
                      lambda k, at: Injection(at, hold, "loss", tuple(cps),
                                              (("percent", rng.choice((10, 20, 30))),)))
    elif scenario == "delay":
        out = _repeat(duration, hold + 3,
                      lambda k, at: Injection(at, hold, "delay", tuple(cps),
                                              (("seconds", rng.choice((0.05, 0.1, 0.2))),)))
    elif scenario == "machine-loss":
        out = _repeat(duration, hold + 8,
                      lambda k, at: Injection(at, hold, "machine-loss", (rng.choice(cps),)))
    elif scenario == "apiserver-loss":
        out = _repeat(duration, hold + 3,
                      lambda k, at: Injection(at, hold, "apiserver-loss", (rng.choice(cps),)))
    elif scenario == "worker-loss":
        if len(workers) < 2:
            raise ScenarioError("worker-loss needs at least 2 workers (the pods of the lost "
                                f"one move to another); the fleet has {len(workers)}")
        wait = duration - WARMUP - QUIET
        if wait < 60:
            raise ScenarioError("worker-loss needs --duration of at least "
                                f"{60 + WARMUP + QUIET:g} s (node grace period and eviction)")
        out = [Injection(WARMUP, wait, "worker-loss", (rng.choice(sorted(workers)),))]
    elif scenario == "rolling-restart":
        out = [Injection(WARMUP, None, "rolling-restart", tuple(cps))]
    else:
        out = _random(rng, duration, cps)
    if not out:
        raise ScenarioError(f"--duration {duration:g} s is too short for {scenario}: give "
                            f"at least {WARMUP + QUIET + hold + 1:g} s")
    return out


def _random(rng: random.Random, duration: float, cps: Sequence[str]) -> list[Injection]:
    """One fault at a time, kinds, targets, holds and gaps drawn from the seed."""
    out: list[Injection] = []
    at = WARMUP
    for _ in range(10_000):
        kind = rng.choice(_RANDOM_KINDS)
        hold: float | None = round(rng.uniform(2.0, 6.0), 1)
        params: tuple[tuple[str, Any], ...] = ()
        if kind == "kill-store":
            targets: tuple[str, ...] = (LEADER,) if rng.random() < 0.5 else (rng.choice(cps),)
            hold = None
        elif kind == "kill-all-stores":
            targets, hold = tuple(cps), None
        elif kind == "pause-store":
            targets = (LEADER,) if rng.random() < 0.5 else (rng.choice(cps),)
        elif kind == "isolate":
            targets = (rng.choice([LEADER, *cps]),)
        elif kind == "split":
            targets = _minority(rng, cps)
        elif kind == "loss":
            targets, params = tuple(cps), (("percent", rng.choice((10, 20, 30))),)
        elif kind == "delay":
            targets, params = tuple(cps), (("seconds", rng.choice((0.05, 0.1, 0.2))),)
        else:
            targets = (rng.choice(cps),)
        inj = Injection(round(at, 1), hold, kind, targets, params)
        end = inj.heal_at if inj.heal_at is not None else at + 4.0
        if end > duration - QUIET:
            break
        out.append(inj)
        at = end + round(rng.uniform(2.0, 5.0), 1)
    return out


def describe(injections: Sequence[Injection]) -> str:
    """One line per injection, for the operator before the run starts."""
    lines = []
    for inj in injections:
        until = f"until {inj.heal_at:6.1f}s" if inj.heal_at is not None else "self-healing"
        extra = "".join(f" {k}={v}" for k, v in inj.params)
        lines.append(f"{inj.at:6.1f}s  {until:<16} {inj.kind:<16} "
                     f"{','.join(inj.targets)}{extra}")
    return "\n".join(lines)
