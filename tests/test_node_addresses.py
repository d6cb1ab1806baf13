"""Node addresses in a Target: ``internal_ip`` stays the first InternalIP (AWS and GCP use it), and
``internal_ips`` carries every InternalIP in status order, so that a provider serving IPv6 finds a
dual-stack node's address of each family."""

from __future__ import annotations

from typing import Any

from lbprov.intent import node_target


def _node(*addresses: tuple[str, str]) -> dict[str, Any]:
    return {
        "metadata": {"name": "n1"},
        "spec": {"providerID": "p://n1"},
        "status": {"addresses": [{"type": t, "address": a} for t, a in addresses]},
    }


def test_a_dual_stack_node_keeps_its_first_internal_ip_and_lists_both_families_in_order() -> None:
    t = node_target(
        _node(
            ("Hostname", "n1"),
            ("InternalIP", "10.0.0.4"),
            ("ExternalIP", "1.2.3.4"),
            ("InternalIP", "fd00::4"),
        )
    )
    assert t.internal_ip == "10.0.0.4"
    assert t.internal_ips == ("10.0.0.4", "fd00::4")


def test_an_ipv6_primary_node_lists_ipv6_first_and_internal_ip_is_unchanged_in_meaning() -> None:
    t = node_target(_node(("InternalIP", "fd00::4"), ("InternalIP", "10.0.0.4")))
    assert t.internal_ip == "fd00::4"
    assert t.internal_ips == ("fd00::4", "10.0.0.4")


def test_a_node_without_internal_ips_has_none() -> None:
    t = node_target(_node(("Hostname", "n1")))
    assert t.internal_ip is None
    assert t.internal_ips == ()
