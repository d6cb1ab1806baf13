"""The provider's polling, timeout and failure handling of ARM long-running operations, through the
SDK against an emulator whose operations stay InProgress for a while or fail on request."""

from __future__ import annotations

import threading

import pytest
from azure.core.exceptions import HttpResponseError
from lbprov_azure import AzureProvider
from lbprov_azure.client import OperationTimeout
from lbprov_azure.testing import SANDBOX_RG, long_operations


def test_operations_in_progress_are_polled_until_they_end(provider, intent_for, make_service, ensure, state):
    """Operations stay InProgress until they have been polled three times (no wall-clock window:
    the test ends each operation itself, so a slow machine polls the same number of times)."""
    state.lro_seconds = 3600.0
    polls = {"since_finish": 0, "all": 0}

    def end_every_third_poll(method: str, path: str) -> None:
        if method == "GET" and "/operations/" in path.lower():
            polls["all"] += 1
            polls["since_finish"] += 1
            if polls["since_finish"] == 3:
                polls["since_finish"] = 0
                state.finish_operations()

    state.hooks.append(end_every_third_poll)
    try:
        ensure(intent_for(make_service()))
    finally:
        state.hooks.remove(end_every_third_poll)
        state.lro_seconds = 0.0
    writes = len([r for r in state.log if r.mutating])
    assert writes
    assert polls["all"] >= 3  # InProgress answers were polled until the operation ended


def test_writes_are_polled_in_the_calling_thread_not_a_poller_thread_each(
    provider, intent_for, make_service, state, monkeypatch
):
    """A Service's create and delete (public IP, LB and NSG rule PUTs and DELETEs, each polled while
    InProgress) start no azure-core ``LROPoller`` thread: the writes poll where they are sent
    (client.InThreadPolling)."""
    started: list[str] = []
    start = threading.Thread.start

    def counting_start(self: threading.Thread) -> None:
        started.append(self.name)
        start(self)

    monkeypatch.setattr(threading.Thread, "start", counting_start)
    intent = intent_for(make_service())
    with long_operations(state) as polls:
        ingress = provider.apply(provider.plan(intent))
        created_after = polls[0]
        deleted = provider.plan_delete(intent.ref)
        provider.apply(deleted)
    assert ingress and ingress[0].ip
    assert {c.kind for c in deleted.changes} >= {"public-ip", "nsg-rule"}
    assert created_after >= 2 and polls[0] > created_after  # long operations, polled until they ended
    assert not [n for n in started if n.startswith("LROPoller")]
    assert provider.plan_delete(intent.ref).empty


def test_an_operation_past_the_timeout_fails_the_apply_and_the_next_reconcile_finishes(
    sandbox, cluster, intent_for, make_service, ensure, state
):
    impatient = AzureProvider.from_settings(
        {**sandbox.settings, "cluster_name": cluster, "operation_timeout_seconds": 0.2}
    )
    intent = intent_for(make_service(), prov=impatient)
    state.lro_seconds = 30.0
    with pytest.raises(OperationTimeout, match=r"public IP .*still in progress after 0.2 s"):
        impatient.apply(impatient.plan(intent))
    state.finish_operations()
    state.lro_seconds = 0.0
    ensure(intent, impatient)


def test_a_failed_public_ip_operation_is_reported_and_written_again(
    provider, cluster, intent_for, make_service, ensure, state
):
    intent = intent_for(make_service())
    state.fail_operations(method="PUT", path="publicipaddresses", code="InternalServerError", message="boom")
    with pytest.raises(HttpResponseError, match="boom"):
        provider.apply(provider.plan(intent))
    pip = state.get("publicIPAddresses", SANDBOX_RG, f"{cluster}-{intent.lb_name}")
    assert pip["properties"]["provisioningState"] == "Failed"
    plan = provider.plan(intent)
    assert ("update", "public-ip") in {(c.action.value, c.kind) for c in plan.changes}
    ensure(intent)
    pip = state.get("publicIPAddresses", SANDBOX_RG, f"{cluster}-{intent.lb_name}")
    assert pip["properties"]["provisioningState"] == "Succeeded"


def test_a_failed_load_balancer_operation_is_reported_and_repaired(
    provider, cluster, intent_for, make_service, ensure, state
):
    intent = intent_for(make_service())
    state.fail_operations(method="PUT", path="loadbalancers", code="InternalServerError", message="lb boom")
    with pytest.raises(HttpResponseError, match="lb boom"):
        provider.apply(provider.plan(intent))
    assert state.get("loadBalancers", SANDBOX_RG, cluster)["properties"]["provisioningState"] == "Failed"
    plan = provider.plan(intent)
    assert [c.reason for c in plan.changes if c.kind == "load-balancer"] == [
        "its last operation failed: it is written again"
    ]
    ensure(intent)
    assert state.get("loadBalancers", SANDBOX_RG, cluster)["properties"]["provisioningState"] == "Succeeded"
