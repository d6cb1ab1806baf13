"""What lbprov's Kubernetes client costs a process: memory at start-up, CPU per call.

    python bench/kube_client_cost.py [--pairs 500]

* ``rss``: the resident memory (``VmRSS``, MiB) of a fresh ``python -c`` after each step: the bare
  interpreter, ``import lbprov.kube.client``, then ``KubeClient.for_url(...)``; ``import_s`` is
  the import's wall time (inflated on a loaded machine) and ``kubernetes_imported`` says whether
  ``kubernetes`` ended up in ``sys.modules``. Memory figures do not depend on the machine's load.
* ``cpu_ms_per_pair``: CPU milliseconds of one ``create_event`` plus one ``patch_service_status``
  (what a sync writes to the API server), over ``--pairs`` pairs against the in-process sandbox
  API server: ``process`` counts the server's threads too (as the last session's 1.51 ms did),
  ``client_thread`` only the calling thread (the client's own share). CPU seconds, not wall time,
  so they hold on a shared machine.

Measured 2026-11-30 (2 cores, load 9-12), the official client (5a7247d) -> urllib3 (kube-lite):
RSS after import 60.0 -> 24.7 MiB, after ``for_url`` 81.1 -> 24.7 MiB (bare interpreter 10.8);
import 0.81 -> 0.25 s (wall, inflated by the load). CPU per pair, the lowest of three runs of 1,500
pairs each (single runs vary by +-30% at that load): client thread 0.83 -> 0.54 ms, process incl.
the in-process server 1.56 -> 1.28 ms.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from common import print_json

_STEPS = """
import json, sys, time
from pathlib import Path
def rss():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
out = {"bare": rss()}
started = time.perf_counter()
from lbprov.kube.client import KubeClient
out["import_s"] = round(time.perf_counter() - started, 3)
out["after_import"] = rss()
client = KubeClient.for_url("http://127.0.0.1:1")
out["after_for_url"] = rss()
out["kubernetes_imported"] = "kubernetes" in sys.modules
print(json.dumps(out))
"""


def rss_steps() -> dict[str, object]:
    import json

    done = subprocess.run([sys.executable, "-c", _STEPS], capture_output=True, text=True, check=True)
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def cpu_per_pair(pairs: int) -> dict[str, float]:
    from lbprov.kube.client import KubeClient
    from lbprov.sandbox.kube_api import KubeAPIServer

    with KubeAPIServer() as server:
        client = KubeClient.for_url(server.url)
        svc = client.create_service(
            "default",
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "bench"},
                "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
            },
        )
        # Warm-up: connections, caches.
        for i in range(20):
            client.create_event(svc, type="Normal", reason="Warm", message=f"w{i}")
        proc0, thread0, wall0 = time.process_time(), time.thread_time(), time.perf_counter()
        for i in range(pairs):
            client.create_event(svc, type="Normal", reason="EnsuredLoadBalancer", message=f"m{i}")
            client.patch_service_status(
                "default", "bench", {"status": {"loadBalancer": {"ingress": [{"hostname": f"h{i}.elb"}]}}}
            )
        proc, thread, wall = (
            time.process_time() - proc0,
            time.thread_time() - thread0,
            time.perf_counter() - wall0,
        )
        client.close()
    return {
        "process": round(proc * 1000 / pairs, 3),
        "client_thread": round(thread * 1000 / pairs, 3),
        "wall_inflated": round(wall * 1000 / pairs, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=500)
    args = parser.parse_args()
    print_json({"rss_mib": rss_steps(), "cpu_ms_per_pair": cpu_per_pair(args.pairs), "pairs": args.pairs})


if __name__ == "__main__":
    main()
