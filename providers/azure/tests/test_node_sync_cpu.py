"""What the Azure node sync works out once rather than once per Service (issue 14: a node sync
of 1,000 Services must not walk every Service's 22 nodes to learn that they all share one set)."""

from __future__ import annotations

from dataclasses import replace

from lbprov_azure import node_sync

from lbprov.model import Intent, Port, ServiceRef, Target


def _intent(name: str, targets: tuple[Target, ...]) -> Intent:
    return Intent(
        ref=ServiceRef("default", name, f"uid-{name}"),
        cluster="c",
        lb_name=f"a{name}",
        scheme="external",
        ports=(Port("http", "TCP", 80, 30080),),
        targets=targets,
    )


def _targets(n: int) -> tuple[Target, ...]:
    return tuple(
        Target(f"n{i}", f"azure:///n{i}", f"10.0.0.{i}", internal_ips=(f"10.0.0.{i}",)) for i in range(n)
    )


def test_node_sets_are_worked_out_once_per_targets_tuple(monkeypatch):
    calls: list[tuple[Target, ...]] = []
    real = node_sync._nodes

    def counting(targets: tuple[Target, ...]) -> frozenset[tuple[str, str, str | None]]:
        calls.append(targets)
        return real(targets)

    monkeypatch.setattr(node_sync, "_nodes", counting)
    shared = _targets(22)
    intents = [_intent(f"s{i}", shared) for i in range(100)]
    assert node_sync._node_sets(intents) == {real(shared)}
    assert len(calls) == 1 and calls[0] is shared
    # an equal tuple that is another object is walked again, and agrees
    equal = tuple(replace(t) for t in shared)
    assert node_sync._node_sets([*intents, _intent("eq", equal)]) == {real(shared)}
    # a Service on other nodes is its own set: the node sync then declines
    fewer = _targets(21)
    assert len(node_sync._node_sets([*intents, _intent("few", fewer)])) == 2
