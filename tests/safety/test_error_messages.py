"""Issue 13, errors that say what is wrong.

* a network failure names the endpoint that failed (a GCE connection error is not "cannot reach
  the Kubernetes API ... check --kubeconfig");
* Azure service-principal variables set but the sign-in host unreachable is a network error naming
  that host, not "set AZURE_TENANT_ID..."; ``GOOGLE_APPLICATION_CREDENTIALS`` pointing at a missing
  or bad file says so;
* connection errors read the same on all three clouds and come once per run, not once per Service;
* a foreign resource that carries a cluster name suggests checking ``--cluster-name``.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import yaml

from lbprov.cli import main
from lbprov.cli.errors import describe
from lbprov.model import OwnershipConflict
from lbprov.provider import load_provider
from lbprov.testing import HeldPort


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port nothing listens on, held for the whole test so that no other process takes it."""
    with HeldPort() as held:
        yield held.port


def test_a_gce_connection_error_names_the_gce_endpoint_not_the_kubernetes_api(closed_port: int) -> None:
    import requests

    port = closed_port
    with pytest.raises(requests.ConnectionError) as caught:
        requests.get(f"http://127.0.0.1:{port}/compute/v1/projects/p/regions/r/forwardingRules", timeout=5)
    found = describe(caught.value)
    assert found is not None and found.category == "network"
    assert f"cannot reach http://127.0.0.1:{port}: connection refused" in found.message
    assert "Kubernetes" not in found.message and "--kubeconfig" not in found.message


def test_azure_sign_in_host_unreachable_is_a_network_error_naming_it(closed_port: int) -> None:
    from azure.identity import ClientSecretCredential

    port = closed_port
    credential = ClientSecretCredential(
        "00000000-0000-0000-0000-000000000001",
        "00000000-0000-0000-0000-000000000002",
        "secret",
        authority=f"https://127.0.0.1:{port}",
        retry_total=0,
        disable_instance_discovery=True,
    )
    with pytest.raises(Exception) as caught:
        credential.get_token("https://management.azure.com/.default")
    found = describe(caught.value)
    assert found is not None, repr(caught.value)
    assert found.category == "network", found
    assert f"127.0.0.1:{port}" in found.message and "sign-in" in found.message
    assert "AZURE_TENANT_ID" not in found.message


def test_google_application_credentials_missing_or_bad_file_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    missing = tmp_path / "nope.json"
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(missing))
    with pytest.raises(DefaultCredentialsError) as caught:
        google.auth.default()
    found = describe(caught.value)
    assert found is not None and found.category == "credentials"
    assert f"GOOGLE_APPLICATION_CREDENTIALS={missing}: no such file" in found.message

    bad = tmp_path / "bad.json"
    bad.write_text("this is not a key file")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(bad))
    with pytest.raises(DefaultCredentialsError) as caught:
        google.auth.default()
    found = describe(caught.value)
    assert found is not None
    assert f"GOOGLE_APPLICATION_CREDENTIALS={bad} is not a usable credentials file" in found.message


def test_a_foreign_resource_with_a_cluster_name_suggests_checking_cluster_name() -> None:
    exc = OwnershipConflict(
        "load balancer 'a123' already exists but is not owned by Service default/web of cluster 'prod' "
        "(it has cluster tag(s) kubernetes.io/cluster/Prod)"
    )
    found = describe(exc)
    assert found is not None and "--cluster-name" in found.message


ENDPOINT = {"aws": "endpoint_url", "gcp": "api_endpoint", "azure": "base_url"}


@pytest.fixture(scope="module", params=["aws", "gcp", "azure"])
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from lbprov.kube.client import KubeClient
    from lbprov.sandbox.demo import node_object
    from lbprov.sandbox.kube_api import KubeAPIServer

    name = str(request.param)
    tmp = tmp_path_factory.mktemp(f"err-{name}")
    with KubeAPIServer() as api, load_provider(name).sandbox(["node-1"]) as cloud:
        kube = KubeClient.for_url(api.url)
        for node in cloud.nodes:
            kube.create_node(node_object(node))
        for i in range(3):
            kube.create_service(
                "default",
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": f"web{i}", "namespace": "default"},
                    "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}]},
                },
            )
        yield name, dict(cloud.settings), api.write_kubeconfig(tmp / "kubeconfig"), tmp


def test_an_unreachable_cloud_ends_plan_once_with_one_line_alike_on_every_cloud(
    cluster, closed_port: int
) -> None:  # type: ignore[no-untyped-def]
    name, settings, kubeconfig, tmp = cluster
    port = closed_port
    scheme = "https" if name == "azure" else "http"
    settings[ENDPOINT[name]] = f"{scheme}://127.0.0.1:{port}"
    cluster_name = settings.pop("cluster_name", None) or "sandbox"
    path = tmp / "settings.yaml"
    path.write_text(yaml.safe_dump({"cluster_name": cluster_name, name: settings}))
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["plan", "--provider", name, "--settings", str(path), "--kubeconfig", kubeconfig])
    lines = [line for line in err.getvalue().splitlines() if line.strip()]
    assert code == 1, (out.getvalue(), err.getvalue())
    assert len(lines) == 1, lines  # once per run, not once per Service
    assert lines[0] == (
        f"lbprov plan: error: {name}: cannot reach {scheme}://127.0.0.1:{port}: connection refused: "
        "check the endpoint URL and port, and the network path, firewall and proxy settings "
        "(HTTPS_PROXY/NO_PROXY)"
    ), lines[0]


@pytest.mark.parametrize("command", ["plan", "gc"])
def test_output_json_prints_one_document_with_the_error_when_the_run_fails(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, closed_port: int
) -> None:
    import json

    from .conftest import cli_testlib, write_kubeconfig

    url = f"http://127.0.0.1:{closed_port}"
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(
            [
                command,
                "--provider",
                "aws",
                "--cluster-name",
                "c",
                "--kubeconfig",
                write_kubeconfig(tmp_path / "kc", url),
                "-o",
                "json",
            ]
        )
    assert code == 1
    doc = json.loads(out.getvalue())  # exactly one JSON document on stdout
    cli_testlib.validate_schema(doc)
    assert doc["error"]["category"] == "kubernetes"
    assert f"cannot reach the Kubernetes API at {url}: connection refused" in doc["error"]["message"]
    assert doc["exit_code"] == 1 and doc["command"] == command
