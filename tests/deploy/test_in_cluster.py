"""The in-cluster path: ``lbprov run`` configured exactly as a pod is, against an HTTPS API server.

The sandbox Kubernetes API serves HTTPS with a throwaway CA and accepts only a bearer token. The
controller gets what the kubelet gives a pod -- a service-account token file, the cluster CA file,
``KUBERNETES_SERVICE_HOST``/``PORT`` -- with the files redirected through the documented overrides
``LBPROV_INCLUSTER_TOKEN_FILE`` / ``LBPROV_INCLUSTER_CA_FILE``, no kubeconfig at all, and the
arguments and environment of the rendered ``deploy/aws`` Deployment (only the metrics address and the
sandbox's AWS endpoint differ). A Service must get its ingress from the AWS emulator (moto).
"""

from __future__ import annotations

import re
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import deploy_testlib as lib

from lbprov.provider import load_provider
from lbprov.sandbox.kube_api import KubeAPIServer
from lbprov.testing import HeldPort

TOKEN = "in-cluster-test-token"  # a throwaway bearer token for the sandbox API


def _deployment_container() -> dict[str, Any]:
    deployment = lib.find(lib.render("aws"), "Deployment", "lbprov")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def _pod_env(container: dict[str, Any], namespace: str, pod: str) -> dict[str, str]:
    """The container's env as the kubelet resolves it (downward API fields filled in)."""
    fields = {"metadata.name": pod, "metadata.namespace": namespace}
    env: dict[str, str] = {}
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
        else:
            env[e["name"]] = fields[e["valueFrom"]["fieldRef"]["fieldPath"]]
    return env


def _expand(args: list[str], env: dict[str, str]) -> list[str]:
    return [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], a) for a in args]


def _unauthenticated_status(api: KubeAPIServer) -> int:
    ctx = ssl.create_default_context(cafile=api.ca_file)
    try:
        with urllib.request.urlopen(f"{api.url}/api/v1/services", context=ctx, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_lbprov_run_in_cluster_gives_a_service_its_ingress(tmp_path: Path) -> None:
    container = _deployment_container()
    namespace = lib.find(lib.render("aws"), "Namespace")["metadata"]["name"]
    pod_env = _pod_env(container, namespace, "lbprov-7d9f-abcde")
    with (
        HeldPort() as metrics,  # held until the end: no other process takes it before lbprov does
        load_provider("aws").sandbox(["node-a", "node-b"]) as sb,
        KubeAPIServer(tls=True, token=TOKEN) as api,
    ):
        assert api.url.startswith("https://") and api.ca_file
        # The API server really demands the token over TLS.
        assert _unauthenticated_status(api) == 401
        token_file = tmp_path / "token"
        token_file.write_text(TOKEN)
        for node in sb.nodes:
            api.store.create("nodes", None, lib.node_body(node))

        # What the kubelet gives the pod, with the file locations redirected (documented overrides).
        env = {
            **pod_env,
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": str(api.port),
            "LBPROV_INCLUSTER_TOKEN_FILE": str(token_file),
            "LBPROV_INCLUSTER_CA_FILE": str(api.ca_file),
            "HOME": str(tmp_path),  # no ~/.kube/config to fall back on
            # The sandbox's endpoint and credentials, as LBPROV_AWS_* settings (IRSA in a real pod),
            # and its cluster name (its subnets are tagged for it) instead of the overlay's example.
            **lib.settings_env("aws", sb.settings),
        }
        args = [*_expand(container["args"], env), f"--metrics-address=127.0.0.1:{metrics.port}"]
        assert "--kubeconfig" not in " ".join(args)
        proc = lib.LbprovProcess(args, env, tmp_path / "lbprov.log")
        try:
            api.store.create(
                "services",
                "default",
                lib.service_body("web", [(80, "TCP"), (443, "TCP")], lb_class="lbprov.io/aws"),
            )
            # No class: left to the cluster's own cloud controller (--no-default-provider).
            api.store.create("services", "default", lib.service_body("classless", [(80, "TCP")]))

            def ingress() -> Any:
                svc = api.store.get("services", "default", "web")
                if not proc.alive():
                    raise AssertionError(f"lbprov run exited {proc.proc.returncode}:\n{proc.logs()[-4000:]}")
                return ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress")

            try:
                got = lib.wait_for(ingress, 60, "the Service's ingress")
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{proc.logs()[-4000:]}") from None
            assert got[0].get("hostname"), got  # the NLB's DNS name
            svc = api.store.get("services", "default", "web")
            assert "service.kubernetes.io/load-balancer-cleanup" in svc["metadata"]["finalizers"]
            other = api.store.get("services", "default", "classless")
            assert not other["metadata"].get("finalizers") and not (other.get("status") or {}).get(
                "loadBalancer"
            )

            # In a cluster, leader election is on: the Lease is in the pod's namespace, held by the pod.
            lease = api.store.get("leases", namespace, "lbprov")
            assert lease["spec"]["holderIdentity"] == "lbprov-7d9f-abcde"

            # The probes the Deployment declares answer on the metrics port.
            base = metrics.url
            assert lib.wait_for(lambda: lib.http_get(f"{base}/readyz")[0] == 200, 60, "/readyz")
            assert lib.http_get(f"{base}/healthz")[0] == 200
            status, metrics = lib.http_get(f"{base}/metrics")
            assert status == 200 and "lbprov_reconciles_total" in metrics

            # Deleting the Service removes the load balancer, then the finalizer, then the object.
            api.store.delete("services", "default", "web")

            def gone() -> bool:
                try:
                    api.store.get("services", "default", "web")
                except Exception:
                    return True
                return False

            lib.wait_for(gone, 60, "the Service to be deleted")

            # The sandbox records a request only after it passed the token check.
            assert {r.resource for r in api.requests} >= {"services", "nodes", "leases"}
        finally:
            code = proc.stop()
        assert code == 0, proc.logs()[-4000:]
