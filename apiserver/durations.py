"""Ages as `kubectl get` shows them: Kubernetes' HumanDuration and timestamp parsing.

HumanDuration (k8s.io/apimachinery/pkg/util/duration) keeps two or three significant
figures and switches units at fixed points:

    0s .. 119s      "42s"          (a clock up to 1s ahead still reads "0s")
    2m .. 9m59s     "5m3s", "5m"
    10m .. 2h59m    "47m"
    3h .. 7h59m     "3h12m", "3h"
    8h .. 47h       "30h"
    2d .. 7d23h     "2d4h", "2d"
    8d .. 729d      "300d"
    2y .. 7y364d    "2y45d", "2y"
    8y and more     "9y"

An object without a creationTimestamp shows `<unknown>`; a timestamp two or more seconds
in the future shows `<invalid>`. Time is always an argument (`now`), never read here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

SECOND_US = 1_000_000


def _trunc_div(a: int, b: int) -> int:
    """Integer division rounding toward zero, as Go's int conversion does."""
    q = abs(a) // b
    return q if a >= 0 else -q


def human_duration(delta: timedelta) -> str:
    """Format an elapsed time exactly as Kubernetes' duration.HumanDuration."""
    us = delta // timedelta(microseconds=1)
    seconds = _trunc_div(us, SECOND_US)
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        s = seconds % 60
        return f"{minutes}m{s}s" if s else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = seconds // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h{m}m" if m else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d{h}h" if h else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = hours // 24 % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 timestamp (`2026-11-22T13:57:34Z`, or with fractions) as aware UTC."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def since(timestamp: object, now: datetime) -> str:
    """translateTimestampSince: the age of `timestamp` at `now`, or `<unknown>`."""
    when = parse_time(timestamp)
    if when is None:
        return "<unknown>"
    return human_duration(now - when)


def rfc3339(timestamp: object) -> str:
    """A timestamp as Go prints metav1.Time in UTC (zero time if missing)."""
    when = parse_time(timestamp)
    if when is None:
        return "0001-01-01T00:00:00Z"
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")
