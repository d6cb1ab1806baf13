"""Every key of the Azure annotation namespaces is implemented, refused with its reason, or
deprecated (accepted without effect); none is silently ignored, and the README lists them all."""

from __future__ import annotations

from pathlib import Path

import pytest
from lbprov_azure.annotation_keys import PORT_KEYS, PREFIX, SERVICE_KEYS
from lbprov_azure.options import AzureOptions

from lbprov.model import InvalidService

README = Path(__file__).parent.parent / "README.md"
PORT = "service.beta.kubernetes.io/port_80_"
#: A valid use of each implemented key (with what it needs beside it).
VALID: dict[str, dict[str, str]] = {
    "load-balancer-internal": {PREFIX + "load-balancer-internal": "true"},
    "load-balancer-internal-subnet": {
        PREFIX + "load-balancer-internal": "true",
        PREFIX + "load-balancer-internal-subnet": "services",
    },
    "load-balancer-ipv4": {PREFIX + "load-balancer-ipv4": "198.18.0.9"},
    "pip-name": {PREFIX + "pip-name": "my-ip"},
    "dns-label-name": {PREFIX + "dns-label-name": "my-label"},
    "pip-tags": {PREFIX + "pip-tags": "team=web"},
    "load-balancer-resource-group": {PREFIX + "load-balancer-resource-group": "other-rg"},
    "load-balancer-tcp-idle-timeout": {PREFIX + "load-balancer-tcp-idle-timeout": "10"},
    "load-balancer-disable-tcp-reset": {PREFIX + "load-balancer-disable-tcp-reset": "true"},
    "load-balancer-health-probe-protocol": {PREFIX + "load-balancer-health-probe-protocol": "Http"},
    "load-balancer-health-probe-interval": {PREFIX + "load-balancer-health-probe-interval": "10"},
    "load-balancer-health-probe-num-of-probe": {PREFIX + "load-balancer-health-probe-num-of-probe": "3"},
    "load-balancer-health-probe-request-path": {PREFIX + "load-balancer-health-probe-request-path": "/ok"},
    "disable-load-balancer-nsg-rule": {PREFIX + "disable-load-balancer-nsg-rule": "true"},
    "disable-load-balancer-floating-ip": {PREFIX + "disable-load-balancer-floating-ip": "true"},
    "load-balancer-configurations": {PREFIX + "load-balancer-configurations": "c1,c1-2"},
    "pip-prefix-id": {
        PREFIX
        + "pip-prefix-id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/publicIPPrefixes/p"
    },
    "pip-ip-tags": {PREFIX + "pip-ip-tags": "RoutingPreference=Internet"},
    "allowed-service-tags": {PREFIX + "allowed-service-tags": "AzureFrontDoor.Backend"},
    "allowed-ip-ranges": {PREFIX + "allowed-ip-ranges": "10.0.0.0/8"},
    "deny-all-except-load-balancer-source-ranges": {
        PREFIX + "deny-all-except-load-balancer-source-ranges": "true",
        PREFIX + "allowed-ip-ranges": "10.0.0.0/8",
    },
    "load-balancer-enable-high-availability-ports": {
        PREFIX + "load-balancer-internal": "true",
        PREFIX + "load-balancer-enable-high-availability-ports": "true",
    },
    "additional-public-ips": {PREFIX + "additional-public-ips": "203.0.113.7"},
    "no_lb_rule": {PORT + "no_lb_rule": "true"},
    "no_probe_rule": {PORT + "no_probe_rule": "true"},
    "health-probe_protocol": {PORT + "health-probe_protocol": "Https"},
    "health-probe_port": {PORT + "health-probe_port": "8080"},
    "health-probe_interval": {PORT + "health-probe_interval": "7"},
    "health-probe_num-of-probe": {PORT + "health-probe_num-of-probe": "4"},
    "health-probe_request-path": {PORT + "health-probe_request-path": "/live"},
}


def _all_keys() -> list[tuple[str, str, str]]:
    """(table key, annotation key, status) for every row of the table."""
    rows = [(k, PREFIX + k, v.status) for k, v in SERVICE_KEYS.items()]
    rows += [(k, PORT + k, v.status) for k, v in PORT_KEYS.items()]
    return rows


def _options(intent_for, make_service, annotations: dict[str, str]) -> AzureOptions:
    opts = intent_for(make_service(ports=[("TCP", 80), ("TCP", 8080)], annotations=annotations)).options
    assert isinstance(opts, AzureOptions)
    return opts


@pytest.mark.parametrize(("name", "key", "status"), _all_keys(), ids=[r[0] for r in _all_keys()])
def test_every_key_is_implemented_refused_or_deprecated(intent_for, make_service, sandbox, name, key, status):
    default = _options(intent_for, make_service, {})
    if status == "implemented":
        assert name in VALID, f"no valid example for implemented key {name}"
        assert key in VALID[name]
        opts = _options(intent_for, make_service, VALID[name])
        assert opts != default, f"{key} was accepted but changed nothing"
    elif status == "deprecated":
        assert _options(intent_for, make_service, {key: "true"}) == default
    else:
        before = len(sandbox.extra["state"].log)
        with pytest.raises(InvalidService) as info:
            _options(intent_for, make_service, {key: "true"})
        assert key in info.value.field
        assert SERVICE_KEYS.get(name, PORT_KEYS.get(name)).meaning in str(info.value)  # type: ignore[union-attr]
        assert len(sandbox.extra["state"].log) == before


@pytest.mark.parametrize(
    "key",
    [
        PREFIX + "load-balancer-internl",
        PREFIX + "pip-nmae",
        "service.beta.kubernetes.io/port_80_no_lb_rules",
        "service.beta.kubernetes.io/port_x_no_lb_rule",
    ],
)
def test_an_unknown_key_of_the_namespaces_is_refused(intent_for, make_service, key):
    with pytest.raises(InvalidService, match="unknown") as info:
        _options(intent_for, make_service, {key: "true"})
    assert key in info.value.field


def test_the_readme_table_has_every_key_with_its_status():
    text = README.read_text()
    for name, _, status in _all_keys():
        shown = f"`azure-{name}`" if name in SERVICE_KEYS else f"`port_<port>_{name}`"
        assert f"| {shown} | {status} |" in text, shown
