"""Plans as text (like ``terraform plan``) and as JSON (a stable, documented schema).

JSON schema version 1 (``lbprov/schemas/plan-v1.json``)::

    {"schema": "lbprov.plan/v1", "provider": "aws",
     "service": {"namespace": "...", "name": "...", "uid": "..."},
     "operation": "ensure" | "delete",
     "changes": [{"action": "create|update|replace|delete|adopt", "kind": "...", "name": "...",
                  "reason": null | "...", "before": {...} | null, "after": {...} | null,
                  "diff": {"field": {"before": ..., "after": ...}}}],
     "summary": {"create": 0, "update": 0, "replace": 0, "delete": 0, "adopt": 0},
     "ingress": [{"ip": "...", "hostname": "..."}]}
"""

from __future__ import annotations

import json
from typing import Any

from lbprov.model import Action, Change, Plan

SCHEMA_ID = "lbprov.plan/v1"

_COLOURS = {
    Action.CREATE: "\033[32m",
    Action.UPDATE: "\033[33m",
    Action.REPLACE: "\033[35m",
    Action.DELETE: "\033[31m",
    Action.ADOPT: "\033[36m",
}
_RESET = "\033[0m"
_BOLD = "\033[1m"


def _fmt(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def render_change(change: Change, *, colour: bool = False) -> list[str]:
    symbol = change.action.symbol
    head = f"  {symbol} {change.kind} {change.name!r}"
    if change.reason:
        head += f"  # {change.reason}"
    if colour:
        head = f"{_COLOURS[change.action]}{head}{_RESET}"
    lines = [head]
    if change.action is Action.CREATE:
        for key, value in sorted((change.after or {}).items()):
            lines.append(f"      {key}: {_fmt(value)}")
    elif change.action is Action.DELETE:
        for key, value in sorted((change.before or {}).items()):
            lines.append(f"      {key}: {_fmt(value)}")
    else:
        for key, (old, new) in change.diff().items():
            lines.append(f"      {key}: {_fmt(old)} -> {_fmt(new)}")
    return lines


def render_plan(plan: Plan, *, colour: bool = False) -> str:
    """A terraform-like text rendering of one Service's plan."""
    verb = "delete" if plan.is_delete else "ensure"
    title = f"{plan.ref.key} ({plan.provider}, {verb})"
    if colour:
        title = f"{_BOLD}{title}{_RESET}"
    lines = [title]
    if plan.empty:
        lines.append("  no changes: the load balancer matches the Service")
    for change in plan.changes:
        lines.extend(render_change(change, colour=colour))
    lines.append(f"  Plan: {plan.summary()}.")
    return "\n".join(lines)


def change_to_json(change: Change) -> dict[str, Any]:
    return {
        "action": change.action.value,
        "kind": change.kind,
        "name": change.name,
        "reason": change.reason,
        "before": dict(change.before) if change.before is not None else None,
        "after": dict(change.after) if change.after is not None else None,
        "diff": {k: {"before": b, "after": a} for k, (b, a) in change.diff().items()},
    }


def plan_to_json(plan: Plan) -> dict[str, Any]:
    return {
        "schema": SCHEMA_ID,
        "provider": plan.provider,
        "service": {"namespace": plan.ref.namespace, "name": plan.ref.name, "uid": plan.ref.uid},
        "operation": "delete" if plan.is_delete else "ensure",
        "changes": [change_to_json(c) for c in plan.changes],
        "summary": plan.counts(),
        "ingress": [i.to_k8s() for i in plan.ingress],
    }
