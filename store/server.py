"""The client-facing HTTP server: etcd 3.4's v3 JSON gateway over aiohttp.

Handlers are thin: decode with `store.codec`, replicate through the `Proposer` or read
local state after a read barrier, encode. Everything etcd clients notice is kept as the
real gateway does it: POST only (405 otherwise), `/v3/` and `/v3beta/` prefixes, the
`kv/lease/*` aliases, CORS and grpc-metadata headers, error bodies and status codes.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from store import codec, errors, snapshot, stream_codec
from store.commands import CommandType
from store.member import Member
from store.watch_stream import handle_watch

MAX_GRPC_MESSAGE = 2 * 1024 * 1024          # grpc-go's default receive limit in etcd 3.4
MAX_REQUEST_BYTES = 1536 * 1024             # etcd's --max-request-bytes default
READ_LIMIT = 16 * 1024 * 1024               # beyond this we stop reading and reject

_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, GET, OPTIONS, PUT, DELETE",
    "Access-Control-Allow-Headers": "accept, content-type, authorization",
    "Grpc-Metadata-Content-Type": "application/grpc",
}

Handler = Callable[[Member, Any], Awaitable[tuple[str, dict]]]


def json_response(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json",
                        headers=_HEADERS)


def error_response(err: errors.EtcdError) -> web.Response:
    return json_response(codec.encode_error(err), err.http_status)


async def read_body(request: web.Request) -> bytes:
    """Read a request body; past READ_LIMIT nothing could be within etcd's limits."""
    parts: list[bytes] = []
    size = 0
    while chunk := await request.content.readany():
        size += len(chunk)
        if size > READ_LIMIT:
            raise _too_large(size)
        parts.append(chunk)
    return b"".join(parts)


def _too_large(size: int) -> errors.EtcdError:
    return errors.EtcdError(
        f"grpc: received message larger than max ({size} vs. {MAX_GRPC_MESSAGE})",
        errors.GrpcCode.RESOURCE_EXHAUSTED)


# A request's protobuf encoding is never more than 4x its JSON body (the worst case is a
# packed repeated int64 written `-1,`: 3 characters, 10 bytes), so a body this small is
# within both limits and skips computing the size (most requests: a put is ~400 bytes).
_SURELY_SMALL_BODY = MAX_REQUEST_BYTES // 8


def check_size(message: str, req: dict, replicated: bool, body_size: int | None = None) -> None:
    """etcd's two limits, both on the protobuf size: gRPC's 2 MiB, then 1.5 MiB for
    anything that goes through Raft."""
    if body_size is not None and body_size < _SURELY_SMALL_BODY:
        return
    size = codec.proto_size(message, req)
    if size > MAX_GRPC_MESSAGE:
        raise _too_large(size)
    if replicated and size > MAX_REQUEST_BYTES:
        raise errors.request_too_large()


# ---- unary handlers: (member, decoded request) -> (response message name, response) ----

async def _range(m: Member, req: dict) -> tuple[str, dict]:
    if not req["serializable"]:
        await m.proposer.read_barrier(m.request_timeout)
    with m.raft.state_lock:
        resp = m.raft.state.range(req)
    kvs = resp.get("kvs") or ()
    if len(kvs) > 1000:
        size = sum(len(kv.key) + len(kv.value) for kv in kvs) * 4 // 3 + 100 * len(kvs)
        if size > m.max_response_bytes:
            raise errors.response_too_large(size, m.max_response_bytes)
    return "RangeResponse", resp


async def _write(m: Member, command: tuple, response: str) -> tuple[str, dict]:
    result = await m.proposer.propose(command, m.request_timeout)
    if isinstance(result, errors.EtcdError):
        raise result
    return response, result


async def _put(m: Member, req: dict) -> tuple[str, dict]:
    return await _write(m, (int(CommandType.PUT), req), "PutResponse")


async def _delete_range(m: Member, req: dict) -> tuple[str, dict]:
    return await _write(m, (int(CommandType.DELETE_RANGE), req), "DeleteRangeResponse")


async def _txn(m: Member, req: dict) -> tuple[str, dict]:
    return await _write(m, (int(CommandType.TXN), req), "TxnResponse")


async def _compaction(m: Member, req: dict) -> tuple[str, dict]:
    return await _write(m, (int(CommandType.COMPACT), req), "CompactionResponse")


async def _lease_grant(m: Member, req: dict) -> tuple[str, dict]:
    lease_id = req["ID"] or (secrets.randbits(63) or 1)
    command = (int(CommandType.LEASE_GRANT), lease_id, req["TTL"], time.time())
    return await _write(m, command, "LeaseGrantResponse")


async def _lease_revoke(m: Member, req: dict) -> tuple[str, dict]:
    return await _write(m, (int(CommandType.LEASE_REVOKE), req["ID"]), "LeaseRevokeResponse")


async def _lease_time_to_live(m: Member, req: dict) -> tuple[str, dict]:
    await m.proposer.read_barrier(m.request_timeout)
    with m.raft.state_lock:
        resp = m.raft.state.lease_time_to_live(req["ID"], req["keys"], time.time())
    return "LeaseTimeToLiveResponse", resp


async def _lease_leases(m: Member, req: dict) -> tuple[str, dict]:
    await m.proposer.read_barrier(m.request_timeout)
    with m.raft.state_lock:
        resp = m.raft.state.lease_leases()
    return "LeaseLeasesResponse", resp


async def _member_list(m: Member, req: dict) -> tuple[str, dict]:
    return "MemberListResponse", {"header": {}, "members": m.members()}


async def _member_add(m: Member, req: dict) -> tuple[str, dict]:
    return "MemberAddResponse", await m.add_member(req["peerURLs"], req["isLearner"])


async def _member_remove(m: Member, req: dict) -> tuple[str, dict]:
    return "MemberRemoveResponse", await m.remove_member(req["ID"])


async def _member_update(m: Member, req: dict) -> tuple[str, dict]:
    raise errors.EtcdError("kubelite: member update is not supported; remove and add the "
                           "member instead", errors.GrpcCode.UNIMPLEMENTED)


async def _member_promote(m: Member, req: dict) -> tuple[str, dict]:
    return "MemberPromoteResponse", await m.promote_member(req["ID"])


async def _status(m: Member, req: dict) -> tuple[str, dict]:
    return "StatusResponse", m.status()


async def _hash(m: Member, req: dict) -> tuple[str, dict]:
    return "HashResponse", m.hash()


async def _alarm(m: Member, req: dict) -> tuple[str, dict]:
    return "AlarmResponse", {}


async def _defragment(m: Member, req: dict) -> tuple[str, dict]:
    return "DefragmentResponse", {}


async def _move_leader(m: Member, req: dict) -> tuple[str, dict]:
    await m.transfer_leadership(req["targetID"])
    return "MoveLeaderResponse", {"header": {}}


@dataclass(frozen=True)
class Route:
    request: str
    handler: Handler


ROUTES: dict[str, Route] = {
    "kv/range": Route("RangeRequest", _range),
    "kv/put": Route("PutRequest", _put),
    "kv/deleterange": Route("DeleteRangeRequest", _delete_range),
    "kv/txn": Route("TxnRequest", _txn),
    "kv/compaction": Route("CompactionRequest", _compaction),
    "lease/grant": Route("LeaseGrantRequest", _lease_grant),
    "lease/revoke": Route("LeaseRevokeRequest", _lease_revoke),
    "kv/lease/revoke": Route("LeaseRevokeRequest", _lease_revoke),
    "lease/timetolive": Route("LeaseTimeToLiveRequest", _lease_time_to_live),
    "kv/lease/timetolive": Route("LeaseTimeToLiveRequest", _lease_time_to_live),
    "lease/leases": Route("LeaseLeasesRequest", _lease_leases),
    "kv/lease/leases": Route("LeaseLeasesRequest", _lease_leases),
    "cluster/member/list": Route("MemberListRequest", _member_list),
    "cluster/member/add": Route("MemberAddRequest", _member_add),
    "cluster/member/remove": Route("MemberRemoveRequest", _member_remove),
    "cluster/member/update": Route("MemberUpdateRequest", _member_update),
    "cluster/member/promote": Route("MemberPromoteRequest", _member_promote),
    "maintenance/status": Route("StatusRequest", _status),
    "maintenance/hash": Route("HashRequest", _hash),
    "maintenance/alarm": Route("AlarmRequest", _alarm),
    "maintenance/defragment": Route("DefragmentRequest", _defragment),
    "maintenance/transfer-leadership": Route("MoveLeaderRequest", _move_leader),
}

_NO_HEADER = {"AlarmResponse", "DefragmentResponse"}
_REPLICATED = {"PutRequest", "DeleteRangeRequest", "TxnRequest", "CompactionRequest",
               "LeaseGrantRequest", "LeaseRevokeRequest"}
_STREAMING = {"watch", "lease/keepalive", "maintenance/snapshot"}


def make_unary(member: Member, route: Route) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        try:
            body = await read_body(request)
            req = codec.decode(route.request, body)
            check_size(route.request, req, route.request in _REPLICATED, len(body))
            message, resp = await route.handler(member, req)
        except errors.EtcdError as err:
            return error_response(err)
        if message not in _NO_HEADER:
            member.fill_header(resp.setdefault("header", {}),
                               revision=message != "MemberListResponse")
        return json_response(codec.encode(message, resp))

    return handle


async def _keepalive(member: Member, request: web.Request) -> web.StreamResponse:
    """lease/keepalive is a stream: one result line per request object in the body."""
    try:
        body = await read_body(request)
        reqs = stream_codec.decode_all("LeaseKeepAliveRequest", body)
    except errors.EtcdError as err:
        return json_response(codec.encode_error(err), 500)
    response = web.StreamResponse(status=200, headers=_HEADERS)
    response.content_type = "application/json"
    response.enable_chunked_encoding()
    await response.prepare(request)
    for req in reqs:
        command = (int(CommandType.LEASE_KEEPALIVE), req["ID"], time.time())
        try:
            resp = await member.proposer.propose(command, member.request_timeout)
        except errors.EtcdError as err:
            await response.write(stream_codec.encode_error_line(err))
            break
        if isinstance(resp, errors.EtcdError):
            resp = {"header": {}, "ID": req["ID"]}
        member.fill_header(resp.setdefault("header", {}))
        await response.write(stream_codec.encode_result("LeaseKeepAliveResponse", resp))
    await response.write_eof()
    return response


SNAPSHOT_CHUNK = 1024 * 1024


async def _snapshot(member: Member, request: web.Request) -> web.StreamResponse:
    """maintenance/snapshot: a consistent dump of the state plus its SHA-256, streamed."""
    try:
        await read_body(request)
        await member.proposer.read_barrier(member.request_timeout)
    except errors.EtcdError as err:
        return error_response(err)
    with member.raft.state_lock:
        revision = member.raft.state.revision
        state = member.raft.state
        body = snapshot.dump(state)
    data = body + hashlib.sha256(body).digest()
    response = web.StreamResponse(status=200, headers=_HEADERS)
    response.content_type = "application/json"
    response.enable_chunked_encoding()
    await response.prepare(request)
    header = member.header(revision)
    for offset in range(0, len(data), SNAPSHOT_CHUNK):
        blob = data[offset:offset + SNAPSHOT_CHUNK]
        remaining = len(data) - offset - len(blob)
        message = {"header": {k: str(v) for k, v in header.items() if v},
                   "blob": base64.b64encode(blob).decode()}
        if remaining:
            message["remaining_bytes"] = str(remaining)
        await response.write(orjson.dumps({"result": message}) + b"\n")
    await response.write_eof()
    return response


def build_app(member: Member) -> web.Application:
    app = web.Application(client_max_size=READ_LIMIT)

    async def gateway(request: web.Request) -> web.StreamResponse:
        prefix, _, path = request.match_info["tail"].partition("/")
        if prefix not in ("v3", "v3beta"):
            return web.Response(status=404, text="404 page not found\n")
        if path in _STREAMING or path in ROUTES:
            if request.method != "POST":
                return web.Response(status=405, text="Method Not Allowed\n")
            if path == "watch":
                return await handle_watch(member, request)
            if path == "lease/keepalive":
                return await _keepalive(member, request)
            if path == "maintenance/snapshot":
                return await _snapshot(member, request)
            return await handlers[path](request)
        return web.Response(status=404, text="Not Found\n")

    handlers = {path: make_unary(member, route) for path, route in ROUTES.items()}

    async def version(request: web.Request) -> web.Response:
        return json_response(b'{"etcdserver":"3.4.23","etcdcluster":"3.4.0"}')

    async def health(request: web.Request) -> web.Response:
        healthy = await member.healthy()
        body = b'{"health":"true"}' if healthy else b'{"health":"false"}'
        return web.Response(body=body, status=200 if healthy else 503,
                            content_type="text/plain")

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text=member.metrics_text(), content_type="text/plain")

    app.router.add_get("/version", version)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    app.router.add_route("*", "/{tail:.*}", gateway)
    return app


async def serve(member: Member, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(build_app(member), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True, backlog=1024)
    await site.start()
    return runner
