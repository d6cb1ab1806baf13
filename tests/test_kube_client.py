"""KubeClient against the sandbox API server: configuration paths, typed errors, calls."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lbprov.kube.client import (
    AlreadyExists,
    Conflict,
    Gone,
    Invalid,
    KubeClient,
    KubeError,
    NotFound,
    WatchDropped,
)
from lbprov.sandbox.kube_api import KubeAPIServer
from lbprov.testing import wait_for

FINALIZER = "service.kubernetes.io/load-balancer-cleanup"


@pytest.fixture
def server() -> Iterator[KubeAPIServer]:
    with KubeAPIServer(bookmark_interval=0.2) as srv:
        yield srv


@pytest.fixture
def client(server: KubeAPIServer) -> Iterator[KubeClient]:
    c = KubeClient.for_url(server.url)
    yield c
    c.close()


def service(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"type": "LoadBalancer", "ports": [{"name": "http", "port": 80}], **spec},
    }


# ---- configuration ------------------------------------------------------------------------------


@pytest.fixture
def tls_server() -> Iterator[KubeAPIServer]:
    with KubeAPIServer(tls=True, token="sa-token-123") as srv:
        yield srv


def _in_cluster_env(monkeypatch: pytest.MonkeyPatch, srv: KubeAPIServer, tmp_path: Path, token: str) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(token)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(srv.port))
    monkeypatch.setenv("LBPROV_INCLUSTER_TOKEN_FILE", str(token_file))
    assert srv.ca_file is not None
    monkeypatch.setenv("LBPROV_INCLUSTER_CA_FILE", srv.ca_file)


def test_in_cluster_over_https_with_token_and_ca(
    tls_server: KubeAPIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert tls_server.url.startswith("https://")
    _in_cluster_env(monkeypatch, tls_server, tmp_path, "sa-token-123")
    client = KubeClient.in_cluster()
    assert client.host == f"https://127.0.0.1:{tls_server.port}"
    client.create_service("default", service("incluster"))
    items, rv = client.list_services("default")
    assert "incluster" in {i["metadata"]["name"] for i in items} and int(rv) > 0
    # auto() picks in-cluster when KUBERNETES_SERVICE_HOST is set and no kubeconfig is given.
    assert KubeClient.auto().get_service("default", "incluster") is not None
    # The request really was authenticated: the server recorded it.
    assert ("create", "", "services", "", "default") in tls_server.requests


def test_in_cluster_with_a_wrong_token_is_unauthorized(
    tls_server: KubeAPIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _in_cluster_env(monkeypatch, tls_server, tmp_path, "wrong")
    with pytest.raises(KubeError) as info:
        KubeClient.in_cluster().list_services()
    assert info.value.status == 401


def test_https_without_the_ca_is_refused(tls_server: KubeAPIServer) -> None:
    client = KubeClient.for_url(tls_server.url, token="sa-token-123")
    client.transport.retries = 0
    with pytest.raises(Exception, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        client.list_services()
    ok = KubeClient.for_url(tls_server.url, token="sa-token-123", ca_file=tls_server.ca_file)
    assert ok.list_services()[0]


def test_kubeconfig_and_auto(
    tls_server: KubeAPIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tls_server.write_kubeconfig(tmp_path / "config")
    client = KubeClient.from_kubeconfig(path)
    assert client.get_service("default", "kubernetes") is not None
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.255.255.1")  # ignored: a kubeconfig was given
    assert KubeClient.auto(kubeconfig=path).host == tls_server.url
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    monkeypatch.setenv("KUBECONFIG", path)
    assert KubeClient.auto().host == tls_server.url


# ---- calls and errors ---------------------------------------------------------------------------


def test_service_calls_and_typed_errors(client: KubeClient) -> None:
    created = client.create_service("default", service("web"))
    assert created["kind"] == "Service"
    assert client.get_service("default", "missing") is None
    with pytest.raises(AlreadyExists):
        client.create_service("default", service("web"))
    with pytest.raises(NotFound):
        client.patch_service("default", "missing", {"metadata": {"labels": {"a": "b"}}})
    with pytest.raises(Invalid):
        client.create_service("default", service("bad", ports=[{"port": 80, "nodePort": 1}]))
    stale = dict(created)
    client.patch_service("default", "web", {"metadata": {"labels": {"v": "1"}}})
    with pytest.raises(Conflict) as info:
        client.replace_service("default", "web", stale)
    assert not isinstance(info.value, AlreadyExists) and info.value.status == 409
    fresh = client.get_service("default", "web")
    assert fresh is not None
    fresh["spec"]["sessionAffinity"] = "ClientIP"
    assert client.replace_service("default", "web", fresh)["spec"]["sessionAffinity"] == "ClientIP"


def test_finalizer_round_trip_with_default_merge_patch(client: KubeClient) -> None:
    client.create_service("default", service("fin"))
    added = client.patch_service("default", "fin", {"metadata": {"finalizers": [FINALIZER]}})
    assert added["metadata"]["finalizers"] == [FINALIZER]
    client.delete_service("default", "fin")
    held = client.get_service("default", "fin")
    assert held is not None and held["metadata"]["deletionTimestamp"]
    # Default merge="merge": the list replaces the old one, so removing the finalizer works.
    client.patch_service("default", "fin", {"metadata": {"finalizers": []}})
    assert client.get_service("default", "fin") is None


def test_strategic_and_json_patches(client: KubeClient) -> None:
    client.create_service("default", service("p"))
    client.patch_service("default", "p", {"metadata": {"finalizers": ["a/one"]}}, merge="strategic")
    both = client.patch_service("default", "p", {"metadata": {"finalizers": ["a/two"]}}, merge="strategic")
    assert both["metadata"]["finalizers"] == ["a/one", "a/two"]  # strategic merge unions finalizers
    one = client.patch_service("default", "p", [{"op": "remove", "path": "/metadata/finalizers/0"}])
    assert one["metadata"]["finalizers"] == ["a/two"]


def test_status_patch(client: KubeClient) -> None:
    client.create_service("default", service("s"))
    out = client.patch_service_status(
        "default", "s", {"status": {"loadBalancer": {"ingress": [{"hostname": "x.elb"}]}}}
    )
    assert out["status"]["loadBalancer"]["ingress"] == [{"hostname": "x.elb"}]
    ignored = client.patch_service("default", "s", {"status": {"loadBalancer": {}}})
    assert ignored["status"]["loadBalancer"]["ingress"] == [{"hostname": "x.elb"}]


def test_list_pages_and_adds_kind(client: KubeClient) -> None:
    for i in range(5):
        client.create_service("default", service(f"l{i}", type="ClusterIP"))
    client.page_size = 2
    items, rv = client.list_services()
    assert len(items) == 6 and all(i["kind"] == "Service" and i["apiVersion"] == "v1" for i in items)
    assert client.list_services("kube-system")[0] == []
    assert len(client.list_services(label_selector="component=apiserver")[0]) == 1
    assert int(rv) > 0


def test_nodes(client: KubeClient) -> None:
    client.create_node({"metadata": {"name": "n1"}, "spec": {"providerID": "aws:///z/i-1"}})
    client.patch_node("n1", {"metadata": {"labels": {"x": "y"}}})
    items, _ = client.list_nodes()
    assert [(n["kind"], n["metadata"]["labels"]) for n in items] == [("Node", {"x": "y"})]
    client.delete_node("n1")
    assert client.get_node("n1") is None


def test_watch_stream_events_bookmarks_and_gone(client: KubeClient, server: KubeAPIServer) -> None:
    _, rv = client.list_services()
    client.create_service("default", service("w"))
    client.delete_service("default", "w")
    stream = client.watch_services(rv, timeout_seconds=2)
    kinds = []
    for kind, obj in stream:
        kinds.append(kind)
        if kind == "BOOKMARK":
            assert int(obj["metadata"]["resourceVersion"]) >= int(rv)
            break
        assert obj["kind"] == "Service"
    assert kinds == ["ADDED", "DELETED", "BOOKMARK"]
    stream.close()
    server.expire_resource_versions()
    with pytest.raises(Gone):
        list(client.watch_services(rv, timeout_seconds=2))


def test_watch_dropped_is_reported(client: KubeClient, server: KubeAPIServer) -> None:
    _, rv = client.list_nodes()
    stream = client.watch_nodes(rv, timeout_seconds=30)
    # the watch must be open before it is dropped (a deadline that ran out went on and dropped
    # nothing, and the stream then ended cleanly 30 s later): wait for it, failing at the deadline
    wait_for(lambda: server.open_watch_count() > 0, 60, "the watch to open", interval=0.01)
    server.drop_watches()
    with pytest.raises(WatchDropped):
        for kind, _obj in stream:
            assert kind == "BOOKMARK"


def test_events_are_created_and_aggregated(client: KubeClient) -> None:
    svc = client.create_service("default", service("ev"))
    client.create_event(svc, type="Normal", reason="EnsuringLoadBalancer", message="Ensuring load balancer")
    client.create_event(svc, type="Normal", reason="EnsuringLoadBalancer", message="Ensuring load balancer")
    client.create_event(
        svc, type="Warning", reason="SyncLoadBalancerFailed", message="boom", component="service-controller"
    )
    events = client.list_events("default", field_selector="involvedObject.name=ev")
    by_reason = {e["reason"]: e for e in events}
    assert set(by_reason) == {"EnsuringLoadBalancer", "SyncLoadBalancerFailed"}
    ensuring = by_reason["EnsuringLoadBalancer"]
    assert ensuring["count"] == 2 and ensuring["type"] == "Normal"
    assert ensuring["source"] == {"component": "lbprov"}
    assert ensuring["firstTimestamp"] and ensuring["lastTimestamp"]
    involved = ensuring["involvedObject"]
    assert (involved["kind"], involved["name"], involved["namespace"], involved["uid"]) == (
        "Service",
        "ev",
        "default",
        svc["metadata"]["uid"],
    )
    assert by_reason["SyncLoadBalancerFailed"]["source"]["component"] == "service-controller"


def test_event_failure_is_not_raised(client: KubeClient) -> None:
    ghost = {"kind": "Service", "metadata": {"name": "ghost", "namespace": "no-such-ns", "uid": "u"}}
    client.create_event(ghost, type="Normal", reason="R", message="m")  # 404 namespace: logged only


def test_leases(client: KubeClient) -> None:
    assert client.get_lease("lbprov-system", "lbprov") is None
    body = {"metadata": {"name": "lbprov"}, "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}}
    created = client.create_lease("lbprov-system", body)
    with pytest.raises(AlreadyExists):
        client.create_lease("lbprov-system", body)
    created["spec"]["holderIdentity"] = "b"
    client.replace_lease("lbprov-system", "lbprov", created)
    created["spec"]["holderIdentity"] = "c"
    with pytest.raises(Conflict):
        client.replace_lease("lbprov-system", "lbprov", created)
    lease = client.get_lease("lbprov-system", "lbprov")
    assert lease is not None and lease["spec"]["holderIdentity"] == "b"
