"""Every kubectl the image offers (1.27 to 1.33) against the sandbox API server, as a new user types.

One sandbox server per version (module-scoped, parametrized); one test per version runs the
commands in order, so the whole file costs a few seconds per version. Each step names the command
and what a real API server answers; a failure message carries kubectl's own output.

Set ``LBPROV_KUBECTL_LOG=<file>`` to append every command and its result (exit code and first line)
to a file, which is how the per-version list in the issue's closing note was produced.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lbprov.sandbox.kube_api import KubeAPIServer

VERSIONS = ("1.27", "1.28", "1.29", "1.30", "1.31", "1.32", "1.33")
SDK_BIN = Path("/usr/lib/google-cloud-sdk/bin")

SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: applied
spec:
  type: LoadBalancer
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
"""
TYPO = """\
apiVersion: v1
kind: Service
metadata:
  name: typo
spec:
  portz: 1
  ports:
  - {port: 80, protocl: TCP}
"""
SSA = """\
apiVersion: v1
kind: Service
metadata:
  name: ssa
spec:
  type: LoadBalancer
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: https, port: 443, targetPort: 8443}
"""
NODE = '{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"}, "spec": {"providerID": "aws:///z/i-1"}}'
EVENT = """\
apiVersion: v1
kind: Event
metadata: {name: applied.1, namespace: default}
involvedObject: {kind: Service, name: applied, namespace: default, fieldPath: spec.ports}
reason: EnsuredLoadBalancer
message: Ensured load balancer
type: Normal
source: {component: lbprov}
count: 3
firstTimestamp: "2026-01-01T10:00:00+00:00"
lastTimestamp: "2026-01-01T12:00:00+02:00"
"""


def _binary(version: str) -> str:
    path = SDK_BIN / f"kubectl.{version}"
    if not os.access(path, os.X_OK):
        pytest.fail(f"kubectl {version} is not in the image at {path}; the image offers kubectl 1.27 to 1.33")
    return str(path)


class Kubectl:
    def __init__(self, version: str, server: KubeAPIServer, home: Path) -> None:
        self.version = version
        self.binary = _binary(version)
        self.home = home
        self.config = server.write_kubeconfig(home / "kubeconfig")
        self.log = os.environ.get("LBPROV_KUBECTL_LOG")

    def __call__(
        self, *args: str, stdin: str | None = None, ok: bool = True, editor: str = "true"
    ) -> subprocess.CompletedProcess[str]:
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(self.home), "KUBE_EDITOR": editor}
        cmd = [self.binary, "--kubeconfig", self.config, "--cache-dir", str(self.home / "cache"), *args]
        proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60, env=env)
        if self.log:
            first = (proc.stdout.strip() or proc.stderr.strip()).splitlines()[:1]
            with open(self.log, "a") as f:
                f.write(
                    f"{self.version}\tkubectl {' '.join(args)}\t{proc.returncode}\t{first[0] if first else ''}\n"
                )
        if ok and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {self.version} {' '.join(args)} failed: {proc.stderr}{proc.stdout}"
            )
        if not ok and proc.returncode == 0:
            raise AssertionError(f"kubectl {self.version} {' '.join(args)} succeeded: {proc.stdout}")
        return proc

    def json(self, *args: str) -> dict:  # type: ignore[type-arg]
        return json.loads(self("get", *args, "-o", "json").stdout)


@pytest.fixture(scope="module", params=VERSIONS)
def kubectl(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    with KubeAPIServer() as server:
        yield Kubectl(request.param, server, tmp_path_factory.mktemp(f"kubectl-{request.param}"))


def test_everyday_commands(kubectl: Kubectl, tmp_path: Path) -> None:
    manifest = tmp_path / "svc.yaml"
    manifest.write_text(SERVICE)
    typo = tmp_path / "typo.yaml"
    typo.write_text(TYPO)

    # Typed create commands: kubectl 1.32+ send these bodies as protobuf.
    assert (
        kubectl("create", "service", "loadbalancer", "w1", "--tcp=80:8080").stdout.strip()
        == "service/w1 created"
    )
    w1 = kubectl.json("svc", "w1")
    assert w1["spec"]["type"] == "LoadBalancer" and w1["spec"]["ports"][0]["targetPort"] == 8080
    kubectl("create", "service", "clusterip", "headless", "--clusterip=None")
    kubectl("create", "service", "nodeport", "np", "--tcp=5678:8080", "--node-port=30080")
    kubectl("create", "service", "externalname", "ext", "--external-name=example.com")
    assert (
        kubectl("expose", "svc", "np", "--name=exposed", "--port=90").stdout.strip()
        == "service/exposed exposed"
    )
    assert kubectl.json("svc", "headless")["spec"]["clusterIP"] == "None"
    assert kubectl.json("svc", "np")["spec"]["ports"][0]["nodePort"] == 30080
    assert kubectl.json("svc", "ext")["spec"]["externalName"] == "example.com"
    assert kubectl.json("svc", "exposed")["spec"]["selector"] == {"app": "np"}
    assert kubectl("create", "ns", "shop").stdout.strip() == "namespace/shop created"
    assert (
        kubectl("create", "configmap", "c1", "-n", "shop", "--from-literal=a=b").stdout.strip()
        == "configmap/c1 created"
    )
    assert kubectl.json("cm", "c1", "-n", "shop")["data"] == {"a": "b"}

    # apply / create / replace / edit (1.27 and 1.28 load /openapi/v2 for these).
    assert kubectl("apply", "-f", str(manifest)).stdout.strip() == "service/applied created"
    assert kubectl("apply", "-f", str(manifest)).stdout.strip() == "service/applied unchanged"
    kubectl("create", "-f", "-", stdin=SERVICE.replace("name: applied", "name: created"))
    replaced = kubectl(
        "replace", "-f", "-", stdin=SERVICE.replace("name: applied", "name: created").replace("8080", "8081")
    )
    assert replaced.stdout.strip() == "service/created replaced"
    edited = kubectl("edit", "svc", "created", editor="sed -i s/8081/8082/")
    assert edited.stdout.strip() == "service/created edited"
    assert kubectl.json("svc", "created")["spec"]["ports"][0]["targetPort"] == 8082

    # explain reads the upstream schemas from /openapi/v3 (and /openapi/v2 on the older versions).
    explained = kubectl("explain", "svc.spec.ports.targetPort").stdout
    assert "FIELD: targetPort" in explained or "FIELD:    targetPort" in explained, explained
    assert "Number or name of the port to access on the pods" in " ".join(explained.split()), explained

    # Unknown fields: kubectl asks for fieldValidation=Strict by default.
    refused = kubectl("apply", "-f", str(typo), ok=False)
    assert (
        'strict decoding error: unknown field "spec.ports[0].protocl", unknown field "spec.portz"'
        in refused.stderr
    )
    warned = kubectl("apply", "--validate=warn", "-f", str(typo))
    assert 'unknown field "spec.portz"' in warned.stderr
    stored = kubectl.json("svc", "typo")
    assert "portz" not in stored["spec"] and "protocl" not in stored["spec"]["ports"][0]

    # Server-side apply: field managers, a conflict with another manager, --force-conflicts, and a
    # field the applier drops is removed.
    ssa = tmp_path / "ssa.yaml"
    ssa.write_text(SSA)
    assert (
        kubectl("apply", "--server-side", "-f", str(ssa)).stdout.strip() == "service/ssa serverside-applied"
    )
    managers = kubectl.json("svc", "ssa", "--show-managed-fields")["metadata"]["managedFields"]
    assert [(m["manager"], m["operation"]) for m in managers] == [("kubectl", "Apply")]
    kubectl("patch", "svc", "ssa", "--type=merge", "-p", '{"spec":{"selector":{"app":"other"}}}')
    conflict = kubectl("apply", "--server-side", "-f", str(ssa), ok=False)
    assert (
        'Apply failed with 1 conflict: conflict with "kubectl-patch" using v1: .spec.selector'
        in conflict.stderr
    )
    ssa.write_text(SSA.replace("  - {name: https, port: 443, targetPort: 8443}\n", ""))
    forced = kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ssa))
    assert forced.stdout.strip() == "service/ssa serverside-applied"
    applied = kubectl.json("svc", "ssa")
    assert applied["spec"]["selector"] == {"app": "web"}
    assert [p["port"] for p in applied["spec"]["ports"]] == [80]

    # Nodes: label, taint, wide listing, and the (always empty) pods list that describe reads.
    kubectl("create", "-f", "-", stdin=NODE)
    kubectl("label", "node", "node-1", "node.kubernetes.io/exclude-from-external-load-balancers=true")
    kubectl("taint", "node", "node-1", "ToBeDeletedByClusterAutoscaler=1:NoSchedule")
    node = kubectl.json("node", "node-1")
    assert node["metadata"]["labels"]["node.kubernetes.io/exclude-from-external-load-balancers"] == "true"
    assert node["spec"]["taints"][0]["effect"] == "NoSchedule"
    assert "OS-IMAGE" in kubectl("get", "nodes", "-o", "wide").stdout
    kubectl(
        "patch", "svc", "applied", "-p", '{"spec":{"ports":[{"port":80,"targetPort":9090}]}}'
    )  # strategic
    assert kubectl.json("svc", "applied")["spec"]["ports"][0]["targetPort"] == 9090
    described = kubectl("describe", "node", "node-1").stdout
    assert "Non-terminated Pods:" in described and "(0 in total)" in described
    assert "No resources found" in kubectl("get", "pods", "-A").stderr

    # Finalizers: removing the last one drops the field, as a real server does.
    kubectl("patch", "svc", "w1", "--type=merge", "-p", '{"metadata":{"finalizers":["example.com/hold"]}}')
    kubectl("patch", "svc", "w1", "--type=json", "-p", '[{"op":"remove","path":"/metadata/finalizers/0"}]')
    assert "finalizers" not in kubectl.json("svc", "w1")["metadata"]

    # Events: times stored in UTC with Z, and the wide columns.
    kubectl("create", "-f", "-", stdin=EVENT)
    event = kubectl.json("event", "applied.1")
    assert (
        event["firstTimestamp"] == "2026-01-01T10:00:00Z" and event["lastTimestamp"] == "2026-01-01T10:00:00Z"
    )
    wide = kubectl("get", "events", "-o", "wide").stdout
    header = wide.splitlines()[0].split()
    assert header[:4] == ["LAST", "SEEN", "TYPE", "REASON"]
    for column in ("SUBOBJECT", "SOURCE", "FIRST", "COUNT", "NAME"):
        assert column in header, wide
    assert "spec.ports" in wide and "lbprov" in wide and "applied.1" in wide

    assert "apiserver_request_total" in kubectl("get", "--raw", "/metrics").stdout

    assert 'namespace "shop" deleted' in kubectl("delete", "ns", "shop").stdout
    assert 'service "w1" deleted' in kubectl("delete", "svc", "w1").stdout
