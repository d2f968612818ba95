"""store.raft_wire: the peer cipher, the coalescing conf and the journal sync thread."""

from __future__ import annotations

import os
import threading

import pytest

from store import raft_wire


@pytest.fixture(scope="module")
def ciphers() -> tuple[raft_wire.PeerCipher, raft_wire.PeerCipher, raft_wire.PeerCipher]:
    """Two members with the same secret, one with another secret."""
    secret = "s3cret-peer-secret-of-24c"
    return (raft_wire.PeerCipher(secret), raft_wire.PeerCipher(secret),
            raft_wire.PeerCipher("another-secret-entirely"))


def test_round_trip_between_members_with_the_same_secret(ciphers) -> None:
    a, b, _ = ciphers
    data = os.urandom(3000)
    token = a.encrypt_at_time(data, 1234)
    assert data not in token
    assert b.extract_timestamp(token) == 1234
    assert b.decrypt(token) == data
    assert b.decrypt(a.encrypt_at_time(b"x", 5)) == b"x"  # without extract_timestamp first


def test_nonces_never_repeat_for_one_sender(ciphers) -> None:
    a, _, _ = ciphers
    headers = {a.encrypt_at_time(b"same", 1)[:raft_wire._HEADER.size] for _ in range(100)}
    assert len(headers) == 100


@pytest.mark.parametrize("where", [0, 5, 20, 30, 40, -1])
def test_any_changed_byte_is_refused(ciphers, where: int) -> None:
    a, b, _ = ciphers
    token = bytearray(a.encrypt_at_time(b"payload" * 10, 77))
    token[where] ^= 0x01
    with pytest.raises(Exception):  # noqa: B017 (pysyncobj drops the connection on any)
        b.extract_timestamp(bytes(token))


def test_another_secret_or_format_is_refused(ciphers) -> None:
    a, _, other = ciphers
    with pytest.raises(Exception):  # noqa: B017
        other.extract_timestamp(a.encrypt_at_time(b"hello", 1))
    with pytest.raises(Exception):  # noqa: B017
        a.decrypt(b"gAAAAABfernet-token-from-a-stock-pysyncobj-peer")


def test_coalescing_conf_reads_batch_mode_only_while_coalescing_in_that_thread() -> None:
    conf = raft_wire.CoalescingConf(password="x" * 16)
    assert conf.appendEntriesUseBatch is False
    conf._coalescing.on = True
    seen: list[bool] = []
    other = threading.Thread(target=lambda: seen.append(conf.appendEntriesUseBatch))
    other.start()
    other.join()
    assert conf.appendEntriesUseBatch is True and seen == [False]
    conf._coalescing.on = False
    with pytest.raises(ValueError):
        conf.appendEntriesUseBatch = True


def test_journal_sync_syncs_and_closes(tmp_path) -> None:
    path = tmp_path / "raft.journal"
    path.write_bytes(b"\0" * 4096)
    sync = raft_wire.JournalSync(str(path), 0.01)
    sync.poke()
    sync.close()
    assert sync._fd is None
    missing = raft_wire.JournalSync(str(tmp_path / "not-there"), 0.01)
    missing.poke()  # a missing file is not an error (the journal may not exist yet)
    missing.close()
