"""Helpers for the Azure provider's tests (and for anyone testing against :mod:`lbprov_azure.sandbox`).

``make_service`` builds a Service in the Kubernetes API's JSON shape, ``node_object`` the Node of a
sandbox instance, ``converge`` runs plan + apply and proves DESIGN.md's convergence and idempotence
invariants, ``lb_of`` / ``part_names`` read the emulator's state, ``long_operations`` makes its operations long, ``upstream_service`` makes what
cloud-provider-azure made for a Service, ``arm_raw`` sends one request below the SDK, ``MemoryKube`` is the little of the Kubernetes API that the
real reconciler needs (Services, patches, events).
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from lbprov.model import Intent, SandboxNode
from lbprov.testing import converged

if TYPE_CHECKING:
    from lbprov.controller.manager import Controller
    from lbprov.controller.service import ServiceReconciler
    from lbprov.kube.client import KubeClient
    from lbprov.provider import SandboxCloud
    from lbprov_azure.provider import AzureProvider
    from lbprov_azure.sandbox.state import ArmState
    from lbprov_azure.settings import AzureSettings

SANDBOX_RG = "lbprov-sandbox"
_node_ports = itertools.count(30000)


def node_object(n: SandboxNode, **labels: str) -> dict[str, Any]:
    """The Kubernetes Node object of a sandbox instance."""
    return {
        "metadata": {"name": n.name, "labels": {"topology.kubernetes.io/zone": n.zone, **labels}},
        "spec": {"providerID": n.provider_id},
        "status": {
            "addresses": [{"type": "InternalIP", "address": a} for a in (n.internal_ip, n.internal_ipv6) if a]
        },
    }


def make_service(
    name: str = "web",
    *,
    namespace: str = "default",
    uid: str | None = None,
    ports: list[tuple[str, int]] | None = None,
    annotations: dict[str, str] | None = None,
    policy: str = "Cluster",
    affinity: str = "None",
    source_ranges: list[str] | None = None,
    lb_ip: str | None = None,
    node_ports: dict[tuple[str, int], int] | None = None,
) -> dict[str, Any]:
    """A Service as the API server returns it; NodePorts are unique across the test session."""
    node_ports = node_ports if node_ports is not None else {}
    spec_ports = []
    for proto, port in ports or [("TCP", 80)]:
        np = node_ports.setdefault((proto, port), next(_node_ports))
        spec_ports.append(
            {"name": f"{proto.lower()}-{port}", "protocol": proto, "port": port, "nodePort": np}
        )
    spec: dict[str, Any] = {
        "type": "LoadBalancer",
        "ports": spec_ports,
        "externalTrafficPolicy": policy,
        "sessionAffinity": affinity,
    }
    if policy == "Local":
        spec["healthCheckNodePort"] = next(_node_ports)
    if source_ranges:
        spec["loadBalancerSourceRanges"] = source_ranges
    if lb_ip:
        spec["loadBalancerIP"] = lb_ip
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": uid or str(uuid.uuid4()),
            "annotations": annotations or {},
        },
        "spec": spec,
    }


def converge(provider: AzureProvider, intent: Intent) -> tuple[Any, ...]:
    """plan + apply, then prove convergence and idempotence (:func:`lbprov.testing.converged`);
    returns the ingress."""
    return converged(provider, intent)[1]


@contextlib.contextmanager
def long_operations(state: ArmState) -> Iterator[list[int]]:
    """Long-running ARM operations that end on every second operation poll (no wall-clock window):
    yields the count of polls so far (a one-item list); afterwards the emulator answers at once
    again and every operation still in progress has ended."""
    polls = [0]

    def end_every_second_poll(method: str, path: str) -> None:
        if method == "GET" and "/operations/" in path.lower():
            polls[0] += 1
            if polls[0] % 2 == 0:
                state.finish_operations()

    state.lro_seconds = 3600.0
    state.hooks.append(end_every_second_poll)
    try:
        yield polls
    finally:
        state.hooks.remove(end_every_second_poll)
        state.lro_seconds = 0.0
        state.finish_operations()


def lb_of(state: ArmState, name: str) -> dict[str, Any] | None:
    """A load balancer of the sandbox resource group, as the emulator holds it."""
    return state.get("loadBalancers", SANDBOX_RG, name)


def part_names(lb: dict[str, Any] | None, field: str) -> set[str]:
    """The names of a load balancer's sub-resources ``field``."""
    return {str(i["name"]) for i in ((lb or {}).get("properties") or {}).get(field, [])}


def nsg_rules(state: ArmState, base: str, address: str | None = None) -> dict[str, dict[str, Any]]:
    """The NSG rules serving a Service, by name: its own (named after ``base``) and the shared rules
    (merged by destination) that hold ``address``, its frontend address."""
    nsg = state.get("networkSecurityGroups", SANDBOX_RG, "lbprov-nsg") or {}
    out = {}
    for r in nsg.get("properties", {}).get("securityRules", []):
        p = r["properties"]
        dests = (
            [p["destinationAddressPrefix"]]
            if p.get("destinationAddressPrefix")
            else p.get("destinationAddressPrefixes", [])
        )
        if base in r["name"] or (address and " shared " in p.get("description", "") and address in dests):
            out[r["name"]] = p
    return out


def allow_rule(state: ArmState, base: str, address: str | None, protocol: str = "Tcp") -> dict[str, Any]:
    """The one allow rule of ``protocol`` serving a Service (see :func:`nsg_rules`)."""
    found = [
        p
        for p in nsg_rules(state, base, address).values()
        if p["access"] == "Allow" and p["protocol"] == protocol
    ]
    assert len(found) == 1, found
    return found[0]


def upstream_service(
    state: ArmState, provider: AzureProvider, svc: dict[str, Any], nodes: list[dict[str, Any]], **kw: Any
) -> str:
    """What cloud-provider-azure made for ``svc`` (a Service as :func:`make_service` returns it) over
    ``nodes`` (Node objects), in ``provider``'s resource group, network, NSG and cluster; its frontend
    address. ``kw`` goes to :func:`~lbprov_azure.sandbox.cloud_provider_azure.reconcile_upstream`,
    over those (another ``cluster``, ``nsg=None``, ``internal``, ``nsg_style``, ``aks_outbound``...)."""
    from lbprov_azure.sandbox.cloud_provider_azure import UpstreamPort, reconcile_upstream

    s = provider.settings
    args: dict[str, Any] = {
        "rg": s.resource_group,
        "vnet": s.vnet_name,
        "subnet": s.subnet_name,
        "nsg": s.security_group_name,
        "cluster": s.cluster_name,
        "namespace": svc["metadata"]["namespace"],
        "name": svc["metadata"]["name"],
        "uid": svc["metadata"]["uid"],
        "ports": [UpstreamPort(p["protocol"], p["port"], p["nodePort"]) for p in svc["spec"]["ports"]],
        "nodes": [(n["metadata"]["name"], n["status"]["addresses"][0]["address"]) for n in nodes],
    }
    return reconcile_upstream(state, **{**args, **kw})


def arm_raw(
    sandbox: SandboxCloud, method: str, url: str, body: Any = None, *, token: bool = True
) -> tuple[int, Any, dict[str, str]]:
    """One request to the ARM emulator, below the SDK: (status, JSON answer, headers), errors included.

    ``url`` is a path under the emulator's endpoint or a whole URL (a long operation's); the
    emulator's throwaway CA is trusted, and ``token=False`` leaves the bearer token out."""
    import json
    import ssl
    import urllib.error
    import urllib.request

    ctx = ssl.create_default_context(cafile=sandbox.settings["ca_bundle"])
    full = url if url.startswith("https://") else sandbox.endpoint + url
    req = urllib.request.Request(full, method=method, data=json.dumps(body).encode() if body else None)
    if token:
        req.add_header("Authorization", "Bearer t")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, context=ctx) as resp:
            return resp.status, json.loads(resp.read() or b"null"), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null"), dict(err.headers)


def network_prefix(sandbox: SandboxCloud) -> str:
    """The path of Microsoft.Network in the sandbox resource group (for :func:`arm_raw`)."""
    subscription = sandbox.settings["subscription_id"]
    return f"/subscriptions/{subscription}/resourceGroups/{SANDBOX_RG}/providers/Microsoft.Network"


def offline_settings(**extra: Any) -> AzureSettings:
    """Settings of a made-up subscription with a static token: for tests that build a client and
    send nothing (its transport, timeouts and TLS)."""
    from lbprov_azure.settings import AzureSettings

    return AzureSettings(
        subscription_id="00000000-0000-0000-0000-000000000000",
        resource_group="rg",
        location="westeurope",
        vnet_name="vnet",
        subnet_name="subnet",
        auth="static-token",
        static_token="token",
        **extra,
    )


def controller_for(kube: KubeClient, provider: AzureProvider, cluster: str, *, workers: int) -> Controller:
    """The real controller with the Azure provider only; short debounce and backoff so tests run fast."""
    from lbprov.controller.manager import Controller, ControllerConfig

    providers: dict[str, Any] = {"azure": provider}
    return Controller(
        kube,
        providers,
        ControllerConfig(
            cluster=cluster,
            default_provider="azure",
            workers=workers,
            node_debounce=0.2,
            backoff_base=0.2,
            backoff_max=2.0,
            cache_sync_timeout=10,
        ),
    )


class MemoryKube:
    """Just enough of the controller's Kubernetes API: Services by key, merge patches, events."""

    def __init__(self, services: list[dict[str, Any]]) -> None:
        self.services = {
            f"{s['metadata']['namespace']}/{s['metadata']['name']}": copy.deepcopy(s) for s in services
        }
        self.events: list[tuple[str, str, str]] = []

    def get_service(self, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.services.get(f"{namespace}/{name}"))

    def _merge(self, target: dict[str, Any], patch: dict[str, Any]) -> None:
        for k, v in patch.items():
            if v is None:
                target.pop(k, None)
            elif isinstance(v, dict) and isinstance(target.get(k), dict):
                self._merge(target[k], v)
            else:
                target[k] = copy.deepcopy(v)

    def patch_service(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        svc = self.services[f"{namespace}/{name}"]
        self._merge(svc, patch)
        return copy.deepcopy(svc)

    def patch_service_status(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return self.patch_service(namespace, name, patch)

    def create_event(
        self,
        obj: dict[str, Any],
        *,
        type: str,
        reason: str,
        message: str,
        component: str = "",
        timestamp: str | None = None,
        name: str | None = None,
        combined: bool = False,
    ) -> None:
        self.events.append((obj["metadata"]["name"], reason, message))

    def reconciler(
        self, provider: AzureProvider, nodes: list[dict[str, Any]], cluster: str
    ) -> ServiceReconciler:
        """The real reconciler over these Services and ``nodes``, with the Azure provider only."""
        from lbprov.controller.service import ServiceReconciler

        providers: dict[str, Any] = {"azure": provider}
        return ServiceReconciler(
            self,
            get_service=lambda key: self.get_service(*key.split("/", 1)),
            list_nodes=lambda: nodes,
            providers=providers,
            cluster=cluster,
            default_provider="azure",
        )
