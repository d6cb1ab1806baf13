"""The sandbox Kubernetes API server, driven through the official Python client.

Each test gets a fresh server (starting one costs a few milliseconds). Assertions follow the real
API server's behaviour (status codes, reasons, allocation rules), not this implementation's.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import kubernetes.client as k8s
import pytest
from kubernetes.client.exceptions import ApiException
from kubernetes.watch import Watch

from lbprov.sandbox.kube_api import KubeAPIServer, RecordedRequest
from lbprov.testing import HeldPort, wait_for

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSONPATCH = "application/json-patch+json"


@pytest.fixture
def server() -> Iterator[KubeAPIServer]:
    with KubeAPIServer(bookmark_interval=0.2) as srv:
        yield srv


@pytest.fixture
def api(server: KubeAPIServer) -> Iterator[k8s.ApiClient]:
    client = k8s.ApiClient(k8s.Configuration(host=server.url))
    yield client
    client.close()


@pytest.fixture
def core(api: k8s.ApiClient) -> k8s.CoreV1Api:
    return k8s.CoreV1Api(api)


def raw(fn: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Call a generated method and return the JSON body as a dict."""
    return json.loads(fn(*args, _preload_content=False, **kwargs).data)


def api_error(fn: Any, *args: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    with pytest.raises(ApiException) as info:
        fn(*args, **kwargs)
    return int(info.value.status), json.loads(info.value.body)


def lb_service(name: str, **spec: Any) -> dict[str, Any]:
    body_spec: dict[str, Any] = {
        "type": "LoadBalancer",
        "selector": {"app": name},
        "ports": [{"name": "http", "port": 80, "targetPort": 8080}, {"name": "https", "port": 443}],
    }
    body_spec.update(spec)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": body_spec,
    }


def create(core: k8s.CoreV1Api, body: dict[str, Any], ns: str = "default") -> dict[str, Any]:
    return raw(core.create_namespaced_service, ns, body)


def node_ports(svc: dict[str, Any]) -> list[int]:
    return [p.get("nodePort") for p in svc["spec"]["ports"]]


# ---- discovery ----------------------------------------------------------------------------------


def test_discovery_documents(api: k8s.ApiClient) -> None:
    assert k8s.VersionApi(api).get_code().major == "1"
    assert k8s.CoreApi(api).get_api_versions().versions == ["v1"]
    groups = k8s.ApisApi(api).get_api_versions().groups
    assert [g.name for g in groups] == ["coordination.k8s.io"]
    core_resources = {r.name: r for r in k8s.CoreV1Api(api).get_api_resources().resources}
    assert {"services", "services/status", "nodes", "nodes/status", "events", "namespaces"} <= set(
        core_resources
    )
    assert core_resources["services"].namespaced and not core_resources["nodes"].namespaced
    assert "svc" in core_resources["services"].short_names
    assert "watch" in core_resources["services"].verbs
    leases = k8s.CoordinationV1Api(api).get_api_resources().resources
    assert [r.name for r in leases] == ["leases"]


def test_initial_namespaces_and_kubernetes_service(core: k8s.CoreV1Api) -> None:
    names = {n.metadata.name for n in core.list_namespace().items}
    assert {"default", "kube-system", "lbprov-system"} <= names
    svc = core.read_namespaced_service("kubernetes", "default")
    assert svc.spec.cluster_ip == "10.96.0.1" and svc.spec.type == "ClusterIP"


def test_unknown_path_is_a_404_status(server: KubeAPIServer) -> None:
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(server.url + "/api/v1/deployments")
    assert info.value.code == 404
    assert json.loads(info.value.read())["kind"] == "Status"


# ---- CRUD ---------------------------------------------------------------------------------------


def test_create_without_content_type_and_server_fields(server: KubeAPIServer, core: k8s.CoreV1Api) -> None:
    # The Python client sends POST bodies without a Content-Type; make that explicit with urllib.
    data = json.dumps(lb_service("bare")).encode()
    req = urllib.request.Request(server.url + "/api/v1/namespaces/default/services", data=data, method="POST")
    assert req.get_header("Content-type") is None
    with urllib.request.urlopen(req) as resp:
        assert resp.status == 201
        created = json.loads(resp.read())
    meta = created["metadata"]
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z") and meta["generation"] == 1
    assert int(meta["resourceVersion"]) > 0
    assert created["status"] == {"loadBalancer": {}}
    assert created["spec"]["clusterIP"].startswith("10.") and created["spec"]["clusterIPs"] == [
        created["spec"]["clusterIP"]
    ]
    assert (
        created["spec"]["sessionAffinity"] == "None" and created["spec"]["externalTrafficPolicy"] == "Cluster"
    )
    assert (
        created["spec"]["ports"][1]["targetPort"] == 443 and created["spec"]["ports"][1]["protocol"] == "TCP"
    )
    # The typed client reads it back.
    svc = core.read_namespaced_service("bare", "default")
    assert svc.metadata.uid == meta["uid"]


def test_status_is_cleared_on_create(core: k8s.CoreV1Api) -> None:
    body = lb_service("st")
    body["status"] = {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}
    assert create(core, body)["status"] == {"loadBalancer": {}}


def test_errors_are_status_objects(core: k8s.CoreV1Api) -> None:
    create(core, lb_service("dup"))
    code, body = api_error(core.create_namespaced_service, "default", lb_service("dup"))
    assert (code, body["reason"], body["kind"]) == (409, "AlreadyExists", "Status")
    code, body = api_error(core.read_namespaced_service, "nope", "default")
    assert (code, body["reason"], body["message"]) == (404, "NotFound", 'services "nope" not found')
    code, body = api_error(core.delete_namespaced_service, "nope", "default")
    assert code == 404
    code, body = api_error(core.create_namespaced_service, "missing-ns", lb_service("x"))
    assert code == 404 and body["message"] == 'namespaces "missing-ns" not found'
    code, body = api_error(core.create_namespaced_service, "default", lb_service("Bad_Name"))
    assert (
        code == 422
        and body["reason"] == "Invalid"
        and body["details"]["causes"][0]["field"] == "metadata.name"
    )
    two_unnamed = lb_service("unnamed", ports=[{"port": 80}, {"port": 81}])
    code, body = api_error(core.create_namespaced_service, "default", two_unnamed)
    assert code == 422 and any(c["field"] == "spec.ports[0].name" for c in body["details"]["causes"])


def test_replace_with_stale_resource_version_conflicts(core: k8s.CoreV1Api) -> None:
    first = create(core, lb_service("rv"))
    first["spec"]["selector"] = {"app": "v2"}
    second = raw(core.replace_namespaced_service, "rv", "default", first)
    assert int(second["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])
    assert second["metadata"]["generation"] == 2
    first["spec"]["selector"] = {"app": "v3"}  # still carries the old resourceVersion
    code, body = api_error(core.replace_namespaced_service, "rv", "default", first)
    assert (code, body["reason"]) == (409, "Conflict")
    assert "the object has been modified" in body["message"]
    # A patch carrying a stale resourceVersion conflicts too.
    stale = {"metadata": {"resourceVersion": first["metadata"]["resourceVersion"], "labels": {"x": "y"}}}
    code, body = api_error(core.patch_namespaced_service, "rv", "default", stale, _content_type=MERGE)
    assert code == 409


def test_generation_bumps_on_spec_changes_only(core: k8s.CoreV1Api) -> None:
    create(core, lb_service("gen"))
    labelled = raw(
        core.patch_namespaced_service,
        "gen",
        "default",
        {"metadata": {"labels": {"a": "b"}}},
        _content_type=MERGE,
    )
    assert labelled["metadata"]["generation"] == 1
    changed = raw(
        core.patch_namespaced_service,
        "gen",
        "default",
        {"spec": {"sessionAffinity": "ClientIP"}},
        _content_type=MERGE,
    )
    assert changed["metadata"]["generation"] == 2
    assert changed["spec"]["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}


def test_noop_write_keeps_resource_version(core: k8s.CoreV1Api) -> None:
    svc = create(core, lb_service("noop"))
    again = raw(
        core.patch_namespaced_service,
        "noop",
        "default",
        {"metadata": {"labels": {"app": "noop"}}},
        _content_type=MERGE,
    )
    assert again["metadata"]["resourceVersion"] == svc["metadata"]["resourceVersion"]


def test_update_omitting_allocated_values_keeps_them(core: k8s.CoreV1Api) -> None:
    svc = create(core, lb_service("keep"))
    body = lb_service("keep")  # no clusterIP, no nodePorts: upstream patchAllocatedValues keeps them
    body["metadata"]["resourceVersion"] = svc["metadata"]["resourceVersion"]
    replaced = raw(core.replace_namespaced_service, "keep", "default", body)
    assert replaced["spec"]["clusterIP"] == svc["spec"]["clusterIP"]
    assert node_ports(replaced) == node_ports(svc)
    code, body = api_error(
        core.patch_namespaced_service,
        "keep",
        "default",
        {"spec": {"clusterIP": "10.96.7.7"}},
        _content_type=MERGE,
    )
    assert code == 422


# ---- patches ------------------------------------------------------------------------------------


def test_merge_patch_object_and_status(core: k8s.CoreV1Api) -> None:
    create(core, lb_service("mp"))
    patched = raw(
        core.patch_namespaced_service,
        "mp",
        "default",
        {"metadata": {"finalizers": ["a/b"]}, "status": {"loadBalancer": {"ingress": [{"ip": "9.9.9.9"}]}}},
        _content_type=MERGE,
    )
    assert patched["metadata"]["finalizers"] == ["a/b"]
    assert patched["status"] == {"loadBalancer": {}}, "an object write must not change status"
    status = raw(
        core.patch_namespaced_service_status,
        "mp",
        "default",
        {
            "metadata": {"labels": {"sneaky": "yes"}},
            "spec": {"type": "ClusterIP"},
            "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}},
        },
        _content_type=MERGE,
    )
    assert status["status"]["loadBalancer"]["ingress"] == [
        {"ip": "1.2.3.4", "ipMode": "VIP"}
    ]  # defaulted, as upstream
    assert status["spec"]["type"] == "LoadBalancer" and "sneaky" not in status["metadata"]["labels"]
    # The typed model of the client parses the status.
    assert (
        core.read_namespaced_service_status("mp", "default").status.load_balancer.ingress[0].ip == "1.2.3.4"
    )
    # Merge patch with a list replaces it; null deletes.
    cleared = raw(
        core.patch_namespaced_service,
        "mp",
        "default",
        {"metadata": {"finalizers": None}},
        _content_type=MERGE,
    )
    assert "finalizers" not in cleared["metadata"]


def test_strategic_merge_patch_semantics(core: k8s.CoreV1Api) -> None:
    svc = create(core, lb_service("smp"))
    # A dict body goes as strategic merge patch by default in the Python client.
    patched = raw(
        core.patch_namespaced_service,
        "smp",
        "default",
        {"spec": {"ports": [{"port": 80, "targetPort": 9090}]}},
    )
    ports = {p["port"]: p for p in patched["spec"]["ports"]}
    assert set(ports) == {80, 443}, "ports merge by their key"
    assert ports[80]["targetPort"] == 9090 and ports[80]["nodePort"] == svc["spec"]["ports"][0]["nodePort"]
    # Finalizers are a merged set, as on a real server; removal needs $deleteFromPrimitiveList.
    raw(core.patch_namespaced_service, "smp", "default", {"metadata": {"finalizers": ["a/one"]}})
    both = raw(core.patch_namespaced_service, "smp", "default", {"metadata": {"finalizers": ["a/two"]}})
    assert both["metadata"]["finalizers"] == ["a/one", "a/two"]
    one = raw(
        core.patch_namespaced_service,
        "smp",
        "default",
        {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a/one"]}},
    )
    assert one["metadata"]["finalizers"] == ["a/two"]
    # $patch: delete removes a keyed element; $setElementOrder orders the list.
    dropped = raw(
        core.patch_namespaced_service,
        "smp",
        "default",
        {"spec": {"$setElementOrder/ports": [{"port": 80}], "ports": [{"port": 443, "$patch": "delete"}]}},
    )
    assert [p["port"] for p in dropped["spec"]["ports"]] == [80]
    status = raw(
        core.patch_namespaced_service_status,
        "smp",
        "default",
        {"status": {"loadBalancer": {"ingress": [{"hostname": "lb.example"}]}}},
        _content_type=STRATEGIC,
    )
    assert status["status"]["loadBalancer"]["ingress"] == [{"hostname": "lb.example"}]


def test_json_patch_object_and_status(core: k8s.CoreV1Api) -> None:
    create(core, lb_service("jp"))
    ops = [
        {"op": "test", "path": "/spec/type", "value": "LoadBalancer"},
        {"op": "add", "path": "/metadata/finalizers", "value": ["x/y"]},
        {"op": "replace", "path": "/spec/ports/0/targetPort", "value": 8081},
        {"op": "remove", "path": "/metadata/labels/app"},
    ]
    patched = raw(core.patch_namespaced_service, "jp", "default", ops)  # a list goes as JSON patch
    assert patched["metadata"]["finalizers"] == ["x/y"]
    assert patched["spec"]["ports"][0]["targetPort"] == 8081 and "app" not in patched["metadata"].get(
        "labels", {}
    )
    code, _ = api_error(
        core.patch_namespaced_service,
        "jp",
        "default",
        [{"op": "test", "path": "/spec/type", "value": "NodePort"}],
    )
    assert code == 422
    code, _ = api_error(
        core.patch_namespaced_service, "jp", "default", [{"op": "remove", "path": "/spec/nothing"}]
    )
    assert code == 422
    status = raw(
        core.patch_namespaced_service_status,
        "jp",
        "default",
        [{"op": "add", "path": "/status/loadBalancer/ingress", "value": [{"ip": "5.5.5.5"}]}],
        _content_type=JSONPATCH,
    )
    assert status["status"]["loadBalancer"]["ingress"] == [{"ip": "5.5.5.5", "ipMode": "VIP"}]
    emptied = raw(
        core.patch_namespaced_service_status,
        "jp",
        "default",
        [{"op": "replace", "path": "/status", "value": {"loadBalancer": {}}}],
        _content_type=JSONPATCH,
    )
    assert emptied["status"] == {"loadBalancer": {}}


def test_unknown_patch_type_is_415(server: KubeAPIServer) -> None:
    req = urllib.request.Request(
        server.url + "/api/v1/namespaces/default/services/kubernetes",
        data=b"{}",
        method="PATCH",
        headers={"Content-Type": "application/xml"},
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req)
    assert info.value.code == 415


# ---- finalizers ---------------------------------------------------------------------------------


def test_finalizer_semantics(core: k8s.CoreV1Api, api: k8s.ApiClient) -> None:
    body = lb_service("fin")
    body["metadata"]["finalizers"] = ["service.kubernetes.io/load-balancer-cleanup"]
    created = create(core, body)
    events: list[tuple[str, dict[str, Any]]] = []
    done = threading.Event()

    def watch() -> None:
        for ev in Watch().stream(
            core.list_namespaced_service,
            "default",
            resource_version=created["metadata"]["resourceVersion"],
            timeout_seconds=5,
        ):
            events.append((ev["type"], ev["raw_object"]))
            if ev["type"] == "DELETED":
                break
        done.set()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    deleting = raw(core.delete_namespaced_service, "fin", "default")
    assert deleting["metadata"]["deletionTimestamp"]
    still = raw(core.read_namespaced_service, "fin", "default")
    assert still["metadata"]["deletionTimestamp"] and still["metadata"]["finalizers"]
    # A second delete changes nothing; adding a finalizer while deleting is forbidden.
    assert (
        raw(core.delete_namespaced_service, "fin", "default")["metadata"]["resourceVersion"]
        == still["metadata"]["resourceVersion"]
    )
    code, body_err = api_error(
        core.patch_namespaced_service,
        "fin",
        "default",
        {"metadata": {"finalizers": ["a/new"]}},
        _content_type=MERGE,
    )
    assert code == 422 and "no new finalizers" in body_err["message"]
    # Status can still be written while the finalizer holds the object.
    raw(
        core.patch_namespaced_service_status,
        "fin",
        "default",
        {"status": {"loadBalancer": {}}},
        _content_type=MERGE,
    )
    gone = raw(
        core.patch_namespaced_service, "fin", "default", {"metadata": {"finalizers": []}}, _content_type=MERGE
    )
    assert "finalizers" not in gone["metadata"]  # omitempty: a real server drops the emptied list
    code, _ = api_error(core.read_namespaced_service, "fin", "default")
    assert code == 404
    assert done.wait(60)
    assert [t for t, _ in events] == ["MODIFIED", "DELETED"]
    assert events[-1][1]["metadata"]["name"] == "fin"


def test_delete_preconditions(core: k8s.CoreV1Api) -> None:
    create(core, lb_service("pre"))
    code, body = api_error(
        core.delete_namespaced_service,
        "pre",
        "default",
        body=k8s.V1DeleteOptions(preconditions=k8s.V1Preconditions(uid="other")),
    )
    assert (code, body["reason"]) == (409, "Conflict")


# ---- node ports ---------------------------------------------------------------------------------


def test_node_port_allocation(core: k8s.CoreV1Api) -> None:
    a = create(core, lb_service("a"))
    b = create(core, lb_service("b"))
    ports = node_ports(a) + node_ports(b)
    assert all(30000 <= p <= 32767 for p in ports) and len(set(ports)) == 4
    assert "healthCheckNodePort" not in a["spec"]
    # A requested port is honoured; a clash or an out-of-range port is a 422. (One not allocated
    # at random to a or b: 31000 itself was, once in ~700 runs.)
    port = next(p for p in range(31000, 32000) if p not in ports)
    wanted = create(core, lb_service("c", ports=[{"port": 80, "nodePort": port}]))
    assert node_ports(wanted) == [port]
    code, body = api_error(
        core.create_namespaced_service, "default", lb_service("d", ports=[{"port": 80, "nodePort": port}])
    )
    assert code == 422 and "provided port is already allocated" in body["message"]
    assert body["details"]["causes"][0]["field"] == "spec.ports[0].nodePort"
    code, body = api_error(
        core.create_namespaced_service, "default", lb_service("e", ports=[{"port": 80, "nodePort": 80}])
    )
    assert code == 422 and "30000-32767" in body["message"]
    code, body = api_error(
        core.create_namespaced_service,
        "default",
        lb_service("f", type="ClusterIP", ports=[{"port": 80, "nodePort": 31001}]),
    )
    assert code == 422
    # Released on delete: the port can be requested again.
    core.delete_namespaced_service("c", "default")
    assert node_ports(create(core, lb_service("g", ports=[{"port": 80, "nodePort": port}]))) == [port]


def test_node_ports_released_on_type_change_to_cluster_ip(core: k8s.CoreV1Api) -> None:
    svc = create(
        core, lb_service("t", ports=[{"port": 80, "nodePort": 31500}], externalTrafficPolicy="Local")
    )
    assert 30000 <= svc["spec"]["healthCheckNodePort"] <= 32767
    hc = svc["spec"]["healthCheckNodePort"]
    to_cip = raw(
        core.patch_namespaced_service, "t", "default", {"spec": {"type": "ClusterIP"}}, _content_type=MERGE
    )
    assert node_ports(to_cip) == [None]
    for field in ("healthCheckNodePort", "externalTrafficPolicy", "allocateLoadBalancerNodePorts"):
        assert field not in to_cip["spec"]
    # Both ports are free again.
    other = create(
        core,
        lb_service(
            "u",
            ports=[{"port": 80, "nodePort": 31500}],
            externalTrafficPolicy="Local",
            healthCheckNodePort=hc,
        ),
    )
    assert node_ports(other) == [31500] and other["spec"]["healthCheckNodePort"] == hc


def test_health_check_node_port_rules(core: k8s.CoreV1Api) -> None:
    code, body = api_error(
        core.create_namespaced_service, "default", lb_service("h1", healthCheckNodePort=31999)
    )
    assert code == 422 and body["details"]["causes"][0]["field"] == "spec.healthCheckNodePort"
    local = create(core, lb_service("h2", externalTrafficPolicy="Local", healthCheckNodePort=31999))
    assert local["spec"]["healthCheckNodePort"] == 31999
    code, body = api_error(
        core.create_namespaced_service, "default", lb_service("h3", ports=[{"port": 80, "nodePort": 31999}])
    )
    assert code == 422
    # Switching to Cluster drops the (unchanged) health check port.
    cluster = raw(
        core.patch_namespaced_service,
        "h2",
        "default",
        {"spec": {"externalTrafficPolicy": "Cluster"}},
        _content_type=MERGE,
    )
    assert "healthCheckNodePort" not in cluster["spec"]


def test_allocate_load_balancer_node_ports_false(core: k8s.CoreV1Api) -> None:
    svc = create(core, lb_service("nonp", allocateLoadBalancerNodePorts=False))
    assert node_ports(svc) == [None, None]
    nodeport = create(core, lb_service("np", type="NodePort"))
    assert all(node_ports(nodeport))


def test_load_balancer_class_rules(core: k8s.CoreV1Api) -> None:
    create(core, lb_service("cls", loadBalancerClass="lbprov.io/aws"))
    code, _ = api_error(
        core.patch_namespaced_service,
        "cls",
        "default",
        {"spec": {"loadBalancerClass": "lbprov.io/gcp"}},
        _content_type=MERGE,
    )
    assert code == 422
    code, _ = api_error(
        core.create_namespaced_service,
        "default",
        lb_service("cls2", type="ClusterIP", loadBalancerClass="lbprov.io/aws"),
    )
    assert code == 422


# ---- list ---------------------------------------------------------------------------------------


def test_label_and_field_selectors(core: k8s.CoreV1Api) -> None:
    for name, tier in (("s1", "web"), ("s2", "db"), ("s3", None)):
        body = lb_service(name)
        body["metadata"]["labels"] = {"tier": tier} if tier else {"other": "x"}
        create(core, body)

    def names(**kw: Any) -> set[str]:
        return {s.metadata.name for s in core.list_namespaced_service("default", **kw).items}

    assert names(label_selector="tier=web") == {"s1"}
    assert names(label_selector="tier==web") == {"s1"}
    assert names(label_selector="tier!=web") == {"s2", "s3", "kubernetes"}
    assert names(label_selector="tier in (web, db)") == {"s1", "s2"}
    assert names(label_selector="tier notin (web)") == {"s2", "s3", "kubernetes"}
    assert names(label_selector="tier") == {"s1", "s2"}
    assert names(label_selector="!tier") == {"s3", "kubernetes"}
    assert names(label_selector="tier,tier!=db") == {"s1"}
    assert names(field_selector="metadata.name=s2") == {"s2"}
    assert names(field_selector="metadata.name!=s2,metadata.namespace=default") == {"s1", "s3", "kubernetes"}
    everywhere = {
        s.metadata.name
        for s in core.list_service_for_all_namespaces(field_selector="metadata.namespace=default").items
    }
    assert everywhere == {"s1", "s2", "s3", "kubernetes"}
    code, body = api_error(core.list_namespaced_service, "default", field_selector="spec.nothing=x")
    assert code == 400 and "field label not supported" in body["message"]
    code, _ = api_error(core.list_namespaced_service, "default", label_selector="tier in web")
    assert code == 400


def test_list_limit_and_continue(core: k8s.CoreV1Api, server: KubeAPIServer) -> None:
    for i in range(7):
        create(core, lb_service(f"page{i}", type="ClusterIP", ports=[{"port": 80}]))
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        kwargs: dict[str, Any] = {"limit": 3}
        if token:
            kwargs["_continue"] = token
        page = raw(core.list_namespaced_service, "default", **kwargs)
        pages += 1
        seen += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue")
        if not token:
            break
        assert page["metadata"]["remainingItemCount"] > 0
    assert pages == 3 and len(seen) == 8 and len(set(seen)) == 8
    # A continue token older than the compacted history is a 410, as upstream.
    first = raw(core.list_namespaced_service, "default", limit=3)
    server.expire_resource_versions()
    code, body = api_error(
        core.list_namespaced_service, "default", limit=3, _continue=first["metadata"]["continue"]
    )
    assert (code, body["reason"]) == (410, "Expired")


# ---- watch --------------------------------------------------------------------------------------


def read_events(
    resp: Any, count: int, deadline: float = 5.0, until: Callable[[list[dict[str, Any]]], bool] | None = None
) -> list[dict[str, Any]]:
    """Read ``count`` newline-delimited events (or until ``until(events)``) from a raw watch response."""
    out: list[dict[str, Any]] = []
    buf = b""
    end = time.monotonic() + deadline
    for chunk in resp.stream(amt=None, decode_content=False):
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.strip():
                out.append(json.loads(line))
        done = until(out) if until is not None else len(out) >= count
        if done or time.monotonic() > end:
            break
    return out


def test_watch_from_resource_version_in_order(core: k8s.CoreV1Api) -> None:
    start = raw(core.list_namespaced_service, "default")["metadata"]["resourceVersion"]
    create(core, lb_service("w1"))
    raw(
        core.patch_namespaced_service,
        "w1",
        "default",
        {"metadata": {"labels": {"v": "2"}}},
        _content_type=MERGE,
    )
    core.delete_namespaced_service("w1", "default")
    resp = core.list_namespaced_service(
        "default", watch=True, resource_version=start, timeout_seconds=5, _preload_content=False
    )
    events = read_events(resp, 3)
    resp.close()
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs) and rvs[0] > int(start)
    assert events[0]["object"]["kind"] == "Service" and events[0]["object"]["apiVersion"] == "v1"


def test_watch_without_resource_version_starts_with_current_state(core: k8s.CoreV1Api) -> None:
    create(core, lb_service("cur"))
    resp = core.list_namespaced_service("default", watch=True, timeout_seconds=5, _preload_content=False)
    events = read_events(resp, 2)
    resp.close()
    assert sorted(e["object"]["metadata"]["name"] for e in events) == ["cur", "kubernetes"]
    assert {e["type"] for e in events} == {"ADDED"}


def test_watch_bookmarks_and_live_events(core: k8s.CoreV1Api) -> None:
    rv = raw(core.list_service_for_all_namespaces)["metadata"]["resourceVersion"]
    resp = core.list_service_for_all_namespaces(
        watch=True,
        resource_version=rv,
        allow_watch_bookmarks=True,
        timeout_seconds=10,
        _preload_content=False,
    )
    threading.Timer(0.5, lambda: create(core, lb_service("live"))).start()
    events = read_events(
        resp, 0, deadline=8, until=lambda evs: {"BOOKMARK", "ADDED"} <= {e["type"] for e in evs}
    )
    resp.close()
    kinds = [e["type"] for e in events]
    assert "BOOKMARK" in kinds and "ADDED" in kinds
    bookmark = next(e for e in events if e["type"] == "BOOKMARK")
    assert bookmark["object"]["kind"] == "Service" and int(
        bookmark["object"]["metadata"]["resourceVersion"]
    ) >= int(rv)
    added = next(e for e in events if e["type"] == "ADDED")
    assert added["object"]["metadata"]["name"] == "live"


def test_watch_label_selector_transitions(core: k8s.CoreV1Api) -> None:
    rv = raw(core.list_namespaced_service, "default")["metadata"]["resourceVersion"]
    create(core, lb_service("sel"))  # labels app=sel
    raw(
        core.patch_namespaced_service,
        "sel",
        "default",
        {"metadata": {"labels": {"team": "a"}}},
        _content_type=MERGE,
    )
    raw(
        core.patch_namespaced_service,
        "sel",
        "default",
        {"metadata": {"labels": {"team": "b"}}},
        _content_type=MERGE,
    )
    resp = core.list_namespaced_service(
        "default",
        watch=True,
        resource_version=rv,
        label_selector="team=a",
        timeout_seconds=2,
        _preload_content=False,
    )
    events = read_events(resp, 2)
    resp.close()
    assert [e["type"] for e in events] == ["ADDED", "DELETED"]


def test_watch_gone_after_expiry_and_window(core: k8s.CoreV1Api, server: KubeAPIServer) -> None:
    rv = raw(core.list_namespaced_service, "default")["metadata"]["resourceVersion"]
    server.expire_resource_versions()
    resp = core.list_namespaced_service(
        "default", watch=True, resource_version=rv, timeout_seconds=5, _preload_content=False
    )
    events = read_events(resp, 1)
    assert events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert (status["kind"], status["code"], status["reason"]) == ("Status", 410, "Expired")
    # The official Watch helper turns it into ApiException(410).
    with pytest.raises(ApiException) as info:
        for _ in Watch().stream(
            core.list_namespaced_service, "default", resource_version=rv, timeout_seconds=2
        ):
            pass
    assert info.value.status == 410
    # A fresh list's resourceVersion is watchable again.
    fresh = raw(core.list_namespaced_service, "default")["metadata"]["resourceVersion"]
    threading.Timer(0.3, lambda: create(core, lb_service("after"))).start()
    resp = core.list_namespaced_service(
        "default", watch=True, resource_version=fresh, timeout_seconds=5, _preload_content=False
    )
    assert read_events(resp, 1)[0]["type"] == "ADDED"
    resp.close()


def test_watch_window_overflow_gives_gone() -> None:
    with KubeAPIServer(watch_window=5) as srv, k8s.ApiClient(k8s.Configuration(host=srv.url)) as client:
        core = k8s.CoreV1Api(client)
        rv = raw(core.list_namespaced_service, "default")["metadata"]["resourceVersion"]
        for i in range(6):
            create(core, lb_service(f"o{i}", type="ClusterIP", ports=[{"port": 80}]))
        resp = core.list_namespaced_service(
            "default", watch=True, resource_version=rv, timeout_seconds=5, _preload_content=False
        )
        assert read_events(resp, 1)[0]["object"]["code"] == 410


def test_watch_timeout_seconds_honoured(core: k8s.CoreV1Api) -> None:
    rv = raw(core.list_namespaced_service, "default")["metadata"]["resourceVersion"]
    started = time.monotonic()
    resp = core.list_namespaced_service(
        "default", watch=True, resource_version=rv, timeout_seconds=1, _preload_content=False
    )
    assert resp.data == b""  # ended cleanly with nothing to report
    # ended by the server at 1 s: not before, and not held open (20 s: what a loaded machine
    # adds to the 1 s, never that much)
    assert 0.9 <= time.monotonic() - started < 20


def test_drop_watches_breaks_streams(core: k8s.CoreV1Api, server: KubeAPIServer) -> None:
    rv = raw(core.list_namespaced_service, "default")["metadata"]["resourceVersion"]
    resp = core.list_namespaced_service(
        "default", watch=True, resource_version=rv, timeout_seconds=30, _preload_content=False
    )
    # the watch must be open before it is dropped (a deadline that ran out went on and dropped
    # nothing, and the stream then ended cleanly 30 s later): wait for it, failing at the deadline
    wait_for(lambda: server.open_watch_count() > 0, 60, "the watch to open", interval=0.01)
    started = time.monotonic()
    server.drop_watches()
    with pytest.raises(Exception) as info:  # urllib3 ProtocolError: the chunked stream was cut
        resp.read()
    assert (
        "Connection broken" in str(info.value)
        or "prematurely" in str(info.value)
        or info.type.__name__ in ("ProtocolError", "IncompleteRead")
    )
    assert time.monotonic() - started < 20, "cut at once, not at the watch's 30 s timeout"


# ---- nodes, leases, events, namespaces ----------------------------------------------------------


def test_nodes_keep_status_on_create_and_provider_id_is_immutable(core: k8s.CoreV1Api) -> None:
    node = {
        "metadata": {"name": "node-a", "labels": {"topology.kubernetes.io/zone": "z1"}},
        "spec": {"providerID": "aws:///z1/i-1"},
        "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]},
    }
    created = raw(core.create_node, node)
    assert created["status"]["addresses"][0]["address"] == "10.0.0.1"
    assert core.read_node("node-a").spec.provider_id == "aws:///z1/i-1"
    code, _ = api_error(
        core.patch_node, "node-a", {"spec": {"providerID": "aws:///z1/i-2"}}, _content_type=MERGE
    )
    assert code == 422
    tainted = raw(
        core.patch_node,
        "node-a",
        {"spec": {"taints": [{"key": "ToBeDeletedByClusterAutoscaler", "effect": "NoSchedule"}]}},
        _content_type=MERGE,
    )
    assert tainted["spec"]["taints"][0]["key"] == "ToBeDeletedByClusterAutoscaler"
    status = raw(
        core.patch_node_status,
        "node-a",
        {"status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.2"}]}},
        _content_type=MERGE,
    )
    assert status["status"]["addresses"][0]["address"] == "10.0.0.2"
    code, _ = api_error(core.read_namespaced_service, "node-a", "default")
    assert code == 404
    core.delete_node("node-a")
    assert core.list_node().items == []


def test_leases_with_optimistic_concurrency(api: k8s.ApiClient) -> None:
    coord = k8s.CoordinationV1Api(api)
    lease = {
        "metadata": {"name": "lbprov", "namespace": "lbprov-system"},
        "spec": {
            "holderIdentity": "a",
            "leaseDurationSeconds": 15,
            "renewTime": "2026-01-01T00:00:00.000000Z",
        },
    }
    created = raw(coord.create_namespaced_lease, "lbprov-system", lease)
    typed = coord.read_namespaced_lease("lbprov", "lbprov-system")
    assert typed.spec.holder_identity == "a" and typed.spec.lease_duration_seconds == 15
    created["spec"]["holderIdentity"] = "b"
    updated = raw(coord.replace_namespaced_lease, "lbprov", "lbprov-system", created)
    assert updated["spec"]["holderIdentity"] == "b"
    created["spec"]["holderIdentity"] = "c"  # stale resourceVersion
    code, _ = api_error(coord.replace_namespaced_lease, "lbprov", "lbprov-system", created)
    assert code == 409


def test_events_with_field_selectors(core: k8s.CoreV1Api) -> None:
    svc = create(core, lb_service("evsvc"))
    event = {
        "metadata": {"name": "evsvc.1", "namespace": "default"},
        "involvedObject": {
            "kind": "Service",
            "name": "evsvc",
            "namespace": "default",
            "uid": svc["metadata"]["uid"],
        },
        "reason": "EnsuringLoadBalancer",
        "message": "Ensuring load balancer",
        "type": "Normal",
        "source": {"component": "lbprov"},
        "count": 1,
    }
    raw(core.create_namespaced_event, "default", event)
    found = core.list_namespaced_event(
        "default", field_selector="involvedObject.name=evsvc,reason=EnsuringLoadBalancer"
    ).items
    assert [e.reason for e in found] == ["EnsuringLoadBalancer"]
    assert core.list_namespaced_event("default", field_selector="involvedObject.name=other").items == []
    bad = dict(
        event,
        metadata={"name": "evsvc.2", "namespace": "default"},
        involvedObject={"kind": "Service", "name": "x", "namespace": "kube-system"},
    )
    code, _ = api_error(core.create_namespaced_event, "default", bad)
    assert code == 422


def test_namespaces_delete_rules(core: k8s.CoreV1Api) -> None:
    code, _ = api_error(core.delete_namespace, "default")
    assert code == 403
    raw(core.create_namespace, {"metadata": {"name": "temp"}})
    svc = lb_service("held")
    svc["metadata"]["finalizers"] = ["a/b"]
    create(core, svc, "temp")
    core.delete_namespace("temp")
    assert core.read_namespace("temp").status.phase == "Terminating"
    code, _ = api_error(core.create_namespaced_service, "temp", lb_service("late"))
    assert code == 403
    raw(
        core.patch_namespaced_service, "held", "temp", {"metadata": {"finalizers": None}}, _content_type=MERGE
    )
    code, _ = api_error(core.read_namespace, "temp")
    assert code == 404


# ---- recording, tables, dry run -----------------------------------------------------------------


def test_requests_are_recorded_with_kubernetes_verbs(
    core: k8s.CoreV1Api, server: KubeAPIServer, api: k8s.ApiClient
) -> None:
    server.clear_requests()
    create(core, lb_service("rec"))
    core.read_namespaced_service("rec", "default")
    core.list_service_for_all_namespaces()
    rv = raw(core.list_namespaced_service, "default")["metadata"]["resourceVersion"]
    watched = core.list_namespaced_service(
        "default", watch=True, resource_version=rv, timeout_seconds=1, _preload_content=False
    ).data
    assert watched == b""
    raw(core.patch_namespaced_service_status, "rec", "default", {"status": {}}, _content_type=MERGE)
    core.replace_namespaced_service("rec", "default", core.read_namespaced_service("rec", "default"))
    core.delete_namespaced_service("rec", "default")
    raw(k8s.CoordinationV1Api(api).list_namespaced_lease, "lbprov-system")
    assert server.requests == [
        RecordedRequest("create", "", "services", "", "default"),
        RecordedRequest("get", "", "services", "", "default"),
        RecordedRequest("list", "", "services", "", None),
        RecordedRequest("list", "", "services", "", "default"),
        RecordedRequest("watch", "", "services", "", "default"),
        RecordedRequest("patch", "", "services", "status", "default"),
        RecordedRequest("get", "", "services", "", "default"),
        RecordedRequest("update", "", "services", "", "default"),
        RecordedRequest("delete", "", "services", "", "default"),
        RecordedRequest("list", "coordination.k8s.io", "leases", "", "lbprov-system"),
    ]
    names = [name for _, name in server.requests_with_names]
    assert names == [None, "rec", None, None, None, "rec", "rec", "rec", "rec", None]


def test_table_output_for_kubectl(server: KubeAPIServer, core: k8s.CoreV1Api) -> None:
    create(core, lb_service("tbl"))
    req = urllib.request.Request(
        server.url + "/api/v1/namespaces/default/services",
        headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"},
    )
    table = json.loads(urllib.request.urlopen(req).read())
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]][:5] == [
        "Name",
        "Type",
        "Cluster-IP",
        "External-IP",
        "Port(s)",
    ]
    row = next(r for r in table["rows"] if r["cells"][0] == "tbl")
    assert row["cells"][1] == "LoadBalancer" and row["cells"][3] == "<pending>"


def test_dry_run_does_not_persist(core: k8s.CoreV1Api) -> None:
    out = raw(core.create_namespaced_service, "default", lb_service("dry"), dry_run="All")
    assert out["metadata"]["name"] == "dry"
    code, _ = api_error(core.read_namespaced_service, "dry", "default")
    assert code == 404


def test_concurrent_writers_and_watchers(core: k8s.CoreV1Api) -> None:
    rv = raw(core.list_namespaced_service, "default")["metadata"]["resourceVersion"]
    watchers = [
        core.list_namespaced_service(
            "default", watch=True, resource_version=rv, timeout_seconds=10, _preload_content=False
        )
        for _ in range(3)
    ]
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        try:
            for j in range(10):
                create(core, lb_service(f"c{i}-{j}", type="ClusterIP", ports=[{"port": 80}]))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for resp in watchers:
        events = read_events(resp, 40)
        resp.close()
        rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
        assert len(events) == 40 and rvs == sorted(rvs) and len(set(rvs)) == 40
    ips = [s.spec.cluster_ip for s in core.list_namespaced_service("default").items]
    assert len(ips) == len(set(ips))


def test_allocations_stay_unique_over_many_services(core: k8s.CoreV1Api) -> None:
    for i in range(60):
        create(core, lb_service(f"m{i}", externalTrafficPolicy="Local" if i % 2 else "Cluster"))
    for i in range(0, 60, 3):  # free some, then allocate again
        core.delete_namespaced_service(f"m{i}", "default")
    for i in range(20):
        create(core, lb_service(f"n{i}"))
    services = raw(core.list_namespaced_service, "default")["items"]
    ports = [p for s in services for p in node_ports(s) if p] + [
        s["spec"]["healthCheckNodePort"] for s in services if "healthCheckNodePort" in s["spec"]
    ]
    ips = [s["spec"]["clusterIP"] for s in services]
    assert len(ports) == len(set(ports)) and len(ports) >= 2 * 60
    assert len(ips) == len(set(ips))


def test_metadata_validation(core: k8s.CoreV1Api) -> None:
    bad_finalizer = lb_service("badfin")
    bad_finalizer["metadata"]["finalizers"] = ["cleanup"]
    code, body = api_error(core.create_namespaced_service, "default", bad_finalizer)
    assert code == 422 and "neither a standard finalizer name nor is it fully qualified" in body["message"]
    bad_label = lb_service("badlabel")
    bad_label["metadata"]["labels"] = {"ok": "not ok!"}
    code, _ = api_error(core.create_namespaced_service, "default", bad_label)
    assert code == 422
    create(core, lb_service("meta"))
    code, _ = api_error(
        core.patch_namespaced_service,
        "meta",
        "default",
        {"metadata": {"labels": {"-bad": "x"}}},
        _content_type=MERGE,
    )
    assert code == 422
    code, body = api_error(core.create_namespaced_service, "default", {**lb_service("kind"), "kind": "Node"})
    assert code == 400


def test_delete_collection(core: k8s.CoreV1Api) -> None:
    for i in range(3):
        create(core, lb_service(f"dc{i}"))
    held = lb_service("dcheld")
    held["metadata"]["finalizers"] = ["a/b"]
    create(core, held)
    core.delete_collection_namespaced_service("default", label_selector="app in (dc0, dc1, dcheld)")
    left = {s.metadata.name for s in core.list_namespaced_service("default").items}
    assert left == {"kubernetes", "dc2", "dcheld"}
    assert core.read_namespaced_service("dcheld", "default").metadata.deletion_timestamp is not None


def test_lease_validation(api: k8s.ApiClient) -> None:
    coord = k8s.CoordinationV1Api(api)
    code, _ = api_error(
        coord.create_namespaced_lease,
        "lbprov-system",
        {"metadata": {"name": "l"}, "spec": {"leaseDurationSeconds": 0}},
    )
    assert code == 422


def test_runs_as_a_module() -> None:
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "lbprov.sandbox.kube_api", "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "/version", timeout=10) as resp:
            assert json.loads(resp.read())["major"] == "1"
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_stop_cuts_keep_alive_connections() -> None:
    # on a held port: once the server stops, no other process can answer there in its place
    with HeldPort() as port:
        srv = KubeAPIServer(port=port.port).start()
        client = k8s.ApiClient(k8s.Configuration(host=srv.url))
        client.configuration.retries = 0
        core = k8s.CoreV1Api(client)
        core.list_namespace()  # leaves a pooled keep-alive connection open
        srv.stop()
        with pytest.raises(Exception):  # noqa: B017 - any connection error: the server is gone
            core.list_namespace(_request_timeout=2)
        client.close()


def test_load_balancer_status_rules(core: k8s.CoreV1Api) -> None:
    create(core, lb_service("lbs"))

    def status(ingress: list[dict[str, Any]]) -> dict[str, Any]:
        return raw(
            core.patch_namespaced_service_status,
            "lbs",
            "default",
            {"status": {"loadBalancer": {"ingress": ingress}}},
            _content_type=MERGE,
        )

    for bad in (
        [{"ip": "not-an-ip"}],
        [{"hostname": "1.2.3.4"}],
        [{"hostname": "Bad_Host"}],
        [{"ipMode": "VIP"}],
        [{"ip": "1.2.3.4", "ipMode": "X"}],
    ):
        code, _ = api_error(status, bad)
        assert code == 422, bad
    assert status([{"hostname": "a.elb.amazonaws.com"}])["status"]["loadBalancer"]["ingress"] == [
        {"hostname": "a.elb.amazonaws.com"}
    ]
    assert (
        status([{"ip": "1.2.3.4", "ipMode": "Proxy"}])["status"]["loadBalancer"]["ingress"][0]["ipMode"]
        == "Proxy"
    )
    # Switching away from LoadBalancer clears the load-balancer status; writing one back is refused.
    to_cip = raw(
        core.patch_namespaced_service, "lbs", "default", {"spec": {"type": "ClusterIP"}}, _content_type=MERGE
    )
    assert to_cip["status"] == {"loadBalancer": {}}
    code, body = api_error(status, [{"ip": "1.2.3.4"}])
    assert code == 422 and "may only be used when `spec.type` is 'LoadBalancer'" in body["message"]
    assert status([])["status"]["loadBalancer"] == {"ingress": []}


def test_headless_only_for_cluster_ip(core: k8s.CoreV1Api) -> None:
    headless = create(core, lb_service("headless", type="ClusterIP", clusterIP="None"))
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["clusterIPs"] == ["None"]
    code, _ = api_error(core.create_namespaced_service, "default", lb_service("lbheadless", clusterIP="None"))
    assert code == 422


def test_injected_failures(core: k8s.CoreV1Api, server: KubeAPIServer) -> None:
    create(core, lb_service("flaky"))
    server.fail_next("patch", "services", subresource="status", code=409, reason="Conflict")
    code, body = api_error(
        core.patch_namespaced_service_status, "flaky", "default", {"status": {}}, _content_type=MERGE
    )
    assert (code, body["reason"]) == (409, "Conflict")
    # Only the next matching request fails; other verbs are unaffected.
    server.fail_next("get", "services", code=503, reason="ServiceUnavailable", count=2)
    assert raw(core.list_namespaced_service, "default")["items"]
    for _ in range(2):
        code, _ = api_error(core.read_namespaced_service, "flaky", "default", _request_timeout=5)
        assert code == 503
    assert core.read_namespaced_service("flaky", "default").metadata.name == "flaky"
    raw(core.patch_namespaced_service_status, "flaky", "default", {"status": {}}, _content_type=MERGE)
