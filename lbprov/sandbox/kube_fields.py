"""Unknown fields and the ``fieldValidation`` query parameter, as kube-apiserver handles them.

A real server decodes a request into the kind's Go type, so a field the type does not have is never
stored. ``fieldValidation`` only says what the client hears about it
(https://kubernetes.io/docs/reference/using-api/api-concepts/#field-validation):

- ``Strict``: 400 BadRequest, ``strict decoding error: unknown field "spec.portz", ...``;
- ``Warn`` (the default when the parameter is absent): the request succeeds, each unknown field is
  dropped and named in a ``Warning: 299`` response header;
- ``Ignore``: dropped silently.

The kinds' fields come from the same upstream definitions the OpenAPI documents serve
(:func:`lbprov.sandbox.kube_openapi.definitions`), so the sandbox knows exactly the fields of the
release it reports.
"""

from __future__ import annotations

import functools
from typing import Any

from lbprov.sandbox.kube_errors import ApiError, bad_request
from lbprov.sandbox.kube_openapi import definition_name, definitions

MODES = ("Strict", "Warn", "Ignore")


def mode(query: dict[str, str]) -> str:
    """The request's validation mode; an unknown value is refused as the real server does."""
    value = query.get("fieldValidation") or "Warn"
    if value not in MODES:
        raise bad_request(f'fieldValidation must be one of "Ignore", "Warn", or "Strict", got "{value}"')
    return value


@functools.cache
def _root(group: str, version: str, kind: str) -> dict[str, Any]:
    return dict(definitions()[definition_name(group, version, kind)])


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    seen = 0
    while "$ref" in schema and seen < 32:
        schema = definitions()[str(schema["$ref"]).rsplit("/", 1)[-1]]
        seen += 1
    return schema


def _prune(value: Any, schema: dict[str, Any], path: str, unknown: list[str], patch: bool) -> Any:
    """``value`` without unknown fields (their paths go to ``unknown``). In a merge or strategic
    merge patch, ``$`` directives are kept and a null for an unknown field (a removal) is dropped
    without complaint, since the patched object will not have it."""
    schema = _resolve(schema)
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        if props is None:
            if isinstance(extra, dict):  # a map: every value has the item schema
                return {
                    k: _prune(v, extra, f"{path}.{k}" if path else k, unknown, patch)
                    for k, v in value.items()
                }
            return value  # free-form (FieldsV1, RawExtension): anything goes
        out: dict[str, Any] = {}
        for key, sub in value.items():
            where = f"{path}.{key}" if path else key
            if key in props:
                out[key] = _prune(sub, props[key], where, unknown, patch)
            elif patch and key.startswith("$"):
                out[key] = sub
            elif not (patch and sub is None):
                unknown.append(where)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_prune(item, schema["items"], f"{path}[{i}]", unknown, patch) for i, item in enumerate(value)]
    return value


def _find_unknown(value: Any, schema: dict[str, Any], path: str, unknown: list[str], patch: bool) -> None:
    """The paths :func:`_prune` would drop, found without copying ``value`` (the common case of a
    request with no unknown field costs one walk and no copy; a scalar never holds one)."""
    schema = _resolve(schema)
    if isinstance(value, dict):
        props = schema.get("properties")
        if props is None:
            extra = schema.get("additionalProperties")
            if isinstance(extra, dict):
                for key, sub in value.items():
                    if isinstance(sub, dict | list):
                        _find_unknown(sub, extra, f"{path}.{key}" if path else key, unknown, patch)
            return
        for key, sub in value.items():
            if key in props:
                if isinstance(sub, dict | list):
                    _find_unknown(sub, props[key], f"{path}.{key}" if path else key, unknown, patch)
            elif not (patch and (key.startswith("$") or sub is None)):
                unknown.append(f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                if isinstance(item, dict | list):
                    _find_unknown(item, items, f"{path}[{i}]", unknown, patch)


def unknown_fields(
    obj: Any, group: str, version: str, kind: str, *, patch: bool = False
) -> tuple[Any, list[str]]:
    """``obj`` without the fields the kind does not have, and those fields' paths."""
    unknown: list[str] = []
    pruned = _prune(obj, _root(group, version, kind), "", unknown, patch)
    return pruned, unknown


def check(
    obj: Any, group: str, version: str, kind: str, validation: str, *, patch: bool = False
) -> tuple[Any, list[str]]:
    """Apply ``validation`` to a request body (an object, or a merge / strategic merge patch):
    the body to go on with, unknown fields removed, and the warnings to send."""
    found: list[str] = []
    _find_unknown(obj, _root(group, version, kind), "", found, patch)
    if not found:
        return obj, []
    pruned, unknown = unknown_fields(obj, group, version, kind, patch=patch)
    if validation == "Strict":
        listed = ", ".join(f'unknown field "{p}"' for p in unknown)
        prefix = "" if patch else f'{kind} in version "{version}" cannot be handled as a {kind}: '
        raise ApiError(400, "BadRequest", f"{prefix}strict decoding error: {listed}")
    warnings = [f'unknown field "{p}"' for p in unknown] if validation == "Warn" else []
    return pruned, warnings


#: The public names :mod:`lbprov.sandbox.kube_managed` walks schemas with.
resolve = _resolve
root_schema = _root

__all__ = ["MODES", "check", "mode", "resolve", "root_schema", "unknown_fields"]
