"""The strict layer in front of moto: the rules AWS enforces and moto does not.

moto accepts much that AWS refuses (a load balancer name with a leading hyphen, a health-check
timeout above the interval, a comma in a tag value, ...), and it makes a second load balancer for a
retried ``CreateLoadBalancer``. A green test on plain moto can therefore hide a request AWS would
reject. The request recorder (server.py) asks :class:`StrictRules` about every request before moto
sees it; a violation is answered with AWS's own error code and message shape (HTTP 400), and an
idempotent create that AWS completes "at most once" is answered with the existing resource.

Two sources of rules:

* botocore's service models: every ``max``/``min`` length and range, ``pattern`` and ``enum`` of the
  operation's input (botocore's client-side validation checks only required members, types and
  ``min``). The query parameters are read back into the operation's shape first.
* the API references' documented rules that the models cannot express, each in a function below
  with a comment citing its reference.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any
from xml.sax.saxutils import escape

import botocore.session  # type: ignore[import-untyped]

from lbprov_aws import options
from lbprov_aws.sandbox import by_name

ACCOUNT = "123456789012"
REGION = "us-east-1"

Params = Mapping[str, str]
Nested = dict[str, Any]


@dataclass(frozen=True)
class Refusal:
    """An AWS error: code, message, HTTP status."""

    code: str
    message: str
    status: int = 400


@dataclass(frozen=True)
class Replay:
    """Answer an idempotent create with the existing resource: run ``action`` with ``params``
    through moto and rename its XML root from ``action`` to ``as_action``."""

    action: str
    params: dict[str, str]
    as_action: str


# -- reading query parameters back into the operation's shape ----------------------------------


@cache
def _model(service: str) -> Any:
    name = {"elbv2": "elbv2", "elb": "elb", "ec2": "ec2"}[service]
    return botocore.session.get_session().get_service_model(name)


def _key(member_name: str, shape: Any, ec2: bool) -> str:
    ser = shape.serialization
    if ec2:
        if ser.get("queryName"):
            return str(ser["queryName"])
        name = str(ser.get("name", member_name))
        return name[0].upper() + name[1:]
    return str(ser.get("name", member_name))


def _paths(params: Params) -> frozenset[str]:
    """Every key of ``params`` and each of its dotted prefixes (``A.1.B`` gives ``A``, ``A.1``,
    ``A.1.B``): a path is in the request exactly when it is one of these. Made once per request, so
    that each member's check is a set lookup, not a pass over every key (8% of the bench's emulator
    CPU went to those passes)."""
    out: set[str] = set()
    for key in params:
        end = key.find(".")
        while end != -1:
            out.add(key[:end])
            end = key.find(".", end + 1)
        out.add(key)
    return frozenset(out)


def unflatten(shape: Any, params: Params, prefix: str, ec2: bool, paths: frozenset[str] | None = None) -> Any:
    """The value of ``shape`` at ``prefix`` in query parameters (``a.member.1.B`` / EC2 ``A.1.B``);
    ``paths``: :func:`_paths` of ``params`` (made here when not given)."""
    if paths is None:
        paths = _paths(params)
    kind = shape.type_name
    if kind == "structure":
        out: Nested = {}
        for name, member in shape.members.items():
            sub = _key(name, member, ec2)
            path = f"{prefix}.{sub}" if prefix else sub
            if path in paths:
                out[name] = unflatten(member, params, path, ec2, paths)
        return out
    if kind == "list":
        base = prefix if (ec2 or shape.serialization.get("flattened")) else f"{prefix}.member"
        items = []
        i = 1
        while f"{base}.{i}" in paths:
            items.append(unflatten(shape.member, params, f"{base}.{i}", ec2, paths))
            i += 1
        return items
    if kind == "map":
        entries: Nested = {}
        i = 1
        while f"{prefix}.entry.{i}" in paths:
            entries[params.get(f"{prefix}.entry.{i}.key", "")] = params.get(f"{prefix}.entry.{i}.value")
            i += 1
        return entries
    raw = params.get(prefix, "")
    if kind in ("integer", "long"):
        try:
            return int(raw)
        except ValueError:
            return raw
    if kind == "boolean":
        return raw.lower() == "true"
    return raw


# -- botocore's model constraints ---------------------------------------------------------------


@cache
def _java_pattern(pattern: str) -> re.Pattern[str] | None:
    """botocore's patterns are Java regexes: \\p{L}/\\p{Z}/\\p{N} become their nearest Python classes.
    Compiled once per pattern: each request used to translate and look up every one of its strings' patterns."""
    py = pattern.replace(r"\p{L}", "a-zA-Z\u00c0-\uffff").replace(r"\p{Z}", r"\s").replace(r"\p{N}", "0-9")
    try:
        return re.compile(py)
    except re.error:
        return None


def model_violations(shape: Any, value: Any, path: str) -> list[str]:
    """Every max/min/pattern/enum violation in ``value`` (AWS's wording)."""
    out: list[str] = []
    meta = shape.metadata
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value:
                out += model_violations(member, value[name], f"{path}.{name}" if path else name)
    elif kind == "list" and isinstance(value, list):
        if "max" in meta and len(value) > meta["max"]:
            out.append(
                f"Value at '{path}' failed to satisfy constraint: Member must have length less than or equal to {meta['max']}"
            )
        for i, item in enumerate(value, 1):
            out += model_violations(shape.member, item, f"{path}.{i}")
    elif kind == "string" and isinstance(value, str):
        if "max" in meta and len(value) > meta["max"]:
            out.append(
                f"Value '{value}' at '{path}' failed to satisfy constraint: Member must have length less than or equal to {meta['max']}"
            )
        if "min" in meta and len(value) < meta["min"]:
            out.append(
                f"Value '{value}' at '{path}' failed to satisfy constraint: Member must have length greater than or equal to {meta['min']}"
            )
        enum = getattr(shape, "enum", None)
        if enum and value not in enum:
            out.append(
                f"Value '{value}' at '{path}' failed to satisfy constraint: Member must satisfy enum value set: [{', '.join(enum)}]"
            )
        pattern = meta.get("pattern")
        if pattern and (compiled := _java_pattern(pattern)) and not compiled.search(value):
            out.append(
                f"Value '{value}' at '{path}' failed to satisfy constraint: Member must satisfy regular expression pattern: {pattern}"
            )
    elif kind in ("integer", "long") and isinstance(value, int):
        if "max" in meta and value > meta["max"]:
            out.append(
                f"Value '{value}' at '{path}' failed to satisfy constraint: Member must have value less than or equal to {meta['max']}"
            )
        if "min" in meta and value < meta["min"]:
            out.append(
                f"Value '{value}' at '{path}' failed to satisfy constraint: Member must have value greater than or equal to {meta['min']}"
            )
    return out


# -- the documented rules -------------------------------------------------------------------------

#: ELBv2 tag values/keys and EC2 tags: letters, digits, spaces and _.:/=+-@ (ELBv2 API reference,
#: Tag; EC2 User Guide, "Tag restrictions").
_TAG_CHARS = re.compile(r"^[\w .:/=+\-@]*$")
#: EC2 security group names and descriptions in a VPC: a-z, A-Z, 0-9, spaces, and ._-:/()#,@[]+=&;{}!$*
#: (EC2 API reference, CreateSecurityGroup).
_SG_TEXT = re.compile(r"^[a-zA-Z0-9 ._\-:/()#,@\[\]+=&;{}!$*]*$")
#: ELBv2 CreateLoadBalancer Name / CreateTargetGroup Name: "up to 32 alphanumeric characters or
#: hyphens, and must not begin or end with a hyphen" (ELBv2 API reference); load balancer names
#: must not begin with "internal-".
_ELB_NAME = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,30}[a-zA-Z0-9])?$")

#: Attribute keys valid for a network load balancer (ELBv2 API reference, LoadBalancerAttribute).
NLB_ATTRIBUTES = frozenset(
    {
        "deletion_protection.enabled",
        "access_logs.s3.enabled",
        "access_logs.s3.bucket",
        "access_logs.s3.prefix",
        "ipv6.deny_all_igw_traffic",
        "load_balancing.cross_zone.enabled",
        "dns_record.client_routing_policy",
        "zonal_shift.config.enabled",
        "secondary_ips.auto_assigned.per_subnet",
    }
)
#: Attribute keys valid for a network load balancer's target group (ELBv2 API reference,
#: TargetGroupAttribute: the general keys and those "supported only by Network Load Balancers").
NLB_TG_ATTRIBUTES = frozenset(
    {
        "deregistration_delay.timeout_seconds",
        "stickiness.enabled",
        "stickiness.type",
        "load_balancing.cross_zone.enabled",
        "target_group_health.dns_failover.minimum_healthy_targets.count",
        "target_group_health.dns_failover.minimum_healthy_targets.percentage",
        "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count",
        "target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage",
        "deregistration_delay.connection_termination.enabled",
        "preserve_client_ip.enabled",
        "proxy_protocol_v2.enabled",
        "target_health_state.unhealthy.connection_termination.enabled",
        "target_health_state.unhealthy.draining_interval_seconds",
    }
)
#: Listener protocol -> target group protocols it may forward to (ELBv2 API reference,
#: CreateListener / ModifyListener: "the protocol of the target group must be compatible";
#: Network Load Balancer guide, "Listeners for your Network Load Balancers": TCP_UDP listeners
#: need TCP_UDP target groups).
LISTENER_TO_TG = {
    "TCP": {"TCP", "TCP_UDP"},
    "TLS": {"TCP", "TLS"},
    "UDP": {"UDP", "TCP_UDP"},
    "TCP_UDP": {"TCP_UDP"},
}


def _invalid(message: str) -> Refusal:
    return Refusal("ValidationError", message)


def _check_tags(tags: list[Nested], *, limit: int, service: str) -> Refusal | None:
    """Tag limits (ELBv2 AddTags / EC2 tag restrictions): at most ``limit`` tags per resource,
    keys 1-128 and values 0-256 characters of the allowed set, no ``aws:`` prefix."""
    code = "InvalidParameterValue" if service == "ec2" else "ValidationError"
    if len(tags) > limit:
        return Refusal("TooManyTags", f"The quota for the number of tags ({limit}) has been reached")
    for tag in tags:
        key, value = str(tag.get("Key", "")), str(tag.get("Value", ""))
        if not 1 <= len(key) <= 128 or not _TAG_CHARS.match(key):
            return Refusal(code, f"Tag key '{key}' is not valid")
        if len(value) > 256 or not _TAG_CHARS.match(value):
            return Refusal(code, f"Tag value '{value}' of key '{key}' is not valid")
        if key.lower().startswith("aws:"):
            return Refusal(code, f"Tag keys starting with 'aws:' are reserved for internal use: {key}")
    return None


def _hc_rules(req: Nested) -> Refusal | None:
    """NLB target group health checks (ELBv2 API reference, CreateTargetGroup / ModifyTargetGroup):
    interval 5-300, timeout 2-120 and at most the interval, thresholds 2-10; a path only with HTTP
    or HTTPS; a UDP target group cannot be health-checked over UDP."""
    interval = req.get("HealthCheckIntervalSeconds")
    timeout = req.get("HealthCheckTimeoutSeconds")
    if interval is not None and not 5 <= interval <= 300:
        return _invalid("Health check interval must be between 5 and 300 seconds")
    if timeout is not None and not 2 <= timeout <= 120:
        return _invalid("Health check timeout must be between 2 and 120 seconds")
    if interval is not None and timeout is not None and timeout > interval:
        return _invalid("Health check timeout must be smaller than or equal to the interval")
    for key in ("HealthyThresholdCount", "UnhealthyThresholdCount"):
        if key in req and not 2 <= req[key] <= 10:
            return _invalid(f"{key} must be between 2 and 10")
    hc_protocol = req.get("HealthCheckProtocol")
    if req.get("HealthCheckPath") and hc_protocol not in ("HTTP", "HTTPS"):
        return _invalid("Health check path can only be set with HTTP or HTTPS health checks")
    if hc_protocol in ("UDP", "TCP_UDP"):
        return _invalid(f"Health check protocol '{hc_protocol}' is not supported")
    # Matcher (ELBv2 API reference): HttpCode "for Network Load Balancers ... values from 200 to
    # 599" as one code, a list ("200,202") or a range ("200-299"); it applies to HTTP/HTTPS health
    # checks only.
    codes = (req.get("Matcher") or {}).get("HttpCode")
    if codes:
        if hc_protocol not in ("HTTP", "HTTPS", None):
            return _invalid("Health check matcher can only be set with HTTP or HTTPS health checks")
        if not _success_codes_ok(str(codes)):
            return _invalid(f"Health check matcher HTTP code '{codes}' must be within 200-599")
    return None


def _success_codes_ok(codes: str) -> bool:
    for part in codes.split(","):
        lo, _, hi = part.partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()):
            return False
        if not 200 <= int(lo) <= 599 or (hi and not int(lo) < int(hi) <= 599):
            return False
    return True


class StrictRules:
    """The rules, with read access to moto's state (the server runs in this process)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        #: Create requests that succeeded, by (kind, name): what "the same settings" means.
        self.created: dict[tuple[str, str], Nested] = {}
        #: Security groups of deleted load balancers whose network interfaces AWS has not released
        #: yet: group ID -> DeleteSecurityGroup attempts still refused (see _delete_sg).
        self.releasing: dict[str, int] = {}
        #: How many DeleteSecurityGroup attempts a deleted load balancer's groups stay in use for.
        self.eni_release_attempts = 1

    def reset(self) -> None:
        with self.lock:
            self.created.clear()
            self.releasing.clear()

    # -- moto's state -------------------------------------------------------------------------

    @staticmethod
    def _elbv2() -> Any:
        from moto.elbv2.models import elbv2_backends

        return elbv2_backends[ACCOUNT][REGION]

    @staticmethod
    def _ec2() -> Any:
        from moto.ec2.models import ec2_backends

        return ec2_backends[ACCOUNT][REGION]

    def _tg(self, arn: str) -> Any:
        return self._elbv2().target_groups.get(arn)

    def _lb(self, arn: str) -> Any:
        return self._elbv2().load_balancers.get(arn)

    def _listener(self, arn: str) -> Any:
        """The listener of this ARN, or None: first in its load balancer, whose ARN moto derives the
        listener's from (``...:listener/net/NAME/ID/LID`` of ``...:loadbalancer/net/NAME/ID``), then,
        if not found there, by the pass over every load balancer's listeners (the first match)."""
        owner = self._lb(arn.replace(":listener/", ":loadbalancer/", 1).rpartition("/")[0])
        found = owner.listeners.get(arn) if owner is not None else None
        if found is not None and found.arn == arn:
            return found
        return next(
            (
                li
                for lb in self._elbv2().load_balancers.values()
                for li in lb.listeners.values()
                if li.arn == arn
            ),
            None,
        )

    # -- the entry point ----------------------------------------------------------------------

    def check(self, service: str, action: str, params: Params) -> Refusal | Replay | None:
        if service not in ("elbv2", "elb", "ec2") or not action:
            return None
        model = _model(service)
        if action not in model.operation_names:
            return None
        shape = model.operation_model(action).input_shape
        req: Nested = unflatten(shape, params, "", service == "ec2") if shape is not None else {}
        if shape is not None:
            found = model_violations(shape, req, "")
            if found:
                code = "InvalidParameterValue" if service == "ec2" else "ValidationError"
                return Refusal(code, f"{len(found)} validation error(s) detected: " + "; ".join(found))
        rule = RULES.get(f"{service}:{action}")
        if rule is None:
            return None
        req["__raw__"] = dict(params)
        with self.lock:
            return rule(self, req)

    def note_success(self, service: str, action: str, params: Params) -> None:
        """Remember a successful create (idempotence compares later creates with it)."""
        key = _create_key(service, action, params)
        if key is not None:
            with self.lock:
                self.created[key] = _settings(params)
        with self.lock:
            self._complete(service, action, params)

    def _complete(self, service: str, action: str, params: Params) -> None:
        """Finish what moto leaves undone of a valid request that AWS carries out: ModifyListener's
        ``AlpnPolicy`` (moto drops it; AWS sets it), and ModifyTargetGroup's ``Matcher`` on a TCP
        target group with an HTTP health check (moto sets it only on HTTP target groups) and its NLB
        default at CreateTargetGroup (moto stores the ALB's 200); the
        SubnetMappings' addresses of CreateLoadBalancer; classic listeners' InstanceProtocol."""
        if service == "elb" and action in ("CreateLoadBalancer", "CreateLoadBalancerListeners"):
            _keep_instance_protocols(params)
        if (service, action) == (
            "elbv2",
            "CreateLoadBalancer",
        ) and "SubnetMappings.member.1.SubnetId" in params:
            lb = by_name.first(self._elbv2().load_balancers, params.get("Name", ""))
            if lb is not None:
                lb.lbprov_addresses = _mapped_addresses(params)
        if (
            (service, action) == ("elbv2", "CreateTargetGroup")
            and params.get("Protocol") in ("TCP", "UDP", "TCP_UDP", "TLS")
            and params.get("HealthCheckProtocol") in ("HTTP", "HTTPS")
            and not params.get("Matcher.HttpCode")
        ):
            # ELBv2 Matcher: "For target groups with a protocol of TCP, TCP_UDP, UDP or TLS ... The
            # default value is 200-399" (moto stores 200, the ALB default).
            tg = by_name.first(self._elbv2().target_groups, params.get("Name", ""))
            if tg is not None:
                tg.matcher = {**(getattr(tg, "matcher", None) or {}), "HttpCode": "200-399"}
        if (service, action) == ("elbv2", "ModifyTargetGroup") and params.get("Matcher.HttpCode"):
            tg = self._tg(params.get("TargetGroupArn", ""))
            if tg is not None:
                tg.matcher = {**(getattr(tg, "matcher", None) or {}), "HttpCode": params["Matcher.HttpCode"]}
        if (service, action) == ("elbv2", "ModifyListener") and "AlpnPolicy.member.1" in params:
            li = self._listener(params.get("ListenerArn", ""))
            if li is not None:
                li.alpn_policy = [v for k, v in sorted(params.items()) if k.startswith("AlpnPolicy.")]


def _mapped_addresses(params: Params) -> dict[str, dict[str, str]]:
    """Subnet -> the LoadBalancerAddresses entry AWS reports for a SubnetMapping."""
    out: dict[str, dict[str, str]] = {}
    i = 1
    while f"SubnetMappings.member.{i}.SubnetId" in params:
        base = f"SubnetMappings.member.{i}."
        entry = {}
        if params.get(base + "AllocationId"):
            entry["AllocationId"] = params[base + "AllocationId"]
            entry["IpAddress"] = _eip_address(params[base + "AllocationId"])
        if params.get(base + "PrivateIPv4Address"):
            entry["PrivateIPv4Address"] = params[base + "PrivateIPv4Address"]
        if entry:
            out[params[base + "SubnetId"]] = entry
        i += 1
    return out


def _eip_address(allocation_id: str) -> str:
    from moto.ec2.models import ec2_backends

    for addr in ec2_backends[ACCOUNT][REGION].addresses:
        if addr.allocation_id == allocation_id:
            return str(addr.public_ip)
    return ""


def _keep_instance_protocols(params: Params) -> None:
    """moto reports a classic listener's InstanceProtocol as its front-end Protocol (an SSL
    listener to TCP back ends shows SSL/SSL): keep the one the request gave, as AWS does."""
    from moto.elb.models import elb_backends

    lb = elb_backends[ACCOUNT][REGION].load_balancers.get(params.get("LoadBalancerName", ""))
    if lb is None:
        return
    wanted: dict[int, str] = {}
    i = 1
    while f"Listeners.member.{i}.LoadBalancerPort" in params:
        base = f"Listeners.member.{i}."
        if params.get(base + "InstanceProtocol"):
            wanted[int(params[base + "LoadBalancerPort"])] = params[base + "InstanceProtocol"].upper()
        i += 1
    for li in lb.listeners:
        if int(li.load_balancer_port) in wanted:
            # our own attribute on moto's listener, read by _instance_protocol_as_given below
            li.lbprov_instance_protocol = wanted[int(li.load_balancer_port)]  # type: ignore[attr-defined]


def _instance_protocol_as_given() -> None:
    from moto.elb.models import FakeListener

    def instance_protocol(self: Any) -> str:
        return str(getattr(self, "lbprov_instance_protocol", None) or self.protocol)

    FakeListener.instance_protocol = property(instance_protocol)  # type: ignore[method-assign,assignment]


_instance_protocol_as_given()


def _report_addresses() -> None:
    """moto keeps no SubnetMapping addresses: give its AvailabilityZone objects the
    ``LoadBalancerAddresses`` that AWS reports (DescribeLoadBalancers), from what the strict layer
    recorded on CreateLoadBalancer (StrictRules._complete)."""
    from moto.elbv2.models import AvailabilityZone, FakeLoadBalancer

    def availability_zones(self: Any) -> list[Any]:
        out = []
        for subnet in self.subnets:
            az = AvailabilityZone(subnet)
            addr = (getattr(self, "lbprov_addresses", None) or {}).get(subnet.id)
            if addr:
                az.LoadBalancerAddresses = [addr]  # type: ignore[attr-defined]
            out.append(az)
        return out

    FakeLoadBalancer.availability_zones = property(availability_zones)  # type: ignore[method-assign,assignment]


_report_addresses()


def _settings(params: Params) -> Nested:
    return {k: v for k, v in params.items() if k not in ("Action", "Version")}


def _create_key(service: str, action: str, params: Params) -> tuple[str, str] | None:
    if service != "elbv2":
        return None
    if action == "CreateLoadBalancer":
        return ("lb", params.get("Name", ""))
    if action == "CreateTargetGroup":
        return ("tg", params.get("Name", ""))
    if action == "CreateListener":
        return ("listener", f"{params.get('LoadBalancerArn', '')}:{params.get('Port', '')}")
    return None


# -- rules per operation --------------------------------------------------------------------------


def _create_lb(rules: StrictRules, req: Nested) -> Refusal | Replay | None:
    name = str(req.get("Name", ""))
    # ELBv2 CreateLoadBalancer, Name: alphanumerics and hyphens, 32 at most, no hyphen at either
    # end, not starting with "internal-".
    if not _ELB_NAME.match(name) or name.startswith("internal-"):
        return _invalid(f"'{name}' is not a valid load balancer name")
    if refusal := _check_tags(req.get("Tags", []), limit=50, service="elbv2"):
        return refusal
    if refusal := _create_lb_groups(rules, req):
        return refusal
    # ELBv2 CreateLoadBalancer, Subnets: "You can specify only one subnet per Availability Zone."
    zones: dict[str, str] = {}
    for subnet_id in req.get("Subnets", []):
        try:
            zone = rules._ec2().get_subnet(subnet_id).availability_zone
        except Exception:  # moto's own error for an unknown subnet comes later
            continue
        if zone in zones:
            return Refusal(
                "InvalidConfigurationRequest",
                f"A load balancer cannot be attached to multiple subnets in the same Availability Zone ({zone})",
            )
        zones[zone] = subnet_id
    if refusal := _subnet_mapping_rules(rules, req):
        return refusal
    if req.get("IpAddressType") == "dualstack":
        subnet_ids = list(req.get("Subnets", [])) + [
            m.get("SubnetId", "") for m in req.get("SubnetMappings", [])
        ]
        if refusal := _dualstack_subnets(rules, subnet_ids):
            return refusal
    # "If you attempt to create multiple load balancers with the same name and settings, the call
    # succeeds" with the existing one; with other settings: DuplicateLoadBalancerName.
    if by_name.first(rules._elbv2().load_balancers, name) is not None:
        if rules.created.get(("lb", name)) == _raw(req):
            return Replay("DescribeLoadBalancers", {"Names.member.1": name}, "CreateLoadBalancer")
        return Refusal("DuplicateLoadBalancerName", "A load balancer with the same name already exists")
    return None


def _subnet_mapping_rules(rules: StrictRules, req: Nested) -> Refusal | None:
    """CreateLoadBalancer SubnetMappings (ELBv2 API reference, SubnetMapping): "[Network Load
    Balancers] The allocation ID of the Elastic IP address for an internet-facing load balancer" /
    "The private IPv4 address for an internal load balancer"; the allocation must exist
    (AllocationIdNotFound) and not be in use; the private address must be in the subnet's range;
    one subnet per Availability Zone (as for Subnets)."""
    mappings = req.get("SubnetMappings") or []
    internal = req.get("Scheme") == "internal"
    ec2 = rules._ec2()
    zones: set[str] = set()
    for m in mappings:
        try:
            subnet = ec2.get_subnet(str(m.get("SubnetId", "")))
        except Exception:
            continue
        if subnet.availability_zone in zones:
            return Refusal(
                "InvalidConfigurationRequest",
                f"A load balancer cannot be attached to multiple subnets in the same Availability Zone ({subnet.availability_zone})",
            )
        zones.add(subnet.availability_zone)
        alloc, private = m.get("AllocationId"), m.get("PrivateIPv4Address")
        if alloc:
            if internal:
                return _invalid("Elastic IP addresses can only be used with internet-facing load balancers")
            known = next((a for a in ec2.addresses if a.allocation_id == alloc), None)
            if known is None:
                return Refusal("AllocationIdNotFound", f"The allocation ID '{alloc}' does not exist")
            if _allocation_in_use(rules, alloc) or getattr(known, "association_id", None):
                return Refusal(
                    "InvalidConfigurationRequest", f"The allocation ID '{alloc}' is already in use"
                )
        if private:
            if not internal:
                return _invalid("Private IPv4 addresses can only be specified for internal load balancers")
            import ipaddress

            if ipaddress.ip_address(private) not in ipaddress.ip_network(subnet.cidr_block):
                return Refusal(
                    "InvalidConfigurationRequest",
                    f"The private IPv4 address '{private}' is not in the range of subnet '{subnet.id}'",
                )
    return None


def _allocation_in_use(rules: StrictRules, allocation_id: str) -> bool:
    """Whether a load balancer's SubnetMapping holds this Elastic IP allocation (asked only for a
    mapping that names one: a pass over every load balancer)."""
    return any(
        a.get("AllocationId") == allocation_id
        for lb in list(rules._elbv2().load_balancers.values())
        for a in (getattr(lb, "lbprov_addresses", None) or {}).values()
    )


def _dualstack_subnets(rules: StrictRules, subnet_ids: list[str]) -> Refusal | None:
    """A dualstack load balancer's subnets need IPv6 CIDR blocks (NLB user guide, "IP address
    type"; CreateLoadBalancer / SetIpAddressType answer InvalidConfigurationRequest)."""
    for subnet_id in subnet_ids:
        try:
            subnet = rules._ec2().get_subnet(subnet_id)
        except Exception:
            continue
        if not subnet.ipv6_cidr_block_associations:
            return Refusal(
                "InvalidConfigurationRequest",
                f"Subnet '{subnet_id}' has no IPv6 CIDR block for a dualstack load balancer",
            )
    return None


def _set_ip_address_type(rules: StrictRules, req: Nested) -> Refusal | None:
    lb = rules._lb(str(req.get("LoadBalancerArn", "")))
    if lb is None or req.get("IpAddressType") != "dualstack":
        return None
    return _dualstack_subnets(rules, [s.id for s in lb.subnets])


def _raw(req: Nested) -> Nested:
    """The request's own query parameters (check() keeps them under ``__raw__``): "the same
    settings" of an idempotent create are compared on them."""
    raw: Nested = req.get("__raw__", {})
    return _settings(raw)


def _create_tg(rules: StrictRules, req: Nested) -> Refusal | Replay | None:
    name = str(req.get("Name", ""))
    # ELBv2 CreateTargetGroup, Name: 32 alphanumerics or hyphens, no hyphen at either end (and AWS
    # refuses consecutive hyphens in target group names).
    if not _ELB_NAME.match(name) or "--" in name:
        return _invalid(f"Target group name '{name}' is not valid")
    if refusal := _check_tags(req.get("Tags", []), limit=50, service="elbv2"):
        return refusal
    if refusal := _hc_rules(req):
        return refusal
    if by_name.first(rules._elbv2().target_groups, name) is not None:
        if rules.created.get(("tg", name)) == _raw(req):
            return Replay("DescribeTargetGroups", {"Names.member.1": name}, "CreateTargetGroup")
        return Refusal(
            "DuplicateTargetGroupName",
            "A target group with the same name exists, but with different settings",
        )
    return None


def _modify_tg(rules: StrictRules, req: Nested) -> Refusal | None:
    tg = rules._tg(str(req.get("TargetGroupArn", "")))
    merged = dict(req)
    if tg is not None:
        # A timeout above the interval the group keeps is refused too (ModifyTargetGroup).
        merged.setdefault("HealthCheckIntervalSeconds", int(tg.health_check_interval_seconds))
        merged.setdefault("HealthCheckTimeoutSeconds", int(tg.health_check_timeout_seconds))
        if tg.health_check_protocol:
            merged.setdefault("HealthCheckProtocol", str(tg.health_check_protocol))
    return _hc_rules(merged)


def _tls_settings(rules: StrictRules, req: Nested, protocol: str | None) -> Refusal | None:
    """CreateListener / ModifyListener: ``SslPolicy`` must name a predefined policy
    (DescribeSSLPolicies; otherwise SSLPolicyNotFound); ``AlpnPolicy`` is one of HTTP1Only,
    HTTP2Only, HTTP2Optional, HTTP2Preferred, None and only for TLS listeners (ELBv2 API reference,
    CreateListener: AlpnPolicy "[TLS listeners] The name of the Application-Layer Protocol
    Negotiation (ALPN) policy")."""
    from moto.elbv2.ssl_policies import SSL_POLICIES

    policy = req.get("SslPolicy")
    if policy and policy not in SSL_POLICIES:
        return Refusal("SSLPolicyNotFound", f"SSL policy '{policy}' not found")
    alpn = req.get("AlpnPolicy") or []
    if alpn:
        if protocol != "TLS":
            return _invalid("An ALPN policy can only be set on a TLS listener")
        for value in alpn:
            if value not in ("HTTP1Only", "HTTP2Only", "HTTP2Optional", "HTTP2Preferred", "None"):
                return _invalid(f"ALPN policy '{value}' is not valid")
    return None


def _listener_protocols(rules: StrictRules, req: Nested, listener_protocol: str | None) -> Refusal | None:
    for action in req.get("DefaultActions", []):
        tg = rules._tg(str(action.get("TargetGroupArn", "")))
        if tg is None or listener_protocol is None:
            continue
        if tg.protocol not in LISTENER_TO_TG.get(listener_protocol, {listener_protocol}):
            return _invalid(
                f"Listener protocol '{listener_protocol}' must be compatible with target group protocol '{tg.protocol}'"
            )
    return None


def _create_listener(rules: StrictRules, req: Nested) -> Refusal | Replay | None:
    if refusal := _listener_protocols(rules, req, req.get("Protocol")):
        return refusal
    if refusal := _tls_settings(rules, req, req.get("Protocol")):
        return refusal
    lb = rules._lb(str(req.get("LoadBalancerArn", "")))
    port = req.get("Port")
    if lb is not None:
        same = next((li for li in lb.listeners.values() if li.port == port), None)
        if same is not None:
            key = ("listener", f"{req.get('LoadBalancerArn', '')}:{port}")
            if rules.created.get(key) == _raw(req):
                return Replay("DescribeListeners", {"ListenerArns.member.1": same.arn}, "CreateListener")
            return Refusal(
                "DuplicateListener", "A listener already exists on this port for this load balancer"
            )
    return None


def _modify_listener(rules: StrictRules, req: Nested) -> Refusal | None:
    """ModifyListener: the new protocol against the new (or kept) target group, as on create."""
    listener = rules._listener(str(req.get("ListenerArn", "")))
    protocol = req.get("Protocol") or (listener.protocol if listener is not None else None)
    if "DefaultActions" not in req and listener is not None:
        kept = [a.data for a in listener.default_actions if getattr(a, "data", None)]
        req = {**req, "DefaultActions": [{"TargetGroupArn": a.get("TargetGroupArn", "")} for a in kept]}
    return _listener_protocols(rules, req, protocol) or _tls_settings(rules, req, protocol)


def _attribute_value(key: str, value: str, kinds: Mapping[str, str]) -> Refusal | None:
    """An attribute value of the type the API reference gives its key: ``bool`` (true|false),
    ``int:lo:hi``, ``enum:a|b``, ``off-or-int:lo:hi``."""
    kind = kinds.get(key)
    if kind is None:
        return None
    if kind == "bool":
        ok = value in ("true", "false")
    elif kind.startswith("enum:"):
        ok = value in kind[5:].split("|")
    else:
        off, lo, hi = kind.startswith("off-or-int"), *map(int, kind.split(":")[1:])
        ok = (off and value == "off") or (value.isdigit() and lo <= int(value) <= hi)
    if ok:
        return None
    return _invalid(f"The value '{value}' of attribute '{key}' is not valid")


#: Value types of the NLB attributes (ELBv2 API reference, LoadBalancerAttribute).
NLB_ATTRIBUTE_VALUES = {
    "deletion_protection.enabled": "bool",
    "access_logs.s3.enabled": "bool",
    "ipv6.deny_all_igw_traffic": "bool",
    "load_balancing.cross_zone.enabled": "bool",
    "zonal_shift.config.enabled": "bool",
    "dns_record.client_routing_policy": (
        "enum:availability_zone_affinity|partial_availability_zone_affinity|any_availability_zone"
    ),
    "secondary_ips.auto_assigned.per_subnet": "int:0:7",
}
#: Value types of the NLB target-group attributes (ELBv2 API reference, TargetGroupAttribute).
NLB_TG_ATTRIBUTE_VALUES = {
    "deregistration_delay.timeout_seconds": "int:0:3600",
    "deregistration_delay.connection_termination.enabled": "bool",
    "preserve_client_ip.enabled": "bool",
    "proxy_protocol_v2.enabled": "bool",
    "stickiness.enabled": "bool",
    "stickiness.type": "enum:source_ip|source_ip_dest_ip|source_ip_dest_ip_proto",
    "load_balancing.cross_zone.enabled": "enum:true|false|use_load_balancer_configuration",
    "target_group_health.dns_failover.minimum_healthy_targets.count": "off-or-int:1:10000",
    "target_group_health.dns_failover.minimum_healthy_targets.percentage": "off-or-int:1:100",
    "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count": "int:1:10000",
    "target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage": "off-or-int:1:100",
    "target_health_state.unhealthy.connection_termination.enabled": "bool",
    "target_health_state.unhealthy.draining_interval_seconds": "int:0:360000",
}


def _bucket_exists(name: str) -> bool:
    from moto.s3.models import s3_backends

    return name in s3_backends[ACCOUNT]["aws"].buckets


def _lb_attributes(rules: StrictRules, req: Nested) -> Refusal | None:
    lb = rules._lb(str(req.get("LoadBalancerArn", "")))
    if lb is None or lb.type != "network":
        return None
    attrs = {str(a.get("Key")): str(a.get("Value", "")) for a in req.get("Attributes", [])}
    for key, value in attrs.items():
        if key not in NLB_ATTRIBUTES:
            return _invalid(f"Load balancer attribute key '{key}' is not recognized")
        if refusal := _attribute_value(key, value, NLB_ATTRIBUTE_VALUES):
            return refusal
    # LoadBalancerAttribute access_logs.s3.bucket: "The name of the S3 bucket for the access
    # logs. This attribute is required if access logs are enabled. The bucket must exist in the
    # same region as the load balancer" (ModifyLoadBalancerAttributes answers
    # InvalidConfigurationRequest otherwise).
    current = {a["key"]: str(a["value"]) for a in _moto_lb_attributes(lb)}
    enabled = attrs.get("access_logs.s3.enabled", current.get("access_logs.s3.enabled", "false"))
    bucket = attrs.get("access_logs.s3.bucket", current.get("access_logs.s3.bucket", ""))
    if enabled == "true" and not bucket:
        return Refusal("InvalidConfigurationRequest", "Access log bucket name cannot be empty when enabled")
    if enabled == "true" and not _bucket_exists(bucket):
        return Refusal("InvalidConfigurationRequest", f"The S3 bucket '{bucket}' does not exist")
    return None


def _moto_lb_attributes(lb: Any) -> list[dict[str, Any]]:
    raw = getattr(lb, "attrs", None) or {}
    return [{"key": k, "value": v} for k, v in raw.items()]


def _tg_attributes(rules: StrictRules, req: Nested) -> Refusal | None:
    tg = rules._tg(str(req.get("TargetGroupArn", "")))
    if tg is None or tg.protocol not in ("TCP", "UDP", "TCP_UDP", "TLS"):
        return None
    for attr in req.get("Attributes", []):
        key, value = str(attr.get("Key")), str(attr.get("Value", ""))
        if key not in NLB_TG_ATTRIBUTES:
            return _invalid(f"Target group attribute key '{key}' is not recognized")
        if refusal := _attribute_value(key, value, NLB_TG_ATTRIBUTE_VALUES):
            return refusal
        # TargetGroupAttribute preserve_client_ip.enabled: "Client IP preservation can't be
        # disabled for UDP and TCP_UDP target groups."
        if key == "preserve_client_ip.enabled" and value == "false" and tg.protocol in ("UDP", "TCP_UDP"):
            return _invalid("Client IP preservation cannot be disabled for UDP and TCP_UDP target groups")
        # Proxy protocol v2 is a TCP/TLS feature: NLB user guide, "Proxy protocol" ("not supported
        # for UDP and TCP_UDP target groups" / ModifyTargetGroupAttributes refuses it there).
        if key == "proxy_protocol_v2.enabled" and value == "true" and tg.protocol in ("UDP", "TCP_UDP"):
            return _invalid("Proxy protocol v2 is not supported for UDP and TCP_UDP target groups")
    return None


def _delete_lb(rules: StrictRules, req: Nested) -> Refusal | None:
    # DeleteLoadBalancer: "If deletion protection is enabled, the load balancer cannot be deleted"
    # (ELBv2 API reference, errors: OperationNotPermitted).
    lb = rules._lb(str(req.get("LoadBalancerArn", "")))
    if lb is None:
        return None
    attrs = {a["key"]: str(a["value"]).lower() for a in _moto_lb_attributes(lb)}
    if attrs.get("deletion_protection.enabled") == "true":
        return Refusal(
            "OperationNotPermitted",
            f"Load balancer '{lb.arn}' cannot be deleted because deletion protection is enabled",
        )
    return None


def _set_security_groups(rules: StrictRules, req: Nested) -> Refusal | None:
    # ELBv2 SetSecurityGroups: "You can't add a security group to a Network Load Balancer that
    # was created without one" (and cannot remove all from one created with some).
    lb = rules._lb(str(req.get("LoadBalancerArn", "")))
    if lb is not None and lb.type == "network" and not lb.security_groups:
        return _invalid(
            "A Network Load Balancer created without security groups cannot have security groups added"
        )
    if lb is not None and lb.type == "network" and not req.get("SecurityGroups"):
        return _invalid("A Network Load Balancer created with security groups must keep at least one")
    return _create_lb_groups(rules, req)


def _create_lb_groups(rules: StrictRules, req: Nested) -> Refusal | None:
    # ELBv2 CreateLoadBalancer / SetSecurityGroups: every group must exist in the load balancer's
    # VPC (InvalidSecurityGroup: "The specified security group does not exist").
    for group_id in req.get("SecurityGroups", []):
        if rules._ec2().get_security_group_from_id(str(group_id)) is None:
            return Refusal("InvalidSecurityGroup", f"The security group '{group_id}' does not exist")
    return None


def _groups_in_use(rules: StrictRules, group_id: str) -> str | None:
    """What still uses a security group, as EC2 sees it: a load balancer (its network interfaces),
    or a rule of another group that references it."""
    for lb in rules._elbv2().load_balancers.values():
        if group_id in (lb.security_groups or []):
            return f"load balancer {lb.name}"
    from moto.elb.models import elb_backends

    for clb in elb_backends[ACCOUNT][REGION].load_balancers.values():
        if group_id in (clb.security_groups or []):
            return f"load balancer {clb.name}"
    for groups in rules._ec2().groups.values():
        for other in groups.values():
            for rule in other.ingress_rules:
                if (rule.source_group or {}).get("GroupId") == group_id:
                    return f"a rule of security group {other.id}"
    return None


def _delete_sg(rules: StrictRules, req: Nested) -> Refusal | None:
    # EC2 DeleteSecurityGroup: "If you attempt to delete a security group that is associated with
    # an instance or network interface, is referenced by another security group in the same VPC,
    # ... the operation fails with DependencyViolation." A load balancer's interfaces use its
    # groups, and after DeleteLoadBalancer AWS releases them asynchronously (aws-load-balancer-
    # controller polls DeleteSecurityGroup for two minutes): modelled as ``eni_release_attempts``
    # refused attempts. moto deletes a group whatever uses it.
    group_id = str(req.get("GroupId", ""))
    user = _groups_in_use(rules, group_id)
    if user is None and rules.releasing.get(group_id, 0) > 0:
        rules.releasing[group_id] -= 1
        user = "a network interface of a deleted load balancer (being released)"
    if user is not None:
        return Refusal("DependencyViolation", f"resource {group_id} has a dependent object ({user})")
    return None


def _note_releasing(rules: StrictRules, req: Nested) -> Refusal | None:
    """DeleteLoadBalancer: deletion protection (:func:`_delete_lb`); when allowed, notes the groups
    whose interfaces the deletion will release later."""
    refusal = _delete_lb(rules, req)
    if refusal is not None:
        return refusal
    lb = rules._lb(str(req.get("LoadBalancerArn", "")))
    for group_id in (lb.security_groups or []) if lb is not None else []:
        rules.releasing[group_id] = rules.eni_release_attempts
    return None


def _set_subnets(rules: StrictRules, req: Nested) -> Refusal | None:
    zones: set[str] = set()
    for subnet_id in req.get("Subnets", []):
        try:
            zone = rules._ec2().get_subnet(subnet_id).availability_zone
        except Exception:
            continue
        if zone in zones:
            return Refusal("InvalidConfigurationRequest", f"Multiple subnets in Availability Zone {zone}")
        zones.add(zone)
    return None


def _elbv2_add_tags(rules: StrictRules, req: Nested) -> Refusal | None:
    return _check_tags(req.get("Tags", []), limit=50, service="elbv2")


def _elb_create(rules: StrictRules, req: Nested) -> Refusal | None:
    # Classic ELB AddTags / CreateLoadBalancer: "Each load balancer can have a maximum of 10 tags."
    return _check_tags(req.get("Tags", []), limit=10, service="elb")


def _elb_instances(rules: StrictRules, req: Nested) -> Refusal | None:
    # Classic ELB RegisterInstancesWithLoadBalancer / DeregisterInstancesFromLoadBalancer (API
    # reference, Errors): AccessPointNotFound, "The specified load balancer does not exist", HTTP
    # 400 (botocore's code for it: LoadBalancerNotFound). moto answers a 500 (an AttributeError on
    # the missing load balancer), which a client retries as a server error.
    from moto.elb.models import elb_backends

    name = str(req.get("LoadBalancerName", ""))
    if name not in elb_backends[ACCOUNT][REGION].load_balancers:
        return Refusal("LoadBalancerNotFound", f"There is no ACTIVE Load Balancer named '{name}'")
    return None


def _elb_health(rules: StrictRules, req: Nested) -> Refusal | None:
    # Classic ELB ConfigureHealthCheck (HealthCheck): Target at most 1,024 characters; Timeout
    # "must be less than the Interval value"; Interval 5-300, Timeout 2-60.
    hc = req.get("HealthCheck", {})
    if len(str(hc.get("Target", ""))) > 1024:
        return _invalid("HealthCheck Target must have length less than or equal to 1024")
    if hc.get("Timeout") is not None and hc.get("Interval") is not None and hc["Timeout"] >= hc["Interval"]:
        return _invalid("HealthCheck Timeout must be less than Interval")
    return None


#: The classic ELB's predefined SSL negotiation policies (DescribeLoadBalancerPolicies without a
#: load balancer name, ELB user guide "Predefined SSL security policies for Classic Load Balancers"):
#: the provider's table (options.py, the one list of the security policies) plus the two sample
#: cipher policies the cloud also accepts but the provider does not offer.
CLASSIC_SSL_POLICIES = frozenset(
    {
        *options.CLASSIC_SSL_POLICIES,
        "ELBSample-ELBDefaultCipherPolicy",
        "ELBSample-OpenSSLDefaultCipherPolicy",
    }
)


def _elb_attributes(rules: StrictRules, req: Nested) -> Refusal | None:
    """Classic ModifyLoadBalancerAttributes (ELB API reference, AccessLog / ConnectionSettings):
    EmitInterval 5 or 60; S3BucketName required when the access log is enabled, and the bucket must
    exist (InvalidConfigurationRequest); IdleTimeout 1-4000 seconds; draining Timeout 1-3600."""
    attrs = req.get("LoadBalancerAttributes") or {}
    log = attrs.get("AccessLog") or {}
    if log.get("Enabled"):
        if log.get("EmitInterval") not in (None, 5, 60):
            return _invalid("EmitInterval must be 5 or 60")
        bucket = log.get("S3BucketName")
        if not bucket:
            return Refusal(
                "InvalidConfigurationRequest", "S3BucketName is required when access logs are enabled"
            )
        if not _bucket_exists(str(bucket)):
            return Refusal("InvalidConfigurationRequest", f"The S3 bucket '{bucket}' does not exist")
    idle = (attrs.get("ConnectionSettings") or {}).get("IdleTimeout")
    if idle is not None and not 1 <= idle <= 4000:
        return _invalid("IdleTimeout must be between 1 and 4000 seconds")
    draining = attrs.get("ConnectionDraining") or {}
    if draining.get("Timeout") is not None and not 1 <= draining["Timeout"] <= 3600:
        return _invalid("ConnectionDraining Timeout must be between 1 and 3600 seconds")
    return None


def _elb_create_policy(rules: StrictRules, req: Nested) -> Refusal | None:
    """Classic CreateLoadBalancerPolicy of type SSLNegotiationPolicyType: a
    Reference-Security-Policy must name a predefined policy (PolicyNotFound otherwise)."""
    if req.get("PolicyTypeName") != "SSLNegotiationPolicyType":
        return None
    for attr in req.get("PolicyAttributes", []):
        if (
            attr.get("AttributeName") == "Reference-Security-Policy"
            and attr.get("AttributeValue") not in CLASSIC_SSL_POLICIES
        ):
            return Refusal(
                "PolicyNotFound", f"There is no policy with name {attr.get('AttributeValue')} for reference"
            )
    return None


def _ec2_create_sg(rules: StrictRules, req: Nested) -> Refusal | None:
    # EC2 CreateSecurityGroup: in a VPC, name and description use a-zA-Z0-9, spaces and
    # ._-:/()#,@[]+=&;{}!$* (255 characters); a name must not start with "sg-".
    for key in ("GroupName", "Description"):
        value = str(req.get(key, ""))
        if not _SG_TEXT.match(value) or len(value) > 255:
            return Refusal("InvalidParameterValue", f"Value ({value}) for parameter {key} is invalid")
    if str(req.get("GroupName", "")).lower().startswith("sg-"):
        return Refusal("InvalidParameterValue", "Group names may not be in the format sg-*")
    for spec in req.get("TagSpecifications", []):
        if refusal := _check_tags(spec.get("Tags", []), limit=50, service="ec2"):
            return refusal
    return None


def _ec2_authorize(rules: StrictRules, req: Nested) -> Refusal | None:
    # EC2 security group rule descriptions: up to 255 characters of a-zA-Z0-9, spaces and
    # ._-:/()#,@[]+=&;{}!$* (EC2 API reference, IpRange / UserIdGroupPair Description). The limit of
    # 60 inbound rules per group (VPC quotas) moto enforces itself (RulesPerSecurityGroupLimitExceeded).
    for perm in req.get("IpPermissions", []):
        for entry in perm.get("IpRanges", []) + perm.get("Ipv6Ranges", []) + perm.get("UserIdGroupPairs", []):
            desc = str(entry.get("Description", ""))
            if len(desc) > 255 or not _SG_TEXT.match(desc):
                return Refusal("InvalidParameterValue", f"Invalid rule description: {desc}")
    return None


RULES: dict[str, Callable[[StrictRules, Nested], Refusal | Replay | None]] = {
    "elbv2:CreateLoadBalancer": _create_lb,
    "elbv2:CreateTargetGroup": _create_tg,
    "elbv2:ModifyTargetGroup": _modify_tg,
    "elbv2:CreateListener": _create_listener,
    "elbv2:ModifyListener": _modify_listener,
    "elbv2:ModifyLoadBalancerAttributes": _lb_attributes,
    "elbv2:ModifyTargetGroupAttributes": _tg_attributes,
    "elbv2:DeleteLoadBalancer": _note_releasing,
    "elbv2:SetSecurityGroups": _set_security_groups,
    "elbv2:SetSubnets": _set_subnets,
    "ec2:DeleteSecurityGroup": _delete_sg,
    "elbv2:SetIpAddressType": _set_ip_address_type,
    "elbv2:AddTags": _elbv2_add_tags,
    "elb:CreateLoadBalancer": _elb_create,
    "elb:AddTags": _elb_create,
    "elb:ConfigureHealthCheck": _elb_health,
    "elb:RegisterInstancesWithLoadBalancer": _elb_instances,
    "elb:DeregisterInstancesFromLoadBalancer": _elb_instances,
    "elb:ModifyLoadBalancerAttributes": _elb_attributes,
    "elb:CreateLoadBalancerPolicy": _elb_create_policy,
    "ec2:CreateSecurityGroup": _ec2_create_sg,
    "ec2:AuthorizeSecurityGroupIngress": _ec2_authorize,
}


def error_body(service: str, refusal: Refusal) -> bytes:
    """AWS's error document for the query protocols (what botocore parses into a ClientError)."""
    code, message = escape(refusal.code), escape(refusal.message)
    if service == "ec2":
        return (
            f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
            "<RequestID>lbprov-strict</RequestID></Response>"
        ).encode()
    return (
        '<ErrorResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/">'
        f"<Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        "<RequestId>lbprov-strict</RequestId></ErrorResponse>"
    ).encode()
