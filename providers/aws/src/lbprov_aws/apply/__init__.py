"""Carry out a plan's changes, in order, one AWS call (or a few) per change.

A change whose resource another change created earlier in the same apply (a listener forwarding to
a new target group, a rule admitting a new security group) finds it in the apply's context, which
starts from the ARNs and IDs the plan read. Nothing is written that the plan did not list; if a call
fails, the exception propagates and a fresh plan picks up from what exists.

A new NLB's creates that nothing after them needs run beside the others (:mod:`.overlap`): the same
calls, in fewer round trips one after the other. Such an apply returns (or raises) only once every
write it started has ended; the first error is the one raised.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from lbprov.model import Action, Change, Ingress, Plan
from lbprov.side_writes import wait_all
from lbprov_aws.apply import overlap
from lbprov_aws.apply.adopt import AdoptApplier
from lbprov_aws.apply.classic import ClassicApplier
from lbprov_aws.apply.classic_security_groups import ClassicSecurityGroupApplier
from lbprov_aws.apply.nlb import NLBApplier
from lbprov_aws.apply.nlb_security_groups import NLBSecurityGroupApplier
from lbprov_aws.apply.security_groups import SecurityGroupApplier

log = logging.getLogger("lbprov.aws")

Handler = Callable[[Change, dict[str, Any]], None]


class StalePlan(RuntimeError):
    """Kept for compatibility (the controller recognises the name): no longer raised, since apply
    recomputes the shared node rules from a fresh read instead of refusing a plan made before
    another Service's apply."""


class Executor(
    SecurityGroupApplier,
    ClassicSecurityGroupApplier,
    NLBSecurityGroupApplier,
    NLBApplier,
    ClassicApplier,
    AdoptApplier,
):
    """Plan -> SDK writes in the plan's order (each kind's writes live in its mixin)."""

    def apply(self, plan: Plan) -> tuple[Ingress, ...]:
        """Apply the plan. The shared node rules are not written as planned but recomputed, under
        a per-group lock, from a fresh read of the group (see diff/node_rules.py)."""
        return self._apply(plan)

    def _apply(self, plan: Plan) -> tuple[Ingress, ...]:
        ctx: dict[str, Any] = {
            "lb_arn": plan.data.get("lb_arn"),
            "dns": plan.data.get("dns"),
            "tg_arns": dict(plan.data.get("tg_arns", {})),
            "elb_sg_id": plan.data.get("elb_sg_id"),
            "backend_sg_id": plan.data.get("backend_sg_id"),
            "frontend_sg_id": plan.data.get("frontend_sg_id"),
            "nlb_backend_sg_id": plan.data.get("nlb_backend_sg_id"),
            "backend_release": plan.data.get("backend_release", {}),
            "vpc_id": plan.data.get("vpc_id"),
            "uid": plan.ref.uid,
            "planned_at": plan.data.get("planned_at"),
        }
        handlers: dict[str, Handler] = {
            "tg": self._tg,
            "nlb": self._nlb,
            "listener": self._listener,
            "node-sg-pair": self._node_pair,
            "elb-sg": self._elb_sg,
            "elb-sg-rule": self._elb_sg_rule,
            "kube-proxy-rule": self._kube_proxy_rule,
            "classic": self._classic,
            "classic-listener": self._classic_listener,
            "nlb-sg": self._nlb_sg,
            "nlb-sg-rule": self._nlb_sg_rule,
            "backend-rule": self._backend_rule,
            "backend-release": self._backend_release,
            "add-tags": self._add_tags,
            "adopt-rule": self._adopt_rule,
            "predecessor-rule": self._predecessor_rule,
        }
        changes = list(plan.changes)
        if overlap.overlaps(changes):
            self._apply_overlapped(changes, handlers, ctx)
        else:
            self._apply_in_order(changes, handlers, ctx, plan.data.get("node_rules") or {})
        if plan.is_delete:
            return ()
        return (Ingress(hostname=ctx["dns"]),) if ctx.get("dns") else plan.ingress

    def _apply_in_order(
        self, changes: list[Change], handlers: dict[str, Handler], ctx: dict[str, Any], info: dict[str, Any]
    ) -> None:
        # The plan's node rule changes mark WHERE (in the order of the plan) each group is brought
        # to this Service's wanted rules; WHAT is written is recomputed from a fresh read. Where the
        # plan revokes later, the first block authorises, and revokes only what leaves every port
        # admitted; the ports the Service gives up are revoked at the later block (after listeners).
        done: set[str] = set()
        revoking = {
            c.cloud_id for c in changes if c.data["type"] == "node-sg-range" and c.action is Action.DELETE
        }
        i = 0
        while i < len(changes):
            change = changes[i]
            if change.data["type"] == "node-sg-range":
                j = i
                while (
                    j < len(changes)
                    and changes[j].data["type"] == "node-sg-range"
                    and changes[j].action is change.action
                    and changes[j].cloud_id == change.cloud_id
                ):
                    j += 1
                group = change.cloud_id
                assert group is not None
                if group in done:
                    pass  # the first block did everything (nothing had to wait for the listeners)
                elif change.action is Action.DELETE or group not in revoking:
                    self._node_rules(group, info, revoke=True)
                    done.add(group)
                elif not self._node_rules(group, info, revoke=False):
                    done.add(group)
                i = j
                continue
            handlers[change.data["type"]](change, ctx)
            i += 1

    def _apply_overlapped(
        self, changes: Sequence[Change], handlers: dict[str, Handler], ctx: dict[str, Any]
    ) -> None:
        """A new NLB's changes, the independent creates beside the others (:mod:`.overlap`).

        A started change gets its own copy of ``ctx`` as it is then (the groups made so far); the
        target groups it made join ``ctx`` when it is waited for, before the listeners need them.
        """
        started: dict[int, tuple[Future[None], dict[str, Any]]] = {}
        try:
            for step in overlap.steps(changes):
                change = changes[step.index]
                handler = handlers[change.data["type"]]
                if step.action == "run":
                    handler(change, ctx)
                elif step.action == "start":
                    own = {**ctx, "tg_arns": dict(ctx["tg_arns"])}
                    started[step.index] = (self.side_pool().submit(handler, change, own), own)
                else:
                    future, own = started.pop(step.index)
                    future.result()
                    ctx["tg_arns"].update(own["tg_arns"])
        except BaseException:
            # nothing of this apply goes on after it ends
            wait_all((f for f, _ in started.values()), raise_first=False, log=log)
            raise
        wait_all((f for f, _ in started.values()), raise_first=True, log=log)
