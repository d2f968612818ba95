"""Kubernetes `Status` error bodies, with the apiserver's exact messages.

kubectl does not print our message verbatim in every case: it prints
`Error from server (<reason>): <message>` from `reason` and `message`, and for 422
Invalid it rebuilds `The <kind> "<name>" is invalid: ...` from `details.kind`,
`details.name` and `details.causes` (a 422 without details prints only "The request is
invalid"). So every constructor here fills the same fields, in the same JSON order, as
k8s.io/apimachinery/pkg/api/errors does: kind, apiVersion, metadata, status, message,
reason, details, code. `details` is present exactly when Go sets the pointer, even if it
serializes as `{}`.

Handlers raise `ApiError`; one place turns it into a response with `.code` and `.status`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# The media types Kubernetes lists when it cannot decode a request body or a patch.
BODY_MEDIA_TYPES = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")
PATCH_MEDIA_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)
# The message of a modification conflict, from the storage layer (etcd3 store).
OBJECT_MODIFIED = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


class ApiError(Exception):
    """An error answer: HTTP `code` plus the Status dict to send as its JSON body."""

    def __init__(self, status: dict[str, Any]) -> None:
        super().__init__(status.get("message", ""))
        self.status = status
        self.code = int(status["code"])

    @property
    def reason(self) -> str:
        return str(self.status.get("reason", ""))

    @property
    def message(self) -> str:
        return str(self.status.get("message", ""))


def qualified(resource: str, group: str) -> str:
    """schema.GroupResource.String(): `pods`, `deployments.apps`."""
    return f"{resource}.{group}" if group else resource


def _status(
    code: int, reason: str, message: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}}
    body["status"] = "Failure"
    if message:
        body["message"] = message
    if reason:
        body["reason"] = reason
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


def _details(
    name: str = "", group: str = "", kind: str = "", retry_after_seconds: int = 0
) -> dict[str, Any]:
    """StatusDetails with Go's omitempty: name, group, kind, (causes), retryAfterSeconds."""
    out: dict[str, Any] = {}
    if name:
        out["name"] = name
    if group:
        out["group"] = group
    if kind:
        out["kind"] = kind
    if retry_after_seconds:
        out["retryAfterSeconds"] = retry_after_seconds
    return out


def _error(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> ApiError:
    return ApiError(_status(code, reason, message, details))


def status_success(code: int = 200, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Success Status (collection deletes, evictions: 201)."""
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}}
    body["status"] = "Success"
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


def not_found(resource: str, group: str, name: str) -> ApiError:
    """404: `pods "x" not found`, `deployments.apps "web" not found`."""
    return _error(
        404,
        "NotFound",
        f'{qualified(resource, group)} "{name}" not found',
        _details(name, group, resource),
    )


def not_found_path() -> ApiError:
    """404 for a URL that names no resource at all (the apiserver's catch-all handler)."""
    return _error(404, "NotFound", "the server could not find the requested resource", {})


def already_exists(resource: str, group: str, name: str) -> ApiError:
    """409 AlreadyExists: `pods "p1" already exists`."""
    return _error(
        409,
        "AlreadyExists",
        f'{qualified(resource, group)} "{name}" already exists',
        _details(name, group, resource),
    )


def conflict(resource: str, group: str, name: str, why: str = OBJECT_MODIFIED) -> ApiError:
    """409 Conflict: a stale resourceVersion on update (kubectl retries on this reason)."""
    return _error(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": {why}',
        _details(name, group, resource),
    )


def invalid(kind: str, group: str, name: str, causes: Sequence[dict[str, Any]]) -> ApiError:
    """422 Invalid from validation causes `{reason, message, field}`.

    The message aggregates `<field>: <message>` per cause as Go's ErrorList does: one
    cause stands alone, several are de-duplicated and joined inside `[a, b]`.
    """
    cause_list = [
        {
            "reason": c.get("reason", ""),
            "message": c.get("message", ""),
            "field": c.get("field", ""),
        }
        for c in causes
    ]
    texts: list[str] = []
    for cause in cause_list:
        text = f"{cause['field']}: {cause['message']}"
        if text not in texts:
            texts.append(text)
    group_kind = f"{kind}.{group}" if group else kind
    message = f'{group_kind} "{name}" is invalid'
    if len(texts) == 1:
        message += f": {texts[0]}"
    elif texts:
        message += f": [{', '.join(texts)}]"
    details = _details(name, group, kind)
    details["causes"] = cause_list
    return _error(422, "Invalid", message, details)


def bad_request(message: str) -> ApiError:
    """400 BadRequest (undecodable bodies, bad patches, bad query parameters)."""
    return _error(400, "BadRequest", message)


def unauthorized(message: str = "Unauthorized") -> ApiError:
    """401; the apiserver's authentication filter says just `Unauthorized`."""
    return _error(401, "Unauthorized", message)


def forbidden(
    user: str,
    verb: str,
    resource: str,
    group: str = "",
    name: str = "",
    namespace: str = "",
    *,
    subresource: str = "",
    path: str = "",
    reason: str = "",
) -> ApiError:
    """403 from the authorizer, worded as the apiserver's responsewriters.Forbidden.

    `pods "x" is forbidden: User "bob" cannot get resource "pods" in API group "" in the
    namespace "default"`; cluster-scoped requests end `at the cluster scope`; requests
    for non-resource URLs (pass `path`, no resource) read `cannot get path "/metrics"`.
    `reason` (e.g. an RBAC lookup error) is appended after `: `.
    """
    if path and not resource:
        why = f'User "{user}" cannot {verb} path "{path}"'
    else:
        full = f"{resource}/{subresource}" if subresource else resource
        why = f'User "{user}" cannot {verb} resource "{full}" in API group "{group}"'
        why += f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    if reason:
        why += f": {reason}"
    return forbidden_because(resource, group, name, why)


def forbidden_because(resource: str, group: str, name: str, why: str) -> ApiError:
    """403 for any other refusal, e.g. creating in a Terminating namespace."""
    if not resource:
        message = f"forbidden: {why}"
    elif not name:
        message = f"{qualified(resource, group)} is forbidden: {why}"
    else:
        message = f'{qualified(resource, group)} "{name}" is forbidden: {why}'
    return _error(403, "Forbidden", message, _details(name, group, resource))


def gone(message: str) -> ApiError:
    """410 Expired, e.g. a watch from a compacted revision: `too old resource version: 5 (20)`."""
    return _error(410, "Expired", message)


def too_large(message: str = "limit is 3145728") -> ApiError:
    """413: a request body over the apiserver's 3 MiB limit."""
    return _error(413, "RequestEntityTooLarge", f"Request entity too large: {message}")


def unsupported_media_type(
    content_type: str = "",
    accepted: Sequence[str] = BODY_MEDIA_TYPES,
    *,
    message: str | None = None,
) -> ApiError:
    """415 for a body in a media type we cannot read.

    Kubernetes names the types it accepts, never the one it got, so `content_type` (what
    the client sent) does not appear in the message; pass `PATCH_MEDIA_TYPES` as
    `accepted` for PATCH. `message` replaces the text where Kubernetes would have
    accepted the body but we cannot (a protobuf body of a kind we have no decoder for).
    """
    text = message or (
        "the body of the request was in an unknown format - accepted media types include: "
        + ", ".join(accepted)
    )
    return _error(415, "UnsupportedMediaType", text)


def method_not_allowed(resource: str, group: str, action: str) -> ApiError:
    """405: a verb the resource does not serve (`create is not supported on resources of kind "nodes/proxy"`)."""
    return _error(
        405,
        "MethodNotAllowed",
        f'{action} is not supported on resources of kind "{qualified(resource, group)}"',
        _details(group=group, kind=resource),
    )


def too_many_requests(
    message: str = "Too many requests, please try again later.", retry_after_seconds: int = 1
) -> ApiError:
    """429 with the retry hint clients honour (also send a Retry-After header)."""
    return _error(
        429, "TooManyRequests", message, _details(retry_after_seconds=retry_after_seconds)
    )


def service_unavailable(message: str) -> ApiError:
    """503, e.g. the store has no quorum."""
    return _error(503, "ServiceUnavailable", message)


def internal_error(message: str) -> ApiError:
    """500 InternalError; Go repeats the cause in details.causes."""
    return _error(
        500,
        "InternalError",
        f"Internal error occurred: {message}",
        {"causes": [{"message": message}]},
    )


def timeout(
    message: str = "request did not complete within requested timeout - context deadline exceeded",
    retry_after_seconds: int = 0,
) -> ApiError:
    """504 Timeout, as the apiserver's request-timeout filter words it."""
    return _error(
        504, "Timeout", f"Timeout: {message}", _details(retry_after_seconds=retry_after_seconds)
    )
