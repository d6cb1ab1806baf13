"""Health probes as upstream writes them: validated up front, ``num-of-probe`` in ``probeThreshold``."""

from __future__ import annotations

from typing import Any

from lbprov_azure.testing import SANDBOX_RG

P = "service.beta.kubernetes.io/azure-load-balancer-health-probe-"


def _probes(provider: Any, lb: str) -> list[Any]:
    return list(provider.client.load_balancers.get(SANDBOX_RG, lb).properties.probes)


def test_num_of_probe_is_written_to_probe_threshold(provider, cluster, intent_for, make_service, ensure):
    svc = make_service(annotations={P + "num-of-probe": "3", P + "interval": "10"})
    ensure(intent_for(svc))
    probes = _probes(provider, cluster)
    assert [(p.interval_in_seconds, p.probe_threshold) for p in probes] == [(10, 3)]


def test_probe_with_number_of_probes_only_is_updated_to_probe_threshold(
    provider, cluster, intent_for, make_service, ensure, state
):
    """A probe lbprov wrote before (numberOfProbes, no probeThreshold) gets probeThreshold set once."""
    intent = intent_for(make_service())
    ensure(intent)
    lb = state.get("loadBalancers", SANDBOX_RG, cluster)
    assert lb is not None
    for pr in lb["properties"]["probes"]:
        pr["properties"].pop("probeThreshold", None)
        pr["properties"]["numberOfProbes"] = 2
    state.put("loadBalancers", SANDBOX_RG, cluster, lb)
    plan = provider.plan(intent)
    assert [(c.action.value, c.kind, c.before["threshold"], c.after["threshold"]) for c in plan.changes] == [
        ("update", "probe", None, 2)
    ]
    ensure(intent)
    assert [p.probe_threshold for p in _probes(provider, cluster)] == [2]
