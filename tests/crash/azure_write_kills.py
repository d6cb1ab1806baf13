"""Azure crash cases at every write: a process applying a plan is SIGKILLed right after its k-th write,
for every k, and a fresh provider (a restart) must finish the job with no leak.

The Azure counterpart of ``aws_write_kills.py``, against the ARM emulator (``lbprov_azure.sandbox``,
HTTPS, in this process; a fresh emulator for every kill point):

* ``public-create``: the first public Service of the cluster, TCP and UDP (its public IP, the
  cluster's public load balancer with frontend, pool, probes and rules, the NSG allow rules);
* ``internal-create``: the first internal Service (the internal load balancer, NSG rules);
* ``adopt-create``: a Service whose load balancer cloud-provider-azure made
  (``sandbox.cloud_provider_azure.reconcile_upstream``): lbprov adopts it in place (identity tags,
  its own NSG rules, then upstream's rules removed);
* ``public-delete``, ``internal-delete``: deleting the Service again.

For each k a child process (``python azure_write_kills.py --child``) plans and applies, and an
azure-core pipeline hook sends SIGKILL to the child itself once the k-th mutating request (PUT,
PATCH, POST, DELETE) has been answered with success: the write is done (the emulator's operations
end at once), the process dies before anything else, long-operation polls included. Then, in this
process, a fresh provider plans and applies until the plan is empty (a restart's reconcile): for a
create it finishes the create (checking convergence) and then deletes the Service, and once more
it is deleted without finishing (a Service deleted while the controller was down). The check after
each run lists the emulator with a plain azure-mgmt-network client: no load balancer, public IP or
NSG rule may remain (the emulator starts with none of them).

``python tests/crash/azure_write_kills.py`` prints the figures (runs, kills, leaks) as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # run as a script (the child) or imported by its test

import write_kills  # noqa: E402
from write_kills import converge, ref_of, run_child  # noqa: E402

CLUSTER = "crash"
CLUSTER_ID = "crash-cluster-identity"
INTERNAL = "service.beta.kubernetes.io/azure-load-balancer-internal"
SCENARIOS = ("public-create", "internal-create", "adopt-create", "public-delete", "internal-delete")
MUTATING = frozenset({"PUT", "PATCH", "POST", "DELETE"})


@dataclass
class Figures(write_kills.Figures):
    #: Leftovers lbprov keeps by design, reported apart from leaks: cloud-provider-azure's load
    #: balancer, emptied of the Service but never adopted (it lacks lbprov's cluster identity, and a
    #: load balancer of unknown identity is never deleted: providers/azure/README.md). The same is
    #: left when such a Service is deleted with no crash at all.
    kept: list[str] = field(default_factory=list)


def _service(uid: str, internal: bool) -> dict[str, Any]:
    ports = [(80, "TCP", 30080), (53, "UDP", 30053)]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "web",
            "namespace": "crash",
            "uid": uid,
            "annotations": {INTERNAL: "true"} if internal else {},
        },
        "spec": {
            "type": "LoadBalancer",
            "externalTrafficPolicy": "Cluster",
            "ports": [
                {"name": f"p{p}", "port": p, "protocol": proto, "nodePort": np} for p, proto, np in ports
            ],
        },
    }


def _provider(settings: dict[str, Any]) -> Any:
    from lbprov_azure import AzureProvider

    return AzureProvider.from_settings(
        {
            **settings,
            "cluster_name": CLUSTER,
            "cluster_id": CLUSTER_ID,
            "coalesce_window_seconds": 0.01,
        }
    )


def _intent(provider: Any, job: dict[str, Any]) -> Any:
    from lbprov.intent import IntentSettings, build_intent

    return build_intent(job["service"], job["nodes"], IntentSettings(cluster=CLUSTER), provider)


def child(job: dict[str, Any]) -> int:
    """Plan and apply ``job["op"]`` (create or delete), SIGKILLed after the ``kill_after``-th write."""
    from lbprov_azure import client as azclient

    seen = {"writes": 0}

    def on_response(policy: Any, request: Any, response: Any) -> None:
        if request.http_request.method.upper() in MUTATING and response.http_response.status_code < 300:
            seen["writes"] += 1
            if seen["writes"] == job["kill_after"]:
                os.kill(os.getpid(), signal.SIGKILL)

    # Every request of the provider goes through CloudCallsPolicy (a per-retry policy of its
    # client's pipeline): its response hook sees each answer as it arrives, before the SDK does.
    azclient.CloudCallsPolicy.on_response = on_response  # type: ignore[method-assign]
    provider = _provider(job["settings"])
    if job["op"] == "create":
        provider.apply(provider.plan(_intent(provider, job)))
    else:
        provider.apply(provider.plan_delete(ref_of(job)))
    print(json.dumps({"writes": seen["writes"]}), flush=True)
    return 0


class _Token:
    """Any object whose ``get_token`` returns an AccessToken is a credential (TOOLING.md)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken("leak-check", int(time.time()) + 3600)


def leftovers(settings: dict[str, Any], resource_groups: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(leaks, kept): every load balancer, public IP and NSG rule in the emulator, read with a plain
    azure-mgmt-network client (not the provider's). After a delete there must be none, except (kept)
    an empty load balancer without lbprov's cluster identity: upstream's, never adopted."""
    from azure.mgmt.network import NetworkManagementClient
    from lbprov_azure.names import CLUSTER_ID_KEY

    client = NetworkManagementClient(
        _Token(),
        settings["subscription_id"],
        base_url=settings["base_url"],
        connection_verify=settings["ca_bundle"],
        credential_scopes=["https://management.azure.com/.default"],
        polling_interval=0,
    )
    out: list[str] = []
    kept: list[str] = []
    for rg in resource_groups:
        for lb in client.load_balancers.list(rg):
            empty = not (lb.frontend_ip_configurations or lb.load_balancing_rules or lb.outbound_rules)
            if empty and CLUSTER_ID_KEY not in (lb.tags or {}):
                kept.append(f"load balancer {lb.name} (empty, no cluster identity)")
            else:
                out.append(f"load balancer {lb.name}")
        out += [f"public IP {ip.name}" for ip in client.public_ip_addresses.list(rg)]
    nsg = client.network_security_groups.get(settings["resource_group"], settings["security_group_name"])
    out += [f"NSG rule {r.name}" for r in nsg.security_rules or []]
    client.close()
    return sorted(out), sorted(kept)


def leaks_of(settings: dict[str, Any], resource_groups: tuple[str, ...]) -> list[str]:
    """Everything :func:`leftovers` finds, kept or leaked (what a kill leaves before recovery)."""
    leaks, kept = leftovers(settings, resource_groups)
    return leaks + kept


@contextmanager
def _emulator(names: list[str]) -> Iterator[tuple[Any, dict[str, Any], list[dict[str, Any]]]]:
    """A fresh ARM emulator seeded like a cluster: (its SandboxCloud, settings, Node objects)."""
    from lbprov_azure.sandbox import SANDBOX, azure_sandbox
    from lbprov_azure.testing import node_object

    with azure_sandbox(names) as cloud:
        settings = dict(cloud.settings)
        settings["rgs"] = [SANDBOX["resource_group"], SANDBOX["ip_resource_group"]]
        yield cloud, settings, [node_object(n) for n in cloud.nodes]


def _upstream(cloud: Any, job: dict[str, Any]) -> None:
    """The Service's load balancer, public IP and NSG rules as cloud-provider-azure made them."""
    from lbprov_azure.sandbox.cloud_provider_azure import UpstreamPort, reconcile_upstream

    s, svc = job["settings"], job["service"]
    reconcile_upstream(
        cloud.extra["state"],
        rg=s["resource_group"],
        vnet=s["vnet_name"],
        subnet=s["subnet_name"],
        nsg=s["security_group_name"],
        cluster=CLUSTER,
        namespace=svc["metadata"]["namespace"],
        name=svc["metadata"]["name"],
        uid=svc["metadata"]["uid"],
        ports=[UpstreamPort(p["protocol"], p["port"], p["nodePort"]) for p in svc["spec"]["ports"]],
        nodes=[(n["metadata"]["name"], n["status"]["addresses"][0]["address"]) for n in job["nodes"]],
    )


def unadopted_delete(names: list[str]) -> tuple[list[str], list[str]]:
    """(leaks, kept) after a Service that cloud-provider-azure made is deleted with no crash and
    before lbprov adopted anything: the baseline of ``adopt-create``'s abandoned kill points."""
    with _emulator(names) as (cloud, settings, nodes):
        rgs = tuple(settings.pop("rgs"))
        job = {"settings": settings, "service": _service(str(uuid.uuid4()), internal=False), "nodes": nodes}
        _upstream(cloud, job)
        provider = _provider(settings)
        if not converge(provider, lambda: provider.plan_delete(ref_of(job))):
            raise RuntimeError("the delete of an unadopted Service did not converge")
        return leftovers(settings, rgs)


def run_scenario(scenario: str, names: list[str], limit: int | None = None) -> Figures:
    """Every kill point of one scenario, each on a fresh emulator (``limit``: only the first kill
    points). A create recovers twice per kill point: the restart finishes the create (then
    deletes), or the Service was deleted while the controller was down."""
    figures = Figures(scenario)
    creating = scenario.endswith("-create")
    variants = ("finish", "abandon") if creating else ("delete",)
    k = 1
    while limit is None or k <= limit:
        for variant in variants:
            with _emulator(names) as (cloud, settings, nodes):
                rgs = tuple(settings.pop("rgs"))
                uid = str(uuid.uuid4())
                job = {
                    "settings": settings,
                    "service": _service(uid, internal=scenario.startswith("internal")),
                    "nodes": nodes,
                }
                if scenario == "adopt-create":
                    _upstream(cloud, job)
                elif not creating:
                    setup = _provider(settings)
                    if not converge(setup, lambda p=setup, j=job: p.plan(_intent(p, j))):
                        raise RuntimeError(f"{scenario}: the setup did not converge")
                killed, writes = run_child(
                    HERE / "azure_write_kills.py",
                    {**job, "op": "create" if creating else "delete", "kill_after": k},
                )
                figures.runs += 1
                if not killed:  # k is past the last write: every kill point was walked
                    figures.writes = writes
                    left = leaks_of(settings, rgs)
                    if left and not creating:
                        figures.leaks.append(f"{scenario}: the uninterrupted delete left {left}")
                    return figures
                figures.kills += 1
                figures.dirty_before_recovery += bool(leaks_of(settings, rgs))
                restart = _provider(settings)  # a restarted controller's provider
                if variant == "finish" and not converge(
                    restart, lambda p=restart, j=job: p.plan(_intent(p, j))
                ):
                    figures.unconverged.append(f"{scenario} k={k}: the create did not converge")
                if not converge(restart, lambda p=restart, j=job: p.plan_delete(ref_of(j))):
                    figures.unconverged.append(f"{scenario} k={k} {variant}: the delete did not converge")
                leaks, kept = leftovers(settings, rgs)
                figures.leaks += [f"{scenario} k={k} {variant}: {leak}" for leak in leaks]
                figures.kept += [f"{scenario} k={k} {variant}: {item}" for item in kept]
        k += 1
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--child")
    parser.add_argument("--scenario", action="append", choices=SCENARIOS)
    args = parser.parse_args(argv)
    if args.child:
        return child(json.loads(args.child))
    results = []
    for scenario in args.scenario or SCENARIOS:
        figures = run_scenario(scenario, ["node-a", "node-b"])
        print(json.dumps(asdict(figures)), flush=True)
        results.append(figures)
    return 0 if all(not f.leaks and not f.unconverged for f in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
