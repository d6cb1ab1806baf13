"""The security-group annotations, with aws-load-balancer-controller's semantics for NLBs.

* ``security-groups``: the load balancer's frontend groups (IDs or names, comma-separated) replace
  the one lbprov would manage; lbprov then writes no frontend rule (the groups are the user's).
* ``manage-backend-security-group-rules`` (only with ``security-groups``; default false, as
  upstream): whether the cluster's backend group is attached too and the node groups admit it;
  false leaves admitting the load balancer into the nodes to the user.
* ``extra-security-groups``: groups added to the ones above.

Groups are named by ID (``sg-…``) or by group name / ``Name`` tag in the cluster's VPC; the plan
resolves them (diff/nlb_security_groups.py) and refuses a name it cannot find. NLB only: a classic
ELB refuses them with the reason (not implemented for classic yet).
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

from lbprov.annotations import annotation_field
from lbprov.intent import parse_bool
from lbprov.model import InvalidService

PREFIX = "service.beta.kubernetes.io/aws-load-balancer-"
SECURITY_GROUPS = PREFIX + "security-groups"
EXTRA_SECURITY_GROUPS = PREFIX + "extra-security-groups"
MANAGE_BACKEND_RULES = PREFIX + "manage-backend-security-group-rules"


class SecurityGroupOptions(BaseModel):
    """What the three annotations ask for (empty: lbprov's frontend and backend groups)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    security_groups: tuple[str, ...] = ()
    extra_security_groups: tuple[str, ...] = ()
    manage_backend_rules: bool = True

    @property
    def user_frontend(self) -> bool:
        return bool(self.security_groups)

    @property
    def backend(self) -> bool:
        """Whether the cluster's backend group is attached (and admitted by the node groups)."""
        return not self.security_groups or self.manage_backend_rules

    @property
    def needs_groups(self) -> bool:
        """Whether the Service asks for groups whatever the provider's default model is."""
        return bool(self.security_groups or self.extra_security_groups)


def _list(annotations: Mapping[str, str], key: str) -> tuple[str, ...]:
    raw = annotations.get(key, "")
    items = tuple(dict.fromkeys(s.strip() for s in raw.split(",") if s.strip()))
    if key in annotations and not items:
        raise InvalidService(
            annotation_field(key), "empty; accepted: security group IDs or names, comma-separated"
        )
    return items


def parse(annotations: Mapping[str, str], kind: str) -> SecurityGroupOptions:
    """The options of the three annotations; refused on a classic ELB (with the reason)."""
    present = [k for k in (SECURITY_GROUPS, EXTRA_SECURITY_GROUPS, MANAGE_BACKEND_RULES) if k in annotations]
    if kind == "classic" and present:
        raise InvalidService(
            annotation_field(present[0]),
            "not supported by lbprov on a classic ELB yet (it gets its own k8s-elb-<name> group and "
            "the cluster's backend group); remove it, or use the default NLB",
        )
    groups = _list(annotations, SECURITY_GROUPS)
    extra = _list(annotations, EXTRA_SECURITY_GROUPS)
    manage = False
    if MANAGE_BACKEND_RULES in annotations:
        parsed = parse_bool(annotations[MANAGE_BACKEND_RULES].strip())
        if parsed is None:
            raise InvalidService(
                annotation_field(MANAGE_BACKEND_RULES),
                f"{annotations[MANAGE_BACKEND_RULES]!r}; accepted values: true, false",
            )
        if not groups:
            raise InvalidService(
                annotation_field(MANAGE_BACKEND_RULES),
                f"only meaningful with {SECURITY_GROUPS} (without it lbprov manages the backend rules); remove it",
            )
        manage = parsed
    return SecurityGroupOptions(
        security_groups=groups, extra_security_groups=extra, manage_backend_rules=manage if groups else True
    )
