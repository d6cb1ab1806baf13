"""The OpenAPI documents of the served kinds: ``/openapi/v2`` (protobuf) and ``/openapi/v3/<gv>``.

kubectl needs them: 1.27 and 1.28 load ``/openapi/v2`` for ``apply``/``create``/``replace``/``edit``
(client-side validation and the query-parameter check), every version reads ``/openapi/v3`` for
``explain`` and to learn that the server validates fields itself (the ``fieldValidation`` parameter
on each kind's PATCH operation).

The schemas are not written here: they are the Kubernetes definitions that the maintained
``kubernetes-validate`` package ships per Kubernetes release (generated from the upstream OpenAPI
spec), taken for the release the sandbox reports in ``/version``. That package stores them as JSON
Schema (``"type": ["string", "null"]``, ``$defs``); :func:`_openapi_schema` turns each back into the
OpenAPI form upstream serves (one ``type``, ``#/definitions/`` or ``#/components/schemas/`` refs,
``int-or-string``). The same definitions drive ``fieldValidation`` (:mod:`lbprov.sandbox.kube_fields`).

client-go reads ``/openapi/v2`` only as protobuf (``application/com.github.proto-openapi.spec.v2@v1.0+protobuf``,
the gnostic ``openapi.v2.Document`` message); :func:`v2_protobuf` encodes it with the field numbers
of gnostic's ``OpenAPIv2.proto``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import struct
from importlib import resources
from typing import Any

import yaml

from lbprov.sandbox.kube_store import RESOURCES

#: The Kubernetes release whose schemas are served (it matches ``/version``).
SCHEMA_RELEASE = "1.32.0"
#: What kube-apiserver answers (client-go asks for the "@v1.0" form, which Go cannot parse as a media type).
V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"

_DEFS_PREFIX = "#/$defs/"
V3_REFS = "#/components/schemas/"
V2_REFS = "#/definitions/"


@functools.cache
def definitions() -> dict[str, Any]:
    """Every definition of the release, by its OpenAPI name (``io.k8s.api.core.v1.Service``), as
    ``kubernetes-validate`` ships it (JSON Schema form)."""
    root = resources.files("kubernetes_validate") / "kubernetes-json-schema" / f"v{SCHEMA_RELEASE}-local"
    data = json.loads((root / "_definitions.json").read_text())
    return dict(data["$defs"])


def definition_name(group: str, version: str, kind: str) -> str:
    """The definition carrying ``x-kubernetes-group-version-kind`` = (group, version, kind)."""
    for name, schema in definitions().items():
        for gvk in schema.get("x-kubernetes-group-version-kind", ()):
            if (gvk.get("group", ""), gvk.get("version"), gvk.get("kind")) == (group, version, kind):
                return name
    raise KeyError(f"{group}/{version} {kind}")


def _openapi_schema(schema: Any, ref_prefix: str, top: bool = False) -> Any:
    """One JSON-Schema-form definition in OpenAPI form, refs pointing under ``ref_prefix``."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    one_of = schema.get("oneOf")
    if one_of is not None:
        types = {t for alt in one_of for t in _types(alt)}
        # IntOrString (string|integer) and Quantity (string|number) are strings on the wire spec.
        out["type"] = "string"
        if "integer" in types:
            out["format"] = "int-or-string"
    for key, value in schema.items():
        if key == "oneOf":
            continue
        if key == "type":
            kinds = _types(schema)
            if kinds:
                out["type"] = kinds[0]
        elif key == "$ref":
            out["$ref"] = ref_prefix + str(value).split(_DEFS_PREFIX, 1)[-1]
        elif key == "properties":
            props = {}
            for name, sub in value.items():
                sub = _openapi_schema(sub, ref_prefix)
                if ref_prefix == V3_REFS and "$ref" in sub and len(sub) > 1:
                    # v3 as upstream publishes it: a reference with its own description is wrapped
                    # in allOf, so the description (which explain prints) is the property's.
                    sub = {"allOf": [{"$ref": sub.pop("$ref")}], **sub}
                if top and name in ("apiVersion", "kind"):
                    sub.pop("enum", None)  # kubernetes-validate pins these; upstream does not
                props[name] = sub
            out["properties"] = props
        elif key in ("items", "additionalProperties"):
            out[key] = _openapi_schema(value, ref_prefix)
        else:
            out[key] = value
    return out


def _types(schema: dict[str, Any]) -> list[str]:
    kind = schema.get("type")
    kinds = [kind] if isinstance(kind, str) else list(kind or [])
    return [k for k in kinds if k != "null"]


def _refs(schema: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str):
            found.add(ref.split(_DEFS_PREFIX, 1)[-1])
        for key, value in schema.items():
            if not key.startswith("x-") and key not in ("enum", "default"):
                found |= _refs(value)
    elif isinstance(schema, list):
        for item in schema:
            found |= _refs(item)
    return found


def _closure(names: set[str]) -> set[str]:
    defs = definitions()
    todo, seen = list(names), set(names)
    while todo:
        for ref in _refs(defs[todo.pop()]):
            if ref not in seen and ref in defs:
                seen.add(ref)
                todo.append(ref)
    return seen


_META = "io.k8s.apimachinery.pkg.apis.meta.v1."


def _served_names(group: str | None = None, version: str | None = None) -> set[str]:
    names = {_META + "Status", _META + "DeleteOptions", _META + "APIResourceList", _META + "WatchEvent"}
    for r in RESOURCES.values():
        if group is not None and (r.group, r.version) != (group, version):
            continue
        names.add(definition_name(r.group, r.version, r.kind))
        names.add(definition_name(r.group, r.version, r.kind + "List"))
    return _closure(names)


@functools.cache
def openapi_definitions(
    ref_prefix: str, group: str | None = None, version: str | None = None
) -> dict[str, Any]:
    """The served kinds' schemas and everything they reference, in OpenAPI form."""
    defs = definitions()
    return {
        name: _openapi_schema(defs[name], ref_prefix, top=True)
        for name in sorted(_served_names(group, version))
    }


# -- paths ------------------------------------------------------------------------------------------


def _path_prefix(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def group_versions() -> list[tuple[str, str]]:
    return sorted({(r.group, r.version) for r in RESOURCES.values()})


_WRITE_PARAMS = ("dryRun", "fieldManager", "fieldValidation")


def _operations(group: str, version: str) -> dict[str, dict[str, Any]]:
    """Path -> method -> operation (v3 form, without request bodies) for one group-version."""
    paths: dict[str, dict[str, Any]] = {}
    for r in RESOURCES.values():
        if (r.group, r.version) != (group, version):
            continue
        gvk = {"group": r.group, "version": r.version, "kind": r.kind}
        base = "/" + _path_prefix(group, version)
        scope = f"{base}/namespaces/{{namespace}}/{r.plural}" if r.namespaced else f"{base}/{r.plural}"

        def op(
            verb: str, action: str, params: tuple[str, ...], kind: str = r.kind, gvk: dict[str, str] = gvk
        ) -> dict[str, Any]:
            return {
                "operationId": f"{verb}{kind}",
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk,
                "parameters": [
                    {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
                    for name in params
                ],
                "responses": {"200": {"description": "OK"}},
            }

        paths[f"{scope}/{{name}}"] = {
            "get": op("read", "get", ()),
            "put": op("replace", "put", _WRITE_PARAMS),
            "patch": op("patch", "patch", (*_WRITE_PARAMS, "force")),
            "delete": op("delete", "delete", ("dryRun",)),
        }
        paths[scope] = {"post": op("create", "post", _WRITE_PARAMS), "get": op("list", "list", ())}
    return paths


# -- OpenAPI v3 -------------------------------------------------------------------------------------


@functools.cache
def gv_document(group: str, version: str) -> dict[str, Any]:
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": f"v{SCHEMA_RELEASE}"},
        "paths": _operations(group, version),
        "components": {"schemas": openapi_definitions(V3_REFS, group, version)},
    }


@functools.cache
def _hash(group: str, version: str) -> str:
    text = json.dumps(gv_document(group, version), sort_keys=True)
    return hashlib.sha512(text.encode()).hexdigest()[:128].upper()


def root_document() -> dict[str, Any]:
    paths = {}
    for group, version in group_versions():
        prefix = _path_prefix(group, version)
        paths[prefix] = {"serverRelativeURL": f"/openapi/v3/{prefix}?hash={_hash(group, version)}"}
    return {"paths": paths}


def document_for(path: str) -> dict[str, Any] | None:
    """The document served at ``/openapi/v3/<prefix>``, or None."""
    for group, version in group_versions():
        if path == "/openapi/v3/" + _path_prefix(group, version):
            return gv_document(group, version)
    return None


# -- OpenAPI v2 as gnostic protobuf -----------------------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _msg(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _str(number: int, value: str) -> bytes:
    return _msg(number, value.encode()) if value else b""


def _bool(number: int, value: bool) -> bytes:
    return _varint(number << 3) + b"\x01" if value else b""


def _int(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _double(number: int, value: float) -> bytes:
    return _varint(number << 3 | 1) + struct.pack("<d", value)


def _any(value: Any) -> bytes:
    """gnostic ``Any`` {yaml = 2}."""
    return _str(2, yaml.safe_dump(value, default_flow_style=False, sort_keys=False))


def _named_any(name: str, value: Any) -> bytes:
    """gnostic ``NamedAny`` {name = 1, value = 2}."""
    return _str(1, name) + _msg(2, _any(value))


# gnostic openapi.v2.Schema field numbers (OpenAPIv2.proto).
_SCHEMA_STRINGS = {"$ref": 1, "format": 2, "title": 3, "description": 4, "pattern": 13, "discriminator": 26}
_SCHEMA_DOUBLES = {"multipleOf": 6, "maximum": 7, "minimum": 9}
_SCHEMA_BOOLS = {"exclusiveMaximum": 8, "exclusiveMinimum": 10, "uniqueItems": 16, "readOnly": 27}
_SCHEMA_INTS = {
    "maxLength": 11,
    "minLength": 12,
    "maxItems": 14,
    "minItems": 15,
    "maxProperties": 17,
    "minProperties": 18,
}


def _schema(schema: dict[str, Any]) -> bytes:
    out = bytearray()
    for key, value in schema.items():
        if key in _SCHEMA_STRINGS:
            out += _str(_SCHEMA_STRINGS[key], value)
        elif key in _SCHEMA_DOUBLES:
            out += _double(_SCHEMA_DOUBLES[key], float(value))
        elif key in _SCHEMA_BOOLS:
            out += _bool(_SCHEMA_BOOLS[key], bool(value))
        elif key in _SCHEMA_INTS:
            out += _int(_SCHEMA_INTS[key], int(value))
        elif key == "default":
            out += _msg(5, _any(value))
        elif key == "required":
            for name in value:
                out += _str(19, name)
        elif key == "enum":
            for item in value:
                out += _msg(20, _any(item))
        elif key == "additionalProperties":  # AdditionalPropertiesItem {schema = 1 | boolean = 2}
            item = _msg(1, _schema(value)) if isinstance(value, dict) else _bool(2, bool(value))
            out += _msg(21, item)
        elif key == "type":  # TypeItem {repeated value = 1}
            out += _msg(22, _str(1, value))
        elif key == "items":  # ItemsItem {repeated schema = 1}
            out += _msg(23, _msg(1, _schema(value)))
        elif key == "allOf":
            for sub in value:
                out += _msg(24, _schema(sub))
        elif key == "properties":  # Properties {repeated NamedSchema additional_properties = 1}
            props = b"".join(_msg(1, _str(1, name) + _msg(2, _schema(sub))) for name, sub in value.items())
            out += _msg(25, props)
        elif key.startswith("x-"):
            out += _msg(31, _named_any(key, value))
    return bytes(out)


def _v2_operation(op: dict[str, Any]) -> bytes:
    """gnostic ``Operation`` with query parameters as ``QueryParameterSubSchema`` (in = 2, name = 4,
    type = 6) inside NonBodyParameter (3) inside Parameter (2) inside ParametersItem (1)."""
    out = bytearray(_str(5, op["operationId"]))
    for param in op["parameters"]:
        query = _str(2, "query") + _str(4, param["name"]) + _str(6, "string")
        out += _msg(8, _msg(1, _msg(2, _msg(3, query))))
    out += _msg(9, _msg(1, _str(1, "200") + _msg(2, _msg(1, _str(1, "OK")))))
    for key in ("x-kubernetes-action", "x-kubernetes-group-version-kind"):
        out += _msg(13, _named_any(key, op[key]))
    return bytes(out)


_PATH_ITEM_FIELDS = {"get": 2, "put": 3, "post": 4, "delete": 5, "patch": 8}


@functools.cache
def v2_protobuf() -> bytes:
    """The ``/openapi/v2`` document as a serialized gnostic ``openapi.v2.Document``."""
    doc = bytearray(_str(1, "2.0"))
    doc += _msg(2, _str(1, "Kubernetes") + _str(2, f"v{SCHEMA_RELEASE}"))
    paths = bytearray()
    for group, version in group_versions():
        for path, ops in _operations(group, version).items():
            item = b"".join(_msg(_PATH_ITEM_FIELDS[m], _v2_operation(op)) for m, op in ops.items())
            paths += _msg(2, _str(1, path) + _msg(2, item))
    doc += _msg(8, bytes(paths))
    named = b"".join(
        _msg(1, _str(1, name) + _msg(2, _schema(schema)))
        for name, schema in openapi_definitions(V2_REFS).items()
    )
    doc += _msg(9, named)
    return bytes(doc)


__all__ = [
    "SCHEMA_RELEASE",
    "V2_PROTOBUF",
    "definition_name",
    "definitions",
    "document_for",
    "openapi_definitions",
    "root_document",
    "v2_protobuf",
]
