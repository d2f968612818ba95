"""What every controller's sync gets: the caches, the runner, the options and the clocks.

Kept apart from manager.py so that each sync module (sync_*.py) depends on this small
record, not on the process around it, and a test can build one around fakes.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from controllers import nodelifecycle
from controllers.informers import Informers
from controllers.runner import Reader, Runner

_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' rand.String alphabet


@dataclass
class Options:
    """The controller-manager's settings, under Kubernetes' flag names."""

    node_monitor_grace_period: timedelta = nodelifecycle.NODE_MONITOR_GRACE_PERIOD
    node_monitor_period: timedelta = nodelifecycle.NODE_MONITOR_PERIOD
    pod_eviction_timeout: timedelta = nodelifecycle.POD_EVICTION_TIMEOUT
    allocate_node_cidrs: bool = True
    cluster_cidr: str = "10.244.0.0/16"
    node_cidr_mask_size: int = 24
    gc_period: float = 20.0  # seconds between full garbage-collector sweeps
    sa_resync: float = 60.0
    expectations_timeout: float = 300.0
    concurrency: dict[str, int] = field(default_factory=dict)  # controller -> workers


@dataclass
class Context:
    api: Reader
    informers: Informers
    runner: Runner
    options: Options
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    monotonic: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time

    def workers(self, controller: str, default: int) -> int:
        return max(1, self.options.concurrency.get(controller, default))


def random_suffix(length: int = 5) -> str:
    """A name suffix as Kubernetes' generateName would pick it."""
    return "".join(secrets.choice(_NAME_CHARS) for _ in range(length))
