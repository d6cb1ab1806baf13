"""CloudCalls: the one path through which a provider touches its cloud SDK.

It gives every provider the same four things:

* **retries** with jittered exponential backoff on throttling, 5xx and connection errors (tenacity),
  with a bounded number of attempts, honouring a server's ``Retry-After``; the time spent waiting
  is recorded;
* a **token bucket** each for reads and for writes (configurable rates);
* a **count** of every request sent, by operation and read/write, and of retries, throttles and
  errors (exported as metrics, read by the benchmarks and the least-privilege test);
* a **read-only guard**: in read-only mode a mutating operation raises :class:`ReadOnlyViolation`
  *before* it is sent;
* **timeouts and one circuit per provider**: :attr:`CloudCalls.timeouts` are the connect and read
  timeouts the provider gives its SDK client; a connection-level failure (refused, DNS, TLS,
  timeout) is never retried request by request. It raises :class:`CloudUnreachable` (naming the
  endpoint and what to check) and opens the provider's :class:`Circuit`: while it is open, every
  call of every worker fails at once without being sent, and a single probe goes out when it
  closes (back-off doubling per failure). A ``Retry-After`` from a throttled answer likewise holds
  back *every* caller until it has passed. With ``fail_fast`` (``lbprov plan`` and ``gc``) the
  first connection-level failure keeps the circuit open for good: the run ends once, with one line;
* a **write fence** for leader election: once a replica stops leading, the controller fences its
  providers' writes at the moment another replica may take the lease (:meth:`CloudCalls.fence`);
  a write still to be sent after it raises :class:`WriteFenced` unsent, so a reconcile or node sync
  stuck past its term cannot write beside the next leader (upstream's controllers exit instead).

Providers hook :meth:`CloudCalls.before_send` into their SDK's request pipeline (botocore events,
an azure-core policy, a requests adapter), so that no request can bypass the guard or the count, and
wrap their calls in :meth:`CloudCalls.call` for retries. The core imports no cloud SDK: what counts
as "retryable" or "a write" is told by the provider.
"""

from __future__ import annotations

import logging
import math
import socket
import ssl
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import tenacity

T = TypeVar("T")
CallKind = Literal["read", "write"]

log = logging.getLogger("lbprov.cloudcalls")


class ReadOnlyViolation(RuntimeError):
    """A mutating cloud operation was attempted while CloudCalls was read-only (dry run)."""

    def __init__(self, provider: str, operation: str) -> None:
        super().__init__(f"{provider}: refused to send mutating operation {operation} in read-only mode")
        self.provider = provider
        self.operation = operation


class WriteFenced(RuntimeError):
    """A mutating operation was due after this replica's term may have ended (:meth:`CloudCalls.fence`).

    Nothing was sent. The next leader re-plans the Service from what the cloud holds.
    """

    def __init__(self, provider: str, operation: str, reason: str) -> None:
        super().__init__(f"{provider}: {operation} not sent: {reason}")
        self.provider = provider
        self.operation = operation
        self.reason = reason


class CloudUnreachable(Exception):
    """A cloud endpoint could not be reached (refused, DNS, TLS, timeout), or the provider's circuit
    is open after such a failure (``sent`` is False: this request never left).

    The message names the endpoint, what went wrong and what to check; it reads the same on every
    cloud.
    """

    def __init__(self, provider: str, endpoint: str, detail: str, check: str, *, sent: bool = True) -> None:
        super().__init__(f"{provider}: cannot reach {endpoint}: {detail}: {check}")
        self.provider = provider
        self.endpoint = endpoint
        self.detail = detail
        self.check = check
        self.sent = sent

    def unsent(self) -> CloudUnreachable:
        """The same failure, for a request the open circuit kept back."""
        return CloudUnreachable(self.provider, self.endpoint, self.detail, self.check, sent=False)


@dataclass(frozen=True)
class Timeouts:
    """Seconds to wait for a connection and for an answer; providers give them to their SDK."""

    connect: float = 5.0
    read: float = 30.0


#: Class names (anywhere in an exception's MRO) of connection-level failures of the cloud SDKs and
#: their HTTP stacks. Recognised by name: the core imports no SDK.
_CONNECTION_CLASSES = frozenset(
    {
        # botocore
        "botocore.exceptions.HTTPClientError",
        "botocore.exceptions.ConnectionError",
        # requests (google-cloud-compute's transport)
        "requests.exceptions.ConnectionError",
        "requests.exceptions.Timeout",
        # azure-core
        "azure.core.exceptions.ServiceRequestError",
        "azure.core.exceptions.ServiceResponseError",
        # google-auth (token refresh over the network)
        "google.auth.exceptions.TransportError",
        # urllib3
        "urllib3.exceptions.MaxRetryError",
        "urllib3.exceptions.NewConnectionError",
        "urllib3.exceptions.ProtocolError",
        "urllib3.exceptions.TimeoutError",
        "urllib3.exceptions.SSLError",
    }
)


def _class_names(exc: BaseException) -> set[str]:
    return {f"{cls.__module__}.{cls.__qualname__}" for cls in type(exc).__mro__}


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception, its causes and (azure-core) ``inner_exception``s."""
    out: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or any(current is seen for seen in out) or len(out) > 16:
            continue
        out.append(current)
        inner = getattr(current, "inner_exception", None)
        todo += [current.__cause__, current.__context__, inner if isinstance(inner, BaseException) else None]
    return out


def is_fenced(exc: BaseException) -> bool:
    """Whether ``exc`` (or an error it was raised from) is a :class:`WriteFenced`."""
    return any(isinstance(link, WriteFenced) for link in _chain(exc))


def is_connection_error(exc: BaseException) -> bool:
    """Did ``exc`` (or its cause) fail at the connection level, with no HTTP answer?"""
    for link in _chain(exc):
        if isinstance(
            link, CloudUnreachable | ConnectionError | TimeoutError | socket.gaierror | ssl.SSLError
        ):
            return True
        if _class_names(link) & _CONNECTION_CLASSES:
            return True
    return False


def _origin(url: str) -> str | None:
    parsed = urllib.parse.urlsplit(url)
    return f"{parsed.scheme}://{parsed.netloc}" if parsed.scheme and parsed.netloc else None


def failed_endpoint(exc: BaseException) -> str | None:
    """The endpoint (``scheme://host[:port]``) a connection-level failure names, if any."""
    for link in _chain(exc):
        kwargs = getattr(link, "kwargs", None)
        if isinstance(kwargs, dict) and isinstance(kwargs.get("endpoint_url"), str):
            return _origin(kwargs["endpoint_url"]) or str(kwargs["endpoint_url"])
        request = getattr(link, "request", None)
        url = getattr(request, "url", None)
        if isinstance(url, str) and (origin := _origin(url)):
            return origin
        # urllib3 2: a NewConnectionError names its connection as ``conn`` (its ``pool`` property
        # is deprecated and warns); a MaxRetryError names its connection pool as ``pool``.
        target = (
            getattr(link, "conn", None)
            if "conn" in getattr(link, "__dict__", {})
            else getattr(link, "pool", None)
        )
        if target is not None and getattr(target, "host", None):
            port = getattr(target, "port", None)
            scheme = getattr(target, "scheme", None) or (
                "https" if getattr(target, "default_port", 443) == 443 else "http"
            )
            return f"{scheme}://{target.host}" + (f":{port}" if port else "")
    return None


def describe_connection_error(exc: BaseException, timeouts: Timeouts) -> tuple[str, str]:
    """``(what went wrong, what to check)`` for a connection-level failure, alike on every cloud."""
    texts = []
    names: set[str] = set()
    for link in _chain(exc):
        texts.append(str(link))
        names |= {cls.__name__ for cls in type(link).__mro__}
    text = " ".join(texts).lower()
    proxy = "the network path, firewall and proxy settings (HTTPS_PROXY/NO_PROXY)"
    if {"SSLError", "SSLCertVerificationError"} & names or "certificate" in text or "ssl" in text:
        return (
            "TLS failed (certificate or handshake)",
            "check the CA bundle (REQUESTS_CA_BUNDLE, AWS_CA_BUNDLE, SSL_CERT_FILE) and any "
            "TLS-intercepting proxy",
        )
    if (
        "gaierror" in names
        or "NameResolutionError" in names
        or any(s in text for s in ("name or service not known", "failed to resolve", "nodename nor servname"))
    ):
        return "the host name does not resolve", "check the region/endpoint setting and DNS"
    if "ReadTimeoutError" in names or "ReadTimeout" in names or "read timed out" in text:
        return (
            "the read timed out (the connection was accepted, no answer came)",
            f"check {proxy}, and the cloud's status",
        )
    if "refused" in text:
        return "connection refused", f"check the endpoint URL and port, and {proxy}"
    if "timeout" in " ".join(names).lower() or "timed out" in text:
        return "the connection timed out", f"check {proxy}"
    first = next((t for t in texts if t.strip()), type(exc).__name__).strip().splitlines()[0][:160]
    return f"connection failed ({first})", f"check {proxy}"


class Circuit:
    """One provider's connection circuit and shared throttle back-off (all workers see one).

    ``failed`` opens it for a back-off that doubles with each consecutive failure (from
    ``initial`` up to ``maximum`` seconds; forever with ``fail_fast``); while it is open, ``check``
    returns the failure to raise without sending. When the back-off has passed, exactly one caller
    probes; any answer from the cloud (even an error) closes it. ``throttle(delay)`` holds every
    caller back until ``delay`` seconds from now (a server's ``Retry-After``).
    """

    def __init__(
        self,
        *,
        initial: float = 1.0,
        maximum: float = 60.0,
        fail_fast: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.initial = initial
        self.maximum = maximum
        self.fail_fast = fail_fast
        self._clock = clock
        self._lock = threading.Lock()
        self.failures = 0
        self.open_until = 0.0
        self.not_before = 0.0
        self.last: CloudUnreachable | None = None
        self._prober: int | None = None  # thread id of the one caller probing a half-open circuit

    @property
    def is_open(self) -> bool:
        return self.last is not None

    def check(self) -> CloudUnreachable | None:
        """None: go ahead (possibly as the probe); else the failure to raise without sending."""
        with self._lock:
            if self.last is None:
                return None
            me = threading.get_ident()
            if self._prober == me:
                return None  # the probe's own request (an SDK hook checks again)
            if self._clock() < self.open_until or self._prober is not None:
                return self.last.unsent()
            self._prober = me
            return None

    def failed(self, error: CloudUnreachable) -> float | None:
        """Record a failure; returns the new back-off when this failure opened (or re-opened) it."""
        with self._lock:
            self._prober = None
            if self.last is not None and self._clock() < self.open_until:
                return None  # a request sent before the circuit opened: already counted
            self.failures += 1
            delay = math.inf if self.fail_fast else min(self.maximum, self.initial * 2 ** (self.failures - 1))
            self.open_until = self._clock() + delay
            self.last = error
            return delay

    def reachable(self) -> bool:
        """The cloud answered: close the circuit. True if it was open."""
        with self._lock:
            self._prober = None
            was_open = self.last is not None
            if not self.fail_fast:
                self.failures = 0
                self.last = None
                self.open_until = 0.0
            return was_open

    def release_probe(self) -> None:
        """The probe ended without reaching the cloud for another reason (nothing was sent)."""
        with self._lock:
            if self._prober == threading.get_ident():
                self._prober = None

    def throttle(self, delay: float) -> None:
        with self._lock:
            self.not_before = max(self.not_before, self._clock() + delay)

    def wait_seconds(self) -> float:
        with self._lock:
            return max(0.0, self.not_before - self._clock())


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

    def by_operation(self) -> Counter[str]:
        """Requests sent per operation, reads and writes together."""
        out: Counter[str] = Counter()
        for (op, _), n in self.sent.items():
            out[op] += n
        return out

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
        timeouts: Timeouts | None = None,
        fail_fast: bool = False,
        endpoint: str | None = None,
    ) -> None:
        self.provider = provider
        #: Connect and read timeouts the provider passes to its SDK client.
        self.timeouts = timeouts or Timeouts()
        #: The endpoint to name when a failure does not carry one (providers may set it).
        self.endpoint = endpoint
        self.circuit = Circuit(fail_fast=fail_fast)
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
        self._clock = time.monotonic
        #: (monotonic deadline, reason) of the write fence, or None (see :meth:`fence`).
        self._fence: tuple[float, str] | None = None

    # -- the guard: called for every request actually sent ---------------------------------------

    @property
    def fail_fast(self) -> bool:
        """plan/gc: the first connection-level failure ends every further call (one error per run)."""
        return self.circuit.fail_fast

    @fail_fast.setter
    def fail_fast(self, value: bool) -> None:
        self.circuit.fail_fast = value

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
        if kind == "write":
            self._check_fence(operation)  # before any wait: refused at once
        self._gate()
        waited = (self._write_bucket if kind == "write" else self._read_bucket).acquire()
        if kind == "write":
            self._check_fence(operation)  # a rate limit or a shared Retry-After may have held it past
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
            if hooked:
                self._gate()  # the SDK's hook gates again per request (pollers, pages)
            else:
                self.before_send(operation)
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                unreachable = self.unreachable(exc)
                if unreachable is not None:
                    raise unreachable from exc
                if isinstance(exc, ReadOnlyViolation | WriteFenced):
                    self.circuit.release_probe()
                else:
                    self._reachable()
                    requested = self.retry_after(exc) if self.is_throttle(exc) else None
                    if requested:
                        self.circuit.throttle(min(requested, 300.0))
                raise
            self._reachable()
            return result

        try:
            try:
                result = attempt()
            except BaseException as exc:
                if self.retry.max_attempts <= 1 or not self._should_retry(exc):
                    raise
                result = self._retry(operation, kind, attempt, exc)
        except (ReadOnlyViolation, WriteFenced):
            raise
        except BaseException as exc:
            with self._lock:
                self.stats.errors[operation] += 1
            self._emit(operation, kind, "error")
            raise exc
        self._emit(operation, kind, "ok")
        return result

    def _retry(self, operation: str, kind: CallKind, attempt: Callable[[], T], failed: BaseException) -> T:
        """The attempts after a first one that failed with ``failed`` (retryable): tenacity's loop,
        whose first attempt re-raises ``failed``, so that its waits, counts and stop are those of
        a loop that made the first attempt itself. (The first attempt runs outside tenacity because
        nearly every call succeeds at once, and building a ``Retrying`` per call was about 10 µs of
        the ~16 µs this wrapper cost per call.)"""
        first = [failed]

        def replay_then_attempt() -> T:
            if first:
                raise first.pop()
            return attempt()

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.retry.max_attempts),
            wait=self._wait,
            retry=tenacity.retry_if_exception(self._should_retry),
            before_sleep=lambda state: self._on_retry(operation, kind, state),
            sleep=self._sleep,
            reraise=True,
        )
        return retrying(replay_then_attempt)

    def _should_retry(self, exc: BaseException) -> bool:
        if isinstance(exc, ReadOnlyViolation | WriteFenced | CloudUnreachable):
            return False
        return self.is_retryable(exc)

    # -- the write fence ---------------------------------------------------------------------------

    def fence(self, at: float, reason: str) -> None:
        """Refuse every write due at or after ``at`` (``time.monotonic()``), with ``reason``.

        The controller calls it when this replica stops leading, with the moment another replica
        may take the lease (the last renewal sent + the lease duration): a write already on the
        wire finishes, a write still to be sent after that moment raises :class:`WriteFenced`
        unsent. An earlier fence stays if it is earlier. Reads are not fenced.
        """
        with self._lock:
            if self._fence is None or at < self._fence[0]:
                self._fence = (at, reason)

    def unfence(self) -> None:
        """Writes are allowed again (this replica leads again)."""
        with self._lock:
            self._fence = None

    @property
    def fenced_at(self) -> float | None:
        fence = self._fence
        return fence[0] if fence is not None else None

    def _check_fence(self, operation: str) -> None:
        fence = self._fence
        if fence is not None and self._clock() >= fence[0]:
            with self._lock:
                self.stats.refused[operation] += 1
            self._emit(operation, "write", "refused")
            raise WriteFenced(self.provider, operation, fence[1])

    # -- the circuit ------------------------------------------------------------------------------

    def _gate(self) -> None:
        """Before a request: fail at once while the circuit is open; wait out a shared Retry-After."""
        blocked = self.circuit.check()
        if blocked is not None:
            raise blocked
        wait = self.circuit.wait_seconds()
        if wait > 0:
            with self._lock:
                self.stats.backoff_seconds += wait
            self._sleep(wait)

    def unreachable(self, exc: BaseException) -> CloudUnreachable | None:
        """If ``exc`` is a connection-level failure: the :class:`CloudUnreachable` to raise (the
        circuit is opened, and the opening logged once). None for any answer from the cloud."""
        for link in _chain(exc):
            if isinstance(link, CloudUnreachable):
                return link  # raised by the gate (or an earlier layer): already counted
        if not is_connection_error(exc):
            return None
        endpoint = failed_endpoint(exc) or self.endpoint or f"the {self.provider} API endpoint"
        detail, check = describe_connection_error(exc, self.timeouts)
        error = CloudUnreachable(self.provider, endpoint, detail, check)
        delay = self.circuit.failed(error)
        if delay is not None:
            with self._lock:
                self.stats.errors["(connection)"] += 1
            if math.isinf(delay):  # plan/gc: the command reports it, once
                log.debug("%s", error, extra={"provider": self.provider})
            else:
                log.warning(
                    "%s; pausing every %s call for %.1fs",
                    error,
                    self.provider,
                    delay,
                    extra={"provider": self.provider},
                )
        return error

    def _reachable(self) -> None:
        if self.circuit.reachable():
            log.info(
                "%s: the cloud answers again; calls resume", self.provider, extra={"provider": self.provider}
            )

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
