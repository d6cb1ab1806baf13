"""NLB and target-group attributes from ``aws-load-balancer-attributes`` and
``aws-load-balancer-target-group-attributes``: parsed, validated, merged with lbprov's own.

Syntax as aws-load-balancer-controller (docs/guide/service/annotations.md, "Resource attributes"):
a stringMap ``k1=v1,k2=v2`` of the ELBv2 attribute keys. Semantics as there too: only the keys the
user set are reconciled (drift on them is repaired), and a key removed from the annotation is left
as it is in AWS, never reverted to a default lbprov did not set ("to unset ... the values need to be
explicitly set to the original values"). lbprov's own keys (stickiness from
``spec.sessionAffinity``, proxy protocol from ``proxy-protocol``, cross-zone from
``cross-zone-load-balancing-enabled``) are always reconciled; an attribute that contradicts the
annotation or field that owns it is refused, naming both.

The keys and values accepted are those the ELBv2 API reference lists for a network load balancer
(``LoadBalancerAttribute``) and its target groups (``TargetGroupAttribute``). Validated here so that a
typo is an event naming the annotation, not a failed ModifyAttributes call on every resync.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from lbprov.annotations import annotation_field, get_pairs
from lbprov.model import InvalidService

PREFIX = "service.beta.kubernetes.io/aws-load-balancer-"
LB_ATTRIBUTES_KEY = PREFIX + "attributes"
TG_ATTRIBUTES_KEY = PREFIX + "target-group-attributes"

#: A value check: the normalised value, or None when the value is not accepted.
Check = Callable[[str], str | None]


def _bool(value: str) -> str | None:
    low = value.lower()
    return low if low in ("true", "false") else None


def _int(low: int, high: int) -> Check:
    def check(value: str) -> str | None:
        if not re.fullmatch(r"[0-9]+", value):
            return None
        return str(int(value)) if low <= int(value) <= high else None

    check.__doc__ = f"an integer {low}-{high}"
    return check


def _one_of(*values: str) -> Check:
    def check(value: str) -> str | None:
        return value if value in values else None

    check.__doc__ = " | ".join(values)
    return check


def _int_or_off(low: int, high: int) -> Check:
    inner = _int(low, high)

    def check(value: str) -> str | None:
        return "off" if value == "off" else inner(value)

    check.__doc__ = f"off or an integer {low}-{high}"
    return check


def _bucket(value: str) -> str | None:
    # S3 bucket naming rules: 3-63 lower-case letters, digits, dots and hyphens, starting and
    # ending with a letter or digit.
    return value if re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", value) else None


def _prefix(value: str) -> str | None:
    # Access-log prefixes: no leading or trailing slash and not "AWSLogs" (ELB user guide,
    # "Access logs for your Network Load Balancer").
    if value.startswith("/") or value.endswith("/") or "AWSLogs" in value or len(value) > 1024:
        return None
    return value


_bool.__doc__ = "true | false"
_bucket.__doc__ = "an S3 bucket name"
_prefix.__doc__ = "an S3 key prefix without leading or trailing '/' and without 'AWSLogs'"

#: ELBv2 API reference, LoadBalancerAttribute: the keys a network load balancer takes.
LB_KEYS: Mapping[str, Check] = {
    "access_logs.s3.enabled": _bool,
    "access_logs.s3.bucket": _bucket,
    "access_logs.s3.prefix": _prefix,
    "deletion_protection.enabled": _bool,
    "ipv6.deny_all_igw_traffic": _bool,
    "load_balancing.cross_zone.enabled": _bool,
    "dns_record.client_routing_policy": _one_of(
        "availability_zone_affinity", "partial_availability_zone_affinity", "any_availability_zone"
    ),
    "zonal_shift.config.enabled": _bool,
}

#: ELBv2 API reference, TargetGroupAttribute: the keys of a target group of a network load
#: balancer with instance targets.
TG_KEYS: Mapping[str, Check] = {
    "deregistration_delay.timeout_seconds": _int(0, 3600),
    "deregistration_delay.connection_termination.enabled": _bool,
    "preserve_client_ip.enabled": _bool,
    "proxy_protocol_v2.enabled": _bool,
    "stickiness.enabled": _bool,
    "stickiness.type": _one_of("source_ip"),
    "load_balancing.cross_zone.enabled": _one_of("true", "false", "use_load_balancer_configuration"),
    "target_group_health.dns_failover.minimum_healthy_targets.count": _int_or_off(1, 10000),
    "target_group_health.dns_failover.minimum_healthy_targets.percentage": _int_or_off(1, 100),
    "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count": _int(1, 10000),
    "target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage": _int_or_off(1, 100),
    "target_health_state.unhealthy.connection_termination.enabled": _bool,
    "target_health_state.unhealthy.draining_interval_seconds": _int(0, 360000),
}


def _parse(annotations: Mapping[str, str], key: str, table: Mapping[str, Check]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, raw in get_pairs(annotations, key):
        check = table.get(name)
        if check is None:
            raise InvalidService(
                annotation_field(key),
                f"{name!r} is not an attribute of a network load balancer"
                f"{' target group' if table is TG_KEYS else ''}; accepted keys: {', '.join(sorted(table))}",
            )
        value = check(raw)
        if value is None:
            raise InvalidService(annotation_field(key), f"{name}={raw!r}; accepted values: {check.__doc__}")
        out[name] = value
    return out


def load_balancer_attributes(annotations: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The user's NLB attributes (``aws-load-balancer-attributes``), validated and normalised."""
    attrs = _parse(annotations, LB_ATTRIBUTES_KEY, LB_KEYS)
    if attrs.get("access_logs.s3.enabled") == "true" and not attrs.get("access_logs.s3.bucket"):
        # LoadBalancerAttribute: access_logs.s3.bucket "is required if access logs are enabled".
        raise InvalidService(
            annotation_field(LB_ATTRIBUTES_KEY),
            "access_logs.s3.enabled=true needs access_logs.s3.bucket=<bucket name>",
        )
    return tuple(sorted(attrs.items()))


def target_group_attributes(annotations: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The user's target-group attributes (``aws-load-balancer-target-group-attributes``)."""
    attrs = _parse(annotations, TG_ATTRIBUTES_KEY, TG_KEYS)
    if attrs.get("stickiness.enabled") == "true" and attrs.get("stickiness.type", "source_ip") != "source_ip":
        raise InvalidService(
            annotation_field(TG_ATTRIBUTES_KEY), "stickiness.type must be source_ip on an NLB"
        )
    return tuple(sorted(attrs.items()))


def agree(
    attrs: Mapping[str, str], attr: str, owner: str, owned: bool | None, annotation: str = TG_ATTRIBUTES_KEY
) -> None:
    """Refuse an attribute that contradicts the annotation or field ``owner`` that sets it
    (``owned``: what ``owner`` asks for, None when it is not set)."""
    if owned is None or attr not in attrs:
        return
    if (attrs[attr] == "true") != owned:
        raise InvalidService(
            annotation_field(annotation),
            f"{attr}={attrs[attr]} contradicts {owner}; set it in one place only",
        )


class DeletionProtected(RuntimeError):
    """The plan would delete an NLB whose ``deletion_protection.enabled`` is true. AWS refuses that
    (DeleteLoadBalancer: OperationNotPermitted), and lbprov does not turn the protection off on its
    own: the user asked for it. Raised at plan time, before any write (a delete plan revokes node
    rules before it deletes the load balancer, which would leave a protected NLB without traffic)."""


def check_deletable(attrs: Mapping[str, str] | None, name: str, why: str) -> None:
    if (attrs or {}).get("deletion_protection.enabled") == "true":
        raise DeletionProtected(
            f"network load balancer {name!r} has deletion_protection.enabled=true and {why}: lbprov "
            f"does not delete it; set deletion_protection.enabled=false in {LB_ATTRIBUTES_KEY} (or in "
            "AWS, for a Service being deleted) and the change goes ahead"
        )
