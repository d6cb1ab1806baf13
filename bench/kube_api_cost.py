"""The sandbox Kubernetes API server's CPU per request, for the controller's request mix.

    python bench/kube_api_cost.py [--services 300] [--workers 10] [--profile FILE.pstats]

The server runs alone in a child process (``--serve``), so its CPU seconds are its own; this
process is the client. What it sends is what the scale bench's create phase sends per Service (see
bench/scale.py): with a Service watch and a Node watch open (the controller's informers, each fed
every change), ``--workers`` threads each take Services and send the finalizer merge patch (with
the resourceVersion precondition), two events, and the status merge patch. Reported: the server's
CPU seconds for that phase, its requests, and ``cpu_ms_per_request``. CPU seconds and counts hold
on a loaded machine; the wall time does not. ``--profile`` writes a pstats file of every server
thread over the phase (bench/thread_profile.py; profiling slows the server, so its CPU figure is
then not comparable); ``--samples`` writes a wall-clock stack sample count of its threads
(bench/sampler.py, every 2 ms): where they are, waiting for the store's lock included, not CPU.

Measured 2026-11-30 (2 cores shared with other benches, load 5-8), ``--services 1000`` (4,000
requests), three runs each, alternating: main at 3bda40d 0.557 / 0.568 / 0.572 ms per request;
after the events branch's cuts (marshal copies, one send per response, the request head without
``email``, the quick unknown-field walk, managedFields entries kept) 0.505 / 0.435 / 0.458 ms.
Sequentially, one client thread in-process (no contention between the server's threads), server
CPU per request before -> after: GET 115 -> 95 us, finalizer patch 352 -> 301, event create
260 -> 193, status patch 390 -> 270.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from childproc import ChildProcess  # noqa: E402
from common import print_json  # noqa: E402
from procstat import cpu_seconds  # noqa: E402

from lbprov.kube.client import WatchDropped  # noqa: E402

NAMESPACE = "bench"


def serve(profile: str | None, samples: str | None) -> None:
    """The child: the API server, answering ``mark``/``dump``/``requests``/``quit`` lines on stdin."""
    profiles = None
    sampler = None
    if samples:
        from sampler import StackSampler

        sampler = StackSampler(0.002)
    if profile:
        from thread_profile import ThreadProfiles

        profiles = ThreadProfiles()
        profiles.install()
    from lbprov.sandbox.kube_api import KubeAPIServer

    api = KubeAPIServer(watch_window=100_000).start()
    print(json.dumps({"url": api.url}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)["cmd"]
        if cmd == "mark" and profiles is not None:
            profiles.mark()
        elif cmd == "mark" and sampler is not None:
            sampler.start()
        elif cmd == "dump" and profiles is not None and profile:
            profiles.dump(Path(profile))
        elif cmd == "dump" and sampler is not None and samples:
            sampler.stop_and_write(samples, top=80)
        elif cmd == "requests":
            print(json.dumps({"requests": len(api.requests)}), flush=True)
            continue
        elif cmd == "quit":
            break
        print(json.dumps({"ok": True}), flush=True)
    api.stop()


def _user_system(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of ``pid`` (system time: the syscalls and thread wake-ups)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks


def _watch(kube: Any, what: str, rv: str, stop: threading.Event, seen: list[int]) -> None:
    stream = kube.watch_services(rv, 600) if what == "services" else kube.watch_nodes(rv, 600)
    try:
        for _ in stream:
            seen[0] += 1
            if stop.is_set():
                break
    except WatchDropped:
        pass  # the server stopped at the end of the run


def run(args: argparse.Namespace) -> dict[str, Any]:
    from lbprov.kube.client import KubeClient

    argv = [
        sys.executable,
        __file__,
        "--serve",
        *(["--profile", args.profile] if args.profile else []),
        *(["--samples", args.samples] if args.samples else []),
    ]
    child = ChildProcess(argv)
    try:
        url = child.read(30)["url"]
        kube = KubeClient.for_url(url)
        kube.create_namespace(NAMESPACE)
        for i in range(20):
            kube.create_node(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {"name": f"node-{i}", "labels": {"topology.kubernetes.io/zone": "z"}},
                    "spec": {"providerID": f"fake://node-{i}"},
                }
            )
        services = [
            kube.create_service(
                NAMESPACE,
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": f"svc-{i}", "annotations": {"a": "b"}},
                    "spec": {
                        "type": "LoadBalancer",
                        "ports": [{"name": "p0", "protocol": "TCP", "port": 80, "targetPort": 8080}],
                    },
                },
            )
            for i in range(args.services)
        ]
        stop, seen = threading.Event(), [0]
        _, svc_rv = kube.list_services()
        _, node_rv = kube.list_nodes()
        watchers = [
            threading.Thread(target=_watch, args=(kube, what, rv, stop, seen), daemon=True)
            for what, rv in (("services", svc_rv), ("nodes", node_rv))
        ]
        for t in watchers:
            t.start()
        child.ask({"cmd": "mark"}, 30)
        before = child.ask({"cmd": "requests"}, 30)["requests"]
        cpu0, split0, wall0 = cpu_seconds(child.pid), _user_system(child.pid), time.perf_counter()
        todo = list(services)
        lock = threading.Lock()

        def work() -> None:
            while True:
                with lock:
                    if not todo:
                        return
                    svc = todo.pop()
                    left = len(todo)
                meta = svc["metadata"]
                name = meta["name"]
                patch = {"metadata": {"finalizers": ["x/y"], "resourceVersion": meta["resourceVersion"]}}
                svc = kube.patch_service(NAMESPACE, name, patch)
                kube.create_event(svc, type="Normal", reason="EnsuringLoadBalancer", message="Ensuring")
                kube.create_event(svc, type="Normal", reason="EnsuredLoadBalancer", message="Ensured")
                status = {
                    "status": {"loadBalancer": {"ingress": [{"ip": f"10.0.{left // 250}.{left % 250 + 1}"}]}}
                }
                kube.patch_service_status(NAMESPACE, name, status)

        threads = [threading.Thread(target=work) for _ in range(args.workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        cpu, wall = cpu_seconds(child.pid) - cpu0, time.perf_counter() - wall0
        split = [round(a - b, 2) for a, b in zip(_user_system(child.pid), split0, strict=True)]
        requests = child.ask({"cmd": "requests"}, 30)["requests"] - before
        if args.profile or args.samples:
            child.ask({"cmd": "dump"}, 600)
        stop.set()
        return {
            "services": args.services,
            "workers": args.workers,
            "requests": requests,
            "watch_events_seen": seen[0],
            "server_cpu_seconds": round(cpu, 3),
            "server_user_system_seconds": split,
            "cpu_ms_per_request": round(cpu * 1000 / max(requests, 1), 3),
            "wall_seconds_inflated": round(wall, 2),
        }
    finally:
        if child.proc.poll() is None:
            child.send({"cmd": "quit"})
        child.close(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=300)
    parser.add_argument("--workers", type=int, default=10)
    parser.add_argument("--profile", default=None, help="write the server's pstats here")
    parser.add_argument(
        "--samples", default=None, help="write a stack sample count of the server's threads here (JSON)"
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.profile, args.samples)
        return
    print_json(run(args))


if __name__ == "__main__":
    main()
