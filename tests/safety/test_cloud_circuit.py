"""Issue 13, cloud endpoints that hang or refuse: CloudCalls' timeouts and one circuit per provider.

Before: a hanging cloud endpoint cost 367 s for one Service (retries of read timeouts), then the
same again for the next Service. Now a connection-level failure is never retried request by
request: it opens the provider's circuit, every worker's calls fail at once without being sent
until the back-off passes, a single probe then goes out; plan/gc (``fail_fast``) stop at the first.
A server's ``Retry-After`` holds back every caller, not just the one that was throttled.
"""

from __future__ import annotations

import socket
import threading

import pytest

from lbprov.cloudcalls import (
    Circuit,
    CloudCalls,
    CloudUnreachable,
    RateLimits,
    RetryPolicy,
    Timeouts,
    is_connection_error,
)
from lbprov.testing import HeldPort


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Throttled(Exception):
    def __init__(self, retry_after: float | None = None) -> None:
        super().__init__("throttled")
        self.retry_after = retry_after


def make(**kw: object) -> tuple[CloudCalls, list[float]]:
    slept: list[float] = []
    calls = CloudCalls(
        "test",
        is_write=lambda op: op.startswith("Create"),
        is_retryable=lambda e: isinstance(e, Throttled | ConnectionError),
        is_throttle=lambda e: isinstance(e, Throttled),
        retry_after=lambda e: getattr(e, "retry_after", None),
        retry=RetryPolicy(max_attempts=5, initial_seconds=0.01, max_seconds=0.05),
        limits=RateLimits(reads_per_second=None, writes_per_second=None),
        sleep=slept.append,
        **kw,  # type: ignore[arg-type]
    )
    return calls, slept


def refused() -> ConnectionRefusedError:
    with HeldPort() as down:
        try:
            socket.create_connection(("127.0.0.1", down.port), timeout=60)
        except ConnectionRefusedError as exc:
            return exc
    raise AssertionError("a port nothing listens on accepted a connection")


def test_a_connection_failure_is_not_retried_and_opens_the_circuit_for_every_caller() -> None:
    calls, _ = make()
    clock = Clock()
    calls.circuit = Circuit(clock=clock)
    sent: list[str] = []

    def fail() -> None:
        sent.append("x")
        raise refused()

    with pytest.raises(CloudUnreachable) as first:
        calls.call("DescribeA", fail)
    assert sent == ["x"], "a connection-level failure must not be retried per request"
    assert first.value.sent and "connection refused" in str(first.value)
    # Another worker, another Service: fails at once, nothing sent.
    with pytest.raises(CloudUnreachable) as second:
        calls.call("DescribeB", lambda: sent.append("y"))
    assert not second.value.sent and sent == ["x"]
    # After the back-off one probe goes out; a success closes the circuit for everyone.
    clock.now += 1.01
    assert calls.call("DescribeC", lambda: sent.append("probe") or "ok") == "ok"
    assert calls.call("DescribeD", lambda: "ok") == "ok"
    assert not calls.circuit.is_open


def test_the_back_off_doubles_while_the_cloud_stays_unreachable() -> None:
    calls, _ = make()
    clock = Clock()
    calls.circuit = Circuit(clock=clock, initial=1.0, maximum=4.0)
    opened = []
    for _ in range(4):
        with pytest.raises(CloudUnreachable):
            calls.call("DescribeA", lambda: (_ for _ in ()).throw(refused()))
        opened.append(round(calls.circuit.open_until - clock.now, 2))
        clock.now = calls.circuit.open_until
    assert opened == [1.0, 2.0, 4.0, 4.0]


def test_fail_fast_keeps_the_circuit_open_for_the_rest_of_the_run() -> None:
    calls, _ = make(fail_fast=True)
    clock = Clock()
    calls.circuit = Circuit(clock=clock, fail_fast=True)
    with pytest.raises(CloudUnreachable):
        calls.call("DescribeA", lambda: (_ for _ in ()).throw(refused()))
    clock.now += 10_000
    sent: list[str] = []
    for op in ("DescribeB", "DescribeC"):
        with pytest.raises(CloudUnreachable) as caught:
            calls.call(op, lambda op=op: sent.append(op))
        assert not caught.value.sent
    assert sent == []


def test_only_one_probe_goes_out_when_the_back_off_ends() -> None:
    calls, _ = make()
    clock = Clock()
    calls.circuit = Circuit(clock=clock)
    with pytest.raises(CloudUnreachable):
        calls.call("DescribeA", lambda: (_ for _ in ()).throw(refused()))
    clock.now += 5
    inside = threading.Event()
    release = threading.Event()
    probes: list[str] = []

    def slow_probe() -> str:
        probes.append("probe")
        inside.set()
        release.wait(5)
        return "ok"

    t = threading.Thread(target=lambda: calls.call("DescribeB", slow_probe))
    t.start()
    assert inside.wait(5)
    with pytest.raises(CloudUnreachable) as caught:  # meanwhile, another worker is held back
        calls.call("DescribeC", lambda: probes.append("second"))
    assert not caught.value.sent
    release.set()
    t.join(5)
    assert probes == ["probe"]
    assert calls.call("DescribeD", lambda: "ok") == "ok"


def test_retry_after_holds_back_every_caller() -> None:
    calls, slept = make()
    attempts = iter([Throttled(retry_after=3.0)])

    def once_throttled() -> str:
        for exc in attempts:
            raise exc
        return "ok"

    assert calls.call("DescribeA", once_throttled) == "ok"
    # The throttled caller waited at least Retry-After; a different caller now waits too,
    # rather than discovering the throttle by itself.
    assert any(s >= 2.9 for s in slept), slept
    slept.clear()
    calls.circuit.not_before = calls.circuit._clock() + 2.0  # as set by another worker's 429
    assert calls.call("DescribeB", lambda: "ok") == "ok"
    assert slept and slept[0] > 1.5


def test_timeouts_are_exposed_for_the_sdk_and_errors_are_classified_by_name() -> None:
    calls, _ = make(timeouts=Timeouts(connect=3, read=7))
    assert (calls.timeouts.connect, calls.timeouts.read) == (3, 7)
    assert is_connection_error(refused())
    assert not is_connection_error(ValueError("bad request"))
    assert not is_connection_error(FileNotFoundError("key.json"))


def test_an_answer_from_the_cloud_even_an_error_closes_the_circuit() -> None:
    calls, _ = make()
    clock = Clock()
    calls.circuit = Circuit(clock=clock)
    with pytest.raises(CloudUnreachable):
        calls.call("DescribeA", lambda: (_ for _ in ()).throw(refused()))
    clock.now += 1.5

    class NotFound(Exception):
        pass

    with pytest.raises(NotFound):
        calls.call("DescribeB", lambda: (_ for _ in ()).throw(NotFound()))
    assert not calls.circuit.is_open
