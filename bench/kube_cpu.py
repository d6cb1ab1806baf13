"""The controller's Kubernetes-side CPU per created Service, alone: no cloud, no emulator.

    python bench/kube_cpu.py [--services 300] [--nodes 20] [--workers 10] [--repeat 1] [--profile FILE]

What a create costs every cloud on the Kubernetes side (issue 14): the real :class:`Controller`
with a *null* provider (a plan of one create, an apply that only returns an IP: no cloud call, no
sleep) against the sandbox API server, which runs in a child process so that its CPU is not
counted. The Services exist before the controller starts, as in ``bench/scale.py``'s create; the
run ends when every Service's sync has ended with its status patched (the reconciler's managed
keys) and the controller is idle.

Reported (JSON): ``controller_cpu_ms_per_service`` (the whole process, start-up excluded), the
API server's requests by verb (the same for old and new code: one finalizer patch, one status
patch and two events a Service), and ``items_ms_per_service``: the CPU of each part of the path,
measured by wrapping it and reading the calling thread's CPU clock before and after
(``time.thread_time``, so waiting counts as nothing; nested items are counted in their parents):

* ``finalizer_patch`` / ``status_patch`` / ``event_posts``: the whole client call (JSON encode,
  urllib3/http.client, the answer's headers and JSON decode);
* ``watch_decode``: the watch stream's line splitting and JSON decode per event;
* ``informer_apply``: the informer's trim, pack and cache update per event, and its handlers
  (``needs_sync`` on the unpacked previous object), which include ``enqueue``;
* ``informer_get``: the worker's read of the Service from the packed cache;
* ``build_intent`` and ``plan_apply`` (the null provider's share: close to nothing);
* ``sync``: a worker's whole ``ServiceReconciler.sync`` (includes the patches, the intent, the
  plan, logging and metrics; not the events, which their own thread posts).

The wrappers cost ~1-2 microseconds each; ``--no-items`` runs without them. CPU seconds, not wall
time: they hold on a loaded machine. ``--profile FILE`` writes a cProfile of every thread of the
controller (``bench/thread_profile.py``); profiled CPU figures are not comparable with plain ones.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parent))

from thread_profile import ThreadProfiles

from lbprov.cloudcalls import CloudCalls, RateLimits
from lbprov.controller import service as service_mod
from lbprov.controller.manager import Controller, ControllerConfig
from lbprov.kube import client as client_mod
from lbprov.kube import informer as informer_mod
from lbprov.kube.client import KubeClient
from lbprov.model import Action, Change, Ingress, Intent, Plan, ServiceRef

NAMESPACE = "bench"

_SERVER = """
import sys, json
from lbprov.sandbox.kube_api import KubeAPIServer
api = KubeAPIServer(namespaces=("kube-system", "bench")).start()
print(json.dumps({"url": api.url}), flush=True)
for line in sys.stdin:
    if line.strip() == "stats":
        verbs = {}
        for r in api.requests:
            if r.resource == "services" or r.resource == "events":
                key = f"{r.verb} {r.resource}{'/' + r.subresource if r.subresource else ''}"
                verbs[key] = verbs.get(key, 0) + 1
        print(json.dumps(verbs), flush=True)
api.stop()
"""


class NullProvider:
    """A provider without a cloud: plans one create for a Service it has not seen, then nothing."""

    name: ClassVar[str] = "null"

    def __init__(self) -> None:
        self.calls = CloudCalls("null", is_write=lambda op: op != "read", limits=RateLimits(None, 1, None, 1))
        self._made: set[str] = set()
        self._lock = threading.Lock()

    def resolve(self, intent: Intent, annotations: Mapping[str, str]) -> Intent:
        return intent

    def _ingress(self, intent: Intent) -> tuple[Ingress, ...]:
        n = int(intent.ref.uid.replace("-", "")[:6], 16)
        return (Ingress(ip=f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"),)

    def plan(self, intent: Intent) -> Plan:
        with self._lock:
            made = intent.ref.uid in self._made
        if made:
            return Plan(self.name, intent.ref, (), intent, self._ingress(intent))
        change = Change(Action.CREATE, "load-balancer", intent.lb_name, None, {"ports": len(intent.ports)})
        return Plan(self.name, intent.ref, (change,), intent)

    def plan_delete(self, ref: ServiceRef) -> Plan:
        return Plan(self.name, ref)

    def apply(self, plan: Plan) -> tuple[Ingress, ...]:
        assert plan.intent is not None
        with self._lock:
            self._made.add(plan.ref.uid)
        return self._ingress(plan.intent)

    def list_owned(self) -> list[Any]:
        return []


class Items:
    """CPU seconds of the wrapped functions, summed over every thread that calls them."""

    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._undo: list[Callable[[], None]] = []

    def wrap(self, owner: Any, attr: str, item: str) -> None:
        original = getattr(owner, attr)
        clock = time.thread_time

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = clock()
            try:
                return original(*args, **kwargs)
            finally:
                spent = clock() - start
                with self._lock:
                    self.seconds[item] += spent
                    self.calls[item] += 1

        setattr(owner, attr, timed)
        self._undo.append(lambda: setattr(owner, attr, original))

    def install(self) -> None:
        self.wrap(client_mod.KubeClient, "patch_service", "finalizer_patch")
        self.wrap(client_mod.KubeClient, "patch_service_status", "status_patch")
        self.wrap(client_mod.KubeClient, "create_event", "event_posts")
        self.wrap(client_mod.WatchStream, "__next__", "watch_decode")
        self.wrap(informer_mod.Informer, "_apply", "informer_apply")
        self.wrap(informer_mod.Informer, "get", "informer_get")
        self.wrap(service_mod, "build_intent", "build_intent")
        self.wrap(service_mod.ServiceReconciler, "_plan_and_apply", "plan_apply")
        self.wrap(service_mod.ServiceReconciler, "sync", "sync")


def _node(i: int) -> dict[str, Any]:
    zone = f"zone-{i % 3}"
    return {
        "metadata": {"name": f"node-{i}", "labels": {"topology.kubernetes.io/zone": zone}},
        "spec": {"providerID": f"null:///{zone}/i-{i:08x}"},
        "status": {"addresses": [{"type": "InternalIP", "address": f"10.0.{i // 250}.{i % 250 + 1}"}]},
    }


def _service(i: int) -> dict[str, Any]:
    return {
        "metadata": {"name": f"svc-{i:05d}"},
        "spec": {
            "type": "LoadBalancer",
            "selector": {"app": f"a{i}"},
            "ports": [{"name": "p0", "protocol": "TCP", "port": 80, "targetPort": 8080}],
        },
    }


def one_run(args: argparse.Namespace) -> dict[str, Any]:
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert server.stdin is not None and server.stdout is not None
    try:
        url = json.loads(server.stdout.readline())["url"]
        kube = KubeClient.for_url(url)
        for i in range(args.nodes):
            kube.create_node(_node(i))
        for i in range(args.services):
            kube.create_service(NAMESPACE, _service(i))
        return _measure(args, url, server)
    finally:
        server.stdin.close()
        server.wait(timeout=30)


def _measure(args: argparse.Namespace, url: str, server: subprocess.Popen[str]) -> dict[str, Any]:
    items = Items() if args.items else None
    if items is not None:
        items.install()
    profiles = ThreadProfiles() if args.profile else None
    if profiles is not None:
        profiles.install()
    kube = KubeClient.for_url(url)
    controller = Controller(
        kube,
        {"null": NullProvider()},  # type: ignore[dict-item]
        ControllerConfig(cluster="bench", default_provider="null", workers=args.workers, leader_elect=False),
    )
    # Every Service's two events are posted: without a cloud the workers outrun the event thread,
    # and the default queue of 1,000 would drop some (a different number each run) at 1,000 Services.
    controller.events.max_queued = 2 * args.services + 100
    cpu_start = time.process_time()
    wall_start = time.monotonic()
    controller.start()
    try:
        deadline = time.monotonic() + args.timeout
        while True:
            # the reconciler's managed keys: a Service is in them once its sync patched the status
            # (reading the Service cache here would add the bench's own decodes to the figure)
            done = len(controller.reconciler.managed_keys())
            if done >= args.services and controller.idle():
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"only {done} of {args.services} Services got an ingress in {args.timeout}s")
            time.sleep(0.05)
        controller.events.flush(timeout=30)
        cpu = time.process_time() - cpu_start
        wall = time.monotonic() - wall_start
    finally:
        controller.stop()
    if profiles is not None:
        profiles.dump(Path(args.profile))
    assert server.stdin is not None and server.stdout is not None
    server.stdin.write("stats\n")
    server.stdin.flush()
    verbs = json.loads(server.stdout.readline())
    n = args.services
    out: dict[str, Any] = {
        "services": n,
        "controller_cpu_seconds": round(cpu, 3),
        "controller_cpu_ms_per_service": round(cpu / n * 1000, 3),
        "wall_seconds": round(wall, 2),
        "api_requests": verbs,
        "load": os.getloadavg()[0],
    }
    if items is not None:
        out["items_ms_per_service"] = {k: round(v / n * 1000, 3) for k, v in sorted(items.seconds.items())}
        out["items_calls"] = dict(sorted(items.calls.items()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--services", type=int, default=300)
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--workers", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--no-items", dest="items", action="store_false", help="no per-item wrappers")
    parser.add_argument("--profile", help="write a cProfile of every controller thread (pstats) here")
    args = parser.parse_args()
    runs = []
    for _ in range(args.repeat):
        # each run in a fresh process: the wrappers and the profile are process-wide
        proc = subprocess.run(
            [sys.executable, __file__, "--one", json.dumps(vars(args))],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise SystemExit(proc.stderr[-4000:])
        runs.append(json.loads(proc.stdout.splitlines()[-1]))
    result: dict[str, Any] = {"runs": runs}
    if len(runs) > 1:
        result["median_controller_cpu_ms_per_service"] = statistics.median(
            r["controller_cpu_ms_per_service"] for r in runs
        )
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        print(json.dumps(one_run(argparse.Namespace(**json.loads(sys.argv[2])))))
    else:
        main()
