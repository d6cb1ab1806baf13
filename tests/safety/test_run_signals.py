"""Issue 13: ``lbprov run`` stops within 2 s of SIGTERM/SIGINT in every phase.

Cache sync is pinned in ``test_kube_hangs.py``; here: start-up (the first request to the API
server hangs), leader election (a standby waiting for a Lease another replica holds), and a
reconcile in flight (a cloud that never answers: the reconcile gets ``--shutdown-timeout``, then
the process goes).
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from pathlib import Path

from lbprov.kube.client import KubeClient
from lbprov.sandbox.kube_api import KubeAPIServer

from .conftest import SilentServer, lbprov_env, write_kubeconfig

STOP_SECONDS = 2.0


class Running:
    """``python -m lbprov run`` with its stderr collected line by line as it comes."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        import sys

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lbprov", "run", *argv],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip())

    def wait_for_line(self, text: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            assert self.proc.poll() is None, "\n".join(self.lines[-20:])
            assert time.monotonic() < deadline, f"no {text!r} in:\n" + "\n".join(self.lines[-20:])
            time.sleep(0.05)

    def stop_with(self, sig: signal.Signals, timeout: float = 60.0) -> float:
        self.proc.send_signal(sig)
        sent = time.monotonic()
        self.proc.wait(timeout)
        took = time.monotonic() - sent
        self._reader.join(2)
        return took


def _env(**extra: str) -> dict[str, str]:
    return lbprov_env(
        LBPROV_CLUSTER_NAME="signals",
        AWS_REGION="us-east-1",
        LBPROV_AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="x",
        AWS_SECRET_ACCESS_KEY="y",
        **extra,
    )


COMMON = ["--provider", "aws", "--metrics-address", "off", "--log-format", "text"]


def test_run_stops_within_2s_of_sigterm_while_standing_by_for_the_lease(tmp_path: Path) -> None:
    with KubeAPIServer() as api:
        kube = KubeClient.for_url(api.url)
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
        kube.create_lease(
            "kube-system",
            {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": "lbprov", "namespace": "kube-system"},
                "spec": {
                    "holderIdentity": "another-replica",
                    "leaseDurationSeconds": 3600,
                    "acquireTime": now,
                    "renewTime": now,
                },
            },
        )
        run = Running(
            [
                *COMMON,
                "--kubeconfig",
                api.write_kubeconfig(tmp_path / "kc"),
                "--leader-elect",
                "--lease-namespace",
                "kube-system",
            ],
            _env(),
        )
        run.wait_for_line("caches synced")
        time.sleep(0.5)  # a campaign round or two: the standby is in the election loop
        took = run.stop_with(signal.SIGTERM)
        assert run.proc.returncode == 0, "\n".join(run.lines[-20:])
        assert took < STOP_SECONDS, f"stopped {took:.2f}s after SIGTERM as a standby"
        print(f"run: standby stopped {took:.2f}s after SIGTERM")


def test_run_stops_within_2s_of_sigint_during_start_up(tmp_path: Path) -> None:
    # Start-up reads the cluster identity (the kube-system Namespace) before the controller
    # exists; a server that never answers holds start-up there, and a signal must still end the
    # process at once.
    with SilentServer() as silent:
        run = Running([*COMMON, "--kubeconfig", write_kubeconfig(tmp_path / "kc", silent.url)], _env())
        deadline = time.monotonic() + 120  # start-up on a loaded machine: bounds a hang only
        while silent.connections == 0:
            assert run.proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        took = run.stop_with(signal.SIGINT)
    assert run.proc.returncode == 0, "\n".join(run.lines[-20:])
    assert took < STOP_SECONDS, f"stopped {took:.2f}s after SIGINT"


def test_run_gives_in_flight_reconciles_the_grace_period_then_stops(tmp_path: Path) -> None:
    grace = 3.0
    with KubeAPIServer() as api, SilentServer() as cloud:
        kube = KubeClient.for_url(api.url)
        kube.create_service(
            "default",
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "web", "namespace": "default"},
                "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}]},
            },
        )
        run = Running(
            [
                *COMMON,
                "--kubeconfig",
                api.write_kubeconfig(tmp_path / "kc"),
                "--shutdown-timeout",
                str(grace),
            ],
            # The cloud accepts connections and never answers: the reconcile stays in flight.
            _env(LBPROV_AWS_ENDPOINT_URL=cloud.url, LBPROV_AWS_READ_TIMEOUT="120"),
        )
        deadline = time.monotonic() + 120  # start-up on a loaded machine: bounds a hang only
        while cloud.connections == 0:
            assert run.proc.poll() is None, "\n".join(run.lines[-20:])
            assert time.monotonic() < deadline, "\n".join(run.lines[-20:])
            time.sleep(0.05)
        took = run.stop_with(signal.SIGTERM)
    assert run.proc.returncode == 0, "\n".join(run.lines[-20:])
    assert grace - 0.5 < took < grace + STOP_SECONDS, f"stopped {took:.2f}s after SIGTERM (grace {grace}s)"
    assert any("still running at shutdown" in line for line in run.lines), "\n".join(run.lines[-20:])
    print(f"run: stopped {took:.2f}s after SIGTERM with a reconcile in flight (grace {grace}s)")
