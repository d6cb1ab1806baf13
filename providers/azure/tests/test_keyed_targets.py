"""resolve keys node targets by their IPv4 address once per targets tuple (a node sync resolves
every Service again, and every Service's intent carries the same tuple while the nodes stay)."""

from __future__ import annotations

from dataclasses import replace

from lbprov.intent import IntentSettings, NodeTargetsMemo, build_intent
from lbprov.model import Target


def _v6_primary(name: str, v4: str, v6: str) -> Target:
    return Target(node_name=name, provider_id=f"azure:///{name}", internal_ip=v6, internal_ips=(v6, v4))


def test_services_on_the_same_nodes_share_one_keyed_tuple_and_new_nodes_get_their_own(
    provider, nodes, make_service
):
    memo = NodeTargetsMemo()
    settings = IntentSettings(cluster=provider.settings.cluster_name)
    a = build_intent(make_service("a"), nodes, settings, provider, targets=memo(nodes))
    b = build_intent(make_service("b"), nodes, settings, provider, targets=memo(nodes))
    assert a.targets is b.targets  # made once for both Services
    fresh = tuple(replace(t) for t in memo(nodes))  # equal targets, another tuple: made again
    c = build_intent(make_service("c"), nodes, settings, provider, targets=fresh)
    assert c.targets == a.targets and c.targets is not a.targets
    # an IPv6-primary node is keyed by its IPv4 address, in a new tuple as in the first
    dual = (*fresh, _v6_primary("v6first", "10.0.9.9", "fd00::9"))
    d = build_intent(make_service("d"), nodes, settings, provider, targets=dual)
    assert d.targets[-1].internal_ip == "10.0.9.9" and d.targets[:-1] == a.targets
    assert build_intent(make_service("e"), nodes, settings, provider, targets=dual).targets is d.targets
