"""The emulator is strict and stateful like Compute Engine: checked through google-cloud-compute
(and raw HTTP where the SDK could not even send the bad request)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from google.api_core import exceptions as gexc
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1 as c

P = "lbprov-sandbox"
R = "us-central1"


class Api:
    """Plain SDK clients on the emulator, with the operations clients pointed at it too."""

    def __init__(self, url: str) -> None:
        opts = ClientOptions(api_endpoint=url)
        creds = AnonymousCredentials()
        self.url = url
        ops = {
            "region_operations": c.RegionOperationsClient(credentials=creds, client_options=opts),
            "zone_operations": c.ZoneOperationsClient(credentials=creds, client_options=opts),
            "global_operations": c.GlobalOperationsClient(credentials=creds, client_options=opts),
        }
        self.region_ops = ops["region_operations"]

        def make(cls: Any) -> Any:
            client = cls(credentials=creds, client_options=opts)
            client._transport._extended_operations_services.update(ops)
            return client

        self.hc = make(c.RegionHealthChecksClient)
        self.bs = make(c.RegionBackendServicesClient)
        self.fr = make(c.ForwardingRulesClient)
        self.addr = make(c.AddressesClient)
        self.fw = make(c.FirewallsClient)
        self.ig = make(c.InstanceGroupsClient)

    def health_check(self, name: str = "hc") -> None:
        self.hc.insert(
            project=P,
            region=R,
            health_check_resource=c.HealthCheck(
                name=name, type_="HTTP", http_health_check=c.HTTPHealthCheck(port=10256)
            ),
        ).result()

    def group(self, zone: str, name: str = "ig", members: tuple[str, ...] = ()) -> None:
        self.ig.insert(project=P, zone=zone, instance_group_resource=c.InstanceGroup(name=name)).result()
        if members:
            refs = [c.InstanceReference(instance=f"zones/{zone}/instances/{m}") for m in members]
            self.ig.add_instances(
                project=P,
                zone=zone,
                instance_group=name,
                instance_groups_add_instances_request_resource=c.InstanceGroupsAddInstancesRequest(
                    instances=refs
                ),
            ).result()

    def backend(
        self,
        name: str = "bs",
        *,
        scheme: str = "EXTERNAL",
        protocol: str = "TCP",
        groups: tuple[str, ...] = (),
    ) -> c.BackendService:
        body = c.BackendService(
            name=name,
            protocol=protocol,
            load_balancing_scheme=scheme,
            health_checks=[f"regions/{R}/healthChecks/hc"],
            backends=[c.Backend(group=g, balancing_mode="CONNECTION") for g in groups],
        )
        self.bs.insert(project=P, region=R, backend_service_resource=body).result()
        return self.bs.get(project=P, region=R, backend_service=name)

    def rule(self, name: str, **fields: Any) -> c.ForwardingRule:
        fields.setdefault("backend_service", f"regions/{R}/backendServices/bs")
        self.fr.insert(
            project=P, region=R, forwarding_rule_resource=c.ForwardingRule(name=name, **fields)
        ).result()
        return self.fr.get(project=P, region=R, forwarding_rule=name)


@pytest.fixture
def api(sandbox: Any) -> Api:
    return Api(sandbox.endpoint)


def reason(exc: gexc.GoogleAPICallError) -> str:
    return str(exc.errors[0]["reason"])


def test_unknown_fields_and_bad_json_are_rejected(sandbox):
    url = f"{sandbox.endpoint}/compute/v1/projects/{P}/regions/{R}/healthChecks"
    r = requests.post(url, json={"name": "hc", "type": "HTTP", "colour": "blue"}, timeout=5)
    assert r.status_code == 400
    assert 'Unknown name "colour"' in r.json()["error"]["message"]
    r = requests.post(url, json={"name": "hc", "type": "HTTP", "httpHealthCheck": {"prot": 80}}, timeout=5)
    assert r.status_code == 400 and "resource.httpHealthCheck" in r.json()["error"]["message"]
    r = requests.post(url, data=b"{not json", timeout=5)
    assert r.status_code == 400 and r.json()["error"]["errors"][0]["reason"] == "parseError"
    r = requests.get(url, params={"colour": "blue"}, timeout=5)
    assert r.status_code == 400


def test_errors_have_googles_json_shape(sandbox, api):
    r = requests.get(
        f"{sandbox.endpoint}/compute/v1/projects/{P}/regions/{R}/backendServices/nope", timeout=5
    )
    assert r.status_code == 404
    assert r.json() == {
        "error": {
            "code": 404,
            "message": f"The resource 'projects/{P}/regions/{R}/backendServices/nope' was not found",
            "errors": [
                {
                    "message": f"The resource 'projects/{P}/regions/{R}/backendServices/nope' was not found",
                    "domain": "global",
                    "reason": "notFound",
                }
            ],
        }
    }
    with pytest.raises(gexc.NotFound):
        api.fr.get(project=P, region=R, forwarding_rule="nope")
    api.health_check()
    with pytest.raises(gexc.Conflict) as err:
        api.health_check()
    assert reason(err.value) == "alreadyExists"


def test_invalid_enum_values_are_rejected(api):
    api.health_check()
    with pytest.raises(gexc.BadRequest, match=r"sessionAffinity.*STICKY"):
        api.bs.insert(
            project=P,
            region=R,
            backend_service_resource=c.BackendService(
                name="bs",
                protocol="TCP",
                load_balancing_scheme="EXTERNAL",
                session_affinity="STICKY",
                health_checks=[f"regions/{R}/healthChecks/hc"],
            ),
        )
    with pytest.raises(gexc.BadRequest, match="GENERATED_COOKIE"):
        api.bs.insert(
            project=P,
            region=R,
            backend_service_resource=c.BackendService(
                name="bs",
                protocol="TCP",
                load_balancing_scheme="EXTERNAL",
                session_affinity="GENERATED_COOKIE",
                health_checks=[f"regions/{R}/healthChecks/hc"],
            ),
        )


def test_backend_services_validate_their_references_and_balancing_mode(sandbox, api):
    zone = sandbox.nodes[0].zone
    with pytest.raises(gexc.BadRequest, match="healthChecks/missing' was not found"):
        api.bs.insert(
            project=P,
            region=R,
            backend_service_resource=c.BackendService(
                name="bs",
                protocol="TCP",
                load_balancing_scheme="EXTERNAL",
                health_checks=[f"regions/{R}/healthChecks/missing"],
            ),
        )
    api.health_check()
    with pytest.raises(gexc.BadRequest, match="instanceGroups/missing' was not found"):
        api.backend(groups=(f"zones/{zone}/instanceGroups/missing",))
    api.group(zone)
    with pytest.raises(gexc.BadRequest, match="only CONNECTION"):  # the API's default is UTILIZATION
        api.bs.insert(
            project=P,
            region=R,
            backend_service_resource=c.BackendService(
                name="bs",
                protocol="TCP",
                load_balancing_scheme="EXTERNAL",
                health_checks=[f"regions/{R}/healthChecks/hc"],
                backends=[c.Backend(group=f"zones/{zone}/instanceGroups/ig")],
            ),
        )
    with pytest.raises(gexc.BadRequest, match=r"protocol.*HTTP"):  # default protocol HTTP is not passthrough
        api.bs.insert(
            project=P,
            region=R,
            backend_service_resource=c.BackendService(
                name="bs", load_balancing_scheme="EXTERNAL", health_checks=[f"regions/{R}/healthChecks/hc"]
            ),
        )
    assert (
        api.backend(groups=(f"zones/{zone}/instanceGroups/ig",))
        .backends[0]
        .group.endswith("/instanceGroups/ig")
    )


def test_resources_in_use_cannot_be_deleted(sandbox, api):
    zone = sandbox.nodes[0].zone
    api.health_check()
    api.group(zone)
    api.backend(groups=(f"zones/{zone}/instanceGroups/ig",))
    api.addr.insert(project=P, region=R, address_resource=c.Address(name="ip")).result()
    ip = api.addr.get(project=P, region=R, address="ip")
    assert ip.status == "RESERVED" and ip.address.startswith("203.0.113.")
    api.rule("fr", I_p_address=ip.address, ports=["80"])
    used = api.addr.get(project=P, region=R, address="ip")
    assert used.status == "IN_USE" and used.users[0].endswith("/forwardingRules/fr")
    for call in (
        lambda: api.hc.delete(project=P, region=R, health_check="hc"),
        lambda: api.ig.delete(project=P, zone=zone, instance_group="ig"),
        lambda: api.bs.delete(project=P, region=R, backend_service="bs"),
    ):
        with pytest.raises(gexc.BadRequest) as err:
            call()
        assert reason(err.value) == "resourceInUseByAnotherResource"
    api.fr.delete(project=P, region=R, forwarding_rule="fr").result()
    api.addr.delete(project=P, region=R, address="ip").result()
    api.bs.delete(project=P, region=R, backend_service="bs").result()
    api.hc.delete(project=P, region=R, health_check="hc").result()
    api.ig.delete(project=P, zone=zone, instance_group="ig").result()


def test_releasing_an_address_a_forwarding_rule_holds_demotes_the_ip_to_ephemeral(sandbox, api):
    zone = sandbox.nodes[0].zone
    api.health_check()
    api.group(zone)
    api.backend(groups=(f"zones/{zone}/instanceGroups/ig",))
    api.addr.insert(project=P, region=R, address_resource=c.Address(name="ip")).result()
    ip = api.addr.get(project=P, region=R, address="ip").address
    api.rule("fr", I_p_address=ip, ports=["80"])
    api.addr.delete(project=P, region=R, address="ip").result()
    assert api.fr.get(project=P, region=R, forwarding_rule="fr").I_p_address == ip
    assert not list(api.addr.list(project=P, region=R))
    # promoting it again (reserving the IP the rule holds) works too
    api.addr.insert(project=P, region=R, address_resource=c.Address(name="again", address=ip)).result()
    assert api.addr.get(project=P, region=R, address="again").status == "IN_USE"


def test_forwarding_rules_are_strict_about_ports_scheme_and_backends(api):
    api.health_check()
    api.backend()
    bad = [
        ({"ports": ["1", "2", "3", "4", "5", "6"]}, "at most 5 ports"),
        ({"ports": ["80"], "all_ports": True}, "mutually exclusive"),
        ({"ports": ["80-70"]}, "port or port range"),
        ({"load_balancing_scheme": "INTERNAL", "backend_service": ""}, "needs a backend service"),
        (
            {"load_balancing_scheme": "INTERNAL", "ports": ["80"]},
            "does not match the backend service's scheme",
        ),
        ({"I_p_protocol": "UDP", "ports": ["53"]}, "does not match the backend service's protocol"),
        (
            {"ports": ["80"], "subnetwork": f"regions/{R}/subnetworks/lbprov-subnet"},
            "must not be set for an EXTERNAL",
        ),
        ({"ports": ["80"], "I_p_address": "203.0.113.200"}, "must be reserved"),
        # a target pool rule names no backend service (tests/test_legacy_target_pools.py has the rest)
        (
            {"port_range": "80", "target": f"regions/{R}/targetPools/tp"},
            "either a target or a backendService",
        ),
        ({"ports": ["80"], "load_balancing_scheme": "EXTERNAL_MANAGED"}, "not supported"),
    ]
    for fields, message in bad:
        with pytest.raises(gexc.BadRequest, match=message):
            api.rule("fr", **fields)
    rule = api.rule("fr", ports=["80"])
    with pytest.raises(gexc.BadRequest, match="cannot be updated"):
        api.fr.patch(
            project=P,
            region=R,
            forwarding_rule="fr",
            forwarding_rule_resource=c.ForwardingRule(ports=["81"], fingerprint=rule.fingerprint),
        )


def test_internal_rules_take_ips_from_the_subnetwork_and_share_only_a_shared_vip(api, sandbox):
    api.health_check()
    api.backend("ibs-tcp", scheme="INTERNAL")
    api.backend("ibs-udp", scheme="INTERNAL", protocol="UDP")
    subnet = f"regions/{R}/subnetworks/lbprov-subnet"
    with pytest.raises(gexc.BadRequest, match="needs a subnetwork"):
        api.rule(
            "missing-subnet",
            load_balancing_scheme="INTERNAL",
            backend_service=f"regions/{R}/backendServices/ibs-tcp",
            ports=["80"],
        )
    with pytest.raises(gexc.BadRequest, match="needs ports or allPorts"):
        api.rule(
            "no-ports",
            load_balancing_scheme="INTERNAL",
            backend_service=f"regions/{R}/backendServices/ibs-tcp",
            subnetwork=subnet,
        )
    eph = api.rule(
        "eph",
        load_balancing_scheme="INTERNAL",
        backend_service=f"regions/{R}/backendServices/ibs-tcp",
        subnetwork=subnet,
        all_ports=True,
    )
    assert eph.I_p_address.startswith("10.128.") and eph.I_p_address not in {
        n.internal_ip for n in sandbox.nodes
    }
    with pytest.raises(gexc.BadRequest, match="needs a reserved address"):
        api.rule(
            "eph2",
            load_balancing_scheme="INTERNAL",
            I_p_protocol="UDP",
            backend_service=f"regions/{R}/backendServices/ibs-udp",
            subnetwork=subnet,
            all_ports=True,
            I_p_address=eph.I_p_address,
        )
    with pytest.raises(gexc.BadRequest, match="not a usable address"):
        api.addr.insert(
            project=P,
            region=R,
            address_resource=c.Address(
                name="outside", address_type="INTERNAL", subnetwork=subnet, address="10.200.0.5"
            ),
        )
    api.addr.insert(
        project=P,
        region=R,
        address_resource=c.Address(name="plain", address_type="INTERNAL", subnetwork=subnet),
    ).result()
    plain = api.addr.get(project=P, region=R, address="plain").address
    api.rule(
        "on-plain",
        load_balancing_scheme="INTERNAL",
        backend_service=f"regions/{R}/backendServices/ibs-tcp",
        subnetwork=subnet,
        ports=["80"],
        I_p_address=plain,
    )
    with pytest.raises(gexc.BadRequest, match="SHARED_LOADBALANCER_VIP"):
        api.rule(
            "on-plain-udp",
            load_balancing_scheme="INTERNAL",
            I_p_protocol="UDP",
            backend_service=f"regions/{R}/backendServices/ibs-udp",
            subnetwork=subnet,
            ports=["53"],
            I_p_address=plain,
        )


def test_fingerprints_are_required_and_checked_on_update(api):
    api.health_check()
    current = api.backend()
    change = c.BackendService(session_affinity="CLIENT_IP")
    with pytest.raises(gexc.PreconditionFailed, match="fingerprint"):
        api.bs.patch(project=P, region=R, backend_service="bs", backend_service_resource=change)
    change.fingerprint = "c3RhbGU="
    with pytest.raises(gexc.PreconditionFailed) as err:
        api.bs.patch(project=P, region=R, backend_service="bs", backend_service_resource=change)
    assert reason(err.value) == "conditionNotMet"
    change.fingerprint = current.fingerprint
    api.bs.patch(project=P, region=R, backend_service="bs", backend_service_resource=change).result()
    updated = api.bs.get(project=P, region=R, backend_service="bs")
    assert updated.session_affinity == "CLIENT_IP" and updated.fingerprint != current.fingerprint
    with pytest.raises(gexc.BadRequest, match="cannot be changed"):
        api.bs.patch(
            project=P,
            region=R,
            backend_service="bs",
            backend_service_resource=c.BackendService(
                load_balancing_scheme="INTERNAL", fingerprint=updated.fingerprint
            ),
        )


def test_list_filters_paging_and_aggregated_lists(sandbox, api):
    for name in ("alpha", "beta", "alphabet", "gamma"):
        api.health_check(name)
    names = lambda f: sorted(h.name for h in api.hc.list(request={"project": P, "region": R, "filter": f}))  # noqa: E731
    assert names('name eq "alpha.*"') == ["alpha", "alphabet"]
    assert names('name = "beta"') == ["beta"]
    assert names('name != "beta"') == ["alpha", "alphabet", "gamma"]
    assert names('(name = "beta") OR (name = "gamma")') == ["beta", "gamma"]
    assert names('(name eq "alpha.*") AND (name ne "alpha")') == ["alphabet"]
    with pytest.raises(gexc.BadRequest, match="Invalid list filter"):
        names("name ~~ x")
    # paging: the SDK's pager follows nextPageToken
    pages = api.hc.list(request={"project": P, "region": R, "max_results": 3})
    assert [h.name for h in pages] == ["alpha", "alphabet", "beta", "gamma"]
    assert len([p for p in api.hc.list(request={"project": P, "region": R, "max_results": 3}).pages]) == 2
    zones = sorted({n.zone for n in sandbox.nodes})
    for zone in zones:
        api.group(zone, "k8s-ig--x")
    agg = dict(api.ig.aggregated_list(request={"project": P, "filter": 'name = "k8s-ig--x"'}))
    assert sorted(k for k, v in agg.items() if v.instance_groups) == [f"zones/{z}" for z in zones]


def test_instance_group_membership_is_validated(sandbox, api):
    a = [n for n in sandbox.nodes if n.zone == sandbox.nodes[0].zone]
    other = next(n for n in sandbox.nodes if n.zone != a[0].zone)
    api.group(a[0].zone, members=(a[0].name,))
    add = lambda zone, name: api.ig.add_instances(  # noqa: E731
        project=P,
        zone=a[0].zone,
        instance_group="ig",
        instance_groups_add_instances_request_resource=c.InstanceGroupsAddInstancesRequest(
            instances=[c.InstanceReference(instance=f"zones/{zone}/instances/{name}")]
        ),
    )
    with pytest.raises(gexc.BadRequest) as err:
        add(a[0].zone, a[0].name)
    assert reason(err.value) == "memberAlreadyExists"
    with pytest.raises(gexc.BadRequest, match="not in zone"):
        add(other.zone, other.name)
    with pytest.raises(gexc.BadRequest, match="was not found"):
        add(a[0].zone, "ghost")
    listed = api.ig.list_instances(
        project=P,
        zone=a[0].zone,
        instance_group="ig",
        instance_groups_list_instances_request_resource=c.InstanceGroupsListInstancesRequest(
            instance_state="ALL"
        ),
    )
    assert [i.instance.split("/")[-1] for i in listed] == [a[0].name]
    assert api.ig.get(project=P, zone=a[0].zone, instance_group="ig").size == 1


def test_operations_run_and_the_sdks_result_waits_for_them(api, server):
    server.emulator.operation_delay = 0.3
    op = api.hc.insert(
        project=P,
        region=R,
        health_check_resource=c.HealthCheck(
            name="slow", type_="TCP", tcp_health_check=c.TCPHealthCheck(port=1)
        ),
    )
    assert op.status == c.Operation.Status.RUNNING
    waited = api.region_ops.wait(project=P, region=R, operation=op.name)
    assert waited.status == c.Operation.Status.DONE and waited.target_link.endswith("/healthChecks/slow")
    op2 = api.hc.delete(project=P, region=R, health_check="slow")
    start = time.monotonic()
    op2.result(timeout=10)  # polls regionOperations.get on the emulator
    assert time.monotonic() - start >= 0.2
    assert any(r.operation == "regionOperations.get" for r in server.requests)


def test_request_ids_make_inserts_idempotent(sandbox):
    url = f"{sandbox.endpoint}/compute/v1/projects/{P}/regions/{R}/healthChecks"
    body = {"name": "once", "type": "TCP", "tcpHealthCheck": {"port": 1}}
    first = requests.post(url, json=body, params={"requestId": "abc"}, timeout=5).json()
    second = requests.post(url, json=body, params={"requestId": "abc"}, timeout=5).json()
    assert first["name"] == second["name"] and first["kind"] == "compute#operation"
    assert requests.post(url, json=body, params={"requestId": "other"}, timeout=5).status_code == 409


def test_faults_and_the_request_log(api, server):
    fault = server.inject(429, count=1, operations=["regionHealthChecks.insert"])
    with pytest.raises(gexc.TooManyRequests):
        api.health_check()
    api.health_check()
    assert fault.fired == 1
    server.inject(503, every_n=2, operations=["read"])
    api.hc.get(project=P, region=R, health_check="hc")
    with pytest.raises(gexc.ServiceUnavailable):
        api.hc.get(project=P, region=R, health_check="hc", retry=None)
    log = server.requests
    assert [(r.operation, r.status) for r in log[:2]] == [
        ("regionHealthChecks.insert", 429),
        ("regionHealthChecks.insert", 200),
    ]
    assert server.mutating_requests() == [f"POST /compute/v1/projects/{P}/regions/{R}/healthChecks"] * 2


def test_seeded_instances_carry_zone_ip_and_network_tags(sandbox):
    creds = AnonymousCredentials()
    instances = c.InstancesClient(
        credentials=creds, client_options=ClientOptions(api_endpoint=sandbox.endpoint)
    )
    zones = sorted({n.zone for n in sandbox.nodes})
    assert len(zones) == 2
    for node in sandbox.nodes:
        inst = instances.get(project=P, zone=node.zone, instance=node.name)
        assert inst.network_interfaces[0].network_i_p == node.internal_ip
        assert list(inst.tags.items) == ["k8s-sandbox-node"]
        assert node.provider_id == f"gce://{P}/{node.zone}/{node.name}"
    listed = [i.name for i in instances.list(project=P, zone=zones[0])]
    assert listed == sorted(n.name for n in sandbox.nodes if n.zone == zones[0])
    added = sandbox.add_node("late")
    assert instances.get(project=P, zone=added.zone, instance="late").status == "RUNNING"


def test_an_instance_in_two_load_balanced_groups_is_refused_with_gces_error(sandbox, api):
    zone = sandbox.nodes[0].zone
    node = sandbox.nodes[0].name
    api.health_check()
    api.group(zone, "first", members=(node,))
    api.group(zone, "second", members=(node,))  # two groups are fine while neither is load-balanced
    api.backend("bs1", groups=(f"zones/{zone}/instanceGroups/first",))
    with pytest.raises(gexc.BadRequest) as err:
        api.backend("bs2", groups=(f"zones/{zone}/instanceGroups/second",))
    assert reason(err.value) == "instanceInMultipleLoadBalancedIgs"
    assert f"zones/{zone}/instances/{node}" in err.value.message
    assert "instance may belong to at most one load-balanced instance group" in err.value.message
    # adding the instance to a load-balanced group while it is in another one is refused too
    other = next(n for n in sandbox.nodes[1:] if n.zone == zone).name
    api.group(zone, "third", members=(other,))
    api.backend("bs3", groups=(f"zones/{zone}/instanceGroups/third",))
    with pytest.raises(gexc.BadRequest) as err:
        api.ig.add_instances(
            project=P,
            zone=zone,
            instance_group="third",
            instance_groups_add_instances_request_resource=c.InstanceGroupsAddInstancesRequest(
                instances=[c.InstanceReference(instance=f"zones/{zone}/instances/{node}")]
            ),
        ).result()
    assert reason(err.value) == "instanceInMultipleLoadBalancedIgs"
    members = api.ig.list_instances(project=P, zone=zone, instance_group="third")
    assert [m.instance.split("/")[-1] for m in members] == [other]


def test_set_labels_needs_the_current_label_fingerprint(sandbox, api):
    zone = sandbox.nodes[0].zone
    api.health_check()
    api.group(zone)
    api.backend(groups=(f"zones/{zone}/instanceGroups/ig",))
    fr = api.rule("fr", ports=["80"])
    assert fr.label_fingerprint  # every labelled resource has one, labels or not
    stale = c.RegionSetLabelsRequest(labels={"a": "b"}, label_fingerprint="c3RhbGU=")
    with pytest.raises(gexc.PreconditionFailed):
        api.fr.set_labels(
            project=P, region=R, resource="fr", region_set_labels_request_resource=stale
        ).result()
    fresh = c.RegionSetLabelsRequest(labels={"a": "b"}, label_fingerprint=fr.label_fingerprint)
    api.fr.set_labels(project=P, region=R, resource="fr", region_set_labels_request_resource=fresh).result()
    after = api.fr.get(project=P, region=R, forwarding_rule="fr")
    assert dict(after.labels) == {"a": "b"} and after.label_fingerprint != fr.label_fingerprint
    bad = c.RegionSetLabelsRequest(labels={"Bad.Key": "x"}, label_fingerprint=after.label_fingerprint)
    with pytest.raises(gexc.BadRequest):
        api.fr.set_labels(project=P, region=R, resource="fr", region_set_labels_request_resource=bad).result()
