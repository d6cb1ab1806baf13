"""Every AWS operation lbprov_aws can call: read or write, and the IAM permission(s) it needs.

This is the single list that CloudCalls' read-only guard, the metrics and the least-privilege test
(terraform/aws) are checked against. Operation names are ``<client>:<Operation>`` with the client
prefix ``elbv2`` (NLB), ``elb`` (classic ELB) or ``ec2``.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import (  # type: ignore[import-untyped]
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)


@dataclass(frozen=True)
class Operation:
    name: str
    write: bool
    iam: tuple[str, ...]


def _elb(op: str) -> str:
    return f"elasticloadbalancing:{op}"


_ELBV2_READS = (
    "DescribeLoadBalancers",
    "DescribeLoadBalancerAttributes",
    "DescribeListeners",
    "DescribeTags",
    "DescribeTargetGroups",
    "DescribeTargetGroupAttributes",
    "DescribeTargetHealth",
)
_ELBV2_WRITES = {
    # Creating with Tags= needs AddTags too.
    "CreateLoadBalancer": (_elb("CreateLoadBalancer"), _elb("AddTags")),
    "DeleteLoadBalancer": (_elb("DeleteLoadBalancer"),),
    "ModifyLoadBalancerAttributes": (_elb("ModifyLoadBalancerAttributes"),),
    "SetSubnets": (_elb("SetSubnets"),),
    "SetSecurityGroups": (_elb("SetSecurityGroups"),),
    "SetIpAddressType": (_elb("SetIpAddressType"),),
    "CreateTargetGroup": (_elb("CreateTargetGroup"), _elb("AddTags")),
    "ModifyTargetGroup": (_elb("ModifyTargetGroup"),),
    "ModifyTargetGroupAttributes": (_elb("ModifyTargetGroupAttributes"),),
    "DeleteTargetGroup": (_elb("DeleteTargetGroup"),),
    "RegisterTargets": (_elb("RegisterTargets"),),
    "DeregisterTargets": (_elb("DeregisterTargets"),),
    "CreateListener": (_elb("CreateListener"),),
    "ModifyListener": (_elb("ModifyListener"),),
    "DeleteListener": (_elb("DeleteListener"),),
    "AddTags": (_elb("AddTags"),),
    "RemoveTags": (_elb("RemoveTags"),),
}
_ELB_READS = ("DescribeLoadBalancers", "DescribeLoadBalancerAttributes", "DescribeTags")
_ELB_WRITES = {
    "CreateLoadBalancer": (_elb("CreateLoadBalancer"), _elb("AddTags")),
    "DeleteLoadBalancer": (_elb("DeleteLoadBalancer"),),
    "CreateLoadBalancerListeners": (_elb("CreateLoadBalancerListeners"),),
    "DeleteLoadBalancerListeners": (_elb("DeleteLoadBalancerListeners"),),
    "ConfigureHealthCheck": (_elb("ConfigureHealthCheck"),),
    "RegisterInstancesWithLoadBalancer": (_elb("RegisterInstancesWithLoadBalancer"),),
    "DeregisterInstancesFromLoadBalancer": (_elb("DeregisterInstancesFromLoadBalancer"),),
    "ModifyLoadBalancerAttributes": (_elb("ModifyLoadBalancerAttributes"),),
    "CreateLoadBalancerPolicy": (_elb("CreateLoadBalancerPolicy"),),
    "SetLoadBalancerPoliciesOfListener": (_elb("SetLoadBalancerPoliciesOfListener"),),
    "AttachLoadBalancerToSubnets": (_elb("AttachLoadBalancerToSubnets"),),
    "DetachLoadBalancerFromSubnets": (_elb("DetachLoadBalancerFromSubnets"),),
    "ApplySecurityGroupsToLoadBalancer": (_elb("ApplySecurityGroupsToLoadBalancer"),),
    "AddTags": (_elb("AddTags"),),
    "RemoveTags": (_elb("RemoveTags"),),
}
_EC2_READS = (
    "DescribeAvailabilityZones",
    "DescribeInstances",
    "DescribeRouteTables",
    "DescribeSecurityGroups",
    "DescribeSubnets",
    "DescribeVpcs",
)
_EC2_WRITES = {
    # Creating with TagSpecifications needs ec2:CreateTags too.
    "CreateSecurityGroup": ("ec2:CreateSecurityGroup", "ec2:CreateTags"),
    "DeleteSecurityGroup": ("ec2:DeleteSecurityGroup",),
    "AuthorizeSecurityGroupIngress": ("ec2:AuthorizeSecurityGroupIngress",),
    "RevokeSecurityGroupIngress": ("ec2:RevokeSecurityGroupIngress",),
    # Adoption (diff/adopt.py): tagging a classic ELB group cloud-provider-aws made, and taking over
    # its node rules by changing their descriptions in place.
    "CreateTags": ("ec2:CreateTags",),
    "UpdateSecurityGroupRuleDescriptionsIngress": ("ec2:UpdateSecurityGroupRuleDescriptionsIngress",),
}


def _build() -> dict[str, Operation]:
    ops: dict[str, Operation] = {}
    for prefix, reads, writes, iam_prefix in (
        ("elbv2", _ELBV2_READS, _ELBV2_WRITES, "elasticloadbalancing"),
        ("elb", _ELB_READS, _ELB_WRITES, "elasticloadbalancing"),
        ("ec2", _EC2_READS, _EC2_WRITES, "ec2"),
    ):
        for op in reads:
            ops[f"{prefix}:{op}"] = Operation(f"{prefix}:{op}", False, (f"{iam_prefix}:{op}",))
        for op, iam in writes.items():
            ops[f"{prefix}:{op}"] = Operation(f"{prefix}:{op}", True, iam)
    return ops


#: Every operation the provider can send, by ``<client>:<Operation>``.
OPERATIONS: dict[str, Operation] = _build()

_READ_PREFIXES = ("Describe", "Get", "List")


def is_write(operation: str) -> bool:
    """Whether an operation mutates. Unknown operations count as writes unless they read by name,
    so that the read-only guard fails closed."""
    known = OPERATIONS.get(operation)
    if known is not None:
        return known.write
    return not operation.partition(":")[2].startswith(_READ_PREFIXES)


def iam_permissions() -> list[str]:
    """Every IAM action the provider needs (for terraform/aws and the least-privilege test)."""
    return sorted({perm for op in OPERATIONS.values() for perm in op.iam})


THROTTLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "SlowDown",
        "EC2ThrottledException",
    }
)
_TRANSIENT_CODES = frozenset({"InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable"})
_CONNECTION_ERRORS = (EndpointConnectionError, ConnectionClosedError, ConnectTimeoutError, ReadTimeoutError)


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def is_throttle(exc: BaseException) -> bool:
    return error_code(exc) in THROTTLE_CODES


def is_retryable(exc: BaseException) -> bool:
    """Throttling, 5xx and connection errors are transient; so is a security group that is still
    referenced by a just-deleted load balancer's network interfaces (upstream polls for that)."""
    if isinstance(exc, _CONNECTION_ERRORS):
        return True
    if not isinstance(exc, ClientError):
        return False
    code = error_code(exc)
    if code in THROTTLE_CODES or code in _TRANSIENT_CODES:
        return True
    if code == "DependencyViolation" and exc.operation_name == "DeleteSecurityGroup":
        return True
    # A target group stays "in use" for a moment after its load balancer was deleted.
    if code == "ResourceInUse" and exc.operation_name == "DeleteTargetGroup":
        return True
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return isinstance(status, int) and status >= 500


def retry_after(exc: BaseException) -> float | None:
    """AWS sends no Retry-After on throttling; backoff alone governs the wait."""
    if isinstance(exc, ClientError):
        headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {}) or {}
        value = headers.get("retry-after")
        if value:
            try:
                return float(value)
            except ValueError:
                return None
    return None
