"""Prometheus metrics, the ``/metrics`` ``/healthz`` ``/readyz`` HTTP endpoint, and JSON logs.

Each :class:`Metrics` owns its own :class:`prometheus_client.CollectorRegistry`, so several
controllers in one process (tests, the demo) never clash over global collectors. Cloud calls are
observed by subscribing to each provider's ``CloudCalls.listeners``: the counters see exactly the
requests that went through the read-only guard, nothing a provider could forget to report.

Metric names (all prefixed ``lbprov_``):

* ``reconciles_total{provider,result}`` -- result is ``success``, ``error``, ``invalid``;
* ``reconcile_duration_seconds{provider}`` -- histogram of one ServiceReconciler.sync;
* ``cloud_calls_total{provider,operation,kind,result}`` -- kind ``read|write``; result ``sent``
  (a request left), ``ok``/``error`` (outcome of a call after retries), ``retry``, ``throttled``,
  ``refused`` (read-only guard);
* ``workqueue_depth`` -- keys ready to be processed; ``workqueue_retries_total``;
* ``managed_load_balancers{provider}`` -- Services whose load balancer this controller manages;
* ``leader`` -- 1 while this replica holds the lease (or runs without leader election);
* ``cache_synced`` -- 1 once the informer caches are synced;
* ``events_dropped_total{reason}`` -- Events not recorded: ``queue_full``, ``spam`` (over the
  per-object rate), ``shutdown``, ``unreachable`` (the API server did not answer in 12 tries);
  ``events_queued`` -- Events waiting to be posted. Both are
  registered on this registry by :class:`lbprov.controller.events.EventRecorder`.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from lbprov.cloudcalls import CallEvent, CloudCalls

#: Reconcile latency buckets (seconds): a no-change plan is ~10 ms, a new NLB several seconds.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    """The controller's metrics, in a private registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.reconciles = Counter(
            "lbprov_reconciles",
            "Service reconciles by provider and result",
            ["provider", "result"],
            registry=r,
        )
        self.reconcile_latency = Histogram(
            "lbprov_reconcile_duration_seconds",
            "Duration of one Service reconcile",
            ["provider"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.cloud_calls = Counter(
            "lbprov_cloud_calls",
            "Cloud API calls by provider, operation, read/write and result",
            ["provider", "operation", "kind", "result"],
            registry=r,
        )
        self.queue_depth = Gauge("lbprov_workqueue_depth", "Keys ready to be processed", registry=r)
        self.queue_retries = Counter(
            "lbprov_workqueue_retries", "Keys requeued with backoff after a failed reconcile", registry=r
        )
        self.managed = Gauge(
            "lbprov_managed_load_balancers",
            "Services whose load balancer this controller manages",
            ["provider"],
            registry=r,
        )
        self.leader = Gauge(
            "lbprov_leader", "1 while this replica runs the workers (holds the lease)", registry=r
        )
        self.synced = Gauge("lbprov_cache_synced", "1 once the informer caches are synced", registry=r)
        self._subscribed: list[tuple[CloudCalls, Callable[[CallEvent], None]]] = []

    def observe_cloud_calls(self, calls: CloudCalls) -> None:
        """Count every event of a provider's CloudCalls."""

        def listener(event: CallEvent) -> None:
            self.cloud_calls.labels(event.provider, event.operation, event.kind, event.result).inc()

        calls.listeners.append(listener)
        self._subscribed.append((calls, listener))

    def detach(self) -> None:
        """Unsubscribe from every CloudCalls (so a stopped controller stops counting)."""
        for calls, listener in self._subscribed:
            try:
                calls.listeners.remove(listener)
            except ValueError:
                pass
        self._subscribed.clear()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Handler(BaseHTTPRequestHandler):
    server: _HealthServer

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            body, status, ctype = self.server.metrics.render(), 200, CONTENT_TYPE_LATEST
        elif path in ("/healthz", "/livez"):
            ok = self.server.healthy()
            body, status, ctype = (b"ok\n" if ok else b"unhealthy\n"), (200 if ok else 503), "text/plain"
        elif path == "/readyz":
            ok = self.server.ready()
            body, status, ctype = (b"ok\n" if ok else b"not ready\n"), (200 if ok else 503), "text/plain"
        else:
            body, status, ctype = b"not found\n", 404, "text/plain"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # probes every few seconds would drown the controller's own logs


class _HealthServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        metrics: Metrics,
        ready: Callable[[], bool],
        healthy: Callable[[], bool],
    ) -> None:
        super().__init__(address, _Handler)
        self.metrics = metrics
        self.ready = ready
        self.healthy = healthy


class HTTPEndpoint:
    """``/metrics``, ``/healthz`` and ``/readyz`` on one port, served from a daemon thread."""

    def __init__(
        self,
        address: str,
        metrics: Metrics,
        *,
        ready: Callable[[], bool],
        healthy: Callable[[], bool] = lambda: True,
    ) -> None:
        host, port = parse_address(address)
        self._server = _HealthServer((host, port), metrics, ready, healthy)
        self._thread = threading.Thread(target=self._server.serve_forever, name="lbprov-http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = str(self._server.server_address[0])
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{self.port}"

    def start(self) -> HTTPEndpoint:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def parse_address(address: str) -> tuple[str, int]:
    """``":8080"`` -> ``("0.0.0.0", 8080)``; ``"127.0.0.1:0"`` -> ephemeral port on loopback."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"metrics address {address!r}: expected [HOST]:PORT, e.g. :8080 or 127.0.0.1:0")
    return (host.strip("[]") or "0.0.0.0", int(port))


# -- JSON logs ------------------------------------------------------------------------------------

#: ``extra=`` fields copied into the JSON object when present.
LOG_FIELDS = ("service", "provider", "plan", "changes", "ingress", "error", "reason", "duration", "identity")
_REDACT = ("secret", "password", "token", "credential", "key_id", "access_key")


class JSONFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``msg`` and the known extras.

    Extras whose name looks like a credential are never written, whatever a caller passes.
    """

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in LOG_FIELDS:
            if name in record.__dict__ and not any(s in name for s in _REDACT):
                out[name] = record.__dict__[name]
        if record.exc_info and record.exc_info[0] is not None:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    """One line per record for people: time, level, message, then the known extras as ``key=value``.

    ``2026-11-30T00:40:00.123Z WARNING sync failed: ... service=shop/web provider=aws``: the same
    fields as the JSON lines (time in UTC, the Service, the provider, the plan summary), so that
    ``--log-format text`` loses nothing but the braces.
    """

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        line = f"{stamp.replace('+00:00', 'Z')} {record.levelname:<7} {record.getMessage()}"
        for name in LOG_FIELDS:
            if name in record.__dict__ and not any(s in name for s in _REDACT):
                value = record.__dict__[name]
                text = value if isinstance(value, str) else json.dumps(value, default=str)
                if name == "error" and text and text in line:
                    continue  # the message says it already
                line += f" {name}={json.dumps(text) if (' ' in text or not text) else text}"
        if record.exc_info and record.exc_info[0] is not None:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup_logging(level: int = logging.INFO, *, stream: Any = None, json_logs: bool = True) -> None:
    """Configure the root logger once: JSON lines (or plain text) on ``stream`` (stderr)."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter() if json_logs else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("werkzeug", "urllib3", "botocore", "boto3", "kubernetes", "azure", "google"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
