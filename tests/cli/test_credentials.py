"""No credentials anywhere: one line naming the cloud, the problem and the fix; exit 1; no trace.

Each case runs ``python -m lbprov`` in a subprocess with an emptied environment (HOME, config
directories and credential variables pointed at an empty directory; metadata-server probes off) so
that the SDK's real credential chain runs and finds nothing. Manifests come from files, so no
cluster is needed; the failure happens before any request leaves the machine.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web", "namespace": "default", "uid": "11111111-2222-4333-8444-555555555555"},
    "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}]},
}

CASES = {
    "aws": (
        {"region": "us-east-1"},
        "aws:///us-east-1a/i-0123456789abcdef0",
        "AWS: no credentials found",
        "NoCredentialsError",
    ),
    "gcp": (
        {"project": "my-project", "region": "us-central1", "network": "net", "node_tags": ["nodes"]},
        "gce://my-project/us-central1-a/node-1",
        "GCP: no Application Default Credentials: run `gcloud auth application-default login`",
        "DefaultCredentialsError",
    ),
    "azure": (
        {
            "subscription_id": "5a1d7c3e-0000-4000-8000-00000000abcd",
            "resource_group": "rg",
            "location": "westeurope",
            "vnet_name": "vnet",
            "subnet_name": "nodes",
        },
        "azure:///subscriptions/5a1d7c3e-0000-4000-8000-00000000abcd/resourceGroups/rg/providers/"
        "Microsoft.Compute/virtualMachines/node-1",
        "Azure: no usable credential (DefaultAzureCredential): run `az login`",
        "ClientAuthenticationError",
    ),
}


def empty_env(home: Path) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "AWS_CONFIG_FILE": str(home / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "CLOUDSDK_CONFIG": str(home / "gcloud"),
        "NO_GCE_CHECK": "True",
        "AZURE_CONFIG_DIR": str(home / "azure"),
    }


@pytest.mark.parametrize("provider", sorted(CASES))
def test_missing_credentials_is_one_line_without_traceback(provider: str, tmp_path: Path) -> None:
    settings, provider_id, message, exc_name = CASES[provider]
    (tmp_path / "settings.yaml").write_text(yaml.safe_dump({"cluster_name": "prod", provider: settings}))
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "node-1", "labels": {"topology.kubernetes.io/zone": "zone-a"}},
        "spec": {"providerID": provider_id},
        "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.2"}]},
    }
    (tmp_path / "objects.yaml").write_text(yaml.safe_dump_all([SERVICE, node]))
    argv = ["plan", "--provider", provider, "--settings", str(tmp_path / "settings.yaml")]
    argv += ["-f", str(tmp_path / "objects.yaml")]
    lbprov = [sys.executable, "-m", "lbprov"]
    env = empty_env(tmp_path)
    proc = subprocess.run([*lbprov, *argv], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.startswith(f"lbprov plan: error: {message}"), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    debug = subprocess.run([*lbprov, "--debug", *argv], env=env, capture_output=True, text=True, timeout=120)
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr and exc_name in debug.stderr
