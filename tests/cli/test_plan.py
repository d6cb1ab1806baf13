"""``lbprov plan``: selection, exit codes, output, JSON schema, usage errors -- with the in-memory provider.

The read-only proof, real drift and real credentials are tested against the emulators in
``test_sandbox_*.py``; this module pins the CLI's own behaviour.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_testlib import FakeProvider, make_node, make_service, run_cli, validate_schema

from lbprov.cli.plan import FINALIZER
from lbprov.intent import IntentSettings, build_intent
from lbprov.manifests import placeholder_uid

NODES = [make_node("n1", "fake://n1", "10.0.0.1"), make_node("n2", "fake://n2", "10.0.0.2")]
BASE = ["plan", "--provider", "fake", "--cluster-name", "unit"]


def write(path: Path, *objs: dict[str, Any]) -> str:
    path.write_text(yaml.safe_dump_all(list(objs)))
    return str(path)


def converge(svc: dict[str, Any], nodes: list[dict[str, Any]] = NODES) -> None:
    provider = FakeProvider.from_settings({"cluster_name": "unit"})
    provider.apply(provider.plan(build_intent(svc, nodes, IntentSettings("unit"), provider)))


@pytest.fixture
def nodes_file(tmp_path: Path) -> str:
    return write(tmp_path / "nodes.yaml", *NODES)


def test_fresh_cluster_plan_lists_creates_and_exits_2(fake: Any, tmp_path: Path, nodes_file: str) -> None:
    svc = write(tmp_path / "svc.yaml", make_service("web", ports=((80, 30080), (443, 30443))))
    r = run_cli([*BASE, "-f", svc, "--nodes", nodes_file])
    assert r.code == 2, r.err
    assert "default/web (fake, ensure)" in r.out
    assert "+ load-balancer" in r.out and "+ listener" in r.out
    assert "Plan: 3 to create, 0 to update, 0 to replace, 0 to delete." in r.out
    assert "1 Service: 1 would change, 0 unchanged." in r.out
    assert "\033[" not in r.out  # not a terminal: no colour


def test_converged_service_says_no_changes_and_exits_0(fake: Any, tmp_path: Path, nodes_file: str) -> None:
    svc = make_service("web")
    converge(svc)
    r = run_cli([*BASE, "-f", write(tmp_path / "svc.yaml", svc), "--nodes", nodes_file])
    assert r.code == 0, r.out + r.err
    assert "no changes" in r.out
    assert fake.WRITES["default"] == ["lb.createLoadBalancer", "lb.createListener"]  # only the converge


def test_json_output_validates_against_the_documented_schema(
    fake: Any, tmp_path: Path, nodes_file: str
) -> None:
    converged = make_service("old")
    converge(converged)
    src = write(
        tmp_path / "svc.yaml",
        make_service("web"),
        converged,
        make_service("bad", protocol="SCTP"),
        make_service("gone", type_="ClusterIP", finalizers=[FINALIZER], uid=converged["metadata"]["uid"]),
    )
    r = run_cli([*BASE, "-f", src, "--nodes", nodes_file, "-o", "json"])
    doc = r.json()
    validate_schema(doc)
    assert r.code == 1 and doc["exit_code"] == 1  # 'bad' could not be planned
    assert doc["summary"] == {
        "services": 4,
        "changed": 2,
        "unchanged": 1,
        "failed": 1,
        "create": 2,
        "update": 0,
        "replace": 0,
        "delete": 2,
        "adopt": 0,
    }
    ops = {p["service"]["name"]: p["operation"] for p in doc["plans"]}
    assert ops == {"web": "ensure", "old": "ensure", "gone": "delete"}
    (error,) = doc["errors"]
    assert error["service"]["name"] == "bad" and error["field"] == "spec.ports[0].protocol"
    assert "accepted values: TCP, UDP" in error["message"]


def test_invalid_service_is_listed_and_the_others_still_planned(
    fake: Any, tmp_path: Path, nodes_file: str
) -> None:
    src = write(
        tmp_path / "svc.yaml",
        make_service("good"),
        make_service("bad", annotations={"fake.lbprov.io/kind": "alb"}),
    )
    r = run_cli([*BASE, "-f", src, "--nodes", nodes_file])
    assert r.code == 1
    assert (
        "default/bad (fake, ensure)\n  error: metadata.annotations[fake.lbprov.io/kind]: 'alb'; accepted values: nlb, classic"
        in r.out
    )
    assert "default/good (fake, ensure)\n  + load-balancer" in r.out
    assert "2 Services: 1 would change, 0 unchanged, 1 could not be planned." in r.out


def test_selects_load_balancer_services_of_this_provider_only(
    fake: Any, tmp_path: Path, nodes_file: str
) -> None:
    src = write(
        tmp_path / "svc.yaml",
        make_service("classless"),
        make_service("ours", lb_class="lbprov.io/fake"),
        make_service("theirs", lb_class="lbprov.io/aws"),
        make_service("foreign", lb_class="example.com/lb"),
        make_service("clusterip", type_="ClusterIP"),
    )
    r = run_cli([*BASE, "-f", src, "--nodes", nodes_file, "-o", "json"])
    assert sorted(p["service"]["name"] for p in r.json()["plans"]) == ["classless", "ours"]
    r = run_cli([*BASE, "--default-provider", "none", "-f", src, "--nodes", nodes_file, "-o", "json"])
    assert [p["service"]["name"] for p in r.json()["plans"]] == ["ours"]


def test_finalizer_without_wanting_an_lb_plans_the_delete(fake: Any, tmp_path: Path, nodes_file: str) -> None:
    svc = make_service("web")
    converge(svc)
    svc["spec"]["type"] = "ClusterIP"
    svc["metadata"]["finalizers"] = [FINALIZER]
    r = run_cli([*BASE, "-f", write(tmp_path / "svc.yaml", svc), "--nodes", nodes_file])
    assert r.code == 2
    assert "default/web (fake, delete)" in r.out
    assert "- load-balancer" in r.out and "- listener" in r.out


def test_file_service_without_uid_gets_a_deterministic_placeholder(
    fake: Any, tmp_path: Path, nodes_file: str
) -> None:
    src = write(tmp_path / "svc.yaml", make_service("web", ns="shop", with_uid=False))
    first = run_cli([*BASE, "-f", src, "--nodes", nodes_file, "-o", "json"]).json()
    second = run_cli([*BASE, "-f", src, "--nodes", nodes_file, "-o", "json"]).json()
    assert (
        first["plans"][0]["service"]["uid"]
        == placeholder_uid("shop", "web")
        == second["plans"][0]["service"]["uid"]
    )
    assert any("placeholder UID" in n for n in first["plans"][0]["notes"])
    assert {c["action"] for c in first["plans"][0]["changes"]} == {"create"}


def test_file_service_without_node_ports_gets_a_clear_message(
    fake: Any, tmp_path: Path, nodes_file: str
) -> None:
    src = write(tmp_path / "svc.yaml", make_service("web", ports=((80, None),)))
    r = run_cli([*BASE, "-f", src, "--nodes", nodes_file])
    assert r.code == 1
    assert "spec.ports[0].nodePort not set: a Service read from a file has no NodePorts" in r.out
    assert "plan against the cluster" in r.out


def test_nodes_may_come_from_the_same_manifests(fake: Any, tmp_path: Path) -> None:
    src = write(tmp_path / "all.yaml", make_service("web"), *NODES)
    r = run_cli([*BASE, "-f", src])
    assert r.code == 2, r.err


def test_stdin_manifest(fake: Any, nodes_file: str, monkeypatch: pytest.MonkeyPatch) -> None:
    text = yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [make_service("web")]})
    r = run_cli([*BASE, "-f", "-", "--nodes", nodes_file], stdin=text, monkeypatch=monkeypatch)
    assert r.code == 2, r.err
    assert "default/web (fake, ensure)" in r.out


def test_namespace_filter_applies_to_files(fake: Any, tmp_path: Path, nodes_file: str) -> None:
    src = write(tmp_path / "svc.yaml", make_service("a", ns="one"), make_service("b", ns="two"))
    r = run_cli([*BASE, "-f", src, "--nodes", nodes_file, "-n", "two", "-o", "json"])
    assert [p["service"]["name"] for p in r.json()["plans"]] == ["b"]


def test_no_color_and_terminal_colour(fake: Any, tmp_path: Path, nodes_file: str) -> None:
    import argparse
    import io

    from lbprov.cli.plan import use_colour

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert use_colour(argparse.Namespace(no_color=False), Tty())
    assert not use_colour(argparse.Namespace(no_color=True), Tty())
    assert not use_colour(argparse.Namespace(no_color=False), io.StringIO())


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["-o", "xml"], "invalid choice: 'xml'"),
        (["-n", "a", "-A"], "not allowed with argument"),
        (["--provider", "nope"], "invalid choice: 'nope'"),
    ],
)
def test_bad_flags_exit_1_not_2(fake: Any, argv: list[str], message: str) -> None:
    r = run_cli(["plan", *argv])
    assert r.code == 1
    assert message in r.err


def test_unreadable_manifest_is_one_line_error(fake: Any, tmp_path: Path) -> None:
    r = run_cli([*BASE, "-f", str(tmp_path / "missing.yaml")])
    assert r.code == 1
    assert r.err.strip() == f"lbprov plan: error: {tmp_path / 'missing.yaml'}: no such file or directory"
    binary = tmp_path / "blob.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    r = run_cli([*BASE, "-f", str(binary)])
    assert r.code == 1 and "not a text file" in r.err and "Traceback" not in r.err


def test_manifest_that_is_not_a_service(fake: Any, tmp_path: Path) -> None:
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}
    r = run_cli([*BASE, "-f", write(tmp_path / "d.yaml", deploy)])
    assert r.code == 1
    assert "no Service in the manifests (found Deployment/web)" in r.err
    (tmp_path / "x.yaml").write_text("- just\n- a list\n")
    r = run_cli([*BASE, "-f", str(tmp_path / "x.yaml")])
    assert r.code == 1 and "expected a Kubernetes object" in r.err and "Traceback" not in r.err


def test_debug_shows_the_stack_trace(fake: Any, tmp_path: Path) -> None:
    r = run_cli(["plan", "--debug", "--provider", "fake", "-f", str(tmp_path / "missing.yaml")])
    assert r.code == 1 and "Traceback" in r.err
    r = run_cli(["--debug", "plan", "--provider", "fake", "-f", str(tmp_path / "missing.yaml")])
    assert r.code == 1 and "Traceback" in r.err


def test_plan_never_writes_even_when_everything_changes(fake: Any, tmp_path: Path, nodes_file: str) -> None:
    old = make_service("old")
    converge(old)
    kind_change = make_service("kind", annotations={})
    converge(kind_change)
    kind_change["metadata"]["annotations"]["fake.lbprov.io/kind"] = "classic"
    old["spec"]["type"] = "NodePort"
    old["metadata"]["finalizers"] = [FINALIZER]
    before = list(fake.WRITES["default"])
    src = write(tmp_path / "svc.yaml", make_service("new"), old, kind_change)
    r = run_cli([*BASE, "-f", src, "--nodes", nodes_file, "-o", "json"])
    assert r.code == 2
    actions = {c["action"] for p in r.json()["plans"] for c in p["changes"]}
    assert actions == {"create", "delete"}
    assert fake.WRITES["default"] == before


def test_cluster_problems_are_one_line_errors(fake: Any, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
                "users": [{"name": "u", "user": {}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    cases = [
        (
            ["--kubeconfig", str(tmp_path / "none")],
            "--kubeconfig " + str(tmp_path / "none") + ": no such file",
        ),
        (["--kubeconfig", str(kubeconfig), "--context", "nope"], "Kubernetes: Invalid kube-config file"),
        (["--kubeconfig", str(kubeconfig)], "cannot reach the Kubernetes API"),
    ]
    for argv, message in cases:
        r = run_cli([*BASE, *argv])
        assert r.code == 1, r
        assert r.err.startswith(f"lbprov plan: error: {message}"), r.err
        assert len(r.err.strip().splitlines()) == 1


def test_files_without_nodes_and_no_cluster_say_to_use_nodes(fake: Any, tmp_path: Path) -> None:
    src = write(tmp_path / "svc.yaml", make_service("web"))
    r = run_cli([*BASE, "-f", src, "--kubeconfig", str(tmp_path / "none")])
    assert r.code == 1
    assert "no Nodes: the manifests hold none and the cluster could not be read" in r.err
    assert "give them with --nodes FILE" in r.err


def test_being_deleted_with_finalizer_plans_the_delete_without_finalizer_is_skipped(
    fake: Any, tmp_path: Path, nodes_file: str
) -> None:
    a, b = make_service("a"), make_service("b")
    converge(a)
    converge(b)
    for svc in (a, b):
        svc["metadata"]["deletionTimestamp"] = "2026-11-25T18:00:00Z"
    a["metadata"]["finalizers"] = [FINALIZER]
    r = run_cli([*BASE, "-f", write(tmp_path / "svc.yaml", a, b), "--nodes", nodes_file, "-o", "json"])
    assert [(p["service"]["name"], p["operation"]) for p in r.json()["plans"]] == [("a", "delete")]


def test_no_services_is_exit_0_with_a_message(fake: Any, tmp_path: Path, nodes_file: str) -> None:
    src = write(tmp_path / "svc.yaml", make_service("internal", type_="ClusterIP"))
    r = run_cli([*BASE, "-f", src, "--nodes", nodes_file])
    assert r.code == 0
    assert (
        r.out.strip() == "No Services of type LoadBalancer for provider fake in any namespace: nothing to do."
    )


def test_progress_on_a_terminal_stderr_keeps_stdout_clean(fake: Any, tmp_path: Path, nodes_file: str) -> None:
    import io

    from lbprov.cli import build_parser
    from lbprov.cli.plan import run

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    src = write(tmp_path / "svc.yaml", *(make_service(f"s{i}") for i in range(6)))
    for quiet, shown in ((False, True), (True, False)):
        args = build_parser().parse_args(
            [*BASE, "-f", src, "--nodes", nodes_file, "-o", "json", *(["-q"] if quiet else [])]
        )
        out, err = io.StringIO(), Tty()
        assert run(args, stdout=out, stderr=err) == 2
        assert ("planning 6/6 (100%)" in err.getvalue()) is shown
        assert len(json.loads(out.getvalue())["plans"]) == 6  # stdout is pure JSON
