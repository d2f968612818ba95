"""Leader-election settings and the command-line flags Kubernetes names them by.

    --leader-elect                      run only while holding the lease (default true)
    --leader-elect-lease-duration       how long a standby waits after the last renewal
                                        it saw before taking over (15s)
    --leader-elect-renew-deadline       how long the leader keeps trying to renew before
                                        it steps down (10s)
    --leader-elect-retry-period         how often every candidate tries (2s)
    --leader-elect-resource-lock        only "leases"
    --leader-elect-resource-name        the Lease's name (the component's: kube-scheduler)
    --leader-elect-resource-namespace   the Lease's namespace (kube-system)

Durations are Go's (`15s`, `1m30s`, `500ms`); a bare number means seconds. As in
client-go, lease duration > renew deadline > retry period x 1.2; the gap between the
first two is what keeps a deposed leader's writes from overlapping its successor's
(see leader_election's docstring), so it must exceed the fence margin.
"""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import dataclass

DEFAULT_LEASE_DURATION = 15.0
DEFAULT_RENEW_DEADLINE = 10.0
DEFAULT_RETRY_PERIOD = 2.0
DEFAULT_NAMESPACE = "kube-system"
MIN_FENCE_GAP = 1.0  # lease duration - renew deadline, at least (leader_election.FENCE_MARGIN x 2)
_JITTER_FACTOR = 1.2
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
          "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Seconds in a Go duration ("1m30s", "500ms", "2.5s") or a bare number of seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    total, pos = 0.0, 0
    for match in _PART.finditer(body):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not body or pos != len(body):
        raise ValueError(f"invalid duration {text!r}")
    return sign * total


def _duration_flag(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _bool_flag(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "1", "yes", "t"):
        return True
    if lowered in ("false", "0", "no", "f"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean {text!r}")


@dataclass(frozen=True)
class ElectionConfig:
    """Which Lease, who we are, and the three timings, in seconds."""

    name: str
    identity: str
    namespace: str = DEFAULT_NAMESPACE
    lease_duration: float = DEFAULT_LEASE_DURATION
    renew_deadline: float = DEFAULT_RENEW_DEADLINE
    retry_period: float = DEFAULT_RETRY_PERIOD

    @property
    def lease_seconds(self) -> int:
        """leaseDurationSeconds as written into the Lease (whole seconds, rounded up)."""
        return max(1, math.ceil(self.lease_duration))

    def validate(self) -> None:
        if not self.name or not self.identity:
            raise ValueError("leader election needs a lease name and an identity")
        if self.retry_period <= 0:
            raise ValueError("--leader-elect-retry-period must be positive")
        if self.renew_deadline <= _JITTER_FACTOR * self.retry_period:
            raise ValueError("--leader-elect-renew-deadline must be greater than "
                             f"--leader-elect-retry-period x {_JITTER_FACTOR}")
        if self.lease_duration < self.renew_deadline + MIN_FENCE_GAP:
            raise ValueError("--leader-elect-lease-duration must exceed "
                             f"--leader-elect-renew-deadline by at least {MIN_FENCE_GAP:g}s")


def add_flags(parser: argparse.ArgumentParser, default_name: str) -> None:
    group = parser.add_argument_group("leader election")
    group.add_argument("--leader-elect", type=_bool_flag, nargs="?", const=True, default=True,
                       metavar="BOOL", help="hold a Lease while working (default true)")
    group.add_argument("--leader-elect-lease-duration", type=_duration_flag,
                       default=DEFAULT_LEASE_DURATION, metavar="DURATION",
                       help="how long standbys wait after the last renewal (15s)")
    group.add_argument("--leader-elect-renew-deadline", type=_duration_flag,
                       default=DEFAULT_RENEW_DEADLINE, metavar="DURATION",
                       help="how long the leader retries renewing before stepping down (10s)")
    group.add_argument("--leader-elect-retry-period", type=_duration_flag,
                       default=DEFAULT_RETRY_PERIOD, metavar="DURATION",
                       help="how often candidates try to acquire or renew (2s)")
    group.add_argument("--leader-elect-resource-lock", default="leases", choices=("leases",),
                       help="the lock object's kind (only leases)")
    group.add_argument("--leader-elect-resource-name", default=default_name,
                       help=f"the Lease's name ({default_name})")
    group.add_argument("--leader-elect-resource-namespace", default=DEFAULT_NAMESPACE,
                       help=f"the Lease's namespace ({DEFAULT_NAMESPACE})")


def from_args(args: argparse.Namespace, identity: str) -> ElectionConfig:
    """The config the flags describe; ValueError if the timings are inconsistent."""
    config = ElectionConfig(
        name=args.leader_elect_resource_name, identity=identity,
        namespace=args.leader_elect_resource_namespace,
        lease_duration=args.leader_elect_lease_duration,
        renew_deadline=args.leader_elect_renew_deadline,
        retry_period=args.leader_elect_retry_period)
    config.validate()
    return config
