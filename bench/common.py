"""Scaffolding shared by the bench scripts: Kubernetes objects, CloudCalls measurement, JSON output.

The scripts run as ``python bench/<name>.py``, so this directory is on ``sys.path`` and they import
this module as ``common``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from lbprov.cloudcalls import CloudCalls
from lbprov.model import SandboxNode

NAMESPACE = "bench"
ZONE_LABEL = "topology.kubernetes.io/zone"


def calls_parser(doc: str | None) -> argparse.ArgumentParser:
    """The options every ``*_calls.py`` script takes: --ports, --nodes, --services."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--ports", type=int, default=2)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--services", type=int, default=100)
    return parser


def make_service(
    name: str,
    ports: Iterable[tuple[str, str, int, int]],
    annotations: dict[str, str] | None = None,
    *,
    uid: str | None = None,
    namespace: str = NAMESPACE,
) -> dict[str, Any]:
    """A LoadBalancer Service in the API's JSON shape; ``ports`` are (name, protocol, port, nodePort)."""
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": uid or str(uuid.uuid4()),
            "annotations": dict(annotations or {}),
        },
        "spec": {
            "type": "LoadBalancer",
            "ports": [
                {"name": port_name, "protocol": proto, "port": port, "nodePort": node_port}
                for port_name, proto, port, node_port in ports
            ],
        },
    }


def make_node(node: SandboxNode) -> dict[str, Any]:
    """A Node in the API's JSON shape: zone label, providerID, InternalIP (two on a dual-stack node)."""
    return {
        "metadata": {"name": node.name, "labels": {ZONE_LABEL: node.zone}},
        "spec": {"providerID": node.provider_id},
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": a} for a in (node.internal_ip, node.internal_ipv6) if a
            ]
        },
    }


def make_nodes(nodes: Iterable[SandboxNode]) -> list[dict[str, Any]]:
    return [make_node(n) for n in nodes]


def counts(calls: CloudCalls, *, detail: bool = True) -> dict[str, Any]:
    """Reads and writes (and, with ``detail``, counts by operation) since the last reset; resets."""
    stats = calls.reset()
    out: dict[str, Any] = {"reads": stats.reads, "writes": stats.writes}
    if detail:
        out["by_operation"] = stats.to_json()["by_operation"]
    return out


def measure(calls: CloudCalls, fn: Callable[[], object], *, detail: bool = True) -> dict[str, Any]:
    """Cloud calls made by ``fn()``: see :func:`counts`."""
    calls.reset()
    fn()
    return counts(calls, detail=detail)


def assert_unchanged(provider: Any, intents: Sequence[Any]) -> None:
    """Re-plan every intent; each plan must be empty."""
    changed = sum(not provider.plan(it).empty for it in intents)
    assert changed == 0, "re-plan of unchanged Services found changes"


def replan_unchanged(
    provider: Any, intents: Sequence[Any], measure_step: Callable[..., dict[str, Any]] | None = None
) -> dict[str, dict[str, Any]]:
    """Calls to re-plan unchanged ``intents`` without and with the provider's read round.

    ``measure_step(fn, detail=...)`` measures one step (default: :func:`measure` on the provider's
    CloudCalls). Returns ``{"without_read_round": ..., "with_read_round": ...}``.
    """

    def default(fn: Callable[[], object], *, detail: bool = True) -> dict[str, Any]:
        return measure(provider.calls, fn, detail=detail)

    step = measure_step or default

    def in_round() -> None:
        with provider.read_round():
            assert_unchanged(provider, intents)

    without = step(lambda: assert_unchanged(provider, intents), detail=False)
    return {"without_read_round": without, "with_read_round": step(in_round)}


def per_service(figures: dict[str, Any], services: int) -> float:
    return round(figures["reads"] / services, 2)


def seconds_since(started: float) -> float:
    return round(time.monotonic() - started, 1)


def print_json(report: Any) -> None:
    json.dump(report, sys.stdout, indent=2)
    print()
