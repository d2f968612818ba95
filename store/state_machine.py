"""`StoreState.apply(command)`: the one way into the replicated state.

Every replica applies the same commands in the same order and must end in the same
state, so apply is a pure function of (state, command): no clock, no randomness, no
I/O. It dispatches once on the append-only `CommandType`; an unknown type raises (a
replica that cannot understand the log must stop, not diverge).

A request etcd would reject comes back as an `EtcdError` RESULT, not an exception, so
one bad request in a batch does not stop the others. Every check runs before the first
write, so a rejected request leaves nothing behind. Each successful write returns the
events it caused, in order, for the watch hub.

Read-only methods (`range`, `lease_time_to_live`, `events_since`, ...) are called by
the server under its own lock and raise `EtcdError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from store import errors, txn
from store.commands import CommandType
from store.errors import EtcdError
from store.kv_types import PUT, Event
from store.leases import LeaseTable
from store.mvcc import MVCCStore

Result = tuple[Any, list[Event]]  # (response dict or EtcdError, events)


class StoreState:
    """KV store, lease table and cluster membership: everything Raft replicates."""

    def __init__(
        self,
        kv: MVCCStore | None = None,
        leases: LeaseTable | None = None,
        members: Iterable[dict] = (),
        removed_members: Iterable[int] = (),
    ) -> None:
        self.kv = kv if kv is not None else MVCCStore()
        self.leases = leases if leases is not None else LeaseTable()
        self._members: dict[int, dict] = {m["ID"]: _member(**m) for m in members}
        self._removed: set[int] = set(removed_members)
        for kv_ in self.kv.current():  # attachments are derived state: rebuild them
            if kv_.lease:
                self.leases.attach(kv_.lease, kv_.key)
        self._handlers: dict[CommandType, Callable[..., Result]] = {
            CommandType.NOOP: self._noop,
            CommandType.PUT: self._put,
            CommandType.DELETE_RANGE: self._delete_range,
            CommandType.TXN: self._txn,
            CommandType.COMPACT: self._compact,
            CommandType.LEASE_GRANT: self._lease_grant,
            CommandType.LEASE_REVOKE: self._lease_revoke,
            CommandType.LEASE_KEEPALIVE: self._lease_keepalive,
            CommandType.LEASE_EXPIRE: self._lease_expire,
            CommandType.LEASE_EXTEND_ALL: self._lease_extend_all,
            CommandType.MEMBER_ADD: self._member_add,
            CommandType.MEMBER_REMOVE: self._member_remove,
            CommandType.MEMBER_PUBLISH: self._member_publish,
            CommandType.MEMBER_PROMOTE: self._member_promote,
        }

    # -- the dispatch ----------------------------------------------------------------

    def apply(self, command: tuple) -> Result:
        """Apply one replicated command; return (response or EtcdError, events)."""
        handler = self._handlers[CommandType(command[0])]  # unknown type: ValueError
        try:
            return handler(*command[1:])
        except EtcdError as err:  # raised only by checks, before any write
            if self.kv.in_txn:  # a check was missed: stop rather than keep a partial write
                raise RuntimeError(f"{err!r} raised after a write began") from err
            return err, []

    @property
    def revision(self) -> int:
        return self.kv.revision

    @property
    def compact_revision(self) -> int:
        """-1 until the first compaction (etcd's compactMainRev)."""
        return self.kv.compact_revision

    def _header(self) -> dict:
        return {"revision": self.kv.revision}

    def _end(self) -> list[Event]:
        """Close the write txn and move lease attachments along with the keys."""
        events = self.kv.end()
        leases = self.leases
        for ev in events:
            if ev.prev_kv is not None and ev.prev_kv.lease:
                leases.detach(ev.prev_kv.lease, ev.kv.key)
            if ev.type == PUT and ev.kv.lease:
                leases.attach(ev.kv.lease, ev.kv.key)
        return events

    def _noop(self) -> Result:
        return {"header": self._header()}, []

    # -- KV --------------------------------------------------------------------------

    def _put(self, req: dict) -> Result:
        txn.check_put(req)
        if req["lease"] and req["lease"] not in self.leases:
            raise errors.lease_not_found()
        self._check_prev_exists(req)
        self.kv.begin()
        resp = self._do_put(req)
        return resp, self._end()

    def _check_prev_exists(self, req: dict) -> None:
        if (req["ignore_value"] or req["ignore_lease"]) and not self.kv.range(req["key"], b"").kvs:
            raise errors.key_not_found()  # ignore_* needs a previous version to copy

    def _do_put(self, req: dict) -> dict:
        key, value, lease = req["key"], req["value"], req["lease"]
        found = self.kv.range(key, b"").kvs
        prev = found[0] if found else None
        if prev is not None and req["ignore_value"]:
            value = prev.value
        if prev is not None and req["ignore_lease"]:
            lease = prev.lease
        new, _ = self.kv.put(key, value, lease)
        return {
            "header": {"revision": new.mod_revision},
            "prev_kv": prev if req["prev_kv"] else None,
        }

    def _delete_range(self, req: dict) -> Result:
        txn.check_delete(req)
        self.kv.begin()
        resp = self._do_delete(req)
        return resp, self._end()

    def _do_delete(self, req: dict) -> dict:
        prevs = self.kv.delete_range(req["key"], req["range_end"])
        return {
            "header": {"revision": self.kv.read_revision},
            "deleted": len(prevs),
            "prev_kvs": prevs if req["prev_kv"] else [],
        }

    def _txn(self, req: dict) -> Result:
        txn.check_txn(req)
        path = txn.plan(req, lambda key, end: self.kv.range(key, end).kvs)
        for put in txn.walk(path, txn.PUT):  # etcd checks every put, then every range
            self._check_prev_exists(put)
            if put["lease"] and put["lease"] not in self.leases:
                raise errors.lease_not_found()
        for rng in txn.walk(path, txn.RANGE):
            if rng["revision"] > self.kv.revision:
                raise errors.future_revision()
            if rng["revision"] and rng["revision"] < self.kv.compact_revision:
                raise errors.compacted()
        self.kv.begin()
        resp = self._run(path)
        events = self._end()
        resp["header"] = self._header()
        return resp, events

    def _run(self, path: txn.Plan) -> dict:
        responses = []
        for kind, req, sub in path.steps:
            if kind == txn.PUT:
                resp = self._do_put(req)
            elif kind == txn.DELETE_RANGE:
                resp = self._do_delete(req)
            elif kind == txn.RANGE:
                resp = self.kv.range_request(req)
            else:
                assert sub is not None
                resp = self._run(sub)
            responses.append({txn.RESPONSE[kind]: resp})
        # A nested txn's header stays empty in etcd (revision 0); the caller fills the top.
        return {"header": {"revision": 0}, "succeeded": path.succeeded, "responses": responses}

    def _compact(self, req: dict) -> Result:
        self.kv.compact(req["revision"])
        return {"header": self._header()}, []

    # -- leases ----------------------------------------------------------------------

    def _lease_grant(self, lease_id: int, ttl: int, now: float) -> Result:
        lease = self.leases.grant(lease_id, ttl, now)
        return {"header": self._header(), "ID": lease.id, "TTL": lease.ttl, "error": ""}, []

    def _revoke(self, lease_id: int) -> list[Event]:
        """Delete the lease's keys in one revision (sorted, as etcd), then the lease."""
        self.kv.begin()
        for key in self.leases.keys(lease_id):
            self.kv.delete_range(key, b"")
        events = self._end()
        self.leases.revoke(lease_id)
        return events

    def _lease_revoke(self, lease_id: int) -> Result:
        if lease_id not in self.leases:
            raise errors.lease_not_found()
        events = self._revoke(lease_id)
        return {"header": self._header()}, events

    def _lease_keepalive(self, lease_id: int, now: float) -> Result:
        ttl = self.leases.keepalive(lease_id, now)
        return {"header": self._header(), "ID": lease_id, "TTL": ttl}, []

    def _lease_expire(self, lease_ids: tuple[int, ...], now: float) -> Result:
        revoked: list[int] = []
        events: list[Event] = []
        for lease_id in lease_ids:
            lease = self.leases.get(lease_id)
            if lease is not None and lease.expiry <= now:
                events.extend(self._revoke(lease_id))
                revoked.append(lease_id)
        return {"header": self._header(), "revoked": revoked}, events

    def _lease_extend_all(self, now: float) -> Result:
        self.leases.extend_all(now)
        return {"header": self._header()}, []

    # -- membership ------------------------------------------------------------------

    def _check_peer_urls(self, member_id: int, peer_urls: Iterable[str]) -> None:
        taken = {u for m in self._members.values() if m["ID"] != member_id for u in m["peerURLs"]}
        if any(u in taken for u in peer_urls):
            raise errors.peer_url_exists()

    def _member_add(self, member_id: int, peer_urls: tuple[str, ...], is_learner: bool) -> Result:
        if member_id in self._removed:
            raise errors.member_not_found()  # etcd: ErrIDRemoved maps to member not found
        if member_id in self._members:
            raise errors.member_exists()
        self._check_peer_urls(member_id, peer_urls)
        member = _member(member_id, "", peer_urls, (), is_learner)
        self._members[member_id] = member
        return {
            "header": {"revision": 0},
            "member": _copy_member(member),
            "members": self.members(),
        }, []

    def _member_remove(self, member_id: int) -> Result:
        if member_id not in self._members:
            raise errors.member_not_found()
        del self._members[member_id]
        self._removed.add(member_id)
        return {"header": {"revision": 0}, "members": self.members()}, []

    def _member_publish(
        self, member_id: int, name: str, peer_urls: tuple[str, ...], client_urls: tuple[str, ...]
    ) -> Result:
        if member_id in self._removed:
            raise errors.member_not_found()  # a removed member must not come back
        self._check_peer_urls(member_id, peer_urls)
        old = self._members.get(member_id)
        member = _member(
            member_id, name, peer_urls, client_urls, old["isLearner"] if old else False
        )
        self._members[member_id] = member
        return {
            "header": {"revision": 0},
            "member": _copy_member(member),
            "members": self.members(),
        }, []

    def _member_promote(self, member_id: int) -> Result:
        member = self._members.get(member_id)
        if member is None:
            raise errors.member_not_found()
        if not member["isLearner"]:
            raise errors.EtcdError("etcdserver: can only promote a learner member",
                                   errors.GrpcCode.FAILED_PRECONDITION)
        self._members[member_id] = dict(member, isLearner=False)
        return {"header": {"revision": 0}, "members": self.members()}, []

    # -- reads (server side, under its lock) ----------------------------------------

    def range(self, req: dict) -> dict:
        """A RangeRequest against the current state. Raises EtcdError."""
        txn.check_range(req)
        return self.kv.range_request(req)

    def lease_time_to_live(self, lease_id: int, keys: bool, now: float) -> dict:
        lease = self.leases.get(lease_id)
        if lease is None:  # etcd answers 200 with TTL -1, not an error
            return {
                "header": self._header(),
                "ID": lease_id,
                "TTL": -1,
                "grantedTTL": 0,
                "keys": [],
            }
        return {
            "header": self._header(),
            "ID": lease_id,
            "TTL": lease.remaining(now),
            "grantedTTL": lease.ttl,
            "keys": sorted(lease.keys) if keys else [],
        }

    def lease_leases(self) -> dict:
        return {"header": self._header(), "leases": [{"ID": i} for i in self.leases.ids()]}

    def events_since(self, start_revision: int, key: bytes, range_end: bytes) -> list[Event]:
        """Events at revision >= start on the range; compacted error if start < compact rev."""
        return self.kv.events_since(start_revision, key, range_end)

    def expired_leases(self, now: float) -> list[int]:
        return self.leases.expired(now)

    def members(self) -> list[dict]:
        """Members by ID, as etcd lists them; copies, safe to hand out."""
        return [_copy_member(self._members[i]) for i in sorted(self._members)]

    def removed_members(self) -> list[int]:
        return sorted(self._removed)


def _member(
    ID: int,
    name: str,
    peerURLs: Iterable[str],
    clientURLs: Iterable[str],
    isLearner: bool,  # noqa: N803
) -> dict:
    return {
        "ID": ID,
        "name": name,
        "peerURLs": list(peerURLs),
        "clientURLs": list(clientURLs),
        "isLearner": bool(isLearner),
    }


def _copy_member(m: dict) -> dict:
    return {**m, "peerURLs": list(m["peerURLs"]), "clientURLs": list(m["clientURLs"])}
