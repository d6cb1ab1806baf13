"""Output that users of terraform and kubectl expect: resource totals, ``-o yaml``, gc's ``-n``.

With the in-memory provider (the same behaviours run against the emulators in test_readme.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_testlib import FakeProvider, make_node, make_service, run_cli, validate_schema

from lbprov.intent import IntentSettings, build_intent

NODES = [make_node("n1", "fake://n1", "10.0.0.1")]
PLAN = ["plan", "--provider", "fake", "--cluster-name", "unit"]
GC = ["gc", "--provider", "fake", "--cluster-name", "unit"]


def write(path: Path, *objs: dict[str, Any]) -> str:
    path.write_text(yaml.safe_dump_all(list(objs)))
    return str(path)


def converge(svc: dict[str, Any]) -> None:
    provider = FakeProvider.from_settings({"cluster_name": "unit", "cluster_id": "unit-cluster-uid"})
    provider.apply(provider.plan(build_intent(svc, NODES, IntentSettings("unit"), provider)))


@pytest.fixture
def files(fake: Any, tmp_path: Path) -> list[str]:
    """web: new, two ports (3 creates); api: converged, then a port added (1 create); db: new (2)."""
    api = make_service("api", ports=((80, 30081),))
    converge(api)
    api["spec"]["ports"].append({"name": "p8080", "protocol": "TCP", "port": 8080, "nodePort": 30082})
    services = [make_service("web", ports=((80, 30080), (443, 30443))), api, make_service("db", ns="data")]
    return ["-f", write(tmp_path / "svc.yaml", *services), "--nodes", write(tmp_path / "nodes.yaml", *NODES)]


def test_plan_text_ends_with_the_resource_totals_as_terraform_does(files: list[str]) -> None:
    r = run_cli([*PLAN, *files])
    assert r.code == 2, r.err
    assert r.out.rstrip().splitlines()[-2:] == [
        "3 Services: 3 would change, 0 unchanged.",
        "Plan: 6 to create, 0 to update, 0 to replace, 0 to delete.",
    ]
    doc = run_cli([*PLAN, *files, "-o", "json"]).json()
    assert doc["summary"]["create"] == 6  # the text and the JSON agree


def test_plan_totals_say_no_changes_when_nothing_would_change(fake: Any, tmp_path: Path) -> None:
    svc = make_service("web")
    converge(svc)
    r = run_cli([*PLAN, "-f", write(tmp_path / "s.yaml", svc), "--nodes", write(tmp_path / "n.yaml", *NODES)])
    assert r.code == 0
    assert r.out.rstrip().splitlines()[-2:] == [
        "1 Service: 0 would change, 1 unchanged.",
        "Plan: no changes.",
    ]


def test_plan_yaml_is_the_json_document(files: list[str]) -> None:
    as_json = run_cli([*PLAN, *files, "-o", "json"])
    as_yaml = run_cli([*PLAN, *files, "-o", "yaml"])
    assert as_yaml.code == as_json.code == 2
    doc = yaml.safe_load(as_yaml.out)
    validate_schema(doc)
    assert doc == json.loads(as_json.out)


# -- gc -n ---------------------------------------------------------------------------------------------


class Cluster:
    """gc's view of the cluster: it must list every namespace, whatever -n says."""

    def __init__(self, services: list[dict[str, Any]]) -> None:
        self.services = services
        self.listed: list[str | None] = []

    def list_services(self, namespace: str | None) -> tuple[list[dict[str, Any]], str]:
        self.listed.append(namespace)
        return self.services, "1"

    def list_nodes(self) -> tuple[list[dict[str, Any]], str]:
        return NODES, "1"

    def get_namespace(self, name: str) -> dict[str, Any]:
        return {"metadata": {"name": name, "uid": "unit-cluster-uid"}}


@pytest.fixture
def two_namespaces(fake: Any, monkeypatch: pytest.MonkeyPatch) -> Cluster:
    """shop/web in use, shop/gone garbage, data/db in use, data/old garbage."""
    web, gone, db, old = (
        make_service("web", ns="shop"),
        make_service("gone", ns="shop"),
        make_service("db", ns="data"),
        make_service("old", ns="data"),
    )
    for svc in (web, gone, db, old):
        converge(svc)
    cluster = Cluster([web, db])
    monkeypatch.setattr("lbprov.cli.gc.cluster_client", lambda args: cluster)
    return cluster


def test_gc_namespace_reports_only_that_namespace_but_decides_from_all(two_namespaces: Cluster) -> None:
    r = run_cli([*GC, "-n", "shop"])
    assert r.code == 2, r.err
    assert two_namespaces.listed == [None]  # the decision read every namespace
    assert "Load balancers owned by cluster 'unit' (fake) for Services in namespace shop: 2" in r.out
    assert "shop/web: in-use" in r.out and "shop/gone: garbage" in r.out
    assert "data/" not in r.out
    assert "1 garbage, 1 in use, 0 kept (could not tell)." in r.out


def test_gc_namespace_apply_deletes_only_that_namespaces_garbage(two_namespaces: Cluster, fake: Any) -> None:
    r = run_cli([*GC, "-n", "data", "--apply", "--yes"])
    assert r.code == 0, r.err
    left = run_cli([*GC, "-o", "yaml"])
    doc = yaml.safe_load(left.out)
    validate_schema(doc)
    assert {(o["service"]["namespace"], o["service"]["name"]): o["status"] for o in doc["owned"]} == {
        ("shop", "web"): "in-use",
        ("shop", "gone"): "garbage",
        ("data", "db"): "in-use",
    }
    assert left.code == 2


def test_gc_yaml_is_the_json_document(two_namespaces: Cluster) -> None:
    as_json = run_cli([*GC, "-o", "json"])
    as_yaml = run_cli([*GC, "-o", "yaml"])
    assert yaml.safe_load(as_yaml.out) == json.loads(as_json.out)


def test_a_warning_about_a_node_is_shown_once_per_run_not_once_per_service(fake: Any, tmp_path: Path) -> None:
    nodes = [make_node("n1", "fake://n1"), *(make_node(f"odd{i}", f"aws:///zone/i-{i}") for i in range(3))]
    services = [make_service(f"s{i}") for i in range(4)]
    r = run_cli(
        [
            *PLAN,
            "-f",
            write(tmp_path / "svc.yaml", *services),
            "--nodes",
            write(tmp_path / "nodes.yaml", *nodes),
        ]
    )
    assert r.code == 2, r.err
    # Only this run's own warning lines: stderr is redirected process-wide, and a thread left by an
    # earlier test in the same worker can write to it meanwhile (seen once under pytest-xdist).
    warnings = [line for line in r.err.splitlines() if line.startswith("lbprov plan: warning: node ")]
    assert warnings == [
        f"lbprov plan: warning: node odd{i}: providerID 'aws:///zone/i-{i}' is not fake://<name>; skipped"
        for i in range(3)
    ]
