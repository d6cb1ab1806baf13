"""The command line as a whole: usage errors, versions, shell completion, fast help, run's options.

Usage errors are one rule for every subcommand: one line naming the problem, a hint to the
subcommand's own ``--help``, exit code 1 (2 means "changes pending" for plan and gc).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from cli_testlib import run_cli

from lbprov.cli import COMMANDS, build_parser
from lbprov.cli.errors import describe
from lbprov.cli.run import ExplainErrors, make_config
from lbprov.observability import TextFormatter

LBPROV = str(Path(sys.executable).with_name("lbprov"))
SDK_ROOTS = ("boto3", "botocore", "google", "azure")


def subparser(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    found: argparse.ArgumentParser = sub.choices[name]
    return found


# -- usage errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "plan", "gc", "demo", "providers", "version"])
def test_unknown_flag_is_one_line_naming_the_subcommand_with_exit_1(command: str) -> None:
    r = run_cli([command, "--bogus"])
    assert r.code == 1
    assert r.err.splitlines() == [
        f"lbprov {command}: error: unrecognized arguments: --bogus",
        f"See 'lbprov {command} --help'.",
    ]
    assert r.out == ""


@pytest.mark.parametrize(
    ("argv", "first_line"),
    [
        ([], "lbprov: error: the following arguments are required: COMMAND"),
        (["bogus"], "lbprov: error: argument COMMAND: invalid choice: 'bogus'"),
        (["run", "--workers", "many"], "lbprov run: error: argument --workers: invalid int value: 'many'"),
        (["plan", "-o", "xml"], "lbprov plan: error: argument -o/--output: invalid choice: 'xml'"),
        (["gc", "--provider"], "lbprov gc: error: argument --provider: expected one argument"),
        (["completion", "tcsh"], "lbprov completion: error: argument SHELL: invalid choice: 'tcsh'"),
    ],
)
def test_every_usage_error_exits_1_with_a_short_message(argv: list[str], first_line: str) -> None:
    r = run_cli(argv)
    assert r.code == 1
    lines = r.err.splitlines()
    assert len(lines) == 2 and lines[0].startswith(first_line), r.err
    assert lines[1].startswith("See 'lbprov")


def test_top_level_help_lists_each_command_with_the_help_of_its_module() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    registered = {a.dest: a.help for a in sub._choices_actions}
    assert registered == COMMANDS
    lazy = build_parser(["--help"])
    sub = next(a for a in lazy._actions if isinstance(a, argparse._SubParsersAction))
    assert {a.dest: a.help for a in sub._choices_actions} == COMMANDS
    assert "Exit codes" in lazy.format_help()


def test_help_and_settings_flags_import_no_cloud_sdk() -> None:
    code = (
        "import sys\n"
        "from lbprov.cli import main\n"
        "for argv in (['--help'], ['plan', '--help'], ['gc', '--help'], ['run', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {SDK_ROOTS!r})\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "--aws-region" in done.stdout and "--gcp-project" in done.stdout  # the settings flags are there


def test_provider_packages_still_export_their_classes() -> None:
    from lbprov_aws import AWSProvider, AWSSettings
    from lbprov_azure import AzureProvider
    from lbprov_gcp import GCPProvider

    assert AWSProvider.settings_model is AWSSettings
    assert {AWSProvider.name, AzureProvider.name, GCPProvider.name} == {"aws", "azure", "gcp"}
    import lbprov_aws

    with pytest.raises(AttributeError):
        lbprov_aws.NoSuchThing  # noqa: B018


# -- versions ----------------------------------------------------------------------------------------


def test_version_flag_prints_lbprovs_version() -> None:
    r = run_cli(["--version"])
    assert r.code == 0 and r.out.strip() == f"lbprov {version('lbprov')}"


def test_version_command_lists_the_installed_providers() -> None:
    r = run_cli(["version"])
    assert r.code == 0
    lines = r.out.splitlines()
    assert lines[0].startswith(f"lbprov {version('lbprov')} (Python ")
    for name in ("aws", "azure", "gcp"):
        assert f"  {name:8} lbprov-{name} {version('lbprov-' + name)}" in lines
    doc = json.loads(run_cli(["version", "-o", "json"]).out)
    assert doc["providers"]["gcp"]["version"] == version("lbprov-gcp")
    assert doc["lbprov"] == version("lbprov")


# -- shell completion ------------------------------------------------------------------------------------


def _bash_complete(line: str) -> list[str]:
    """What bash offers for ``line`` (a Tab at its end), through the script of `lbprov completion bash`."""
    words = line.split(" ")
    script = subprocess.run([LBPROV, "completion", "bash"], capture_output=True, text=True, check=True).stdout
    driver = (
        f"{script}\n"
        f"COMP_LINE={json.dumps(line)}; COMP_POINT=${{#COMP_LINE}}; "
        f"COMP_WORDS=({' '.join(json.dumps(w) for w in words)}); COMP_CWORD={len(words) - 1}\n"
        f"_python_argcomplete lbprov {json.dumps(words[-1])} {json.dumps(words[-2])}\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {**os.environ, "PATH": f"{Path(LBPROV).parent}:{os.environ.get('PATH', '')}"}
    done = subprocess.run(["bash", "-c", driver], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return [w.strip() for w in done.stdout.splitlines() if w.strip()]


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completion_completes_subcommands_flags_and_provider_names() -> None:
    assert _bash_complete("lbprov pl") == ["plan"]
    assert _bash_complete("lbprov plan --provider ") == ["aws", "azure", "gcp"]
    assert _bash_complete("lbprov plan --gcp-pro") == ["--gcp-project"]
    assert "--apply" in _bash_complete("lbprov gc --")


@pytest.mark.parametrize(("shell", "marker"), [("zsh", "compdef"), ("fish", "complete --command lbprov")])
def test_zsh_and_fish_scripts_register_lbprov(shell: str, marker: str) -> None:
    r = run_cli(["completion", shell])
    assert r.code == 0 and marker in r.out and "_ARGCOMPLETE" in r.out


def test_fish_protocol_answers_with_descriptions() -> None:
    """The fish script asks `lbprov` with _ARGCOMPLETE_SHELL=fish and gets one candidate a line."""
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"lbprov-complete-{os.getpid()}"
    env = {
        **os.environ,
        "_ARGCOMPLETE": "1",
        "_ARGCOMPLETE_SHELL": "fish",
        "_ARGCOMPLETE_DFS": "\t",
        "_ARGCOMPLETE_IFS": "\n",
        "_ARGCOMPLETE_STDOUT_FILENAME": str(out),
        "COMP_LINE": "lbprov ver",
        "COMP_POINT": "10",
    }
    try:
        subprocess.run([LBPROV], env=env, capture_output=True, timeout=60, check=True)
        assert [line.split("\t")[0].strip() for line in out.read_text().splitlines()] == ["version"]
    finally:
        out.unlink(missing_ok=True)


# -- run ---------------------------------------------------------------------------------------------


def test_run_takes_default_provider_none_like_plan() -> None:
    args = subparser("run").parse_args(["--provider", "aws", "--default-provider", "none"])
    assert make_config(args, ["aws"], "c").default_provider is None
    plan_args = subparser("plan").parse_args(["--default-provider", "none"])
    assert plan_args.default_provider == "none"


@pytest.mark.parametrize("address", [":99999", "8080", "host:http"])
def test_run_checks_the_metrics_address_up_front(address: str) -> None:
    r = run_cli(["run", "--metrics-address", address])
    assert r.code == 1
    assert r.err.startswith(
        f"lbprov run: error: argument --metrics-address: {address!r}: expected [HOST]:PORT"
    )


def test_run_names_the_flag_when_the_metrics_port_is_taken() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = run_cli(["run", "--metrics-address", f"127.0.0.1:{port}", "--log-format", "text"])
    assert r.code == 1
    assert f"lbprov run: error: --metrics-address 127.0.0.1:{port}: cannot listen: " in r.err
    assert "Errno" not in r.err


def test_run_settings_errors_exit_1_with_one_line() -> None:
    r = run_cli(["run", "--provider", "aws", "--aws-max-attempts", "0", "--metrics-address", "off"])
    assert r.code == 1
    assert r.err.startswith("lbprov run: error: ") and len(r.err.splitlines()) == 1
    assert "Traceback" not in r.err


def test_run_logs_cloud_errors_as_plan_explains_them() -> None:
    from botocore.exceptions import NoCredentialsError

    exc = NoCredentialsError()
    record = logging.LogRecord("lbprov.x", logging.WARNING, __file__, 1, "sync failed: %s", (exc,), None)
    record.error = str(exc)
    assert ExplainErrors().filter(record)
    expected = describe(exc)
    assert expected is not None and expected.message.startswith("AWS: no credentials found")
    assert record.getMessage() == f"sync failed: {expected.message}"
    assert record.error == expected.message


def test_text_logs_carry_the_time_and_the_service() -> None:
    record = logging.LogRecord("lbprov.x", logging.WARNING, __file__, 1, "sync failed: %s", ("boom",), None)
    record.created = 1764463200.5  # 2025-11-30T00:40:00.5Z
    record.service, record.provider, record.error = "shop/web", "aws", "boom"
    line = TextFormatter().format(record)
    assert line == "2025-11-30T00:40:00.500Z WARNING sync failed: boom service=shop/web provider=aws"


# -- hints -----------------------------------------------------------------------------------------------


def test_kubernetes_hints_offer_manifests_only_to_plan() -> None:
    from kubernetes.config.config_exception import ConfigException

    exc: Any = ConfigException("Invalid kube-config file. No configuration found.")
    plan = describe(exc, command="plan")
    assert plan is not None and "-f" in plan.message and "--nodes" in plan.message
    for command in ("gc", "run"):
        found = describe(exc, command=command)
        assert found is not None and "--kubeconfig/--context" in found.message
        assert "-f" not in found.message and "--nodes" not in found.message


def test_gc_without_a_cluster_hints_only_what_gc_takes(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    env_kubeconfig = tmp_path / "empty-kubeconfig"
    env_kubeconfig.write_text("")
    os.environ["KUBECONFIG"] = str(env_kubeconfig)
    try:
        r = run_cli(["gc", "--provider", "aws", "--kubeconfig", str(env_kubeconfig)])
    finally:
        del os.environ["KUBECONFIG"]
    assert r.code == 1 and "--nodes" not in r.err and " -f " not in r.err, r.err
    assert r.err.startswith("lbprov gc: error: "), r.err
    assert missing.exists() is False


def test_run_shows_a_warning_about_a_node_once_per_resync_period() -> None:
    from lbprov.cli.run import RepeatedWarnings

    now = [0.0]
    f = RepeatedWarnings(600.0, clock=lambda: now[0])

    def warn(node: str, **extra: Any) -> bool:
        record = logging.LogRecord(
            "lbprov_gcp.options", logging.WARNING, __file__, 1, "node %s: ... skipped", (node,), None
        )
        record.__dict__.update(extra)
        return f.filter(record)

    shown = [warn(n) for _ in range(4) for n in ("n1", "n2", "n3")]  # 4 Services x 3 nodes
    assert shown.count(True) == 3
    assert warn("n1", service="shop/web") and warn("n1", service="shop/web")  # per-Service: always
    now[0] = 601.0
    assert warn("n1") and not warn("n1")  # the next round says it again, once


def test_a_percent_sign_in_a_settings_description_is_help_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """argparse expands %-formats in help strings: a description such as "5-10% of the CPU" broke
    every ``--help`` (``%o format: an integer is required``) until descriptions were escaped."""
    import argparse

    from pydantic import BaseModel, Field

    from lbprov.cli import options

    class Model(BaseModel):
        knob: int = Field(1, description="costs 5-10% of the CPU (100%)")

    monkeypatch.setattr(options, "available_providers", lambda: ["aws"])
    monkeypatch.setattr(options, "settings_model", lambda name: Model)
    parser = argparse.ArgumentParser()
    options.add_provider_options(parser)
    assert "costs 5-10% of the CPU (100%)" in " ".join(parser.format_help().split())
