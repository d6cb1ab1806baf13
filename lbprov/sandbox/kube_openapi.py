"""A minimal OpenAPI v3 document per group-version, enough for kubectl.

kubectl (``apply``/``create`` with the default ``--validate=strict``) downloads ``/openapi/v3`` to
learn whether the server validates fields itself (the ``fieldValidation`` query parameter on the
PATCH operation of each kind). Without it kubectl falls back to client-side validation, which
needs the full OpenAPI v2 schema, and refuses to apply. Declaring server-side validation is
honest: the server validates what it stores (422s) -- it does not reject unknown fields.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from lbprov.sandbox.kube_store import RESOURCES


def _path_prefix(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def group_versions() -> list[tuple[str, str]]:
    return sorted({(r.group, r.version) for r in RESOURCES.values()})


def _params() -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
        for name in ("dryRun", "fieldManager", "fieldValidation", "force")
    ]


def gv_document(group: str, version: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for r in RESOURCES.values():
        if (r.group, r.version) != (group, version):
            continue
        gvk = {"group": r.group, "version": r.version, "kind": r.kind}
        base = "/" + _path_prefix(group, version)
        scope = f"{base}/namespaces/{{namespace}}/{r.plural}" if r.namespaced else f"{base}/{r.plural}"
        item_ops = {
            verb: {
                "operationId": f"{verb}{r.kind}",
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk,
                "parameters": _params() if verb in ("patch", "put") else [],
                "responses": {"200": {"description": "OK"}},
            }
            for verb, action in (("get", "get"), ("put", "put"), ("patch", "patch"), ("delete", "delete"))
        }
        paths[f"{scope}/{{name}}"] = item_ops
        paths[scope] = {
            "post": {
                "operationId": f"create{r.kind}",
                "x-kubernetes-action": "post",
                "x-kubernetes-group-version-kind": gvk,
                "parameters": _params(),
                "responses": {"201": {"description": "Created"}},
            },
            "get": {
                "operationId": f"list{r.kind}",
                "x-kubernetes-action": "list",
                "x-kubernetes-group-version-kind": gvk,
                "responses": {"200": {"description": "OK"}},
            },
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0-lbprov-sandbox"},
        "paths": paths,
        "components": {"schemas": {}},
    }


def _hash(doc: dict[str, Any]) -> str:
    return hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:64].upper()


def root_document() -> dict[str, Any]:
    paths = {}
    for group, version in group_versions():
        prefix = _path_prefix(group, version)
        paths[prefix] = {
            "serverRelativeURL": f"/openapi/v3/{prefix}?hash={_hash(gv_document(group, version))}"
        }
    return {"paths": paths}


def document_for(path: str) -> dict[str, Any] | None:
    """The document served at ``/openapi/v3/<prefix>``, or None."""
    for group, version in group_versions():
        if path == "/openapi/v3/" + _path_prefix(group, version):
            return gv_document(group, version)
    return None
