"""Per-Service timelines of the scale bench's controller: where each sync's wall time goes.

    BENCH_CHAIN_TRACE=FILE python bench/scale.py --provider azure ...   (then)
    python bench/chain_trace.py FILE

Why: a create bound by a chain of dependent round trips and waits (Azure: the public IP's PUT, poll
and GET, then the shared load balancer's batch, then the NSG rule's batch) does not show in a CPU
profile. The controller process (``bench/scale_controller.py``) installs :func:`install` when
``BENCH_CHAIN_TRACE`` is set: it wraps the points where a sync waits or calls, records
``(thread, start, end, what)`` intervals in memory (a list append per interval: cheap) and writes
them as JSON lines at exit. A sync's intervals are those of its own thread between its start and
end (the slot waits are there). The writers' leaders send the batch PUT in their own thread: the
leader's ``lb.submit`` / ``nsg.submit`` then holds its own window, wait and PUT. Limitation: writes
an apply sends from a side pool (Azure: a new Service's LB submission, since it starts beside the
public IP's final GET) run in a side thread, so their ``lb.*`` and call intervals belong to no sync,
and the sync's own wait for them counts as plain ``sync`` time.

The report (``main``): per category, the seconds per sync (mean, median, p90) and the sum over
syncs, plus the syncs' total; a category is the innermost wrapped interval (a cloud call inside a
``pip.run`` counts as the call, the rest of ``pip.run`` as ``pip.bound``).
"""

from __future__ import annotations

import atexit
import itertools
import json
import statistics
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

_events: list[tuple[int, float, float, str, str]] = []
_local = threading.local()


@contextmanager
def _span(what: str) -> Iterator[None]:
    t0 = time.monotonic()
    try:
        yield
    finally:
        _events.append((threading.get_ident(), t0, time.monotonic(), what, getattr(_local, "key", "")))


def _wrap(owner: Any, attr: str, what: str, key_arg: int | None = None) -> None:
    inner = getattr(owner, attr)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if key_arg is not None:
            _local.key = args[key_arg]
        with _span(what):
            return inner(*args, **kwargs)

    setattr(owner, attr, wrapped)


def install(path: str, calls: Any) -> None:
    """Wrap the waits and calls of the controller process; write the intervals to ``path`` at exit."""
    import lbprov.slots as slots
    from lbprov.controller import service

    _wrap(service.ServiceReconciler, "sync", "sync", key_arg=1)
    _wrap(service.ServiceReconciler, "_ensure_finalizer", "kube.finalizer")
    _wrap(service.ServiceReconciler, "_patch_status", "kube.status")
    _wrap(slots.Slots, "_wait", "slot.wait")
    try:
        from lbprov_azure import apply, lbwriter, nsgwriter, pipwriter
        from lbprov_azure.diff import Planner
    except ImportError:
        pass
    else:
        _wrap(Planner, "plan", "plan")
        _wrap(pipwriter.PublicIPWriter, "run", "pip.bound")
        _wrap(lbwriter.SharedLBWriter, "submit", "lb.wait")
        _wrap(lbwriter.SharedLBWriter, "_lead", "lb.lead")
        _wrap(lbwriter.SharedLBWriter, "_write", "lb.leader.write")
        _wrap(nsgwriter.RuleWriter, "submit", "nsg.wait")
        _wrap(nsgwriter.RuleWriter, "_lead", "nsg.lead")
        _wrap(apply.Applier, "apply", "apply")
    sent: dict[int, tuple[float, str]] = {}

    def on_call(event: Any) -> None:
        # A thread sends its requests one after another; one CloudCalls call may send several (a
        # PUT, its operation polls, the final GET), each announced "sent": a request ends when the
        # thread's next one is sent or the call ends.
        me, now = threading.get_ident(), time.monotonic()
        if me in sent and (event.result == "sent" or event.result in ("ok", "error", "throttled")):
            t0, op = sent.pop(me)
            _events.append((me, t0, now, "call." + op, getattr(_local, "key", "")))
        if event.result == "sent":
            sent[me] = (now, event.operation)

    calls.listeners.insert(0, on_call)

    def dump() -> None:
        with open(path, "w") as f:
            for ev in list(_events):
                f.write(json.dumps(ev) + "\n")

    atexit.register(dump)


def _exclusive(spans: list[tuple[float, float, str]]) -> dict[str, float]:
    """Seconds per category, each instant counted for the innermost span that holds it."""
    points = sorted({t for s in spans for t in s[:2]})
    out: dict[str, float] = defaultdict(float)
    for a, b in itertools.pairwise(points):
        mid = (a + b) / 2
        inner = [s for s in spans if s[0] <= mid < s[1]]
        if inner:
            best = min(inner, key=lambda s: s[1] - s[0])
            out[best[2]] += b - a
    return out


def report(path: str, out: Callable[[str], None] = print) -> None:
    by_thread: dict[int, list[tuple[float, float, str, str]]] = defaultdict(list)
    with open(path) as f:
        for line in f:
            tid, t0, t1, what, key = json.loads(line)
            by_thread[tid].append((t0, t1, what, key))
    per_sync: list[dict[str, float]] = []
    first = min(t0 for evs in by_thread.values() for t0, *_ in evs)
    ends: list[float] = []
    for evs in by_thread.values():
        evs.sort()
        for s0, s1, what, _ in evs:
            if what != "sync":
                continue
            inside = [(a, b, w) for a, b, w, _ in evs if s0 <= a and b <= s1]
            cats = _exclusive(inside)
            cats["total"] = s1 - s0
            per_sync.append(cats)
            ends.append(s1 - first)
    names = sorted({k for c in per_sync for k in c}, key=lambda k: -sum(c.get(k, 0) for c in per_sync))
    out(f"syncs: {len(per_sync)}; last sync ended {max(ends):.2f} s after the first event")
    out(f"{'category':28} {'mean ms':>8} {'median':>8} {'p90':>8} {'sum s':>8}")
    for k in names:
        vals = sorted(c.get(k, 0.0) for c in per_sync)
        p90 = vals[int(0.9 * (len(vals) - 1))]
        out(
            f"{k:28} {1000 * statistics.mean(vals):8.1f} {1000 * statistics.median(vals):8.1f} "
            f"{1000 * p90:8.1f} {sum(vals):8.2f}"
        )


if __name__ == "__main__":
    report(sys.argv[1])
