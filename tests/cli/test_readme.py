"""Every ``lbprov`` command of the README runs against the sandbox, so the README cannot drift.

The commands are read from the README's code blocks and run as printed, through bash (pipes and
``source <(...)`` included), with the substitutions the README documents under "The command line":
account-specific values become the sandbox's, the emulators' endpoints and test credentials come
through ``LBPROV_<CLOUD>_<FIELD>``, ``lbprov run`` gets ``--metrics-address 127.0.0.1:0`` and is
stopped with SIGTERM once its workers run. The "Real output" blocks (``$ lbprov ...`` followed by
the output and ``$ echo $?``) run on the scenario that produced them (docs/examples/plan_examples.py)
and must print the same Services, changes and totals, and exit with the code shown.
"""

from __future__ import annotations

import importlib.util
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent
PROVIDERS = ("aws", "gcp", "azure")

#: Words of the README that only a real account has; each must be replaced before a command runs.
PLACEHOLDERS = ("prod", "eu-west-1", "europe-west1", "my-project", "my-network", "gke-prod-node", "k8s/")


@dataclass
class Command:
    line: str  # as printed (without a trailing comment)
    expected_output: str | None = None  # the "Real output" blocks
    expected_code: int | None = None

    @property
    def provider(self) -> str:
        m = re.search(r"--provider (\w+)", self.line)
        return m[1] if m else "aws"

    @property
    def runs_forever(self) -> bool:
        return self.line.startswith("lbprov run ")


def readme_commands() -> list[Command]:
    """The ``lbprov`` commands in the README's fenced code blocks, in order."""
    commands: list[Command] = []
    for block in re.findall(r"^```[a-z]*\n(.*?)^```", README.read_text(), re.S | re.M):
        lines = block.splitlines()
        if lines and lines[0].startswith("$ lbprov "):
            output = "\n".join(lines[1 : lines.index("$ echo $?")])
            code = int(lines[lines.index("$ echo $?") + 1])
            commands.append(Command(lines[0][2:], output, code))
            continue
        for line in lines:
            line = re.sub(r"\s{2,}#.*$", "", line).strip()
            if line.startswith("lbprov ") or "| lbprov " in line or "<(lbprov " in line:
                commands.append(Command(line))
    return commands


def test_the_readme_has_the_commands_this_test_expects() -> None:
    lines = [c.line for c in readme_commands()]
    for needed in (
        "lbprov --version",
        "lbprov version",
        "source <(lbprov completion bash)",
        "lbprov demo --provider gcp",
    ):
        assert needed in lines
    assert sum(c.expected_output is not None for c in readme_commands()) == 4
    assert any("--gcp-network" in line and "--gcp-node-tags" in line for line in lines)


# -- the sandbox ------------------------------------------------------------------------------------------


def _plan_examples() -> Any:
    spec = importlib.util.spec_from_file_location(
        "plan_examples", ROOT / "docs" / "examples" / "plan_examples.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class World:
    envs: dict[str, Any]
    tmp: Path
    settings_file: Path

    def substitute(self, cmd: Command) -> str:
        env = self.envs[cmd.provider]
        s = env.cloud.settings
        gcp = self.envs["gcp"].cloud.settings
        text = cmd.line
        for old, new in (
            ("~/.kube/prod", env.kubeconfig),
            ("--context prod", "--context lbprov-sandbox"),
            ("--cluster-name prod", f"--cluster-name {env.cluster}"),
            ("--aws-region eu-west-1", f"--aws-region {self.envs['aws'].cloud.settings['region']}"),
            ("--gcp-project my-project", f"--gcp-project {gcp['project']}"),
            ("--gcp-region europe-west1", f"--gcp-region {gcp['region']}"),
            ("--gcp-network my-network", f"--gcp-network {gcp['network']}"),
            ("--gcp-node-tags gke-prod-node", f"--gcp-node-tags {','.join(gcp['node_tags'])}"),
            ("-f k8s/", f"-f {self.tmp / 'k8s' / cmd.provider}"),
            ("nodes.yaml", str(self.tmp / f"nodes-{cmd.provider}.yaml")),
            ("lbprov.yaml", str(self.settings_file)),
        ):
            text = text.replace(old, new)
        text = re.sub(r"sandbox-(aws|gcp|azure)\.yaml", str(self.settings_file), text)
        if cmd.runs_forever:
            text += " --metrics-address 127.0.0.1:0"
        left = [p for p in PLACEHOLDERS if re.search(rf"(?<![\w/.-]){re.escape(p)}(?![\w-])", text)]
        assert not left, f"README command {cmd.line!r}: no substitution for {left}"
        assert s  # the provider's sandbox is running
        return text

    def environ(self, provider: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LBPROV_", "KUBECONFIG"))}
        env["PATH"] = f"{BIN}:{env.get('PATH', '')}"
        env["KUBECONFIG"] = self.envs[provider].kubeconfig
        for name, world in self.envs.items():
            for field, value in world.cloud.settings.items():
                if value is None:
                    continue
                var = (
                    "LBPROV_CLUSTER_NAME"
                    if field == "cluster_name"
                    else f"LBPROV_{name.upper()}_{field.upper()}"
                )
                env[var] = json.dumps(value) if isinstance(value, list | tuple) else str(value)
        return env


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    import sandbox_support

    examples = _plan_examples()
    tmp = tmp_path_factory.mktemp("readme")
    gens = {p: sandbox_support.start_env(p, tmp_path_factory.mktemp(f"readme-{p}")) for p in PROVIDERS}
    try:
        envs = {p: next(g) for p, g in gens.items()}
        settings: dict[str, Any] = {"cluster_name": envs["aws"].cloud.settings.get("cluster_name", "sandbox")}
        for p, env in envs.items():
            env.cluster = str(env.cloud.settings.get("cluster_name") or "sandbox")
            env.wipe()  # moto's state is per process: load balancers of earlier tests would show in gc
            (tmp / p).mkdir()
            examples.shop(p, env, tmp / p)
            settings[p] = {k: v for k, v in env.cloud.settings.items() if k != "cluster_name"}
            services = env.kube.list_services("shop")[0]
            (tmp / "k8s" / p).mkdir(parents=True)
            (tmp / "k8s" / p / "services.yaml").write_text(yaml.safe_dump_all(services))
            (tmp / f"nodes-{p}.yaml").write_text(yaml.safe_dump_all(env.kube.list_nodes()[0]))
        settings_file = tmp / "lbprov.yaml"
        settings_file.write_text(yaml.safe_dump(settings))
        yield World(envs, tmp, settings_file)
    finally:
        for g in gens.values():
            g.close()


# -- running ----------------------------------------------------------------------------------------------


def run(world: World, cmd: Command) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", "set -o pipefail; " + world.substitute(cmd)],
        env=world.environ(cmd.provider),
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def run_controller(world: World, cmd: Command) -> tuple[int, str]:
    """Start ``lbprov run``, wait (with a deadline) until its workers run, stop it with SIGTERM."""
    proc = subprocess.Popen(
        ["bash", "-c", "exec " + world.substitute(cmd)],
        env=world.environ(cmd.provider),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stderr is not None
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stderr], daemon=True).start()  # type: ignore[union-attr]
    seen: list[str] = []
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                seen.append(lines.get(timeout=0.5))
            except queue.Empty:
                continue
            if "workers started" in seen[-1]:
                break
        else:
            return proc.poll() or -1, "".join(seen)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return code, "".join(seen)


def normalised(output: str) -> list[str]:
    """What must not drift: Service headers, change symbols and kinds, per-Service and total plans,
    summaries and gc's verdicts; names, IDs, ports and UIDs differ from run to run."""
    out: list[str] = []
    for line in output.splitlines():
        if m := re.match(r"^(\S+/\S+) \((\w+), (\w+)\)$", line):
            out.append(line)
        elif m := re.match(r"^  (\S+) ([a-z-]+) '", line):
            out.append(f"  {m[1]} {m[2]}")
        elif re.match(r"^ *Plan: |^\d+ Services?: |^\d+ garbage, |^Load balancers owned by ", line):
            out.append(line)
        elif m := re.match(r"^  \S+ \((\w+)\) (\S+): ([\w -]+?): ", line):
            out.append(f"  ({m[1]}) {m[2]}: {m[3]}")
        elif "no changes: the load balancer matches the Service" in line:
            out.append(line)
    return sorted(out)


@pytest.mark.e2e
def test_every_readme_command_runs_against_the_sandbox(world: World) -> None:
    commands = readme_commands()
    failures: list[str] = []

    def check(cmd: Command, ok: bool, code: int, text: str) -> None:
        if not ok:
            failures.append(f"{cmd.line}\n  exit {code}\n  {text.strip()[-2000:]}")

    # 1. the real outputs, on the scenario that produced them, before anything changes it
    for cmd in (c for c in commands if c.expected_output is not None):
        if cmd.line.startswith("lbprov gc"):
            world.envs[cmd.provider].delete_service_bypassing_controller("api")
        done = run(world, cmd)
        same = normalised(done.stdout) == normalised(cmd.expected_output or "")
        check(cmd, done.returncode == cmd.expected_code and same, done.returncode, done.stdout + done.stderr)
        if not same:
            failures.append(f"{cmd.line}: output differs from the README\n{done.stdout}")

    # 2. the usage examples, as printed: the controller and the demo last (they change the clouds)
    usage = [c for c in commands if c.expected_output is None]
    usage.sort(key=lambda c: c.runs_forever or c.line.startswith("lbprov demo"))
    for cmd in usage:
        if cmd.runs_forever:
            code, log = run_controller(world, cmd)
            check(cmd, code == 0, code, log)
            continue
        done = run(world, cmd)
        pending_ok = (
            {0, 2} if re.search(r"lbprov (plan|gc)\b", cmd.line) and "--apply" not in cmd.line else {0}
        )
        check(
            cmd, done.returncode in pending_ok and "error:" not in done.stderr, done.returncode, done.stderr
        )

    assert not failures, "\n\n".join(failures)
