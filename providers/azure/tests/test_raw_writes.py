"""Writes send REST JSON and return it without the SDK's model round trip (as the reads do,
``test_raw_reads.py``): the PUT result of a shared load balancer deserialized into models and back
was the controller's largest CPU cost per write, growing with the load balancer."""

from __future__ import annotations

from azure.mgmt.network.operations import _operations
from lbprov_azure.testing import SANDBOX_RG


def test_writes_return_the_resources_json_as_the_sdk_reads_them_without_building_models(
    provider, cluster, intent_for, make_service, monkeypatch
):
    built: list[str] = []
    deserialize = _operations._deserialize

    def counting(model, data, *args, **kwargs):
        built.append(getattr(model, "__name__", str(model)))
        return deserialize(model, data, *args, **kwargs)

    monkeypatch.setattr(_operations, "_deserialize", counting)
    intent = intent_for(make_service(ports=[("TCP", 80), ("UDP", 53)]))
    plan = provider.plan(intent)
    assert {c.kind for c in plan.changes} >= {"load-balancer", "public-ip", "nsg-rule"}
    ingress = provider.apply(plan)
    assert built == [], built  # no model was built for any write (LB, public IP, NSG rules)
    monkeypatch.setattr(_operations, "_deserialize", deserialize)
    client = provider.client
    written = provider.writer(cluster)._current()  # the LB as the writer's PUT returned it
    assert written == client.load_balancers.get(SANDBOX_RG, cluster).as_dict()
    pip = client.public_ip_addresses.get(SANDBOX_RG, f"{cluster}-{intent.lb_name}")
    assert ingress[0].ip == pip.ip_address
    assert provider.plan(intent).empty
    provider.apply(provider.plan_delete(intent.ref))
