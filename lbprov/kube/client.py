"""Typed calls to the Kubernetes API, with objects as plain dicts, over urllib3 (no official client).

Why dicts: the controller reads a handful of fields and writes small patches; the API's own JSON
shape (``obj["metadata"]["finalizers"]``) is what DESIGN.md, the intent builder and the tests speak,
and it avoids generated models' conversions (and their ``None``-for-missing ambiguity). Why no
official client: lbprov only ever used it as a transport, and importing it costs a process about
46 MB; the HTTP is :mod:`lbprov.kube.transport`, the configuration :mod:`lbprov.kube.config` (which
still uses the official loader, lazily, for kubeconfig files only).

Errors are mapped from the HTTP status to :class:`NotFound`, :class:`Conflict` (409, stale
resourceVersion; :class:`AlreadyExists` is its subclass), :class:`Gone` (410), :class:`Invalid`
(422), or :class:`KubeError` for anything else; a request with no HTTP answer raises
:class:`KubeUnreachable`.

Configuration: :meth:`KubeClient.from_kubeconfig`, :meth:`KubeClient.in_cluster` (service-account
token, re-read once a minute, and CA, ``KUBERNETES_SERVICE_HOST``/``PORT``; the files can be
redirected with ``LBPROV_INCLUSTER_TOKEN_FILE`` / ``LBPROV_INCLUSTER_CA_FILE``),
:meth:`KubeClient.for_url` and :meth:`KubeClient.auto`.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import quote

import urllib3

from lbprov.kube.config import (
    CA_FILE_ENV,
    SA_DIR,
    TOKEN_FILE_ENV,
    ClusterConfig,
    KubeConfigError,
    in_cluster_config,
    kubeconfig_config,
    url_config,
)
from lbprov.kube.transport import Query, Transport
from lbprov.naming import event_name

log = logging.getLogger(__name__)

Obj = dict[str, Any]
#: A per-item transform of a list (the informer's trim), applied as each page arrives.
Transform = Callable[[Obj], Obj]
T = TypeVar("T")

__all__ = [
    "CA_FILE_ENV",
    "SA_DIR",
    "TOKEN_FILE_ENV",
    "AlreadyExists",
    "Conflict",
    "Gone",
    "Invalid",
    "KubeClient",
    "KubeConfigError",
    "KubeError",
    "KubeUnreachable",
    "NotFound",
    "WatchDropped",
    "WatchStream",
]

MERGE_TYPES = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
}


# ---- errors -------------------------------------------------------------------------------------


class KubeError(Exception):
    """An API error: HTTP ``status``, Kubernetes ``reason`` and ``message`` from the Status body."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


class NotFound(KubeError):
    pass


class Conflict(KubeError):
    """409: a stale resourceVersion (reason ``Conflict``) -- re-read and retry."""


class AlreadyExists(Conflict):
    """409 with reason ``AlreadyExists`` on create."""


class Gone(KubeError):
    """410: the resourceVersion is too old (watch or continue token) -- relist."""


class Invalid(KubeError):
    """422: the server rejected the object (reason ``Invalid``)."""


class WatchDropped(Exception):
    """The watch connection broke mid-stream (not a clean end of the watch)."""


class KubeUnreachable(Exception):
    """The API server could not be reached or did not answer in time (no HTTP answer at all).

    ``endpoint`` is the server's URL, ``detail`` what went wrong at the connection level (refused,
    DNS, TLS, timed out). The message names both, so a log line or a CLI error says *which*
    endpoint failed -- not a cloud's, not a generic "network error".
    """

    def __init__(self, endpoint: str, detail: str) -> None:
        super().__init__(f"cannot reach the Kubernetes API at {endpoint}: {detail}")
        self.endpoint = endpoint
        self.detail = detail


def connection_detail(
    exc: BaseException, read_timeout: float | None = None, ca_source: str = "the CA bundle"
) -> str:
    """A short, uniform description of a connection-level failure (urllib3/OS errors); a TLS
    failure names ``ca_source``, where the CA came from (kubeconfig, service account, file)."""
    reason: BaseException = exc
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        reason = exc.reason
    text = str(reason)
    lowered = text.lower()
    # Order matters: urllib3's NewConnectionError (refused, DNS) subclasses ConnectTimeoutError.
    if "refused" in lowered:
        return "connection refused"
    if isinstance(reason, urllib3.exceptions.NameResolutionError) or "resolve" in lowered:
        return "the host name does not resolve"
    if isinstance(reason, urllib3.exceptions.SSLError) or "certificate" in lowered or "ssl" in lowered:
        return f"TLS failed ({_short(text)}); check {ca_source}"
    if isinstance(reason, urllib3.exceptions.ReadTimeoutError) or "read timed out" in lowered:
        after = f" within {read_timeout:g}s" if read_timeout else ""
        return f"the server accepted the connection but did not answer{after}"
    if isinstance(reason, urllib3.exceptions.ConnectTimeoutError | TimeoutError) or "timed out" in lowered:
        return "the connection timed out (no TCP answer)"
    return _short(text)


def _short(text: str, limit: int = 160) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _error_from(status: int, http_reason: str, data: bytes) -> KubeError:
    """The typed error of a non-2xx answer: reason and message from its ``Status`` body when it
    has one, else the HTTP reason phrase and the body's text."""
    reason = http_reason
    message = data.decode("utf-8", errors="replace")
    try:
        body = json.loads(data) if data else {}
        if isinstance(body, dict):
            reason = str(body.get("reason") or reason)
            message = str(body.get("message") or message)
    except ValueError:
        pass
    return _error(status, reason, message)


def _error(status: int, reason: str, message: str) -> KubeError:
    if status == 404:
        return NotFound(status, reason, message)
    if status == 409:
        cls = AlreadyExists if reason == "AlreadyExists" else Conflict
        return cls(status, reason, message)
    if status == 410:
        return Gone(status, reason, message)
    if status == 422:
        return Invalid(status, reason, message)
    return KubeError(status, reason, message)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- watch stream -------------------------------------------------------------------------------


class WatchStream(Iterator[tuple[str, Obj]]):
    """Iterates ``(type, object)`` watch events, BOOKMARKs included (their object carries only
    ``metadata.resourceVersion``). Ends when the server ends the watch (timeout); raises
    :class:`Gone` on a 410 ERROR event, :class:`KubeError` on another ERROR event and
    :class:`WatchDropped` if the connection breaks. :meth:`close` may be called from another
    thread to interrupt a blocked read."""

    def __init__(self, response: Any, kind: str, api_version: str) -> None:
        self._resp = response
        self._lines = _lines(response)
        self._kind = kind
        self._api_version = api_version
        self._closed = False

    def __iter__(self) -> WatchStream:
        return self

    def __next__(self) -> tuple[str, Obj]:
        while True:
            if self._closed:
                raise StopIteration
            try:
                line = next(self._lines)
            except StopIteration:
                self.close()
                raise
            except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
                was_closed = self._closed
                self.close()
                if was_closed:
                    raise StopIteration from None
                raise WatchDropped(str(exc)) from exc
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except ValueError as exc:  # a line cut short by a broken connection
                self.close()
                raise WatchDropped(f"undecodable watch event: {exc}") from exc
            kind = str(event.get("type") or "")
            obj = event.get("object") or {}
            if kind == "ERROR":
                self.close()
                raise _error(
                    int(obj.get("code") or 500), str(obj.get("reason") or ""), str(obj.get("message") or "")
                )
            if kind != "BOOKMARK":
                obj.setdefault("kind", self._kind)
                obj.setdefault("apiVersion", self._api_version)
            return kind, obj

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for method in ("shutdown", "close", "release_conn"):
            try:
                getattr(self._resp, method)()
            except Exception:  # closing a broken stream may fail in many ways; it is closed anyway
                pass


def _lines(resp: Any) -> Iterator[bytes]:
    """The body's newline-delimited lines as they arrive (each chunk as the server flushed it).
    A last line without its newline is still yielded: if the connection was cut inside it, it does
    not decode and the stream reports the drop."""
    pending = bytearray()  # the unfinished line: appended to, not re-copied per chunk
    for chunk in resp.stream(amt=None, decode_content=False):
        if not chunk:
            continue
        if b"\n" not in chunk:  # a large object arriving in many small chunks: O(size) in all
            pending += chunk
            continue
        first, *complete, rest = chunk.split(b"\n")
        pending += first
        yield bytes(pending)
        yield from complete
        pending = bytearray(rest)
    if pending:
        yield bytes(pending)


# ---- client -------------------------------------------------------------------------------------

#: Seconds to wait for the TCP (and TLS) connection to the API server.
CONNECT_TIMEOUT = 5.0
#: Seconds to wait for an answer to a (non-watch) request. A read timeout is not retried, so a
#: silent server costs this once: plan and gc give up within ~30 s instead of waiting forever.
READ_TIMEOUT = 15.0
#: A watch's read timeout is the server-side watch timeout plus this much: the server ends a watch
#: cleanly at its timeout, so only a dead connection ever hits ours.
WATCH_READ_MARGIN = 30.0

CORE = "/api/v1"
COORDINATION = "/apis/coordination.k8s.io/v1"


def _page_items(raw: list[Obj], kind: str, api_version: str, transform: Transform | None) -> list[Obj]:
    """One list page's items with ``kind``/``apiVersion`` set, each transformed as it is taken:
    ``raw`` is emptied item by item, so an untrimmed object is freed once its transform returns."""
    out: list[Obj] = []
    raw.reverse()
    while raw:
        item = raw.pop()
        item.setdefault("kind", kind)
        item.setdefault("apiVersion", api_version)
        out.append(transform(item) if transform is not None else item)
    return out


#: What ``quote`` leaves as it is (its always-safe characters): every valid object name.
_PLAIN_SEGMENT = re.compile(r"[A-Za-z0-9_.~-]+")


def _seg(name: str) -> str:
    """One path segment (a name or namespace), escaped; a plain name is its own escape."""
    return name if _PLAIN_SEGMENT.fullmatch(name) else quote(name, safe="")


def _ns(namespace: str, plural: str, name: str | None = None, sub: str | None = None) -> str:
    path = f"{CORE}/namespaces/{_seg(namespace)}/{plural}"
    if name is not None:
        path += "/" + _seg(name)
    return path + "/" + sub if sub else path


#: The aggregation key's message for a combined Event: one per object, type and reason, whatever
#: the message (lbprov's messages never hold a NUL).
COMBINED_KEY = "\x00combined"


class KubeClient:
    """Calls the controller, the demo and the tests make; objects are dicts in the API's JSON.

    Every request has a connect and a read timeout (:data:`CONNECT_TIMEOUT`, :data:`READ_TIMEOUT`;
    watches: the watch's own timeout plus :data:`WATCH_READ_MARGIN`); a request that gets no HTTP
    answer raises :class:`KubeUnreachable` naming the endpoint.
    """

    def __init__(
        self,
        config: ClusterConfig | Transport,
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
    ) -> None:
        self.transport = config if isinstance(config, Transport) else Transport(config)
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._events: OrderedDict[tuple[str, ...], tuple[str, str, int]] = OrderedDict()
        self._events_lock = threading.Lock()
        #: Page size of list calls (``limit``); lists follow ``continue`` tokens to the end.
        self.page_size = 500

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def from_kubeconfig(cls, path: str | None = None, context: str | None = None) -> KubeClient:
        """A kubeconfig file (``path``, else ``$KUBECONFIG``, else ``~/.kube/config``), read by the
        official loader (which this imports, lazily)."""
        # The library reads $KUBECONFIG once, at import; read it now so a changed environment counts.
        path = path or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
        return cls(kubeconfig_config(path, context))

    @classmethod
    def in_cluster(cls) -> KubeClient:
        """Service-account token and CA plus ``KUBERNETES_SERVICE_HOST``/``PORT`` (the token is
        re-read once a minute, as projected tokens rotate). ``LBPROV_INCLUSTER_TOKEN_FILE`` and
        ``LBPROV_INCLUSTER_CA_FILE`` override the file locations."""
        return cls(in_cluster_config())

    @classmethod
    def for_url(cls, url: str, *, token: str | None = None, ca_file: str | None = None) -> KubeClient:
        return cls(url_config(url, token=token, ca_file=ca_file))

    @classmethod
    def auto(cls, kubeconfig: str | None = None, context: str | None = None) -> KubeClient:
        """In-cluster when ``KUBERNETES_SERVICE_HOST`` is set and no kubeconfig is given, else the
        kubeconfig (``--kubeconfig``, ``$KUBECONFIG`` or ``~/.kube/config``)."""
        if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            return cls.in_cluster()
        return cls.from_kubeconfig(kubeconfig, context)

    @property
    def host(self) -> str:
        return self.transport.config.host

    def close(self) -> None:
        self.transport.close()

    # -- plumbing -------------------------------------------------------------------------------

    @property
    def timeouts(self) -> tuple[float, float]:
        """``(connect, read)`` seconds of every non-watch request."""
        return (self.connect_timeout, self.read_timeout)

    def unreachable(self, exc: BaseException) -> KubeUnreachable:
        return KubeUnreachable(
            self.host, connection_detail(exc, self.read_timeout, self.transport.config.ca_source)
        )

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: Any = None,
        content_type: str = "application/json",
        decode: bool = True,
    ) -> Obj:
        """The answer's object; ``decode=False``: ``{}`` for a success whose body the caller does
        not read (an Event's POST: the whole stored object decoded for nothing). Errors are always
        decoded."""
        try:
            resp = self.transport.request(
                method, path, query=query, body=body, content_type=content_type, timeout=self.timeouts
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise self.unreachable(exc) from exc
        if not 200 <= resp.status <= 299:
            raise _error_from(resp.status, resp.reason, resp.data)
        if not decode:
            return {}
        result = resp.json()
        return result if isinstance(result, dict) else {}

    def _patch(self, path: str, patch: Obj | list[Any], merge: str, *, decode: bool = True) -> Obj:
        content_type = MERGE_TYPES["json" if isinstance(patch, list) else merge]
        return self._call("PATCH", path, body=patch, content_type=content_type, decode=decode)

    def _list(
        self,
        path: str,
        kind: str,
        api_version: str,
        query: Query | None = None,
        transform: Transform | None = None,
    ) -> tuple[list[Obj], str]:
        """Every page of a list (``continue`` tokens followed to the end) and its resourceVersion.

        ``transform`` (e.g. the informer's trim) runs on each item as its page arrives, and the
        page is dropped before the next one is fetched: a list of 10,000 Services then holds the
        untrimmed objects of one page at most, not all of them at once.
        """
        items: list[Obj] = []
        token: str | None = None
        while True:
            page: dict[str, str | int | bool | None] = dict(query or {}, limit=self.page_size)
            if token:
                page["continue"] = token
            body = self._call("GET", path, query=page)
            meta = body.get("metadata") or {}
            items += _page_items(body.pop("items", None) or [], kind, api_version, transform)
            del body
            token = meta.get("continue")
            if not token:
                return items, str(meta.get("resourceVersion") or "")

    def _watch(
        self, path: str, kind: str, api_version: str, resource_version: str, timeout_seconds: int
    ) -> WatchStream:
        query: Query = {
            "watch": True,
            "resourceVersion": resource_version,
            "allowWatchBookmarks": True,
            "timeoutSeconds": timeout_seconds,
        }
        try:
            resp = self.transport.stream(
                path, query=query, timeout=(self.connect_timeout, timeout_seconds + WATCH_READ_MARGIN)
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise WatchDropped(str(self.unreachable(exc))) from exc
        if not 200 <= resp.status <= 299:
            try:
                data = resp.data
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise WatchDropped(str(self.unreachable(exc))) from exc
            finally:
                resp.release_conn()
            raise _error_from(resp.status, resp.reason or "", data)
        return WatchStream(resp, kind, api_version)

    @staticmethod
    def _optional(fn: Callable[[], T]) -> T | None:
        try:
            return fn()
        except NotFound:
            return None

    # -- services -------------------------------------------------------------------------------

    def list_services(
        self,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        transform: Transform | None = None,
    ) -> tuple[list[Obj], str]:
        """Every Service (or those of ``namespace``) and the list's resourceVersion; ``transform``
        runs on each item as its page arrives (see :meth:`_list`)."""
        path = f"{CORE}/services" if namespace is None else _ns(namespace, "services")
        return self._list(path, "Service", "v1", {"labelSelector": label_selector}, transform)

    def watch_services(
        self, resource_version: str, timeout_seconds: int = 300, *, namespace: str | None = None
    ) -> WatchStream:
        path = f"{CORE}/services" if namespace is None else _ns(namespace, "services")
        return self._watch(path, "Service", "v1", resource_version, timeout_seconds)

    def get_service(self, namespace: str, name: str) -> Obj | None:
        return self._optional(lambda: self._call("GET", _ns(namespace, "services", name)))

    def create_service(self, namespace: str, body: Obj) -> Obj:
        return self._call("POST", _ns(namespace, "services"), body=body)

    def replace_service(self, namespace: str, name: str, body: Obj) -> Obj:
        return self._call("PUT", _ns(namespace, "services", name), body=body)

    def delete_service(self, namespace: str, name: str) -> Obj:
        return self._call("DELETE", _ns(namespace, "services", name))

    def patch_service(
        self, namespace: str, name: str, patch: Obj | list[Any], *, merge: str = "merge"
    ) -> Obj:
        """Patch the Service object (status changes are ignored by the server). ``merge``:
        ``"merge"`` (RFC 7386, the default: a finalizers list replaces the old one), ``"strategic"``
        or ``"json"`` (RFC 6902; implied by a list body)."""
        return self._patch(_ns(namespace, "services", name), patch, merge)

    def patch_service_status(self, namespace: str, name: str, patch: Obj, *, merge: str = "merge") -> Obj:
        """Patch the ``status`` subresource (only status changes take effect)."""
        return self._patch(_ns(namespace, "services", name, "status"), patch, merge)

    def replace_service_status(self, namespace: str, name: str, body: Obj) -> Obj:
        return self._call("PUT", _ns(namespace, "services", name, "status"), body=body)

    # -- nodes ----------------------------------------------------------------------------------

    def list_nodes(
        self, *, label_selector: str | None = None, transform: Transform | None = None
    ) -> tuple[list[Obj], str]:
        """Every Node and the list's resourceVersion; ``transform`` as in :meth:`list_services`."""
        return self._list(f"{CORE}/nodes", "Node", "v1", {"labelSelector": label_selector}, transform)

    def watch_nodes(self, resource_version: str, timeout_seconds: int = 300) -> WatchStream:
        return self._watch(f"{CORE}/nodes", "Node", "v1", resource_version, timeout_seconds)

    def get_node(self, name: str) -> Obj | None:
        return self._optional(lambda: self._call("GET", f"{CORE}/nodes/{_seg(name)}"))

    def create_node(self, body: Obj) -> Obj:
        return self._call("POST", f"{CORE}/nodes", body=body)

    def patch_node(self, name: str, patch: Obj | list[Any], *, merge: str = "merge") -> Obj:
        return self._patch(f"{CORE}/nodes/{_seg(name)}", patch, merge)

    def patch_node_status(self, name: str, patch: Obj) -> Obj:
        return self._patch(f"{CORE}/nodes/{_seg(name)}/status", patch, "merge")

    def delete_node(self, name: str) -> Obj:
        return self._call("DELETE", f"{CORE}/nodes/{_seg(name)}")

    # -- namespaces -----------------------------------------------------------------------------

    def create_namespace(self, name: str) -> Obj:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        return self._call("POST", f"{CORE}/namespaces", body=body)

    def get_namespace(self, name: str) -> Obj | None:
        return self._optional(lambda: self._call("GET", f"{CORE}/namespaces/{_seg(name)}"))

    # -- config maps ----------------------------------------------------------------------------

    def get_config_map(self, namespace: str, name: str) -> Obj | None:
        return self._optional(lambda: self._call("GET", _ns(namespace, "configmaps", name)))

    def create_config_map(self, namespace: str, body: Obj) -> Obj:
        return self._call("POST", _ns(namespace, "configmaps"), body=body)

    # -- events ---------------------------------------------------------------------------------

    def list_events(self, namespace: str | None = None, *, field_selector: str | None = None) -> list[Obj]:
        path = f"{CORE}/events" if namespace is None else _ns(namespace, "events")
        return self._list(path, "Event", "v1", {"fieldSelector": field_selector})[0]

    def create_event(
        self,
        obj: Obj,
        *,
        type: str,
        reason: str,
        message: str,
        component: str = "lbprov",
        timestamp: str | None = None,
        name: str | None = None,
        combined: bool = False,
    ) -> bool:
        """Record a core/v1 Event about ``obj``, best effort (a failure is logged, not raised, as
        client-go's recorder does). A repeat of the same event patches ``count`` and
        ``lastTimestamp`` instead of creating another object, as client-go aggregates.
        ``timestamp`` (RFC 3339): when it happened, if earlier than now (an event posted from
        :class:`lbprov.controller.events.EventRecorder`'s queue keeps the time it was recorded).

        Returns False only if the API server could not be reached or did not answer in time (the
        caller may try again, as client-go's recorder does); an error the server answered with is
        logged and not worth repeating (True). ``name``: the new Event's name, fixed by a caller
        that may try again, so that a create the server stored before its answer was lost is
        found as ``AlreadyExists`` (stored) rather than made twice, as client-go names an event
        once. ``combined``: ``message`` is its group's combined message
        (:mod:`lbprov.kube.event_aggregation`): every such event about the object with this type and
        reason is one Event, whose repeats patch its message too, as client-go's correlator does."""
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        involved = {
            "apiVersion": obj.get("apiVersion") or "v1",
            "kind": obj.get("kind") or "Service",
            "name": meta.get("name"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        }
        if meta.get("namespace"):
            involved["namespace"] = meta["namespace"]
        key = (
            namespace,
            str(involved["kind"]),
            str(meta.get("name")),
            str(meta.get("uid")),
            type,
            reason,
            COMBINED_KEY if combined else message,
            component,
        )
        now = timestamp or _now()
        try:
            with self._events_lock:
                seen = self._events.get(key)
            if seen is not None:
                ev_ns, ev_name, count = seen
                repeat: Obj = {"count": count + 1, "lastTimestamp": now}
                if combined:
                    repeat["message"] = message
                try:
                    self._patch(
                        _ns(ev_ns, "events", ev_name),
                        repeat,
                        "merge",
                        decode=False,
                    )
                    self._remember_event(key, ev_ns, ev_name, count + 1)
                    return True
                except NotFound:
                    pass
            name = name or event_name(str(meta.get("name")))
            body = {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": name, "namespace": namespace},
                "involvedObject": involved,
                "type": type,
                "reason": reason,
                "message": message,
                "source": {"component": component},
                "reportingComponent": component,
                "reportingInstance": os.environ.get("HOSTNAME", ""),
                "count": 1,
                "firstTimestamp": now,
                "lastTimestamp": now,
            }
            try:
                self._call("POST", _ns(namespace, "events"), body=body, decode=False)
            except AlreadyExists:
                pass  # an earlier try of this event was stored, its answer lost
            self._remember_event(key, namespace, name, 1)
        except (KubeError, KubeUnreachable, urllib3.exceptions.HTTPError, OSError) as exc:
            log.warning("could not record event %s on %s/%s: %s", reason, namespace, meta.get("name"), exc)
            return isinstance(exc, KubeError)  # answered: not worth repeating; else worth a retry
        return True

    def _remember_event(self, key: tuple[str, ...], namespace: str, name: str, count: int) -> None:
        with self._events_lock:
            self._events[key] = (namespace, name, count)
            self._events.move_to_end(key)
            while len(self._events) > 4096:
                self._events.popitem(last=False)

    # -- leases ---------------------------------------------------------------------------------

    def get_lease(self, namespace: str, name: str) -> Obj | None:
        return self._optional(lambda: self._call("GET", _lease(namespace, name)))

    def create_lease(self, namespace: str, body: Obj) -> Obj:
        return self._call("POST", _lease(namespace), body=body)

    def replace_lease(self, namespace: str, name: str, body: Obj) -> Obj:
        """Replace with the body's ``metadata.resourceVersion`` as precondition (409 if stale)."""
        return self._call("PUT", _lease(namespace, name), body=body)

    def delete_lease(self, namespace: str, name: str) -> Obj:
        return self._call("DELETE", _lease(namespace, name))


def _lease(namespace: str, name: str | None = None) -> str:
    path = f"{COORDINATION}/namespaces/{_seg(namespace)}/leases"
    return path if name is None else f"{path}/{_seg(name)}"
