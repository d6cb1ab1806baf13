"""The controller of the scale bench, in a process of its own (started by ``bench/scale.py``).

    python bench/scale_controller.py --provider P --api URL [--workers W] [--latency-ms L] ...

The provider settings come as JSON in ``BENCH_PROVIDER_SETTINGS``. Every cloud request the
controller sends is delayed by ``--latency-ms`` (a CloudCalls listener that sleeps as each request
is sent: the round trip a real cloud would cost; sleeping uses no CPU, so the controller's CPU
seconds stay its own). It speaks JSON lines: ``{"event": "started"}`` once the caches are synced
and the workers run, then one reply per stdin command:

* ``stats``: cloud calls since the last reset (reads, writes, by operation), then reset;
* ``wait-idle``: block until nothing is queued or in flight; ``idle_since`` is the monotonic
  moment the controller went idle (so the settle period is not counted);
* ``mark``: reset the counts and remember the node-sync count;
* ``wait-node-sync``: block until a node sync has fired since ``mark`` and the work is done;
* ``resync``: run a resync (every Service re-planned in one read round) and wait until done;
* ``gc``: ``gc.collect()`` (for the steady-state RSS);
* ``top``: with ``--tracemalloc``, the Python memory still held by source line (what grows per
  Service); tracing itself costs memory, so RSS figures of such a run are not comparable;
* ``quit``: stop the controller gracefully.

``--profile DIR`` profiles every thread of the controller (``bench/thread_profile.py``, CPU time)
and writes one pstats file per phase: ``create.pstats`` (from start to the first ``stats``),
``add_node.pstats`` (``mark`` to ``wait-node-sync``'s reply) and ``resync.pstats``. Read them with
``python -m pstats DIR/resync.pstats`` (``sort tottime``, ``stats 30``). Profiling slows the
controller down, so the CPU seconds of such a run are not comparable with a plain run's.

``BENCH_MALLOCSTATS_DIR=DIR`` (environment): at every ``stats`` and ``gc``, the controller appends
to ``DIR/pymalloc.jsonl`` its RSS split into pymalloc's arenas, the live bytes in them and the free
bytes they hold (``sys._debugmallocstats()``, written whole to ``DIR/<pid>-<label>.txt``); the rest
of the RSS is glibc's heap and the code. Cheap: the figures of such a run stay comparable. With
``BENCH_STRUCTURE_SIZES=1`` too, the MiB held by each long-lived structure (informer caches,
remembered tables, event caches) are added, with an example entry of each in
``DIR/<pid>-examples.txt``; walking them allocates, so that run's peak is not comparable.

``BENCH_CHAIN_TRACE=FILE`` (environment): every sync's timeline (its waits and calls) is written to
FILE at exit; ``python bench/chain_trace.py FILE`` reports where the syncs' time went.

``BENCH_SETTINGS=JSON`` (environment): provider settings that override the bench's (a setting to try,
e.g. ``{"coalesce_max_wait_seconds": 0}``).

``--no-trim`` turns off the informer's trimming of cached objects (``lbprov.kube.informer.trim``),
only so that the memory bench can show what it saves.

``CLOCK_MONOTONIC`` is system-wide on Linux, so the driver compares these timestamps with its own.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import sys
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

from procstat import cpu_seconds, memory_kib
from thread_profile import ThreadProfiles

from lbprov import heap
from lbprov.cloudcalls import CallEvent, CloudCalls
from lbprov.controller.manager import Controller, ControllerConfig
from lbprov.kube.client import KubeClient
from lbprov.observability import Metrics, setup_logging
from lbprov.provider import load_provider

SETTLE_SECONDS = 0.3


def call_stats(calls: CloudCalls, tally: LogTally) -> dict[str, Any]:
    """Cloud requests since the last reset, by read/write and operation; resets the counters."""
    s = calls.reset()
    reads: dict[str, int] = {}
    writes: dict[str, int] = {}
    for (op, kind), n in sorted(s.sent.items()):
        (writes if kind == "write" else reads)[op] = n
    return {
        "reads": s.reads,
        "writes": s.writes,
        "reads_by_operation": reads,
        "writes_by_operation": writes,
        "errors": sum(s.errors.values()),
        "retries": sum(s.retries.values()),
        **tally.reset(),
    }


class LogTally(logging.Handler):
    """Counts the controller's log records by message template (requeues, stale plans, failed
    syncs) and keeps a few distinct error texts: why a phase took longer than its cloud calls."""

    def __init__(self, examples: int = 5) -> None:
        super().__init__(logging.INFO)
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, None] = {}
        self.max_examples = examples

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[str(record.msg)] += 1
        error = getattr(record, "error", None)
        if record.levelno >= logging.WARNING and error and len(self.examples) < self.max_examples:
            self.examples.setdefault(str(error)[:300], None)

    def reset(self) -> dict[str, Any]:
        out = {"controller_log_counts": dict(self.counts), "controller_error_examples": list(self.examples)}
        self.counts.clear()
        self.examples.clear()
        return out


#: Frames kept per traced allocation: enough to reach the lbprov code that called into a library
#: (botocore's XML parser, json, urllib3) for ``by_lbprov_caller_kib``.
TRACE_FRAMES = 16


def _caller(traceback: tracemalloc.Traceback) -> str:
    """The innermost lbprov frame of an allocation (who asked a library for the memory; for
    lbprov.interning's copies, who asked for the copy)."""
    for frame in reversed(traceback):  # tracemalloc keeps the innermost frame last
        name = frame.filename
        if "/lbprov" in name and "site-packages" not in name and not name.endswith("/interning.py"):
            return f"{frame.filename.split('/work/')[-1]}:{frame.lineno}"
    return "(no lbprov frame)"


def allocation_top(limit: int = 25) -> dict[str, Any]:
    """Python memory allocated since tracing began and still held, by source file and by source
    line (largest first)."""
    if not tracemalloc.is_tracing():
        return {}
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen *>")]
    )

    def where(stat: tracemalloc.Statistic, line: bool) -> str:
        frame = stat.traceback[0]
        name = frame.filename.split("site-packages/")[-1].split("/work/")[-1]
        return f"{name}:{frame.lineno}" if line else name

    stats = snapshot.statistics("lineno")
    by_caller: dict[str, int] = {}
    for trace in snapshot.traces:
        key = _caller(trace.traceback)
        by_caller[key] = by_caller.get(key, 0) + trace.size
    callers = sorted(by_caller.items(), key=lambda kv: -kv[1])[:limit]
    return {
        "by_lbprov_caller_kib": {k: round(v / 1024) for k, v in callers},
        "total_kib": round(sum(s.size for s in stats) / 1024),
        "by_file_kib": {
            where(s, False): round(s.size / 1024) for s in snapshot.statistics("filename")[:limit]
        },
        "by_line_kib": {where(s, True): round(s.size / 1024) for s in stats[:limit]},
    }


def pymalloc_split(label: str, sizes: dict[str, float] | None = None) -> dict[str, Any]:
    """Where the controller's RSS is, without tracemalloc's cost: pymalloc's arenas (Python objects
    up to 512 bytes; an arena of 1 MiB is returned to the system only when every object in it is
    freed) split into bytes in live blocks and bytes held but free (fragmentation), from
    ``sys._debugmallocstats()``; the rest of the RSS is glibc's heap (larger objects, buffers) and
    the code. With ``BENCH_MALLOCSTATS_DIR`` set, the full statistics are written there too."""
    r, w = os.pipe()
    saved = os.dup(2)
    text = ""
    try:
        os.dup2(w, 2)
        os.close(w)
        sys._debugmallocstats()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    with os.fdopen(r) as f:
        text = f.read()
    if out_dir := os.environ.get("BENCH_MALLOCSTATS_DIR"):
        Path(out_dir, f"{os.getpid()}-{label}.txt").write_text(text)

    def total(prefix: str, contains: str = "") -> int:
        return sum(
            int(value.replace(",", ""))
            for name, _, value in (line.partition("=") for line in text.splitlines())
            if name.strip().startswith(prefix)
            and contains in name
            and value.strip().replace(",", "").isdigit()
        )

    arenas = total("", "arenas * ")
    live = total("# bytes in allocated blocks")
    split = {
        "label": label,
        "pid": os.getpid(),
        "rss_mib": round(memory_kib()["VmRSS"] / 1024, 1),
        "pymalloc_arenas_mib": round(arenas / 2**20, 1),
        "pymalloc_live_mib": round(live / 2**20, 1),
        "pymalloc_free_mib": round((arenas - live) / 2**20, 1),
        "structures_mib": sizes,
    }
    if out_dir:
        with Path(out_dir, "pymalloc.jsonl").open("a") as f:
            f.write(json.dumps(split) + "\n")
    return split


def deep_size(obj: Any, seen: set[int]) -> int:
    """Bytes of ``obj`` and what it holds (dicts, lists, tuples, sets, slotted and plain objects),
    each object counted once across calls sharing ``seen``."""
    total, stack = 0, [obj]
    while stack:
        o = stack.pop()
        if id(o) in seen or isinstance(o, (type, type(sys), type(deep_size))):
            continue
        seen.add(id(o))
        total += sys.getsizeof(o)
        if isinstance(o, dict):
            stack.extend(o.keys())
            stack.extend(o.values())
        elif isinstance(o, (list, tuple, set, frozenset)):
            stack.extend(o)
        else:
            for name in getattr(type(o), "__slots__", ()):
                if hasattr(o, name):
                    stack.append(getattr(o, name))
            if hasattr(o, "__dict__") and not callable(o):
                stack.append(o.__dict__)
    return total


def structure_sizes(controller: Controller, provider: Any) -> dict[str, float]:
    """MiB held by the controller's long-lived structures (the first root holding an object is
    charged for it), to see what grows per Service."""
    seen: set[int] = set()
    roots: dict[str, Any] = {
        "services_cache": controller.services._cache,
        "nodes_cache": controller.nodes._cache,
    }
    reader = getattr(provider, "reader", None)
    if reader is not None:
        rem = reader.remembered
        for name in ("tags", "lb_attributes", "listeners", "tg_attributes", "targets", "_gen", "_values"):
            roots[f"remembered.{name}"] = getattr(rem, name)
        roots["reader.round"] = reader.round
        roots["reader.drift"] = reader.drift
    roots["events.spam"] = controller.events._spam._buckets
    roots["events.queue"] = controller.events._queue
    roots["kube.events"] = getattr(controller.kube, "_events", None)
    try:
        from lbprov_aws import request_body

        roots["aws.request_body._QUOTED"] = request_body._QUOTED
    except ImportError:
        pass
    if out_dir := os.environ.get("BENCH_MALLOCSTATS_DIR"):
        with Path(out_dir, f"{os.getpid()}-examples.txt").open("w") as f:
            for name, root in roots.items():
                if isinstance(root, dict) and root:
                    key = next(iter(root))
                    f.write(f"{name}: {key!r}: {root[key]!r}\n")
    return {name: round(deep_size(root, seen) / 2**20, 2) for name, root in roots.items()}


def sizes(controller: Controller, provider: Any) -> dict[str, float] | None:
    """:func:`structure_sizes` when ``BENCH_STRUCTURE_SIZES`` is set: walking every object costs
    memory of its own (a set of ids), which raises the peak the bench reads next."""
    return structure_sizes(controller, provider) if os.environ.get("BENCH_STRUCTURE_SIZES") else None


def wait_idle(controller: Controller, settle: float = SETTLE_SECONDS) -> float:
    """Wait until nothing is queued or in flight for ``settle`` seconds, and the events recorded so far
    are posted; return when idleness began."""
    quiet_since: float | None = None
    while True:
        now = time.monotonic()
        if controller.idle():
            quiet_since = quiet_since or now
            if now - quiet_since >= settle:
                # The phase's events are posted from the recorder's queue: wait for them, so that the
                # phase's Kubernetes request counts hold them (its time ends at quiet_since all the same).
                controller.events.flush(30)
                return quiet_since
        else:
            quiet_since = None
        time.sleep(0.01)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--provider", required=True)
    p.add_argument("--api", required=True)
    p.add_argument("--workers", type=int, default=10)
    p.add_argument("--latency-ms", type=float, default=20.0)
    p.add_argument("--node-debounce", type=float, default=1.0)
    p.add_argument("--backoff-base", type=float, default=5.0)
    p.add_argument("--backoff-max", type=float, default=300.0)
    p.add_argument(
        "--tracemalloc",
        action="store_true",
        help="trace Python allocations from the start of the controller (for the 'top' command)",
    )
    p.add_argument(
        "--no-malloc-trim",
        action="store_true",
        help="do not give freed heap pages back when a batch ends (lbprov.heap.ENABLED = False)",
    )
    p.add_argument(
        "--no-gc-settle",
        action="store_true",
        help="no full collection and gc.freeze at a batch's end, as lbprov run does (lbprov.heap.settle)",
    )
    p.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="cProfile every controller thread (CPU time); one DIR/<phase>.pstats per phase",
    )
    p.add_argument(
        "--no-trim",
        action="store_true",
        help="cache whole objects (to measure what the informer's trim saves)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    setup_logging(logging.WARNING)
    for handler in logging.getLogger().handlers:
        handler.setLevel(logging.WARNING)  # stderr stays quiet; the tally below sees INFO too
    tally = LogTally()
    controller_log = logging.getLogger("lbprov.controller")
    controller_log.setLevel(logging.INFO)
    controller_log.addHandler(tally)
    if args.no_trim:
        import lbprov.kube.informer as informer

        informer.trim = lambda obj, kind: obj  # type: ignore[assignment]
    settings = json.loads(os.environ["BENCH_PROVIDER_SETTINGS"])
    settings.update(json.loads(os.environ.get("BENCH_SETTINGS", "{}")))  # a setting to try
    provider = load_provider(args.provider).from_settings(settings)
    latency = args.latency_ms / 1000.0

    def delay(event: CallEvent) -> None:
        if event.result == "sent" and latency > 0:
            time.sleep(latency)

    provider.calls.listeners.append(delay)
    if trace_to := os.environ.get("BENCH_CHAIN_TRACE"):
        import chain_trace

        chain_trace.install(trace_to, provider.calls)
    config = ControllerConfig(
        cluster=settings["cluster_name"],
        default_provider=args.provider,
        workers=args.workers,
        resync_period=24 * 3600,  # the bench triggers resyncs itself
        node_debounce=args.node_debounce,
        backoff_base=args.backoff_base,
        backoff_max=args.backoff_max,
    )
    controller = Controller(
        KubeClient.for_url(args.api), {args.provider: provider}, config, metrics=Metrics()
    )

    def reply(obj: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    if args.tracemalloc:
        tracemalloc.start(TRACE_FRAMES)
    if args.no_malloc_trim:
        heap.ENABLED = False
    if not args.no_gc_settle:  # as ``lbprov run`` (lbprov/heap.py settle())
        heap.SETTLE_INTERVAL = heap.SETTLE_SECONDS
    profiles = ThreadProfiles(os.environ.get("BENCH_PROFILE_CLOCK", "cpu")) if args.profile else None
    if profiles is not None:
        profiles.install()

    def profile_dump(phase: str) -> None:
        if profiles is not None and args.profile is not None:
            profiles.dump(args.profile / f"{phase}.pstats")

    def profile_mark() -> None:
        if profiles is not None:
            profiles.mark()

    t0 = time.monotonic()
    provider.calls.reset()
    controller.start()
    ready_at = time.monotonic()
    reply(
        {
            "event": "started",
            "ready_at": ready_at,
            "startup_seconds": ready_at - t0,
            "cpu_seconds_at_ready": cpu_seconds(),
            "rss_kib_at_ready": memory_kib()["VmRSS"],
        }
    )
    triggers = controller.node_sync.triggers
    dumped_create = False
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "stats":
            if not dumped_create:  # the first stats closes the create phase
                profile_dump("create")
                dumped_create = True
            split = (
                pymalloc_split("stats", sizes(controller, provider))
                if os.environ.get("BENCH_MALLOCSTATS_DIR")
                else None
            )
            reply(
                {
                    "event": "stats",
                    **call_stats(provider.calls, tally),
                    **({"pymalloc": split} if split else {}),
                }
            )
        elif cmd == "wait-idle":
            reply({"event": "idle", "idle_since": wait_idle(controller)})
        elif cmd == "mark":
            provider.calls.reset()
            tally.reset()
            triggers = controller.node_sync.triggers
            profile_mark()
            reply({"event": "marked"})
        elif cmd == "wait-node-sync":
            while controller.node_sync.triggers <= triggers:
                time.sleep(0.01)
            idle = wait_idle(controller)
            profile_dump("add_node")
            timing = controller.node_sync.last_timing  # (first node event, debounce fired, handled)
            reply(
                {
                    "event": "node-synced",
                    "idle_since": idle,
                    "node_sync_timing": list(timing) if timing else None,
                    "node_sync_seconds": (
                        report.seconds if (report := controller.nodes_changed.last) else {}
                    ),
                    **call_stats(provider.calls, tally),
                }
            )
        elif cmd == "resync":
            provider.calls.reset()
            tally.reset()
            profile_mark()
            started = time.monotonic()
            n = controller.resync()
            idle = wait_idle(controller)
            profile_dump("resync")
            reply(
                {
                    "event": "resynced",
                    "services": n,
                    "started": started,
                    "idle_since": idle,
                    **call_stats(provider.calls, tally),
                }
            )
        elif cmd == "top":
            reply({"event": "top", "top": allocation_top()})
        elif cmd == "gc":
            gc.collect()
            split = (
                pymalloc_split("gc", sizes(controller, provider))
                if os.environ.get("BENCH_MALLOCSTATS_DIR")
                else None
            )
            reply({"event": "collected", **({"pymalloc": split} if split else {})})
        elif cmd == "quit":
            break
    controller.stop()
    reply({"event": "stopped"})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
