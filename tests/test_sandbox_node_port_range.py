"""The sandbox API server's --service-node-port-range (for benchmarks past the default's 2,768 ports)."""

from __future__ import annotations

import json
from typing import Any

import kubernetes.client as k8s
import pytest
from kubernetes.client.exceptions import ApiException

from lbprov.sandbox.kube_api import KubeAPIServer


def _service(name: str, node_port: int | None = None) -> dict[str, Any]:
    port: dict[str, Any] = {"port": 80, "targetPort": 8080}
    if node_port is not None:
        port["nodePort"] = node_port
    return {"metadata": {"name": name}, "spec": {"type": "LoadBalancer", "ports": [port]}}


def test_a_wider_range_allocates_and_accepts_node_ports_inside_it_only() -> None:
    with KubeAPIServer(service_node_port_range="30000-30001") as srv:
        client = k8s.ApiClient(k8s.Configuration(host=srv.url))
        core = k8s.CoreV1Api(client)
        try:
            made = [core.create_namespaced_service("default", _service(f"s{i}")) for i in range(2)]
            assert sorted(s.spec.ports[0].node_port for s in made) == [30000, 30001]
            with pytest.raises(ApiException) as full:
                core.create_namespaced_service("default", _service("s2"))
            assert full.value.status == 422 and "range is full" in json.loads(full.value.body)["message"]
        finally:
            client.close()
    with KubeAPIServer(service_node_port_range="30000-40000") as srv:
        client = k8s.ApiClient(k8s.Configuration(host=srv.url))
        core = k8s.CoreV1Api(client)
        try:
            assert (
                core.create_namespaced_service("default", _service("a", 39999)).spec.ports[0].node_port
                == 39999
            )
            with pytest.raises(ApiException) as out:
                core.create_namespaced_service("default", _service("b", 40001))
            assert out.value.status == 422 and "30000-40000" in json.loads(out.value.body)["message"]
        finally:
            client.close()


def test_a_malformed_range_is_refused_with_the_option_named() -> None:
    with pytest.raises(ValueError, match="service_node_port_range"):
        KubeAPIServer(service_node_port_range="40000-30000")
