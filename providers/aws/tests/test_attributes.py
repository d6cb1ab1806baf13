"""NLB `attributes` and `target-group-attributes` (issue 10, features): upstream's syntax, only the
keys set are reconciled (drift on them repaired, AWS defaults never reverted), deletion protection
honoured; through boto3 against the strict sandbox."""

from __future__ import annotations

from typing import Any

import pytest
from lbprov_aws import AWSProvider
from lbprov_aws.attributes import DeletionProtected
from lbprov_aws.testing import ANN, AwsView, Svc, converge, delete_all, intent_of, node_objects

from lbprov.model import Action, InvalidService
from lbprov.provider import SandboxCloud

TG = ANN + "target-group-attributes"
LB = ANN + "attributes"


def _tg_attrs(view: AwsView, uid: str) -> dict[str, str]:
    [tg] = view.tgs(uid)
    attrs: dict[str, str] = tg["Attributes"]
    return attrs


def _lb(view: AwsView, uid: str) -> dict[str, Any]:
    [lb] = view.nlbs(uid)
    return lb


def test_target_group_attributes_are_set_and_only_they_are_reconciled(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    svc = Svc(annotations={TG: "deregistration_delay.timeout_seconds=120, preserve_client_ip.enabled=false"})
    converge(provider, intent_of(provider, svc, node_objects(cloud)))
    attrs = _tg_attrs(view, svc.uid)
    assert attrs["deregistration_delay.timeout_seconds"] == "120"
    assert attrs["preserve_client_ip.enabled"] == "false"

    # Drift on a key the user set is repaired, and the plan shows it.
    [tg] = view.tgs(svc.uid)
    view.elbv2.modify_target_group_attributes(
        TargetGroupArn=tg["TargetGroupArn"],
        Attributes=[
            {"Key": "deregistration_delay.timeout_seconds", "Value": "30"},
            # A key the user did not set, changed by hand: not lbprov's to revert.
            {"Key": "deregistration_delay.connection_termination.enabled", "Value": "true"},
        ],
    )
    intent = intent_of(provider, svc, node_objects(cloud))
    plan = provider.plan(intent)
    [change] = plan.changes
    assert change.action is Action.UPDATE and change.kind == "target-group"
    assert change.before is not None and change.after is not None
    assert change.before["attributes"]["deregistration_delay.timeout_seconds"] == "30"
    assert change.after["attributes"]["deregistration_delay.timeout_seconds"] == "120"
    assert "deregistration_delay.connection_termination.enabled" not in change.after["attributes"]
    converge(provider, intent)
    attrs = _tg_attrs(view, svc.uid)
    assert attrs["deregistration_delay.timeout_seconds"] == "120"
    assert attrs["deregistration_delay.connection_termination.enabled"] == "true"

    # A key removed from the annotation is left as it is (aws-load-balancer-controller's semantics).
    svc.annotations = {TG: "preserve_client_ip.enabled=false"}
    assert provider.plan(intent_of(provider, svc, node_objects(cloud))).empty
    assert _tg_attrs(view, svc.uid)["deregistration_delay.timeout_seconds"] == "120"


def test_no_attribute_annotation_writes_no_attribute_of_a_new_target_group(
    provider: AWSProvider, cloud: SandboxCloud
) -> None:
    svc = Svc()
    converge(provider, intent_of(provider, svc, node_objects(cloud)))
    assert not [r for r in cloud.mutating_requests() if "TargetGroupAttributes" in str(r)]


def test_load_balancer_attributes_access_logs_and_cross_zone(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    cloud.extra["sandbox"].client("s3").create_bucket(Bucket="my-logs")
    svc = Svc(
        annotations={
            LB: "access_logs.s3.enabled=true,access_logs.s3.bucket=my-logs,access_logs.s3.prefix=web,"
            "load_balancing.cross_zone.enabled=true"
        }
    )
    converge(provider, intent_of(provider, svc, node_objects(cloud)))
    lb = _lb(view, svc.uid)
    attrs = view.lb_attributes(lb["LoadBalancerArn"])
    assert attrs["access_logs.s3.enabled"] == "true"
    assert attrs["access_logs.s3.bucket"] == "my-logs"
    assert attrs["access_logs.s3.prefix"] == "web"
    assert attrs["load_balancing.cross_zone.enabled"] == "true"

    # Drift repaired; the plan names the attribute.
    view.elbv2.modify_load_balancer_attributes(
        LoadBalancerArn=lb["LoadBalancerArn"],
        Attributes=[{"Key": "access_logs.s3.enabled", "Value": "false"}],
    )
    intent = intent_of(provider, svc, node_objects(cloud))
    [change] = provider.plan(intent).changes
    assert change.kind == "load-balancer" and change.action is Action.UPDATE
    assert change.before is not None and change.before["attributes"]["access_logs.s3.enabled"] == "false"
    converge(provider, intent)
    assert view.lb_attributes(lb["LoadBalancerArn"])["access_logs.s3.enabled"] == "true"


def test_deletion_protection_blocks_delete_and_replace_until_turned_off(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    svc = Svc(annotations={LB: "deletion_protection.enabled=true"})
    converge(provider, intent_of(provider, svc, node_objects(cloud)))
    arn = _lb(view, svc.uid)["LoadBalancerArn"]
    assert view.lb_attributes(arn)["deletion_protection.enabled"] == "true"
    before = list(cloud.mutating_requests())

    with pytest.raises(DeletionProtected, match=r"deletion_protection\.enabled"):
        provider.plan_delete(intent_of(provider, svc, node_objects(cloud)).ref)
    internal = Svc(uid=svc.uid, annotations={**svc.annotations, ANN + "scheme": "internal"})
    with pytest.raises(DeletionProtected, match="scheme"):
        provider.plan(intent_of(provider, internal, node_objects(cloud)))
    assert cloud.mutating_requests() == before  # refused before any write
    assert len(view.nlbs(svc.uid)) == 1

    # Protection off together with the replacement: apply turns it off, then replaces.
    svc.annotations = {LB: "deletion_protection.enabled=false", ANN + "scheme": "internal"}
    plan = converge(provider, intent_of(provider, svc, node_objects(cloud)))
    assert [c.action for c in plan.changes if c.kind == "load-balancer"] == [Action.REPLACE]
    assert _lb(view, svc.uid)["Scheme"] == "internal"
    delete_all(provider, svc)
    view.assert_nothing_owned(svc)


def test_attributes_contradicting_their_owner_are_refused(provider: AWSProvider, cloud: SandboxCloud) -> None:
    cases: list[tuple[dict[str, str], dict[str, Any], str]] = [
        ({TG: "proxy_protocol_v2.enabled=false", ANN + "proxy-protocol": "*"}, {}, "proxy-protocol"),
        ({TG: "stickiness.enabled=false"}, {"sessionAffinity": "ClientIP"}, "sessionAffinity"),
        (
            {
                LB: "load_balancing.cross_zone.enabled=false",
                ANN + "cross-zone-load-balancing-enabled": "true",
            },
            {},
            "cross-zone",
        ),
    ]
    for given, spec, owner in cases:
        with pytest.raises(InvalidService, match=owner):
            intent_of(provider, Svc(annotations=given, spec=spec), node_objects(cloud))


@pytest.mark.parametrize(
    ("annotations", "says"),
    [
        ({TG: "made_up.key=1"}, "made_up.key"),
        ({TG: "deregistration_delay.timeout_seconds=4000"}, "0-3600"),
        ({TG: "preserve_client_ip.enabled=yes"}, "true | false"),
        ({TG: "stickiness.type=lb_cookie"}, "source_ip"),
        ({LB: "idle_timeout.timeout_seconds=60"}, "idle_timeout.timeout_seconds"),
        ({LB: "access_logs.s3.enabled=true"}, "access_logs.s3.bucket"),
        ({LB: "access_logs.s3.enabled=true,access_logs.s3.bucket=Bad_Bucket"}, "S3 bucket"),
        ({LB: "deletion_protection.enabled"}, "key=value"),
        ({LB: "deletion_protection.enabled=true", ANN + "type": "classic"}, "classic"),
    ],
)
def test_bad_attribute_input_is_refused_naming_the_annotation(
    provider: AWSProvider, cloud: SandboxCloud, annotations: dict[str, str], says: str
) -> None:
    with pytest.raises(InvalidService) as err:
        intent_of(provider, Svc(annotations=annotations), node_objects(cloud))
    key = TG if TG in annotations else LB
    assert key in str(err.value) and says in str(err.value)


def test_target_group_attributes_on_udp_keep_proxy_protocol_off(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    svc = Svc(
        ports=[(80, "TCP", 30080), (53, "UDP", 30053)], annotations={TG: "proxy_protocol_v2.enabled=true"}
    )
    converge(provider, intent_of(provider, svc, node_objects(cloud)))
    by_protocol = {tg["Protocol"]: tg["Attributes"] for tg in view.tgs(svc.uid)}
    assert by_protocol["TCP"]["proxy_protocol_v2.enabled"] == "true"
    assert by_protocol["UDP"].get("proxy_protocol_v2.enabled", "false") == "false"  # never set on UDP
