"""Scale benchmark of the controller: N Services over M nodes, on any provider's sandbox.

    python bench/scale.py [--provider aws|gcp|azure] [--services 200] [--nodes 10] [--ports 1]
                          [--workers 10] [--latency-ms 20] [--compare-workers] [--verify]
                          [--one-more] [--phases create,add_node,resync[,restart]] [--repeat N]

Three processes, so that each one's CPU seconds are its own (wall-clock time on a shared machine is
inflated by other load; CPU seconds and call counts are not):

* the **cloud emulator** (``bench/scale_cloud.py``): ``load_provider(P).sandbox(nodes)``, the public
  interface of every provider (moto for AWS, the GCE and ARM emulators for GCP and Azure);
* the **controller** (``bench/scale_controller.py``): ``lbprov``'s Controller with that provider,
  every cloud request delayed by ``--latency-ms`` as it is sent (the round trip of a real cloud);
  the provider's client-side rate limits are off, so the figures measure the controller;
* this **driver**, which also runs the sandbox Kubernetes API server (its CPU is reported as
  ``kube_api_and_driver``).

NodePorts are allocated by the API server at random by default, as in a real cluster
(``--node-ports contiguous`` gives Service i NodePorts from 30000 + i*ports upwards).

Phases (JSON on stdout; the keys are listed in :data:`PHASE_KEYS` and :data:`RUN_KEYS`):

1. ``create``: the N Services exist before the controller starts; from the controller being ready
   (caches synced) until every Service has its ingress.
2. ``add_node``: one instance and its Node are added; from then until the controller is idle after
   the (debounced) node sync.
3. ``resync``: a resync with nothing changed (every Service re-planned in one read round). Its reads
   per Service are the reads per Service per period; a provider that rotates deep checks over the
   resyncs (AWS) reports K, the periods within which every Service is deep-checked
   (``drift_check_periods`` in the run).
4. ``restart`` (only when ``--phases`` names it): the controller process is stopped and a fresh one
   started against the same converged cloud and API server -- what every leader failover or
   upgrade does. From its start until it is idle after the initial sync of every Service. A
   converged restart must write nothing: ``writes`` and the Kubernetes writes (``api_requests_by_verb``
   other than get/list/watch) are 0, ``converged_writes_nothing`` says so. ``startup_seconds`` is
   the new process's start until its caches are synced; ``controller_rss_mb`` of the phase gives
   its RSS after startup, its peak (``VmHWM``: the informers' initial lists and the first read
   round over every Service) and its RSS when idle after ``gc.collect()``.

For each phase: seconds, cloud reads and writes (total, per Service, by operation), Kubernetes API
requests by verb, CPU seconds of each process, and the *ideal* time -- the phase's cloud requests
x the injected latency / workers (the time the requests take at that latency with perfect overlap,
i.e. ``calls per Service x latency x Services / workers``) -- with ``time_over_ideal``.
``busiest_process_cpu_seconds`` is the other floor (each process is mostly bound to one core by
its GIL): it tells a CPU-bound phase from a latency-bound one. The controller's log records are
counted by template (requeues, stale plans, failed syncs), with a few error texts. For
``add_node`` the debounce is taken off the time before dividing, and the phase is split
(``node_seen_after_seconds``: until the controller's informer saw the Node;
``node_sync_handler_seconds``: the node change's handler, i.e. the providers' node syncs and the
queueing of what they do not cover; ``idle_after_handler_seconds``: the re-plans it queued). A node
sync is a chain of dependent calls (list, then write, then poll): its calls overlap at most as
many at once as it has writes (each write and its polls one chain), so its ideal divides the calls x
latency by ``min(10, writes)`` (10: the node sync's own pool, ``node_sync_workers``, whatever
``--workers`` is): one write and its three reads are four round trips (80 ms at
20 ms), a thousand ``RegisterTargets`` over 10 workers a hundred. A run also reports the controller's
RSS (after startup, peak, steady after ``gc.collect()``), its CPU seconds in total, and how many load
balancers the cloud holds for the cluster (``list_owned()``: one per Service on AWS and GCP, the
shared ones on Azure). ``--compare-workers`` makes a second run with ``--workers 1`` (upstream's
``--concurrent-service-syncs`` default) and reports the time ratio per phase. ``--verify`` re-plans
every Service with a fresh provider at the end and counts the plans that are not empty (must be 0).
``--repeat N`` makes N runs (each on fresh processes; with ``--compare-workers``, alternated) and
adds ``medians``: per number of workers and per phase, the median, min and max of the time, time /
ideal, each process's CPU seconds and the calls (``bench/scale_stats.py``); identical runs on a
small shared machine differ by up to 30%, so a single run is a weak figure.
``--one-more`` creates one more Service after ``create`` and reports its ingress or its first Warning
event (the Service past a cloud's limits); ``--phases create`` stops after it (a new node would
make room for it).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from childproc import ChildProcess
from common import NAMESPACE, make_node, print_json
from procstat import CPUSnapshot, memory_kib, mib
from scale_stats import medians

from lbprov.controller.service import ingress_of
from lbprov.intent import IntentSettings, build_intent
from lbprov.kube.client import Gone, KubeClient, WatchDropped
from lbprov.kube.informer import LAST_APPLIED
from lbprov.model import SandboxNode
from lbprov.provider import load_provider
from lbprov.sandbox.kube_api import KubeAPIServer, RecordedRequest

HERE = Path(__file__).resolve().parent
PHASES = ("create", "add_node", "resync")
#: The node sync's write pool (the AWS setting ``node_sync_workers``' default): add_node's calls
#: overlap over it, not over ``--workers`` (GCP's and Azure's node syncs write once per zone group
#: or load balancer, so their chains are fewer anyway).
NODE_SYNC_WORKERS = 10
#: Phases run only when ``--phases`` names them (after the default ones).
EXTRA_PHASES = ("restart",)
PHASE_KEYS = (
    "seconds",
    "ideal_seconds",
    "time_over_ideal",
    "reads",
    "writes",
    "reads_per_service",
    "writes_per_service",
    "reads_by_operation",
    "writes_by_operation",
    "errors",
    "retries",
    "api_requests_by_verb",
    "cpu_seconds",
)
RUN_KEYS = ("workers", "phases", "controller_rss_mb", "cpu_seconds_total", "load_balancers")
CPU_NAMES = ("controller", "emulator", "kube_api_and_driver")


# -- the Kubernetes side ------------------------------------------------------------------------


def make_services(kube: KubeClient, args: argparse.Namespace) -> None:
    """N LoadBalancer Services in NAMESPACE, ``--ports`` TCP ports each."""
    for i in range(args.services):
        ports = []
        for j in range(args.ports):
            port: dict[str, Any] = {
                "name": f"p{j}",
                "protocol": "TCP",
                "port": 80 + j,
                "targetPort": 8080 + j,
            }
            if args.node_ports == "contiguous":
                port["nodePort"] = 30000 + i * args.ports + j
            ports.append(port)
        body: dict[str, Any] = {
            "metadata": {"name": f"svc-{i:05d}"},
            "spec": {"type": "LoadBalancer", "selector": {"app": f"a{i}"}, "ports": ports},
        }
        if args.node_ports == "none":
            body["spec"]["allocateLoadBalancerNodePorts"] = False
        if args.kubectl_applied:
            body["metadata"]["labels"] = {
                "app.kubernetes.io/name": f"a{i}",
                "app.kubernetes.io/part-of": "bench",
            }
            manifest = {"apiVersion": "v1", "kind": "Service", **copy.deepcopy(body)}
            manifest["metadata"]["namespace"] = NAMESPACE
            body["metadata"]["annotations"] = {LAST_APPLIED: json.dumps(manifest, separators=(",", ":"))}
        if extra := getattr(args, "annotation", None):  # (bench/informer_memory.py passes none)
            body["metadata"].setdefault("annotations", {}).update(a.split("=", 1) for a in extra)
        kube.create_service(NAMESPACE, body)


def node_body(node: SandboxNode, kubectl_applied: bool) -> dict[str, Any]:
    """The Node of an instance; with ``kubectl_applied``, the status a kubelet reports (images etc.)."""
    body = make_node(node)
    if kubectl_applied:
        body["status"]["images"] = [
            {
                "names": [
                    f"registry.example/team-{i}/app@sha256:{i:064x}",
                    f"registry.example/team-{i}/app:v{i}",
                ],
                "sizeBytes": 50_000_000 + i,
            }
            for i in range(40)
        ]
        body["status"]["conditions"] = [
            {
                "type": t,
                "status": "False" if t != "Ready" else "True",
                "reason": f"Kubelet{t}",
                "message": t,
                "lastHeartbeatTime": "2026-11-30T00:00:00Z",
                "lastTransitionTime": "2026-11-30T00:00:00Z",
            }
            for t in ("MemoryPressure", "DiskPressure", "PIDPressure", "Ready")
        ]
        body["status"]["nodeInfo"] = {
            "kubeletVersion": "v1.31.0",
            "kubeProxyVersion": "v1.31.0",
            "osImage": "Bottlerocket OS 1.20",
            "containerRuntimeVersion": "containerd://1.7.20",
            "kernelVersion": "6.1.102",
            "operatingSystem": "linux",
            "architecture": "amd64",
            "machineID": "0" * 32,
            "systemUUID": "0" * 32,
            "bootID": "0" * 32,
        }
    return body


def controller_requests(requests: list[RecordedRequest]) -> dict[str, int]:
    """API requests by verb, without the driver's own (its lists and watch of the bench's namespace,
    and its Node create); the controller lists and watches cluster-wide."""
    mine = [
        r
        for r in requests
        if not (r.verb in ("list", "watch") and r.namespace == NAMESPACE)
        and not (r.verb == "create" and r.resource == "nodes")
    ]
    return dict(sorted(Counter(r.verb for r in mine).items()))


def wait_all_ingress(kube: KubeClient, n: int, timeout: float) -> float:
    """Return the moment the last of the N Services got its ingress, as the driver's watch on the
    namespace's Services saw it.

    Polling every max(0.2, N/500) s (as this did) put the end up to a poll interval late, 2 s of a
    1,000-Service create of ~12-20 s, and listing N Services each time cost the API server more
    than the watch's two events per Service. A watch that ends (its server timeout) or breaks is
    started again from a fresh list.
    """
    deadline = time.monotonic() + timeout
    while True:
        items, rv = kube.list_services(NAMESPACE)
        now = time.monotonic()
        ready = {s["metadata"]["name"] for s in items if ingress_of(s)}
        if len(ready) >= n:
            return now
        if now > deadline:
            raise RuntimeError(f"only {len(ready)}/{n} Services got ingress within {timeout}s")
        stream = kube.watch_services(
            rv, timeout_seconds=max(1, min(60, int(deadline - now) + 1)), namespace=NAMESPACE
        )
        try:
            for kind, obj in stream:
                name = (obj.get("metadata") or {}).get("name")
                if kind in ("ADDED", "MODIFIED") and ingress_of(obj):
                    ready.add(name)
                elif kind == "DELETED" or (kind == "MODIFIED" and not ingress_of(obj)):
                    ready.discard(name)
                if len(ready) >= n:
                    return time.monotonic()
                if time.monotonic() > deadline:
                    break
        except (Gone, WatchDropped):
            pass  # listed again
        finally:
            stream.close()


def one_more(
    kube: KubeClient, controller: ChildProcess, args: argparse.Namespace, timeout: float
) -> dict[str, Any]:
    """Create one Service beyond the N and wait (polling, up to ``timeout``) for its ingress or its
    first Warning event: what the Service past a cloud's limits gets (``--one-more``)."""
    name = f"svc-{args.services:05d}"
    ports = [
        {"name": f"p{j}", "protocol": "TCP", "port": 80 + j, "targetPort": 8080 + j}
        for j in range(args.ports)
    ]
    controller.ask("stats")  # counts from here on are the one Service's
    t0 = time.monotonic()
    kube.create_service(
        NAMESPACE, {"metadata": {"name": name}, "spec": {"type": "LoadBalancer", "ports": ports}}
    )
    deadline = t0 + timeout
    while True:
        warnings = [
            e
            for e in kube.list_events(NAMESPACE)
            if (e.get("involvedObject") or {}).get("name") == name and e.get("type") == "Warning"
        ]
        ingress = ingress_of(kube.get_service(NAMESPACE, name) or {})
        if warnings or ingress or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    calls = controller.ask("stats")
    return {
        "service": name,
        "seconds": round(time.monotonic() - t0, 2),
        "ingress": ingress,
        "warning_events": [{"reason": e.get("reason"), "message": e.get("message")} for e in warnings],
        "reads": calls["reads"],
        "writes": calls["writes"],
        "writes_by_operation": calls["writes_by_operation"],
        "controller_log_counts": calls["controller_log_counts"],
    }


# -- figures --------------------------------------------------------------------------------------


def phase_report(
    calls: dict[str, Any],
    seconds: float,
    cpu: dict[str, float],
    api: dict[str, int],
    args: argparse.Namespace,
    workers: int,
    *,
    delay: float = 0.0,
    chains: int | None = None,
) -> dict[str, Any]:
    """One phase's figures; ``delay`` (the node debounce) is not counted against the ideal.

    ``chains``: how many independent chains of calls the phase has, when fewer than the Services
    (a node sync: each write with its polls is one chain, after the reads it depends on). The calls
    cannot overlap more than that, so the ideal divides by ``min(workers, chains)``, never by more:
    one write and its three reads take four round trips however many workers wait."""
    n = max(args.services, 1)
    total = calls["reads"] + calls["writes"]
    ideal = total * args.latency_ms / 1000.0 / max(1, min(workers, n, chains if chains is not None else n))
    return {
        "seconds": round(seconds, 2),
        "ideal_seconds": round(ideal, 2),
        "time_over_ideal": round((seconds - delay) / ideal, 2) if ideal > 0 else None,
        "reads": calls["reads"],
        "writes": calls["writes"],
        "reads_per_service": round(calls["reads"] / n, 2),
        "writes_per_service": round(calls["writes"] / n, 2),
        "reads_by_operation": calls["reads_by_operation"],
        "writes_by_operation": calls["writes_by_operation"],
        "errors": calls["errors"],
        "retries": calls["retries"],
        "api_requests_by_verb": api,
        "cpu_seconds": cpu,
        "controller_cpu_ms_per_service": round(cpu["controller"] * 1000 / n, 2),
        # Each process is mostly bound to one core by its GIL: on an idle machine the phase cannot
        # take less than its busiest process's CPU seconds, whatever the latency.
        "busiest_process_cpu_seconds": max(cpu.values()),
        "controller_log_counts": calls["controller_log_counts"],
        "controller_error_examples": calls["controller_error_examples"],
    }


def node_sync_split(synced: dict[str, Any], t0: float) -> dict[str, Any]:
    """Where ``add_node``'s seconds went (CLOCK_MONOTONIC is one clock for every process): until the
    controller's informer saw the Node, the debounce, the node change's handler (the node sync and
    the queueing of what it does not cover), and the re-plans it queued until idle."""
    first, fired, handled = synced["node_sync_timing"]
    return {
        "node_seen_after_seconds": round(first - t0, 3),
        "node_sync_handler_seconds": round(handled - fired, 3),
        "idle_after_handler_seconds": round(max(0.0, synced["idle_since"] - handled), 3),
        # of the handler, each provider's node sync (intents, plan, apply): the rest is the
        # UpdatedLoadBalancer events and the queueing
        "node_sync_seconds": synced.get("node_sync_seconds") or {},
    }


def restart_phase(
    controller: ChildProcess,
    pids: dict[str, int | None],
    api: KubeAPIServer,
    args: argparse.Namespace,
    workers: int,
    timeout: float,
) -> dict[str, Any]:
    """A fresh controller process (just spawned as ``controller``) on the converged cluster: from
    its start until idle after the initial sync. ``pids["controller"]`` becomes the new process;
    its CPU counts from the process's start (imports included: a restart pays them)."""
    pids["controller"] = controller.pid
    others = {name: pid for name, pid in pids.items() if name != "controller"}
    cpu0 = CPUSnapshot({**CPUSnapshot.take(others).seconds, "controller": 0.0})
    mark = len(api.requests)
    started = controller.read(max(300.0, timeout / 10))
    idle = controller.ask("wait-idle", timeout)
    calls = controller.ask("stats")
    cpu = CPUSnapshot.take(pids).since(cpu0)
    api_by_verb = controller_requests(api.requests[mark:])
    peak = memory_kib(controller.pid)["VmHWM"]
    controller.ask("gc")
    figures = phase_report(calls, idle["idle_since"] - started["ready_at"], cpu, api_by_verb, args, workers)
    kube_writes = sum(n for verb, n in api_by_verb.items() if verb not in ("get", "list", "watch"))
    figures["startup_seconds"] = round(started["startup_seconds"], 2)
    figures["kube_api_writes"] = kube_writes
    figures["converged_writes_nothing"] = calls["writes"] == 0 and kube_writes == 0
    figures["controller_rss_mb"] = {
        "after_startup": mib(started["rss_kib_at_ready"]),
        "peak": mib(peak),
        "steady_after_gc": mib(memory_kib(controller.pid)["VmRSS"]),
    }
    return figures


def progress(workers: int, phase: str, figures: dict[str, Any], memory: dict[str, Any]) -> None:
    """One JSON line per finished phase on stderr, so that a run cut short still leaves figures."""
    line = {
        "progress": phase,
        "workers": workers,
        "at": time.strftime("%H:%M:%S"),
        **figures,
        "memory": memory,
    }
    print(json.dumps(line), file=sys.stderr, flush=True)


def provider_settings(provider: str, sandbox: dict[str, Any]) -> dict[str, Any]:
    """The sandbox's settings, with a cluster name and identity and the rate limits off."""
    settings = dict(sandbox)
    settings.setdefault("cluster_name", "bench")
    fields = getattr(load_provider(provider).settings_model, "model_fields", {})
    if "cluster_id" in fields:
        settings.setdefault("cluster_id", "bench-cluster-id")
    for limit in ("reads_per_second", "writes_per_second"):
        if limit in fields:
            settings[limit] = 0  # 0 = no client-side limit (TokenBucket treats 0 as off)
    return settings


def after_run(provider_name: str, settings: dict[str, Any], kube: KubeClient, verify: bool) -> dict[str, Any]:
    """Load balancers the cluster owns, and (``verify``) how many Services a fresh plan would change."""
    provider = load_provider(provider_name).from_settings(settings)
    out: dict[str, Any] = {"load_balancers": len({o.name for o in provider.list_owned()})}
    # K: every Service is deep-checked once every K periodic resyncs (providers that rotate them).
    out["drift_check_periods"] = getattr(provider, "drift_check_periods", None)
    if verify:
        services, _ = kube.list_services(NAMESPACE)
        nodes, _ = kube.list_nodes()
        intent_settings = IntentSettings(cluster=settings["cluster_name"])
        read_round = getattr(provider, "read_round", None)
        changed = 0
        refused: list[str] = []  # e.g. the --one-more Service past the cloud's limits
        with read_round() if callable(read_round) else _nothing():
            for svc in services:
                try:
                    changed += not provider.plan(build_intent(svc, nodes, intent_settings, provider)).empty
                except Exception as exc:  # listed with its class: a refusal (CapacityExceeded,
                    # InvalidService) is expected only for --one-more; anything else is a bug to read
                    refused.append(f"{svc['metadata']['name']}: {type(exc).__name__}: {exc}"[:300])
        out["services_a_fresh_plan_would_change"] = changed
        out["services_a_fresh_plan_refuses"] = refused
    return out


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


# -- one run ---------------------------------------------------------------------------------------


def run(args: argparse.Namespace, workers: int, phases: tuple[str, ...] = PHASES) -> dict[str, Any]:
    """Emulator, API server and controller started afresh; the phases measured in order."""
    cloud = ChildProcess([sys.executable, str(HERE / "scale_cloud.py"), args.provider, *_node_names(args)])
    try:
        ready = cloud.read(300)
        settings = provider_settings(args.provider, ready["settings"])
        if "node_port_range" in getattr(load_provider(args.provider).settings_model, "model_fields", {}):
            settings["node_port_range"] = args.service_node_port_range  # the provider's range rules
        out: dict[str, Any] = {"workers": workers, "phases": {}}
        with KubeAPIServer(service_node_port_range=args.service_node_port_range) as api:
            try:
                _run_with(args, workers, phases, cloud, settings, ready, api, out)
            except RuntimeError as e:
                # A phase that timed out, or a child that died: keep the phases measured so far (and
                # the other run of --compare-workers) instead of losing the whole report.
                out["error"] = str(e)[:2000]
                print(
                    json.dumps({"progress": "failed", "workers": workers, "error": out["error"]}),
                    file=sys.stderr,
                    flush=True,
                )
            return out
    finally:
        if cloud.proc.poll() is None:
            cloud.send({"cmd": "quit"})
        # (an emulator profiled per thread, BENCH_EMULATOR_PROFILE, takes minutes to write it)
        cloud.close(600 if os.environ.get("BENCH_EMULATOR_PROFILE") else 30)


def _node_names(args: argparse.Namespace) -> list[str]:
    return [f"node-{i}" for i in range(args.nodes)]


def _run_with(
    args: argparse.Namespace,
    workers: int,
    phases: tuple[str, ...],
    cloud: ChildProcess,
    settings: dict[str, Any],
    ready: dict[str, Any],
    api: KubeAPIServer,
    out: dict[str, Any],
) -> None:
    """The phases of one run, their figures written into ``out`` as each one ends."""
    kube = KubeClient.for_url(api.url)
    kube.create_namespace(NAMESPACE)
    for node in ready["nodes"]:
        kube.create_node(node_body(SandboxNode(**node), args.kubectl_applied))
    make_services(kube, args)
    api.clear_requests()
    argv = [
        sys.executable,
        str(HERE / "scale_controller.py"),
        *("--provider", args.provider, "--api", api.url, "--workers", str(workers)),
        *("--latency-ms", str(args.latency_ms), "--node-debounce", str(args.node_debounce)),
        *("--backoff-base", str(args.backoff_base), "--backoff-max", str(args.backoff_max)),
        *(["--no-trim"] if args.no_trim else []),
        *(["--tracemalloc"] if args.tracemalloc else []),
        *(["--no-malloc-trim"] if args.no_malloc_trim else []),
        *(["--no-gc-settle"] if args.no_gc_settle else []),
        *(["--profile", str(Path(args.profile) / f"workers-{workers}")] if args.profile else []),
    ]
    env = dict(os.environ, BENCH_PROVIDER_SETTINGS=json.dumps(settings))
    if args.malloc_arena_max:
        env["MALLOC_ARENA_MAX"] = str(args.malloc_arena_max)
    controller = ChildProcess(argv, env)
    pids: dict[str, int | None] = {
        "controller": controller.pid,
        "emulator": cloud.pid,
        "kube_api_and_driver": None,
    }
    timeout = phase_timeout(args, workers)
    out["phase_timeout_seconds"] = round(timeout)
    try:
        started = controller.read(max(300.0, timeout / 10))
        cpu_start = CPUSnapshot(
            {**CPUSnapshot.take(pids).seconds, "controller": started["cpu_seconds_at_ready"]}
        )
        rss: dict[str, Any] = {"after_startup": mib(started["rss_kib_at_ready"])}
        out["controller_startup_seconds"] = round(started["startup_seconds"], 2)

        # 1. create: every Service exists before the controller starts.
        mark = len(api.requests)
        done = wait_all_ingress(kube, args.services, timeout)
        controller.ask("wait-idle", timeout)
        calls = controller.ask("stats")
        cpu_end = CPUSnapshot.take(pids)
        out["phases"]["create"] = phase_report(
            calls,
            done - started["ready_at"],
            cpu_end.since(cpu_start),
            controller_requests(api.requests[mark:]),
            args,
            workers,
        )
        rss["peak_after_create"] = mib(memory_kib(controller.pid)["VmHWM"])
        progress(workers, "create", out["phases"]["create"], rss)

        if args.one_more:
            out["one_more"] = one_more(kube, controller, args, timeout)
            progress(workers, "one_more", out["one_more"], memory_kib(controller.pid))

        if "add_node" in phases:
            controller.ask("mark")
            mark, cpu0, t0 = len(api.requests), CPUSnapshot.take(pids), time.monotonic()
            node = cloud.ask({"cmd": "add_node", "name": f"node-{args.nodes}"})["node"]
            kube.create_node(node_body(SandboxNode(**node), args.kubectl_applied))
            synced = controller.ask("wait-node-sync", timeout)
            out["phases"]["add_node"] = phase_report(
                synced,
                synced["idle_since"] - t0,
                CPUSnapshot.take(pids).since(cpu0),
                controller_requests(api.requests[mark:]),
                args,
                NODE_SYNC_WORKERS,  # the node sync's own pool, whatever --workers is
                delay=args.node_debounce,
                chains=synced["writes"],
            )
            out["phases"]["add_node"]["debounce_seconds"] = args.node_debounce
            if synced.get("node_sync_timing"):
                out["phases"]["add_node"].update(node_sync_split(synced, t0))
            progress(workers, "add_node", out["phases"]["add_node"], memory_kib(controller.pid))

        if "resync" in phases:
            mark, cpu0 = len(api.requests), CPUSnapshot.take(pids)
            resynced = controller.ask("resync", timeout)
            out["phases"]["resync"] = phase_report(
                resynced,
                resynced["idle_since"] - resynced["started"],
                CPUSnapshot.take(pids).since(cpu0),
                controller_requests(api.requests[mark:]),
                args,
                workers,
            )
            progress(workers, "resync", out["phases"]["resync"], memory_kib(controller.pid))

        controller.ask("gc")
        if args.tracemalloc:
            out["controller_allocations"] = controller.ask("top", 300)["top"]
        mem = memory_kib(controller.pid)
        rss.update(peak=mib(mem["VmHWM"]), steady_after_gc=mib(mem["VmRSS"]))
        out["controller_rss_mb"] = rss
        out["cpu_seconds_total"] = CPUSnapshot.take(pids).since(cpu_start)
        controller.ask("quit", 60)

        if "restart" in phases:
            controller.close()
            controller = ChildProcess(argv, env)
            out["phases"]["restart"] = restart_phase(controller, pids, api, args, workers, timeout)
            if args.tracemalloc:
                out["phases"]["restart"]["controller_allocations"] = controller.ask("top", 300)["top"]
            progress(workers, "restart", out["phases"]["restart"], memory_kib(controller.pid))
            controller.ask("quit", 60)
    finally:
        if controller.proc.poll() is None:
            if "controller_rss_mb" not in out:  # cut short: the memory figures so far
                mem = memory_kib(controller.pid)
                out["controller_rss_mb"] = {"peak_so_far": mib(mem["VmHWM"]), "now": mib(mem["VmRSS"])}
            controller.send("quit")
        controller.close()
    out.update(after_run(args.provider, settings, kube, args.verify))


# -- entry point -----------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--provider", default="aws", help="aws, gcp or azure (default aws)")
    p.add_argument("--services", type=int, default=200, help="LoadBalancer Services (default 200)")
    p.add_argument("--nodes", type=int, default=10, help="nodes (default 10)")
    p.add_argument("--ports", type=int, default=1, help="ports per Service (default 1)")
    p.add_argument("--workers", type=int, default=10, help="controller workers (default 10)")
    p.add_argument(
        "--latency-ms", type=float, default=20.0, help="added latency per cloud request (default 20)"
    )
    p.add_argument("--node-debounce", type=float, default=1.0, help="node sync debounce, seconds (default 1)")
    p.add_argument(
        "--backoff-base", type=float, default=5.0, help="first retry delay (default 5, as lbprov run)"
    )
    p.add_argument("--backoff-max", type=float, default=300.0, help="retry delay cap (default 300)")
    p.add_argument(
        "--node-ports",
        choices=("contiguous", "random", "none"),
        default="random",
        help="random: the API server allocates, as in a real cluster (default); contiguous: NodePorts "
        "in one block from 30000, so exact node security group rules aggregate into a few ranges; "
        "none: allocateLoadBalancerNodePorts false (GCP only; the NodePort range holds 2,768 ports, so "
        "more Services than that need it or a wider --service-node-port-range)",
    )
    p.add_argument(
        "--service-node-port-range",
        default="30000-32767",
        help="the sandbox API server's NodePort range, as kube-apiserver's flag (default 30000-32767: "
        "2,768 ports; 10,000 one-port Services need e.g. 30000-40999)",
    )
    p.add_argument(
        "--compare-workers",
        action="store_true",
        help="a second run with --workers 1 (upstream's default) and the time ratio per phase",
    )
    p.add_argument(
        "--verify", action="store_true", help="re-plan every Service afresh at the end (must be empty)"
    )
    p.add_argument(
        "--kubectl-applied",
        action="store_true",
        help="objects as a real cluster holds them: Services with kubectl's last-applied-configuration "
        "annotation, Nodes with an image list and conditions (what the informer's trim drops)",
    )
    p.add_argument(
        "--no-trim", action="store_true", help="the controller caches whole objects (for comparison)"
    )
    p.add_argument(
        "--malloc-arena-max",
        type=int,
        default=0,
        help="MALLOC_ARENA_MAX for the controller process (glibc: fewer per-thread arenas, less RSS "
        "kept after transient peaks; 0 = the default)",
    )
    p.add_argument(
        "--no-malloc-trim",
        action="store_true",
        help="the controller does not give freed heap pages back when a batch ends (lbprov/heap.py), "
        "for comparison",
    )
    p.add_argument(
        "--no-gc-settle",
        action="store_true",
        help="the controller does not collect and freeze its heap when a batch ends, as lbprov run "
        "does (lbprov/heap.py settle()), for comparison",
    )
    p.add_argument(
        "--tracemalloc",
        action="store_true",
        help="report the controller's Python memory still held at the end, by source line (slower; "
        "RSS figures of such a run include tracemalloc's own memory)",
    )
    p.add_argument(
        "--profile",
        metavar="DIR",
        help="cProfile the controller's threads (CPU time): DIR/workers-W/<phase>.pstats per phase "
        "(bench/thread_profile.py; profiling slows the controller, so CPU figures are not comparable)",
    )
    p.add_argument(
        "--one-more",
        action="store_true",
        help="after create, one more Service of --ports ports: its ingress or first Warning event (the "
        "Service past the cloud's limits, e.g. Azure on 6 nodes with 900 two-port Services)",
    )
    p.add_argument(
        "--phases",
        default=",".join(PHASES),
        help=f"phases to run, in order, create always first (default {','.join(PHASES)}; also: "
        f"{','.join(EXTRA_PHASES)})",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run everything N times, each on fresh processes, and add per-phase medians (min, max) "
        "of time, time / ideal, CPU seconds and calls to the report (``medians``; bench/scale_stats.py)",
    )
    p.add_argument(
        "--annotation",
        action="append",
        default=[],
        type=lambda a: a if "=" in a else p.error(f"--annotation {a!r}: KEY=VALUE expected"),
        help="KEY=VALUE: an annotation on every Service (repeatable), e.g. "
        "service.beta.kubernetes.io/aws-load-balancer-type=classic",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="give up on a phase after this many seconds (default: scaled to the run, see phase_timeout)",
    )
    return p


def parse_phases(text: str) -> tuple[str, ...]:
    """``--phases``: the named phases in their run order (create always runs first); an unknown
    name is an error naming the flag, not a silently skipped phase."""
    names = {x.strip() for x in text.split(",") if x.strip()}
    known = PHASES + EXTRA_PHASES
    unknown = sorted(names - set(known))
    if unknown:
        raise SystemExit(f"--phases: unknown phase(s) {', '.join(unknown)} (known: {', '.join(known)})")
    return tuple(p for p in known if p in names)


def phase_timeout(args: argparse.Namespace, workers: int) -> float:
    """How long a phase may take before the run gives up: ``--timeout``, or a budget that grows with
    the Services per worker. A guard against a hung run, not a target: 10 minutes, plus per Service
    one second of CPU (the controller's and the emulator's on a loaded 2-core machine) and 20 calls
    at the injected latency spread over the workers. 1,000 Services at 20 ms: 1,640 s with 10 workers,
    2,000 s with 1 (where the fixed 600 s cut the 1-worker create at 737 Services); 10,000 Services
    with no latency: 10,600 s."""
    if args.timeout is not None:
        return float(args.timeout)
    per_service = 1.0 + 20 * args.latency_ms / 1000.0 / max(workers, 1)
    return 600.0 + args.services * per_service


def header(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "provider": args.provider,
        "services": args.services,
        "nodes": args.nodes,
        "ports_per_service": args.ports,
        "annotations": args.annotation,
        "latency_ms": args.latency_ms,
        "node_ports": args.node_ports,
        "service_node_port_range": args.service_node_port_range,
        "phases": args.phases,
        "malloc_arena_max": args.malloc_arena_max or None,
        "malloc_trim": not args.no_malloc_trim,
        "gc_settle": not args.no_gc_settle,
        "cpus": os.cpu_count(),
        "load_average_at_start": list(os.getloadavg()),
        "note": "seconds are wall-clock on a shared machine (inflated by other load); counts and CPU "
        "seconds are load-independent",
    }


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    if args.repeat < 1:
        raise SystemExit(f"--repeat: {args.repeat} runs; give at least 1")
    report = header(args)
    phases = parse_phases(args.phases)
    compare = args.compare_workers and args.workers != 1
    runs = []
    for i in range(args.repeat):
        # alternated (10 workers, 1 worker, 10, 1, ...) so that a slow spell of the machine does not
        # fall on one side only
        if args.repeat > 1:
            print(json.dumps({"progress": "repeat", "run": i + 1, "of": args.repeat}), file=sys.stderr)
        runs.append(run(args, args.workers, phases))
        if compare:
            runs.append(run(args, 1, phases))
    summary = medians(runs)
    if compare:
        default, one = summary[0]["phases"], summary[1]["phases"]
        report["workers_1_over_default_time"] = {
            phase: round(one[phase]["seconds"]["median"] / figures["seconds"]["median"], 2)
            for phase, figures in default.items()
            if figures["seconds"]["median"] > 0 and phase in one
        }
    report["runs"] = runs
    if args.repeat > 1:
        report["medians"] = summary
    print_json(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
