"""Fidelity of the sandbox API server: the machine's real ``kubectl`` must work against it.

This drives kubectl's own code paths -- discovery, OpenAPI v3 probing for server-side field
validation, client-side apply (strategic merge patch computed by kubectl), server-side printing
(Tables), ``--subresource=status`` patches, deletion with a finalizer, and ``get --watch``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lbprov.sandbox.kube_api import KubeAPIServer

KUBECTL = "/usr/bin/kubectl"

MANIFEST = """\
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
  labels: {app: web}
  finalizers: ["service.kubernetes.io/load-balancer-cleanup"]
spec:
  type: LoadBalancer
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: https, port: 443, targetPort: 8443}
"""


def kubectl_path() -> str:
    path = KUBECTL if os.access(KUBECTL, os.X_OK) else shutil.which("kubectl")
    if not path:
        pytest.fail(
            "kubectl is required for the sandbox API fidelity test but was not found at /usr/bin/kubectl or on "
            "PATH. Install it, e.g.: curl -LO https://dl.k8s.io/release/v1.32.0/bin/linux/amd64/kubectl && "
            "sudo install -m 0755 kubectl /usr/bin/kubectl"
        )
    return path


@pytest.fixture(scope="module")
def server() -> Iterator[KubeAPIServer]:
    with KubeAPIServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def kubectl(server: KubeAPIServer, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    binary = kubectl_path()
    home = tmp_path_factory.mktemp("kubectl")
    config = server.write_kubeconfig(home / "kubeconfig")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home)}

    def run(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [binary, "--kubeconfig", config, "--cache-dir", str(home / "cache"), *args]
        proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60, env=env)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr}{proc.stdout}")
        return proc

    run.popen_args = [binary, "--kubeconfig", config, "--cache-dir", str(home / "cache")]  # type: ignore[attr-defined]
    run.env = env  # type: ignore[attr-defined]
    return run


def get_json(kubectl, *args: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    return json.loads(kubectl("get", *args, "-o", "json").stdout)


def test_get_discovery_and_builtin_objects(kubectl) -> None:  # type: ignore[no-untyped-def]
    out = kubectl("get", "namespaces").stdout
    for ns in ("default", "kube-system", "lbprov-system"):
        assert ns in out
    assert "kubernetes" in kubectl("get", "svc", "-A").stdout
    resources = kubectl("api-resources").stdout
    assert "services" in resources and "leases" in resources and "svc" in resources
    assert kubectl("version", "-o", "json").returncode == 0


def test_apply_patch_status_delete_with_finalizer(kubectl, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    manifest = tmp_path / "svc.yaml"
    manifest.write_text(MANIFEST)
    assert "service/web created" in kubectl("apply", "-f", str(manifest)).stdout
    created = get_json(kubectl, "svc", "web")
    ports = created["spec"]["ports"]
    assert all(30000 <= p["nodePort"] <= 32767 for p in ports)
    assert "kubectl.kubernetes.io/last-applied-configuration" in created["metadata"]["annotations"]
    assert kubectl("apply", "-f", str(manifest)).stdout.strip() == "service/web unchanged"
    # A changed manifest: kubectl computes a strategic merge patch; the server keeps the NodePorts.
    manifest.write_text(MANIFEST.replace("8080", "9090"))
    assert "service/web configured" in kubectl("apply", "-f", str(manifest)).stdout
    applied = get_json(kubectl, "svc", "web")
    assert applied["spec"]["ports"][0]["targetPort"] == 9090
    assert [p["nodePort"] for p in applied["spec"]["ports"]] == [p["nodePort"] for p in ports]

    patch = json.dumps({"status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}}})
    kubectl("patch", "svc", "web", "--subresource=status", "--type=merge", "-p", patch)
    table = kubectl("get", "svc", "web").stdout
    assert "203.0.113.7" in table and "LoadBalancer" in table
    assert get_json(kubectl, "svc", "web")["status"]["loadBalancer"]["ingress"] == [
        {"ip": "203.0.113.7", "ipMode": "VIP"}
    ]

    deleted = kubectl("delete", "svc", "web", "--wait=false")
    assert 'service "web" deleted' in deleted.stdout
    held = get_json(kubectl, "svc", "web")
    assert held["metadata"]["deletionTimestamp"]
    assert held["metadata"]["finalizers"] == ["service.kubernetes.io/load-balancer-cleanup"]
    kubectl("patch", "svc", "web", "--type=json", "-p", '[{"op":"remove","path":"/metadata/finalizers"}]')
    gone = kubectl("get", "svc", "web", check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr


def test_get_watch_receives_update(kubectl, server: KubeAPIServer) -> None:  # type: ignore[no-untyped-def]
    kubectl("create", "-f", "-", stdin=MANIFEST.replace("name: web", "name: watched"))
    proc = subprocess.Popen(
        [*kubectl.popen_args, "get", "svc", "watched", "--watch", "--output-watch-events"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=kubectl.env,
    )
    lines: list[str] = []

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120  # bounds a hang only: kubectl starts, watches, patches
        while not lines and time.monotonic() < deadline:  # the initial row: kubectl is watching
            time.sleep(0.05)
        assert lines, "kubectl get --watch printed nothing"
        while server.open_watch_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        patch = json.dumps({"status": {"loadBalancer": {"ingress": [{"ip": "198.51.100.4"}]}}})
        kubectl("patch", "svc", "watched", "--subresource=status", "--type=merge", "-p", patch)
        while not any("198.51.100.4" in line for line in lines) and time.monotonic() < deadline:
            time.sleep(0.05)
        seen = "".join(lines)
        assert "198.51.100.4" in seen, f"watch output: {seen!r}"
        assert any(line.startswith("MODIFIED") for line in lines), seen
    finally:
        proc.kill()
        proc.wait(timeout=10)
    kubectl("patch", "svc", "watched", "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    kubectl("delete", "svc", "watched")


def test_nodes_labels_and_describe(kubectl) -> None:  # type: ignore[no-untyped-def]
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "node-1"},
        "spec": {"providerID": "aws:///z1/i-1"},
    }
    kubectl("create", "-f", "-", stdin=json.dumps(node))
    kubectl("label", "node", "node-1", "node.kubernetes.io/exclude-from-external-load-balancers=true")
    labels = get_json(kubectl, "node", "node-1")["metadata"]["labels"]
    assert labels["node.kubernetes.io/exclude-from-external-load-balancers"] == "true"
    assert (
        "node-1"
        in kubectl("get", "nodes", "-l", "node.kubernetes.io/exclude-from-external-load-balancers").stdout
    )
    kubectl("taint", "node", "node-1", "ToBeDeletedByClusterAutoscaler=1:NoSchedule")
    assert get_json(kubectl, "node", "node-1")["spec"]["taints"][0]["key"] == "ToBeDeletedByClusterAutoscaler"
    kubectl(
        "create",
        "-f",
        "-",
        stdin=MANIFEST.replace("name: web", "name: described").replace(
            'finalizers: ["service.kubernetes.io/load-balancer-cleanup"]', "finalizers: []"
        ),
    )
    described = kubectl("describe", "svc", "described").stdout
    assert "LoadBalancer" in described and "NodePort:" in described
    kubectl("delete", "node", "node-1")
    assert "No resources found" in kubectl("get", "nodes").stderr


def test_invalid_objects_are_reported_by_kubectl(kubectl) -> None:  # type: ignore[no-untyped-def]
    bad = MANIFEST.replace("name: web", "name: badport").replace(
        "targetPort: 8080}", "targetPort: 8080, nodePort: 80}"
    )
    proc = kubectl("apply", "-f", "-", stdin=bad, check=False)
    assert proc.returncode != 0
    assert 'Service "badport" is invalid' in proc.stderr
    assert "spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range" in proc.stderr


def test_kubectl_over_https_with_token(tmp_path: Path) -> None:
    binary = kubectl_path()
    with KubeAPIServer(tls=True, token="kubectl-token") as srv:
        config = srv.write_kubeconfig(tmp_path / "config")
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
        ok = subprocess.run(
            [binary, "--kubeconfig", config, "get", "svc", "-A"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert ok.returncode == 0 and "kubernetes" in ok.stdout, ok.stderr
        denied = subprocess.run(
            [binary, "--kubeconfig", config, "--token", "wrong", "get", "svc"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert denied.returncode != 0 and "Unauthorized" in denied.stderr


def test_apply_removals_use_strategic_merge_directives(kubectl, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first = """\
apiVersion: v1
kind: Service
metadata:
  name: shrink
  labels: {x: "1", y: "2"}
  finalizers: ["example.com/one", "example.com/two"]
spec:
  type: LoadBalancer
  ports:
  - {name: http, port: 80}
  - {name: https, port: 443}
"""
    second = """\
apiVersion: v1
kind: Service
metadata:
  name: shrink
  labels: {x: "1"}
  finalizers: ["example.com/one"]
spec:
  type: LoadBalancer
  ports:
  - {name: http, port: 80}
"""
    manifest = tmp_path / "shrink.yaml"
    manifest.write_text(first)
    kubectl("apply", "-f", str(manifest))
    port80 = get_json(kubectl, "svc", "shrink")["spec"]["ports"][0]["nodePort"]
    manifest.write_text(second)
    kubectl("apply", "-f", str(manifest))  # $deleteFromPrimitiveList, $setElementOrder, $patch: delete
    svc = get_json(kubectl, "svc", "shrink")
    assert svc["metadata"]["labels"] == {"x": "1"}
    assert svc["metadata"]["finalizers"] == ["example.com/one"]
    assert [(p["port"], p["nodePort"]) for p in svc["spec"]["ports"]] == [(80, port80)]
    kubectl("patch", "svc", "shrink", "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    kubectl("delete", "svc", "shrink")


def test_events_from_the_client_show_in_kubectl(kubectl, server: KubeAPIServer) -> None:  # type: ignore[no-untyped-def]
    from lbprov.kube.client import KubeClient

    client = KubeClient.for_url(server.url)
    svc = client.create_service(
        "default",
        {"metadata": {"name": "evented"}, "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}},
    )
    client.create_event(svc, type="Normal", reason="EnsuringLoadBalancer", message="Ensuring load balancer")
    client.create_event(
        svc, type="Warning", reason="SyncLoadBalancerFailed", message="Error syncing load balancer: boom"
    )
    described = kubectl("describe", "svc", "evented").stdout
    events = described.split("Events:", 1)[1]
    assert "EnsuringLoadBalancer" in events and "SyncLoadBalancerFailed" in events and "boom" in events
    listed = kubectl("get", "events", "--field-selector", "involvedObject.name=evented").stdout
    assert "service/evented" in listed and "Warning" in listed
