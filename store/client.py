"""The async store client: etcd's v3 JSON gateway over HTTP, with failover.

It speaks only what etcd 3.4's gateway serves, so the same client drives real etcd and
kubelite's store; the apiserver and the tools use it, and the integration tests run it
against both. Methods return plain values (bytes keys and values, int revisions) and raise
`EtcdError` for what a member answered, `StoreUnavailable` when none could answer
(`maybe_applied` tells whether a write may still have happened), and `WatchCompacted`
when a watch needs revisions that are gone. Failover rules: `store.client_transport`;
resumable watches: `store.client_watch`.

    async with StoreClient(["http://127.0.0.1:2379"]) as store:
        rev = (await store.put(b"/a", b"1")).revision
        ok = (await store.txn([Compare.mod_revision(b"/a", "=", rev)],
                              [Op.put(b"/a", b"2")], [])).succeeded
"""

from __future__ import annotations

import asyncio
import ssl as ssl_module
from collections.abc import Iterable, Sequence
from typing import Any

from store import client_codec, errors
from store.client_transport import Transport
from store.client_types import (
    BytesLike,
    Compare,
    DeleteResult,
    LeaseTimeToLive,
    Member,
    Op,
    PutResult,
    RangeResult,
    SortOrder,
    SortTarget,
    Status,
    StoreUnavailable,
    TxnResult,
    WatchBatch,
    WatchCompacted,
    WatchFilter,
    prefix_range_end,
    to_bytes,
)
from store.client_watch import Watch, WatchSpec
from store.kv_types import KeyValue

__all__ = [
    "Compare",
    "DeleteResult",
    "LeaseTimeToLive",
    "Member",
    "Op",
    "PutResult",
    "RangeResult",
    "SortOrder",
    "SortTarget",
    "Status",
    "StoreClient",
    "StoreUnavailable",
    "TxnResult",
    "Watch",
    "WatchBatch",
    "WatchCompacted",
    "WatchFilter",
    "prefix_range_end",
]


class StoreClient:
    """A client for a store cluster given by its client URLs (http://host:port).

    `timeout` bounds every call including its failover; `connect_timeout` one connect;
    a read's single attempt gets `read_attempt_timeout` (default timeout / 2) so that a
    hung member leaves time to ask another. A silent watch stream gets a status probe
    after `watch_idle_probe` seconds.
    """

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        timeout: float = 10.0,
        ssl: ssl_module.SSLContext | bool | None = None,
        connect_timeout: float = 1.0,
        read_attempt_timeout: float | None = None,
        watch_idle_probe: float = 5.0,
    ) -> None:
        self._transport = Transport(
            list(endpoints),
            timeout=timeout,
            connect_timeout=connect_timeout,
            read_attempt_timeout=read_attempt_timeout or timeout / 2,
            ssl=ssl,
        )
        self._watch_idle_probe = watch_idle_probe

    async def __aenter__(self) -> StoreClient:
        self._transport.session()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Closes the HTTP session, and with it every watch stream still open."""
        await self._transport.close()

    @property
    def endpoints(self) -> list[str]:
        return list(self._transport.endpoints)

    async def _call(self, path: str, body: dict[str, Any], *, read_only: bool) -> dict[str, Any]:
        return await self._transport.call(path, body, read_only=read_only)

    # --- KV -------------------------------------------------------------------------

    async def get(
        self, key: BytesLike, *, revision: int = 0, serializable: bool = False
    ) -> KeyValue | None:
        result = await self.range(key, revision=revision, serializable=serializable)
        return result.kvs[0] if result.kvs else None

    async def range(
        self,
        key: BytesLike,
        range_end: BytesLike = b"",
        *,
        limit: int = 0,
        revision: int = 0,
        serializable: bool = False,
        keys_only: bool = False,
        count_only: bool = False,
        sort_order: SortOrder = SortOrder.NONE,
        sort_target: SortTarget = SortTarget.KEY,
    ) -> RangeResult:
        """Keys in [key, range_end); range_end b"" means just `key`, b"\\x00" means all >= key."""
        op = Op.get(
            key, range_end, limit=limit, revision=revision, serializable=serializable,
            keys_only=keys_only, count_only=count_only, sort_order=sort_order,
            sort_target=sort_target,
        )
        reply = await self._call("/v3/kv/range", client_codec.encode_fields(op.fields), read_only=True)
        return client_codec.decode_range(reply)

    async def get_prefix(self, prefix: BytesLike, **options: Any) -> RangeResult:
        """Every key starting with `prefix`; options as for `range`."""
        key = to_bytes(prefix) or b"\x00"
        return await self.range(key, prefix_range_end(prefix), **options)

    async def put(
        self, key: BytesLike, value: BytesLike, *, lease: int = 0, prev_kv: bool = False
    ) -> PutResult:
        op = Op.put(key, value, lease=lease, prev_kv=prev_kv)
        reply = await self._call("/v3/kv/put", client_codec.encode_fields(op.fields), read_only=False)
        return client_codec.decode_put(reply)

    async def delete(
        self, key: BytesLike, range_end: BytesLike = b"", *, prev_kv: bool = False
    ) -> DeleteResult:
        op = Op.delete(key, range_end, prev_kv=prev_kv)
        body = client_codec.encode_fields(op.fields)
        return client_codec.decode_delete(
            await self._call("/v3/kv/deleterange", body, read_only=False)
        )

    async def txn(
        self, compare: Sequence[Compare], success: Sequence[Op] = (), failure: Sequence[Op] = ()
    ) -> TxnResult:
        """All compares hold -> run `success`, else `failure`; atomically, one revision.

        A txn made only of reads may be resent to another member; any write makes it a
        write for failover purposes.
        """
        op = Op.txn(compare, success, failure)
        reply = await self._call(
            "/v3/kv/txn", client_codec.encode_fields(op.fields), read_only=op.is_read_only
        )
        return client_codec.decode_txn(reply)

    async def compact(self, revision: int, *, physical: bool = False) -> int:
        """Drop history before `revision`; returns the store's current revision."""
        body = client_codec.encode_fields({"revision": revision, "physical": physical})
        return client_codec.header_revision(
            await self._call("/v3/kv/compaction", body, read_only=False)
        )

    # --- leases ---------------------------------------------------------------------

    async def lease_grant(self, ttl: int, id: int = 0) -> tuple[int, int]:
        """Returns (lease ID, granted TTL); the server may raise a TTL below its minimum."""
        body = client_codec.encode_fields({"TTL": ttl, "ID": id})
        reply = await self._call("/v3/lease/grant", body, read_only=False)
        return client_codec.as_int(reply.get("ID")), client_codec.as_int(reply.get("TTL"))

    async def lease_revoke(self, id: int) -> int:
        """Revokes the lease and deletes its keys; returns the revision."""
        body = client_codec.encode_fields({"ID": id})
        return client_codec.header_revision(
            await self._call("/v3/lease/revoke", body, read_only=False)
        )

    async def lease_keepalive_once(self, id: int) -> int:
        """Renews the lease once; returns its TTL. Raises lease_not_found if it is gone.

        Renewing twice is harmless, so this fails over like a read. (The gateway's
        keepalive is a stream; one request object gets one reply line and the end.)
        """
        body = client_codec.encode_fields({"ID": id})
        reply = await self._call("/v3/lease/keepalive", body, read_only=True)
        result = reply.get("result")
        if not isinstance(result, dict):
            raise client_codec.decode_error(500, client_codec.dumps(reply))
        ttl = client_codec.as_int(result.get("TTL"))
        if ttl <= 0:
            raise errors.lease_not_found()
        return ttl

    async def lease_time_to_live(self, id: int, *, keys: bool = False) -> LeaseTimeToLive:
        body = client_codec.encode_fields({"ID": id, "keys": keys})
        reply = await self._call("/v3/lease/timetolive", body, read_only=True)
        return client_codec.decode_lease_ttl(reply)

    async def leases(self) -> list[int]:
        reply = await self._call("/v3/lease/leases", {}, read_only=True)
        return [client_codec.as_int(lease.get("ID")) for lease in reply.get("leases") or ()]

    # --- cluster and maintenance --------------------------------------------------------

    async def member_list(self) -> list[Member]:
        reply = await self._call("/v3/cluster/member/list", {}, read_only=True)
        return [client_codec.decode_member(m) for m in reply.get("members") or ()]

    async def member_add(
        self, peer_urls: Sequence[str], *, is_learner: bool = False
    ) -> tuple[Member, list[Member]]:
        """Returns the new member and the resulting member list."""
        body: dict[str, Any] = {"peerURLs": list(peer_urls)}
        if is_learner:
            body["isLearner"] = True
        reply = await self._call("/v3/cluster/member/add", body, read_only=False)
        members = [client_codec.decode_member(m) for m in reply.get("members") or ()]
        return client_codec.decode_member(reply.get("member") or {}), members

    async def member_remove(self, id: int) -> list[Member]:
        """Returns the member list without the removed member."""
        body = client_codec.encode_fields({"ID": id})
        reply = await self._call("/v3/cluster/member/remove", body, read_only=False)
        return [client_codec.decode_member(m) for m in reply.get("members") or ()]

    async def status(self, endpoint: str | None = None) -> Status:
        """Status of `endpoint` (asked once, no failover) or of whichever member answers."""
        if endpoint is None:
            for target in self._transport.rotation():
                try:
                    return await self._status_of(target)
                except StoreUnavailable:
                    continue
            raise StoreUnavailable("/v3/maintenance/status: no endpoint answered")
        return await self._status_of(endpoint)

    async def _status_of(self, endpoint: str) -> Status:
        reply = await self._transport.call(
            "/v3/maintenance/status", {}, read_only=True, endpoint=endpoint
        )
        return client_codec.decode_status(endpoint.rstrip("/"), reply)

    async def statuses(self) -> list[Status | StoreUnavailable]:
        """Every endpoint's status (or why it has none), asked concurrently."""
        endpoints = self._transport.endpoints
        results = await asyncio.gather(
            *(self._status_of(e) for e in endpoints), return_exceptions=True
        )
        return [_status_or_unavailable(e, r) for e, r in zip(endpoints, results, strict=True)]

    async def leader_endpoint(self) -> str | None:
        """The endpoint of the current leader, None if no endpoint is the leader.

        Writes work through any member (followers forward), so this is for tools and
        tests that care, e.g. to kill the leader on purpose.
        """
        answered = [s for s in await self.statuses() if isinstance(s, Status)]
        if not answered:
            raise StoreUnavailable("/v3/maintenance/status: no endpoint answered")
        return next((s.endpoint for s in answered if s.is_leader), None)

    # --- watch ----------------------------------------------------------------------

    def watch(
        self,
        key: BytesLike,
        range_end: BytesLike = b"",
        *,
        start_revision: int = 0,
        prev_kv: bool = False,
        progress_notify: bool = False,
        filters: Iterable[WatchFilter | str] = (),
    ) -> Watch:
        """Changes to [key, range_end) from `start_revision` (0: from now on).

        Use as `async with client.watch(...) as w: async for batch in w: ...`.
        """
        spec = WatchSpec(
            key=to_bytes(key),
            range_end=to_bytes(range_end),
            prev_kv=prev_kv,
            progress_notify=progress_notify,
            filters=tuple(_watch_filter(f) for f in filters),
        )
        return Watch(
            self._transport, spec, start_revision=start_revision,
            idle_probe=self._watch_idle_probe,
        )

    def watch_prefix(self, prefix: BytesLike, **options: Any) -> Watch:
        return self.watch(to_bytes(prefix) or b"\x00", prefix_range_end(prefix), **options)


def _watch_filter(value: WatchFilter | str) -> WatchFilter:
    return WatchFilter[value] if isinstance(value, str) else WatchFilter(value)


def _status_or_unavailable(endpoint: str, result: object) -> Status | StoreUnavailable:
    if isinstance(result, Status | StoreUnavailable):
        return result
    if isinstance(result, Exception):
        return StoreUnavailable(f"{endpoint}: status failed", causes=[repr(result)])
    if isinstance(result, BaseException):
        raise result  # cancellation must propagate
    raise TypeError(f"unexpected status result {result!r}")
