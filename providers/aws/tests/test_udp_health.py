"""UDP under the Cluster policy (issue 10, item 7): the target group probes kube-proxy's /healthz
on 10256 (KEP-3836), and the node groups admit TCP 10256 from the VPC, through one cluster rule
that stays while any UDP target group of the cluster needs it and goes with the last one."""

from __future__ import annotations

from lbprov_aws import AWSProvider
from lbprov_aws.testing import (
    NODE_RULE_MODEL,
    AwsView,
    Svc,
    converge,
    delete_all,
    intent_of,
    node_objects,
)

from lbprov.provider import SandboxCloud

KUBE_PROXY = {("tcp", 10256, 10256, "10.0.0.0/16")}


#: The kube-proxy CIDR rule belongs to NLBs created without security groups (with groups, the
#: backend group is admitted on 10256).
#: (conftest.py's ``provider`` fixture builds the module's provider with these settings.)
PROVIDER_SETTINGS = NODE_RULE_MODEL


def test_udp_cluster_policy_probes_kube_proxy_and_the_shared_rule_follows_the_last_user(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    nodes = node_objects(cloud)
    dns = Svc(name="dns", ports=[(53, "UDP", 30053)])
    syslog = Svc(name="syslog", ports=[(514, "UDP", 30514)])
    for svc in (dns, syslog):
        converge(provider, intent_of(provider, svc, nodes))
    for svc in (dns, syslog):
        (tg,) = view.tgs(svc.uid)
        assert (tg["HealthCheckProtocol"], tg["HealthCheckPort"], tg["HealthCheckPath"]) == (
            "HTTP",
            "10256",
            "/healthz",
        )
    assert view.node_rules("kube-proxy") == KUBE_PROXY
    assert view.node_rules("health") == set()  # nothing probes the UDP NodePorts
    delete_all(provider, dns)
    assert view.node_rules("kube-proxy") == KUBE_PROXY  # syslog still needs it
    assert provider.plan(intent_of(provider, syslog, nodes)).empty
    delete_all(provider, syslog)
    assert view.node_rules("kube-proxy") == set()


def test_local_policy_udp_keeps_the_health_check_node_port(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    svc = Svc(
        name="dns",
        ports=[(53, "UDP", 30053)],
        spec={"externalTrafficPolicy": "Local", "healthCheckNodePort": 32053},
    )
    converge(provider, intent_of(provider, svc, node_objects(cloud)))
    (tg,) = view.tgs(svc.uid)
    assert (tg["HealthCheckProtocol"], tg["HealthCheckPort"]) == ("HTTP", "32053")
    assert view.node_rules("kube-proxy") == set()
