"""``lbprov demo`` runs the whole loop and exits 0; its output shows every Service and the cleanup."""

from __future__ import annotations

import io
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

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
    code = main(["demo", "--provider", "aws", "--timeout", "60"])  # its own bound on the waits
    out, err = capsys.readouterr()
    assert code == 0, err
    for name in ("web", "dns", "internal-api", "sticky", "ingress-local"):
        assert f"demo/{name}" in out
    assert "elb.amazonaws.com" in out
    assert "[5/5]" in err
    assert "Deleting Service demo/dns" in out and "object gone" in out and "0 owned resources left" in out
    # Each NLB's listeners are its Service's own, and the headline says what its time counts.
    web = next(line for line in out.splitlines() if line.startswith("demo/web "))
    assert "2 listener" in web
    # Shared: only the cluster's NLB backend security group and its node rules (DESIGN.md).
    assert "Shared by the Services above: 1 security-group, 3 security-group-rule" in out
    assert "after the controller started" in out and "since lbprov demo started" in out


class Served:
    """``lbprov demo --serve`` in its own process, as a user runs it (a fresh process also means a
    fresh emulator: moto keeps its state per process)."""

    def __init__(self, provider: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lbprov", "demo", "--provider", provider, "--serve", "--timeout", "60"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                stderr = self.proc.stderr.read() if self.proc.stderr and self.proc.poll() is not None else ""
                raise AssertionError(f"no {text!r} from lbprov demo --serve: {self.output}{stderr}")
            time.sleep(0.05)
        return self.output

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        # bounds a hang only. The stop took 5.5-11 s at load 15-18 (once past 30 s at load ~20),
        # nearly all of it the interpreter's last garbage collections after every stop step was
        # done; with the heap frozen first (lbprov.cli.before_exit, tests/cli/test_exit.py) it
        # takes 0.2-1.1 s at load 8-15. A wall-clock bound here would be one a loaded machine passes.
        code = self.proc.wait(timeout=120)
        self._reader.join(timeout=10)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def _printed(output: str, subcommand: str) -> list[str]:
    lines = [line.strip() for line in output.splitlines() if f" {subcommand} --provider " in line]
    assert len(lines) == 1, output
    return shlex.split(lines[0])


def _run_together(commands: dict[str, list[str] | str]) -> dict[str, subprocess.CompletedProcess[str]]:
    """Run the printed command lines side by side (a string is a shell line with env assignments)."""
    procs = {
        name: subprocess.Popen(
            cmd, shell=isinstance(cmd, str), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for name, cmd in commands.items()
    }
    done = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=120)
        done[name] = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    return done


#: What each provider's printed cloud CLI line lists when the demo's load balancers exist.
CLOUD_CLI = {
    "aws": ("AWS_ACCESS_KEY_ID=", "elb.amazonaws.com"),
    "gcp": ("CLOUDSDK_CONFIG=", "backendServices/"),
    "azure": ("curl -s --cacert", "loadBalancingRules"),
}


@pytest.mark.parametrize("provider", sorted(available_providers()))
def test_serve_hands_over_lines_that_work_as_printed_and_stops_on_ctrl_c(provider: str) -> None:
    served = Served(provider)
    try:
        output = served.wait_for("Controller metrics:")
        lines = [line.strip() for line in output.splitlines()]
        plan_line = _printed(output, "plan")
        commands: dict[str, list[str] | str] = {"plan": plan_line, "gc": _printed(output, "gc")}
        commands["kubectl"] = shlex.split(
            next(
                line
                for line in lines
                if line.startswith("kubectl --kubeconfig") and line.endswith("services")
            )
        )
        if provider in CLOUD_CLI:
            commands["cloud"] = next(line for line in lines if line.startswith(CLOUD_CLI[provider][0]))
        ran = _run_together(commands)
        kubeconfig = Path(plan_line[plan_line.index("--kubeconfig") + 1])
        config = yaml.safe_load(kubeconfig.read_text())
        metrics_url = next(line for line in lines if line.startswith("Controller metrics: curl ")).split()[-1]
        with urllib.request.urlopen(metrics_url, timeout=10) as resp:
            metrics = resp.read().decode()
        code = served.interrupt()
    finally:
        served.kill()
    plan, gc, kubectl = ran["plan"], ran["gc"], ran["kubectl"]
    assert plan.returncode == 0, plan.stderr + plan.stdout  # 0: nothing would change
    assert "4 Services: 0 would change, 4 unchanged." in plan.stdout
    assert gc.returncode == 0, gc.stderr + gc.stdout
    assert f"owned by cluster 'sandbox' ({provider}): 4" in gc.stdout and "0 garbage" in gc.stdout
    # The kubeconfig's context namespace is the demo's: `get services` lists the demo's Services.
    assert config["contexts"][0]["context"]["namespace"] == "demo"
    assert kubectl.returncode == 0 and "web" in kubectl.stdout, kubectl.stderr
    if provider in CLOUD_CLI:
        assert ran["cloud"].returncode == 0, ran["cloud"].stderr
        assert CLOUD_CLI[provider][1] in ran["cloud"].stdout, ran["cloud"].stdout
    assert f'lbprov_reconciles_total{{provider="{provider}",result="success"}}' in metrics
    assert f"{provider} emulator:" in output and "endpoint" in output and "credentials" in output
    # Ctrl-C says what it stops and cleans up, exits 0 and removes the kubeconfig folder.
    assert code == 0
    assert "Stopping: the controller, the sandbox Kubernetes API" in served.output
    assert served.output.rstrip().endswith("Stopped.")
    assert not kubeconfig.parent.exists()


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
