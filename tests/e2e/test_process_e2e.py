"""``python -m lbprov run`` as a separate process against the sandbox API and moto: it gives a
Service its ingress, serves /metrics /healthz /readyz, exits 0 on SIGTERM; and killed with SIGKILL
in the middle of creating load balancers, then restarted, it converges with no duplicate and, after
the Services are deleted, no leak.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from lbprov import naming
from lbprov.testing import HeldPort

from .conftest import NAMESPACE, Env, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def held_ports() -> Iterator[ExitStack]:
    """Where :func:`start_run` holds each run's metrics port until the test ends (the run binds
    beside it): a port freed before the run binds it could be taken by another process meanwhile."""
    with ExitStack() as stack:
        yield stack


def start_run(
    env: Env, tmp_path: Path, held_ports: ExitStack, *extra: str
) -> tuple[subprocess.Popen[bytes], int, Path]:
    kubeconfig = env.api.write_kubeconfig(tmp_path / "kubeconfig")
    port = held_ports.enter_context(HeldPort()).port
    proc_env = dict(os.environ)
    # Provider settings through the environment, as in a Deployment (credentials never on argv).
    for key, value in env.cloud.settings.items():
        if key == "cluster_name":
            proc_env["LBPROV_CLUSTER_NAME"] = str(value)
        elif value is not None:
            proc_env[f"LBPROV_AWS_{key.upper()}"] = str(value)
    log = tmp_path / f"run-{port}.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lbprov",
            "run",
            "--provider",
            "aws",
            "--kubeconfig",
            kubeconfig,
            "--metrics-address",
            f"127.0.0.1:{port}",
            "--backoff-base",
            "0.2",
            "--backoff-max",
            "2",
            "--node-debounce",
            "0.2",
            "--workers",
            "4",
            *extra,
        ],
        env=proc_env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    return proc, port, log


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except OSError:
        return 0, ""


def stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


def test_lbprov_run_process_gives_a_service_its_ingress_and_exits_0_on_sigterm(
    env: Env, tmp_path: Path, held_ports: ExitStack
) -> None:
    lease = ["--leader-elect", "--lease-namespace", "kube-system", "--lease-name", "lbprov-proc"]
    proc, port, log = start_run(env, tmp_path, held_ports, *lease, "--lease-identity", "proc-1")
    try:
        env.create_service("web", [(80, "TCP"), (53, "UDP")])
        (ingress,) = env.wait_ingress("web", timeout=60)
        assert ingress["hostname"].endswith(".elb.amazonaws.com")
        wait_for(lambda: http_get(f"http://127.0.0.1:{port}/readyz")[0] == 200, 60, "/readyz 200")
        assert http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200
        # The status patch lands just before the reconcile is counted: poll for the counter.
        metrics = wait_for(
            lambda: (
                (m := http_get(f"http://127.0.0.1:{port}/metrics")[1])
                and 'lbprov_reconciles_total{provider="aws",result="success"}' in m
                and m
            ),
            60,
            "reconcile counted in /metrics",
        )
        assert 'operation="elbv2:CreateLoadBalancer",provider="aws",result="sent"} 1.0' in metrics
        assert "lbprov_leader 1.0" in metrics
    finally:
        code = stop(proc)
    assert code == 0, log.read_text()[-3000:]
    lease_obj = env.kube.get_lease("kube-system", "lbprov-proc") or {}
    assert not lease_obj["spec"].get("holderIdentity"), "SIGTERM released the lease"
    text = log.read_text()
    assert '"msg": "controller stopped"' in text
    assert "testing" not in text.replace('"identity"', ""), "no credential value in the logs"


def _state(env: Env, uids: list[str]) -> dict[str, Any]:
    lbs = env.elbv2().describe_load_balancers()["LoadBalancers"]
    names = Counter(lb["LoadBalancerName"] for lb in lbs)
    return {uid: names[naming.lb_name(uid)] for uid in uids}


def test_killed_mid_reconcile_and_restarted_converges_without_duplicates_or_leaks(
    env: Env, tmp_path: Path, held_ports: ExitStack
) -> None:
    ports = [(80, "TCP"), (443, "TCP"), (53, "UDP")]
    uids = [env.create_service(f"svc-{i}", ports)["metadata"]["uid"] for i in range(3)]
    proc, _, log = start_run(env, tmp_path, held_ports)
    try:
        wait_for(lambda: env.writes() or proc.poll() is not None, 60, "the first cloud write", interval=0.002)
    finally:
        proc.kill()  # SIGKILL: no graceful anything
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL, log.read_text()[-2000:]
    done_at_kill = [
        s for s in (env.svc(f"svc-{i}") for i in range(3)) if (s or {}).get("status", {}).get("loadBalancer")
    ]
    assert len(done_at_kill) < 3, "the kill must land mid-reconcile for this test to mean anything"
    writes_before_restart = len(env.writes())

    proc, _, log = start_run(env, tmp_path, held_ports)
    try:
        for i in range(3):
            env.wait_ingress(f"svc-{i}", timeout=60)
        assert len(env.writes()) > writes_before_restart
        assert _state(env, uids) == dict.fromkeys(uids, 1), "exactly one load balancer per Service"
        for uid in uids:
            assert env.listener_ports(uid) == sorted((p, proto) for p, proto in ports)
            assert len(env.target_groups(uid)) == len(ports), "one target group per port, no orphan"
            assert env.registered_instances(uid) == env.all_instance_ids()
        for i in range(3):
            env.kube.delete_service(NAMESPACE, f"svc-{i}")
        for i in range(3):
            wait_for(lambda i=i: env.svc(f"svc-{i}") is None, 30, f"svc-{i} deleted")
        assert _state(env, uids) == dict.fromkeys(uids, 0)
        assert all(env.target_groups(uid) == [] for uid in uids)
        assert env.provider().list_owned() == [], "nothing owned by the cluster is left"
    finally:
        assert stop(proc) == 0, log.read_text()[-2000:]
