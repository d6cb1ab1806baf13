"""Settings of the AWS provider (env prefix ``LBPROV_AWS_``)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from lbprov.settings import ProviderSettings


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
    connect_timeout: float = Field(10.0, gt=0, description="Seconds to wait for a TCP connection.")
    read_timeout: float = Field(60.0, gt=0, description="Seconds to wait for a response.")
