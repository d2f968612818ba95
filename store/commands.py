"""The replicated commands: the only inputs to `StoreState.apply`.

A command is a plain tuple `(CommandType, *args)` so that it pickles as builtins and
every replica decodes it the same way. The leader stamps everything that would
otherwise make apply nondeterministic into the arguments: wall time (`now`, seconds
as a float) and chosen IDs (lease IDs, member IDs). Apply never reads a clock or a
random source.

The enum is APPEND-ONLY: a value, once released, keeps its meaning forever, because
old log entries and snapshots are replayed by new code (consul's fsm and nomad's
structs follow the same rule). Never renumber, never reuse; add new types at the end.

Arguments, by type (`req` dicts are the internal request shapes of store/codec.py):

    NOOP              (NOOP,)
    PUT               (PUT, req)
    DELETE_RANGE      (DELETE_RANGE, req)
    TXN               (TXN, req)
    COMPACT           (COMPACT, req)
    LEASE_GRANT       (LEASE_GRANT, lease_id: int != 0, ttl: int, now: float)
    LEASE_REVOKE      (LEASE_REVOKE, lease_id: int)
    LEASE_KEEPALIVE   (LEASE_KEEPALIVE, lease_id: int, now: float)
    LEASE_EXPIRE      (LEASE_EXPIRE, lease_ids: tuple[int, ...], now: float)
                      revokes those whose expiry <= now; others and unknown ids ignored
    LEASE_EXTEND_ALL  (LEASE_EXTEND_ALL, now: float)
                      a new leader: expiry = max(expiry, now + ttl) for every lease
    MEMBER_ADD        (MEMBER_ADD, member_id: int, peer_urls: tuple[str, ...], is_learner: bool)
    MEMBER_REMOVE     (MEMBER_REMOVE, member_id: int)
    MEMBER_PUBLISH    (MEMBER_PUBLISH, member_id: int, name: str,
                       peer_urls: tuple[str, ...], client_urls: tuple[str, ...])
                      add-or-update a member's name and URLs when it starts
    MEMBER_PROMOTE    (MEMBER_PROMOTE, member_id: int)
                      a learner becomes a voting member
"""

from __future__ import annotations

import enum


class CommandType(enum.IntEnum):
    """Replicated command types. Append only; see the module docstring."""

    NOOP = 0
    PUT = 1
    DELETE_RANGE = 2
    TXN = 3
    COMPACT = 4
    LEASE_GRANT = 5
    LEASE_REVOKE = 6
    LEASE_KEEPALIVE = 7
    LEASE_EXPIRE = 8
    LEASE_EXTEND_ALL = 9
    MEMBER_ADD = 10
    MEMBER_REMOVE = 11
    MEMBER_PUBLISH = 12
    MEMBER_PROMOTE = 13


Command = tuple  # (CommandType, *args); kept a plain tuple so it pickles as builtins
