"""CloudCalls: the one path through which a provider touches its cloud SDK.

It gives every provider the same four things:

* **retries** with jittered exponential backoff on throttling, 5xx and connection errors (tenacity),
  with a bounded number of attempts, honouring a server's ``Retry-After``; the time spent waiting
  is recorded;
* a **token bucket** each for reads and for writes (configurable rates);
* a **count** of every request sent, by operation and read/write, and of retries, throttles and
  errors (exported as metrics, read by the benchmarks and the least-privilege test);
* a **read-only guard**: in read-only mode a mutating operation raises :class:`ReadOnlyViolation`
  *before* it is sent.

Providers hook :meth:`CloudCalls.before_send` into their SDK's request pipeline (botocore events,
an azure-core policy, a requests adapter), so that no request can bypass the guard or the count, and
wrap their calls in :meth:`CloudCalls.call` for retries. The core imports no cloud SDK: what counts
as "retryable" or "a write" is told by the provider.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import tenacity

T = TypeVar("T")
CallKind = Literal["read", "write"]


class ReadOnlyViolation(RuntimeError):
    """A mutating cloud operation was attempted while CloudCalls was read-only (dry run)."""

    def __init__(self, provider: str, operation: str) -> None:
        super().__init__(f"{provider}: refused to send mutating operation {operation} in read-only mode")
        self.provider = provider
        self.operation = operation


@dataclass(frozen=True)
class CallEvent:
    """One observation for metrics listeners."""

    provider: str
    operation: str
    kind: CallKind
    result: Literal["sent", "ok", "error", "throttled", "refused", "retry"]


class TokenBucket:
    """A thread-safe token bucket: ``rate`` tokens per second, at most ``burst`` saved up.

    ``rate=None`` (or 0) disables limiting. ``acquire`` blocks until a token is available and returns
    the seconds it waited.
    """

    def __init__(
        self,
        rate: float | None,
        burst: int | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate if rate and rate > 0 else None
        self.burst = float(burst if burst is not None else max(1, int(rate or 1)))
        self._tokens = self.burst
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        if self.rate is None:
            return 0.0
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return waited
                delay = (1 - self._tokens) / self.rate
            self._sleep(delay)
            waited += delay


@dataclass
class CallStats:
    """Counters since the last :meth:`CloudCalls.reset`."""

    sent: Counter[tuple[str, CallKind]] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)
    throttled: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    backoff_seconds: float = 0.0
    rate_limit_seconds: float = 0.0

    @property
    def reads(self) -> int:
        return sum(n for (_, kind), n in self.sent.items() if kind == "read")

    @property
    def writes(self) -> int:
        return sum(n for (_, kind), n in self.sent.items() if kind == "write")

    def operations(self, kind: CallKind | None = None) -> set[str]:
        return {op for (op, k) in self.sent if kind is None or k == kind}

    def to_json(self) -> dict[str, Any]:
        return {
            "reads": self.reads,
            "writes": self.writes,
            "by_operation": {
                f"{op} ({kind})": n for (op, kind), n in sorted(self.sent.items(), key=lambda kv: kv[0])
            },
            "retries": sum(self.retries.values()),
            "throttled": sum(self.throttled.values()),
            "errors": sum(self.errors.values()),
            "refused": sum(self.refused.values()),
            "backoff_seconds": round(self.backoff_seconds, 3),
            "rate_limit_seconds": round(self.rate_limit_seconds, 3),
        }


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded, jittered exponential backoff. ``max_attempts`` counts the first try."""

    max_attempts: int = 6
    initial_seconds: float = 0.2
    max_seconds: float = 20.0


@dataclass(frozen=True)
class RateLimits:
    """Client-side token buckets; ``None`` disables one. Defaults stay under the cloud's own limits."""

    reads_per_second: float | None = 20.0
    read_burst: int = 40
    writes_per_second: float | None = 5.0
    write_burst: int = 20


def _never(_: BaseException) -> bool:
    return False


def _no_retry_after(_: BaseException) -> float | None:
    return None


class CloudCalls:
    """Retries, rate limits, counts and the read-only guard for one provider instance.

    ``is_write(operation)`` tells whether an operation mutates; ``is_retryable(exc)`` whether an
    error is transient (throttling, 5xx, connection); ``is_throttle(exc)`` whether it was throttling;
    ``retry_after(exc)`` a server-requested delay in seconds, if any.
    """

    def __init__(
        self,
        provider: str,
        *,
        is_write: Callable[[str], bool],
        is_retryable: Callable[[BaseException], bool] = _never,
        is_throttle: Callable[[BaseException], bool] = _never,
        retry_after: Callable[[BaseException], float | None] = _no_retry_after,
        read_only: bool = False,
        retry: RetryPolicy | None = None,
        limits: RateLimits | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.provider = provider
        self.is_write = is_write
        self.is_retryable = is_retryable
        self.is_throttle = is_throttle
        self.retry_after = retry_after
        self.read_only = read_only
        self.retry = retry or RetryPolicy()
        limits = limits or RateLimits()
        self.limits = limits
        self._sleep = sleep
        self._read_bucket = TokenBucket(limits.reads_per_second, limits.read_burst, sleep=sleep)
        self._write_bucket = TokenBucket(limits.writes_per_second, limits.write_burst, sleep=sleep)
        self._lock = threading.Lock()
        self.stats = CallStats()
        self.listeners: list[Callable[[CallEvent], None]] = []
        self._local = threading.local()

    # -- the guard: called for every request actually sent ---------------------------------------

    def kind_of(self, operation: str) -> CallKind:
        return "write" if self.is_write(operation) else "read"

    def before_send(self, operation: str) -> CallKind:
        """Check, rate-limit and count one request that is about to be sent.

        Raises :class:`ReadOnlyViolation` for a mutating operation in read-only mode: the request is
        never sent. Providers call this from their SDK's request hook.
        """
        kind = self.kind_of(operation)
        if kind == "write" and self.read_only:
            with self._lock:
                self.stats.refused[operation] += 1
            self._emit(operation, kind, "refused")
            raise ReadOnlyViolation(self.provider, operation)
        waited = (self._write_bucket if kind == "write" else self._read_bucket).acquire()
        with self._lock:
            self.stats.sent[(operation, kind)] += 1
            self.stats.rate_limit_seconds += waited
        self._emit(operation, kind, "sent")
        return kind

    # -- the call wrapper: retries ---------------------------------------------------------------

    def call(
        self, operation: str, fn: Callable[..., T], *args: Any, hooked: bool = False, **kwargs: Any
    ) -> T:
        """Run ``fn(*args, **kwargs)`` with retries.

        With ``hooked=False`` each attempt first goes through :meth:`before_send`; with
        ``hooked=True`` the SDK's request hook does that itself (so it is not counted twice).
        """
        kind = self.kind_of(operation)

        def attempt() -> T:
            if not hooked:
                self.before_send(operation)
            return fn(*args, **kwargs)

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.retry.max_attempts),
            wait=self._wait,
            retry=tenacity.retry_if_exception(self._should_retry),
            before_sleep=lambda state: self._on_retry(operation, kind, state),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            result = retrying(attempt)
        except ReadOnlyViolation:
            raise
        except BaseException as exc:
            with self._lock:
                self.stats.errors[operation] += 1
            self._emit(operation, kind, "error")
            raise exc
        self._emit(operation, kind, "ok")
        return result

    def _should_retry(self, exc: BaseException) -> bool:
        if isinstance(exc, ReadOnlyViolation):
            return False
        return self.is_retryable(exc)

    def _wait(self, state: tenacity.RetryCallState) -> float:
        jitter = tenacity.wait_random_exponential(
            multiplier=self.retry.initial_seconds, max=self.retry.max_seconds
        )(state)
        exc = state.outcome.exception() if state.outcome else None
        requested = self.retry_after(exc) if exc is not None else None
        return max(jitter, min(requested, 300.0)) if requested is not None else jitter

    def _on_retry(self, operation: str, kind: CallKind, state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        with self._lock:
            self.stats.retries[operation] += 1
            self.stats.backoff_seconds += delay
            if exc is not None and self.is_throttle(exc):
                self.stats.throttled[operation] += 1
        self._emit(operation, kind, "retry")
        if exc is not None and self.is_throttle(exc):
            self._emit(operation, kind, "throttled")

    # -- bookkeeping ------------------------------------------------------------------------------

    def _emit(self, operation: str, kind: CallKind, result: Any) -> None:
        if not self.listeners:
            return
        event = CallEvent(self.provider, operation, kind, result)
        for listener in list(self.listeners):
            listener(event)

    def reset(self) -> CallStats:
        """Start counting afresh; returns the counters so far."""
        with self._lock:
            old, self.stats = self.stats, CallStats()
        return old

    @contextmanager
    def read_only_mode(self) -> Iterator[None]:
        """Temporarily refuse every mutating operation."""
        previous = self.read_only
        self.read_only = True
        try:
            yield
        finally:
            self.read_only = previous
