"""etcd-shaped errors.

Every failure the store reports to a client is an `EtcdError`: the gRPC status code,
the message etcd uses for it, and the HTTP status the v3 JSON gateway maps that code to.
Apply returns these (it never raises them) so one bad request in a batch cannot stop
the others, and every replica reaches the same result.
"""

from __future__ import annotations

import enum


class GrpcCode(enum.IntEnum):
    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14


# grpc-gateway v1's mapping from gRPC code to HTTP status (runtime.HTTPStatusFromCode).
_HTTP_STATUS = {
    GrpcCode.OK: 200,
    GrpcCode.CANCELLED: 408,
    GrpcCode.UNKNOWN: 500,
    GrpcCode.INVALID_ARGUMENT: 400,
    GrpcCode.DEADLINE_EXCEEDED: 504,
    GrpcCode.NOT_FOUND: 404,
    GrpcCode.ALREADY_EXISTS: 409,
    GrpcCode.PERMISSION_DENIED: 403,
    GrpcCode.RESOURCE_EXHAUSTED: 429,
    GrpcCode.FAILED_PRECONDITION: 412,
    GrpcCode.ABORTED: 409,
    GrpcCode.OUT_OF_RANGE: 400,
    GrpcCode.UNIMPLEMENTED: 501,
    GrpcCode.INTERNAL: 500,
    GrpcCode.UNAVAILABLE: 503,
}


class EtcdError(Exception):
    """A failure as etcd reports it: message, gRPC code, HTTP status."""

    def __init__(self, message: str, code: GrpcCode) -> None:
        super().__init__(message)
        self.message = message
        self.code = GrpcCode(code)

    @property
    def http_status(self) -> int:
        return _HTTP_STATUS[self.code]

    def to_dict(self) -> dict:
        return {"error": self.message, "message": self.message, "code": int(self.code)}

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, EtcdError)
            and other.message == self.message
            and other.code == self.code
        )

    def __hash__(self) -> int:
        return hash((self.message, self.code))

    def __reduce__(self):
        return (EtcdError, (self.message, int(self.code)))

    def __repr__(self) -> str:
        return f"EtcdError({self.message!r}, {self.code.name})"


# The messages etcd 3.4 uses, verbatim, so that clients matching on text keep working.
def compacted() -> EtcdError:
    return EtcdError("etcdserver: mvcc: required revision has been compacted", GrpcCode.OUT_OF_RANGE)


def future_revision() -> EtcdError:
    return EtcdError("etcdserver: mvcc: required revision is a future revision", GrpcCode.OUT_OF_RANGE)


def key_not_found() -> EtcdError:
    return EtcdError("etcdserver: key not found", GrpcCode.INVALID_ARGUMENT)


def empty_key() -> EtcdError:
    return EtcdError("etcdserver: key is not provided", GrpcCode.INVALID_ARGUMENT)


def duplicate_key() -> EtcdError:
    return EtcdError("etcdserver: duplicate key given in txn request", GrpcCode.INVALID_ARGUMENT)


def lease_not_found() -> EtcdError:
    return EtcdError("etcdserver: requested lease not found", GrpcCode.NOT_FOUND)


def lease_exists() -> EtcdError:
    return EtcdError("etcdserver: lease already exists", GrpcCode.FAILED_PRECONDITION)


def too_many_ops() -> EtcdError:
    return EtcdError("etcdserver: too many operations in txn request", GrpcCode.INVALID_ARGUMENT)


def request_too_large() -> EtcdError:
    return EtcdError("etcdserver: request is too large", GrpcCode.INVALID_ARGUMENT)


def request_timed_out() -> EtcdError:
    return EtcdError("etcdserver: request timed out", GrpcCode.UNAVAILABLE)


def deadline_exceeded() -> EtcdError:
    return EtcdError("context deadline exceeded", GrpcCode.UNKNOWN)


def server_stopped() -> EtcdError:
    return EtcdError("etcdserver: server stopped", GrpcCode.UNAVAILABLE)


def no_leader() -> EtcdError:
    return EtcdError("etcdserver: no leader", GrpcCode.UNAVAILABLE)


def invalid_argument(message: str) -> EtcdError:
    return EtcdError(message, GrpcCode.INVALID_ARGUMENT)


def member_not_found() -> EtcdError:
    return EtcdError("etcdserver: member not found", GrpcCode.NOT_FOUND)


def member_exists() -> EtcdError:
    return EtcdError("etcdserver: member ID already exist", GrpcCode.FAILED_PRECONDITION)


def peer_url_exists() -> EtcdError:
    return EtcdError("etcdserver: Peer URLs already exists", GrpcCode.FAILED_PRECONDITION)


def response_too_large(size: int, limit: int) -> EtcdError:
    return EtcdError(
        f"grpc: trying to send message larger than max ({size} vs. {limit})",
        GrpcCode.RESOURCE_EXHAUSTED,
    )


def lease_ttl_too_large() -> EtcdError:
    return EtcdError("etcdserver: too large lease TTL", GrpcCode.OUT_OF_RANGE)


def value_provided() -> EtcdError:
    return EtcdError("etcdserver: value is provided", GrpcCode.INVALID_ARGUMENT)


def lease_provided() -> EtcdError:
    return EtcdError("etcdserver: lease is provided", GrpcCode.INVALID_ARGUMENT)
