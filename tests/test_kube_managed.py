"""Server-side apply and managedFields of the sandbox API server, over HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from lbprov.sandbox.kube_api import KubeAPIServer

BASE = "/api/v1/namespaces/default/services"


@pytest.fixture()
def server() -> Iterator[KubeAPIServer]:
    with KubeAPIServer() as srv:
        yield srv


def _call(server: KubeAPIServer, method: str, path: str, body: Any, ctype: str) -> tuple[int, dict[str, Any]]:
    data = (yaml.safe_dump(body) if "yaml" in ctype else json.dumps(body)).encode()
    req = urllib.request.Request(server.url + path, data=data, method=method)
    req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def apply(
    server: KubeAPIServer, name: str, body: Any, manager: str, force: bool = False
) -> tuple[int, dict[str, Any]]:
    query = f"?fieldManager={manager}" + ("&force=true" if force else "")
    return _call(server, "PATCH", f"{BASE}/{name}{query}", body, "application/apply-patch+yaml")


def svc(
    selector: dict[str, str] | None = None, ports: list[dict[str, Any]] | None = None, **meta: Any
) -> dict[str, Any]:
    spec: dict[str, Any] = {"ports": ports or [{"name": "http", "port": 80, "targetPort": 8080}]}
    if selector is not None:
        spec["selector"] = selector
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", **meta}, "spec": spec}


def managers(obj: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(m["manager"], m["operation"]): m["fieldsV1"] for m in obj["metadata"].get("managedFields", [])}


def test_apply_creates_and_records_exactly_the_applied_fields(server: KubeAPIServer) -> None:
    code, obj = apply(server, "s", svc({"app": "web"}, labels={"team": "a"}), "alice")
    assert code == 201
    assert managers(obj) == {
        ("alice", "Apply"): {
            "f:metadata": {"f:labels": {"f:team": {}}},
            "f:spec": {
                "f:ports": {
                    'k:{"port":80,"protocol":"TCP"}': {
                        ".": {},
                        "f:name": {},
                        "f:port": {},
                        "f:targetPort": {},
                    }
                },
                "f:selector": {},  # the selector is an atomic map upstream
            },
        }
    }
    assert obj["spec"]["clusterIP"]  # the server's own fields are there, owned by no one
    code, again = apply(server, "s", svc({"app": "web"}, labels={"team": "a"}), "alice")
    assert code == 200 and again["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]


def test_conflicts_name_the_other_manager_and_force_takes_the_field(server: KubeAPIServer) -> None:
    apply(server, "s", svc({"app": "web"}), "alice")
    code, obj = _call(
        server,
        "PATCH",
        f"{BASE}/s?fieldManager=bob",
        {"spec": {"selector": {"app": "db"}}},
        "application/merge-patch+json",
    )
    assert code == 200
    assert managers(obj)[("bob", "Update")] == {"f:spec": {"f:selector": {}}}
    assert "f:selector" not in managers(obj)[("alice", "Apply")]["f:spec"]  # bob took it from alice
    code, status = apply(server, "s", svc({"app": "api"}), "carol")
    assert code == 409 and status["reason"] == "Conflict"
    assert status["message"] == 'Apply failed with 1 conflict: conflict with "bob" using v1: .spec.selector'
    code, obj = apply(server, "s", svc({"app": "api"}), "carol", force=True)
    assert code == 200 and obj["spec"]["selector"] == {"app": "api"}
    assert ("bob", "Update") not in managers(obj)  # its only field was taken
    # The same value is no conflict: both own it.
    code, obj = apply(server, "s", svc({"app": "api"}), "dave")
    assert code == 200
    assert "f:selector" in managers(obj)[("dave", "Apply")]["f:spec"]
    assert "f:selector" in managers(obj)[("carol", "Apply")]["f:spec"]


def test_fields_an_applier_drops_are_removed_unless_someone_else_owns_them(server: KubeAPIServer) -> None:
    two = [
        {"name": "http", "port": 80, "targetPort": 8080},
        {"name": "https", "port": 443, "targetPort": 8443},
    ]
    apply(server, "s", svc({"app": "web"}, two, labels={"x": "1", "y": "2"}), "alice")
    apply(
        server,
        "s",
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "labels": {"y": "2"}}},
        "bob",
    )
    code, obj = apply(server, "s", svc({"app": "web"}, two[:1]), "alice")
    assert code == 200
    assert [p["port"] for p in obj["spec"]["ports"]] == [80]  # alice alone owned the 443 port
    assert obj["metadata"]["labels"] == {"y": "2"}  # x was alice's only; y is bob's too


def test_apply_needs_a_field_manager_and_validates_fields(server: KubeAPIServer) -> None:
    code, status = _call(server, "PATCH", f"{BASE}/s", svc(), "application/apply-patch+yaml")
    assert code == 400 and "fieldManager is required for apply requests" in status["message"]
    bad = svc()
    bad["spec"]["portz"] = 1
    code, status = _call(
        server,
        "PATCH",
        f"{BASE}/s?fieldManager=a&fieldValidation=Strict",
        bad,
        "application/apply-patch+yaml",
    )
    assert code == 400 and 'unknown field "spec.portz"' in status["message"]


def test_updates_record_their_manager_and_client_managed_fields_are_ignored(server: KubeAPIServer) -> None:
    body = svc({"app": "web"})
    body["metadata"]["managedFields"] = [
        {"manager": "forged", "operation": "Apply", "fieldsV1": {"f:spec": {}}}
    ]
    code, obj = _call(server, "POST", f"{BASE}?fieldManager=creator", body, "application/json")
    assert code == 201
    assert set(managers(obj)) == {("creator", "Update")}
    spec_fields = managers(obj)[("creator", "Update")]["f:spec"]
    assert "f:selector" in spec_fields and "f:ports" in spec_fields
    # Without fieldManager the manager is the User-Agent's product, as upstream.
    req = urllib.request.Request(
        server.url + f"{BASE}/s",
        data=json.dumps({"metadata": {"labels": {"l": "v"}}}).encode(),
        method="PATCH",
    )
    req.add_header("Content-Type", "application/merge-patch+json")
    req.add_header("User-Agent", "my-tool/1.0 (linux)")
    with urllib.request.urlopen(req, timeout=10) as resp:
        patched = json.loads(resp.read())
    assert managers(patched)[("my-tool", "Update")] == {"f:metadata": {"f:labels": {"f:l": {}}}}


def test_an_update_moves_only_the_fields_it_changed_and_keeps_other_entries_as_they_were(
    server: KubeAPIServer,
) -> None:
    body = svc({"app": "web"})
    body["spec"]["type"] = "LoadBalancer"
    code, created = _call(server, "POST", f"{BASE}?fieldManager=creator", body, "application/json")
    assert code == 201, created
    (creators,) = created["metadata"]["managedFields"]
    status = {"status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}}}
    code, after_status = _call(
        server, "PATCH", f"{BASE}/s/status?fieldManager=lb", status, "application/merge-patch+json"
    )
    assert code == 200, after_status
    entries = after_status["metadata"]["managedFields"]
    assert entries[0] == creators, "the spec entry is untouched by a status write"
    assert entries[1]["manager"] == "lb" and entries[1]["subresource"] == "status"
    assert entries[1]["fieldsV1"] == {"f:status": {"f:loadBalancer": {"f:ingress": {}}}}
    # A second manager changes one spec field: it takes that field from the creator, nothing else.
    patch = {"spec": {"selector": {"app": "api"}}}
    code, taken = _call(
        server, "PATCH", f"{BASE}/s?fieldManager=tuner", patch, "application/merge-patch+json"
    )
    assert code == 200, taken
    by = {(m["manager"], m.get("subresource", "")): m["fieldsV1"] for m in taken["metadata"]["managedFields"]}
    assert by[("tuner", "")] == {"f:spec": {"f:selector": {}}}  # an atomic map: owned whole
    assert "f:selector" not in by[("creator", "")]["f:spec"] and "f:ports" in by[("creator", "")]["f:spec"]
    assert by[("lb", "status")] == entries[1]["fieldsV1"]
