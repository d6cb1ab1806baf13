"""The three patch formats the API server accepts for built-in types.

* JSON merge patch (RFC 7386): ``null`` deletes, objects merge, everything else (lists too) replaces.
* Strategic merge patch: merge patch plus per-field list strategies from the Go types. Lists with a
  merge key (``spec.ports`` by ``port``, conditions and node addresses by ``type``, owner references
  by ``uid``) merge element-wise, and ``metadata.finalizers`` is a *set* (a patch with a finalizer
  list adds to it; removing needs ``$deleteFromPrimitiveList``) -- exactly as on a real server, so a
  client that removes finalizers with a strategic patch fails here as it would in a cluster.
  Directives ``$patch`` (replace/delete/merge), ``$setElementOrder/<list>``,
  ``$deleteFromPrimitiveList/<list>`` and ``$retainKeys`` are honoured.
* JSON patch (RFC 6902): add, remove, replace, move, copy and test over JSON pointers.
"""

from __future__ import annotations

from typing import Any

from lbprov.sandbox.kube_copy import clone
from lbprov.sandbox.kube_errors import ApiError

JSON = Any

#: path (field names from the object root) -> merge key (None: a merged list of primitives).
MERGE_LISTS: dict[tuple[str, ...], str | None] = {
    ("metadata", "finalizers"): None,
    ("metadata", "ownerReferences"): "uid",
    ("spec", "ports"): "port",
    ("spec", "podCIDRs"): None,
    ("status", "conditions"): "type",
    ("status", "addresses"): "type",
}


def merge_patch(target: JSON, patch: JSON) -> JSON:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return clone(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _strip(value: JSON) -> JSON:
    """Remove ``$`` directives from a value that is stored as is."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip(v) for v in value if not (isinstance(v, dict) and "$patch" in v and len(v) == 1)]
    return clone(value)


_DELETE = object()


def strategic_merge_patch(target: JSON, patch: JSON, path: tuple[str, ...] = ()) -> JSON:
    result = _smp(target, patch, path)
    return {} if result is _DELETE else result


def _smp(target: JSON, patch: JSON, path: tuple[str, ...]) -> Any:
    if not isinstance(patch, dict):
        return _strip(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return _strip(patch)
    if directive == "delete":
        return _DELETE
    if directive not in (None, "merge"):
        raise ApiError(400, "BadRequest", f"unknown patch type: {directive}")
    result: dict[str, Any] = clone(target) if isinstance(target, dict) else {}
    orders: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if key.startswith("$setElementOrder/"):
            orders[key.split("/", 1)[1]] = value if isinstance(value, list) else []
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            remove = value if isinstance(value, list) else []
            result[field] = [x for x in result.get(field) or [] if x not in remove]
            continue
        if key.startswith("$"):
            continue
        sub = (*path, key)
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and sub in MERGE_LISTS:
            result[key] = _merge_list(result.get(key) or [], value, MERGE_LISTS[sub], sub)
        elif isinstance(value, dict):
            merged = _smp(result.get(key), value, sub)
            if merged is _DELETE:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = _strip(value)
    for field, order in orders.items():
        if isinstance(result.get(field), list):
            result[field] = _reorder(result[field], order, MERGE_LISTS.get((*path, field)))
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(current: list[Any], patch: list[Any], key: str | None, path: tuple[str, ...]) -> list[Any]:
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return [_strip(p) for p in patch if not (isinstance(p, dict) and p.get("$patch") == "replace")]
    if key is None:
        out = list(current)
        for item in patch:
            if item not in out:
                out.append(clone(item))
        return out
    out = [clone(c) for c in current]
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise ApiError(400, "BadRequest", f"map: {item} does not contain declared merge key: {key}")
        idx = next((i for i, c in enumerate(out) if isinstance(c, dict) and c.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                out.pop(idx)
            continue
        if idx is None:
            out.append(_strip(item))
        else:
            out[idx] = _smp(out[idx], item, path)
    return out


def _reorder(items: list[Any], order: list[Any], key: str | None) -> list[Any]:
    def ident(x: Any) -> Any:
        return x.get(key) if key and isinstance(x, dict) else x

    wanted = [o.get(key) if key and isinstance(o, dict) else o for o in order]
    ranked = [x for w in wanted for x in items if ident(x) == w]
    rest = [x for x in items if ident(x) not in wanted]
    return ranked + rest


# ---- RFC 6902 -----------------------------------------------------------------------------------


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ApiError(422, "Invalid", f"invalid JSON pointer: {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: JSON, parts: list[str], op: str) -> tuple[Any, str]:
    cur = doc
    for p in parts[:-1]:
        if isinstance(cur, dict) and p in cur:
            cur = cur[p]
        elif isinstance(cur, list) and p.isdigit() and int(p) < len(cur):
            cur = cur[int(p)]
        else:
            raise ApiError(
                422,
                "Invalid",
                f"the server rejected our request due to an error in our request: {op} operation does not apply: doc is missing path: /{'/'.join(parts)}",
            )
    return cur, parts[-1]


def _get(doc: JSON, path: str, op: str) -> JSON:
    parts = _pointer(path)
    if not parts:
        return doc
    parent, last = _parent(doc, parts, op)
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent[int(last)]
    raise ApiError(422, "Invalid", f"{op} operation does not apply: doc is missing path: {path}")


def _add(doc: JSON, path: str, value: JSON) -> JSON:
    parts = _pointer(path)
    if not parts:
        return value
    parent, last = _parent(doc, parts, "add")
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), value)
        else:
            raise ApiError(422, "Invalid", f"add operation does not apply: index out of range: {path}")
    else:
        raise ApiError(422, "Invalid", f"add operation does not apply: doc is missing path: {path}")
    return doc


def _remove(doc: JSON, path: str, op: str = "remove") -> JSON:
    parts = _pointer(path)
    if not parts:
        raise ApiError(422, "Invalid", "remove operation does not apply to the root")
    parent, last = _parent(doc, parts, op)
    if isinstance(parent, dict) and last in parent:
        del parent[last]
    elif isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        parent.pop(int(last))
    else:
        raise ApiError(422, "Invalid", f"{op} operation does not apply: doc is missing path: {path}")
    return doc


def json_patch(target: JSON, ops: JSON) -> JSON:
    if not isinstance(ops, list):
        raise ApiError(400, "BadRequest", "json patch must be a list of operations")
    doc = clone(target)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise ApiError(400, "BadRequest", f"invalid json patch operation: {op}")
        kind, path = op["op"], op["path"]
        if kind == "add":
            doc = _add(doc, path, clone(op.get("value")))
        elif kind == "remove":
            doc = _remove(doc, path)
        elif kind == "replace":
            _get(doc, path, "replace")
            parts = _pointer(path)
            if not parts:
                doc = clone(op.get("value"))
            else:
                parent, last = _parent(doc, parts, "replace")
                parent[int(last) if isinstance(parent, list) else last] = clone(op.get("value"))
        elif kind in ("move", "copy"):
            value = clone(_get(doc, op.get("from", ""), kind))
            if kind == "move":
                doc = _remove(doc, op["from"], "move")
            doc = _add(doc, path, value)
        elif kind == "test":
            if _get(doc, path, "test") != op.get("value"):
                raise ApiError(
                    422,
                    "Invalid",
                    f"the server rejected our request due to an error in our request: testing value {path} failed",
                )
        else:
            raise ApiError(400, "BadRequest", f"unexpected json patch operation: {kind!r}")
    return doc
