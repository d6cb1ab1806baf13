"""A local Kubernetes API server for the demo and the tests (``python -m lbprov.sandbox.kube_api``).

It speaks the real wire protocol -- discovery, JSON objects, ``Status`` errors, list/watch with
resourceVersions, the three patch types and server-side apply with field managers, protobuf request
bodies, the OpenAPI documents, ``fieldValidation``, the status subresource, finalizers and NodePort
allocation -- so the official Python client and ``kubectl`` 1.27 to 1.33 work against it unchanged. State and
semantics live in :mod:`lbprov.sandbox.kube_store`; this module is the HTTP layer.

Test hooks: :meth:`KubeAPIServer.drop_watches` closes every watch stream abruptly and
:meth:`KubeAPIServer.expire_resource_versions` compacts history so older resourceVersions give
``410 Gone``. Every resource request is recorded as ``(verb, group, resource, subresource,
namespace)`` with Kubernetes verbs, so an RBAC role can be checked against what a client did.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import queue
import shutil
import signal
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

import yaml

from lbprov.sandbox.kube_errors import ApiError, bad_request, method_not_allowed, unauthorized
from lbprov.sandbox.kube_fields import check as check_fields
from lbprov.sandbox.kube_fields import mode as field_validation_mode
from lbprov.sandbox.kube_http import parse_request as parse_http_request
from lbprov.sandbox.kube_managed import CURRENT as CURRENT_WRITE
from lbprov.sandbox.kube_managed import WriteContext, manager_from
from lbprov.sandbox.kube_metrics import METRICS_CONTENT_TYPE, ApiMetrics
from lbprov.sandbox.kube_openapi import V2_PROTOBUF
from lbprov.sandbox.kube_openapi import document_for as openapi_document
from lbprov.sandbox.kube_openapi import root_document as openapi_root
from lbprov.sandbox.kube_openapi import v2_protobuf as openapi_v2
from lbprov.sandbox.kube_protobuf import decode_object as decode_protobuf
from lbprov.sandbox.kube_protobuf import is_protobuf
from lbprov.sandbox.kube_selectors import parse_field_selector, parse_label_selector
from lbprov.sandbox.kube_store import RESOURCES, Obj, Resource, Store
from lbprov.sandbox.kube_tables import to_table

log = logging.getLogger(__name__)

#: The namespace the controller runs in; it exists from the start, like default and kube-system.
CONTROLLER_NAMESPACE = "lbprov-system"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = ("application/apply-patch+yaml", "application/apply-patch+json", "application/apply-patch+cbor")
KUBE_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-lbprov-sandbox",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.23.0",
    "compiler": "gc",
}


#: kube-apiserver's ``verb`` metric label: the HTTP method, except LIST and WATCH.
_METRIC_VERBS = {
    "get": "GET",
    "list": "LIST",
    "watch": "WATCH",
    "create": "POST",
    "update": "PUT",
    "patch": "PATCH",
    "delete": "DELETE",
    "deletecollection": "DELETE",
}


class RecordedRequest(NamedTuple):
    """One resource request as RBAC sees it (namespace is None for cluster-scope requests)."""

    verb: str
    group: str
    resource: str
    subresource: str
    namespace: str | None


class _Route(NamedTuple):
    resource: Resource
    namespace: str | None
    name: str | None
    subresource: str


SUBRESOURCES: dict[str, tuple[str, ...]] = {
    "services": ("status",),
    "nodes": ("status",),
    "namespaces": ("status",),
}


def _resource_list(group_version: str) -> dict[str, Any]:
    resources: list[dict[str, Any]] = []
    for r in RESOURCES.values():
        if r.api_version != group_version:
            continue
        entry: dict[str, Any] = {
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": ["get", "list", "watch"]
            if r.read_only
            else ["create", "delete"]
            + (["deletecollection"] if r.plural != "namespaces" else [])
            + ["get", "list", "patch", "update", "watch"],
        }
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        resources.append(entry)
        for sub in SUBRESOURCES.get(r.plural, ()):
            resources.append(
                {
                    "name": f"{r.plural}/{sub}",
                    "singularName": "",
                    "namespaced": r.namespaced,
                    "kind": r.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }


def _group_list() -> dict[str, Any]:
    groups: dict[str, dict[str, Any]] = {}
    for r in RESOURCES.values():
        if r.group:
            gv = {"groupVersion": r.api_version, "version": r.version}
            groups[r.group] = {"name": r.group, "versions": [gv], "preferredVersion": gv}
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": list(groups.values())}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer
    #: Buffered writes: a response's headers and body leave in one send at the end of the request
    #: (``handle_one_request`` flushes), not two (with TCP_NODELAY, two packets and two wake-ups of
    #: the client). Watch streams flush each chunk themselves.
    wbufsize = -1
    raw_requestline: bytes  # set by handle_one_request (not declared by typeshed)

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests start many servers
        pass

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without TCP_NODELAY, Nagle's algorithm and
        # the client's delayed ACK add ~40 ms to every response.
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def parse_request(self) -> bool:
        return parse_http_request(self)  # the standard library's, without the email package

    def handle_expect_100(self) -> bool:
        sent = super().handle_expect_100()
        self.wfile.flush()  # the client waits for "100 Continue" before it sends the body
        return sent

    # -- plumbing -------------------------------------------------------------------------------

    _headers_sent = False

    _code = 0

    def send_response(self, code: int, message: str | None = None) -> None:
        self._headers_sent = True
        self._code = code
        super().send_response(code, message)

    _warnings: list[str] = []

    def _send_json(self, code: int, body: Any) -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(code)
        for text in self._warnings:  # RFC 7234 warn-code 299, as kube-apiserver sends them
            self.send_header("Warning", '299 - "' + text.replace("\\", "\\\\").replace('"', '\\"') + '"')
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_bytes(self, code: int, data: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, err: ApiError) -> None:
        self._send_json(err.code, err.status())

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length:
            return self.rfile.read(int(length))
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return b""

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    # -- dispatch -------------------------------------------------------------------------------

    def _handle(self, method: str) -> None:
        api = self.server.api
        self._headers_sent = False
        self._warnings = []
        self._code = 0
        counted = (method, "")
        try:
            body = self._read_body()
            if api.token is not None:
                scheme, _, presented = (self.headers.get("Authorization") or "").partition(" ")
                if scheme.lower() != "bearer" or presented.strip() != api.token:
                    raise unauthorized()
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
            path = url.path.rstrip("/") or "/"
            if self._non_resource(method, path):
                return
            route, watch_path = self._route(path)
            if route is None:
                api.record_non_resource(method, path)
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            watch = watch_path or query.get("watch") in ("true", "1")
            verb = self._verb(method, route, watch)
            recorded = RecordedRequest(
                verb, route.resource.group, route.resource.plural, route.subresource, route.namespace
            )
            api.record(recorded, route.name)
            counted = (_METRIC_VERBS[verb], route.resource.plural)
            api.maybe_fail(recorded)
            if route.resource.read_only and verb not in ("get", "list", "watch"):
                raise ApiError(
                    405,
                    "MethodNotAllowed",
                    f"the sandbox API server serves {route.resource.plural} for reading only "
                    "(it runs no workloads); the request is not allowed",
                )
            self._dispatch(verb, route, query, body)
        except ApiError as err:
            self._send_error(err)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
        except Exception as exc:  # a bug here must surface as a 500, not a silently closed socket
            log.exception("sandbox kube API: %s %s failed", method, self.path)
            self.close_connection = True
            if not self._headers_sent:
                self._send_error(ApiError(500, "InternalError", f"Internal error occurred: {exc}"))
        finally:
            api.metrics.count(counted[0], counted[1], self._code)

    def _non_resource(self, method: str, path: str) -> bool:
        api = self.server.api
        if method != "GET":
            return False
        body: Any
        if path == "/version":
            body = {**KUBE_VERSION, "platform": "linux/amd64"}
        elif path == "/api":
            host = f"{api.host}:{api.port}"
            body = {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
            }
        elif path == "/apis":
            body = _group_list()
        elif path == "/api/v1":
            body = _resource_list("v1")
        elif path.startswith("/apis/") and path.count("/") == 2:
            group = path.split("/")[2]
            groups = [g for g in _group_list()["groups"] if g["name"] == group]
            if not groups:
                return False
            body = {"kind": "APIGroup", "apiVersion": "v1", **groups[0]}
        elif path.startswith("/apis/") and path.count("/") == 3:
            gv = path[len("/apis/") :]
            if not any(r.api_version == gv for r in RESOURCES.values()):
                return False
            body = _resource_list(gv)
        elif path == "/metrics":
            api.record_non_resource(method, path)
            self._send_bytes(200, api.metrics.exposition(api.store), METRICS_CONTENT_TYPE)
            return True
        elif path == "/openapi/v2":
            api.record_non_resource(method, path)
            self._send_bytes(200, openapi_v2(), V2_PROTOBUF)
            return True
        elif path == "/openapi/v3":
            body = openapi_root()
        elif path.startswith("/openapi/v3/"):
            doc = openapi_document(path)
            if doc is None:
                return False
            body = doc
        elif path in ("/healthz", "/readyz", "/livez"):
            api.record_non_resource(method, path)
            data = b"ok"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return True
        else:
            return False
        api.record_non_resource(method, path)
        self._send_json(200, body)
        return True

    def _route(self, path: str) -> tuple[_Route | None, bool]:
        parts = [p for p in path.split("/") if p]
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None, False
        watch = False
        if rest[:1] == ["watch"]:
            watch, rest = True, rest[1:]
        ns: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
            ns, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            return None, False
        res = RESOURCES.get(rest[0])
        if res is None or res.group != group or res.version != version:
            return None, False
        if ns is not None and not res.namespaced:
            return None, False
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else ""
        if sub and sub not in SUBRESOURCES.get(res.plural, ()):
            return None, False
        if res.namespaced and ns is None and name is not None:
            return None, False
        return _Route(res, ns, name, sub), watch

    @staticmethod
    def _verb(method: str, route: _Route, watch: bool) -> str:
        if method == "GET":
            if route.name is None:
                return "watch" if watch else "list"
            return "watch" if watch else "get"
        return {
            "POST": "create",
            "PUT": "update",
            "PATCH": "patch",
            "DELETE": "delete" if route.name is not None else "deletecollection",
        }[method]

    def _json_body(self, body: bytes) -> Any:
        ctype = (self.headers.get("Content-Type") or "application/json").split(";")[0].strip()
        if not body:
            raise bad_request("the body of the request is empty")
        if is_protobuf(ctype):
            return decode_protobuf(body)
        try:
            if ctype in ("application/yaml", "application/apply-patch+yaml"):
                return yaml.safe_load(body)
            return json.loads(body)
        except (ValueError, yaml.YAMLError) as exc:
            raise bad_request(f"the body of the request could not be decoded: {exc}") from exc

    def _validated(self, res: Resource, query: dict[str, str], obj: Any, *, patch: bool = False) -> Any:
        """The body with unknown fields handled as ``fieldValidation`` asks (see kube_fields)."""
        validation = field_validation_mode(query)
        if not isinstance(obj, dict):
            return obj
        checked, warnings = check_fields(obj, res.group, res.version, res.kind, validation, patch=patch)
        self._warnings.extend(warnings)
        return checked

    def _apply(
        self, res: Resource, ns: str | None, route: _Route, query: dict[str, str], body: bytes, dry_run: bool
    ) -> None:
        """Server-side apply (see :mod:`lbprov.sandbox.kube_managed`)."""
        if not query.get("fieldManager"):
            raise bad_request("PATCH: fieldManager is required for apply requests")
        if query.get("force") not in (None, "", "true", "false"):
            raise bad_request(f'force: Invalid value: "{query["force"]}": must be true or false')
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype == "application/apply-patch+cbor":
            raise ApiError(415, "UnsupportedMediaType", "the sandbox API server does not decode CBOR")
        config = self._validated(res, query, self._json_body(body))
        ctx = WriteContext(manager_from(query, None), "Apply", force=query.get("force") == "true")
        assert route.name is not None
        obj, created = self.server.api.store.apply(
            res.plural, ns, route.name, config, ctx, subresource=route.subresource, dry_run=dry_run
        )
        self._send_object(201 if created else 200, res, obj, query)

    def _dispatch(self, verb: str, route: _Route, query: dict[str, str], body: bytes) -> None:
        token = CURRENT_WRITE.set(WriteContext(manager_from(query, self.headers.get("User-Agent"))))
        try:
            self._dispatch_request(verb, route, query, body)
        finally:
            CURRENT_WRITE.reset(token)

    def _dispatch_request(self, verb: str, route: _Route, query: dict[str, str], body: bytes) -> None:
        store = self.server.api.store
        res = route.resource
        ns = route.namespace
        dry_run = query.get("dryRun") == "All"
        if verb in ("list", "watch") and route.name is None:
            labels = parse_label_selector(query.get("labelSelector"))
            fields = parse_field_selector(query.get("fieldSelector"), res.plural)
            if verb == "watch":
                self._serve_watch(res, ns, labels, fields, query)
                return
            limit = int(query["limit"]) if query.get("limit", "").isdigit() else None
            items, rv, token, remaining = store.list_objects(
                res.plural, ns, labels, fields, limit, query.get("continue") or None
            )
            meta: dict[str, Any] = {"resourceVersion": rv}
            if token:
                meta["continue"] = token
                meta["remainingItemCount"] = remaining
            if self._wants_table():
                self._send_json(
                    200,
                    to_table(
                        res.plural, items, include=query.get("includeObject", "Metadata"), list_meta=meta
                    ),
                )
                return
            self._send_json(
                200,
                {
                    "kind": f"{res.kind}List",
                    "apiVersion": res.api_version,
                    "metadata": meta,
                    "items": [_list_item(o) for o in items],
                },
            )
            return
        if verb == "watch":  # watch of one object: a field selector on its name
            assert route.name is not None
            fields = parse_field_selector(f"metadata.name={route.name}", res.plural)
            self._serve_watch(res, ns, [], fields, query)
            return
        if verb == "create":
            if route.name is not None:
                raise method_not_allowed()
            obj = store.create(
                res.plural, ns, self._validated(res, query, self._json_body(body)), dry_run=dry_run
            )
            self._send_object(201, res, obj, query)
            return
        if verb == "deletecollection":
            if res.plural == "namespaces" or (res.namespaced and ns is None):
                raise method_not_allowed()
            labels = parse_label_selector(query.get("labelSelector"))
            fields = parse_field_selector(query.get("fieldSelector"), res.plural)
            deleted = store.delete_collection(res.plural, ns, labels, fields, dry_run=dry_run)
            self._send_json(
                200,
                {
                    "kind": f"{res.kind}List",
                    "apiVersion": res.api_version,
                    "metadata": {"resourceVersion": str(store.rv)},
                    "items": [_list_item(o) for o in deleted],
                },
            )
            return
        assert route.name is not None
        if verb == "get":
            obj = store.get(res.plural, ns, route.name)
        elif verb == "update":
            obj = store.replace(
                res.plural,
                ns,
                route.name,
                self._validated(res, query, self._json_body(body)),
                subresource=route.subresource,
                dry_run=dry_run,
            )
        elif verb == "patch":
            ctype = self.headers.get("Content-Type") or ""
            if ctype.split(";")[0].strip() in APPLY_PATCH:
                self._apply(res, ns, route, query, body, dry_run)
                return
            patch = self._json_body(body)
            if ctype.split(";")[0].strip() in (MERGE_PATCH, STRATEGIC_PATCH):
                patch = self._validated(res, query, patch, patch=True)
            obj = store.patch(
                res.plural,
                ns,
                route.name,
                ctype,
                patch,
                subresource=route.subresource,
                dry_run=dry_run,
            )
        elif verb == "delete":
            if route.subresource:
                raise method_not_allowed()
            options = self._json_body(body) if body else None
            obj = store.delete(res.plural, ns, route.name, options, dry_run=dry_run)
        else:  # pragma: no cover - _verb covers every method
            raise method_not_allowed()
        self._send_object(200, res, obj, query)

    def _wants_table(self) -> bool:
        accept = self.headers.get("Accept") or ""
        first = accept.split(",")[0]
        return "as=Table" in first

    def _send_object(self, code: int, res: Resource, obj: Obj, query: dict[str, str]) -> None:
        if self._wants_table():
            self._send_json(code, to_table(res.plural, [obj], include=query.get("includeObject", "Metadata")))
        else:
            self._send_json(code, obj)

    # -- watch ----------------------------------------------------------------------------------

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _serve_watch(
        self, res: Resource, ns: str | None, labels: Any, fields: Any, query: dict[str, str]
    ) -> None:
        api = self.server.api
        store = api.store
        timeout = float(query["timeoutSeconds"]) if query.get("timeoutSeconds", "").isdigit() else 1800.0
        bookmarks = query.get("allowWatchBookmarks") == "true"
        send_initial = query.get("sendInitialEvents") == "true"
        table = self._wants_table()
        include = query.get("includeObject", "Metadata")
        watcher, initial, error = store.open_watch(
            res.plural, ns, labels, fields, query.get("resourceVersion"), send_initial
        )
        conn = self.connection

        def abort() -> None:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        watcher.on_drop = abort
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "no-cache, private")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()

            first_table = True

            def send(kind: str, obj: Obj) -> None:
                nonlocal first_table
                if table and kind in ("ADDED", "MODIFIED", "DELETED"):
                    obj = to_table(res.plural, [obj], include=include, with_columns=first_table)
                    first_table = False
                self._write_chunk(
                    json.dumps({"type": kind, "object": obj}, separators=(",", ":")).encode() + b"\n"
                )

            def bookmark(rv: int, initial_end: bool = False) -> None:
                meta: dict[str, Any] = {"resourceVersion": str(rv)}
                if initial_end:
                    meta["annotations"] = {"k8s.io/initial-events-end": "true"}
                send("BOOKMARK", {"kind": res.kind, "apiVersion": res.api_version, "metadata": meta})

            if error is not None:
                send("ERROR", error.status())
                self._write_chunk(b"")
                return
            for kind, obj in initial:
                send(kind, obj)
            if send_initial and bookmarks:
                bookmark(
                    max([int(o["metadata"]["resourceVersion"]) for _, o in initial] + [store.window_start]),
                    True,
                )
            deadline = time.monotonic() + timeout
            last_sent = time.monotonic()
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    ev = watcher.events.get(timeout=min(remaining, api.bookmark_interval))
                except queue.Empty:
                    ev = None
                    if watcher.dropped:
                        break
                    if bookmarks and time.monotonic() - last_sent >= api.bookmark_interval:
                        rv = store.idle_bookmark_rv(watcher)
                        if rv is not None:
                            bookmark(rv)
                            last_sent = time.monotonic()
                    continue
                if ev is None or watcher.dropped:
                    break
                seen = watcher.translate(ev)
                if seen is not None:
                    send(*seen)
                    last_sent = time.monotonic()
            if watcher.dropped:
                self.close_connection = True
                return
            self._write_chunk(b"")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True
        finally:
            store.close_watch(watcher)


def _list_item(obj: Obj) -> Obj:
    """List items carry no kind/apiVersion on the wire (the list has them)."""
    return {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # bursts of new connections (workers, informers, benchmarks)
    api: KubeAPIServer
    ssl_context: ssl.SSLContext | None = None

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs in the request thread, so a slow client cannot stall accept().
        if self.ssl_context is not None:
            try:
                request = self.ssl_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        with self._open_lock:
            self._open.add(request)
        try:
            self.RequestHandlerClass(request, client_address, self)  # type: ignore[arg-type]
        finally:
            with self._open_lock:
                self._open.discard(request)

    def close_connections(self) -> None:
        """Cut every open client connection (keep-alive ones included): a stopped server is gone."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hanging up mid-stream are normal (dropped watches)


class KubeAPIServer:
    """The sandbox API server; use as a context manager or ``start()``/``stop()``."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        tls: bool = False,
        token: str | None = None,
        watch_window: int = 1000,
        bookmark_interval: float = 1.0,
        namespaces: tuple[str, ...] = (CONTROLLER_NAMESPACE,),
        service_node_port_range: str = "30000-32767",
    ) -> None:
        """``service_node_port_range``: kube-apiserver's ``--service-node-port-range`` ("FROM-TO",
        inclusive), e.g. wider for a benchmark with more Services than the default's 2,768 ports."""
        self.host = host
        self.port = port
        self.tls = tls
        self.token = token
        self.bookmark_interval = bookmark_interval
        lo, _, hi = service_node_port_range.partition("-")
        if not (lo.strip().isdigit() and hi.strip().isdigit() and 1 <= int(lo) <= int(hi) <= 65535):
            raise ValueError(
                f"service_node_port_range must be 'FROM-TO' within 1-65535, not {service_node_port_range!r}"
            )
        self.store = Store(watch_window=watch_window, namespaces=namespaces, node_ports=(int(lo), int(hi)))
        self.metrics = ApiMetrics()
        self.url = ""
        self.ca_file: str | None = None
        self._tls_dir: str | None = None
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._requests: list[RecordedRequest] = []
        self._names: list[str | None] = []
        self._faults: list[list[Any]] = []
        self._non_resource: list[tuple[str, str]] = []
        self._record_lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> KubeAPIServer:
        httpd = _HTTPServer((self.host, self.port), _Handler)
        httpd.api = self
        self.port = httpd.server_address[1]
        if self.tls:
            from lbprov.sandbox.kube_tls import make_certificates

            hosts = sorted({self.host, "127.0.0.1", "localhost", "kubernetes", "kubernetes.default.svc"})
            certs = make_certificates(hosts)
            self._tls_dir = certs.directory
            self.ca_file = certs.ca_file
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(certs.cert_file, certs.key_file)
            httpd.ssl_context = ctx
        scheme = "https" if self.tls else "http"
        self.url = f"{scheme}://{self.host}:{self.port}"
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="kube-api", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self.store.drop_watches()
            self._httpd.server_close()
            self._httpd.close_connections()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._tls_dir:
            shutil.rmtree(self._tls_dir, ignore_errors=True)
            self._tls_dir = None

    def __enter__(self) -> KubeAPIServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- clients --------------------------------------------------------------------------------

    def write_kubeconfig(self, path: str | os.PathLike[str], *, namespace: str = "default") -> str:
        """A kubeconfig for this server whose context uses ``namespace`` (mode 0600: it may hold
        the token)."""
        cluster: dict[str, Any] = {"server": self.url}
        if self.ca_file:
            cluster["certificate-authority"] = self.ca_file
        user: dict[str, Any] = {"token": self.token} if self.token else {}
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "lbprov-sandbox", "cluster": cluster}],
            "users": [{"name": "lbprov-sandbox", "user": user}],
            "contexts": [
                {
                    "name": "lbprov-sandbox",
                    "context": {
                        "cluster": "lbprov-sandbox",
                        "user": "lbprov-sandbox",
                        "namespace": namespace,
                    },
                }
            ],
            "current-context": "lbprov-sandbox",
            "preferences": {},
        }
        text = yaml.safe_dump(config, sort_keys=False)
        fd = os.open(os.fspath(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return os.fspath(path)

    # -- test hooks -----------------------------------------------------------------------------

    def drop_watches(self) -> None:
        """Close every open watch stream abruptly (no terminating chunk), as a network cut would."""
        self.store.drop_watches()

    def expire_resource_versions(self) -> None:
        """Compact history: watching from any resourceVersion issued so far gives 410 Gone."""
        self.store.expire_resource_versions()

    def fail_next(
        self,
        verb: str,
        resource: str,
        *,
        subresource: str = "",
        code: int = 500,
        reason: str = "InternalError",
        count: int = 1,
    ) -> None:
        """Answer the next ``count`` matching requests with an error (e.g. 409 Conflict, 429, 500),
        so clients' retry paths can be tested without racing a real writer."""
        with self._record_lock:
            self._faults.append([verb, resource, subresource, code, reason, count])

    def maybe_fail(self, req: RecordedRequest) -> None:
        with self._record_lock:
            for fault in self._faults:
                if (fault[0], fault[1], fault[2]) == (req.verb, req.resource, req.subresource) and fault[
                    5
                ] > 0:
                    fault[5] -= 1
                    code, reason = int(fault[3]), str(fault[4])
                    break
            else:
                return
        message = (
            "injected failure"
            if code != 409
            else (
                f"Operation cannot be fulfilled on {req.resource}: the object has been modified; "
                "please apply your changes to the latest version and try again"
            )
        )
        raise ApiError(code, reason, message)

    def open_watch_count(self) -> int:
        with self.store.lock:
            return len(self.store.watchers)

    # -- request recording ----------------------------------------------------------------------

    def record(self, req: RecordedRequest, name: str | None = None) -> None:
        with self._record_lock:
            self._requests.append(req)
            self._names.append(name)

    def record_non_resource(self, method: str, path: str) -> None:
        with self._record_lock:
            self._non_resource.append((method, path))

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every resource request so far."""
        with self._record_lock:
            return list(self._requests)

    @property
    def requests_with_names(self) -> list[tuple[RecordedRequest, str | None]]:
        """Each request with the object name it addressed (None for list/watch/create), for
        checking RBAC ``resourceNames``."""
        with self._record_lock:
            return list(zip(self._requests, self._names, strict=True))

    @property
    def non_resource_requests(self) -> list[tuple[str, str]]:
        with self._record_lock:
            return list(self._non_resource)

    def clear_requests(self) -> None:
        with self._record_lock:
            self._requests.clear()
            self._names.clear()
            self._non_resource.clear()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lbprov.sandbox.kube_api", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--tls", action="store_true", help="serve HTTPS with a throwaway CA")
    parser.add_argument("--token", default=None, help="require this bearer token")
    parser.add_argument("--kubeconfig", default=None, help="write a kubeconfig for kubectl here")
    args = parser.parse_args(argv)
    # Handle SIGTERM before printing the URL: a supervisor may stop us as soon as it reads it.
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server = KubeAPIServer(args.host, args.port, tls=args.tls, token=args.token).start()
    if args.kubeconfig:  # written before the URL is printed, so it exists once the URL is read
        server.write_kubeconfig(args.kubeconfig)
    print(server.url, flush=True)
    if args.kubeconfig:
        print(f"kubeconfig: {args.kubeconfig}", flush=True)
    if server.ca_file:
        print(f"ca: {server.ca_file}", flush=True)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

__all__ = ["CONTROLLER_NAMESPACE", "KubeAPIServer", "RecordedRequest", "main"]
