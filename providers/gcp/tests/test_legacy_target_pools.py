"""The emulator's legacy kinds (cloud-provider-gcp's load balancers, for the migration tests):
target pools through google-cloud-compute, ``httpHealthChecks`` over REST (the SDK has no client for
them). Each rule cites compute.v1.json in the emulator module that enforces it."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from google.api_core import exceptions as gexc
from google.cloud import compute_v1 as c
from lbprov_gcp.testing import sdk


def hc_url(sandbox: Any, name: str = "") -> str:
    s = sandbox.settings
    base = f"{sandbox.endpoint}/compute/v1/projects/{s['project']}/global/httpHealthChecks"
    return f"{base}/{name}" if name else base


def make_hc(sandbox: Any, name: str = "hc", **fields: Any) -> requests.Response:
    return requests.post(hc_url(sandbox), json={"name": name, **fields}, timeout=10)


def pool(sandbox: Any, name: str = "tp", **fields: Any) -> Any:
    s = sandbox.settings
    client = sdk(sandbox, "TargetPoolsClient")
    client.insert(
        project=s["project"], region=s["region"], target_pool_resource=c.TargetPool(name=name, **fields)
    ).result()
    return client.get(project=s["project"], region=s["region"], target_pool=name)


def instance(sandbox: Any, i: int = 0) -> str:
    node = sandbox.nodes[i]
    return f"/zones/{node.zone}/instances/{node.name}"


def test_an_http_health_check_takes_upstreams_body_and_defaults(sandbox):
    assert (
        make_hc(sandbox, port=10256, requestPath="/healthz", checkIntervalSec=8, timeoutSec=1).status_code
        == 200
    )
    got = requests.get(hc_url(sandbox, "hc"), timeout=10).json()
    assert (got["port"], got["requestPath"], got["healthyThreshold"]) == (10256, "/healthz", 2)
    assert make_hc(sandbox, "plain").status_code == 200
    assert requests.get(hc_url(sandbox, "plain"), timeout=10).json()["port"] == 80


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"prot": 80}, 'Unknown name "prot"'),
        ({"port": 70000}, "resource.port"),
        ({"requestPath": "healthz"}, "must start with '/'"),
        ({"requestPath": "/healthz?x=1"}, "take no query"),
        ({"checkIntervalSec": 2, "timeoutSec": 5}, "less than or equal to checkIntervalSec"),
        ({"id": "12"}, "output only"),
    ],
)
def test_an_http_health_check_refuses_what_gce_refuses(sandbox, fields, message):
    answer = make_hc(sandbox, **fields)
    assert answer.status_code == 400 and message in answer.json()["error"]["message"]


def test_a_target_pool_holds_instances_and_one_legacy_check(sandbox):
    make_hc(sandbox)
    tp = pool(sandbox, instances=[instance(sandbox)], health_checks=["global/httpHealthChecks/hc"])
    assert tp.instances[0].endswith(f"/instances/{sandbox.nodes[0].name}")
    assert tp.health_checks[0].endswith("/global/httpHealthChecks/hc") and tp.session_affinity == "NONE"


def test_a_target_pool_refuses_what_gce_refuses(sandbox):
    make_hc(sandbox, "a")
    make_hc(sandbox, "b")
    s = sandbox.settings
    bad = [
        (
            {"health_checks": ["global/httpHealthChecks/a", "global/httpHealthChecks/b"]},
            "only one health check",
        ),
        ({"health_checks": ["global/httpHealthChecks/missing"]}, "was not found"),
        ({"health_checks": [f"regions/{s['region']}/healthChecks/a"]}, "does not refer to a httpHealthCheck"),
        ({"instances": ["/zones/europe-west1-b/instances/x"]}, "is not in region"),
        ({"instances": [f"/zones/{sandbox.nodes[0].zone}/instances/nope"]}, "was not found"),
        ({"session_affinity": "GENERATED_COOKIE"}, "is not one of"),
    ]
    for fields, message in bad:
        with pytest.raises(gexc.BadRequest, match=message):
            pool(sandbox, **fields)


def test_target_pool_rules_and_what_is_in_use(sandbox):
    s = sandbox.settings
    make_hc(sandbox)
    pool(sandbox, instances=[instance(sandbox)], health_checks=["global/httpHealthChecks/hc"])
    rules = sdk(sandbox, "ForwardingRulesClient")
    target = f"regions/{s['region']}/targetPools/tp"

    def rule(name: str, **fields: Any) -> None:
        rules.insert(
            project=s["project"],
            region=s["region"],
            forwarding_rule_resource=c.ForwardingRule(name=name, target=target, **fields),
        ).result()

    for fields, message in [
        ({"load_balancing_scheme": "INTERNAL", "ports": ["80"]}, "EXTERNAL forwarding rules only"),
        ({"I_p_protocol": "L3_DEFAULT", "all_ports": True}, "is not TCP or UDP"),
    ]:
        with pytest.raises(gexc.BadRequest, match=message):
            rule("bad", **fields)
    rule("fr", port_range="80-443")
    assert rules.get(project=s["project"], region=s["region"], forwarding_rule="fr").target.endswith(target)
    # in use: the pool by the rule, the check by the pool (resourceInUseByAnotherResource)
    with pytest.raises(gexc.BadRequest, match="is already being used by"):
        sdk(sandbox, "TargetPoolsClient").delete(
            project=s["project"], region=s["region"], target_pool="tp"
        ).result()
    answer = requests.delete(hc_url(sandbox, "hc"), timeout=10)
    assert (
        answer.status_code == 400
        and answer.json()["error"]["errors"][0]["reason"] == "resourceInUseByAnotherResource"
    )
