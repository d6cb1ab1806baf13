"""The emulator's request validation, derived from Google's own discovery document for compute v1.

google-api-python-client ships the document (``googleapiclient/discovery_cache/documents/
compute.v1.json``). From it the emulator knows, without a hand-written list that could drift:

* which methods exist: a request whose ``<resource>.<method>`` (with its HTTP verb) is not in the
  document is a 404, e.g. ``PUT`` on a forwarding rule (``forwardingRules`` has no ``update``);
* each field's JSON type and format: an ``int32``/``uint32`` field takes an integer (a JSON
  number without a fraction, or its decimal string as proto3 JSON allows), never a boolean or a
  fraction; ``int64``/``uint64`` travel as decimal strings; ``boolean`` takes only true/false;
  ``string`` only a string; arrays and objects recursively;
* output-only fields ("[Output Only]" or ``readOnly``): refused in a request body, never stored;
* ``pattern``: e.g. every ``name`` must match ``[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?``.
"""

from __future__ import annotations

import functools
import json
import re
from importlib import resources
from typing import Any

from lbprov_gcp.sandbox.errors import ApiError, invalid

Json = dict[str, Any]

#: Route collection (by scope kind) -> the discovery document's resource name.
RESOURCE = {
    ("regions", "forwardingRules"): "forwardingRules",
    ("regions", "backendServices"): "regionBackendServices",
    ("regions", "healthChecks"): "regionHealthChecks",
    ("regions", "addresses"): "addresses",
    ("regions", "subnetworks"): "subnetworks",
    ("regions", "operations"): "regionOperations",
    ("regions", "targetPools"): "targetPools",
    ("global", "httpHealthChecks"): "httpHealthChecks",
    ("zones", "instanceGroups"): "instanceGroups",
    ("zones", "instances"): "instances",
    ("zones", "instanceGroupManagers"): "instanceGroupManagers",
    ("zones", "operations"): "zoneOperations",
    ("global", "firewalls"): "firewalls",
    ("global", "networks"): "networks",
    ("global", "operations"): "globalOperations",
}
_INT32 = {"int32", "uint32"}
_INT64 = {"int64", "uint64"}


@functools.cache
def document() -> Json:
    path = resources.files("googleapiclient") / "discovery_cache/documents/compute.v1.json"
    doc: Json = json.loads(path.read_text())
    return doc


def method(scope_kind: str, collection: str, verb: str, http_method: str) -> Json:
    """The discovery method a request names; 404 (as GCE) for a method the API does not have."""
    if scope_kind == "aggregated":
        name = {"instanceGroups": "instanceGroups", "forwardingRules": "forwardingRules"}.get(
            collection, collection
        )
    else:
        name = RESOURCE.get((scope_kind, collection), collection)
    found = document()["resources"].get(name, {}).get("methods", {}).get(verb)
    if found is None or found["httpMethod"] != http_method:
        raise ApiError(404, "notFound", f"The API has no method {name}.{verb} ({http_method})")
    return dict(found)


def check_known_fields(body: Json, schema: str) -> None:
    """Unknown top-level names are refused ("Invalid JSON payload received. Unknown name"), for the
    kinds google-cloud-compute has no message type for (the legacy ``HttpHealthCheck``)."""
    props = document()["schemas"][schema].get("properties") or {}
    for key in body:
        if key not in props and not key.startswith("_"):
            raise ApiError(
                400, "invalid", f"Invalid JSON payload received. Unknown name \"{key}\" at 'resource'"
            )


def output_only(prop: Json) -> bool:
    return bool(prop.get("readOnly")) or "[Output Only]" in str(prop.get("description", ""))


def check_request(method_doc: Json, body: Any) -> None:
    """Validate a request body against the method's request schema (types, formats, patterns,
    output-only fields)."""
    ref = (method_doc.get("request") or {}).get("$ref")
    if ref is None or body is None:
        return
    _check_object(body, document()["schemas"][ref], "resource")


def _check_object(value: Any, schema: Json, path: str) -> None:
    if not isinstance(value, dict):
        raise invalid(path, f"{json.dumps(value)[:60]} is not an object")
    props: Json = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    for key, item in value.items():
        prop = props.get(key)
        field = f"{path}.{key}"
        if prop is None:
            if extra is not None:
                _check_value(item, extra, field)
            continue  # unknown names are refused by the descriptor check (schema.check_fields)
        if output_only(prop):
            raise invalid(field, "is output only: the server sets it; leave it out of the request")
        _check_value(item, prop, field)


def _check_value(value: Any, prop: Json, path: str) -> None:
    if "$ref" in prop:
        _check_object(value, document()["schemas"][prop["$ref"]], path)
        return
    kind, fmt = prop.get("type"), prop.get("format")
    if kind == "integer":
        if isinstance(value, bool) or not (
            isinstance(value, int)
            or (isinstance(value, float) and value.is_integer())
            or (isinstance(value, str) and re.fullmatch(r"-?\d+", value))
        ):
            raise invalid(path, f"{json.dumps(value)} is not an integer ({fmt or 'integer'})")
        number = int(value)
        if (fmt == "int32" and not -(2**31) <= number < 2**31) or (
            fmt == "uint32" and not 0 <= number < 2**32
        ):
            raise invalid(path, f"{number} is out of range for {fmt}")
    elif kind == "string" and fmt in _INT64:
        if isinstance(value, bool) or not re.fullmatch(r"-?\d+", str(value)):
            raise invalid(path, f"{json.dumps(value)} is not a decimal {fmt}")
    elif kind == "string":
        if not isinstance(value, str):
            raise invalid(path, f"{json.dumps(value)} is not a string")
        pattern = prop.get("pattern")
        if pattern and not re.fullmatch(pattern, value):
            raise invalid(path, f"'{value}'. Must be a match of regex '{pattern}'")
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise invalid(path, f"{json.dumps(value)} is not a boolean")
    elif kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise invalid(path, f"{json.dumps(value)} is not a number")
    elif kind == "array":
        if not isinstance(value, list):
            raise invalid(path, f"{json.dumps(value)[:60]} is not an array")
        for i, item in enumerate(value):
            _check_value(item, prop.get("items") or {}, f"{path}[{i}]")
    elif kind == "object":
        if not isinstance(value, dict):
            raise invalid(path, f"{json.dumps(value)[:60]} is not an object")
        inner = prop.get("additionalProperties")
        if inner is not None:
            for key, item in value.items():
                _check_value(item, inner, f"{path}.{key}")
