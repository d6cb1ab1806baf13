"""Every validation problem of a Service is reported at once, in plan and by build_intent itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_testlib import make_node, make_service, run_cli

from lbprov.intent import IntentSettings, build_intent
from lbprov.model import InvalidService

NODES = [make_node("n1", "fake://n1")]


def broken() -> dict[str, Any]:
    """SCTP, port 70000 and nodePort 99999 in one Service, plus a bad loadBalancerIP."""
    svc = make_service("bad", ports=((80, 30080), (70000, 30081), (443, 99999)))
    svc["spec"]["ports"][0]["protocol"] = "SCTP"
    svc["spec"]["loadBalancerIP"] = "not-an-ip"
    return svc


def test_build_intent_lists_every_problem_in_one_invalid_service() -> None:
    with pytest.raises(InvalidService) as caught:
        build_intent(broken(), NODES, IntentSettings("unit"))
    exc = caught.value
    assert exc.field == "spec.ports[0].protocol"  # the first problem's field, as before
    assert str(exc) == (
        "spec.ports[0].protocol: 'SCTP' is not supported; accepted values: TCP, UDP; "
        "spec.ports[1].port: 70000 is not a port; accepted values: 1-65535; "
        "spec.ports[2].nodePort: 99999 is not a port; accepted values: 1-65535; "
        "spec.loadBalancerIP: 'not-an-ip' is not an IP address"
    )


def test_a_single_problem_is_raised_as_it_is() -> None:
    svc = make_service("one")
    svc["spec"]["sessionAffinity"] = "Sticky"
    with pytest.raises(InvalidService) as caught:
        build_intent(svc, NODES, IntentSettings("unit"))
    assert str(caught.value) == "spec.sessionAffinity: 'Sticky'; accepted values: None, ClientIP"


def test_allocate_node_ports_false_is_one_problem_for_the_service_not_one_per_port() -> None:
    svc = make_service("np", ports=((80, None), (443, None)))
    svc["spec"]["allocateLoadBalancerNodePorts"] = False
    with pytest.raises(InvalidService) as caught:
        build_intent(svc, NODES, IntentSettings("unit"))
    assert str(caught.value).count("allocateLoadBalancerNodePorts") == 1


def test_plan_shows_every_problem_of_the_service(fake: Any, tmp_path: Path) -> None:
    src = tmp_path / "svc.yaml"
    src.write_text(yaml.safe_dump(broken()))
    nodes = tmp_path / "nodes.yaml"
    nodes.write_text(yaml.safe_dump_all(NODES))
    r = run_cli(
        ["plan", "--provider", "fake", "--cluster-name", "unit", "-f", str(src), "--nodes", str(nodes)]
    )
    assert r.code == 1
    for field in (
        "spec.ports[0].protocol",
        "spec.ports[1].port",
        "spec.ports[2].nodePort",
        "spec.loadBalancerIP",
    ):
        assert field in r.out, r.out
