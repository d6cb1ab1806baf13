"""Least privilege, proven: the terraform modules grant exactly what the providers use.

For each cloud, one module-scoped run drives the real provider against its local emulator through
representative scenarios -- Services with TCP and UDP ports, ``externalTrafficPolicy: Local``,
ClientIP affinity, source ranges, internal load balancers and the provider's own options; updates of
each; node churn; ``lbprov plan`` and ``lbprov gc`` (dry runs, through the real CLI); deletion of
everything -- and records every operation the provider's CloudCalls actually sent.

Each operation maps to its IAM permission(s) through the provider's own table
(``lbprov_<cloud>/operations.py``). Then:

* the controller's permissions in ``terraform/<cloud>`` are exactly the permissions of the recorded
  operations, apart from a short allow-list (below, each entry with its reason);
* every operation the provider's table lists is covered, so no rarely taken code path can fail with
  "access denied" in production;
* the read-only variant covers every read ``lbprov plan`` made and nothing that any write needs.
"""

from __future__ import annotations

import importlib
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import deploy_testlib as lib
import pytest
import yaml

from lbprov.cli import main as lbprov_main
from lbprov.cloudcalls import CloudCalls
from lbprov.intent import IntentSettings, build_intent
from lbprov.kube.client import KubeClient
from lbprov.provider import Provider, load_provider
from lbprov.sandbox.kube_api import KubeAPIServer

FINALIZER = "service.kubernetes.io/load-balancer-cleanup"

#: Permissions the controller's role grants although no recorded operation maps to them: the short,
#: commented allow-list. An entry that a recorded operation does need is reported as stale.
_AZURE_JOIN = (
    "no request is sent for it; ARM checks it on the load-balancer PUT that references the resource "
    "(lbprov_azure.operations.JOIN_PERMISSIONS)"
)
ALLOWED_EXTRA: dict[str, dict[str, str]] = {
    "aws": {
        "elasticloadbalancing:SetIpAddressType": (
            "SetIpAddressType: sent only to switch an NLB between ipv4 and dualstack "
            "(providers/aws/tests/test_dualstack.py covers it)"
        ),
        "ec2:UpdateSecurityGroupRuleDescriptionsIngress": (
            "sent only to take over cloud-provider-aws's node rules of an NLB adopted in place "
            "(providers/aws/tests/test_adopt.py covers it)"
        ),
        "elasticloadbalancing:SetSecurityGroups": (
            "sent only when the security-groups / extra-security-groups annotations of an NLB created "
            "with groups change (providers/aws/tests/test_security_group_annotations.py covers it)"
        ),
    },
    "gcp": {
        "compute.instances.list": (
            "instances.list: sent only when the setting node_tags is unset, to find the nodes' network tags "
            "as upstream does (providers/gcp/tests/test_upstream_parity.py covers it)"
        ),
        "compute.forwardingRules.setLabels": (
            "forwardingRules.setLabels: sent only to add the cluster identity to a forwarding rule made "
            "before identities (providers/gcp/tests/test_cluster_identity.py covers it)"
        ),
        "compute.addresses.setLabels": (
            "addresses.setLabels: sent only to add the cluster identity to a reservation kept (static_addresses) "
            "from before identities (providers/gcp/tests/test_cluster_identity.py covers it)"
        ),
        "compute.forwardingRules.update": (
            "forwardingRules.patch: sent only when networking.gke.io/internal-load-balancer-allow-global-access "
            "changes on an existing internal Service (providers/gcp/tests/test_annotations.py covers it)"
        ),
        **{
            f"compute.{op}": (
                f"{op}: sent only when a Service's load balancer was made by cloud-provider-gcp and lbprov "
                "takes it over (providers/gcp/tests/test_migration.py covers it)"
            )
            for op in (
                "targetPools.list",
                "targetPools.delete",
                "httpHealthChecks.list",
                "httpHealthChecks.delete",
            )
        },
    },
    "azure": {
        "Microsoft.Network/publicIPAddresses/join/action": f"a frontend's public IP: {_AZURE_JOIN}",
        "Microsoft.Network/publicIPPrefixes/join/action": (
            "the prefix of azure-pip-prefix-id: no request is sent for it; ARM checks it on the public IP "
            "PUT that takes its address from the prefix (lbprov_azure.operations.JOIN_PERMISSIONS)"
        ),
        "Microsoft.Network/virtualNetworks/subnets/join/action": f"an internal frontend's subnet: {_AZURE_JOIN}",
        "Microsoft.Network/virtualNetworks/join/action": f"the backend pool's VNet: {_AZURE_JOIN}",
        "Microsoft.Network/virtualNetworks/joinLoadBalancer/action": (
            "the backend pool's VNet, as Azure documents it for IP-based backend pools: the same check, "
            "under the name Azure's docs give (kept beside join/action until verified on a live account)"
        ),
    },
}

#: Operations in a provider's table that the scenarios never send, and why. "unreachable:" means no
#: code path of the provider can send it (it is not granted); "granted:" means it can be sent on a
#: path the emulator cannot produce (its permissions must then be granted, via ALLOWED_EXTRA).
#: The set must match exactly, so that this list stays current as providers change.
UNEXERCISED: dict[str, dict[str, str]] = {
    "aws": {
        "elbv2:SetIpAddressType": (
            "granted: sent when ip-address-type or spec.ipFamilies switch an NLB between ipv4 and "
            "dualstack, which needs IPv6 subnets the scenarios' VPC lacks "
            "(providers/aws/tests/test_dualstack.py covers it)"
        ),
        "ec2:CreateTags": (
            "granted: only a classic ELB security group made by cloud-provider-aws (adopted) or by an "
            "older lbprov (the cluster identity) is tagged after its creation (providers/aws/tests/test_adopt.py)"
        ),
        "ec2:UpdateSecurityGroupRuleDescriptionsIngress": (
            "granted: only cloud-provider-aws's node rules of an adopted NLB are taken over "
            "(providers/aws/tests/test_adopt.py)"
        ),
        "elbv2:SetSecurityGroups": (
            "granted: sent only when the security-groups / extra-security-groups annotations of an "
            "NLB created with groups change (providers/aws/tests/test_security_group_annotations.py)"
        ),
    },
    "gcp": {
        **{
            op: "unreachable: nodes come from providerIDs (instances are only listed, for their tags); networks and subnetworks are named by the settings"
            for op in (
                "instances.get",
                "networks.get",
                "subnetworks.get",
            )
        },
        **{
            op: "unreachable: the provider waits on operations with *.wait, never *.get"
            for op in ("globalOperations.get", "regionOperations.get", "zoneOperations.get")
        },
        **{
            op: "unreachable: these resources are modified with patch (health checks with update)"
            for op in ("firewalls.update", "regionHealthChecks.patch")
        },
        **{
            op: "unreachable: the provider reads these collections with list (filtered), never get"
            for op in ("forwardingRules.get", "regionBackendServices.get")
        },
        "instanceGroups.list": "unreachable: instance groups are read with aggregatedList and listInstances",
        "forwardingRules.patch": "granted: only a change of allow-global-access on an internal Service sends it",
        "forwardingRules.setLabels": "granted: only a forwarding rule from before cluster identities gets it",
        "addresses.setLabels": "granted: only a reservation kept from before cluster identities gets it",
        "regionBackendServices.update": "granted: only when no eligible node is left (a patch cannot empty backends)",
        "instances.list": "granted: the nodes' network tags are read from the instances when node_tags is unset",
        **{
            op: "granted: only a Service taken over from cloud-provider-gcp's target-pool load balancer"
            for op in (
                "targetPools.list",
                "targetPools.delete",
                "httpHealthChecks.list",
                "httpHealthChecks.delete",
            )
        },
    },
    "azure": {
        "networkSecurityGroups.list": "unreachable: the provider gets the one configured NSG by name",
        "securityRules.list": "unreachable: the NSG's rules are read with the NSG itself",
        "subnets.get": "unreachable: the subnet's ID is built from the settings, never read",
        "virtualNetworks.get": "unreachable: the VNet's ID is built from the settings, never read",
    },
}

#: Provider-specific annotations for the scenarios.
INTERNAL = {
    "aws": {"service.beta.kubernetes.io/aws-load-balancer-internal": "true"},
    "gcp": {"networking.gke.io/load-balancer-type": "Internal"},
    "azure": {"service.beta.kubernetes.io/azure-load-balancer-internal": "true"},
}


# ---- Kubernetes objects -------------------------------------------------------------------------


def make_service(
    name: str,
    ports: Sequence[tuple[int, str]],
    *,
    uid_seed: int,
    traffic_policy: str = "Cluster",
    affinity: bool = False,
    source_ranges: Sequence[str] = (),
    annotations: Mapping[str, str] | None = None,
    deleting: bool = False,
    node_port_shift: int = 0,
    health_port_shift: int = 0,
) -> dict[str, Any]:
    """A Service as the API server returns it (NodePorts allocated, UID set)."""
    spec: dict[str, Any] = {
        "type": "LoadBalancer",
        "externalTrafficPolicy": traffic_policy,
        "sessionAffinity": "ClientIP" if affinity else "None",
        "ports": [
            {
                "name": f"{proto.lower()}-{port}",
                "protocol": proto,
                "port": port,
                "targetPort": port,
                "nodePort": 30000 + uid_seed * 20 + i + node_port_shift,
            }
            for i, (port, proto) in enumerate(ports)
        ],
    }
    if traffic_policy == "Local":
        spec["healthCheckNodePort"] = 32000 + uid_seed + health_port_shift
    if affinity:
        spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": 10800}}
    if source_ranges:
        spec["loadBalancerSourceRanges"] = list(source_ranges)
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "default",
        "uid": f"{uid_seed:08d}-0000-4000-8000-{uid_seed:012d}",  # lb names use the first 31 hex digits
        "annotations": dict(annotations or {}),
        "finalizers": [FINALIZER],
    }
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec}


# ---- scenarios ----------------------------------------------------------------------------------


AWS = "service.beta.kubernetes.io/aws-load-balancer-"


@dataclass
class Scenario:
    """Services to create, then rounds of changes (each a list of Services in their new state)."""

    services: list[dict[str, Any]]
    rounds: list[list[dict[str, Any]]]


def scenario(cloud: str, sb: Any) -> Scenario:
    """Representative Services for ``cloud``, in the sandbox ``sb``, and how they change."""
    svc = make_service
    create = [
        svc("tcp", [(80, "TCP"), (443, "TCP")], uid_seed=1),
        svc("udp", [(53, "UDP")], uid_seed=2),
        svc("local", [(8080, "TCP")], uid_seed=3, traffic_policy="Local"),
        svc("affinity", [(80, "TCP")], uid_seed=4, affinity=True),
        svc("ranges", [(22, "TCP")], uid_seed=5, source_ranges=["203.0.113.0/24"]),
        svc("internal", [(80, "TCP")], uid_seed=6, annotations=INTERNAL[cloud]),
        svc("local-hc", [(9090, "TCP")], uid_seed=9, traffic_policy="Local"),
    ]
    round1 = [
        svc("tcp", [(80, "TCP"), (8443, "TCP")], uid_seed=1),  # a port replaced
        svc("udp", [(53, "UDP"), (5353, "UDP")], uid_seed=2),  # a port added
        svc("local", [(8080, "TCP")], uid_seed=3),  # Local -> Cluster: the health check changes
        svc("affinity", [(80, "TCP")], uid_seed=4),  # affinity off
        svc("ranges", [(22, "TCP")], uid_seed=5, source_ranges=["198.51.100.0/24"]),  # other ranges
        svc("internal", [(80, "TCP"), (81, "TCP")], uid_seed=6, annotations=INTERNAL[cloud]),
        # Another healthCheckNodePort: the health check is updated in place.
        svc("local-hc", [(9090, "TCP")], uid_seed=9, traffic_policy="Local", health_port_shift=100),
    ]
    rounds = [round1]
    if cloud == "aws":
        one, two = sb.extra["public_subnets"][0], ",".join(sb.extra["public_subnets"][:2])
        classic = {AWS + "type": "classic"}
        create += [
            svc(
                "classic",
                [(80, "TCP")],
                uid_seed=7,
                annotations={
                    **classic,
                    AWS + "subnets": one,
                    AWS + "additional-resource-tags": "team=web,env=test",
                    # An SSL listener with upstream's classic SSL negotiation policy.
                    AWS + "ssl-cert": sb.extra["create_certificate"](),
                    AWS + "ssl-negotiation-policy": "ELBSecurityPolicy-TLS-1-2-2017-01",
                },
            ),
            svc(
                "options",
                [(80, "TCP")],
                uid_seed=8,
                annotations={
                    AWS + "proxy-protocol": "*",
                    AWS + "cross-zone-load-balancing-enabled": "true",
                    AWS + "additional-resource-tags": "team=web,env=test",
                    AWS + "subnets": one,
                },
            ),
        ]
        round1 += [
            # Listener replaced, subnet attached, tags changed, cross-zone on, custom health check.
            svc(
                "classic",
                [(8080, "TCP")],
                uid_seed=7,
                annotations={
                    **classic,
                    AWS + "subnets": two,
                    AWS + "additional-resource-tags": "team=ops",
                    AWS + "cross-zone-load-balancing-enabled": "true",
                    AWS + "healthcheck-interval": "20",
                },
            ),
            # Subnet added, another NodePort (new target group, listener modified), options off, a
            # tag dropped. (No TLS here: moto cannot modify a listener to TLS.)
            svc(
                "options",
                [(80, "TCP")],
                uid_seed=8,
                node_port_shift=10,
                annotations={AWS + "subnets": two, AWS + "additional-resource-tags": "team=web"},
            ),
        ]
        rounds.append(
            [
                # Subnet detached.
                svc(
                    "classic",
                    [(8080, "TCP")],
                    uid_seed=7,
                    annotations={
                        **classic,
                        AWS + "subnets": one,
                        AWS + "additional-resource-tags": "team=ops",
                        AWS + "cross-zone-load-balancing-enabled": "true",
                        AWS + "healthcheck-interval": "20",
                    },
                ),
            ]
        )
    return Scenario(create, rounds)


def drift(cloud: str, sb: Any, services: Mapping[str, dict[str, Any]]) -> list[str]:
    """Change the cloud by hand, as an operator might; returns the Services whose next reconcile
    must repair it (the periodic resync does that in the controller)."""
    if cloud != "aws":
        return []
    import boto3

    elb = boto3.client(
        "elb",
        region_name=sb.settings["region"],
        endpoint_url=sb.settings["endpoint_url"],
        aws_access_key_id=sb.settings["access_key_id"],
        aws_secret_access_key=sb.settings["secret_access_key"],
    )
    from lbprov.naming import lb_name

    # The classic ELB's security groups replaced by the nodes' group.
    name = lb_name(services["classic"]["metadata"]["uid"])
    elb.apply_security_groups_to_load_balancer(
        LoadBalancerName=name, SecurityGroups=[sb.extra["node_security_group_id"]]
    )
    return ["classic"]


# ---- recording ----------------------------------------------------------------------------------


@dataclass
class Recording:
    cloud: str
    #: operation -> "read" | "write", as CloudCalls classified every request it let through.
    operations: dict[str, str] = field(default_factory=dict)
    #: operations sent while `lbprov plan` / `lbprov gc` (dry run) ran.
    plan_operations: dict[str, str] = field(default_factory=dict)
    refused_during_plan: set[str] = field(default_factory=set)
    emulator_mutations_during_plan: list[str] = field(default_factory=list)
    #: exit code and output of `lbprov gc` (dry run) against an empty cluster.
    gc_result: tuple[int, str] = (-1, "")


class _Spy:
    """Records every operation any CloudCalls instance lets through (wraps the real method, which
    still does all the work: guard, rate limit, count)."""

    def __init__(self) -> None:
        self.all: dict[str, str] = {}
        self.phase: dict[str, str] = {}
        self.refused: set[str] = set()

    def install(self, mp: pytest.MonkeyPatch) -> None:
        spy = self
        original = CloudCalls.before_send

        def before_send(calls: CloudCalls, operation: str) -> Any:
            try:
                kind = original(calls, operation)
            except Exception:
                spy.refused.add(operation)
                raise
            spy.all[operation] = kind
            spy.phase[operation] = kind
            return kind

        mp.setattr(CloudCalls, "before_send", before_send)

    def new_phase(self) -> None:
        self.phase = {}
        self.refused = set()


def _ensure(provider: Provider, cluster: str, svc: Mapping[str, Any], nodes: list[dict[str, Any]]) -> None:
    intent = build_intent(svc, nodes, IntentSettings(cluster=cluster), provider)
    provider.apply(provider.plan(intent))
    again = provider.plan(intent)
    assert again.empty, f"{svc['metadata']['name']}: not converged: {again.summary()}"


def _ensure_racing(
    providers: list[Provider], cluster: str, svcs: list[dict[str, Any]], nodes: list[dict[str, Any]]
) -> None:
    """Plan new Services in separate provider instances before applying any -- two controllers
    overlapping during a lease handover: resources the Services share (GCP's health check, firewall
    and instance groups) are created by the first and found by the second, which loses the race."""
    intents = [
        build_intent(svc, nodes, IntentSettings(cluster=cluster), p)
        for svc, p in zip(svcs, providers, strict=True)
    ]
    plans = [p.plan(intent) for intent, p in zip(intents, providers, strict=True)]
    for intent, plan, p in zip(intents, plans, providers, strict=True):
        try:
            p.apply(plan)
        except Exception as exc:
            # The loser may be told its plan is stale (AWS: the node security group changed under
            # it); the controller then requeues the Service and plans again. So do we, once.
            print(f"{intent.ref.key}: apply after a race failed ({exc!r}); planning again")
            p.apply(p.plan(intent))
    for intent in intents:
        again = providers[0].plan(intent)
        assert again.empty, f"{intent.ref.key}: not converged after a race: {again.summary()}"


def _run_cli(args: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = lbprov_main(args)
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue() + err.getvalue()


def exercise(cloud: str, tmp: Path) -> Recording:
    rec = Recording(cloud)
    cls = load_provider(cloud)
    spy = _Spy()
    with (
        pytest.MonkeyPatch.context() as mp,
        cls.sandbox(["node-a", "node-b"]) as sb,
        KubeAPIServer() as api,
    ):
        spy.install(mp)
        # The sandbox tags its subnets and security groups for its own cluster name: use it.
        cluster = str(sb.settings.get("cluster_name") or "kubernetes")
        # The cluster identity the controller would run with (the kube-system Namespace UID of the
        # cluster gc is pointed at below), so that gc can tell this cluster's load balancers.
        kube_system = KubeClient.for_url(api.url).get_namespace("kube-system") or {}
        cluster_id = str(kube_system.get("metadata", {}).get("uid") or "") or None
        # No client-side rate limit: it would only slow the run down (0 = none for every provider).
        settings = {**sb.settings, "cluster_id": cluster_id, "reads_per_second": 0, "writes_per_second": 0}
        provider = cls.from_settings(settings)
        if cloud == "gcp":
            # Keep operations RUNNING briefly, so the provider waits on them as it must on GCP
            # (regionOperations/zoneOperations/globalOperations.wait).
            sb.extra["emulator"].operation_delay = 0.02
        sandbox_nodes = list(sb.nodes)
        nodes = [lib.node_body(n) for n in sandbox_nodes]

        # Create every scenario Service, change them round by round, repair drift made by hand.
        plan = scenario(cloud, sb)
        services = {s["metadata"]["name"]: s for s in plan.services}
        first = list(services.values())[:2]
        _ensure_racing([provider, cls.from_settings(settings)], cluster, first, nodes)
        for svc in list(services.values())[2:]:
            _ensure(provider, cluster, svc, nodes)
        for changes in plan.rounds:
            for svc in changes:
                services[svc["metadata"]["name"]] = svc
                _ensure(provider, cluster, svc, nodes)
        for name in drift(cloud, sb, services):
            _ensure(provider, cluster, services[name], nodes)

        # Node churn: one node joins, then one is excluded; every Service follows.
        if sb.add_node is not None:
            sandbox_nodes.append(sb.add_node("node-c"))
            nodes = [lib.node_body(n) for n in sandbox_nodes]
            for svc in services.values():
                _ensure(provider, cluster, svc, nodes)
        nodes = [lib.node_body(n, exclude=n.name == "node-a") for n in sandbox_nodes]
        for svc in services.values():
            _ensure(provider, cluster, svc, nodes)

        # The dry runs, through the real CLI: `lbprov plan` on manifests with unchanged, changed,
        # new and deleted Services; `lbprov gc` against an (empty) sandbox cluster, where every load
        # balancer is garbage and gets a delete plan.
        spy.new_phase()
        before = len(sb.mutating_requests()) if sb.mutating_requests else 0
        manifests = [
            *(s for n, s in services.items() if n not in ("tcp", "udp")),
            make_service("tcp", [(80, "TCP")], uid_seed=1),  # changed: a port less
            make_service("udp", [(53, "UDP")], uid_seed=2, deleting=True),  # being deleted
            make_service("new", [(80, "TCP")], uid_seed=90),  # not created yet
        ]
        manifest_file = tmp / f"{cloud}-services.yaml"
        manifest_file.write_text(yaml.safe_dump_all([*manifests, *nodes]))
        settings_file = tmp / f"{cloud}-settings.json"
        section = {k: v for k, v in settings.items() if k != "cluster_name"}
        settings_file.write_text(json.dumps({"cluster_name": cluster, cloud: section}))
        common = ["--provider", cloud, "--settings", str(settings_file), "-o", "json", "-q"]
        code, output = _run_cli(["plan", *common, "-f", str(manifest_file)])
        assert code == 2, f"lbprov plan should report pending changes (exit 2), got {code}:\n{output[-3000:]}"
        kubeconfig = api.write_kubeconfig(tmp / f"{cloud}-kubeconfig")
        code, output = _run_cli(["gc", *common, "--kubeconfig", kubeconfig])
        # Checked by its own test, so that a gc failure does not hide the rest of the proof.
        rec.gc_result = (code, output)
        rec.plan_operations = dict(spy.phase)
        rec.refused_during_plan = set(spy.refused)
        if sb.mutating_requests:
            rec.emulator_mutations_during_plan = list(sb.mutating_requests())[before:]

        # Delete everything (as the controller does when the Services go); nothing owned is left.
        for svc in services.values():
            ref = build_intent(svc, nodes, IntentSettings(cluster=cluster), provider).ref
            provider.apply(provider.plan_delete(ref))
            assert provider.plan_delete(ref).empty
        # (The sandbox may be shared with other tests in this process: look at our Services only.)
        ours = {svc["metadata"]["uid"] for svc in services.values()}
        assert [lb for lb in provider.list_owned() if lb.ref.uid in ours] == []
        rec.operations = dict(spy.all)
    return rec


_recordings: dict[str, Recording] = {}


@pytest.fixture(scope="module", params=lib.CLOUDS)
def recording(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Recording]:
    cloud = request.param
    if cloud not in _recordings:
        _recordings[cloud] = exercise(cloud, tmp_path_factory.mktemp(f"lp-{cloud}"))
    yield _recordings[cloud]


# ---- the tables ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Op:
    kind: str  # "read" | "write"
    permissions: tuple[str, ...]


def permission_table(cloud: str) -> dict[str, Op]:
    """``lbprov_<cloud>.operations.OPERATIONS`` as operation -> (kind, permissions)."""
    module = importlib.import_module(f"lbprov_{cloud}.operations")
    table: dict[str, Op] = {}
    for name, op in module.OPERATIONS.items():
        kind = str(op.kind) if hasattr(op, "kind") else "write" if op.write else "read"
        perms = (
            getattr(op, "iam", None) or getattr(op, "permissions", None) or getattr(op, "permission", None)
        )
        perms = (perms,) if isinstance(perms, str) else tuple(perms or ())
        assert kind in ("read", "write") and perms, f"{cloud} operation {name}: {op!r}"
        table[name] = Op(kind, perms)
    return table


def terraform_permissions(cloud: str) -> tuple[set[str], set[str]]:
    """(every permission of the controller's role, those of the read-only variant), from the
    permission lists in ``locals``: ``read_*`` lists make the read-only variant; every list named
    ``*_actions`` / ``*_permissions`` is part of the controller's role."""
    local = lib.tf_locals(cloud)
    lists = {
        k: v for k, v in local.items() if isinstance(v, list) and k.endswith(("_actions", "_permissions"))
    }
    assert lists, f"terraform/{cloud}: no permission lists in locals"
    full = {p for v in lists.values() for p in v}
    read = {p for k, v in lists.items() if k.startswith("read_") for p in v}
    return full, read


def _perms(table: Mapping[str, Op], ops: Mapping[str, str] | set[str]) -> set[str]:
    return {p for op in ops for p in table[op].permissions}


# ---- the checks ---------------------------------------------------------------------------------


def test_every_operation_sent_is_in_the_providers_table(recording: Recording) -> None:
    table = permission_table(recording.cloud)
    unknown = set(recording.operations) - set(table)
    assert not unknown, f"operations sent but missing from lbprov_{recording.cloud}/operations.py: {unknown}"
    for op, kind in recording.operations.items():
        assert table[op].kind == kind, (
            f"{op}: CloudCalls counted it as {kind}, the table says {table[op].kind}"
        )


def test_scenarios_make_writes_of_every_kind(recording: Recording) -> None:
    # A guard against a scenario run that silently did nothing: creates, updates and deletes happened.
    writes = {op for op, kind in recording.operations.items() if kind == "write"}
    assert len(writes) >= 5, writes


def test_controller_permissions_are_exactly_those_the_provider_uses(recording: Recording) -> None:
    cloud = recording.cloud
    table = permission_table(cloud)
    needed = _perms(table, recording.operations)
    granted, _ = terraform_permissions(cloud)
    allowed = set(ALLOWED_EXTRA[cloud])
    missing = needed - granted
    assert not missing, f"terraform/{cloud} lacks permissions the provider used: {sorted(missing)}"
    extra = granted - needed - allowed
    assert not extra, f"terraform/{cloud} grants permissions no recorded operation needs: {sorted(extra)}"
    stale = allowed & needed
    assert not stale, f"allow-list entries a recorded operation needs (drop them from ALLOWED_EXTRA): {stale}"
    assert allowed <= granted, f"allow-list entries terraform/{cloud} does not grant: {allowed - granted}"


def test_every_operation_in_the_table_is_exercised_or_explained(recording: Recording) -> None:
    cloud = recording.cloud
    table = permission_table(cloud)
    unexercised = set(table) - set(recording.operations)
    listed = set(UNEXERCISED[cloud])
    assert unexercised <= listed, (
        f"operations the scenarios never sent, not in UNEXERCISED: {sorted(unexercised - listed)}"
    )
    assert listed <= unexercised, (
        f"UNEXERCISED lists operations the scenarios did send: {sorted(listed - unexercised)}"
    )
    granted, _ = terraform_permissions(cloud)
    needed = _perms(table, recording.operations)
    for op, reason in UNEXERCISED[cloud].items():
        perms = set(table[op].permissions)
        if reason.startswith("granted:"):
            assert perms <= granted, (
                f"{op} can be sent, but terraform/{cloud} lacks {sorted(perms - granted)}"
            )
        else:
            assert reason.startswith("unreachable:"), f"{op}: reason must start with granted: or unreachable:"
            # Not granted for its own sake (a permission another, exercised operation needs is fine).
            assert not (perms & granted) - needed, (
                f"{op} is unreachable, yet terraform/{cloud} grants {perms}"
            )


def test_every_permission_list_in_terraform_is_used(recording: Recording) -> None:
    cloud = recording.cloud
    main = (lib.TERRAFORM / cloud / "main.tf").read_text()
    local = lib.tf_locals(cloud)
    for name, value in local.items():
        if isinstance(value, list) and name.endswith(("_actions", "_permissions")):
            assert f"local.{name}" in main, (
                f"terraform/{cloud}: list {name} is not used by any role or policy"
            )


def test_gc_dry_run_finds_every_load_balancer_garbage_in_an_empty_cluster(recording: Recording) -> None:
    code, output = recording.gc_result
    assert code == 2, f"lbprov gc (dry run) should find garbage (exit 2), got {code}:\n{output[-3000:]}"


def test_dry_runs_send_no_write(recording: Recording) -> None:
    assert recording.plan_operations, "lbprov plan sent no cloud request at all"
    writes = {op for op, kind in recording.plan_operations.items() if kind == "write"}
    assert not writes
    assert not recording.refused_during_plan
    assert recording.emulator_mutations_during_plan == []


def test_read_only_variant_covers_every_read_of_plan_and_no_write(recording: Recording) -> None:
    cloud = recording.cloud
    table = permission_table(cloud)
    granted, read_only = terraform_permissions(cloud)
    plan_reads = _perms(table, recording.plan_operations)
    missing = plan_reads - read_only
    assert not missing, f"terraform/{cloud} read-only variant lacks: {sorted(missing)}"
    write_perms = _perms(table, {op for op, o in table.items() if o.kind == "write"})
    read_perms = _perms(table, {op for op, o in table.items() if o.kind == "read"})
    assert not read_only & (write_perms - read_perms), (
        f"read-only grants write permissions: {read_only & write_perms}"
    )
    assert read_only <= read_perms, f"read-only grants what no read needs: {sorted(read_only - read_perms)}"
    # The controller's reads are the read-only variant's reads: one list, one truth.
    assert read_only == granted & read_perms


def test_read_only_variant_is_what_terraform_outputs(recording: Recording) -> None:
    # The read-only resources are built from the read_* lists alone.
    cloud = recording.cloud
    text = "\n".join(p.read_text() for p in (lib.TERRAFORM / cloud).glob("*.tf"))
    local = lib.tf_locals(cloud)
    read_lists = [k for k in local if k.startswith("read_") and isinstance(local[k], list)]
    assert len(read_lists) == 1
    assert text.count(f"local.{read_lists[0]}") >= 2  # in the controller's role and the read-only one
