"""Informers against the sandbox API server: sync, live events, and nothing missed across a
dropped watch or an expired resourceVersion (the relist diff emits what the watch could not)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from lbprov.kube.client import KubeClient
from lbprov.kube.informer import Informer
from lbprov.sandbox.kube_api import KubeAPIServer
from lbprov.testing import HeldPort, wait_for


class Recorder:
    """Collects informer callbacks and maintains the state they imply."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[tuple[str, str]] = []
        self.state: dict[str, str] = {}  # key -> resourceVersion as the callbacks told it

    def key(self, obj: dict[str, Any]) -> str:
        meta = obj["metadata"]
        return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]

    def add(self, obj: dict[str, Any]) -> None:
        with self.lock:
            self.calls.append(("add", self.key(obj)))
            self.state[self.key(obj)] = obj["metadata"]["resourceVersion"]

    def update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        assert self.key(old) == self.key(new)
        with self.lock:
            self.calls.append(("update", self.key(new)))
            self.state[self.key(new)] = new["metadata"]["resourceVersion"]

    def delete(self, obj: dict[str, Any]) -> None:
        with self.lock:
            self.calls.append(("delete", self.key(obj)))
            self.state.pop(self.key(obj), None)

    def seen(self, kind: str, key: str) -> bool:
        with self.lock:
            return (kind, key) in self.calls


@pytest.fixture
def server() -> Iterator[KubeAPIServer]:
    with KubeAPIServer(bookmark_interval=0.2) as srv:
        yield srv


@pytest.fixture
def client(server: KubeAPIServer) -> KubeClient:
    return KubeClient.for_url(server.url)


def service(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}, "spec": {"ports": [{"port": 80}]}}


def start(client: KubeClient, kind: str, rec: Recorder, **kw: Any) -> Informer:
    inf = Informer(
        client, kind, on_add=rec.add, on_update=rec.update, on_delete=rec.delete, backoff_initial=0.05, **kw
    )  # type: ignore[arg-type]
    inf.start()
    assert inf.wait_synced(10)
    return inf


def server_state(client: KubeClient) -> dict[str, str]:
    items, _ = client.list_services()
    return {
        f"{i['metadata']['namespace']}/{i['metadata']['name']}": i["metadata"]["resourceVersion"]
        for i in items
    }


def test_sync_then_live_events(client: KubeClient) -> None:
    client.create_service("default", service("before"))
    rec = Recorder()
    inf = start(client, "services", rec)
    try:
        assert inf.synced
        assert {k for _, k in rec.calls} == {"default/before", "default/kubernetes"}
        assert inf.get("default/before") is not None and len(inf.list()) == 2
        client.create_service("default", service("after"))
        client.patch_service("default", "before", {"metadata": {"labels": {"v": "2"}}})
        client.delete_service("default", "before")
        wait_for(lambda: rec.seen("delete", "default/before"), 10, "delete")
        assert rec.calls[-3:] == [
            ("add", "default/after"),
            ("update", "default/before"),
            ("delete", "default/before"),
        ]
        assert inf.get("default/before") is None
        got = inf.get("default/after")
        assert got is not None and got["kind"] == "Service"
        assert rec.state == server_state(client)
    finally:
        inf.stop()


def test_dropped_watch_misses_nothing(client: KubeClient, server: KubeAPIServer) -> None:
    for name in ("keep", "change", "remove"):
        client.create_service("default", service(name))
    rec = Recorder()
    inf = start(client, "services", rec)
    try:
        wait_for(lambda: server.open_watch_count() == 1, 10, "the watch")
        server.drop_watches()
        # Changes while the watch is down (the informer resumes from its last resourceVersion).
        client.patch_service("default", "change", {"metadata": {"labels": {"v": "2"}}})
        client.delete_service("default", "remove")
        client.create_service("default", service("new"))
        wait_for(lambda: rec.state == server_state(client), 10, "the informer to catch up")
        assert (
            rec.seen("update", "default/change")
            and rec.seen("delete", "default/remove")
            and rec.seen("add", "default/new")
        )
        assert inf.lists == 1, "a dropped watch resumes from the last resourceVersion, without a relist"
        assert inf.watches >= 2
        assert {o["metadata"]["name"] for o in inf.list()} == {"keep", "change", "new", "kubernetes"}
    finally:
        inf.stop()


def test_expired_resource_version_relists_and_diffs(client: KubeClient, server: KubeAPIServer) -> None:
    for name in ("keep", "change", "remove"):
        client.create_service("default", service(name))
    rec = Recorder()
    inf = start(client, "services", rec)
    try:
        wait_for(lambda: server.open_watch_count() == 1, 10, "the watch")
        # Compact history, then cut the watch: the resumed watch gets 410 and must relist.
        server.expire_resource_versions()
        server.drop_watches()
        client.patch_service("default", "change", {"metadata": {"labels": {"v": "2"}}})
        client.delete_service("default", "remove")
        client.create_service("default", service("new"))
        server.expire_resource_versions()
        wait_for(lambda: rec.state == server_state(client), 10, "the informer to catch up")
        assert inf.lists >= 2, "410 must force a relist"
        assert (
            rec.seen("update", "default/change")
            and rec.seen("delete", "default/remove")
            and rec.seen("add", "default/new")
        )
        # ... and the informer keeps watching after the relist.
        client.create_service("default", service("later"))
        wait_for(lambda: rec.seen("add", "default/later"), 10, "a live event after the relist")
    finally:
        inf.stop()


def test_repeated_drops_and_expiry_under_writes(client: KubeClient, server: KubeAPIServer) -> None:
    rec = Recorder()
    inf = start(client, "services", rec)
    try:
        for i in range(30):
            client.create_service("default", service(f"s{i}"))
            if i % 3 == 0:
                client.patch_service("default", f"s{i}", {"metadata": {"labels": {"n": str(i)}}})
            if i % 5 == 0 and i:
                client.delete_service("default", f"s{i - 1}")
            if i % 7 == 0:
                server.drop_watches()
            if i % 11 == 0:
                server.expire_resource_versions()
        wait_for(lambda: rec.state == server_state(client), 15, "convergence")
        assert {f"{o['metadata']['namespace']}/{o['metadata']['name']}" for o in inf.list()} == set(
            server_state(client)
        )
    finally:
        inf.stop()


def test_bookmarks_advance_resource_version(client: KubeClient) -> None:
    rec = Recorder()
    inf = start(client, "services", rec)
    try:
        before = int(inf.resource_version)
        client.create_node({"metadata": {"name": "n1"}})  # not a Service: only a bookmark tells us
        target = int(client.list_nodes()[1])
        wait_for(lambda: int(inf.resource_version) >= target, 10, "a bookmark")
        assert int(inf.resource_version) > before
        assert rec.calls == [("add", "default/kubernetes")]
    finally:
        inf.stop()


def test_node_informer_and_namespace_scope(client: KubeClient) -> None:
    client.create_node({"metadata": {"name": "n1"}, "spec": {"providerID": "aws:///z/i-1"}})
    client.create_namespace("apps")
    client.create_service("apps", service("inapps"))
    nodes_rec, svc_rec = Recorder(), Recorder()
    nodes = start(client, "nodes", nodes_rec)
    scoped = start(client, "services", svc_rec, namespace="apps")
    try:
        assert nodes.get("n1") is not None and nodes_rec.calls == [("add", "n1")]
        assert [o["metadata"]["name"] for o in scoped.list()] == ["inapps"]
        client.patch_node(
            "n1",
            {"metadata": {"labels": {"node.kubernetes.io/exclude-from-external-load-balancers": "true"}}},
        )
        client.create_service("default", service("elsewhere"))
        client.delete_node("n1")
        wait_for(lambda: nodes_rec.seen("delete", "n1"), 10, "node delete")
        assert nodes_rec.calls == [("add", "n1"), ("update", "n1"), ("delete", "n1")]
        assert scoped.get("default/elsewhere") is None
    finally:
        nodes.stop()
        scoped.stop()


def test_handler_errors_do_not_stop_the_informer(client: KubeClient) -> None:
    added: list[str] = []

    def flaky(obj: dict[str, Any]) -> None:
        added.append(obj["metadata"]["name"])
        if obj["metadata"]["name"] == "boom":
            raise RuntimeError("handler bug")

    inf = Informer(client, "services", on_add=flaky)
    inf.start()
    try:
        assert inf.wait_synced(10)
        client.create_service("default", service("boom"))
        client.create_service("default", service("fine"))
        wait_for(lambda: "fine" in added, 10, "the next event")
    finally:
        inf.stop()


def test_stop_is_prompt_and_unsynced_before_start(client: KubeClient) -> None:
    inf = Informer(client, "services")
    assert not inf.synced and not inf.wait_synced(0.05)
    inf.start()
    assert inf.wait_synced(10)
    started = time.monotonic()
    inf.stop()
    assert time.monotonic() - started < 3


def test_unreachable_server_backs_off_then_syncs() -> None:
    # held, not freed, while nothing serves there: no other process can answer meanwhile
    with HeldPort() as port:
        inf = Informer(KubeClient.for_url(port.url), "services", backoff_initial=0.05, backoff_max=0.2)
        inf.client.transport.retries = 0
        inf.start()
        try:
            wait_for(lambda: inf.watch_errors >= 2, 60, "failed attempts")
            assert not inf.synced
            with KubeAPIServer(port=port.port):
                assert inf.wait_synced(60)
        finally:
            inf.stop()


def test_recreated_during_gap_is_delete_then_add(client: KubeClient, server: KubeAPIServer) -> None:
    client.create_service("default", service("phoenix"))
    rec = Recorder()
    inf = start(client, "services", rec)
    try:
        old_uid = inf.get("default/phoenix")["metadata"]["uid"]  # type: ignore[index]
        wait_for(lambda: server.open_watch_count() == 1, 10, "the watch")
        server.expire_resource_versions()
        server.drop_watches()
        client.delete_service("default", "phoenix")
        client.create_service("default", service("phoenix"))
        server.expire_resource_versions()
        wait_for(lambda: rec.state == server_state(client), 10, "catch up")
        new = inf.get("default/phoenix")
        assert new is not None and new["metadata"]["uid"] != old_uid
        phoenix = [c for c in rec.calls if c[1] == "default/phoenix"]
        # Either the watch saw both events, or the relist diff reports them as delete + add.
        assert phoenix[-2:] == [("delete", "default/phoenix"), ("add", "default/phoenix")]
    finally:
        inf.stop()
