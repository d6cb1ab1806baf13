"""Settings of the AWS provider (env prefix ``LBPROV_AWS_``)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from lbprov.settings import ProviderSettings

_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")


class AWSSettings(ProviderSettings):
    """Where and how lbprov talks to AWS.

    Credentials are optional: without them boto3's default chain applies (IRSA, instance profile,
    ``AWS_*`` environment). They are ``SecretStr`` so that they never appear in logs or reprs.
    """

    model_config = SettingsConfigDict(env_prefix="LBPROV_AWS_", extra="forbid", frozen=True)

    region: str = Field("us-east-1", description="AWS region of the cluster's VPC.")
    endpoint_url: str | None = Field(
        None,
        description="Override the endpoint of every AWS API (EC2, ELB, ELBv2), e.g. a local moto "
        "server. Leave unset for real AWS.",
    )
    access_key_id: SecretStr | None = Field(
        None, description="AWS access key ID; unset = boto3's default credential chain."
    )
    secret_access_key: SecretStr | None = Field(
        None, description="AWS secret access key; unset = boto3's default credential chain."
    )
    default_load_balancer_type: Literal["nlb", "classic"] = Field(
        "nlb",
        description="Load balancer for a Service without the aws-load-balancer-type annotation: 'nlb' "
        "(a Network Load Balancer) or 'classic' (a classic ELB, cloud-provider-aws's default: set it "
        "for a cluster that comes from cloud-provider-aws). A Service that already has a load balancer "
        "(its own, or the one cloud-provider-aws made for it) keeps that kind whatever this says.",
    )
    vpc_id: str | None = Field(
        None, description="The cluster's VPC; unset = the VPC of the nodes' instances."
    )
    node_security_group_id: str | None = Field(
        None,
        description="Security group that receives the NodePort rules; unset = the cluster-tagged "
        "security group attached to the node instances.",
    )
    manage_node_security_group: bool = Field(
        True,
        description="Add/revoke node security group rules for NodePorts and health checks "
        "(upstream's DisableSecurityGroupIngress=false).",
    )
    nlb_security_groups: bool = Field(
        True,
        description="Create new NLBs with security groups, as aws-load-balancer-controller does: a "
        "frontend group per NLB opening the listener ports to the source ranges, and one backend "
        "group per cluster that each node security group admits on the NodePort range and "
        "kube-proxy's health port (a fixed number of node rules, and no source range reaches a "
        "NodePort). false = the older model for new NLBs too: NodePort rules from the source ranges "
        "on the node groups. NLBs that exist without groups keep the older model either way (AWS "
        "cannot add groups to them).",
    )
    node_security_group_rules: Literal["auto", "ports", "nodeport-range"] = Field(
        "auto",
        description="How NLB NodePort rules are written to the node security group: 'ports' = the "
        "exact NodePorts (contiguous ports merged into ranges; least privilege, but one rule per "
        "Service port and CIDR with random NodePorts, and AWS allows 60 rules per group); "
        "'nodeport-range' = the whole node_port_range once per (protocol, source CIDR) wanted by any "
        "Service (rules grow with distinct CIDRs, not Services, but the source CIDRs also reach "
        "NodePort Services that are not load balancers); 'auto' = exact ports while the group's "
        "lbprov rules fit node_security_group_rule_budget, else the range for the (protocol, CIDR) "
        "keys with the most rules.",
    )
    node_security_group_rule_budget: int = Field(
        50,
        ge=1,
        le=1000,
        description="'auto' mode: most lbprov rules in the node security group before switching "
        "(protocol, CIDR) keys to the whole NodePort range (AWS's default limit is 60 inbound rules "
        "per group, shared with rules that are not lbprov's).",
    )
    node_port_range: str = Field(
        "30000-32767",
        description="The cluster's NodePort range (kube-apiserver --service-node-port-range), "
        "'FROM-TO'; opened whole by 'nodeport-range' and 'auto'.",
    )
    resync_read_budget: float = Field(
        0.45,
        gt=0,
        le=100,
        description="Reads per Service that each periodic resync may spend on deep checks (listeners, "
        "attributes, registered targets, tags) beyond the account-wide listings it always makes: every "
        "Service is deep-checked once every K = ceil(4 / budget) resyncs (4: the reads of a one-port "
        "NLB; a Service with p ports costs 2 + 2p). Default 0.45: K = 9, and a resync of 1,000 "
        "one-port Services costs under 0.5 reads per Service. Load balancers, target groups (health "
        "checks), security group rules and instances are listed every resync.",
    )
    node_sync_workers: int = Field(
        10,
        ge=1,
        le=100,
        description="Target-group writes the node sync sends at once when the cluster's nodes change "
        "(one RegisterTargets/DeregisterTargets per target group; default 10, the controller's default "
        "worker count). The client-side write rate limit still applies.",
    )
    validate_requests: bool = Field(
        False,
        description="Check every request against the AWS SDK's model before it is sent (botocore's "
        "parameter validation of required and known parameters, types, minimum lengths and values). Off "
        "by default, since lbprov builds its requests from validated settings and annotations "
        "(out-of-range values are refused with an event naming the annotation) and AWS refuses an "
        "invalid request anyway; the check cost 5 to 10 percent of the controller's CPU per AWS call. The tests "
        "turn it on.",
    )
    max_attempts: int = Field(6, ge=1, le=20, description="Attempts per AWS call (first try included).")
    retry_initial_seconds: float = Field(
        0.2, gt=0, description="First backoff delay after a throttled or failed call (jittered, doubling)."
    )
    retry_max_seconds: float = Field(20.0, gt=0, description="Longest single backoff delay.")
    reads_per_second: float = Field(
        20.0, ge=0, description="Client-side rate limit for reads (0 = unlimited)."
    )
    read_burst: int = Field(40, ge=1, description="Burst of the read token bucket.")
    writes_per_second: float = Field(
        5.0, ge=0, description="Client-side rate limit for writes (0 = unlimited)."
    )
    write_burst: int = Field(20, ge=1, description="Burst of the write token bucket.")
    connect_timeout: float = Field(5.0, gt=0, description="Seconds to wait for a TCP connection.")
    read_timeout: float = Field(
        30.0, gt=0, description="Seconds to wait for a response (ELB and EC2 answer within seconds)."
    )

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        # Region codes are <area>-<direction...>-<n> in every partition (us-east-1, us-gov-west-1,
        # cn-north-1, us-isob-east-1); anything else makes botocore build an invalid endpoint
        # (InvalidRegionError, or 'elasticloadbalancing..amazonaws.com') on the first call.
        if not _REGION.fullmatch(value):
            raise ValueError(f"{value!r} is not an AWS region code such as eu-west-1 (an AZ is not a region)")
        return value

    @field_validator("node_port_range")
    @classmethod
    def _port_range(cls, value: str) -> str:
        m = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", value)
        if not m or not (1 <= int(m[1]) <= int(m[2]) <= 65535):
            raise ValueError(
                f"node_port_range must be 'FROM-TO' with 1 <= FROM <= TO <= 65535, not {value!r}"
            )
        return f"{int(m[1])}-{int(m[2])}"

    def port_range(self) -> tuple[int, int]:
        lo, _, hi = self.node_port_range.partition("-")
        return int(lo), int(hi)
