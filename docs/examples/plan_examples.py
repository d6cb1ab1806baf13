"""Produce the example outputs of the README section "See what lbprov would do" from the sandboxes.

    .venv/bin/python docs/examples/plan_examples.py > /tmp/examples.md

For each provider: a sandbox Kubernetes API and the provider's emulator; in namespace ``shop`` a
Service ``web`` not created yet, ``api`` converged (as the controller leaves it), and ``db``
converged then changed by hand in the cloud (the drift scenarios of tests/cli/test_drift.py).
Then the real ``lbprov plan`` runs against them, and, for AWS, ``lbprov gc`` after a Service was
deleted while no controller ran.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve()
TESTS = HERE.parents[2] / "tests" / "cli"
for name, file in (
    ("cli_testlib", "clilib.py"),
    ("sandbox_support", "sandbox_support.py"),
    ("cli_drift", "test_drift.py"),
):
    if name in sys.modules:  # already loaded (tests/cli/conftest.py, or a test importing this file)
        continue
    spec = importlib.util.spec_from_file_location(name, TESTS / file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)

from cli_drift import HAND_CHANGES  # noqa: E402
from cli_testlib import run_cli  # noqa: E402
from sandbox_support import start_env  # noqa: E402

from lbprov import naming  # noqa: E402


def show(argv: list[str], shown: str) -> None:
    r = run_cli(argv)
    print(f"$ {shown}")
    print(r.out.rstrip())
    if r.err.strip():
        print(r.err.rstrip())
    print(f"$ echo $?\n{r.code}\n")


def main() -> None:
    for provider in ("aws", "gcp", "azure"):
        tmp = Path(tempfile.mkdtemp())
        gen = start_env(provider, tmp)
        try:
            example(provider, next(gen), tmp)
        finally:
            gen.close()


def example(provider: str, env: Any, tmp: Path) -> None:
    shop(provider, env, tmp)
    print(f"### {provider}\n")
    shown = f"lbprov plan --provider {provider} --settings sandbox-{provider}.yaml -n shop"
    show(env.plan_argv("--no-color"), shown)
    if provider == "aws":
        env.delete_service_bypassing_controller("api")
        show(env.gc_argv(), "lbprov gc --provider aws --settings sandbox-aws.yaml")


def shop(provider: str, env: Any, tmp: Path) -> None:
    """The scenario of the README's examples (tests/cli/test_readme.py runs them on it too)."""
    env.namespace = "shop"
    env.cluster = str(env.cloud.settings.get("cluster_name") or "sandbox")
    env.kube.create_namespace("shop")
    settings = tmp / "settings.yaml"
    section = {k: v for k, v in env.cloud.settings.items() if k != "cluster_name"}
    settings.write_text(yaml.safe_dump({"cluster_name": env.cluster, provider: section}))
    env.settings_file = str(settings)
    env.create_service("web", [("TCP", 80), ("TCP", 443)])
    env.patch("web", {"spec": {"loadBalancerSourceRanges": ["10.0.0.0/8"]}})
    env.create_service("api", [("TCP", 8080)])
    env.converge("api")
    db = env.create_service("db", [("TCP", 80)])
    env.patch("db", {"spec": {"loadBalancerSourceRanges": ["10.0.0.0/8"]}})
    env.converge("db")
    # the drift: the same hand change as tests/cli/test_drift.py makes
    HAND_CHANGES[provider][-1](env, naming.lb_name(db["metadata"]["uid"]), "db")


if __name__ == "__main__":
    main()
