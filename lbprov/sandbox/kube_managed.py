"""Field managers (``metadata.managedFields``) and server-side apply, as kube-apiserver does them.

Every write records which *field manager* (the ``fieldManager`` query parameter, else the client's
User-Agent product, as upstream) set which fields. An ``Update`` (create, replace, patch) gives
its manager the fields whose values it changed and takes them from everyone else. An ``Apply``
(``PATCH`` with ``application/apply-patch+yaml``) declares the complete set of fields its manager
wants: values are merged into the live object (lists by their ``x-kubernetes-list-map-keys``,
sets as sets, everything else replaced), fields the manager applied before and dropped now are
removed unless another manager also owns them, and setting a field that another manager owns to a
different value is a conflict -- 409 ``Apply failed with N conflict(s)`` -- unless ``force=true``,
which takes it over. Reference: https://kubernetes.io/docs/reference/using-api/server-side-apply/.

Field sets use the upstream ``FieldsV1`` form (``f:<field>``, ``k:<list-map key JSON>``,
``v:<set value JSON>``, ``.`` for a list item itself). The structure comes from the same upstream
schemas the OpenAPI documents serve. Simplifications, on purpose: a missing ``protocol`` in a
list-map key is taken as ``TCP`` (the core/v1 default) instead of running full defaulting on the
applied configuration, and a client's own ``managedFields`` in a request are ignored (the server
computes them).
"""

from __future__ import annotations

import contextvars
import copy
import datetime
import json
from dataclasses import dataclass, field
from typing import Any

from lbprov.sandbox.kube_errors import ApiError
from lbprov.sandbox.kube_fields import resolve, root_schema

Path = tuple[tuple[str, str], ...]
ITEM = object()  # the value recorded for a list item's own path (its "." entry)

#: metadata fields that managers own (the rest is the server's).
_META_OWNED = ("labels", "annotations", "finalizers", "ownerReferences")


@dataclass
class WriteContext:
    """Who writes and how: set by the HTTP layer for one request, read by the store's writes."""

    manager: str
    operation: str = "Update"  # or "Apply"
    force: bool = False
    applied: dict[Path, Any] | None = None


CURRENT: contextvars.ContextVar[WriteContext | None] = contextvars.ContextVar("lbprov_write", default=None)


def manager_from(query: dict[str, str], user_agent: str | None) -> str:
    """``fieldManager``, else the User-Agent's product (upstream's default), else ``unknown``."""
    manager = query.get("fieldManager")
    if manager:
        if len(manager) > 128:
            raise ApiError(400, "BadRequest", "fieldManager: Too long: may not be more than 128 bytes")
        return manager
    product = (user_agent or "").split("/", 1)[0].strip()
    return product[:128] or "unknown"


def _key_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _item_key(item: dict[str, Any], keys: list[str]) -> str:
    key = {k: item.get(k) for k in keys if item.get(k) is not None}
    if "protocol" in keys and "protocol" not in key:
        key["protocol"] = "TCP"  # the core/v1 default for every protocol field
    return _key_json(key)


def leaves(value: Any, schema: dict[str, Any], prefix: Path = ()) -> dict[Path, Any]:
    """Every owned path of ``value`` with its value (``ITEM`` for list items themselves)."""
    out: dict[Path, Any] = {}
    _walk(value, schema, prefix, out)
    return out


def _walk(value: Any, schema: dict[str, Any], prefix: Path, out: dict[Path, Any]) -> None:
    schema = resolve(schema)
    props = schema.get("properties")
    extra = schema.get("additionalProperties")
    atomic_map = schema.get("x-kubernetes-map-type") == "atomic"
    if isinstance(value, dict) and not atomic_map and (props is not None or isinstance(extra, dict)):
        if not value and prefix:
            out[prefix] = {}
        for k, v in value.items():
            sub = props.get(k) if props is not None else extra
            if sub is None:
                continue  # unknown fields were handled by fieldValidation
            _walk(v, sub, (*prefix, ("f", k)), out)
        return
    list_type = schema.get("x-kubernetes-list-type")
    items = schema.get("items")
    if isinstance(value, list) and isinstance(items, dict) and list_type == "map":
        keys = list(schema.get("x-kubernetes-list-map-keys") or [])
        for item in value:
            if not isinstance(item, dict):
                continue
            path = (*prefix, ("k", _item_key(item, keys)))
            out[path] = ITEM
            _walk(item, items, path, out)
        return
    if isinstance(value, list) and list_type == "set":
        for item in value:
            out[(*prefix, ("v", _key_json(item)))] = item
        return
    out[prefix] = value


def object_leaves(
    group: str, version: str, kind: str, obj: dict[str, Any], subresource: str
) -> dict[Path, Any]:
    """The managed paths of an object: its status for status writes, else everything but status
    and the server's metadata."""
    schema = root_schema(group, version, kind)
    props = resolve(schema).get("properties") or {}
    out: dict[Path, Any] = {}
    for top, value in obj.items():
        if top in ("apiVersion", "kind") or top not in props:
            continue
        if (top == "status") != (subresource == "status"):
            continue
        if top == "metadata":
            meta_props = resolve(props["metadata"]).get("properties") or {}
            for name in _META_OWNED:
                if isinstance(value, dict) and name in value:
                    _walk(value[name], meta_props[name], (("f", "metadata"), ("f", name)), out)
            continue
        _walk(value, props[top], (("f", top),), out)
    return out


# -- FieldsV1 ---------------------------------------------------------------------------------------


def encode(paths: set[Path] | dict[Path, Any]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    items = paths.items() if isinstance(paths, dict) else ((p, None) for p in paths)
    for path, value in items:
        node = root
        for kind, name in path:
            node = node.setdefault(f"{kind}:{name}", {})
        if value is ITEM:
            node["."] = {}
    return root


def decode(fields: Any, prefix: Path = ()) -> set[Path]:
    """The paths of a ``FieldsV1`` tree (list items that carry ``.`` included)."""
    return _decode(fields, prefix)[0]


def _decode(fields: Any, prefix: Path = ()) -> tuple[set[Path], set[Path]]:
    """(paths, the paths among them that are list items, marked ``.``)."""
    paths: set[Path] = set()
    items: set[Path] = set()
    if not isinstance(fields, dict):
        return paths, items
    if prefix and (not fields or "." in fields):
        paths.add(prefix)
        if "." in fields:
            items.add(prefix)
    for key, sub in fields.items():
        if key == "." or ":" not in key:
            continue
        kind, name = key.split(":", 1)
        sub_paths, sub_items = _decode(sub, (*prefix, (kind, name)))
        paths |= sub_paths
        items |= sub_items
    return paths, items


# -- the managedFields list -------------------------------------------------------------------------


@dataclass
class Entry:
    manager: str
    operation: str
    api_version: str
    subresource: str
    time: str
    paths: set[Path] = field(default_factory=set)
    #: The paths that are list items (rendered with ``.``).
    items: set[Path] = field(default_factory=set)

    def render(self, new_items: set[Path]) -> dict[str, Any]:
        items = self.items | new_items
        fields = encode({p: (ITEM if p in items else None) for p in self.paths})
        out: dict[str, Any] = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": fields,
        }
        if self.subresource:
            out["subresource"] = self.subresource
        return out


def _entries(meta: dict[str, Any]) -> list[Entry]:
    out = []
    for raw in meta.get("managedFields") or []:
        if not isinstance(raw, dict):
            continue
        paths, items = _decode(raw.get("fieldsV1") or {})
        out.append(
            Entry(
                str(raw.get("manager", "")),
                str(raw.get("operation", "Update")),
                str(raw.get("apiVersion", "")),
                str(raw.get("subresource", "")),
                str(raw.get("time", "")),
                paths,
                items,
            )
        )
    return out


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _path_text(path: Path) -> str:
    """A path as upstream prints it in conflicts: ``.spec.ports[port=80,protocol="TCP"].targetPort``."""
    text = ""
    for kind, name in path:
        if kind == "f":
            text += f".{name}"
        elif kind == "k":
            key = json.loads(name)
            text += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in key.items()) + "]"
        else:
            text += f"[={name}]"
    return text


def track(
    group: str,
    version: str,
    kind: str,
    old: dict[str, Any] | None,
    new: dict[str, Any],
    ctx: WriteContext,
    subresource: str,
) -> list[dict[str, Any]]:
    """The new object's ``managedFields`` after ``ctx``'s write turned ``old`` into ``new``."""
    api_version = f"{group}/{version}" if group else version
    old_meta = (old or {}).get("metadata") or {}
    before = object_leaves(group, version, kind, old, subresource) if old else {}
    after = object_leaves(group, version, kind, new, subresource)
    changed = {p for p, v in after.items() if p not in before or before[p] != v}
    removed = set(before) - set(after)
    now = _now()
    items = {p for p, v in after.items() if v is ITEM}
    if ctx.operation != "Apply":
        return _track_update(old_meta, changed, removed, items, ctx, subresource, api_version, now)
    entries = _entries(old_meta)
    applied = set(ctx.applied or {})
    taken = changed | removed
    for e in entries:
        if e.subresource == subresource and not (e.manager == ctx.manager and e.operation == "Apply"):
            e.paths -= taken
    mine = next(
        (
            e
            for e in entries
            if (e.manager, e.operation, e.subresource) == (ctx.manager, "Apply", subresource)
        ),
        None,
    )
    if mine is None:
        mine = Entry(ctx.manager, "Apply", api_version, subresource, now)
        entries.append(mine)
    mine.paths, mine.time = applied & set(after), now
    return [e.render(items) for e in entries if e.paths]


def _track_update(
    old_meta: dict[str, Any],
    changed: set[Path],
    removed: set[Path],
    items: set[Path],
    ctx: WriteContext,
    subresource: str,
    api_version: str,
    now: str,
) -> list[dict[str, Any]]:
    """``managedFields`` after an Update: every entry of this subresource loses the paths the write
    changed or removed, and ctx's own Update entry (the first, else a new one at the end) gains the
    changed ones. An entry that loses nothing -- every entry of another subresource among them --
    is kept as stored: decoding and rendering it again would give the same entry, at a cost that
    was the largest part of a status patch."""
    taken = changed | removed
    out: list[dict[str, Any]] = []
    mine_found = False
    for raw in old_meta.get("managedFields") or []:
        if not isinstance(raw, dict):
            continue
        if str(raw.get("subresource", "")) != subresource:
            out.append(raw)
            continue
        paths, its_items = _decode(raw.get("fieldsV1") or {})
        entry = Entry(
            str(raw.get("manager", "")),
            str(raw.get("operation", "Update")),
            str(raw.get("apiVersion", "")),
            subresource,
            str(raw.get("time", "")),
            paths,
            its_items,
        )
        if changed and not mine_found and (entry.manager, entry.operation) == (ctx.manager, "Update"):
            mine_found = True
            entry.paths = (entry.paths - taken) | changed
            entry.time = now
            out.append(entry.render(items))
        elif not entry.paths & taken:
            if entry.paths:
                out.append(raw)
        else:
            entry.paths -= taken
            if entry.paths:
                out.append(entry.render(items))
    if changed and not mine_found:
        out.append(Entry(ctx.manager, "Update", api_version, subresource, now, set(changed)).render(items))
    return out


# -- apply ------------------------------------------------------------------------------------------


def _merge(live: Any, cfg: Any, schema: dict[str, Any]) -> Any:
    schema = resolve(schema)
    props = schema.get("properties")
    extra = schema.get("additionalProperties")
    if (
        isinstance(cfg, dict)
        and schema.get("x-kubernetes-map-type") != "atomic"
        and (props is not None or isinstance(extra, dict))
    ):
        out = dict(live) if isinstance(live, dict) else {}
        for k, v in cfg.items():
            sub = props.get(k) if props is not None else extra
            out[k] = copy.deepcopy(v) if sub is None else _merge(out.get(k), v, sub)
        return out
    list_type = schema.get("x-kubernetes-list-type")
    items = schema.get("items")
    if isinstance(cfg, list) and list_type == "map" and isinstance(items, dict):
        keys = list(schema.get("x-kubernetes-list-map-keys") or [])
        out_list = list(live) if isinstance(live, list) else []
        index = {_item_key(i, keys): n for n, i in enumerate(out_list) if isinstance(i, dict)}
        for item in cfg:
            if not isinstance(item, dict):
                continue
            key = _item_key(item, keys)
            if key in index:
                out_list[index[key]] = _merge(out_list[index[key]], item, items)
            else:
                index[key] = len(out_list)
                out_list.append(copy.deepcopy(item))
        return out_list
    if isinstance(cfg, list) and list_type == "set":
        out_list = list(live) if isinstance(live, list) else []
        return out_list + [copy.deepcopy(i) for i in cfg if i not in out_list]
    return copy.deepcopy(cfg)


def _remove(obj: Any, path: Path) -> None:
    """Delete the node at ``path`` (a field, a keyed list item or a set value), if present."""
    parent: Any = obj
    for kind, name in path[:-1]:
        if kind == "f":
            parent = parent.get(name) if isinstance(parent, dict) else None
        elif kind == "k":
            parent = next((i for i in parent or [] if isinstance(i, dict) and _matches(i, name)), None)
        else:
            parent = None
        if parent is None:
            return
    kind, name = path[-1]
    if kind == "f" and isinstance(parent, dict):
        parent.pop(name, None)
    elif kind == "k" and isinstance(parent, list):
        parent[:] = [i for i in parent if not (isinstance(i, dict) and _matches(i, name))]
    elif kind == "v" and isinstance(parent, list):
        value = json.loads(name)
        parent[:] = [i for i in parent if i != value]


def _matches(item: dict[str, Any], key_json: str) -> bool:
    key = json.loads(key_json)
    return all(item.get(k, "TCP" if k == "protocol" else None) == v for k, v in key.items())


def apply(
    group: str,
    version: str,
    kind: str,
    live: dict[str, Any],
    cfg: dict[str, Any],
    ctx: WriteContext,
    subresource: str,
) -> dict[str, Any]:
    """``live`` with the applied configuration ``cfg`` of ``ctx.manager`` merged in; raises 409 on
    conflicts unless forced. Records the applied paths in ``ctx`` for :func:`track`."""
    schema = root_schema(group, version, kind)
    applied = object_leaves(group, version, kind, cfg, subresource)
    current = object_leaves(group, version, kind, live, subresource)
    entries = _entries(live.get("metadata") or {})
    conflicts: list[tuple[str, Path]] = []
    for path, value in applied.items():
        if value is ITEM or path not in current or current[path] == value:
            continue
        for e in entries:
            if e.manager != ctx.manager and e.subresource == subresource and path in e.paths:
                conflicts.append((e.manager, path))
    if conflicts and not ctx.force:
        api_version = live.get("apiVersion", version)
        described = [f'conflict with "{m}" using {api_version}: {_path_text(p)}' for m, p in conflicts]
        n = len(conflicts)
        raise ApiError(
            409,
            "Conflict",
            f"Apply failed with {n} conflict{'s' if n > 1 else ''}: " + "; ".join(described),
            details={
                "causes": [
                    {
                        "reason": "FieldManagerConflict",
                        "message": f'conflict with "{m}"',
                        "field": _path_text(p),
                    }
                    for m, p in conflicts
                ]
            },
        )
    merged: dict[str, Any] = _merge(
        live, {k: v for k, v in cfg.items() if k not in ("apiVersion", "kind")}, schema
    )
    mine = next(
        (
            e
            for e in entries
            if (e.manager, e.operation, e.subresource) == (ctx.manager, "Apply", subresource)
        ),
        None,
    )
    if mine is not None:
        others = set().union(*(e.paths for e in entries if e is not mine and e.subresource == subresource))
        dropped = sorted(mine.paths - set(applied), key=len)
        for path in dropped:
            below = {p for p in others if p[: len(path)] == path}
            if not below:
                _remove(merged, path)
    ctx.applied = applied
    return merged


__all__ = ["CURRENT", "WriteContext", "apply", "decode", "encode", "leaves", "manager_from", "track"]
