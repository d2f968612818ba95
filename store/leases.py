"""Lease table: grant, keepalive, revoke, and expiry as a function of time.

Time is always an argument (`now`, seconds since the epoch, stamped by the leader into
the command), never read here, so every replica computes the same expiries. As in
etcd's lessor, a TTL below the minimum is raised to it (etcd uses ~1.5 x election
timeout; ours is 2 s, matching the captured cluster), keepalive pushes expiry to
now + TTL, and a new leader extends every lease so none expires merely because
keepalives could not reach anyone during the election.

Deleting the keys of a revoked lease is the state machine's job (one write txn); this
module only tracks which keys are attached to which lease. Expiries are also indexed
in a SortedList so `expired(now)` costs O(log n + k), not a scan of every lease.
"""

from __future__ import annotations

from collections.abc import Iterable

from sortedcontainers import SortedList

from store import errors

MIN_LEASE_TTL = 2  # seconds; etcd: minLeaseTTL
MAX_LEASE_TTL = 9_000_000_000  # seconds; etcd: lease.MaxLeaseTTL
NO_LEASE = 0


class Lease:
    """One lease: its granted TTL, its absolute expiry and the keys attached to it."""

    __slots__ = ("id", "ttl", "expiry", "keys")

    def __init__(self, lease_id: int, ttl: int, expiry: float) -> None:
        self.id = lease_id
        self.ttl = ttl
        self.expiry = expiry
        self.keys: set[bytes] = set()

    def remaining(self, now: float) -> int:
        """Whole seconds left, truncated like etcd's int64(Remaining().Seconds()), >= 0."""
        return max(0, int(self.expiry - now))

    def __repr__(self) -> str:
        return f"Lease(id={self.id}, ttl={self.ttl}, expiry={self.expiry}, keys={len(self.keys)})"


class LeaseTable:
    """All leases, by ID, plus an expiry index."""

    def __init__(self) -> None:
        self._leases: dict[int, Lease] = {}
        self._by_expiry: SortedList = SortedList()  # (expiry, id)

    def __len__(self) -> int:
        return len(self._leases)

    def __contains__(self, lease_id: int) -> bool:
        return lease_id in self._leases

    def get(self, lease_id: int) -> Lease | None:
        return self._leases.get(lease_id)

    def ids(self) -> list[int]:
        return sorted(self._leases)

    def grant(self, lease_id: int, ttl: int, now: float) -> Lease:
        """Create a lease expiring at now + max(ttl, MIN_LEASE_TTL). Raises EtcdError."""
        if lease_id == NO_LEASE:
            raise errors.lease_not_found()  # etcd's lessor.Grant refuses ID 0 this way
        if ttl > MAX_LEASE_TTL:
            raise errors.lease_ttl_too_large()
        if lease_id in self._leases:
            raise errors.lease_exists()
        ttl = max(ttl, MIN_LEASE_TTL)
        lease = Lease(lease_id, ttl, now + ttl)
        self._leases[lease_id] = lease
        self._by_expiry.add((lease.expiry, lease_id))
        return lease

    def revoke(self, lease_id: int) -> Lease:
        """Remove the lease and return it (its keys are still listed). Raises EtcdError."""
        lease = self._leases.pop(lease_id, None)
        if lease is None:
            raise errors.lease_not_found()
        self._by_expiry.remove((lease.expiry, lease_id))
        return lease

    def keepalive(self, lease_id: int, now: float) -> int:
        """Renew to now + TTL and return the TTL; 0 if unknown or already expired.

        etcd's Renew refuses an expired lease that is waiting to be revoked, so a
        late keepalive cannot resurrect it.
        """
        lease = self._leases.get(lease_id)
        if lease is None or lease.expiry <= now:
            return 0
        self._set_expiry(lease, now + lease.ttl)
        return lease.ttl

    def extend_all(self, now: float) -> None:
        """A new leader: every expiry becomes max(expiry, now + ttl)."""
        for lease in self._leases.values():
            if now + lease.ttl > lease.expiry:
                self._set_expiry(lease, now + lease.ttl)

    def _set_expiry(self, lease: Lease, expiry: float) -> None:
        self._by_expiry.remove((lease.expiry, lease.id))
        lease.expiry = expiry
        self._by_expiry.add((expiry, lease.id))

    def expired(self, now: float) -> list[int]:
        """IDs of leases whose expiry <= now, earliest first."""
        return [lease_id for _, lease_id in self._by_expiry.irange(maximum=(now, float("inf")))]

    def remaining(self, lease_id: int, now: float) -> int:
        """Seconds left, or -1 for an unknown lease (etcd's timetolive answer)."""
        lease = self._leases.get(lease_id)
        return -1 if lease is None else lease.remaining(now)

    def attach(self, lease_id: int, key: bytes) -> None:
        lease = self._leases.get(lease_id)
        if lease is not None:
            lease.keys.add(key)

    def detach(self, lease_id: int, key: bytes) -> None:
        lease = self._leases.get(lease_id)
        if lease is not None:
            lease.keys.discard(key)

    def keys(self, lease_id: int) -> list[bytes]:
        """Keys attached to the lease, sorted (the order a revoke deletes them in)."""
        lease = self._leases.get(lease_id)
        return [] if lease is None else sorted(lease.keys)

    def items(self) -> list[tuple[int, int, float]]:
        """(id, ttl, expiry) of every lease, by ID: what a snapshot keeps."""
        return [(i, self._leases[i].ttl, self._leases[i].expiry) for i in sorted(self._leases)]

    @classmethod
    def restore(cls, items: Iterable[tuple[int, int, float]]) -> LeaseTable:
        """Rebuild from `items()`; attachments are re-derived from the keys' lease field."""
        table = cls()
        for lease_id, ttl, expiry in items:
            table._leases[lease_id] = Lease(lease_id, ttl, expiry)
        table._by_expiry = SortedList((lease.expiry, lease.id) for lease in table._leases.values())
        return table
