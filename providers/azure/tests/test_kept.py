"""The kept listing of the load balancers (lbprov_azure.kept) and the writer's check of what a plan
from it saw (lbwriter.Seen): pure, no emulator."""

from __future__ import annotations

from typing import Any

from lbprov_azure import names
from lbprov_azure.kept import KeptListing
from lbprov_azure.lbwriter import LBDelta, Seen, StalePlan, merge


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _body(etag: str, *ips: str) -> dict[str, Any]:
    return {"name": "lb", "etag": etag, "properties": {"backendAddressPools": [_pool(*ips)]}}


def _pool(*ips: str) -> dict[str, Any]:
    return {
        "name": "pool",
        "properties": {
            "loadBalancerBackendAddresses": [{"name": ip, "properties": {"ipAddress": ip}} for ip in ips]
        },
    }


def test_a_listing_is_used_until_its_age_counted_from_when_it_was_sent():
    clock = Clock()
    kept = KeptListing(clock)
    assert kept.get(120) is None
    mark = kept.sending()
    clock.now += 5  # on the wire
    kept.listed(mark, {"lb": _body("1")})
    clock.now += 115
    assert kept.get(120) == {"lb": _body("1")}
    assert kept.get(0) is None  # the setting 0: never
    clock.now += 1
    assert kept.get(120) is None


def test_our_writes_patch_it_and_a_write_during_a_listing_wins_over_the_listing():
    kept = KeptListing(Clock())
    kept.listed(kept.sending(), {"lb": _body("1"), "other": _body("9")})
    kept.record("LB", _body("2"))
    assert kept.get(120) == {"lb": _body("2"), "other": _body("9")}
    # a listing on the wire while we wrote "lb" (it may hold the body from before the write)
    mark = kept.sending()
    kept.writing("lb")
    kept.record("lb", _body("3"))
    kept.listed(mark, {"lb": _body("2"), "other": _body("10"), "new": _body("5")})
    assert kept.get(120) == {"lb": _body("3"), "other": _body("10"), "new": _body("5")}
    kept.record("new", None)  # deleted by us
    assert "new" not in (kept.get(120) or {})


def test_a_failed_write_drops_the_listing():
    kept = KeptListing(Clock())
    kept.listed(kept.sending(), {"lb": _body("1")})
    kept.forget("lb")
    assert kept.get(120) is None
    # and a listing that was on the wire meanwhile is not kept (it may predate the failure's effect)
    mark = kept.sending()
    kept.writing("lb")
    kept.forget("lb")
    kept.listed(mark, {"lb": _body("1")})
    assert kept.get(120) is None
    kept.listed(kept.sending(), {"lb": _body("2")})  # the next one is
    assert kept.get(120) == {"lb": _body("2")}


def _owned(body: dict[str, Any], services: set[str]) -> dict[str, Any]:
    tags = names.with_services({names.azure_key("kubernetes.io/cluster/c"): "owned"}, services)
    return {**body, "tags": tags}


def test_merge_refuses_a_delta_whose_plan_saw_another_pool_and_writes_the_one_that_matches():
    current = _owned(_body("1", "10.0.0.1", "10.0.0.2"), {"tok"})
    want = _pool("10.0.0.1", "10.0.0.2", "10.0.0.3")
    right = LBDelta("", "", pools=(want,), seen=Seen((("pool", ("10.0.0.1", "10.0.0.2")),)))
    merged = merge(current, [right], "c", "lb")
    assert merged.action == "update" and not merged.errors
    wrong = LBDelta("", "", pools=(want,), seen=Seen((("pool", ("10.0.0.1",)),)))
    merged = merge(current, [wrong], "c", "lb")
    assert merged.action == "none" and isinstance(merged.errors[0], StalePlan)
    absent = LBDelta("", "", pools=(want,), seen=Seen((("pool", None),)))
    assert isinstance(merge(current, [absent], "c", "lb").errors[0], StalePlan)
    assert isinstance(merge(None, [right], "c", "lb").errors[0], StalePlan)  # the LB is gone
    unused = _owned(_body("1", "10.0.0.1", "10.0.0.2"), set())
    assert "no Service" in str(merge(unused, [right], "c", "lb").errors[0])
    failed = {**current, "properties": {**current["properties"], "provisioningState": "Failed"}}
    assert "failed" in str(merge(failed, [right], "c", "lb").errors[0])


def test_with_the_setting_known_a_listing_past_it_is_let_go_and_zero_keeps_nothing():
    """The kept listing is megabytes of load balancers: held past its use only until next asked
    for, and never with the setting 0 (found by review: it was held for the process's life)."""
    clock = Clock()
    kept = KeptListing(clock, max_age=120)
    kept.listed(kept.sending(), {"lb": _body("1")})
    clock.now += 121
    assert kept.get(120) is None
    assert kept._lbs is None  # let go, not only refused
    never = KeptListing(clock, max_age=0)
    never.listed(never.sending(), {"lb": _body("1")})
    never.record("lb", _body("2"))  # our write, with no listing on the wire
    mark = never.sending()
    never.record("lb", _body("3"))  # a write that overtakes the listing on the wire
    never.listed(mark, {"lb": _body("2")})
    assert never._lbs is None and never.get(120) is None
    assert never._recent == {}  # no body held either (found by review: every written one was)


def test_written_bodies_are_held_only_while_a_listing_is_on_the_wire():
    kept = KeptListing(Clock())
    kept.record("lb", _body("1"))
    assert kept._recent == {}
    mark = kept.sending()
    kept.writing("lb")
    kept.record("lb", _body("2"))
    assert kept._recent == {"lb": _body("2")}
    kept.listed(mark, {"lb": _body("1")})
    assert kept.get(120) == {"lb": _body("2")}  # the write that overtook the listing wins
    assert kept._recent == {}
    kept.sending()
    kept.record("lb", _body("3"))
    kept.abandoned()  # the listing failed
    assert kept._recent == {}
