"""When the API client may send a request again, and to which apiserver (pure).

The client (apiserver/client.py) asks one apiserver at a time. When an attempt fails,
what may happen next depends on what the failure says about the request, the same
care `store.client_transport` takes one layer down:

- the connection could not be made (refused, connect timeout): nothing reached a
  server, so any request may go to another one (`Failure.NOT_SENT`);
- 429 TooManyRequests, or a 5xx carrying Retry-After: the server refused before doing
  anything and asked to come back (client-go's rule); any request may be sent again,
  after the Retry-After delay (`Failure.REFUSED`);
- the connection broke or timed out after the request went out, or a 502/503/504
  without Retry-After (our apiserver answers 503 when the store gave up, possibly after
  the write was applied): the outcome is unknown (`Failure.UNKNOWN`). Only a request
  that is safe to repeat goes again; any other raises `ApiUnavailable(maybe_applied=True)`;
- anything else is the answer (`Failure.ANSWER`).

A request is safe to repeat (`safe_to_repeat`) when a second copy can have no effect
the first did not: reads; a PUT that carries metadata.resourceVersion (a repeat after
success is refused with 409 Conflict instead of overwriting a write made in between);
a DELETE with preconditions (uid or resourceVersion). POST (create, bind) and PATCH are
not: a create sent twice may answer AlreadyExists for its own object, a JSON patch that
appends appends twice.

`ServerSet` orders the apiservers for one call: the one that last answered first,
then those whose /readyz said ok, then those not probed yet, and those that just failed
last (still tried: when every server looks bad, one of them may have recovered).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import Any

RETRYABLE_CODES = frozenset({429, 502, 503, 504})
MAX_RETRY_AFTER = 60.0


class Failure(enum.Enum):
    ANSWER = "answer"        # the server decided: return or raise its answer
    NOT_SENT = "not_sent"    # never reached a server: any request may go elsewhere
    REFUSED = "refused"      # refused before processing: any request may go again
    UNKNOWN = "unknown"      # perhaps processed: only safe requests go again


class ApiStatusError(Exception):
    """An error answer from the API: HTTP `code`, Status `reason`, the Status body."""

    def __init__(self, code: int, reason: str, status: Mapping[str, Any]) -> None:
        self.code = code
        self.reason = reason
        self.status = dict(status)
        super().__init__(f"{code} {reason}: {self.message}" if self.message else
                         f"{code} {reason}")

    @property
    def message(self) -> str:
        return str(self.status.get("message", ""))

    @property
    def retryable(self) -> bool:
        """The call failed for a reason that may go away: ask again later."""
        return self.code in RETRYABLE_CODES


class ApiUnavailable(ApiStatusError):
    """No apiserver gave an answer within the call's timeout, or the outcome is unknown.

    `code` is that of the last error status seen (503, 504 or 429), or 503 when no server
    could be reached at all. `maybe_applied` is False only when the request certainly
    was not processed; `causes` lists every failed attempt.
    """

    def __init__(self, message: str, *, maybe_applied: bool, causes: Sequence[str],
                 last: ApiStatusError | None = None) -> None:
        status = dict(last.status) if last is not None else \
            status_body(503, "ServiceUnavailable", message)
        status["message"] = message + (f" (last: {last.message})" if last else "")
        super().__init__(last.code if last else 503, last.reason if last else
                         "ServiceUnavailable", status)
        self.maybe_applied = maybe_applied
        self.causes = list(causes)

    @property
    def retryable(self) -> bool:
        return True


def status_body(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
            405: "MethodNotAllowed", 409: "Conflict", 410: "Gone", 413: "RequestEntityTooLarge",
            415: "UnsupportedMediaType", 422: "Invalid", 429: "TooManyRequests",
            500: "InternalError", 502: "BadGateway", 503: "ServiceUnavailable",
            504: "Timeout"}


def error_from_reply(code: int, body: Any, raw: bytes = b"") -> ApiStatusError:
    """The error an answer carries: its Status body, or one made up from the code."""
    if isinstance(body, dict) and body.get("kind") == "Status":
        return ApiStatusError(int(body.get("code") or code),
                              str(body.get("reason") or _REASONS.get(code, "Unknown")), body)
    text = raw[:200].decode("utf-8", "replace").strip()
    reason = _REASONS.get(code, "Unknown")
    return ApiStatusError(code, reason, status_body(code, reason, text or reason))


def retry_after(header: str | None, status: Mapping[str, Any] | None) -> float | None:
    """Seconds the server asked us to wait (Retry-After header, else the Status's
    details.retryAfterSeconds); None when it did not ask. Capped at MAX_RETRY_AFTER."""
    seconds: float | None = None
    if header:
        text = header.strip()
        try:
            seconds = float(text)
        except ValueError:
            try:
                seconds = 1.0 if parsedate_to_datetime(text) else None
            except (TypeError, ValueError):
                seconds = None
    if seconds is None and status is not None:
        details = status.get("details")
        if isinstance(details, dict) and isinstance(details.get("retryAfterSeconds"), int | float):
            seconds = float(details["retryAfterSeconds"]) or None
    if seconds is None:
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def classify_reply(code: int, retry_after_seconds: float | None) -> Failure:
    if code == 429:
        return Failure.REFUSED
    if code in (502, 503, 504):
        return Failure.REFUSED if retry_after_seconds is not None else Failure.UNKNOWN
    return Failure.ANSWER


def safe_to_repeat(method: str, body: Mapping[str, Any] | None) -> bool:
    """May a second copy of this request be sent after the first's fate is unknown?"""
    method = method.upper()
    if method in ("GET", "HEAD", "OPTIONS"):
        return True
    if method == "PUT":
        meta = (body or {}).get("metadata")
        return isinstance(meta, dict) and bool(meta.get("resourceVersion"))
    if method == "DELETE":
        pre = (body or {}).get("preconditions")
        return isinstance(pre, dict) and bool(pre.get("uid") or pre.get("resourceVersion"))
    return False


def may_retry(failure: Failure, safe: bool) -> bool:
    if failure is Failure.ANSWER:
        return False
    return safe or failure is not Failure.UNKNOWN


def backoff_delay(attempt: int) -> float:
    """Before attempt `attempt + 1`: short at first (the next server is probably fine),
    growing to 1 s while every server fails."""
    return min(0.025 * 2.0 ** min(attempt, 6), 1.0)


class ServerSet:
    """The apiservers of one client and what we know of each (no I/O here)."""

    def __init__(self, urls: Sequence[str]) -> None:
        cleaned = [u.rstrip("/") for u in urls]
        if not cleaned:
            raise ValueError("at least one apiserver URL is needed")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError(f"apiserver URLs repeat: {cleaned}")
        self.urls = cleaned
        self.preferred = cleaned[0]
        self.ready: dict[str, bool | None] = dict.fromkeys(cleaned)  # None: not probed

    def order(self) -> list[str]:
        """Servers in the order one call tries them: ready before unprobed before failed,
        and within each, the one that last answered first, then the given order."""
        rank = {True: 0, None: 1, False: 2}
        return sorted(self.urls, key=lambda u: (rank[self.ready[u]], u != self.preferred,
                                                self.urls.index(u)))

    def answered(self, url: str) -> None:
        """The server gave an answer (any answer that is not a retryable failure)."""
        self.preferred = url
        self.ready[url] = True

    def failed(self, url: str) -> None:
        self.ready[url] = False

    def probed(self, url: str, ok: bool) -> None:
        self.ready[url] = ok

    def suspects(self) -> list[str]:
        return [u for u in self.urls if self.ready[u] is False]
