"""Shared set-up for the CLI tests against the real providers on their emulators.

One sandbox Kubernetes API server and one cloud emulator per provider and test module; every test
uses its own namespace. The cluster name is the sandbox's (the emulators seed networks tagged for
it, which discovery needs), so a test that must see only its own load balancers (gc) first deletes
what earlier tests left (:meth:`Env.wipe`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lbprov.intent import IntentSettings, build_intent
from lbprov.kube.facts import fill_settings
from lbprov.model import Plan
from lbprov.provider import Provider, SandboxCloud, load_provider
from lbprov.testing import wait_for

NODE_NAMES = ["node-1", "node-2"]
_counter = itertools.count(1)


@dataclass
class Env:
    """A Kubernetes API + one provider's emulator, and helpers to drive them from a test."""

    provider_name: str
    cloud: SandboxCloud
    api: Any  # KubeAPIServer
    kube: Any  # KubeClient
    kubeconfig: str
    tmp: Path
    cluster: str = ""
    namespace: str = ""
    settings_file: str = ""
    _writer: Provider | None = field(default=None, repr=False)

    def fresh(self) -> Env:
        """A new namespace and cluster name for one test, with a settings file for the CLI."""
        n = next(_counter)
        self.cluster = str(self.cloud.settings.get("cluster_name") or "sandbox")
        self.namespace = f"ns{n}"
        self.kube.create_namespace(self.namespace)
        settings = {k: v for k, v in self.cloud.settings.items() if k != "cluster_name"}
        path = self.tmp / f"settings-{self.cluster}.yaml"
        # The identity too, as a user planning manifests without a cluster would give it.
        shared = {"cluster_name": self.cluster, "cluster_id": self.cluster_id}
        path.write_text(yaml.safe_dump({**shared, self.provider_name: settings}))
        self.settings_file = str(path)
        self._writer = None
        return self

    def wipe(self) -> None:
        """Delete every load balancer this cluster owns in the emulator (left by earlier tests)."""
        for owned in self.writer.list_owned():
            self.writer.apply(self.writer.plan_delete(owned.ref))
        assert self.writer.list_owned() == []

    # -- CLI argv -------------------------------------------------------------------------------------

    def plan_argv(self, *extra: str) -> list[str]:
        return [
            "plan",
            "--provider",
            self.provider_name,
            "--settings",
            self.settings_file,
            "--kubeconfig",
            self.kubeconfig,
            "-n",
            self.namespace,
            *extra,
        ]

    def gc_argv(self, *extra: str) -> list[str]:
        return [
            "gc",
            "--provider",
            self.provider_name,
            "--settings",
            self.settings_file,
            "--kubeconfig",
            self.kubeconfig,
            *extra,
        ]

    # -- the cloud, as the controller would drive it ----------------------------------------------------

    @property
    def cluster_id(self) -> str:
        """The cluster's identity, as the controller and the CLI read it: the kube-system Namespace UID."""
        namespace = self.kube.get_namespace("kube-system")
        assert namespace is not None, "the sandbox API server has a kube-system Namespace"
        return str(namespace["metadata"]["uid"])

    @property
    def writer(self) -> Provider:
        """A writable provider for this test's cluster (what the controller would use)."""
        if self._writer is None:
            self._writer = load_provider(self.provider_name).from_settings(self.settings(read_only=False))
        return self._writer

    def reader(self) -> Provider:
        return load_provider(self.provider_name).from_settings(self.settings(read_only=True), read_only=True)

    def settings(self, *, read_only: bool) -> dict[str, Any]:
        """The settings the CLI would run with: the cluster identity and the provider's cluster facts
        filled from the sandbox cluster, as ``lbprov plan``/``run`` fill them."""

        settings = {**self.cloud.settings, "cluster_name": self.cluster}
        return fill_settings(self.kube, load_provider(self.provider_name), settings, read_only=read_only)

    def plan_for(self, name: str, provider: Provider | None = None) -> Plan:
        p = provider or self.writer
        svc = self.kube.get_service(self.namespace, name)
        intent = build_intent(svc, self.kube.list_nodes()[0], IntentSettings(self.cluster), p)
        return p.plan(intent)

    def converge(self, name: str) -> None:
        """Add the finalizer and apply the Service's plan, as the controller does."""
        self.add_finalizer(name)
        plan = self.plan_for(name)
        self.writer.apply(plan)
        assert self.plan_for(name).empty, "provider did not converge"

    # -- Kubernetes objects -----------------------------------------------------------------------------

    def create_service(
        self,
        name: str,
        ports: list[tuple[str, int]] = [("TCP", 80)],  # noqa: B006 - read-only default
        annotations: Mapping[str, str] | None = None,
        lb_class: str | None = None,
    ) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "type": "LoadBalancer",
            "selector": {"app": name},
            "ports": [
                {"name": f"{proto.lower()}-{port}", "protocol": proto, "port": port, "targetPort": 8080}
                for proto, port in ports
            ],
        }
        if lb_class:
            spec["loadBalancerClass"] = lb_class
        body = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": self.namespace, "annotations": dict(annotations or {})},
            "spec": spec,
        }
        svc: dict[str, Any] = self.kube.create_service(self.namespace, body)
        return svc

    def patch(self, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = self.kube.patch_service(self.namespace, name, dict(patch))
        return out

    def add_finalizer(self, name: str) -> None:
        svc = self.kube.get_service(self.namespace, name)
        finalizers = list(svc["metadata"].get("finalizers") or [])
        if "service.kubernetes.io/load-balancer-cleanup" not in finalizers:
            finalizers.append("service.kubernetes.io/load-balancer-cleanup")
            self.patch(name, {"metadata": {"finalizers": finalizers}})

    def delete_service_bypassing_controller(self, name: str) -> None:
        """Delete the Service as if no controller ran: drop the finalizer, then delete."""
        self.patch(name, {"metadata": {"finalizers": []}})
        self.kube.delete_service(self.namespace, name)
        wait_for(lambda: self._gone(name), 20.0, f"Service {name} deleted")

    def _gone(self, name: str) -> bool:
        try:
            return self.kube.get_service(self.namespace, name) is None
        except Exception as exc:  # a 404 from a client that raises
            return getattr(exc, "status", None) == 404


def start_env(provider_name: str, tmp: Path) -> Iterator[Env]:
    """Generator for a module fixture: sandbox API + the provider's emulator with two nodes."""
    from lbprov.kube.client import KubeClient
    from lbprov.sandbox.demo import node_object
    from lbprov.sandbox.kube_api import KubeAPIServer

    cls = load_provider(provider_name)
    with KubeAPIServer() as api, cls.sandbox(NODE_NAMES) as cloud:
        kubeconfig = api.write_kubeconfig(tmp / "kubeconfig")
        kube = KubeClient.for_url(api.url)
        for node in cloud.nodes:
            kube.create_node(node_object(node))
        yield Env(provider_name, cloud, api, kube, kubeconfig, tmp)
