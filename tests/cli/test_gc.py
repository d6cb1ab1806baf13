"""``lbprov gc`` decisions with the in-memory provider: what is garbage, what is kept, confirmation.

The Kubernetes side is a list of Services given to gc through ``cluster_client`` (gc only lists);
the same scenarios run against the sandbox API server and the real providers in test_sandbox_*.py.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from cli_testlib import FakeProvider, make_node, make_service, run_cli, validate_schema

from lbprov import naming
from lbprov.intent import IntentSettings, build_intent

NODES = [make_node("n1", "fake://n1")]
BASE = ["gc", "--provider", "fake", "--cluster-name", "unit"]


class Cluster:
    def __init__(self, services: list[dict[str, Any]]) -> None:
        self.services = services

    def list_services(self, namespace: str | None) -> tuple[list[dict[str, Any]], str]:
        assert namespace is None, "gc must look at every namespace"
        return self.services, "1"

    def list_nodes(self) -> tuple[list[dict[str, Any]], str]:
        return NODES, "1"

    def get_namespace(self, name: str) -> dict[str, Any]:
        assert name == "kube-system", "the cluster identity is the kube-system Namespace UID"
        return {"metadata": {"name": name, "uid": "unit-cluster-uid"}}


def converge(svc: dict[str, Any]) -> None:
    provider = FakeProvider.from_settings({"cluster_name": "unit", "cluster_id": "unit-cluster-uid"})
    provider.apply(provider.plan(build_intent(svc, NODES, IntentSettings("unit"), provider)))


@pytest.fixture
def world(fake: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """in-use 'keep'; 'deleted' whose Service is gone; 'switched' whose annotation now wants classic;
    'typed' now ClusterIP; a foreign LB without the cluster tag; one of another cluster."""
    keep, deleted, switched, typed = (make_service(n) for n in ("keep", "deleted", "switched", "typed"))
    for svc in (keep, deleted, switched, typed):
        converge(svc)
    switched["metadata"]["annotations"]["fake.lbprov.io/kind"] = "classic"
    typed["spec"]["type"] = "ClusterIP"
    fake.WORLDS["default"]["foreign"] = {"kind": "nlb", "tags": {"team": "x"}, "ports": [80]}
    other = naming.ownership_tags("other-cluster", build_intent(deleted, NODES, IntentSettings("x")).ref)
    fake.WORLDS["default"]["other-cluster-lb"] = {"kind": "nlb", "tags": other, "ports": [80]}
    cluster = Cluster([keep, switched, typed])
    monkeypatch.setattr("lbprov.cli.gc.cluster_client", lambda args: cluster)
    return {"keep": keep, "deleted": deleted, "switched": switched, "typed": typed}


def names(world: dict[str, Any], svc: str, kind: str = "nlb") -> str:
    return FakeProvider.lb_resource(naming.lb_name(world[svc]["metadata"]["uid"]), kind)


def test_lists_garbage_with_reasons_and_delete_plans_exit_2(world: dict[str, Any], fake: Any) -> None:
    before = list(fake.WRITES["default"])
    r = run_cli(BASE)
    assert r.code == 2, r.err
    assert f"{names(world, 'deleted')} (nlb) default/deleted: garbage: Service default/deleted" in r.out
    assert "no longer exists" in r.out
    assert (
        f"{names(world, 'switched')} (nlb) default/switched: garbage: Service default/switched now wants a different"
        in r.out
    )
    assert "default/typed: garbage: Service default/typed is now of type ClusterIP" in r.out
    assert f"{names(world, 'keep')} (nlb) default/keep: in-use" in r.out
    assert "foreign" not in r.out and "other-cluster-lb" not in r.out
    assert "3 garbage, 1 in use, 0 kept (could not tell)." in r.out
    assert fake.WRITES["default"] == before  # listing and planning wrote nothing


def test_json_output_validates(world: dict[str, Any]) -> None:
    r = run_cli([*BASE, "-o", "json"])
    doc = r.json()
    validate_schema(doc)
    assert doc["command"] == "gc" and doc["exit_code"] == 2
    assert {o["service"]["name"]: o["status"] for o in doc["owned"]} == {
        "keep": "in-use",
        "deleted": "garbage",
        "switched": "garbage",
        "typed": "garbage",
    }
    assert doc["applied"] == []


def test_apply_yes_deletes_only_the_garbage(world: dict[str, Any], fake: Any) -> None:
    r = run_cli([*BASE, "--apply", "--yes"])
    assert r.code == 0, r.out + r.err
    # the switched Service's old NLB went; its new kind is the controller's job, not gc's
    assert set(fake.WORLDS["default"]) == {names(world, "keep"), "foreign", "other-cluster-lb"}
    again = run_cli(BASE)
    assert again.code == 0 and "0 garbage, 1 in use" in again.out


def test_apply_without_terminal_and_without_yes_refuses(
    world: dict[str, Any], fake: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = dict(fake.WORLDS["default"])
    r = run_cli([*BASE, "--apply"], stdin="yes\n", monkeypatch=monkeypatch)  # a pipe, not a terminal
    assert r.code == 1
    assert "refusing to delete without confirmation: stdin is not a terminal; pass --yes" in r.err
    assert fake.WORLDS["default"].keys() == before.keys()


class TtyIn(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_apply_prompts_and_only_yes_deletes(
    world: dict[str, Any], fake: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = set(fake.WORLDS["default"])
    monkeypatch.setattr("sys.stdin", TtyIn("y\n"))
    r = run_cli([*BASE, "--apply"])
    assert r.code == 1 and "Cancelled: nothing was deleted." in r.out
    assert "Only 'yes' will be accepted" in r.err
    assert set(fake.WORLDS["default"]) == before
    monkeypatch.setattr("sys.stdin", TtyIn("yes\n"))
    r = run_cli([*BASE, "--apply"])
    assert r.code == 0, r.err
    assert set(fake.WORLDS["default"]) == {names(world, "keep"), "foreign", "other-cluster-lb"}


def test_yes_without_apply_is_a_usage_error(world: dict[str, Any]) -> None:
    r = run_cli([*BASE, "--yes"])
    assert r.code == 1 and "--yes only makes sense with --apply" in r.err


def test_service_that_cannot_be_planned_keeps_its_lb(
    world: dict[str, Any], fake: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    world["keep"]["metadata"]["annotations"]["fake.lbprov.io/kind"] = "bogus"
    r = run_cli([*BASE, "--apply", "--yes"])
    assert "default/keep: unknown: kept: Service default/keep cannot be planned" in r.out
    assert names(world, "keep") in fake.WORLDS["default"]
