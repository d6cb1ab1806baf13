"""The state of the sandbox API server: objects, resourceVersions, watch history and watchers.

One lock guards everything, so a write, its resourceVersion and its delivery to every watcher queue
happen atomically and watchers see events in resourceVersion order. Stored objects are never
mutated in place (every write stores a fresh dict), so readers may serialise them without the lock.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import queue
import random
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lbprov.sandbox.kube_copy import clone
from lbprov.sandbox.kube_errors import (
    ApiError,
    already_exists,
    bad_request,
    conflict,
    expired,
    forbidden,
    forbidden_request,
    invalid,
    invalid_value,
    not_found,
    required,
    unsupported_media_type,
)

if TYPE_CHECKING:
    from lbprov.sandbox.kube_managed import WriteContext
from lbprov.sandbox.kube_patch import json_patch, merge_patch, strategic_merge_patch
from lbprov.sandbox.kube_selectors import (
    FieldRequirement,
    Requirement,
    fields_match,
    labels_match,
)
from lbprov.sandbox.kube_services import (
    DEFAULT_NODE_PORTS,
    KUBERNETES_SERVICE_IP,
    prepare_service,
    prepare_service_status,
    validate_lease,
    validate_metadata,
    validate_name,
    validate_node,
)

Obj = dict[str, Any]

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    has_status: bool = False
    status_on_create: bool = False
    name_style: str = "dns1123subdomain"
    #: Served for reading only (the sandbox runs no workloads: ``pods`` is always empty, so
    #: ``kubectl describe node`` and ``get pods`` work); writes are refused with 405.
    read_only: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


RESOURCES: dict[str, Resource] = {
    r.plural: r
    for r in (
        Resource(
            "", "v1", "services", "service", "Service", True, ("svc",), ("all",), True, False, "dns1035"
        ),
        Resource("", "v1", "nodes", "node", "Node", False, ("no",), (), True, True),
        Resource("", "v1", "events", "event", "Event", True, ("ev",)),
        Resource(
            "", "v1", "namespaces", "namespace", "Namespace", False, ("ns",), (), True, True, "dns1123label"
        ),
        Resource("coordination.k8s.io", "v1", "leases", "lease", "Lease", True),
        Resource("", "v1", "configmaps", "configmap", "ConfigMap", True, ("cm",)),
        Resource("", "v1", "pods", "pod", "Pod", True, ("po",), ("all",), True, read_only=True),
    )
}

PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public")


#: Time fields per resource: path -> True for MicroTime (microseconds), False for Time (seconds).
TIME_FIELDS: dict[str, dict[tuple[str, ...], bool]] = {
    "events": {
        ("firstTimestamp",): False,
        ("lastTimestamp",): False,
        ("eventTime",): True,
        ("series", "lastObservedTime"): True,
    },
    "leases": {("spec", "acquireTime"): True, ("spec", "renewTime"): True},
}


def rfc3339(value: Any, micro: bool, field: str) -> str:
    """A client's timestamp as the server stores it: UTC with ``Z``, seconds for ``metav1.Time``,
    microseconds for ``metav1.MicroTime`` (clients may send ``+00:00`` or other offsets)."""
    try:
        when = datetime.datetime.fromisoformat(str(value).replace("z", "Z"))
    except ValueError as exc:
        raise bad_request(f'parsing time "{value}" in {field}: not an RFC 3339 timestamp') from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    when = when.astimezone(datetime.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ")


def normalize(resource: str, obj: Obj) -> None:
    """What decoding into the Go type and encoding back does to a stored object: an empty
    ``finalizers`` list is omitted (``omitempty``) and timestamps are re-encoded in UTC."""
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "finalizers" in meta and not meta["finalizers"]:
        del meta["finalizers"]
    for path, micro in TIME_FIELDS.get(resource, {}).items():
        parent: Any = obj
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if isinstance(parent, dict) and parent.get(path[-1]) not in (None, ""):
            parent[path[-1]] = rfc3339(parent[path[-1]], micro, ".".join(path))


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class WatchEvent:
    rv: int
    resource: str
    type: str  # ADDED, MODIFIED, DELETED
    obj: Obj
    old: Obj | None


@dataclass(eq=False)
class Watcher:
    resource: str
    namespace: str | None
    labels: list[Requirement]
    fields: list[FieldRequirement]
    events: queue.Queue[WatchEvent | None] = field(default_factory=queue.Queue)
    dropped: bool = False
    on_drop: Callable[[], None] | None = None

    def _matches(self, obj: Obj) -> bool:
        if self.namespace is not None and obj.get("metadata", {}).get("namespace") != self.namespace:
            return False
        return labels_match(self.labels, obj) and fields_match(self.fields, obj)

    def translate(self, ev: WatchEvent) -> tuple[str, Obj] | None:
        """The event this watcher sees, as the real server does for selector transitions."""
        now = self._matches(ev.obj)
        if ev.type != "MODIFIED":
            return (ev.type, ev.obj) if now else None
        before = ev.old is not None and self._matches(ev.old)
        if now and before:
            return ("MODIFIED", ev.obj)
        if now:
            return ("ADDED", ev.obj)
        if before:
            return ("DELETED", ev.obj)
        return None

    def drop(self) -> None:
        self.dropped = True
        self.events.put(None)
        if self.on_drop is not None:
            try:
                self.on_drop()
            except OSError:
                pass


def _key(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return (meta.get("namespace") or "", meta.get("name") or "")


def _managed() -> Any:
    """:mod:`lbprov.sandbox.kube_managed`, imported late: it reads the schemas, whose module
    imports this one."""
    from lbprov.sandbox import kube_managed

    return kube_managed


def _without_rv(obj: Obj, *, timestamps: bool = True) -> Obj:
    """``obj`` without its resourceVersion (and, with ``timestamps=False``, without the times of
    its managedFields entries), for telling a no-op write."""
    out = dict(obj)
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "resourceVersion"}
    if not timestamps and meta.get("managedFields"):
        meta["managedFields"] = [
            {k: v for k, v in entry.items() if k != "time"} if isinstance(entry, dict) else entry
            for entry in meta["managedFields"]
        ]
    out["metadata"] = meta
    return out


def _check_kind(res: Resource, body: Obj) -> None:
    kind, api_version = body.get("kind"), body.get("apiVersion")
    if (kind and kind != res.kind) or (api_version and api_version != res.api_version):
        raise bad_request(
            f"the API version in the data ({api_version}) does not match the expected API version "
            f"({res.api_version})"
            if api_version and api_version != res.api_version
            else f"the kind in the data ({kind}) does not match the expected kind ({res.kind})"
        )


def _encode_continue(rv: int, start: tuple[str, str]) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": list(start)}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        return int(data["rv"]), (str(data["start"][0]), str(data["start"][1]))
    except (ValueError, KeyError, IndexError, TypeError, binascii.Error) as exc:
        raise bad_request(f"continue key is not valid: {exc}") from exc


class Store:
    def __init__(
        self,
        *,
        watch_window: int = 1000,
        namespaces: tuple[str, ...] = (),
        node_ports: tuple[int, int] = DEFAULT_NODE_PORTS,
    ) -> None:
        self.lock = threading.RLock()
        self.node_ports = node_ports
        self.rv = 0
        self.window_start = 0
        self.history: deque[WatchEvent] = deque()
        self.watch_window = watch_window
        self.objects: dict[str, dict[tuple[str, str], Obj]] = {r: {} for r in RESOURCES}
        self.watchers: set[Watcher] = set()
        self.rng = random.Random()
        # Allocation indexes: node port / cluster IP -> the Service (namespace, name) holding it.
        self._port_owner: dict[int, tuple[str, str]] = {}
        self._ip_owner: dict[str, tuple[str, str]] = {}
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease", *namespaces):
            if ("", ns) not in self.objects["namespaces"]:
                self.create("namespaces", None, {"metadata": {"name": ns}})
        self.create(
            "services",
            "default",
            {
                "metadata": {
                    "name": "kubernetes",
                    "labels": {"component": "apiserver", "provider": "kubernetes"},
                },
                "spec": {
                    "clusterIP": KUBERNETES_SERVICE_IP,
                    "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}],
                },
            },
        )

    # ---- internals --------------------------------------------------------------------------

    def _commit(self, resource: str, kind: str, obj: Obj, old: Obj | None) -> Obj:
        """Store (or remove, for DELETED) ``obj`` with a new resourceVersion and notify watchers."""
        self.rv += 1
        obj = dict(obj)
        obj["metadata"] = {**obj["metadata"], "resourceVersion": str(self.rv)}
        key = _key(obj)
        if kind == "DELETED":
            self.objects[resource].pop(key, None)
        else:
            self.objects[resource][key] = obj
        if resource == "services":
            self._index_service(key, old, None if kind == "DELETED" else obj)
        ev = WatchEvent(self.rv, resource, kind, obj, old)
        self.history.append(ev)
        while len(self.history) > self.watch_window:
            self.window_start = self.history.popleft().rv
        for w in self.watchers:
            if w.resource == resource:
                w.events.put(ev)
        if kind == "DELETED" and resource != "namespaces" and key[0]:
            self._maybe_finish_namespace(key[0])
        return obj

    def _index_service(self, key: tuple[str, str], old: Obj | None, new: Obj | None) -> None:
        for obj, add in ((old, False), (new, True)):
            if obj is None:
                continue
            spec = obj.get("spec") or {}
            ports = [p.get("nodePort") for p in spec.get("ports") or []] + [spec.get("healthCheckNodePort")]
            ips = [ip for ip in spec.get("clusterIPs") or [spec.get("clusterIP")] if ip and ip != "None"]
            for port in ports:
                if port:
                    if add:
                        self._port_owner[int(port)] = key
                    elif self._port_owner.get(int(port)) == key:
                        del self._port_owner[int(port)]
            for ip in ips:
                if add:
                    self._ip_owner[ip] = key
                elif self._ip_owner.get(ip) == key:
                    del self._ip_owner[ip]

    def _maybe_finish_namespace(self, ns: str) -> None:
        ns_obj = self.objects["namespaces"].get(("", ns))
        if ns_obj is None or not ns_obj["metadata"].get("deletionTimestamp"):
            return
        if any(k[0] == ns for r in RESOURCES.values() if r.namespaced for k in self.objects[r.plural]):
            return
        self._commit("namespaces", "DELETED", ns_obj, ns_obj)

    def _existing(self, resource: str, ns: str | None, name: str) -> Obj:
        obj = self.objects[resource].get((ns or "", name))
        if obj is None:
            raise not_found(resource, name, RESOURCES[resource].group)
        return obj

    def _check_namespace(self, ns: str) -> None:
        ns_obj = self.objects["namespaces"].get(("", ns))
        if ns_obj is None:
            raise not_found("namespaces", ns)
        if ns_obj["metadata"].get("deletionTimestamp"):
            raise forbidden_request(
                f"unable to create new content in namespace {ns} because it is being terminated"
            )

    # ---- reads ------------------------------------------------------------------------------

    def get(self, resource: str, ns: str | None, name: str) -> Obj:
        with self.lock:
            return self._existing(resource, ns, name)

    def list_objects(
        self,
        resource: str,
        ns: str | None,
        labels: list[Requirement],
        fields: list[FieldRequirement],
        limit: int | None = None,
        cont: str | None = None,
    ) -> tuple[list[Obj], str, str | None, int | None]:
        """Items (sorted by namespace/name), list resourceVersion, continue token, remaining count."""
        with self.lock:
            list_rv = self.rv
            start: tuple[str, str] | None = None
            if cont:
                list_rv, start = _decode_continue(cont)
                if list_rv < self.window_start:
                    raise expired(
                        "The provided continue parameter is too old to display a consistent list result. "
                        "You can start a new list without the continue parameter."
                    )
            keys = sorted(self.objects[resource])
            items = [self.objects[resource][k] for k in keys if start is None or k > start]
        items = [
            o
            for o in items
            if (ns is None or o["metadata"].get("namespace") == ns)
            and labels_match(labels, o)
            and fields_match(fields, o)
        ]
        token = None
        remaining = None
        if limit and limit > 0 and len(items) > limit:
            remaining = len(items) - limit
            items = items[:limit]
            token = _encode_continue(list_rv, _key(items[-1]))
        return items, str(list_rv), token, remaining

    # ---- watches ----------------------------------------------------------------------------

    def open_watch(
        self,
        resource: str,
        ns: str | None,
        labels: list[Requirement],
        fields: list[FieldRequirement],
        resource_version: str | None,
        send_initial_events: bool = False,
    ) -> tuple[Watcher, list[tuple[str, Obj]], ApiError | None]:
        """Register a watcher; return it with the events to send first, or a 410 to send instead."""
        w = Watcher(resource, ns, labels, fields)
        with self.lock:
            initial: list[tuple[str, Obj]] = []
            rv_text = resource_version or ""
            if rv_text in ("", "0") or send_initial_events:
                for key in sorted(self.objects[resource]):
                    obj = self.objects[resource][key]
                    if w._matches(obj):
                        initial.append(("ADDED", obj))
            else:
                try:
                    since = int(rv_text)
                except ValueError:
                    return w, [], bad_request(f'invalid resource version "{rv_text}"')
                if since < self.window_start:
                    return w, [], expired(f"too old resource version: {since} ({self.window_start + 1})")
                for ev in self.history:
                    if ev.rv > since and ev.resource == resource:
                        seen = w.translate(ev)
                        if seen is not None:
                            initial.append(seen)
            self.watchers.add(w)
        return w, initial, None

    def close_watch(self, w: Watcher) -> None:
        with self.lock:
            self.watchers.discard(w)

    def idle_bookmark_rv(self, w: Watcher) -> int | None:
        """The current resourceVersion if ``w`` has nothing pending (safe to bookmark), else None."""
        with self.lock:
            return self.rv if w.events.empty() else None

    def drop_watches(self) -> None:
        with self.lock:
            watchers = list(self.watchers)
            self.watchers.clear()
        for w in watchers:
            w.drop()

    def expire_resource_versions(self) -> None:
        """Compact: every resourceVersion issued so far becomes too old to watch from."""
        with self.lock:
            self.rv += 1
            self.window_start = self.rv
            self.history.clear()

    # ---- writes -----------------------------------------------------------------------------

    def create(self, resource: str, ns: str | None, body: Any, *, dry_run: bool = False) -> Obj:
        res = RESOURCES[resource]
        if not isinstance(body, dict):
            raise bad_request("the body of the request must be a JSON object")
        _check_kind(res, body)
        obj = clone(body)
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            meta = {}
        obj["metadata"] = meta
        obj["kind"] = res.kind
        obj["apiVersion"] = res.api_version
        if res.namespaced:
            assert ns is not None
            if meta.get("namespace") and meta["namespace"] != ns:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        with self.lock:
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"] + "".join(
                    self.rng.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5)
                )
            name = meta.get("name")
            if not name:
                raise invalid(res.kind, "", [required("metadata.name", "name or generateName is required")])
            problem = validate_name(name, style=res.name_style)
            if problem:
                raise invalid(res.kind, name, [invalid_value("metadata.name", name, problem)], res.group)
            validate_metadata(res.kind, name, meta, res.group)
            if res.namespaced:
                self._check_namespace(ns or "")
            if (ns or "", name) in self.objects[resource]:
                raise already_exists(resource, name, res.group)
            for k in ("deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion", "selfLink"):
                meta.pop(k, None)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now_rfc3339()
            if res.has_status and not res.status_on_create:
                obj["status"] = {}
            if resource == "services":
                meta["generation"] = 1
                obj["status"] = {"loadBalancer": {}}
                owner = (ns or "", name)
                obj["spec"] = prepare_service(
                    name,
                    dict(obj.get("spec") or {}),
                    None,
                    lambda p: self._port_owner.get(p, owner) != owner,
                    lambda ip: self._ip_owner.get(ip, owner) != owner,
                    self.rng,
                    self.node_ports,
                )
            elif resource == "nodes":
                obj.setdefault("spec", {})
                validate_node(name, obj["spec"], None)
            elif resource == "namespaces":
                obj["spec"] = {"finalizers": ["kubernetes"]}
                obj["status"] = {"phase": "Active"}
                meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = name
            elif resource == "leases":
                validate_lease(name, obj.get("spec") or {})
            elif resource == "events":
                inv_ns = (obj.get("involvedObject") or {}).get("namespace")
                if inv_ns and inv_ns != ns:
                    raise invalid(
                        "Event",
                        name,
                        [invalid_value("involvedObject.namespace", inv_ns, "does not match event.namespace")],
                    )
            normalize(resource, obj)
            meta.pop("managedFields", None)  # the server computes them
            managed = _managed()
            ctx = managed.CURRENT.get()
            if ctx is not None:
                fields = managed.track(res.group, res.version, res.kind, None, obj, ctx, "")
                if fields:
                    meta["managedFields"] = fields
            if dry_run:
                return obj
            return self._commit(resource, "ADDED", obj, None)

    def update(
        self,
        resource: str,
        ns: str | None,
        name: str,
        mutate: Callable[[Obj], Any],
        *,
        subresource: str = "",
        dry_run: bool = False,
        check_body_identity: bool = False,
    ) -> Obj:
        """Apply ``mutate(current) -> full new object`` to the object or its status, with all checks."""
        res = RESOURCES[resource]
        with self.lock:
            old = self._existing(resource, ns, name)
            full = mutate(clone(old))
            if not isinstance(full, dict):
                raise bad_request("the body of the request must be a JSON object")
            meta = full.get("metadata")
            if not isinstance(meta, dict):
                meta = {}
                full["metadata"] = meta
            if check_body_identity:
                if meta.get("name") and meta["name"] != name:
                    raise bad_request(
                        f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
                    )
                if res.namespaced and meta.get("namespace") and meta["namespace"] != ns:
                    raise bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request"
                    )
            want_rv = meta.get("resourceVersion")
            if want_rv not in (None, "") and str(want_rv) != old["metadata"]["resourceVersion"]:
                raise conflict(resource, name, res.group)
            new = self._prepared_update(res, old, full, subresource)
            normalize(resource, new)
            new["metadata"].pop("managedFields", None)  # the server computes them
            if old["metadata"].get("managedFields"):
                new["metadata"]["managedFields"] = old["metadata"]["managedFields"]
            managed = _managed()
            ctx = managed.CURRENT.get()
            if ctx is not None:
                fields = managed.track(res.group, res.version, res.kind, old, new, ctx, subresource)
                new["metadata"].pop("managedFields", None)
                if fields:
                    new["metadata"]["managedFields"] = fields
            if _without_rv(new, timestamps=False) == _without_rv(old, timestamps=False):
                # A no-op write changes nothing, as on a real server; a write that changes only
                # who manages what (a second applier of the same values) is not a no-op.
                return old
            if dry_run:
                return new
            if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
                return self._commit(resource, "DELETED", new, old)
            return self._commit(resource, "MODIFIED", new, old)

    def _prepared_update(self, res: Resource, old: Obj, full: Obj, subresource: str) -> Obj:
        old_meta = old["metadata"]
        if subresource == "status":
            # Status writes change only status (upstream statusStrategy + ResetObjectMetaForStatus).
            new = clone(old)
            if "status" in full:
                new["status"] = full["status"]
            else:
                new.pop("status", None)
            if res.plural == "services":
                new["status"] = prepare_service_status(
                    old_meta["name"], new.get("spec") or {}, clone(new.get("status") or {})
                )
            return new
        new = full
        new["kind"] = res.kind
        new["apiVersion"] = res.api_version
        meta = dict(new.get("metadata") or {})
        for k in (
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "selfLink",
        ):
            if k in old_meta:
                meta[k] = old_meta[k]
            else:
                meta.pop(k, None)
        meta["resourceVersion"] = old_meta["resourceVersion"]
        new["metadata"] = meta
        validate_metadata(res.kind, meta["name"], meta, res.group)
        if old_meta.get("deletionTimestamp"):
            added = [f for f in meta.get("finalizers") or [] if f not in (old_meta.get("finalizers") or [])]
            if added:
                raise invalid(
                    res.kind,
                    meta["name"],
                    [
                        forbidden(
                            "metadata.finalizers",
                            "no new finalizers can be added if the object is being deleted, found new finalizers "
                            + str(added),
                        )
                    ],
                    res.group,
                )
        if res.has_status:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        if res.plural == "services":
            owner = _key(old)
            new["spec"] = prepare_service(
                meta["name"],
                dict(new.get("spec") or {}),
                clone(old.get("spec") or {}),
                lambda p: self._port_owner.get(p, owner) != owner,
                lambda ip: self._ip_owner.get(ip, owner) != owner,
                self.rng,
                self.node_ports,
            )
            if new["spec"] != old.get("spec"):
                meta["generation"] = int(old_meta.get("generation", 1)) + 1
            if new["spec"].get("type") != "LoadBalancer" and (new.get("status") or {}).get("loadBalancer"):
                # Load-balancer status is only valid on LoadBalancer Services: cleared on type change.
                new["status"] = {**new["status"], "loadBalancer": {}}
        elif res.plural == "nodes":
            new.setdefault("spec", {})
            validate_node(meta["name"], new["spec"], old.get("spec") or {})
        elif res.plural == "namespaces":
            new["spec"] = old.get("spec", {})
        elif res.plural == "leases":
            validate_lease(meta["name"], new.get("spec") or {})
        return new

    def apply(
        self,
        resource: str,
        ns: str | None,
        name: str,
        config: Any,
        ctx: WriteContext,
        *,
        subresource: str = "",
        dry_run: bool = False,
    ) -> tuple[Obj, bool]:
        """Server-side apply of ``config`` by ``ctx.manager``; creates the object when it does not
        exist. Returns the object and whether it was created."""
        res = RESOURCES[resource]
        managed = _managed()
        if not isinstance(config, dict):
            raise bad_request("the applied configuration must be an object")
        _check_kind(res, config)
        raw_meta = config.get("metadata")
        meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
        if meta.get("name") not in (None, name):
            raise bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
            )
        token = managed.CURRENT.set(ctx)
        try:
            with self.lock:
                exists = (ns or "", name) in self.objects[resource]
                if not exists:
                    if subresource:
                        raise not_found(resource, name, res.group)
                    body = clone(config)
                    body.setdefault("metadata", {})["name"] = name
                    ctx.applied = managed.object_leaves(res.group, res.version, res.kind, body, "")
                    return self.create(resource, ns, body, dry_run=dry_run), True
                return (
                    self.update(
                        resource,
                        ns,
                        name,
                        lambda live: managed.apply(
                            res.group, res.version, res.kind, live, config, ctx, subresource
                        ),
                        subresource=subresource,
                        dry_run=dry_run,
                    ),
                    False,
                )
        finally:
            managed.CURRENT.reset(token)

    def replace(
        self,
        resource: str,
        ns: str | None,
        name: str,
        body: Any,
        *,
        subresource: str = "",
        dry_run: bool = False,
    ) -> Obj:
        if not isinstance(body, dict):
            raise bad_request("the body of the request must be a JSON object")
        _check_kind(RESOURCES[resource], body)
        return self.update(
            resource,
            ns,
            name,
            lambda _old: clone(body),
            subresource=subresource,
            dry_run=dry_run,
            check_body_identity=True,
        )

    def patch(
        self,
        resource: str,
        ns: str | None,
        name: str,
        content_type: str,
        patch: Any,
        *,
        subresource: str = "",
        dry_run: bool = False,
    ) -> Obj:
        kind = content_type.split(";")[0].strip().lower()
        if kind == "application/merge-patch+json":
            apply: Callable[[Obj], Any] = lambda old: merge_patch(old, patch)  # noqa: E731
        elif kind == "application/strategic-merge-patch+json":
            apply = lambda old: strategic_merge_patch(old, patch)  # noqa: E731
        elif kind == "application/json-patch+json":
            apply = lambda old: json_patch(old, patch)  # noqa: E731
        else:
            raise unsupported_media_type(content_type)
        if kind != "application/json-patch+json" and not isinstance(patch, dict):
            raise bad_request("the patch must be a JSON object")
        return self.update(
            resource, ns, name, apply, subresource=subresource, dry_run=dry_run, check_body_identity=True
        )

    def delete(
        self, resource: str, ns: str | None, name: str, options: Any = None, *, dry_run: bool = False
    ) -> Obj:
        res = RESOURCES[resource]
        options = options if isinstance(options, dict) else {}
        with self.lock:
            old = self._existing(resource, ns, name)
            pre = options.get("preconditions") or {}
            if pre.get("uid") and pre["uid"] != old["metadata"]["uid"]:
                raise conflict(
                    resource,
                    name,
                    res.group,
                    f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {old['metadata']['uid']}",
                )
            if pre.get("resourceVersion") and pre["resourceVersion"] != old["metadata"]["resourceVersion"]:
                raise conflict(
                    resource,
                    name,
                    res.group,
                    f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, ResourceVersion in object meta: {old['metadata']['resourceVersion']}",
                )
            if resource == "namespaces":
                return self._delete_namespace(old, dry_run)
            if old["metadata"].get("finalizers"):
                if old["metadata"].get("deletionTimestamp"):
                    return old
                new = clone(old)
                new["metadata"]["deletionTimestamp"] = now_rfc3339()
                new["metadata"]["deletionGracePeriodSeconds"] = 0
                if "generation" in new["metadata"]:
                    new["metadata"]["generation"] += 1
                return new if dry_run else self._commit(resource, "MODIFIED", new, old)
            return old if dry_run else self._commit(resource, "DELETED", old, old)

    def delete_collection(
        self,
        resource: str,
        ns: str | None,
        labels: list[Requirement],
        fields: list[FieldRequirement],
        *,
        dry_run: bool = False,
    ) -> list[Obj]:
        with self.lock:
            items, _, _, _ = self.list_objects(resource, ns, labels, fields)
            return [
                self.delete(resource, o["metadata"].get("namespace"), o["metadata"]["name"], dry_run=dry_run)
                for o in items
            ]

    def _delete_namespace(self, old: Obj, dry_run: bool) -> Obj:
        name = old["metadata"]["name"]
        if name in PROTECTED_NAMESPACES:
            raise forbidden_request(f'namespaces "{name}" is forbidden: this namespace may not be deleted')
        if old["metadata"].get("deletionTimestamp") or dry_run:
            return old
        new = clone(old)
        new["metadata"]["deletionTimestamp"] = now_rfc3339()
        new["metadata"]["deletionGracePeriodSeconds"] = 0
        new["status"] = {"phase": "Terminating"}
        result = self._commit("namespaces", "MODIFIED", new, old)
        for r in RESOURCES.values():
            if r.namespaced:
                for key in [k for k in self.objects[r.plural] if k[0] == name]:
                    self.delete(r.plural, name, key[1])
        self._maybe_finish_namespace(name)
        return self.objects["namespaces"].get(("", name), result)
