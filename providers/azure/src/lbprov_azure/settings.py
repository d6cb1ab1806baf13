"""Settings of the Azure provider (pydantic-settings, env prefix ``LBPROV_AZURE_``)."""

from __future__ import annotations

import difflib
import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from lbprov.settings import ProviderSettings

_RG = re.compile(r"^[-\w._()]{1,90}$")
_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,78}[A-Za-z0-9_])?$")
_LOCATION = re.compile(r"^[a-z]+[a-z0-9]*$")

#: Azure region names (``az account list-locations --query '[].name'``, public, US Gov and China
#: clouds). A name that is not here but close to one (``westeurop``) is a typo and refused; a name
#: far from all of them is accepted, so a region newer than this list still works.
KNOWN_LOCATIONS = frozenset(
    [
        "australiacentral",
        "australiacentral2",
        "australiaeast",
        "australiasoutheast",
        "austriaeast",
        "belgiumcentral",
        "brazilsouth",
        "brazilsoutheast",
        "canadacentral",
        "canadaeast",
        "centralindia",
        "centralus",
        "chilecentral",
        "eastasia",
        "eastus",
        "eastus2",
        "francecentral",
        "francesouth",
        "germanynorth",
        "germanywestcentral",
        "indonesiacentral",
        "israelcentral",
        "italynorth",
        "japaneast",
        "japanwest",
        "jioindiacentral",
        "jioindiawest",
        "koreacentral",
        "koreasouth",
        "malaysiawest",
        "mexicocentral",
        "newzealandnorth",
        "northcentralus",
        "northeurope",
        "norwayeast",
        "norwaywest",
        "polandcentral",
        "qatarcentral",
        "southafricanorth",
        "southafricawest",
        "southcentralus",
        "southeastasia",
        "southindia",
        "spaincentral",
        "swedencentral",
        "swedensouth",
        "switzerlandnorth",
        "switzerlandwest",
        "uaecentral",
        "uaenorth",
        "uksouth",
        "ukwest",
        "westcentralus",
        "westeurope",
        "westindia",
        "westus",
        "westus2",
        "westus3",
        "usgovarizona",
        "usgovtexas",
        "usgovvirginia",
        "usdodcentral",
        "usdodeast",
        "chinaeast",
        "chinaeast2",
        "chinaeast3",
        "chinanorth",
        "chinanorth2",
        "chinanorth3",
    ]
)


class AzureSettings(ProviderSettings):
    """Where the cluster lives in Azure and how to reach ARM."""

    model_config = SettingsConfigDict(env_prefix="LBPROV_AZURE_", extra="forbid", frozen=True)

    subscription_id: str = Field(..., description="Azure subscription ID that holds the cluster's network.")
    resource_group: str = Field(
        ..., description="Resource group of the load balancers, public IPs and the cluster NSG."
    )
    location: str = Field(..., description="Azure region of the cluster (e.g. westeurope).")
    vnet_name: str = Field(..., description="Virtual network of the nodes (the backend pool's VNet).")
    vnet_resource_group: str | None = Field(
        None, description="Resource group of the VNet, when it differs from resource_group."
    )
    subnet_name: str = Field(
        ..., description="Subnet for internal load-balancer frontends (unless a Service names another)."
    )
    security_group_name: str | None = Field(
        None,
        description="Cluster network security group that receives the allow rules; unset = manage no NSG rules.",
    )
    base_url: str | None = Field(
        None,
        description="ARM endpoint; unset = the public Azure cloud. The sandbox sets https://127.0.0.1:<port>.",
    )
    ca_bundle: str | None = Field(
        None, description="PEM file of CA certificates to trust for base_url (the sandbox's throwaway cert)."
    )
    auth: Literal["default", "static-token"] = Field(
        "default",
        description="'default' = azure-identity DefaultAzureCredential (workload identity in cluster); "
        "'static-token' = send static_token (sandbox only).",
    )
    static_token: SecretStr | None = Field(None, description="Bearer token for auth=static-token (sandbox).")
    max_attempts: int = Field(
        6, ge=1, le=20, description="Attempts per ARM call on throttling/5xx (first try included)."
    )
    operation_timeout_seconds: float = Field(
        300.0,
        gt=0,
        le=3600,
        description="How long to poll one long-running ARM operation (a PUT or DELETE) before giving up "
        "on it for this reconcile (it goes on in Azure).",
    )
    reads_per_second: float | None = Field(
        25.0, description="Client-side read rate limit (ARM: 25/s); unset = none."
    )
    writes_per_second: float | None = Field(
        10.0, description="Client-side write rate limit (ARM: 10/s); unset = none."
    )
    public_ip_writers: int = Field(
        20,
        ge=1,
        le=100,
        description="Public-IP writes sent at once, on top of the workers' own calls: a sync waits for "
        "its public IP's create (PUT, operation poll, GET) without holding its worker slot (default 20: "
        "at 10, a new Service waited about 60 ms for its turn, and fewer Services reached each shared "
        "load balancer batch). The client-side write rate limit still applies.",
    )
    max_load_balancers: int = Field(
        8,
        ge=1,
        le=100,
        description="How many slots of load balancers (a public and an internal one each) the cluster may "
        "use: a new one is added only when the others are full (a node is in at most 300 rules across all "
        "load balancers), and each node is in exactly one slot's pools.",
    )
    coalesce_window_seconds: float = Field(
        0.01,
        ge=0,
        le=5,
        description="How long the shared-LB writer always waits for other Services' changes to join one PUT.",
    )
    coalesce_max_wait_seconds: float = Field(
        1.0,
        ge=0,
        le=30,
        description="How long the shared-LB writer waits at most for applies already under way "
        "(creating their public IPs) so that their changes join the same PUT.",
    )
    node_sync_listing_max_age_seconds: float = Field(
        120.0,
        ge=0,
        le=3600,
        description="How old the kept listing of the load balancers may be for a node sync to plan the "
        "backend pools from it instead of listing them again (0: list every time). The kept listing is "
        "the last one read, with every load balancer this controller wrote since as it wrote it, and "
        "it is dropped when a write fails; a pool write planned from it is refused where the load "
        "balancer changed since (If-Match), and the node sync then falls back to planning every "
        "Service. At 1,000 Services the listing is megabytes, and decoding it was most of a node "
        "sync's time. Upstream caches load balancers for 120 s.",
    )

    @field_validator("resource_group", "vnet_resource_group")
    @classmethod
    def _rg(cls, value: str | None) -> str | None:
        if value is not None and (not _RG.match(value) or value.endswith(".")):
            raise ValueError(
                f"{value!r} is not a resource group name: 1-90 letters, digits, '-', '_', '.', '(', ')', not ending in '.'"
            )
        return value

    @field_validator("location")
    @classmethod
    def _location(cls, value: str) -> str:
        # The portal's display name ("West Europe") is the region name with spaces and capitals.
        name = value.replace(" ", "").lower()
        if not _LOCATION.match(name):
            raise ValueError(f"{value!r} is not an Azure region name such as westeurope or eastus2")
        # eastus -> eastus2 -> eastus3: a new number of a known region is how new regions appear.
        if name not in KNOWN_LOCATIONS and name.rstrip("0123456789") not in KNOWN_LOCATIONS:
            close = difflib.get_close_matches(name, sorted(KNOWN_LOCATIONS), n=1, cutoff=0.85)
            if close:
                raise ValueError(f"{value!r} is not an Azure region; did you mean {close[0]!r}?")
        return name

    @field_validator("vnet_name", "subnet_name", "security_group_name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not _NAME.match(value):
            raise ValueError(f"{value!r} is not an Azure resource name: 1-80 letters, digits, '-', '_', '.'")
        return value

    @field_validator("base_url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("https://"):
            raise ValueError("must start with https:// (azure-core sends bearer tokens over TLS only)")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _checks(self) -> AzureSettings:
        if self.cluster_name.endswith("-internal"):
            raise ValueError(
                "cluster_name must not end in '-internal' (the internal LB is '<cluster>-internal')"
            )
        if self.auth == "static-token" and self.static_token is None:
            raise ValueError("auth=static-token needs static_token")
        return self

    @property
    def vnet_rg(self) -> str:
        return self.vnet_resource_group or self.resource_group
