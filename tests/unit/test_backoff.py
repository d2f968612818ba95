"""Crash-loop back-off against the kubelet's sequence, and the retry helper's bounds."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents import backoff
from agents.backoff import Backoff, RetryBackoff, go_duration, pod_ref, retry_delay

KEY = ("uid-1", "web")


def crash_loop(b: Backoff, runs: list[float], start: float = 1000.0) -> list[float]:
    """Exit after each run in `runs`, restarting as soon as allowed; the waits applied."""
    waits = []
    now = start
    for ran in runs:
        now += ran
        waits.append(b.record_exit(KEY, ran, now))
        now = b.next_start(KEY, now, now)
    return waits


def test_the_kubelet_sequence_restarts_once_at_once_then_doubles_to_the_cap():
    waits = crash_loop(Backoff(), [1.0] * 9)
    assert waits == [0, 10, 20, 40, 80, 160, 300, 300, 300]


def test_a_stable_run_of_more_than_ten_minutes_starts_over():
    waits = crash_loop(Backoff(), [1, 1, 1, 601, 1, 1])
    assert waits == [0, 10, 20, 0, 10, 20]


def test_exactly_twice_the_cap_is_not_yet_stable():
    # The kubelet's hasExpired is a strict "more than 2 x max".
    assert crash_loop(Backoff(), [1, 600, 1]) == [0, 10, 20]


def test_waiting_is_measured_from_the_finish_time():
    b = Backoff()
    b.record_exit(KEY, 5, 100.0)
    b.record_exit(KEY, 5, 200.0)                      # second exit: 10 s
    assert b.in_backoff(KEY, 205.0)
    assert b.remaining(KEY, 205.0) == 5.0
    assert b.next_start(KEY, 200.0, 205.0) == 210.0
    assert not b.in_backoff(KEY, 210.0)
    assert b.next_start(KEY, 200.0, 250.0) == 250.0   # never in the past


def test_recording_the_same_exit_twice_changes_nothing():
    b = Backoff()
    b.record_exit(KEY, 5, 100.0)
    assert b.record_exit(KEY, 5, 200.0) == 10
    assert b.record_exit(KEY, 5, 200.0) == 10        # a sync loop asking again
    assert b.record_exit(KEY, 5, 300.0, container_id="c3") == 20
    assert b.record_exit(KEY, 5, 301.0, container_id="c3") == 20
    assert b.record_exit(KEY, 5, 400.0, container_id="c4") == 40


def test_containers_and_pods_back_off_separately():
    b = Backoff()
    crash_loop(b, [1, 1, 1])
    assert b.delay(KEY) == 20
    assert b.delay(("uid-1", "sidecar")) == 0
    b.record_exit(("uid-2", "web"), 1, 5.0)
    b.forget_pod("uid-1")
    assert b.delay(KEY) == 0 and len(b) == 1


def test_message_is_the_kubelets_word_for_word():
    b = Backoff()
    crash_loop(b, [1, 1, 1])
    assert b.message(KEY, pod=pod_ref("web-abc", "default", "uid-1")) == \
        "back-off 20s restarting failed container=web pod=web-abc_default(uid-1)"
    crash_loop(b, [1] * 5)
    assert b.message(KEY, pod="p_ns(u)", container="other") == \
        "back-off 5m0s restarting failed container=other pod=p_ns(u)"
    assert backoff.REASON == "CrashLoopBackOff"


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (10, "10s"), (80, "1m20s"), (160, "2m40s"), (300, "5m0s"), (3600, "1h0m0s"),
    (3725, "1h2m5s")])
def test_go_duration(seconds, text):
    assert go_duration(seconds) == text


def test_gc_drops_only_entries_quiet_past_the_stable_period():
    b = Backoff()
    b.record_exit(KEY, 1, 100.0)
    b.record_exit(("u", "other"), 1, 650.0)
    b.gc(now=701.0)
    assert len(b) == 1 and b.delay(("u", "other")) == 0
    assert b.record_exit(KEY, 1, 702.0) == 0          # forgotten: a first exit again


def test_bad_bounds_are_refused():
    with pytest.raises(ValueError):
        Backoff(initial=0)
    with pytest.raises(ValueError):
        Backoff(initial=20, cap=10)


def model_waits(runs: list[float], initial: float, cap: float) -> list[float]:
    """The kubelet's rule restated: the n-th unstable exit in a row waits initial*2^(n-2)."""
    waits, streak = [], 0
    for ran in runs:
        streak = 1 if streak == 0 or ran > 2 * cap else streak + 1
        waits.append(0.0 if streak == 1 else min(initial * 2 ** (streak - 2), cap))
    return waits


@given(st.lists(st.one_of(st.floats(0.001, 30), st.floats(0.001, 2000)), max_size=40),
       st.sampled_from([(10.0, 300.0), (1.0, 7.0), (0.5, 0.5)]))
def test_back_off_follows_the_model_and_never_exceeds_the_cap(runs, bounds):
    initial, cap = bounds
    waits = crash_loop(Backoff(initial, cap), runs)
    assert waits == model_waits(runs, initial, cap)
    assert all(0 <= w <= cap for w in waits)
    for ran, before, after in zip(runs[1:], waits, waits[1:], strict=False):
        if ran <= 2 * cap:
            assert after >= before                    # monotone until a stable run


@given(st.integers(0, 10_000), st.floats(0.01, 5), st.floats(5, 600), st.floats(0, 1),
       st.floats(0, 0.999))
def test_retry_delay_is_capped_and_jitter_only_shortens(attempt, initial, cap, jitter, draw):
    delay = retry_delay(attempt, initial=initial, cap=cap, jitter=jitter, draw=draw)
    plain = retry_delay(attempt, initial=initial, cap=cap)
    assert delay <= plain <= cap
    assert delay >= plain * (1 - jitter) - 1e-9
    assert plain <= retry_delay(attempt + 1, initial=initial, cap=cap)


def test_retry_backoff_grows_resets_and_is_reproducible_with_a_seed():
    first = RetryBackoff(0.2, 5.0, jitter=0.5, rng=random.Random(7))
    second = RetryBackoff(0.2, 5.0, jitter=0.5, rng=random.Random(7))
    delays = [first.next_delay() for _ in range(10)]
    assert delays == [second.next_delay() for _ in range(10)]
    assert 0.1 <= delays[0] <= 0.2 and all(d <= 5.0 for d in delays)
    assert delays[-1] >= 2.5                         # reached the cap's range
    first.reset()
    assert first.next_delay() <= 0.2
    with pytest.raises(ValueError):
        RetryBackoff(jitter=2)
