"""The ClusterRole and Role in deploy/base allow every request the controller makes, and nothing more.

Two ``lbprov run`` processes (the real CLI, with leader election) run against the sandbox Kubernetes
API and the AWS emulator through a representative scenario: Services created, updated (a port added),
invalid (a Warning event, repeated: created then patched), deleted (finalizer removed), a node added
and one excluded, and the leader stopped so that the standby takes over the Lease. The sandbox API
records every request as (verb, group, resource, subresource, namespace). The scenario itself is
driven through the API server's store, so only the controllers' requests are recorded.

Then: every recorded request is allowed by a rule (the Role only in the controller's namespace),
and every (group, resource, verb) the roles grant was used.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import deploy_testlib as lib
import pytest

from lbprov.provider import load_provider
from lbprov.sandbox.kube_api import KubeAPIServer
from lbprov.testing import HeldPort

NAMESPACE = "lbprov-system"
FINALIZER = "service.kubernetes.io/load-balancer-cleanup"


@dataclass(frozen=True)
class Rule:
    group: str
    resource: str  # "services" or "services/status"
    verb: str
    namespace: str | None  # None: cluster-wide (ClusterRole)
    names: tuple[str, ...] = ()  # resourceNames; () means any name


def granted_rules() -> set[Rule]:
    objs = lib.render("base")
    out: set[Rule] = set()
    for kind, namespace in (("ClusterRole", None), ("Role", NAMESPACE)):
        role = lib.find(objs, kind)
        if namespace is not None:
            assert role["metadata"]["namespace"] == namespace
        for rule in role["rules"]:
            names = tuple(sorted(rule.get("resourceNames") or ()))
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        assert "*" not in (group, resource, verb), f"wildcard in {kind}: {rule}"
                        out.add(Rule(group, resource, verb, namespace, names))
    return out


def allows(rule: Rule, req: Any) -> bool:
    """``req`` is a recorded request, or a (request, object name) pair for resourceNames rules."""
    req, name = req if isinstance(req, tuple) and len(req) == 2 else (req, None)
    resource = req.resource + (f"/{req.subresource}" if req.subresource else "")
    if (rule.group, rule.resource, rule.verb) != (req.group, resource, req.verb):
        return False
    # resourceNames restrict get/update/patch/delete to the named objects (RBAC docs: "Referring
    # to resources"); a request without a name (list, watch, create) never matches such a rule.
    if rule.names and name not in rule.names:
        return False
    # A Role grants only inside its namespace; a ClusterRole everywhere.
    return rule.namespace is None or rule.namespace == req.namespace


@dataclass
class Run:
    requests: list[Any]
    non_resource: list[tuple[str, str]]
    leaders: list[str]
    logs: str


#: Non-resource paths every authenticated user may GET through the default ClusterRoles
#: system:discovery and system:public-info-viewer: no grant of ours is needed for them.
DISCOVERY_PATHS = ("/api", "/apis", "/version", "/openapi", "/healthz", "/livez", "/readyz")


def _ingress(api: KubeAPIServer, ns: str, name: str) -> list[Any]:
    try:
        svc = api.store.get("services", ns, name)
    except Exception:
        return []
    return list(((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or [])


def _events(api: KubeAPIServer, ns: str, reason: str) -> list[dict[str, Any]]:
    items, _rv = _list(api, "events", ns)
    return [e for e in items if e.get("reason") == reason]


def _list(api: KubeAPIServer, resource: str, ns: str | None) -> tuple[list[dict[str, Any]], str]:
    items, rv, _token, _remaining = api.store.list_objects(resource, ns, [], [])
    return items, rv


def _exclude(node: dict[str, Any]) -> dict[str, Any]:
    node["metadata"].setdefault("labels", {})["node.kubernetes.io/exclude-from-external-load-balancers"] = (
        "true"
    )
    return node


def _updates(api: KubeAPIServer) -> int:
    """How many UpdatedLoadBalancer events were recorded, repeats included (a repeat of the same
    message patches the event's count instead of creating another)."""
    return sum(int(e.get("count") or 1) for e in _events(api, "default", "UpdatedLoadBalancer"))


def _lease_holder(api: KubeAPIServer) -> str | None:
    try:
        lease = api.store.get("leases", NAMESPACE, "lbprov")
    except Exception:
        return None
    return (lease.get("spec") or {}).get("holderIdentity") or None


def _exists(api: KubeAPIServer, ns: str, name: str) -> bool:
    try:
        api.store.get("services", ns, name)
    except Exception:
        return False
    return True


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    tmp = tmp_path_factory.mktemp("rbac")
    cls = load_provider("aws")
    with cls.sandbox(["node-a", "node-b"]) as sb, KubeAPIServer() as api:
        store = api.store
        nodes = list(sb.nodes)
        for node in nodes:
            store.create("nodes", None, lib.node_body(node))
        kubeconfig = api.write_kubeconfig(tmp / "kubeconfig")
        env = {
            **lib.settings_env("aws", sb.settings),
            "POD_NAMESPACE": NAMESPACE,
        }
        procs: list[lib.LbprovProcess] = []
        ports: list[HeldPort] = []  # each replica's metrics port, held until it has stopped

        def start(identity: str) -> lib.LbprovProcess:
            ports.append(port := HeldPort())
            args = [
                "--provider=aws",
                f"--kubeconfig={kubeconfig}",
                "--leader-elect",
                f"--lease-namespace={NAMESPACE}",
                f"--lease-identity={identity}",
                "--lease-duration=4",
                "--renew-deadline=3",
                "--retry-period=0.3",
                f"--metrics-address=127.0.0.1:{port.port}",
                "--node-debounce=0.2",
                "--backoff-base=0.2",
                "--backoff-max=0.5",
                "--log-format=text",
            ]
            proc = lib.LbprovProcess(args, env, tmp / f"{identity}.log")
            procs.append(proc)
            return proc

        leaders: list[str] = []
        try:
            first = start("replica-1")
            lib.wait_for(lambda: _lease_holder(api) == "replica-1", 30, "replica-1 to take the lease")
            second = start("replica-2")
            leaders.append("replica-1")

            # Create: a TCP Service and a UDP one.
            store.create("services", "default", lib.service_body("web", [(80, "TCP")]))
            store.create(
                "services", "default", lib.service_body("dns", [(53, "UDP")], traffic_policy="Local")
            )
            for name in ("web", "dns"):
                lib.wait_for(lambda n=name: _ingress(api, "default", n), 60, f"ingress of {name}")

            # Update: a port added.
            before = _updates(api)

            def add_port(svc: dict[str, Any]) -> dict[str, Any]:
                svc["spec"]["ports"].append(
                    {"name": "tcp-443", "protocol": "TCP", "port": 443, "targetPort": 443}
                )
                return svc

            store.update("services", "default", "web", add_port)
            lib.wait_for(
                lambda: _updates(api) > before,
                60,
                "UpdatedLoadBalancer",
            )

            # Invalid: a Warning event, repeated by the retries (patched, not created again).
            store.create(
                "services",
                "default",
                lib.service_body(
                    "bad",
                    [(80, "TCP")],
                    annotations={"service.beta.kubernetes.io/aws-load-balancer-type": "bogus"},
                ),
            )
            lib.wait_for(
                lambda: any(
                    (e.get("count") or 1) > 1 for e in _events(api, "default", "SyncLoadBalancerFailed")
                ),
                60,
                "a repeated SyncLoadBalancerFailed event",
            )

            # Nodes: one joins, one is excluded; the load balancers follow.
            if sb.add_node is not None:
                before = _updates(api)
                store.create("nodes", None, lib.node_body(sb.add_node("node-c")))
                lib.wait_for(
                    lambda: _updates(api) > before,
                    60,
                    "update after node-c",
                )
            before = _updates(api)
            store.update("nodes", None, nodes[0].name, _exclude)
            lib.wait_for(
                lambda: _updates(api) > before,
                60,
                "update after excluding node-a",
            )

            # Delete: the finalizer is removed once the load balancer is gone.
            store.delete("services", "default", "dns")
            lib.wait_for(lambda: not _exists(api, "default", "dns"), 60, "dns to be deleted")

            # Failover: the leader stops (releasing the lease); the standby takes over and works.
            assert first.stop() == 0, first.logs()[-3000:]
            lib.wait_for(lambda: _lease_holder(api) == "replica-2", 30, "replica-2 to take the lease")
            leaders.append("replica-2")
            store.create("services", "default", lib.service_body("after", [(8080, "TCP")]))
            lib.wait_for(lambda: _ingress(api, "default", "after"), 60, "ingress of a Service after failover")
            store.delete("services", "default", "web")
            lib.wait_for(lambda: not _exists(api, "default", "web"), 60, "web to be deleted")
            assert second.stop() == 0, second.logs()[-3000:]
        except AssertionError as exc:
            logs = "\n".join(f"--- {p.log_path.name}\n{p.logs()[-4000:]}" for p in procs)
            raise AssertionError(f"{exc}\n{logs}") from None
        finally:
            for p in procs:
                p.stop()
            for held in ports:
                held.close()
        yield Run(
            api.requests_with_names, api.non_resource_requests, leaders, "\n".join(p.logs() for p in procs)
        )


def test_scenario_ran_with_a_failover(run: Run) -> None:
    assert run.leaders == ["replica-1", "replica-2"]
    assert run.requests


def test_every_request_is_allowed_by_the_roles(run: Run) -> None:
    rules = granted_rules()
    denied = sorted({r for r in run.requests if not any(allows(rule, r) for rule in rules)}, key=str)
    assert not denied, "requests the ClusterRole/Role do not allow:\n" + "\n".join(map(str, denied))


def test_non_resource_requests_are_discovery_only(run: Run) -> None:
    others = sorted({(m, p) for m, p in run.non_resource if m != "GET" or not p.startswith(DISCOVERY_PATHS)})
    assert not others, f"non-resource requests beyond discovery (would need a nonResourceURLs rule): {others}"


def test_every_granted_permission_was_used(run: Run) -> None:
    unused = sorted(
        (r.group, r.resource, r.verb, r.namespace, r.names)
        for r in granted_rules()
        if not any(allows(r, req) for req in run.requests)
    )
    assert not unused, f"the roles grant what the controller never did: {unused}"


def test_role_matches_the_design() -> None:
    # A readable summary of the rules. Nodes have no `get`: the controller reads them from its
    # informer cache only (the recorded requests show no single-node read).
    got = {(r.group, r.resource, r.verb, r.namespace, r.names) for r in granted_rules()}
    assert got == {
        ("", "namespaces", "get", None, ("kube-system",)),
        ("", "services", "get", None, ()),
        ("", "services", "list", None, ()),
        ("", "services", "watch", None, ()),
        ("", "services", "patch", None, ()),
        ("", "services/status", "patch", None, ()),
        ("", "nodes", "list", None, ()),
        ("", "nodes", "watch", None, ()),
        ("", "events", "create", None, ()),
        ("", "events", "patch", None, ()),
        ("coordination.k8s.io", "leases", "get", NAMESPACE, ()),
        ("coordination.k8s.io", "leases", "create", NAMESPACE, ()),
        ("coordination.k8s.io", "leases", "update", NAMESPACE, ()),
    }


def test_allows_is_strict() -> None:
    # The matcher can say no: wrong verb, subresource, or a Role outside its namespace.
    @dataclass(frozen=True)
    class Req:
        verb: str
        group: str
        resource: str
        subresource: str
        namespace: str | None

    svc = Rule("", "services", "patch", None)
    assert allows(svc, Req("patch", "", "services", "", "default"))
    assert not allows(svc, Req("update", "", "services", "", "default"))
    assert not allows(svc, Req("patch", "", "services", "status", "default"))
    lease = Rule("coordination.k8s.io", "leases", "update", NAMESPACE)
    assert allows(lease, Req("update", "coordination.k8s.io", "leases", "", NAMESPACE))
    assert not allows(lease, Req("update", "coordination.k8s.io", "leases", "", "kube-system"))
