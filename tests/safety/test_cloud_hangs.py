"""Issue 13: a cloud endpoint that accepts connections and never answers.

Before: 367 s for one Service with default settings, a bare ``ReadTimeoutError``, then the same
again for the next Service. Now the first read timeout ends ``lbprov plan`` with one line naming
the endpoint, and no request for another Service is sent. Exercised through the AWS provider,
whose read timeout is a setting; GCP and Azure do not pass ``CloudCalls.timeouts`` to their SDK
clients yet (see the issue 13 report), so a silent endpoint costs them their SDK's own timeout
(60 s GCP, 300 s Azure) once -- still once per run.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from lbprov.kube.client import KubeClient
from lbprov.provider import load_provider
from lbprov.sandbox.kube_api import KubeAPIServer

from .conftest import SilentServer, finish, lbprov_env, start


def test_plan_against_a_silent_cloud_gives_up_once_naming_the_endpoint(tmp_path: Path) -> None:
    with KubeAPIServer() as api, SilentServer() as cloud, load_provider("aws").sandbox(["node-1"]) as box:
        kube = KubeClient.for_url(api.url)
        for i in range(3):
            kube.create_service(
                "default",
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": f"web{i}", "namespace": "default"},
                    "spec": {
                        "type": "LoadBalancer",
                        "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080 + i}],
                    },
                },
            )
        settings = {k: v for k, v in box.settings.items() if k != "cluster_name"}
        settings.update(endpoint_url=cloud.url, read_timeout=2, connect_timeout=2)
        path = tmp_path / "settings.yaml"
        path.write_text(yaml.safe_dump({"cluster_name": "sandbox", "aws": settings}))
        proc, started = start(
            [
                "plan",
                "--provider",
                "aws",
                "--settings",
                str(path),
                "--kubeconfig",
                api.write_kubeconfig(tmp_path / "kc"),
            ],
            lbprov_env(),
        )
        done = finish(proc, started, timeout=120)
    assert done.returncode == 1, done.stderr
    assert len(done.error_lines) == 1, done.stderr
    line = done.error_lines[0]
    assert line.startswith(f"lbprov plan: error: aws: cannot reach {cloud.url}: the read timed out"), line
    assert cloud.connections == 1, f"{cloud.connections} connections: the run must stop at the first"
    assert done.seconds < 30, f"{done.seconds:.1f}s"
    print(f"plan against a silent cloud (read timeout 2 s): gave up after {done.seconds:.1f}s: {line}")
