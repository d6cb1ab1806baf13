"""A second, independent client of the emulator: the Google Cloud SDK's ``gcloud`` reads what the
provider made. If gcloud is missing this FAILS (it is part of the machine image and of CI)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from gcp_helpers import converge, intent_for, make_service

INSTALL_HINT = (
    "gcloud is not installed: install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install, "
    "e.g. `apt-get install google-cloud-cli` from packages.cloud.google.com/apt) so that /usr/bin/gcloud exists"
)


@pytest.fixture
def gcloud(sandbox: Any, tmp_path: Path) -> Any:
    binary = shutil.which("gcloud")
    if binary is None:
        pytest.fail(INSTALL_HINT)
    token = tmp_path / "token"
    token.write_text("sandbox-token-not-a-secret")
    env = {
        **os.environ,
        "CLOUDSDK_CONFIG": str(tmp_path / "gcloud-config"),
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE": f"{sandbox.endpoint}/compute/v1/",
    }

    def run(*args: str) -> Any:
        cmd = [
            binary,
            "compute",
            *args,
            "--project",
            sandbox.settings["project"],
            f"--access-token-file={token}",
        ]
        done = subprocess.run([*cmd, "--format=json"], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{' '.join(args)} failed: {done.stderr}"
        return json.loads(done.stdout)

    return run


def test_gcloud_lists_the_forwarding_rules_and_describes_the_backend_service(
    provider, sandbox, server, gcloud
):
    svc = make_service("dns", ports=[("TCP", 53, 30053), ("UDP", 53, 30054)], affinity=True)
    intent = intent_for(provider, svc, sandbox.nodes)
    (ingress,) = converge(provider, intent)
    lb = intent.lb_name

    server.clear_log()
    listed = gcloud("forwarding-rules", "list", "--regions", sandbox.settings["region"])
    mine = {r["name"]: r for r in listed if r["name"].startswith(lb)}
    assert set(mine) == {f"{lb}-tcp", f"{lb}-udp"}
    assert {r["IPAddress"] for r in mine.values()} == {ingress.ip}
    assert {r["IPProtocol"] for r in mine.values()} == {"TCP", "UDP"}
    assert all(r["ports"] == ["53"] and r["loadBalancingScheme"] == "EXTERNAL" for r in mine.values())
    assert json.loads(mine[f"{lb}-tcp"]["description"])["kubernetes.io/service-name"] == "default/dns"

    bs = gcloud("backend-services", "describe", f"{lb}-tcp", "--region", sandbox.settings["region"])
    assert bs["sessionAffinity"] == "CLIENT_IP" and bs["protocol"] == "TCP"
    assert bs["healthChecks"][0].endswith("/healthChecks/k8s-test-node")
    assert sorted(b["group"].split("/")[-3] for b in bs["backends"]) == sorted(
        {n.zone for n in sandbox.nodes}
    )
    # gcloud only read
    assert server.requests and server.mutating_requests() == []


def test_gcloud_get_health_and_another_regions_empty_list(provider, sandbox, server, gcloud):
    intent = intent_for(provider, make_service("web"), sandbox.nodes)
    converge(provider, intent)
    server.clear_log()
    region = sandbox.settings["region"]
    health = gcloud("backend-services", "get-health", f"{intent.lb_name}-tcp", "--region", region)
    states = {
        s["instance"].split("/")[-1]: s["healthState"] for h in health for s in h["status"]["healthStatus"]
    }
    assert states == {n.name: "HEALTHY" for n in sandbox.nodes}
    assert gcloud("forwarding-rules", "list", "--regions", "europe-west1") == []
    assert server.mutating_requests() == []


def test_gcloud_instance_groups_list_goes_through_the_batch_endpoint(provider, sandbox, server, gcloud):
    converge(provider, intent_for(provider, make_service("web"), sandbox.nodes))
    server.clear_log()
    groups = gcloud("instance-groups", "list")
    assert {g["zone"].split("/")[-1] for g in groups} == {n.zone for n in sandbox.nodes}
    assert all(g["name"].startswith("k8s-ig--") and g["isManaged"] == "No" for g in groups)
    assert sorted(g["size"] for g in groups) == sorted(
        sum(1 for n in sandbox.nodes if n.zone == z) for z in {n.zone for n in sandbox.nodes}
    )
    paths = [r.path for r in server.requests]
    assert "/batch/compute/v1" in paths  # and its parts are logged as the requests they carry
    assert paths.index("/batch/compute/v1") > max(
        i for i, p in enumerate(paths) if p.endswith("/instanceGroupManagers")
    )
    assert server.mutating_requests() == []
