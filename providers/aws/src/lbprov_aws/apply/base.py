"""What every part of apply shares: the clients, tag helpers, the ownership re-check."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from lbprov import naming
from lbprov.model import Action, Change, OwnershipConflict
from lbprov_aws.apply.flights import Flights
from lbprov_aws.client import AWSClients
from lbprov_aws.diff.node_rules import (
    RuleConfig,
    TargetGroupFacts,
)

#: Threads for the creates a new NLB's apply runs beside its others (apply/overlap.py): a target
#: group per port and a rule per source range at a time, so 32 serve 10 workers' one-port Services
#: without a wait; more queue for them.
SIDE_THREADS = 32


def _tags(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def _tag_diff(before: Mapping[str, str], after: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    add = {k: v for k, v in after.items() if before.get(k) != v}
    remove = [k for k in before if k not in after]
    return add, remove


def _check_same_owner(what: str, c: Change, tags: list[dict[str, str]]) -> None:
    """A load balancer appeared under our name between plan and apply: only ours may be reused."""
    found = {t["Key"]: t.get("Value", "") for t in tags}
    wanted = dict((c.after or {}).get("tags", {}))
    if found.get(naming.SERVICE_UID_TAG) != wanted.get(naming.SERVICE_UID_TAG) or not any(
        k.startswith(naming.CLUSTER_TAG_PREFIX)
        and found.get(k) == naming.OWNED
        and wanted.get(k) == naming.OWNED
        for k in found
    ):
        raise OwnershipConflict(
            f"{what} {c.name!r} appeared after the plan was made and is not owned by this Service; "
            "lbprov never adopts a foreign resource"
        )


class ApplierBase:
    """State shared by the apply mixins (security_groups.py, nlb.py, classic.py)."""

    def __init__(
        self,
        clients: AWSClients,
        cluster: str,
        rules: RuleConfig | None = None,
        *,
        target_group_facts: Callable[[], list[TargetGroupFacts]] | None = None,
        load_balancers_using: Callable[[set[str]], set[str]] | None = None,
        name_free: Callable[[str], bool] | None = None,
    ) -> None:
        self.clients = clients
        self.cluster = cluster
        self.rules = rules or RuleConfig()
        self.target_group_facts = target_group_facts
        #: Names of the load balancers carrying any of these security groups, read afresh.
        self.load_balancers_using = load_balancers_using
        #: Whether a fresh listing shows no load balancer of that name (observe.Reader.name_free).
        self.name_free = name_free or (lambda name: False)
        #: What this process made of the shared backend group, for concurrent applies to join.
        self.flights = Flights()
        self._side_pool: ThreadPoolExecutor | None = None
        self._side_lock = threading.Lock()

    def side_pool(self) -> ThreadPoolExecutor:
        """The threads of the writes an apply runs beside its others (made on first use)."""
        with self._side_lock:
            if self._side_pool is None:
                self._side_pool = ThreadPoolExecutor(SIDE_THREADS, thread_name_prefix="lbprov-aws-apply")
            return self._side_pool

    def _elbv2_tags(self, arn: str | None, before: Mapping[str, str], after: Mapping[str, str]) -> None:
        add, remove = _tag_diff(before, after)
        if add:
            self.clients.call("elbv2:AddTags", ResourceArns=[arn], Tags=_tags(add))
        if remove:
            self.clients.call("elbv2:RemoveTags", ResourceArns=[arn], TagKeys=remove)

    def _ingress(self, action: Action, group_id: str, *permissions: Mapping[str, Any]) -> None:
        op = "AuthorizeSecurityGroupIngress" if action is Action.CREATE else "RevokeSecurityGroupIngress"
        resp = self.clients.call(f"ec2:{op}", GroupId=group_id, IpPermissions=[dict(p) for p in permissions])
        if resp.get("UnknownIpPermissions"):
            # Someone (a concurrent plan) already changed this rule: fail so the Service is re-planned.
            raise RuntimeError(f"{group_id}: rule to revoke no longer exists: {resp['UnknownIpPermissions']}")
