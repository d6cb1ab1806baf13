"""Bad input: malformed Azure annotations and settings give clear errors and make no cloud call."""

from __future__ import annotations

import pytest
from lbprov_azure import AzureProvider

from lbprov.intent import IntentSettings, build_intent
from lbprov.model import InvalidService
from lbprov.settings import SettingsError

P = "service.beta.kubernetes.io/azure-"
BAD_ANNOTATIONS = [
    ({P + "load-balancer-internal": "yes"}, "load-balancer-internal", "true, false"),
    ({P + "load-balancer-internal-subnet": "services"}, "internal-subnet", "internal Services only"),
    (
        {P + "load-balancer-internal": "true", P + "load-balancer-internal-subnet": "bad/subnet"},
        "internal-subnet",
        "subnet name",
    ),
    ({P + "load-balancer-ipv4": "10.0.0.300"}, "load-balancer-ipv4", "IPv4 address"),
    ({P + "load-balancer-ipv4": "2001:db8::1"}, "load-balancer-ipv4", "IPv4 address"),
    ({P + "pip-name": "x" * 81}, "pip-name", "1-80"),
    ({P + "load-balancer-internal": "true", P + "pip-name": "mine"}, "pip-name", "no public IP"),
    ({P + "dns-label-name": "Bad_Label"}, "dns-label-name", "lowercase"),
    ({P + "pip-tags": "novalue"}, "pip-tags", "key=value"),
    ({P + "pip-tags": "a/b=1"}, "pip-tags", "<>%&"),
    ({P + "pip-tags": "lbprov.io_service-uid=x"}, "pip-tags", "managed by lbprov"),
    ({P + "load-balancer-tcp-idle-timeout": "3"}, "tcp-idle-timeout", "4-100"),
    ({P + "load-balancer-tcp-idle-timeout": "ten"}, "tcp-idle-timeout", "4-100"),
    ({P + "load-balancer-disable-tcp-reset": "maybe"}, "disable-tcp-reset", "true, false"),
    ({P + "load-balancer-health-probe-protocol": "icmp"}, "health-probe-protocol", "Tcp, Http, Https"),
    ({P + "load-balancer-health-probe-interval": "1"}, "health-probe-interval", "5-119"),
    ({P + "load-balancer-health-probe-interval": "4"}, "health-probe-interval", "5-119"),
    ({P + "load-balancer-health-probe-num-of-probe": "0"}, "num-of-probe", "2-24"),
    ({P + "load-balancer-health-probe-num-of-probe": "1"}, "num-of-probe", "2-24"),
    (
        {P + "load-balancer-health-probe-interval": "20", P + "load-balancer-health-probe-num-of-probe": "6"},
        "num-of-probe",
        "below 120 s",
    ),
    ({P + "load-balancer-health-probe-interval": "60"}, "health-probe-interval", "below 120 s"),
    ({P + "load-balancer-health-probe-request-path": "healthz"}, "request-path", "starting with '/'"),
    (
        {
            P + "load-balancer-health-probe-protocol": "Tcp",
            P + "load-balancer-health-probe-request-path": "/x",
        },
        "request-path",
        "Tcp probe",
    ),
    ({P + "load-balancer-resource-group": "bad rg!"}, "resource-group", "resource group name"),
    ({P + "disable-load-balancer-nsg-rule": "2"}, "nsg-rule", "true, false"),
    (
        {P + "load-balancer-enable-high-availability-ports": "true"},
        "high-availability-ports",
        "internal Standard load balancers only",
    ),
    (
        {
            P + "load-balancer-internal": "true",
            P + "load-balancer-enable-high-availability-ports": "true",
            P + "disable-load-balancer-floating-ip": "true",
        },
        "high-availability-ports",
        "always uses floating IP",
    ),
    ({P + "allowed-service-tags": "Azure Front Door"}, "allowed-service-tags", "service tag"),
    ({P + "allowed-ip-ranges": "10.0.0.0/33"}, "allowed-ip-ranges", "CIDRs"),
    ({P + "allowed-ip-ranges": "2001:db8::/32"}, "allowed-ip-ranges", "no IP family of the Service"),
    (
        {
            P + "deny-all-except-load-balancer-source-ranges": "true",
            P + "disable-load-balancer-floating-ip": "true",
        },
        "deny-all-except",
        "refuses the combination",
    ),
    ({P + "pip-prefix-id": "my-prefix"}, "pip-prefix-id", "publicIPPrefixes/<name>"),
    (
        {
            P
            + "pip-prefix-id": "/subscriptions/s/resourceGroups/r/providers/Microsoft.Network/publicIPPrefixes/p",
            P + "pip-name": "x",
        },
        "pip-prefix-id",
        "an existing public IP",
    ),
    ({P + "pip-ip-tags": "RoutingPreference"}, "pip-ip-tags", "ipTagType=tag"),
    ({P + "pip-ip-tags": "A=b", P + "load-balancer-internal": "true"}, "pip-ip-tags", "no public IP"),
    ({P + "additional-public-ips": "1.2.3"}, "additional-public-ips", "not an IP address"),
]


@pytest.mark.parametrize(("annotations", "field", "accepted"), BAD_ANNOTATIONS)
def test_bad_annotation_is_a_clear_error_with_no_cloud_call(
    provider, intent_for, make_service, sandbox, annotations, field, accepted
):
    before = len(sandbox.extra["state"].log)
    with pytest.raises(InvalidService) as info:
        intent_for(make_service(annotations=annotations))
    assert field in info.value.field and accepted in str(info.value)
    assert provider.calls.stats.reads == provider.calls.stats.writes == 0
    assert len(sandbox.extra["state"].log) == before  # nothing reached the emulator


def test_load_balancer_ip_conflicting_with_the_ipv4_annotation(intent_for, make_service):
    with pytest.raises(InvalidService, match="set only one of them"):
        intent_for(make_service(lb_ip="10.240.3.9", annotations={P + "load-balancer-ipv4": "10.240.3.10"}))


def test_requested_public_ip_that_does_not_exist_is_a_clear_error(provider, intent_for, make_service):
    with pytest.raises(InvalidService, match=r"no public IP address with address 192\.0\.2\.77"):
        provider.plan(intent_for(make_service(lb_ip="192.0.2.77")))
    assert provider.calls.stats.writes == 0


def test_too_many_ports_for_one_load_balancer(intent_for, make_service):
    with pytest.raises(InvalidService, match="at most 300 load-balancing rules"):
        intent_for(make_service(ports=[("TCP", p) for p in range(1000, 1301)]))


def test_allocate_load_balancer_node_ports_false_is_rejected(intent_for, make_service):
    svc = make_service()
    svc["spec"]["allocateLoadBalancerNodePorts"] = False
    for p in svc["spec"]["ports"]:
        del p["nodePort"]
    with pytest.raises(InvalidService, match="allocateLoadBalancerNodePorts"):
        intent_for(svc)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"subscription_id": None}, "subscription_id"),
        ({"resource_group": "bad rg!"}, "resource group name"),
        ({"base_url": "http://127.0.0.1:1"}, "https://"),
        ({"cluster_name": "prod-internal"}, "-internal"),
        ({"cluster_name": "bad name!"}, "cluster name"),
        ({"cluster_name": "x" * 101}, "cluster name"),
        ({"auth": "static-token", "static_token": None}, "static_token"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"unknown_setting": 1}, "unknown_setting"),
    ],
)
def test_bad_settings_are_clear_errors(sandbox, override, message):
    settings = {**sandbox.settings, **override}
    settings = {k: v for k, v in settings.items() if v is not None}
    with pytest.raises(SettingsError, match=message):
        AzureProvider.from_settings(settings)


def test_settings_never_show_the_token(sandbox):
    provider = AzureProvider.from_settings(sandbox.settings)
    assert "sandbox-token" not in repr(provider.settings)
    assert "sandbox-token" not in str(provider.settings.model_dump())


def test_a_port_without_node_port_is_refused_by_the_plan_not_written_as_a_null_backend_port(
    provider, nodes, make_service
):
    """The intent builder refuses it for Azure; an Intent built without that check (here
    ``require_node_ports=False``) reaches the plan, which names the field instead of writing
    ``backendPort: null``."""
    svc = make_service()
    for p in svc["spec"]["ports"]:
        del p["nodePort"]
    intent = build_intent(
        svc, nodes, IntentSettings(cluster=provider.settings.cluster_name, require_node_ports=False), provider
    )
    assert all(p.node_port is None for p in intent.ports)
    with pytest.raises(InvalidService, match=r"nodePort: no NodePort") as info:
        provider.plan(intent)
    assert info.value.field.startswith("spec.ports[")
    assert provider.calls.stats.writes == 0
