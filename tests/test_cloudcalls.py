"""CloudCalls: read-only guard, counts, retries with backoff, token buckets."""

from __future__ import annotations

import pytest

from lbprov.cloudcalls import (
    CallEvent,
    CloudCalls,
    RateLimits,
    ReadOnlyViolation,
    RetryPolicy,
    TokenBucket,
    WriteFenced,
    is_fenced,
)


class Throttled(Exception):
    pass


class Fatal(Exception):
    pass


def make(**kw: object) -> tuple[CloudCalls, list[float]]:
    slept: list[float] = []
    calls = CloudCalls(
        "test",
        is_write=lambda op: not op.startswith(("Describe", "Get", "List")),
        is_retryable=lambda e: isinstance(e, Throttled),
        is_throttle=lambda e: isinstance(e, Throttled),
        retry=RetryPolicy(max_attempts=4, initial_seconds=0.01, max_seconds=0.05),
        limits=RateLimits(reads_per_second=None, writes_per_second=None),
        sleep=slept.append,
        **kw,  # type: ignore[arg-type]
    )
    return calls, slept


def test_read_only_refuses_writes_before_sending_and_allows_reads() -> None:
    calls, _ = make(read_only=True)
    sent: list[str] = []
    with pytest.raises(ReadOnlyViolation, match="CreateThing"):
        calls.call("CreateThing", lambda: sent.append("create"))
    assert calls.call("DescribeThing", lambda: sent.append("describe") or "ok") == "ok"
    assert sent == ["describe"]
    assert calls.stats.writes == 0 and calls.stats.reads == 1
    assert calls.stats.refused["CreateThing"] == 1


def test_read_only_guard_in_hook_path_raises_even_when_hooked() -> None:
    calls, _ = make()
    with calls.read_only_mode(), pytest.raises(ReadOnlyViolation):
        calls.before_send("DeleteThing")
    assert calls.read_only is False
    assert calls.before_send("DeleteThing") == "write"


def test_counts_by_operation_and_kind() -> None:
    calls, _ = make()
    for op in ("DescribeA", "DescribeA", "CreateB"):
        calls.call(op, lambda: None)
    assert calls.stats.sent[("DescribeA", "read")] == 2
    assert calls.stats.sent[("CreateB", "write")] == 1
    assert calls.stats.to_json()["reads"] == 2
    assert calls.reset().writes == 1 and calls.stats.writes == 0


def test_hooked_calls_are_counted_once_by_the_hook() -> None:
    calls, _ = make()
    calls.call("DescribeA", lambda: calls.before_send("DescribeA"), hooked=True)
    assert calls.stats.reads == 1


def test_retries_transient_errors_with_backoff_and_records_it() -> None:
    calls, slept = make()
    attempts = {"n": 0}

    def flaky() -> str:
        attempts["n"] += 1
        if attempts["n"] < 3:
            raise Throttled()
        return "done"

    assert calls.call("CreateB", flaky) == "done"
    assert attempts["n"] == 3
    assert calls.stats.retries["CreateB"] == 2 and calls.stats.throttled["CreateB"] == 2
    assert len(slept) == 2 and all(0 <= s <= 0.05 for s in slept)
    assert calls.stats.backoff_seconds == pytest.approx(sum(slept))
    assert calls.stats.sent[("CreateB", "write")] == 3


def test_retries_are_bounded_and_reraise() -> None:
    calls, _ = make()
    with pytest.raises(Throttled):
        calls.call("CreateB", lambda: (_ for _ in ()).throw(Throttled()))
    assert calls.stats.sent[("CreateB", "write")] == 4
    assert calls.stats.errors["CreateB"] == 1


def test_backoff_grows_by_attempt_number_from_the_first_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first attempt runs outside tenacity (cloudcalls._retry): the waits after it must still be
    those of attempts 1, 2, 3 (jitter pinned to its upper bound: initial x 2^(n-1))."""
    monkeypatch.setattr("random.uniform", lambda low, high: high)
    calls, slept = make()
    with pytest.raises(Throttled):
        calls.call("CreateB", lambda: (_ for _ in ()).throw(Throttled()))
    assert slept == pytest.approx([0.01, 0.02, 0.04])
    assert calls.stats.retries["CreateB"] == 3 and calls.stats.errors["CreateB"] == 1


def test_one_attempt_means_no_retry_even_for_a_retryable_error() -> None:
    calls, slept = make()
    calls.retry = RetryPolicy(max_attempts=1)
    with pytest.raises(Throttled):
        calls.call("CreateB", lambda: (_ for _ in ()).throw(Throttled()))
    assert calls.stats.sent[("CreateB", "write")] == 1 and calls.stats.errors["CreateB"] == 1
    assert calls.stats.retries["CreateB"] == 0 and slept == []


def test_non_retryable_errors_are_not_retried() -> None:
    calls, _ = make()
    with pytest.raises(Fatal):
        calls.call("CreateB", lambda: (_ for _ in ()).throw(Fatal()))
    assert calls.stats.sent[("CreateB", "write")] == 1


def test_retry_after_is_honoured() -> None:
    slept: list[float] = []
    calls = CloudCalls(
        "test",
        is_write=lambda op: True,
        is_retryable=lambda e: True,
        retry_after=lambda e: 2.5,
        retry=RetryPolicy(max_attempts=2, initial_seconds=0.01, max_seconds=0.05),
        limits=RateLimits(None, 1, None, 1),
        sleep=slept.append,
    )
    n = {"i": 0}

    def once() -> None:
        n["i"] += 1
        if n["i"] == 1:
            raise Throttled()

    calls.call("PutThing", once)
    assert slept == [2.5]


def test_listeners_receive_events() -> None:
    calls, _ = make()
    seen: list[CallEvent] = []
    calls.listeners.append(seen.append)
    calls.call("DescribeA", lambda: None)
    assert [(e.operation, e.kind, e.result) for e in seen] == [
        ("DescribeA", "read", "sent"),
        ("DescribeA", "read", "ok"),
    ]


def test_token_bucket_limits_rate_after_burst() -> None:
    now = {"t": 0.0}
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now["t"] += s

    bucket = TokenBucket(10.0, 2, clock=lambda: now["t"], sleep=sleep)
    waits = [bucket.acquire() for _ in range(4)]
    assert waits[:2] == [0.0, 0.0]
    assert waits[2] == pytest.approx(0.1) and waits[3] == pytest.approx(0.1)
    assert TokenBucket(None).acquire() == 0.0


@pytest.mark.filterwarnings("error::FutureWarning")
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_refused_connection_names_its_endpoint_without_urllib3s_deprecated_pool(scheme: str) -> None:
    """urllib3 2 deprecates NewConnectionError.pool (a FutureWarning on every call that failed to
    connect); the endpoint is read from its ``conn``, and from a MaxRetryError's ``pool``."""
    import urllib3

    from lbprov.cloudcalls import failed_endpoint
    from lbprov.testing import HeldPort

    with HeldPort() as down:  # a port nothing listens on (and no other process can take)
        port = down.port
        for retries in (False, urllib3.Retry(0)):
            with pytest.raises(Exception) as info:
                urllib3.PoolManager(retries=retries).request("GET", f"{scheme}://127.0.0.1:{port}/x")
            assert failed_endpoint(info.value) == f"{scheme}://127.0.0.1:{port}"


# -- the write fence (leader election): writes due after the term may have ended are not sent ----


def _fenced(calls: CloudCalls, now: list[float]) -> CloudCalls:
    calls._clock = lambda: now[0]  # the fence's clock, moved by the test
    return calls


def test_a_fence_refuses_writes_due_after_it_unsent_and_lets_reads_through() -> None:
    now = [100.0]
    calls = _fenced(make()[0], now)
    sent: list[str] = []
    calls.fence(105.0, "this replica stopped leading")
    calls.call("CreateThing", lambda: sent.append("create"))  # before the fence: sent
    now[0] = 105.0
    with pytest.raises(WriteFenced, match="CreateThing not sent: this replica stopped leading") as info:
        calls.call("CreateThing", lambda: sent.append("late create"))
    assert not is_fenced(RuntimeError("another error"))
    wrapped = RuntimeError("the apply failed")
    wrapped.__cause__ = info.value
    assert is_fenced(wrapped) and is_fenced(info.value)
    assert calls.call("DescribeThing", lambda: sent.append("describe") or "ok") == "ok"
    assert sent == ["create", "describe"]
    assert calls.stats.writes == 1 and calls.stats.refused["CreateThing"] == 1
    # the hook path (the SDK's request hook calls before_send) is fenced too
    with pytest.raises(WriteFenced):
        calls.before_send("DeleteThing")
    # a later fence does not move an earlier one; unfence (leading again) lets writes through
    calls.fence(200.0, "later")
    with pytest.raises(WriteFenced, match="this replica stopped leading"):
        calls.before_send("DeleteThing")
    calls.unfence()
    calls.call("CreateThing", lambda: sent.append("create again"))
    assert sent[-1] == "create again" and calls.fenced_at is None


def test_a_write_retried_past_the_fence_stops_retrying_and_is_not_sent_again() -> None:
    now = [0.0]
    calls, slept = make()
    _fenced(calls, now)
    calls.fence(1.0, "fenced")
    attempts: list[float] = []

    def throttled_once() -> None:
        attempts.append(now[0])
        now[0] = 2.0  # the back-off takes the next attempt past the fence
        raise Throttled()

    with pytest.raises(WriteFenced):
        calls.call("CreateThing", throttled_once)
    assert attempts == [0.0] and len(slept) == 1
    assert calls.stats.retries["CreateThing"] == 1 and calls.stats.writes == 1
    assert not calls.circuit.is_open


def test_a_write_held_past_the_fence_by_a_wait_is_not_sent() -> None:
    """The review's repro: a write checked before the fence, then held by the write bucket or a
    shared Retry-After until after it, must be refused, not sent late."""
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    calls = CloudCalls(
        "test",
        is_write=lambda op: True,
        limits=RateLimits(reads_per_second=None, writes_per_second=2.0, write_burst=1),
        sleep=sleep,
    )
    _fenced(calls, now)
    calls._write_bucket = TokenBucket(2.0, 1, sleep=sleep, clock=lambda: now[0])
    calls.fence(0.2, "this replica stopped leading")
    sent: list[float] = []
    calls.call("Create1", lambda: sent.append(now[0]))  # the burst: at once, before the fence
    with pytest.raises(WriteFenced):
        calls.call("Create2", lambda: sent.append(now[0]))  # waits 0.5 s for a token
    assert sent == [0.0]
    # a shared Retry-After hold
    now[0] = 10.0
    calls.unfence()
    calls.fence(10.2, "this replica stopped leading")
    calls.circuit._clock = lambda: now[0]
    calls.circuit.throttle(1.0)  # as after a throttled answer with Retry-After: 1
    with pytest.raises(WriteFenced):
        calls.call("Create3", lambda: sent.append(now[0]))
    assert sent == [0.0]
