"""The ARM emulator writes an answer that shows stored state from the stored value itself, under its
lock (``Response.encoded``): no answer can change what the emulator stores, and no later write can
change an answer already made (issue 14: the per-answer deep copy of a large load balancer body
was on the chain that bounds the Azure create)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from lbprov_azure.sandbox.operations import DEFAULT_API_VERSION
from lbprov_azure.sandbox.state import ArmState

RG = "rg"
PIP_BODY: dict[str, Any] = {
    "location": "westeurope",
    "sku": {"name": "Standard"},
    "tags": {"owner": "a"},
    "properties": {"publicIPAllocationMethod": "Static"},
}


@pytest.fixture
def state() -> ArmState:
    s = ArmState("sub", "westeurope")
    s.add_resource_group(RG)
    return s


def _path(state: ArmState, rtype: str, name: str) -> str:
    return f"/subscriptions/sub/resourceGroups/{RG}/providers/Microsoft.Network/{rtype}/{name}"


def _send(state: ArmState, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    return state.handle(
        method, path, {"api-version": DEFAULT_API_VERSION}, {"authorization": "Bearer local"}, body
    )


def test_a_get_answer_is_bytes_and_changing_its_decoded_body_leaves_the_stored_resource(state):
    state.put("publicIPAddresses", RG, "pip", PIP_BODY)
    resp = _send(state, "GET", _path(state, "publicIPAddresses", "pip"))
    assert resp.status == 200 and isinstance(resp.raw, bytes) and resp.body is None
    shown = resp.json()
    assert shown == state.get("publicIPAddresses", RG, "pip")
    assert resp.headers["ETag"] == shown["etag"]
    shown["tags"]["owner"] = "changed"
    shown["properties"]["ipAddress"] = "10.9.9.9"
    stored = state.get("publicIPAddresses", RG, "pip")
    assert stored["tags"] == {"owner": "a"} and stored["properties"]["ipAddress"] != "10.9.9.9"


def test_a_put_answer_is_written_before_later_changes_to_the_stored_resource(state):
    state.lro_seconds = 60.0  # the operation stays in progress until finish_operations()
    path = _path(state, "publicIPAddresses", "pip")
    put = _send(state, "PUT", path, PIP_BODY)
    assert put.status == 201 and isinstance(put.raw, bytes)
    before = bytes(put.raw)
    assert orjson.loads(before)["properties"]["provisioningState"] == "Updating"
    get = _send(state, "GET", path)
    state.finish_operations()  # changes the stored resource's provisioningState in place
    _send(state, "PUT", path, {**PIP_BODY, "tags": {"owner": "b"}})
    state.finish_operations()
    assert put.raw == before  # the answers made earlier still show what was stored then
    assert get.json()["properties"]["provisioningState"] == "Updating"
    assert get.json()["tags"] == {"owner": "a"}
    now = state.get("publicIPAddresses", RG, "pip")
    assert now["tags"] == {"owner": "b"} and now["properties"]["provisioningState"] == "Succeeded"


def test_lists_and_child_answers_cannot_change_stored_state(state):
    state.put(
        "networkSecurityGroups", RG, "nsg", {"location": "westeurope", "properties": {"securityRules": []}}
    )
    rule = {
        "protocol": "Tcp",
        "access": "Allow",
        "direction": "Inbound",
        "priority": 500,
        "sourceAddressPrefix": "*",
        "sourcePortRange": "*",
        "destinationAddressPrefix": "*",
        "destinationPortRange": "80",
    }
    state.put_security_rule(RG, "nsg", "r1", rule)
    nsg = _path(state, "networkSecurityGroups", "nsg")
    answers = [
        _send(state, "GET", "/subscriptions/sub/providers/Microsoft.Network/networkSecurityGroups"),
        _send(
            state,
            "GET",
            f"/subscriptions/sub/resourceGroups/{RG}/providers/Microsoft.Network/networkSecurityGroups",
        ),
        _send(state, "GET", f"{nsg}/securityRules"),
        _send(state, "GET", f"{nsg}/securityRules/r1"),
    ]
    for resp in answers:
        assert resp.status == 200 and isinstance(resp.raw, bytes)
    listed = answers[0].json()["value"][0]
    listed["properties"]["securityRules"].clear()
    answers[3].json()["properties"]["destinationPortRange"] = "81"
    stored = state.get("networkSecurityGroups", RG, "nsg")
    assert [r["properties"]["destinationPortRange"] for r in stored["properties"]["securityRules"]] == ["80"]
