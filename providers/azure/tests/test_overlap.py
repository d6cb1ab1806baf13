"""A new Service's NSG rule goes out beside its load-balancer batch (lbprov_azure.overlap), with the
same writes, and never where the rule would lose or change an address in a new order."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from lbprov_azure import AzureProvider
from lbprov_azure.overlap import independent_rule_changes
from lbprov_azure.sandbox import ArmState
from lbprov_azure.sandbox.base import Fault
from lbprov_azure.testing import allow_rule, long_operations

from lbprov.model import Action, Change, Intent
from lbprov.testing import HoldUntilSent


def _lb(action: Action = Action.CREATE, kind: str = "frontend-ip-configuration") -> Change:
    return Change(action, kind, "lb/x", data={"lb": "lb", "service": "s", "base": "x"})


def _rule(action: Action = Action.UPDATE, **data: Any) -> Change:
    return Change(action, "nsg-rule", "nsg/r", data={"name": "r", "shared": True, **data})


_RESOLVE = {"lb": "lb", "base": "x", "family": "IPv4"}


@pytest.mark.parametrize(
    ("group", "after", "known", "beside"),
    [
        # a new Service: its shared rule takes the public IP's address, known before the LB write
        ([_lb()], [_rule(resolve_frontend=_RESOLVE)], {"IPv4"}, 1),
        # a rule created whole, its destinations known at plan time (floating IP off)
        ([_lb()], [_rule(Action.CREATE, shared=False)], set(), 1),
        # the address comes from the LB write (an internal frontend): after it
        ([_lb()], [_rule(resolve_frontend=_RESOLVE)], set(), 0),
        # an IPv6 frontend whose public IP this apply did not write
        ([_lb()], [_rule(resolve_frontend={**_RESOLVE, "family": "IPv6"})], {"IPv4"}, 0),
        # a rule change that removes an address keeps its place
        ([_lb()], [_rule(add="10.0.0.9", remove=["10.0.0.8"])], set(), 0),
        # a per-port rule rewritten whole may drop an address
        ([_lb()], [_rule(Action.UPDATE, shared=False)], set(), 0),
        ([_lb()], [_rule(Action.DELETE)], set(), 0),
        # nothing overlaps an LB group that deletes anything
        ([_lb(), _lb(Action.DELETE, "probe")], [_rule(resolve_frontend=_RESOLVE)], {"IPv4"}, 0),
        # the additions up to the first that must wait
        (
            [_lb()],
            [_rule(resolve_frontend=_RESOLVE), _rule(Action.DELETE), _rule(resolve_frontend=_RESOLVE)],
            {"IPv4"},
            1,
        ),
    ],
)
def test_only_rule_additions_whose_address_is_known_go_beside_an_lb_group_of_additions(
    group: list[Change], after: list[Change], known: set[str], beside: int
) -> None:
    changes = [*group, *after]
    assert independent_rule_changes(changes, len(group), group, known) == len(group) + beside


def _new_service(
    provider: AzureProvider, intent_for: Callable[..., Intent], make_service: Callable[..., Any]
) -> Intent:
    intent = intent_for(make_service("beside", ports=[("TCP", 80), ("TCP", 443)]))
    kinds = [c.kind for c in provider.plan(intent).changes]
    assert kinds[0] == "public-ip" and kinds[-1] == "nsg-rule" and "load-balancing-rule" in kinds
    return intent


def test_a_new_services_nsg_rule_is_sent_before_its_load_balancer_write_ends(
    provider: AzureProvider,
    intent_for: Callable[..., Intent],
    make_service: Callable[..., Any],
    state: ArmState,
) -> None:
    intent = _new_service(provider, intent_for, make_service)
    # the LB's PUT is held until the rule's PUT is sent: the old order (the rule after the LB's
    # write and poll) waits in vain
    plan = provider.plan(intent)
    gate = HoldUntilSent("loadBalancers.create_or_update", "securityRules.create_or_update")
    provider.calls.listeners.append(gate)
    try:
        ingress = provider.apply(plan)
    finally:
        provider.calls.listeners.remove(gate)
    assert not gate.waited_in_vain, gate.sent
    # the same writes as one after the other: the public IP, one LB PUT, one rule PUT
    writes = Counter(op for op in gate.sent if op.endswith(("create_or_update", "delete")))
    assert writes == Counter(
        {
            "publicIPAddresses.create_or_update": 1,
            "loadBalancers.create_or_update": 1,
            "securityRules.create_or_update": 1,
        }
    )
    assert ingress and ingress[0].ip
    assert allow_rule(state, intent.lb_name, ingress[0].ip)  # the rule holds the public IP's address
    # converged, and a second apply writes nothing
    fresh = AzureProvider.from_settings(provider.settings)
    assert fresh.plan(intent).empty


def test_a_rule_write_that_fails_beside_the_lb_write_fails_the_apply_and_the_next_one_completes(
    provider: AzureProvider,
    intent_for: Callable[..., Intent],
    make_service: Callable[..., Any],
    state: ArmState,
    ensure: Callable[..., Any],
) -> None:
    intent = _new_service(provider, intent_for, make_service)
    fault = state.inject(
        Fault(method="PUT", path=r"/securityrules/", status=400, code="InvalidRequestFormat")
    )
    with pytest.raises(Exception, match="InvalidRequestFormat"):
        provider.apply(provider.plan(intent))
    assert fault.hits == 1
    # the LB write beside it ended before the apply raised: the Service's parts are on the LB
    fresh = AzureProvider.from_settings(provider.settings)
    kinds = [c.kind for c in fresh.plan(intent).changes]
    assert kinds == ["nsg-rule"]
    assert ensure(intent, fresh)


def test_a_new_services_lb_write_starts_when_its_public_ip_has_succeeded_before_the_ips_final_get(
    provider: AzureProvider,
    intent_for: Callable[..., Intent],
    make_service: Callable[..., Any],
) -> None:
    intent = _new_service(provider, intent_for, make_service)
    # the public IP's final GET (after its operation succeeded) is held until the LB's PUT is sent:
    # the old order (the LB after the whole public-IP write) waits in vain
    plan = provider.plan(intent)  # its reads are not held
    gate = HoldUntilSent("publicIPAddresses.get", "loadBalancers.create_or_update")
    provider.calls.listeners.append(gate)
    try:
        ingress = provider.apply(plan)
    finally:
        provider.calls.listeners.remove(gate)
    assert not gate.waited_in_vain, gate.sent
    assert gate.sent.index("operations.get") < gate.sent.index("loadBalancers.create_or_update")
    assert ingress and ingress[0].ip
    assert AzureProvider.from_settings(provider.settings).plan(intent).empty


def test_the_lb_write_waits_for_the_public_ips_long_operation(
    provider: AzureProvider,
    intent_for: Callable[..., Intent],
    make_service: Callable[..., Any],
    state: ArmState,
    ensure: Callable[..., Any],
) -> None:
    """ARM (and the emulator) refuse an LB whose public IP's operation has not succeeded
    (ReferencedResourceNotProvisioned): the LB's PUT goes only after the IP's operation ended."""
    intent = _new_service(provider, intent_for, make_service)
    plan = provider.plan(intent)
    # the public IP's first poll waits (2 s at most) for an LB PUT: one sent while the IP's
    # operation is in progress is refused, so an LB write that went too early fails this apply
    early = HoldUntilSent("operations.get", "loadBalancers.create_or_update", timeout=2)
    provider.calls.listeners.append(early)
    try:
        with long_operations(state) as polls:  # operations end on every second poll
            ingress = provider.apply(plan)
    finally:
        provider.calls.listeners.remove(early)
    assert early.waited_in_vain  # no LB PUT while the public IP was being made
    assert ingress and ingress[0].ip
    assert polls[0] >= 2
    assert ensure(intent) == ingress


def test_a_public_ip_whose_operation_fails_starts_no_lb_write(
    provider: AzureProvider,
    intent_for: Callable[..., Intent],
    make_service: Callable[..., Any],
    state: ArmState,
    ensure: Callable[..., Any],
) -> None:
    intent = _new_service(provider, intent_for, make_service)
    lb_puts = state.count("PUT", "/loadbalancers/")
    state.fail_operations(
        method="PUT", path="publicipaddresses", code="InternalServerError", message="pip boom"
    )
    with pytest.raises(Exception, match="pip boom"):
        provider.apply(provider.plan(intent))
    assert state.count("PUT", "/loadbalancers/") == lb_puts
    assert ensure(intent)
