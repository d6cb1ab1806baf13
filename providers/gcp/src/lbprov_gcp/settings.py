"""Settings of the GCP provider (env prefix ``LBPROV_GCP_``)."""

from __future__ import annotations

import re
from ipaddress import ip_network
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from lbprov.settings import ProviderSettings

_PROJECT = re.compile(r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$")
_REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")
_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")

#: Google's health-check probers, the four ranges upstream opens (``--cloud-provider-gce-lb-src-cidrs``,
#: REFERENCE.md section 3): external passthrough load balancers are probed from 35.191.0.0/16,
#: 209.85.152.0/22 and 209.85.204.0/22, internal ones from 130.211.0.0/22 and 35.191.0.0/16.
HEALTH_CHECK_RANGES = ("130.211.0.0/22", "35.191.0.0/16", "209.85.152.0/22", "209.85.204.0/22")
#: Google's IPv6 health-check probers, by scheme (Google's "Probe IP ranges and firewall rules"; the
#: same constants as ingress-gce's pkg/healthchecksl4: L4NetLBIPv6HCRange, L4ILBIPv6HCRange). The
#: cluster's shared check serves both schemes, so its IPv6 firewall opens both, as ingress-gce's.
HEALTH_CHECK_RANGES_IPV6 = {"external": ("2600:1901:8001::/48",), "internal": ("2600:2d00:1:b029::/64",)}


class GCPSettings(ProviderSettings):
    """Where lbprov creates load balancers on Google Cloud, and how it reaches the API."""

    model_config = SettingsConfigDict(env_prefix="LBPROV_GCP_", extra="forbid", frozen=True)

    project: str = Field(description="Google Cloud project ID that holds the cluster's network and nodes.")
    region: str = Field(description="Region of the cluster (e.g. us-central1); load balancers are regional.")
    network: str = Field(description="Name of the VPC network of the nodes (firewall rules go there).")
    subnetwork: str | None = Field(
        None,
        description="Subnetwork (in the region) that internal load balancers take their IP from; "
        "required for Services annotated networking.gke.io/load-balancer-type: Internal.",
    )
    node_tags: tuple[str, ...] = Field(
        (),
        description="Network tags of the cluster's node instances, which the firewall rules target. Default: "
        "found from the instances as upstream finds them (per instance, the longest of its tags that is a "
        "prefix of its name); set it to override.",
    )
    api_endpoint: str | None = Field(
        None,
        description="Compute API endpoint (e.g. http://127.0.0.1:PORT for the local emulator); default "
        "is Google's. A loopback endpoint is used with anonymous credentials.",
    )
    health_check_source_ranges: tuple[str, ...] = Field(
        HEALTH_CHECK_RANGES,
        description="Source ranges of Google's health-check probers, allowed to the health-check port.",
    )
    gce_cluster_id: str | None = Field(
        None,
        description="The cluster ID upstream (cloud-provider-gcp, GKE, ingress-gce) names the shared "
        "instance groups with (k8s-ig--<id>). Default: read from the kube-system/ingress-uid ConfigMap "
        "(key provider-uid, else uid), which is created when missing, as upstream does.",
    )
    static_addresses: bool = Field(
        False,
        description="Keep a reserved (static) address per Service for good. By default, as upstream, the IP "
        "is reserved only while forwarding rules are written and released once they hold it, so a Service "
        "costs no static-address quota (Services with both TCP and UDP keep theirs: two forwarding rules "
        "share one IP only through a reserved address).",
    )
    firewall_priority: int = Field(
        999, ge=0, le=65535, description="Priority of the firewall rules lbprov makes."
    )
    reads_per_second: float = Field(20.0, ge=0, description="Client-side read rate limit (0 = none).")
    writes_per_second: float = Field(5.0, ge=0, description="Client-side write rate limit (0 = none).")
    retry_attempts: int = Field(6, ge=1, le=20, description="Attempts per API call on throttling/5xx errors.")
    retry_initial_seconds: float = Field(
        0.2, gt=0, description="First retry backoff (jittered, exponential)."
    )
    operation_timeout_seconds: float = Field(
        600.0, gt=0, description="How long to wait for one long-running operation to finish."
    )

    @field_validator("project")
    @classmethod
    def _project(cls, value: str) -> str:
        if not _PROJECT.match(value):
            raise ValueError(f"{value!r} is not a project ID (6-30 lowercase letters, digits, '-')")
        return value

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if not _REGION.match(value):
            raise ValueError(f"{value!r} is not a region name such as us-central1 (a zone is not a region)")
        return value

    @field_validator("network", "subnetwork")
    @classmethod
    def _resource_name(cls, value: str | None) -> str | None:
        if value is not None and not _NAME.match(value):
            raise ValueError(f"{value!r} is not a resource name (lowercase letters, digits, '-')")
        return value

    @field_validator("node_tags")
    @classmethod
    def _tags(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for tag in value:
            if not _NAME.match(tag):
                raise ValueError(f"{tag!r} is not a network tag (lowercase letters, digits, '-')")
        return tuple(sorted(set(value)))

    @field_validator("gce_cluster_id")
    @classmethod
    def _gce_cluster_id(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z0-9-]{1,50}", value):
            raise ValueError(f"{value!r} is not a cluster ID as upstream writes it (lowercase hex)")
        return value

    @field_validator("api_endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} must be an http(s) URL such as http://127.0.0.1:8080")
        return value.rstrip("/")

    @field_validator("health_check_source_ranges")
    @classmethod
    def _ranges(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(sorted({str(ip_network(v, strict=False)) for v in value}))

    @property
    def uses_emulator(self) -> bool:
        host = urlsplit(self.api_endpoint).hostname if self.api_endpoint else None
        return host in ("127.0.0.1", "localhost", "::1")
