"""``lbprov demo`` runs the whole loop and exits 0; its output shows every Service and the cleanup."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time

import pytest

from lbprov.cli import main
from lbprov.provider import available_providers
from lbprov.sandbox.demo import examples_file, load_services, run_demo

pytestmark = pytest.mark.e2e


def test_examples_cover_the_required_services() -> None:
    services = {s["metadata"]["name"]: s for s in load_services(examples_file())}
    ports = {name: s["spec"]["ports"] for name, s in services.items()}
    assert len(ports["web"]) == 2 and all(p["protocol"] == "TCP" for p in ports["web"])
    assert ports["dns"][0]["protocol"] == "UDP"
    internal = services["internal-api"]["metadata"]["annotations"]
    assert internal["service.beta.kubernetes.io/aws-load-balancer-internal"] == "true"
    assert internal["networking.gke.io/load-balancer-type"] == "Internal"
    assert internal["service.beta.kubernetes.io/azure-load-balancer-internal"] == "true"
    assert services["sticky"]["spec"]["sessionAffinity"] == "ClientIP"
    assert services["ingress-local"]["spec"]["externalTrafficPolicy"] == "Local"


def test_demo_runs_to_completion_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    start = time.monotonic()
    code = main(["demo", "--provider", "aws", "--timeout", "60"])
    elapsed = time.monotonic() - start
    out, err = capsys.readouterr()
    assert code == 0, err
    for name in ("web", "dns", "internal-api", "sticky", "ingress-local"):
        assert f"demo/{name}" in out
    assert "elb.amazonaws.com" in out
    assert "[5/5]" in err
    assert "Deleting Service demo/dns" in out and "object gone" in out and "0 owned resources left" in out
    assert elapsed < 60


def test_demo_serve_prints_the_kubectl_line_and_stops_on_sigint() -> None:
    stop = threading.Event()
    out = io.StringIO()

    def stop_when_served() -> None:
        deadline = time.monotonic() + 60
        while "kubectl --server" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()

    watcher = threading.Thread(target=stop_when_served)
    watcher.start()
    result = run_demo("aws", serve=True, out=out, err=io.StringIO(), stop_event=stop, timeout=60)
    watcher.join()
    assert "kubectl --server http://127.0.0.1:" in out.getvalue()
    assert result.leaked_after_delete == 0
    assert 'lbprov_reconciles_total{provider="aws",result="success"}' in result.metrics_text


def test_demo_cli_help_lists_providers_from_the_registry() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "lbprov", "demo", "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0
    assert "--serve" in proc.stdout
    for name in available_providers():
        assert name in proc.stdout


@pytest.mark.parametrize("provider", sorted(set(available_providers()) - {"aws"}))
def test_demo_works_with_every_installed_provider_through_the_registry(provider: str) -> None:
    out = io.StringIO()
    result = run_demo(provider, out=out, err=io.StringIO(), timeout=60)
    assert len(result.ingress) == 5
    assert result.deleted == "demo/dns" and result.leaked_after_delete == 0
    assert result.writes > 0
