"""OpenAPI documents (v2 protobuf, v3 JSON) and fieldValidation of the sandbox API server."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from lbprov.sandbox.kube_api import KubeAPIServer
from lbprov.sandbox.kube_openapi import V2_PROTOBUF, document_for, root_document, v2_protobuf
from lbprov.sandbox.kube_protobuf import _Reader


@pytest.fixture(scope="module")
def server() -> Iterator[KubeAPIServer]:
    with KubeAPIServer() as srv:
        yield srv


def _request(server: KubeAPIServer, method: str, path: str, body: Any = None) -> tuple[int, Any, list[str]]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(server.url + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read()), resp.headers.get_all("Warning") or []
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read()), []


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


def test_v3_documents_carry_the_upstream_schemas_of_the_served_kinds() -> None:
    url = root_document()["paths"]["api/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/api/v1?hash=")
    doc = document_for("/openapi/v3/api/v1")
    assert doc is not None
    schemas = doc["components"]["schemas"]
    service = schemas["io.k8s.api.core.v1.Service"]
    assert service["x-kubernetes-group-version-kind"] == [{"group": "", "kind": "Service", "version": "v1"}]
    port = schemas["io.k8s.api.core.v1.ServicePort"]
    assert port["properties"]["port"] == {**port["properties"]["port"], "type": "integer", "format": "int32"}
    assert schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] == {
        "type": "string",
        "format": "int-or-string",
    }
    spec_ports = schemas["io.k8s.api.core.v1.ServiceSpec"]["properties"]["ports"]
    assert spec_ports["x-kubernetes-patch-merge-key"] == "port"
    # Every reference resolves inside the document, as kubectl explain needs.
    for ref in _refs(schemas):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    lease_doc = document_for("/openapi/v3/apis/coordination.k8s.io/v1")
    assert lease_doc is not None and "io.k8s.api.coordination.v1.Lease" in lease_doc["components"]["schemas"]


def test_v2_is_served_as_gnostic_protobuf(server: KubeAPIServer) -> None:
    req = urllib.request.Request(server.url + "/openapi/v2")
    req.add_header("Accept", "application/com.github.proto-openapi.spec.v2@v1.0+protobuf")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.headers["Content-Type"] == V2_PROTOBUF
        body = resp.read()
    assert body == v2_protobuf()
    fields = {number: value for number, _, value in _Reader(body).fields()}
    assert fields[1] == b"2.0"  # Document.swagger
    definitions = _Reader(fields[9]).fields()  # Document.definitions -> repeated NamedSchema
    names = {dict((n, v) for n, _, v in _Reader(named).fields())[1].decode() for _, _, named in definitions}
    assert {
        "io.k8s.api.core.v1.Service",
        "io.k8s.api.core.v1.Node",
        "io.k8s.api.coordination.v1.Lease",
    } <= names


BAD = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "typo"},
    "spec": {"portz": 1, "ports": [{"port": 80, "protocl": "TCP"}]},
}


def test_field_validation_strict_refuses_unknown_fields(server: KubeAPIServer) -> None:
    code, body, _ = _request(
        server, "POST", "/api/v1/namespaces/default/services?fieldValidation=Strict", BAD
    )
    assert code == 400 and body["reason"] == "BadRequest"
    assert body["message"] == (
        'Service in version "v1" cannot be handled as a Service: strict decoding error: '
        'unknown field "spec.portz", unknown field "spec.ports[0].protocl"'
    )
    code, body, _ = _request(server, "POST", "/api/v1/namespaces/default/services?fieldValidation=Loose", BAD)
    assert code == 400 and "fieldValidation" in body["message"]


def test_field_validation_warn_drops_and_warns_and_ignore_drops(server: KubeAPIServer) -> None:
    code, body, warnings = _request(server, "POST", "/api/v1/namespaces/default/services", BAD)
    assert code == 201
    assert warnings == [
        '299 - "unknown field \\"spec.portz\\""',
        '299 - "unknown field \\"spec.ports[0].protocl\\""',
    ]
    assert "portz" not in body["spec"] and "protocl" not in body["spec"]["ports"][0]
    patch = {"spec": {"selectorz": {"a": "b"}}}
    req = urllib.request.Request(
        server.url + "/api/v1/namespaces/default/services/typo?fieldValidation=Ignore",
        data=json.dumps(patch).encode(),
        method="PATCH",
    )
    req.add_header("Content-Type", "application/merge-patch+json")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.headers.get_all("Warning") is None
        assert "selectorz" not in json.loads(resp.read())["spec"]
    req = urllib.request.Request(
        server.url + "/api/v1/namespaces/default/services/typo?fieldValidation=Strict",
        data=json.dumps(patch).encode(),
        method="PATCH",
    )
    req.add_header("Content-Type", "application/merge-patch+json")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 400
    assert json.loads(err.value.read())["message"] == 'strict decoding error: unknown field "spec.selectorz"'


@pytest.mark.parametrize(
    ("body", "patch"),
    [
        ({"metadata": {"name": "a", "labels": {"x": "y"}}, "spec": {"ports": [{"port": 80}]}}, False),
        (
            {
                "metadata": {"name": "a", "bogus": 1},
                "spec": {"portz": [], "ports": [{"port": 80, "nope": 2}]},
            },
            False,
        ),
        ({"spec": {"ports": [{"port": 80}, {"port": 81, "extra": {"deep": 1}}]}, "topLevel": True}, False),
        (
            {
                "metadata": {"annotations": {"k": "v"}},
                "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}},
            },
            True,
        ),
        (
            {
                "metadata": {"finalizers": ["a/b"], "gone": None},
                "$setElementOrder/ports": [],
                "spec": {"zz": 1},
            },
            True,
        ),
        ({"spec": {"selector": {"app": "x"}, "ports": [{"port": 80, "$patch": "delete"}]}}, True),
    ],
)
def test_the_quick_unknown_field_check_agrees_with_the_pruning_walk(
    body: dict[str, Any], patch: bool
) -> None:
    """check() first looks for unknown fields without copying the body; it must find exactly the
    paths that the pruning walk drops (and leave a clean body untouched)."""
    from lbprov.sandbox.kube_fields import check, unknown_fields

    pruned, unknown = unknown_fields(body, "", "v1", "Service", patch=patch)
    out, warnings = check(body, "", "v1", "Service", "Warn", patch=patch)
    assert warnings == [f'unknown field "{p}"' for p in unknown]
    assert out == pruned
    if not unknown:
        assert out is body
