"""The kustomize base and the per-cloud overlays in deploy/.

They render with the image's ``kubectl kustomize``, validate against the Kubernetes OpenAPI schemas
(strict: unknown fields are errors), meet the "restricted" Pod Security Standard, and configure the
controller with flags and settings the CLI and the providers really accept.
"""

from __future__ import annotations

import os
import re
from typing import Any

import deploy_testlib as lib
import kubernetes_validate
import pytest

OVERLAYS = ("base", *lib.CLOUDS)
#: A recent Kubernetes, and the newest schema set kubernetes-validate ships.
K8S_VERSIONS = ("1.31.0", kubernetes_validate.latest_version())

WORKLOAD_IDENTITY = {
    "aws": "eks.amazonaws.com/role-arn",
    "gcp": "iam.gke.io/gcp-service-account",
    "azure": "azure.workload.identity/client-id",
}


def _deployment(overlay: str) -> dict[str, Any]:
    return lib.find(lib.render(overlay), "Deployment", "lbprov")


def _container(overlay: str) -> dict[str, Any]:
    (container,) = _deployment(overlay)["spec"]["template"]["spec"]["containers"]
    return container


def _args(overlay: str) -> list[str]:
    """The container's arguments with ``$(VAR)`` expanded from its env, as the kubelet does."""
    container = _container(overlay)
    env = {e["name"]: e.get("value", f"<{e['name']}>") for e in container.get("env", [])}
    env["POD_NAMESPACE"] = lib.find(lib.render(overlay), "Namespace")["metadata"]["name"]
    return [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], a) for a in container["args"]]


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_overlay_renders_and_validates_against_kubernetes_schemas(overlay: str, version: str) -> None:
    objs = lib.render(overlay)
    assert objs
    for obj in objs:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(
                f"{overlay}: {obj['kind']}/{obj['metadata']['name']} invalid for {version}: {exc.message}"
            )


def test_schema_validation_rejects_a_broken_object() -> None:
    # The validation above can fail: a misspelt field is caught in strict mode.
    broken = {**_deployment("base")}
    broken["spec"] = {**broken["spec"], "replica": 2}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSIONS[-1], strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_has_every_object_in_one_namespace(overlay: str) -> None:
    objs = lib.render(overlay)
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in objs)
    assert kinds == [
        ("ClusterRole", "lbprov"),
        ("ClusterRoleBinding", "lbprov"),
        ("Deployment", "lbprov"),
        ("Namespace", "lbprov-system"),
        ("PodDisruptionBudget", "lbprov"),
        ("Role", "lbprov-leader-election"),
        ("RoleBinding", "lbprov-leader-election"),
        ("Service", "lbprov-metrics"),
        ("ServiceAccount", "lbprov"),
    ]
    cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
    for obj in objs:
        if obj["kind"] not in cluster_scoped:
            assert obj["metadata"]["namespace"] == "lbprov-system", obj["kind"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_bindings_grant_the_roles_to_the_controllers_service_account(overlay: str) -> None:
    objs = lib.render(overlay)
    pod = _deployment(overlay)["spec"]["template"]["spec"]
    sa = lib.find(objs, "ServiceAccount")
    assert pod["serviceAccountName"] == sa["metadata"]["name"]
    subject = {
        "kind": "ServiceAccount",
        "name": sa["metadata"]["name"],
        "namespace": sa["metadata"]["namespace"],
    }
    for binding, role in (("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")):
        b = lib.find(objs, binding)
        assert b["subjects"] == [subject]
        assert b["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": role,
            "name": lib.find(objs, role)["metadata"]["name"],
        }


@pytest.mark.parametrize("cloud", lib.CLOUDS)
def test_overlays_keep_the_bases_rbac(cloud: str) -> None:
    # tests/deploy/test_rbac.py proves the base's roles; no overlay may widen them.
    for kind in ("ClusterRole", "Role"):
        assert lib.find(lib.render(cloud), kind)["rules"] == lib.find(lib.render("base"), kind)["rules"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_deployment_runs_two_replicas_with_leader_election(overlay: str) -> None:
    deployment = _deployment(overlay)
    assert deployment["spec"]["replicas"] == 2
    args = _args(overlay)
    assert "--leader-elect" in args
    # The lease lives in the controller's own namespace, where the Role grants access to it.
    assert "--lease-namespace=lbprov-system" in args
    assert "--lease-identity=<POD_NAME>" in args  # the pod name: unique per replica
    env = {e["name"]: e for e in _container(overlay)["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_hit_healthz_and_readyz_on_the_metrics_port(overlay: str) -> None:
    container = _container(overlay)
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    (port,) = container["ports"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] in (port["name"], port["containerPort"])
    assert f"--metrics-address=:{port['containerPort']}" in _args(overlay)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pod_meets_the_restricted_pod_security_standard(overlay: str) -> None:
    # https://kubernetes.io/docs/concepts/security/pod-security-standards/#restricted
    pod = _deployment(overlay)["spec"]["template"]["spec"]
    assert not any(pod.get(k) for k in ("hostNetwork", "hostPID", "hostIPC"))
    assert all("hostPath" not in v for v in pod.get("volumes", []))
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["containers"]:
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert not sc["capabilities"].get("add")
        assert sc.get("privileged") is not True
        assert sc["runAsNonRoot"] is True
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert "hostPort" not in str(container.get("ports"))
    ns = lib.find(lib.render(overlay), "Namespace")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_container_has_requests_and_limits(overlay: str) -> None:
    resources = _container(overlay)["resources"]
    for bound in ("requests", "limits"):
        assert set(resources[bound]) == {"cpu", "memory"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pdb_and_metrics_service_select_the_controller_pods(overlay: str) -> None:
    objs = lib.render(overlay)
    pod_labels = _deployment(overlay)["spec"]["template"]["metadata"]["labels"]
    pdb = lib.find(objs, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1  # of 2 replicas: a drain never takes both
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    svc = lib.find(objs, "Service", "lbprov-metrics")
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    (port,) = _container(overlay)["ports"]
    assert svc["spec"]["ports"][0]["targetPort"] in (port["name"], port["containerPort"])
    assert _deployment(overlay)["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


@pytest.mark.parametrize("cloud", lib.CLOUDS)
def test_overlay_sets_its_provider_and_workload_identity(cloud: str) -> None:
    objs = lib.render(cloud)
    assert f"--provider={cloud}" in _args(cloud)
    # Only Services of class lbprov.io/<cloud>: never competing with the built-in cloud controller.
    assert "--no-default-provider" in _args(cloud)
    assert not any(a.startswith("--provider") for a in _args("base"))
    annotations = lib.find(objs, "ServiceAccount")["metadata"].get("annotations", {})
    assert annotations.get(WORKLOAD_IDENTITY[cloud]), annotations
    # Only this cloud's identity annotation.
    others = {v for k, v in WORKLOAD_IDENTITY.items() if k != cloud}
    assert not others & set(annotations)
    pod_labels = _deployment(cloud)["spec"]["template"]["metadata"]["labels"]
    if cloud == "azure":
        assert pod_labels["azure.workload.identity/use"] == "true"
    else:
        assert "azure.workload.identity/use" not in pod_labels


@pytest.mark.parametrize("cloud", lib.CLOUDS)
def test_overlay_settings_are_fields_of_the_providers_settings(cloud: str) -> None:
    from lbprov.provider import load_provider

    model = load_provider(cloud).settings_model
    prefix = f"LBPROV_{cloud.upper()}_"
    env = {e["name"]: e for e in _container(cloud)["env"]}
    assert "value" in env["LBPROV_CLUSTER_NAME"]
    settings = {name[len(prefix) :].lower() for name in env if name.startswith(prefix)}
    assert settings, f"the {cloud} overlay sets no {prefix}* settings"
    unknown = settings - set(model.model_fields)
    assert not unknown, f"{cloud} overlay sets settings the provider does not have: {sorted(unknown)}"
    # No credentials in manifests: workload identity provides them.
    assert not [s for s in settings if re.search(r"secret|key|password|token", s)]
    # Every other LBPROV_* variable is one the core reads.
    stray = {n for n in env if n.startswith("LBPROV_") and not n.startswith(prefix)} - {"LBPROV_CLUSTER_NAME"}
    assert not stray


@pytest.mark.parametrize("cloud", lib.CLOUDS)
def test_overlay_settings_load_into_the_providers_settings(
    cloud: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The env as the pod gets it, loaded the way `lbprov run` loads it: every required setting is
    # there and every value parses (e.g. a JSON list).
    from lbprov.provider import load_provider
    from lbprov.settings import load_settings

    for name in list(os.environ):
        if name.startswith("LBPROV_"):
            monkeypatch.delenv(name)
    for e in _container(cloud)["env"]:
        if "value" in e:
            monkeypatch.setenv(e["name"], e["value"])
    settings = load_settings(load_provider(cloud).settings_model, cloud)
    assert settings.cluster_name == "my-cluster"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_cli_accepts_the_deployments_arguments(overlay: str) -> None:
    from lbprov.cli import build_parser

    args = build_parser().parse_args(["run", *_args(overlay)])
    assert args.command == "run"


def test_terraform_defaults_name_the_deployed_service_account() -> None:
    # The identity federation in terraform/ trusts exactly this ServiceAccount.
    sa = lib.find(lib.render("base"), "ServiceAccount")["metadata"]
    for cloud in lib.CLOUDS:
        variables = lib.tf_named(cloud, "variable")
        assert variables["namespace"]["default"] == sa["namespace"], cloud
        assert variables["service_account"]["default"] == sa["name"], cloud
