"""What pysyncobj spends its CPU on, made cheaper: peer message framing and journal sync.

Used by `store.raft_node` only (it is the one module that drives pysyncobj). Measured on
the 2-vCPU dev box, per 20 KB Raft message (a batch of ~60 puts), pysyncobj 0.3.17 as
shipped spends, all in its Raft thread and mostly holding the GIL:

    pickle protocol 2 (bytes go through latin-1 str)   65 us to send,  72 us to receive
    zlib level 3 (values are mostly incompressible)     88 us to send,  ~20 us to receive
    Fernet (AES-CBC + HMAC + base64, and the receiver
    verifies the HMAC twice: extract_timestamp, decrypt)  65 us to send, 223 us to receive

and it syncs the journal with `mmap.flush()`, an msync of the whole mapping that holds the
GIL (CPython 3.11) while the disk works, stalling the HTTP thread every 50 ms.

`install()` (idempotent, process-wide) changes three things:

* pickle protocol 5 for everything pysyncobj pickles (messages, replicated commands,
  journal meta): 3 us / 1.4 us for the same message. Readers accept every protocol, so
  journals and peers from before keep working.
* zlib level 0 ("stored") for peer messages: the receiver still inflates, so the framing
  is unchanged and any pysyncobj 0.3.17 peer still reads it.
* `PeerCipher` (AES-256-GCM) instead of Fernet: 5 us / 3 us. This one changes the wire
  format: every member of a cluster must run a kubelite with it (a Fernet peer's messages
  fail authentication and the connection is dropped, logged once a minute).

`CoalescingConf` + `check_commands_coalesced` cut peer messages: with appendEntriesUseBatch
off (needed for latency: pysyncobj otherwise waits for its next tick to send), the leader
sends append_entries to every follower once per command it takes from its queue; several
batches arriving in one tick (one per member under load) cost one round each. Coalesced, the
leader appends them all and then sends once.

`JournalSync` replaces the msync: a thread that calls `os.fdatasync` on the journal file
every `interval` seconds, with the GIL released. It gives the same guarantee as before (an
acknowledged write is on disk within `interval`), see RaftNode._sync_journal's history.
"""

from __future__ import annotations

import itertools
import logging
import os
import pickle
import struct
import threading
import time
import zlib
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from pysyncobj import SyncObjConf

log = logging.getLogger(__name__)

PICKLE_PROTOCOL = 5
ZLIB_LEVEL = 0

_installed = False
_install_lock = threading.Lock()


def install() -> None:
    """Patch pysyncobj's pickling, peer compression and peer cipher (once per process)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        import pysyncobj.pickle as sync_pickle
        import pysyncobj.syncobj as sync_syncobj
        import pysyncobj.tcp_connection as sync_tcp

        def dumps(obj, protocol=None):  # noqa: ARG001 (pysyncobj's signature)
            return pickle.dumps(obj, PICKLE_PROTOCOL)

        def dump(obj, file, protocol=None):  # noqa: ARG001
            pickle.dump(obj, file, PICKLE_PROTOCOL)

        sync_pickle.dumps = dumps
        sync_pickle.dump = dump
        sync_tcp.zlib = _StoredZlib()
        sync_syncobj.getEncryptor = PeerCipher
        _installed = True


class _StoredZlib:
    """The part of the zlib module pysyncobj's TcpConnection uses, writing level 0."""

    @staticmethod
    def compress(data: bytes, level: int = -1) -> bytes:  # noqa: ARG004
        return zlib.compress(data, ZLIB_LEVEL)

    decompress = staticmethod(zlib.decompress)
    error = zlib.error


# ---- one append_entries round per tick, not per command -------------------------------------


class CoalescingConf(SyncObjConf):
    """SyncObjConf whose appendEntriesUseBatch is off, except in the Raft thread while
    `check_commands_coalesced` takes commands from the queue (so that pysyncobj does not
    send a round per command there). Other threads always read it off, so `apply()` from
    the HTTP thread still wakes the Raft thread through pysyncobj's pipe at once."""

    def __init__(self, **kwargs: Any) -> None:
        self._coalescing = threading.local()
        kwargs["appendEntriesUseBatch"] = False
        super().__init__(**kwargs)

    @property
    def appendEntriesUseBatch(self) -> bool:  # noqa: N802 (pysyncobj's name)
        return getattr(self._coalescing, "on", False)

    @appendEntriesUseBatch.setter
    def appendEntriesUseBatch(self, value: bool) -> None:  # noqa: N802
        if value:
            raise ValueError("kubelite sends append_entries itself: batch mode stays off")


def check_commands_coalesced(node: Any, check: Callable[[], None]) -> None:
    """Run pysyncobj's `_checkCommandsToApply` (`check`), then, if the leader appended
    anything, send one append_entries round for all of it."""
    conf = node._SyncObj__conf
    raft_log = node._SyncObj__raftLog
    before = raft_log[-1][1]
    conf._coalescing.on = True
    try:
        check()
    finally:
        conf._coalescing.on = False
    if raft_log[-1][1] != before and node._isLeader():
        node._SyncObj__sendAppendEntries()


# ---- the peer cipher -----------------------------------------------------------------------

_MAGIC = b"K\x01"
_HEADER = struct.Struct(">2s16sQQ")  # magic, sender key salt, message counter, timestamp
_PBKDF2_SALT = b"kubelite raft peer cipher v1 ...."[:16]
_HKDF_INFO = b"kubelite raft peer message key v1"
_MAX_MESSAGES_PER_KEY = 1 << 48  # then a fresh sending key (nonces never repeat per key)
_MAX_RECEIVE_KEYS = 64


class PeerCipher:
    """AES-256-GCM for pysyncobj's TcpConnection, in place of its Fernet encryptor.

    pysyncobj calls `encrypt_at_time(data, t)` to send, and `extract_timestamp(token)`
    then `decrypt(token)` on each received message (checking that timestamps never go
    back; its per-connection random keys inside the plaintext stop replays).

    Keys: the shared secret gives a master key (PBKDF2-SHA256, 100k rounds, as pysyncobj
    does for Fernet); each process sends under its own key, HKDF(master, random 16-byte
    salt), with a counter as the GCM nonce, so a nonce never repeats under one key. A
    message carries the salt, the counter and the timestamp in clear, authenticated as
    associated data:

        b"K\\x01" | salt (16) | counter (8) | timestamp (8) | ciphertext | tag (16)
    """

    def __init__(self, password: str | bytes) -> None:
        secret = password if isinstance(password, bytes) else password.encode()
        kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=_PBKDF2_SALT,
                         iterations=100_000)
        self._master = kdf.derive(secret)
        self._send_lock = threading.Lock()
        self._new_send_key()
        self._receive: dict[bytes, AESGCM] = {}
        self._opened: tuple[bytes | None, bytes | None] = (None, None)
        self._last_warning = 0.0

    def _key(self, salt: bytes) -> AESGCM:
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_HKDF_INFO)
        return AESGCM(hkdf.derive(self._master))

    def _new_send_key(self) -> None:
        self._salt = os.urandom(16)
        self._aead = self._key(self._salt)
        self._counter = itertools.count()

    def encrypt_at_time(self, data: bytes, current_time: int) -> bytes:
        with self._send_lock:
            n = next(self._counter)
            if n >= _MAX_MESSAGES_PER_KEY:
                self._new_send_key()
                n = next(self._counter)
            header = _HEADER.pack(_MAGIC, self._salt, n, current_time)
            aead = self._aead
        return header + aead.encrypt(n.to_bytes(12, "big"), data, header)

    def _open(self, token: bytes) -> bytes:
        try:
            magic, salt, n, _ = _HEADER.unpack_from(token)
            if magic != _MAGIC:
                raise ValueError("not a kubelite peer message")
            aead = self._receive.get(salt)
            if aead is None:
                if len(self._receive) >= _MAX_RECEIVE_KEYS:
                    self._receive.clear()
                aead = self._receive[salt] = self._key(salt)
            header = token[:_HEADER.size]
            return aead.decrypt(n.to_bytes(12, "big"), token[_HEADER.size:], header)
        except Exception:
            now = time.monotonic()
            if now - self._last_warning > 60.0:
                self._last_warning = now
                log.warning("dropping a peer connection: a message failed authentication "
                            "(wrong --peer-secret-file, or a peer running another wire "
                            "format)")
            raise

    def extract_timestamp(self, token: bytes) -> int:
        """The sender's timestamp, once the whole message is authenticated."""
        plaintext = self._open(token)
        self._opened = (token, plaintext)
        return _HEADER.unpack_from(token)[3]

    def decrypt(self, token: bytes, ttl: int | None = None) -> bytes:  # noqa: ARG002
        opened, plaintext = self._opened
        self._opened = (None, None)
        if opened is token and plaintext is not None:
            return plaintext
        return self._open(token)


# ---- journal sync --------------------------------------------------------------------------


class JournalSync:
    """fdatasync pysyncobj's journal file every `interval` seconds, off the GIL.

    pysyncobj writes the journal through a shared mmap; those pages are the file's page
    cache, so fdatasync on our own descriptor of the same file writes them out. Syncs only
    when asked to (`poke`, once per Raft tick) and at most once per interval.
    """

    def __init__(self, path: str, interval: float) -> None:
        self._path = path
        self._interval = interval
        self._fd: int | None = None
        self._wake = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="journal-sync", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop:
            self._wake.wait()
            self._wake.clear()
            if self._stop:
                break
            started = time.monotonic()
            self.sync()
            rest = self._interval - (time.monotonic() - started)
            if rest > 0:
                time.sleep(rest)

    def sync(self) -> None:
        try:
            if self._fd is None:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CLOEXEC)
            os.fdatasync(self._fd)
        except OSError as exc:  # the file not there yet, or going away at shutdown
            log.debug("journal sync: %s", exc)

    def close(self) -> None:
        self._stop = True
        self._wake.set()
        self._thread.join(timeout=5.0)
        self.sync()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
