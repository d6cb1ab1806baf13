"""``lbprov plan`` and ``lbprov gc`` against the real providers on their emulators, end to end.

The CLI reads Services and Nodes from the sandbox Kubernetes API (through a kubeconfig, like a real
cluster) and plans against moto / the GCE emulator / the ARM emulator through the real SDKs. The
read-only proof is checked on the EMULATOR's side (``SandboxCloud.mutating_requests()``) and on the
Kubernetes side (the API server's request log).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from cli_testlib import make_service, run_cli, validate_schema
from sandbox_support import Env

from lbprov.intent import IntentSettings, build_intent
from lbprov.provider import cluster_facts, load_provider
from lbprov.sandbox.demo import node_object

#: Annotations that make a Service want another kind of load balancer than the default one.
KIND_SWITCH: dict[str, dict[str, str]] = {
    "aws": {"service.beta.kubernetes.io/aws-load-balancer-type": "classic"},
    "gcp": {"networking.gke.io/load-balancer-type": "Internal"},
    "azure": {"service.beta.kubernetes.io/azure-load-balancer-internal": "true"},
}


def foreign_cluster(env: Env) -> tuple[dict[str, Any], dict[str, str]]:
    """Settings and annotations that let a second cluster build a load balancer in the same emulator
    (the sandbox networks are tagged for the first cluster only)."""
    if env.provider_name == "aws":
        extra = env.cloud.extra
        return (
            {"node_security_group_id": extra["node_security_group_id"], "vpc_id": extra["vpc_id"]},
            {"service.beta.kubernetes.io/aws-load-balancer-subnets": ",".join(extra["public_subnets"])},
        )
    if env.provider_name == "gcp":
        # The sandbox's second cluster runs on the same instances, which GCE lets be in one
        # load-balanced instance group only: it shares this cluster's k8s-ig--<cluster ID> groups.
        return {"gce_cluster_id": env.settings(read_only=True)["gce_cluster_id"]}, {}
    return {}, {}


def foreign_nodes(env: Env) -> list[dict[str, Any]]:
    """The nodes of the second cluster. Azure: VMs of its own (ARM lets a NIC IP configuration be in
    the load-balancing pools of one public and one internal load balancer, so two clusters never share
    nodes); the others share this cluster's instances (GCP shares its instance groups too)."""
    if env.provider_name == "azure":
        return [node_object(env.cloud.add_node(f"other-{env.namespace}-{i}")) for i in range(2)]
    return env.kube.list_nodes()[0]


def make_untagged_lb(env: Env) -> Any:
    """A load balancer made by hand, without any ownership tag; returns a check that it still exists."""
    if env.provider_name != "aws":
        return None
    import boto3

    s = env.cloud.settings
    elb = boto3.client(
        "elbv2",
        region_name=s["region"],
        endpoint_url=s["endpoint_url"],
        aws_access_key_id=s["access_key_id"],
        aws_secret_access_key=s["secret_access_key"],
    )
    name = f"handmade-{env.namespace}"
    elb.create_load_balancer(Name=name, Type="network", Subnets=env.cloud.extra["public_subnets"])
    return lambda: len(elb.describe_load_balancers(Names=[name])["LoadBalancers"]) == 1


def mutations(env: Env) -> list[str]:
    return list(env.cloud.mutating_requests())


def own_actions(changes: list[dict[str, Any]]) -> set[str]:
    """The actions of a plan on the Service's own load balancer parts, without GCP's release of the IP reservation that
    the new forwarding rule holds from then on ("reserve, firewall, rule, release", DESIGN.md), and
    without Azure's update of an NSG allow rule shared by Services that differ only in destination
    (a new frontend IP joins its destinations, a deleted one leaves them, as upstream merges them)."""
    return {
        c["action"]
        for c in changes
        if not (
            c["action"] == "delete"
            and c["kind"] == "address"
            and str(c["reason"] or "").startswith("release the reservation")
        )
        and not (c["action"] == "update" and c["kind"] == "nsg-rule" and "-allow-" in c["name"])
    }


def test_fresh_cluster_plan_lists_creates_and_exits_2(env: Env) -> None:
    env.create_service("web", [("TCP", 80), ("TCP", 443)])
    before = mutations(env)
    r = run_cli(env.plan_argv("-o", "json"))
    assert r.code == 2, r.err
    doc = r.json()
    validate_schema(doc)
    (plan,) = doc["plans"]
    assert plan["service"]["name"] == "web" and plan["operation"] == "ensure"
    assert plan["changes"] and own_actions(plan["changes"]) == {"create"}
    assert doc["summary"]["changed"] == 1 and doc["source"] == "cluster"
    assert mutations(env) == before


def test_after_converging_plan_says_no_changes_and_exits_0(env: Env) -> None:
    env.create_service("web")
    env.converge("web")
    r = run_cli(env.plan_argv())
    assert r.code == 0, r.out + r.err
    assert f"{env.namespace}/web ({env.provider_name}, ensure)\n  no changes" in r.out
    assert "1 Service: 0 would change, 1 unchanged." in r.out


#: Per provider: annotations of the "changed" Service, and how to change it so that the cloud cannot
#: update the resource in place (AWS: a classic ELB listener's instance port; GCP: a forwarding
#: rule's ports). Azure updates its shared load balancer in place: it plans updates, never replaces.
CHANGE_SCENARIOS: dict[str, tuple[dict[str, str], str]] = {
    "aws": ({"service.beta.kubernetes.io/aws-load-balancer-type": "classic"}, "replace"),
    "gcp": ({}, "replace"),
    "azure": ({}, "update"),
}


def test_read_only_proof_across_create_replace_and_delete_plans(env: Env) -> None:
    """Zero mutating requests reach the emulator, and the Kubernetes API sees only lists, across a
    whole run whose plans would create, replace (Azure: update) and delete."""
    annotations, expected = CHANGE_SCENARIOS[env.provider_name]
    env.create_service("new")
    env.create_service("changed", [("TCP", 80)], annotations=annotations)
    env.converge("changed")
    env.create_service("gone")
    env.converge("gone")
    ports = env.kube.get_service(env.namespace, "changed")["spec"]["ports"]
    if env.provider_name == "aws":
        ports[0]["nodePort"] = 31111 if ports[0]["nodePort"] != 31111 else 31112
    else:
        ports.append({"name": "tcp-81", "protocol": "TCP", "port": 81, "targetPort": 8080})
    env.patch("changed", {"spec": {"ports": ports}})
    env.patch("gone", {"spec": {"type": "ClusterIP"}})
    before = mutations(env)
    env.api.clear_requests()
    r = run_cli(env.plan_argv("-o", "json"))
    assert r.code == 2, r.out + r.err
    doc = r.json()
    validate_schema(doc)
    actions = {p["service"]["name"]: {c["action"] for c in p["changes"]} for p in doc["plans"]}
    ops = {p["service"]["name"]: p["operation"] for p in doc["plans"]}
    assert ops == {"new": "ensure", "changed": "ensure", "gone": "delete"}
    (new,) = (p for p in doc["plans"] if p["service"]["name"] == "new")
    assert own_actions(new["changes"]) == {"create"}
    assert expected in actions["changed"], actions
    (gone,) = (p for p in doc["plans"] if p["service"]["name"] == "gone")
    assert own_actions(gone["changes"]) == {"delete"}
    assert mutations(env) == before, "a dry run sent a mutating request to the emulator"
    verbs = {(req.verb, req.resource) for req in env.api.requests}
    # Reads only: Services and Nodes; the kube-system Namespace for the cluster identity (unless the
    # settings file gives it, as the sandbox's does) and a provider's cluster facts (GCP's
    # kube-system/ingress-uid ConfigMap), never created in a dry run.
    allowed = {("list", "services"), ("list", "nodes"), ("get", "namespaces")}
    if cluster_facts(load_provider(env.provider_name)):
        allowed.add(("get", "configmaps"))
    assert {("list", "services"), ("list", "nodes")} <= verbs <= allowed, verbs


def test_gc_deletes_only_what_leaked(env: Env) -> None:
    """An LB whose Service was deleted while no controller ran, and one left by an annotation change,
    are garbage; an LB in use and one owned by another cluster are left alone."""
    env.wipe()
    for name in ("keep", "deleted", "switched"):
        env.create_service(name)
        env.converge(name)
    env.delete_service_bypassing_controller("deleted")
    env.patch("switched", {"metadata": {"annotations": KIND_SWITCH[env.provider_name]}})
    # a load balancer of another cluster, for a Service that does not exist in this one
    other_settings, other_annotations = foreign_cluster(env)
    other = load_provider(env.provider_name).from_settings(
        {**env.cloud.settings, **other_settings, "cluster_name": f"{env.cluster}-other"}
    )
    foreign_svc = make_service(
        "foreign", ns=env.namespace, ports=((80, 31999),), annotations=other_annotations
    )
    foreign_intent = build_intent(
        foreign_svc, foreign_nodes(env), IntentSettings(f"{env.cluster}-other"), other
    )
    other.apply(other.plan(foreign_intent))
    untagged = make_untagged_lb(env)

    r = run_cli(env.gc_argv("-o", "json"))
    assert r.code == 2, r.out + r.err
    doc = r.json()
    validate_schema(doc)
    status = {o["service"]["name"]: o["status"] for o in doc["owned"]}
    assert status.get("keep") == "in-use"
    assert status.get("deleted") == "garbage"
    assert status.get("switched") == "garbage"
    assert "foreign" not in status

    before_apply = run_cli(env.gc_argv())
    assert before_apply.code == 2 and "no longer exists" in before_apply.out

    r = run_cli(env.gc_argv("--apply", "--yes"))
    assert r.code == 0, r.out + r.err
    after = run_cli(env.gc_argv("-o", "json")).json()
    assert after["exit_code"] == 0, after
    assert {o["service"]["name"]: o["status"] for o in after["owned"]}.get("keep") == "in-use"
    # the kept Service is untouched and converged; its next reconcile may only sweep node rules
    # that the deleted load balancers left and no target group wants (AWS, issue 10 item 6)
    sweep = env.plan_for("keep")
    assert all(c.kind == "security-group-rule" and c.action.value == "delete" for c in sweep.changes), sweep
    env.writer.apply(sweep)
    assert env.plan_for("keep").empty
    # an untagged load balancer made by hand and the other cluster's load balancer still exist
    if untagged is not None:
        assert untagged()
    assert [o.ref.name for o in other.list_owned() if o.ref.uid == foreign_intent.ref.uid] != []


def test_files_path_against_the_emulator(env: Env, tmp_path: Path) -> None:
    """Services from a manifest (with real UIDs and NodePorts, as `kubectl get -o yaml` gives them)
    and Nodes from a file plan exactly like the cluster path."""
    env.create_service("web")
    env.converge("web")
    svc = env.kube.get_service(env.namespace, "web")
    files = tmp_path / "svc.yaml"
    files.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "ServiceList", "items": [svc]}))
    nodes = tmp_path / "nodes.yaml"
    nodes.write_text(yaml.safe_dump_all(env.kube.list_nodes()[0]))
    argv = ["plan", "--provider", env.provider_name, "--settings", env.settings_file]
    r = run_cli([*argv, "-f", str(files), "--nodes", str(nodes)])
    assert r.code == 0, r.out + r.err
    assert f"{env.namespace}/web ({env.provider_name}, ensure)\n  no changes" in r.out
