"""A Service's shared NSG rule join is written while its load-balancer write is under way (issue 14).

The LB and rule writers each batch the Services of a moment into one write; applied one after the
other, every Service of a create waited for two batches in a row. A join whose address is already
known (the Service's public IP) needs nothing of the LB write, so it goes alongside it. A rule that
loses an address still follows the LB write.
"""

from __future__ import annotations

import threading
from typing import Any

from lbprov_azure import AzureProvider
from lbprov_azure.sandbox import ArmState


class _HoldLBUntilRule:
    """Holds the cluster LB's PUT (in the emulator) until a security-rule PUT has arrived, at most
    ``seconds``; records whether it came while the LB PUT was held."""

    def __init__(self, cluster: str, seconds: float) -> None:
        self.cluster, self.seconds = cluster.lower(), seconds
        self.rule_put = threading.Event()
        self.rule_came_while_lb_held: list[bool] = []

    def __call__(self, method: str, path: str) -> None:
        low = path.lower()
        if method == "PUT" and "/securityrules/" in low:
            self.rule_put.set()
        elif method == "PUT" and low.endswith(f"/loadbalancers/{self.cluster}"):
            self.rule_came_while_lb_held.append(self.rule_put.wait(self.seconds))


def test_a_public_services_rule_join_is_written_while_its_lb_write_is_held(
    provider: AzureProvider, state: ArmState, intent_for: Any, make_service: Any, cluster: str
) -> None:
    intent = intent_for(make_service("alongside"))
    hold = _HoldLBUntilRule(cluster, seconds=10)
    state.hooks.append(hold)
    try:
        ingress = provider.apply(provider.plan(intent))
    finally:
        state.hooks.remove(hold)
    # sequential, the rule PUT would only be sent after the LB PUT answered: the hold times out
    assert hold.rule_came_while_lb_held == [True]
    assert ingress and ingress[0].ip
    assert provider.plan(intent).empty  # both writes landed
