"""A plan's independent creates run beside the others (lbprov_gcp.overlap), with the same calls.

The schedule is pure and tested on its own; the overlap itself through the provider against the
emulator: a request is held back until one that a one-after-the-other apply would send only later
has been sent, so these tests fail on an apply that does not overlap (no timing involved).
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from gcp_helpers import converge, intent_for, make_service, provider_for
from google.api_core import exceptions as gexc
from lbprov_gcp import GCPProvider
from lbprov_gcp.overlap import Step, steps
from lbprov_gcp.transport import POOL_SIZE

from lbprov.model import Action, Change
from lbprov.provider import SandboxCloud
from lbprov.testing import HoldUntilSent


def change(kind: str, action: Action = Action.CREATE, **data: Any) -> Change:
    return Change(action, kind, f"{kind}-{len(data)}", data=data)


ADDRESS = change("address", collection="addresses", family="IPv4", transient=True)
TRAFFIC_FW = change("firewall-rule", collection="firewalls", family="IPv4", destination_from_ip=True)
BACKEND = change("backend-service", collection="backendServices")
RULE = change("forwarding-rule", collection="forwardingRules", family="IPv4")
HC = change("health-check", collection="healthChecks", shared=True)
HC_FW = change("firewall-rule", collection="firewalls", shared=True)


def test_a_new_service_hoists_its_backend_service_and_floats_its_traffic_firewall() -> None:
    # plan order: health check, its firewall, reserve, traffic firewall, backend service, rule
    plan = [HC, HC_FW, ADDRESS, TRAFFIC_FW, BACKEND, RULE]
    assert steps(plan) == (
        Step("run", 0),
        Step("run", 1),
        Step("start", 4),  # the backend service starts with the reservation ...
        Step("run", 2),
        Step("start", 3),  # ... the traffic firewall once the IP is known ...
        Step("wait", 4),  # ... and the rule waits for the backend service only
        Step("run", 5),
    )  # the firewall is waited for when the apply ends (after the release)


def test_dual_stack_overlaps_both_families_firewalls_after_both_reservations() -> None:
    a6 = change("address", collection="addresses", family="IPv6", v=6)
    fw6 = change("firewall-rule", collection="firewalls", family="IPv6", v=6)
    r6 = change("forwarding-rule", collection="forwardingRules", family="IPv6", v=6)
    plan = [ADDRESS, a6, TRAFFIC_FW, fw6, BACKEND, RULE, r6]
    assert steps(plan) == (
        Step("start", 4),
        Step("run", 0),
        Step("run", 1),
        Step("start", 2),
        Step("start", 3),
        Step("wait", 4),
        Step("run", 5),
        Step("run", 6),
    )


@pytest.mark.parametrize(
    "between",
    [
        change("forwarding-rule", Action.DELETE, collection="forwardingRules"),  # an early rule delete
        change("backend-service", Action.UPDATE, collection="backendServices", verb="patch"),
    ],
)
def test_anything_else_between_keeps_the_plans_order(between: Change) -> None:
    plan = [ADDRESS, between, TRAFFIC_FW, BACKEND, RULE]
    # the backend service is not hoisted over the other change; the firewall still floats
    assert steps(plan) == (
        Step("run", 0),
        Step("run", 1),
        Step("start", 2),
        Step("run", 3),
        Step("run", 4),
    )


def test_a_firewall_followed_by_a_delete_or_replacement_keeps_its_place() -> None:
    leftover = change("health-check", Action.DELETE, collection="healthChecks")
    replaced = change("forwarding-rule", Action.REPLACE, collection="forwardingRules")
    for after in (leftover, replaced):
        assert steps([ADDRESS, TRAFFIC_FW, after]) == (Step("run", 0), Step("run", 1), Step("run", 2))


def test_updates_and_deletes_alone_run_in_order() -> None:
    plan = [
        change("firewall-rule", Action.UPDATE, collection="firewalls", family="IPv4", verb="patch"),
        change("backend-service", Action.UPDATE, collection="backendServices", verb="patch"),
        change("address", Action.DELETE, collection="addresses"),
    ]
    assert steps(plan) == tuple(Step("run", i) for i in range(3))


def test_every_change_is_done_exactly_once_and_a_wait_follows_its_start() -> None:
    for plan in ([HC, ADDRESS, TRAFFIC_FW, BACKEND, RULE], [TRAFFIC_FW, BACKEND, RULE], [BACKEND, RULE]):
        out = steps(plan)
        done = Counter(s.index for s in out if s.action in ("run", "start"))
        assert done == Counter(range(len(plan)))
        for at, step in enumerate(out):
            if step.action == "wait":
                assert Step("start", step.index) in out[:at]


# -- through the provider against the emulator ------------------------------------------------------


def first_service(sandbox: SandboxCloud) -> tuple[GCPProvider, Any]:
    """A provider with the cluster's shared resources made (a first Service), and a second
    Service's intent: its plan is the per-Service creates only."""
    provider = provider_for(sandbox)
    converge(provider, intent_for(provider, make_service("first"), sandbox.nodes))
    return provider, intent_for(provider, make_service("second"), sandbox.nodes)


@pytest.mark.parametrize(
    ("held", "until"),
    [
        # the backend service goes out while the address is reserved, not after the firewall
        ("addresses.insert", "regionBackendServices.insert"),
        # the traffic firewall goes out beside the rule and the release, not before them
        ("firewalls.insert", "addresses.delete"),
    ],
)
def test_a_new_service_overlaps_its_independent_writes(sandbox: SandboxCloud, held: str, until: str) -> None:
    provider, intent = first_service(sandbox)
    plan = provider.plan(intent)
    assert [(c.action, c.kind) for c in plan.changes] == [
        (Action.CREATE, "address"),
        (Action.CREATE, "firewall-rule"),
        (Action.CREATE, "backend-service"),
        (Action.CREATE, "forwarding-rule"),
    ]
    gate = HoldUntilSent(held, until)
    provider.calls.listeners.append(gate)
    ingress = provider.apply(plan)
    assert not gate.waited_in_vain, f"{held} went out before {until}: {gate.sent}"
    # the same calls as one after the other: five writes and the reservation's IP read
    assert Counter(gate.sent) == Counter(
        {
            "addresses.insert": 1,
            "addresses.get": 1,
            "firewalls.insert": 1,
            "regionBackendServices.insert": 1,
            "forwardingRules.insert": 1,
            "addresses.delete": 1,
        }
    )
    assert ingress and ingress[0].ip
    # converged: a fresh plan is empty and a second apply writes nothing
    again = provider_for(sandbox)
    assert again.plan(intent).empty
    provider.calls.listeners.remove(gate)
    writes = sandbox.extra["server"].mutating_requests()
    assert converge(again, intent) == ingress
    assert sandbox.extra["server"].mutating_requests() == writes


def test_a_failed_write_beside_others_raises_after_they_end_and_the_next_apply_completes(
    sandbox: SandboxCloud,
) -> None:
    provider, intent = first_service(sandbox)
    server = sandbox.extra["server"]
    server.clear_log()
    # the backend service fails while the reservation goes on (400: not retried)
    server.inject(400, count=1, operations=["regionBackendServices.insert"])
    gate = HoldUntilSent("addresses.insert", "regionBackendServices.insert")
    provider.calls.listeners.append(gate)
    with pytest.raises(gexc.BadRequest):
        provider.apply(provider.plan(intent))
    provider.calls.listeners.remove(gate)
    assert not gate.waited_in_vain
    # apply raised only once every write it started was answered: the log holds them all now
    answered = Counter(r.operation for r in server.requests if r.mutating)
    assert answered == Counter(
        {"addresses.insert": 1, "firewalls.insert": 1, "regionBackendServices.insert": 1}
    ), "the rule waited for the backend service, and nothing was released"
    # the next plan creates what is missing, and then the Service is converged
    server.clear_faults()
    fresh = provider_for(sandbox)
    plan = fresh.plan(intent)
    assert {(c.action, c.kind) for c in plan.changes} >= {
        (Action.CREATE, "backend-service"),
        (Action.CREATE, "forwarding-rule"),
    }
    fresh.apply(plan)
    assert provider_for(sandbox).plan(intent).empty


def test_ten_workers_and_the_writes_beside_them_keep_their_connections(sandbox: SandboxCloud) -> None:
    """Every request in flight at once has a kept connection: the emulator accepts no more
    connections than the transport keeps, however many Services (at 10 kept, the writes beside
    the workers' opened and closed a new connection for most requests beyond the tenth)."""
    server = sandbox.extra["server"]
    server.inject(None, latency=0.03)  # every request in flight long enough to overlap the others
    provider = provider_for(sandbox)
    intents = [intent_for(provider, make_service(f"s{i}"), sandbox.nodes) for i in range(60)]
    before = server.connections
    with provider.read_round(), ThreadPoolExecutor(10) as pool:
        list(pool.map(lambda intent: converge(provider, intent), intents))
    assert len(server.requests) > 300
    assert server.connections - before <= POOL_SIZE
