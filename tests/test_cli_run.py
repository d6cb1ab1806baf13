"""``lbprov run``: options, their documentation and defaults (the process itself: tests/e2e)."""

from __future__ import annotations

import argparse

import pytest

from lbprov.cli import build_parser
from lbprov.cli.errors import CLIError
from lbprov.cli.run import make_config


def run_parser() -> argparse.ArgumentParser:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["run"]


def test_every_run_option_is_documented_in_help() -> None:
    parser = run_parser()
    undocumented = [
        a.option_strings for a in parser._actions if a.option_strings and not (a.help and a.help.strip())
    ]
    assert undocumented == []
    text = parser.format_help()
    for flag in (
        "--provider",
        "--default-provider",
        "--no-default-provider",
        "--cluster-name",
        "--kubeconfig",
        "--context",
        "--workers",
        "--resync-period",
        "--leader-elect",
        "--no-leader-elect",
        "--lease-namespace",
        "--lease-name",
        "--metrics-address",
        "--backoff-base",
        "--backoff-max",
    ):
        assert flag in text, flag


def test_defaults_match_the_design(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("POD_NAMESPACE", raising=False)
    args = run_parser().parse_args([])
    cfg = make_config(args, ["aws"], "prod")
    assert (cfg.workers, cfg.resync_period, cfg.backoff_base, cfg.backoff_max) == (10, 600, 5, 300)
    assert (cfg.lease_duration, cfg.renew_deadline, cfg.retry_period) == (15, 10, 2)
    assert cfg.leader_elect is False, "off outside a cluster"
    assert cfg.default_provider == "aws"
    assert args.metrics_address == ":8080"


def test_leader_election_is_on_by_default_in_a_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("POD_NAMESPACE", "lbprov-system")
    cfg = make_config(run_parser().parse_args([]), ["aws"], "prod")
    assert cfg.leader_elect is True and cfg.lease_namespace == "lbprov-system"
    cfg = make_config(run_parser().parse_args(["--no-leader-elect"]), ["aws"], "prod")
    assert cfg.leader_elect is False


def test_default_provider_selection() -> None:
    p = run_parser()
    assert make_config(p.parse_args(["--no-default-provider"]), ["aws"], "c").default_provider is None
    with pytest.raises(CLIError, match="--default-provider aws is not among --provider gcp"):
        make_config(p.parse_args(["--default-provider", "aws"]), ["gcp"], "c")


def test_bad_settings_exit_1_with_a_one_line_message(capsys: pytest.CaptureFixture[str]) -> None:
    from lbprov.cli import main

    code = main(["run", "--provider", "aws", "--cluster-name=-not-a-name", "--metrics-address", "off"])
    err = capsys.readouterr().err
    assert code == 1
    assert "cluster name '-not-a-name' is invalid" in err and "Traceback" not in err
