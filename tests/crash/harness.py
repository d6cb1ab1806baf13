"""The crash harness (issue 13): ``lbprov run`` killed with SIGKILL at random moments, restarted,
and still converging with no duplicate and no leak.

Separate processes, as in production: the sandbox Kubernetes API server
(``python -m lbprov.sandbox.kube_api``), the provider's emulator behind a fault proxy
(``serve_cloud.py``: throttling, "write done, response lost"), and ``python -m lbprov run``. One run:

1. create ``services`` mixed Services (1-3 ports, TCP or UDP, Cluster or Local, some ClientIP
   affinity), killing the controller ``kills_create`` times at random moments while it creates
   their load balancers, restarting it at once each time; wait until every Service has an address;
2. delete a random ``delete_fraction`` of them, killing it ``kills_delete`` times while it deletes;
   wait until every deleted Service is gone (its finalizer removed);
3. stop the controller; then check, with the provider's SDK against the emulator directly (no
   faults): every remaining Service converged (address, finalizer, an empty plan), no deleted
   Service stuck, no load balancer listed twice for one Service, nothing owned left for a deleted
   Service (its delete plan is empty) and no owned load balancer without its Service.

``python tests/crash/harness.py --provider aws --services 50 --kills 10 --seeds 1 2 3 --faults``
runs it in full and prints the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lbprov.testing import wait_for

HERE = Path(__file__).resolve().parent
FINALIZER = "service.kubernetes.io/load-balancer-cleanup"
NAMESPACE = "crash"


@dataclass
class Config:
    provider: str
    services: int = 10
    kills_create: int = 2
    kills_delete: int = 1
    seed: int = 1
    throttle: float = 0.0
    lost: float = 0.0
    delete_fraction: float = 0.6
    nodes: int = 3
    workers: int = 4
    converge_timeout: float = 180.0


@dataclass
class Result:
    provider: str
    seed: int
    services: int
    deleted: int
    starts: int = 0
    kills: int = 0
    seconds_to_converge_after_last_kill: float = 0.0
    total_seconds: float = 0.0
    unconverged: list[str] = field(default_factory=list)
    stuck_finalizers: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)
    faults: dict[str, int] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return not (self.unconverged or self.stuck_finalizers or self.duplicates or self.leaks or self.error)


def mixed_service(rng: random.Random, i: int) -> dict[str, Any]:
    protocol = "UDP" if rng.random() < 0.2 else "TCP"
    ports = rng.sample([80, 443, 8080, 8443, 9000, 5353], rng.randint(1, 3))
    spec: dict[str, Any] = {
        "type": "LoadBalancer",
        "selector": {"app": f"s{i}"},
        "ports": [{"name": f"p{p}", "port": p, "protocol": protocol, "targetPort": 8080} for p in ports],
    }
    if rng.random() < 0.25:
        spec["externalTrafficPolicy"] = "Local"
    if rng.random() < 0.2:
        spec["sessionAffinity"] = "ClientIP"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"s{i:03d}", "namespace": NAMESPACE},
        "spec": spec,
    }


class Processes:
    """The three kinds of processes of a run, and their clean-up."""

    def __init__(self, cfg: Config, work: Path) -> None:
        self.cfg = cfg
        self.work = work
        self.api: subprocess.Popen[str] | None = None
        self.cloud: subprocess.Popen[str] | None = None
        self.run: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0
        self.kubeconfig = str(work / "kubeconfig")
        self.settings_file = str(work / "settings.yaml")
        self.cloud_doc: dict[str, Any] = {}

    def start_api(self) -> str:
        self.api = subprocess.Popen(
            [sys.executable, "-m", "lbprov.sandbox.kube_api", "--kubeconfig", self.kubeconfig],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.api.stdout is not None
        return self.api.stdout.readline().strip()

    def start_cloud(self) -> dict[str, Any]:
        out = self.work / "cloud.json"
        self.cloud = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "serve_cloud.py"),
                "--provider", self.cfg.provider,
                "--nodes", str(self.cfg.nodes),
                "--seed", str(self.cfg.seed),
                "--throttle", str(self.cfg.throttle),
                "--lost", str(self.cfg.lost),
                "--out", str(out),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        wait_for(
            lambda: out.exists() or self.cloud.poll() is not None,  # type: ignore[union-attr]
            120,
            "the emulator",
            interval=0.2,
        )
        if not out.exists():
            raise RuntimeError(f"the {self.cfg.provider} emulator process exited")
        self.cloud_doc = json.loads(out.read_text())
        settings = {k: v for k, v in self.cloud_doc["settings"].items() if k != "cluster_name"}
        cluster = self.cloud_doc["settings"].get("cluster_name") or "sandbox"
        Path(self.settings_file).write_text(
            yaml.safe_dump({"cluster_name": cluster, self.cfg.provider: settings})
        )
        return self.cloud_doc

    def start_run(self) -> None:
        log = open(self.work / f"run-{self.starts}.log", "wb")  # noqa: SIM115 - owned by the process
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LBPROV_", "KUBERNETES_"))}
        self.run = subprocess.Popen(
            [
                sys.executable, "-m", "lbprov", "run",
                "--provider", self.cfg.provider,
                "--settings", self.settings_file,
                "--kubeconfig", self.kubeconfig,
                "--metrics-address", "off",
                "--workers", str(self.cfg.workers),
                "--backoff-base", "0.2",
                "--backoff-max", "2",
                "--node-debounce", "0.2",
                "--log-format", "text",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )  # fmt: skip
        self.starts += 1

    def wait_working(self, timeout: float = 60.0) -> None:
        """Until the current controller process has started its workers (it logs so)."""
        log = self.work / f"run-{self.starts - 1}.log"
        wait_for(
            lambda: (
                "workers started" in log.read_text(errors="replace")
                or (self.run and self.run.poll() is not None)
            ),
            timeout,
            "the controller to start working",
            interval=0.2,
        )
        if self.run is not None and self.run.poll() is not None:
            raise RuntimeError(f"lbprov run exited with {self.run.returncode}: see {log}")

    def kill_run(self) -> None:
        assert self.run is not None
        self.run.send_signal(signal.SIGKILL)
        self.run.wait(10)
        self.kills += 1

    def stop_run(self) -> None:
        if self.run is not None and self.run.poll() is None:
            self.run.send_signal(signal.SIGTERM)
            try:
                self.run.wait(30)
            except subprocess.TimeoutExpired:
                self.run.kill()
                self.run.wait(10)

    def fault_counts(self) -> dict[str, int]:
        if self.cloud is None or self.cloud.poll() is not None:
            return {}
        self.cloud.send_signal(signal.SIGTERM)
        out, _ = self.cloud.communicate(timeout=30)
        lines = [line for line in out.splitlines() if line.startswith("{")]
        return dict(json.loads(lines[-1])) if lines else {}

    def close(self) -> None:
        self.stop_run()
        for proc in (self.cloud, self.api):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)


def _kills_during(procs: Processes, rng: random.Random, count: int, spread: float) -> float:
    """Kill (and restart at once) the controller ``count`` times, each at a random moment within
    ``spread`` seconds after it started working (its workers started): mid-reconcile, not during
    its start-up. Returns the time of the last kill."""
    last = time.monotonic()
    for _ in range(count):
        procs.wait_working()
        time.sleep(rng.uniform(0.0, spread))
        procs.kill_run()
        last = time.monotonic()
        procs.start_run()
    return last


def crash_run(cfg: Config, work: Path | None = None) -> Result:
    """One seeded run (see the module doc); never raises for what it measures."""
    from lbprov.intent import IntentSettings, build_intent, service_ref
    from lbprov.kube.client import KubeClient
    from lbprov.model import SandboxNode
    from lbprov.provider import load_provider
    from lbprov.sandbox.demo import node_object

    rng = random.Random(cfg.seed)
    work = work or Path(tempfile.mkdtemp(prefix=f"lbprov-crash-{cfg.provider}-"))
    procs = Processes(cfg, work)
    result = Result(cfg.provider, cfg.seed, cfg.services, 0)
    started = time.monotonic()
    try:
        url = procs.start_api()
        kube = KubeClient.for_url(url)
        doc = procs.start_cloud()
        for node in doc["nodes"]:
            kube.create_node(node_object(SandboxNode(**node)))
        kube.create_namespace(NAMESPACE)
        procs.start_run()

        # 1. mass create, with kills while the load balancers are being made
        names = []
        for i in range(cfg.services):
            svc = mixed_service(rng, i)
            kube.create_service(NAMESPACE, svc)
            names.append(svc["metadata"]["name"])
        last_kill = _kills_during(procs, rng, cfg.kills_create, spread=max(1.0, cfg.services * 0.1))

        def have_ingress(which: list[str]) -> bool:
            for n in which:
                svc = kube.get_service(NAMESPACE, n)
                if not (svc and ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress")):
                    return False
            return True

        wait_for(lambda: have_ingress(names), cfg.converge_timeout, "every Service's address", interval=0.2)

        # 2. mass delete, with kills while they are being deleted
        doomed = sorted(rng.sample(names, round(len(names) * cfg.delete_fraction)))
        result.deleted = len(doomed)
        doomed_refs = [service_ref(kube.get_service(NAMESPACE, n)) for n in doomed]
        for n in doomed:
            kube.delete_service(NAMESPACE, n)
        if cfg.kills_delete:
            last_kill = _kills_during(procs, rng, cfg.kills_delete, spread=max(0.5, len(doomed) * 0.05))
        try:
            wait_for(
                lambda: all(kube.get_service(NAMESPACE, n) is None for n in doomed),
                cfg.converge_timeout,
                "every deleted Service to go",
                interval=0.2,
            )
        except AssertionError as exc:
            left = [kube.get_service(NAMESPACE, n) for n in doomed]
            meta = [s["metadata"] for s in left if s]
            raise AssertionError(
                f"{exc}: left {[(m['name'], m.get('finalizers'), m.get('deletionTimestamp')) for m in meta]}"
            ) from None
        kept = [n for n in names if n not in doomed]
        wait_for(lambda: have_ingress(kept), cfg.converge_timeout, "the kept Services", interval=0.2)
        result.seconds_to_converge_after_last_kill = round(time.monotonic() - last_kill, 2)
        procs.stop_run()

        # 3. the checks, through the SDK against the emulator directly
        uid = str(kube.get_namespace("kube-system")["metadata"]["uid"])
        cluster = str(doc["settings"].get("cluster_name") or "sandbox")  # as the settings file says
        direct = {**doc["direct"], "cluster_name": cluster, "cluster_id": uid}
        provider = load_provider(cfg.provider).from_settings(direct, read_only=True)
        nodes = kube.list_nodes()[0]
        live = {}
        for svc in kube.list_services(NAMESPACE)[0]:
            meta = svc["metadata"]
            live[meta["uid"]] = svc
            ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress")
            if FINALIZER not in (meta.get("finalizers") or []) or not ingress:
                result.unconverged.append(f"{meta['name']}: finalizer or address missing")
                continue
            plan = provider.plan(build_intent(svc, nodes, IntentSettings(cluster), provider))
            if not plan.empty:
                result.unconverged.append(f"{meta['name']}: {plan.summary()}")
        for n in doomed:
            svc = kube.get_service(NAMESPACE, n)
            if svc is not None:
                result.stuck_finalizers.append(f"{n}: {svc['metadata'].get('finalizers')}")
        owned = provider.list_owned()
        per_service = Counter((o.ref.uid, o.kind) for o in owned)
        result.duplicates = [f"{uid_}: {n} x {kind}" for (uid_, kind), n in per_service.items() if n > 1]
        for o in owned:
            if o.ref.uid not in live:
                result.leaks.append(f"load balancer {o.name} of deleted {o.ref.key}")
        for ref in doomed_refs:
            left = provider.plan_delete(ref)
            for c in left.changes:
                result.leaks.append(f"{c.kind} {c.name} of deleted {ref.key}")
        result.leaks = sorted(set(result.leaks))
    except Exception as exc:  # a timeout or a broken process is a finding, reported with the figures
        result.error = f"{type(exc).__name__}: {exc} (logs in {work})"
    finally:
        result.starts, result.kills = procs.starts, procs.kills
        procs.stop_run()
        result.faults = procs.fault_counts()
        procs.close()
        result.total_seconds = round(time.monotonic() - started, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--provider", action="append", choices=["aws", "gcp", "azure"])
    parser.add_argument("--services", type=int, default=50)
    parser.add_argument(
        "--kills", type=int, default=10, help="kills per run, split between create and delete"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument(
        "--faults", action="store_true", help="throttling 5%% and lost responses 3%% of writes"
    )
    args = parser.parse_args(argv)
    results = []
    for provider in args.provider or ["aws", "gcp", "azure"]:
        for seed in args.seeds:
            cfg = Config(
                provider,
                services=args.services,
                kills_create=args.kills - args.kills // 3,
                kills_delete=args.kills // 3,
                seed=seed,
                throttle=0.05 if args.faults else 0.0,
                lost=0.03 if args.faults else 0.0,
                converge_timeout=600,
            )
            res = crash_run(cfg)
            print(json.dumps({**asdict(res), "ok": res.ok}), flush=True)
            results.append(res)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parents[1]))
    raise SystemExit(main())
