"""Informers: a cache of Services or Nodes kept current by list + watch.

The loop is client-go's reflector: list (remember the list's resourceVersion), watch from it, and
keep the last resourceVersion seen (events and bookmarks). A watch that ends (server timeout) or
breaks (connection drop) is resumed from that resourceVersion after a backoff; a ``410 Gone``
(history compacted) forces a relist. A relist diffs the fresh list against the cache and emits
add/update/delete for the differences, so nothing that happened while the watch was down is lost
-- deletions included.

Each object is :func:`trim`-med as it enters the cache: only the fields the controller reads are
kept, so the cache's memory grows with what lbprov needs per Service and Node, not with
``managedFields``, ``kubectl apply``'s copy of the object or a Node's image list.

Services are cached as their trimmed object's compact JSON text (:data:`PACKED_KINDS`), decoded on
each :meth:`Informer.get`: a one-port Service is about 700 bytes of text against 2,260 bytes of
dicts, lists and strings even with its names interned (tests/test_interning.py), and 10,000 of them
were the largest thing the AWS controller held at 10,000 Services (issue 14). A get costs a JSON
decode (~10 microseconds) and hands out a fresh copy, which the caller may change. Nodes stay
objects: every sync reads all of them (``list_nodes``), and a cluster has far fewer.
"""

from __future__ import annotations

import builtins
import json
import logging
import threading
from collections.abc import Callable
from typing import Any, Literal

from lbprov.interning import compact
from lbprov.kube.client import Gone, KubeClient, WatchStream

log = logging.getLogger(__name__)

Obj = dict[str, Any]
AddHandler = Callable[[Obj], None]
UpdateHandler = Callable[[Obj, Obj], None]
DeleteHandler = Callable[[Obj], None]


#: What the controller reads of a Service's metadata (the reconciler, ``build_intent``, events,
#: finalizer patches with optimistic concurrency, the informer's own uid/resourceVersion checks).
#: Labels are small and kept for label-based selection.
SERVICE_METADATA = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "labels",
    "annotations",
    "finalizers",
    "deletionTimestamp",
)
#: What ``node_exclusion_reason`` and ``build_intent``'s targets read of a Node's metadata and spec.
NODE_METADATA = ("name", "uid", "resourceVersion", "labels", "deletionTimestamp")
NODE_SPEC = ("providerID", "taints")
#: ``kubectl apply``'s copy of the whole object: often the largest annotation, never read.
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def trim(obj: Obj, kind: str, *, intern: bool = True) -> Obj:
    """The part of ``obj`` the controller reads (a new dict; ``obj`` is not changed).

    Services keep ``apiVersion``/``kind``, the metadata in :data:`SERVICE_METADATA` (annotations
    without :data:`LAST_APPLIED`), the whole ``spec`` (compared as a whole for re-queueing, read
    field by field by ``build_intent`` and the providers) and ``status.loadBalancer``. Nodes keep
    :data:`NODE_METADATA`, :data:`NODE_SPEC` and ``status.addresses``. Dropped: ``managedFields``,
    owner references, timestamps, Node images, conditions, capacity and annotations. What is kept
    is a copy with its names and short values interned (:func:`lbprov.interning.compact`): about
    half a cached Service's bytes were its own copies of the same keys and values.
    ``intern=False`` skips that copy for an object that is packed at once (:data:`PACKED_KINDS`):
    the text keeps no strings, and the interning cost about as much as the trim itself.
    """
    meta = obj.get("metadata") or {}
    out: Obj = {k: obj[k] for k in ("apiVersion", "kind") if k in obj}
    if kind == "nodes":
        out["metadata"] = {k: meta[k] for k in NODE_METADATA if k in meta}
        spec = obj.get("spec") or {}
        out["spec"] = {k: spec[k] for k in NODE_SPEC if k in spec}
        addresses = (obj.get("status") or {}).get("addresses")
        out["status"] = {"addresses": addresses} if addresses is not None else {}
        return compact(out) if intern else out
    kept = {k: meta[k] for k in SERVICE_METADATA if k in meta}
    if LAST_APPLIED in (kept.get("annotations") or {}):
        kept["annotations"] = {k: v for k, v in kept["annotations"].items() if k != LAST_APPLIED}
    out["metadata"] = kept
    if "spec" in obj:
        out["spec"] = obj["spec"]
    load_balancer = (obj.get("status") or {}).get("loadBalancer")
    out["status"] = {"loadBalancer": load_balancer} if load_balancer is not None else {}
    return compact(out) if intern else out


#: What the list's transform leaves in the list's place (the informer keeps each item itself).
_TAKEN: Obj = {}
#: Kinds cached as compact JSON text (see the module docstring).
PACKED_KINDS = frozenset({"services"})


#: One encoder for every pack: ``json.dumps`` with arguments builds a new one per call.
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


def pack(obj: Obj) -> str:
    """An object as the cache keeps it when packed: compact JSON (ASCII: one byte a character)."""
    return _ENCODE(obj)


def unpack(text: str) -> Obj:
    obj: Obj = json.loads(text)
    return obj


def object_key(obj: Obj, kind: str) -> str:
    meta = obj.get("metadata") or {}
    if kind == "nodes":
        return str(meta.get("name"))
    return f"{meta.get('namespace')}/{meta.get('name')}"


def _uid(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


def _rv(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


class Informer:
    """List, then watch from the list's resourceVersion; relist on 410; reconnect on drops (with
    backoff); bookmarks advance the resourceVersion. Callbacks run on the informer's thread, after
    the cache is updated; an exception in a callback is logged and does not stop the informer."""

    def __init__(
        self,
        client: KubeClient,
        kind: Literal["services", "nodes"],
        *,
        namespace: str | None = None,
        on_add: AddHandler | None = None,
        on_update: UpdateHandler | None = None,
        on_delete: DeleteHandler | None = None,
        watch_timeout: int = 300,
        backoff_initial: float = 0.2,
        backoff_max: float = 10.0,
    ) -> None:
        if kind not in ("services", "nodes"):
            raise ValueError(f"unsupported kind {kind!r}")
        self.client = client
        self.kind = kind
        self.namespace = namespace
        self.on_add = on_add
        self.on_update = on_update
        self.on_delete = on_delete
        self.watch_timeout = watch_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        #: Objects by key; packed (JSON text) for :data:`PACKED_KINDS`.
        self._cache: dict[str, Any] = {}
        self._packed = kind in PACKED_KINDS
        self._lock = threading.Lock()
        self._synced = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stream: WatchStream | None = None
        self._resource_version = ""
        #: The last error of a list or watch (cleared by a successful list): why a cache has not
        #: synced, for the message of a cache-sync timeout.
        self.last_error: str | None = None
        #: Counters for tests and metrics.
        self.lists = 0
        self.watches = 0
        self.watch_errors = 0

    # -- public ---------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"informer-{self.kind}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the loop; waits at most ``timeout`` seconds for the thread (a daemon: a list call
        blocked on a dead server is bounded by the client's read timeout and cannot hold the
        process)."""
        self._stop.set()
        stream = self._stream
        if stream is not None:
            stream.close()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None

    def wait_synced(self, timeout: float) -> bool:
        return self._synced.wait(timeout)

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    def sync_status(self) -> str:
        """Why the cache has not synced yet: the last list/watch error, or that the first list is
        still waiting for the API server (named) to answer."""
        if self.synced:
            return "synced"
        return self.last_error or f"no answer yet to the {self.kind} list from {self.client.host}"

    @property
    def resource_version(self) -> str:
        return self._resource_version

    def get(self, key: str) -> Obj | None:
        """``"namespace/name"`` for Services (a fresh copy), ``"name"`` for Nodes."""
        with self._lock:
            found = self._cache.get(key)
        return self._out(found) if found is not None else None

    def list(self) -> list[Obj]:
        """Every cached object (for Services, all decoded at once: :meth:`keys` and :meth:`get`
        one at a time keep only one decoded)."""
        with self._lock:
            values = list(self._cache.values())
        return [self._out(v) for v in values]

    def _in(self, obj: Obj) -> Any:
        return pack(obj) if self._packed else obj

    def _out(self, stored: Any) -> Obj:
        return unpack(stored) if self._packed else stored

    def keys(self) -> builtins.list[str]:
        with self._lock:
            return list(self._cache)

    # -- loop -----------------------------------------------------------------------------------

    def _run(self) -> None:
        need_list = True
        backoff = self.backoff_initial
        while not self._stop.is_set():
            try:
                if need_list:
                    self._relist()
                    need_list = False
                self._watch_once()
                backoff = self.backoff_initial  # a clean end (server timeout): resume at once
            except Gone:
                log.info(
                    "%s informer: resourceVersion %s expired; relisting", self.kind, self._resource_version
                )
                need_list = True
            except Exception as exc:  # network errors, dropped watches, server errors: back off, resume
                if self._stop.is_set():
                    break
                self.watch_errors += 1
                self.last_error = str(exc) or type(exc).__name__
                log.warning("%s informer: %s; retrying in %.1fs", self.kind, exc, backoff)
                if self._stop.wait(backoff):
                    break
                backoff = min(backoff * 2, self.backoff_max)
                if not self._resource_version:
                    need_list = True

    def _relist(self) -> None:
        # Trimmed page by page as the list arrives (also on a relist after 410): only one page of
        # full objects is alive at a time, not the whole cluster's (10,000 untrimmed Services on a
        # controller restart).
        # Packed kinds are packed as they arrive too: the list never holds every object unpacked
        # (10,000 trimmed Services are ~23 MB as objects, ~7 MB packed); the handlers get each one
        # decoded in turn.
        kind = self.kind
        fresh: dict[str, Any] = {}

        intern = not self._packed

        def keep(o: Obj) -> Obj:
            kept = trim(o, kind, intern=intern)
            fresh[object_key(kept, kind)] = self._in(kept)
            return _TAKEN

        if kind == "services":
            items, rv = self.client.list_services(self.namespace, transform=keep)
        else:
            items, rv = self.client.list_nodes(transform=keep)
        del items  # every item is _TAKEN: what was listed is in ``fresh``
        self.lists += 1
        self.last_error = None
        with self._lock:
            old = self._cache
            self._cache = fresh
            self._resource_version = rv
        for key, kept in fresh.items():
            obj = self._out(kept)
            stored = old.get(key)
            if stored is None:
                self._emit_add(obj)
                continue
            before = self._out(stored)
            if _uid(before) != _uid(obj):
                # Deleted and re-created while the watch was down: two objects, not one changed.
                self._emit_delete(before)
                self._emit_add(obj)
            elif _rv(before) != _rv(obj):
                self._emit_update(before, obj)
        for key, stored in old.items():
            if key not in fresh:
                self._emit_delete(self._out(stored))
        self._synced.set()

    def _watch_once(self) -> None:
        if self.kind == "services":
            stream = self.client.watch_services(
                self._resource_version, self.watch_timeout, namespace=self.namespace
            )
        else:
            stream = self.client.watch_nodes(self._resource_version, self.watch_timeout)
        self._stream = stream
        self.watches += 1
        try:
            if self._stop.is_set():
                return
            for kind, obj in stream:
                if self._stop.is_set():
                    return
                self._apply(kind, obj)
        finally:
            self._stream = None
            stream.close()

    def _apply(self, kind: str, obj: Obj) -> None:
        rv = _rv(obj)
        if kind == "BOOKMARK":
            if rv:
                self._resource_version = rv
            return
        obj = trim(obj, self.kind, intern=not self._packed)
        key = object_key(obj, self.kind)
        stored = None if kind == "DELETED" else self._in(obj)
        with self._lock:
            before = self._cache.get(key)
            if stored is None:
                self._cache.pop(key, None)
            else:
                self._cache[key] = stored
            if rv:
                self._resource_version = rv
        if kind == "DELETED":
            self._emit_delete(obj)  # the object's last state, as the event carries it
        elif before is None:
            self._emit_add(obj)
        else:
            self._emit_update(self._out(before), obj)

    # -- callbacks ------------------------------------------------------------------------------

    def _emit_add(self, obj: Obj) -> None:
        if self.on_add is not None:
            self._safely(self.on_add, obj)

    def _emit_update(self, old: Obj, new: Obj) -> None:
        if self.on_update is not None:
            self._safely(self.on_update, old, new)

    def _emit_delete(self, obj: Obj) -> None:
        if self.on_delete is not None:
            self._safely(self.on_delete, obj)

    def _safely(self, fn: Callable[..., None], *args: Obj) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("%s informer: handler %s failed", self.kind, getattr(fn, "__name__", fn))
