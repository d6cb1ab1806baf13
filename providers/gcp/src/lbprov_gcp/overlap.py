"""Which of a plan's writes may run while the writes after them go on (pure).

A plan lists its changes in an order where nothing points at something missing (see
:mod:`lbprov_gcp.diff.planner`), and apply used to send them one after the other: a new Service
paid six round trips in a row (reserve the address, read its IP, the traffic firewall, the backend
service, the forwarding rule, the release), while only four of them depend on each other. The
backend service needs the health check and the instance groups, never the IP; the traffic firewall
needs the IP, and nothing needs the firewall. So, with the same writes and the same reads:

* a new backend service starts when the address reservation does (it is *hoisted* over the
  reservations and traffic firewalls between them), and the forwarding rules wait for it;
* a new traffic firewall starts once the IP is known and runs beside the forwarding rules and the
  release of the reservation; apply waits for it before it returns.

The chain a Service waits for is then reserve -> IP -> rule -> release (issue 14: GCP create time
over its ideal). Only creates overlap: an update, a replacement or a delete keeps its place in the
order, and so does everything when the plan holds anything else between those changes (an early
forwarding-rule delete, a predecessor's takeover, a leftover's delete). A crash between two
overlapping writes leaves a state the next plan completes, as any interrupted apply does: each
resource is planned from what exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from lbprov.model import Action, Change


@dataclass(frozen=True)
class Step:
    """``run`` the change here; ``start`` it beside the next steps; ``wait`` for a started one.

    A change started and never waited for here (a traffic firewall) is waited for when the apply
    ends, after the release of the reservation that follows the plan's changes.
    """

    action: Literal["run", "start", "wait"]
    index: int  # into the plan's changes


def _is_reservation(c: Change) -> bool:
    return c.kind == "address" and c.action is Action.CREATE


def _is_new_traffic_firewall(c: Change) -> bool:
    # the traffic firewalls are the frontends' (marked with their IP family); the health-check
    # firewall is shared and comes before the reservation
    return c.kind == "firewall-rule" and c.action is Action.CREATE and "family" in c.data


def _is_new_backend_service(c: Change) -> bool:
    return c.kind == "backend-service" and c.action is Action.CREATE


def _is_new_rule(c: Change) -> bool:
    return c.kind == "forwarding-rule" and c.action is Action.CREATE


def steps(changes: Sequence[Change]) -> tuple[Step, ...]:
    """The plan's changes as steps: every change is run or started exactly once, and a change that
    another one needs is done before that one starts."""
    hoisted = _hoisted_backend_services(changes)
    floating = _floating_firewalls(changes)
    out: list[Step] = []
    for i in range(len(changes)):
        if hoisted and i == min(hoisted.values()):
            out += [Step("start", b) for b in sorted(hoisted)]
        if i in hoisted:
            out.append(Step("wait", i))
        elif i in floating:
            out.append(Step("start", i))
        else:
            out.append(Step("run", i))
    return tuple(out)


def _hoisted_backend_services(changes: Sequence[Change]) -> dict[int, int]:
    """New backend services that may start at the first reservation: {index: where it starts}.

    Between the first reservation and each of them there may be only reservations, new traffic
    firewalls and other new backend services, none of which a backend service needs.
    """
    first = next((i for i, c in enumerate(changes) if _is_reservation(c)), None)
    if first is None:
        return {}
    out: dict[int, int] = {}
    for i in range(first + 1, len(changes)):
        c = changes[i]
        if _is_new_backend_service(c):
            out[i] = first
        elif not (_is_reservation(c) or _is_new_traffic_firewall(c)):
            break
    return out


def _floating_firewalls(changes: Sequence[Change]) -> set[int]:
    """New traffic firewalls after which the plan holds only other new traffic firewalls, new
    backend services and new forwarding rules (none of which needs a firewall), and which come
    after every reservation (their destination is the IP)."""
    last_reservation = max((i for i, c in enumerate(changes) if _is_reservation(c)), default=-1)
    out: set[int] = set()
    for i in range(len(changes) - 1, -1, -1):
        c = changes[i]
        if _is_new_traffic_firewall(c):
            if i > last_reservation:
                out.add(i)
        elif not (_is_new_backend_service(c) or _is_new_rule(c)):
            break
    return out
