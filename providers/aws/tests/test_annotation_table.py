"""No annotation silently ignored (issue 10, item 5): every key of the table is implemented
(accepted, and a sandbox apply of it works) or refused with an error naming it; unknown keys under
the prefix are refused; the README shows the table exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
from lbprov_aws import AWSProvider
from lbprov_aws.annotation_keys import KEYS, PREFIX, markdown_table
from lbprov_aws.testing import AwsView, Svc, converge, intent_of, node_objects

from lbprov.model import InvalidService
from lbprov.provider import SandboxCloud

README = Path(__file__).resolve().parents[1] / "README.md"
#: Implemented keys whose example needs more than the key alone.
NEEDS = {"ssl-ports": "ssl-cert", "ssl-cert": None, "subnets": None}
#: The security-group keys need existing groups: test_security_group_annotations.py applies them.
NEEDS.update(
    dict.fromkeys(("security-groups", "extra-security-groups", "manage-backend-security-group-rules"))
)


def _refused(entry_suffix: str) -> bool:
    return not KEYS[entry_suffix].implemented


@pytest.mark.parametrize("suffix", sorted(s for s in KEYS if _refused(s)))
def test_a_refused_key_is_refused_naming_it(provider: AWSProvider, cloud: SandboxCloud, suffix: str) -> None:
    key = PREFIX + suffix + (".TCP-80" if suffix == "listener-attributes" else "")
    svc = Svc(annotations={key: "anything"})
    with pytest.raises(InvalidService) as err:
        intent_of(provider, svc, node_objects(cloud))
    assert key in str(err.value) and KEYS[suffix].text in str(err.value)


@pytest.mark.parametrize("suffix", sorted(s for s in KEYS if KEYS[s].values is not None))
def test_a_partly_implemented_key_refuses_other_values(
    provider: AWSProvider, cloud: SandboxCloud, suffix: str
) -> None:
    svc = Svc(annotations={PREFIX + suffix: "something-else"})
    with pytest.raises(InvalidService, match=PREFIX + suffix):
        intent_of(provider, svc, node_objects(cloud))


@pytest.mark.parametrize(
    "suffix", sorted(s for s in KEYS if KEYS[s].implemented and s not in NEEDS and s != "type")
)
def test_an_implemented_key_is_accepted_and_applies(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView, suffix: str
) -> None:
    entry = KEYS[suffix]
    example = entry.example
    while "<eip>" in example:  # Elastic IP allocations of the sandbox
        example = example.replace("<eip>", view.ec2.allocate_address(Domain="vpc")["AllocationId"], 1)
    annotations = {PREFIX + suffix: example}
    for other, value in entry.needs:
        annotations[PREFIX + other] = (
            cloud.extra["create_certificate"]() if value == "<certificate>" else value
        )
    if bucket := annotations.get(PREFIX + "access-log-s3-bucket-name"):
        cloud.extra["sandbox"].client("s3").create_bucket(Bucket=bucket)
    svc = Svc(annotations=annotations)
    converge(provider, intent_of(provider, svc, node_objects(cloud)))
    classic = annotations.get(PREFIX + "type") == "classic"
    assert len(view.classics(svc.uid) if classic else view.nlbs(svc.uid)) == 1


def test_an_unknown_key_under_the_prefix_is_refused(provider: AWSProvider, cloud: SandboxCloud) -> None:
    for key in (PREFIX + "made-up", PREFIX + "connection-idle-timeout-seconds"):
        with pytest.raises(InvalidService, match="unknown annotation") as err:
            intent_of(provider, Svc(annotations={key: "1"}), node_objects(cloud))
        assert key in str(err.value)


def test_the_readme_shows_the_table() -> None:
    assert markdown_table() in README.read_text()


def test_services_of_aws_load_balancer_controller_are_implemented_elsewhere() -> None:
    def svc(annotations: dict[str, str], cls: str | None = None) -> dict[str, object]:
        spec = {"type": "LoadBalancer", **({"loadBalancerClass": cls} if cls else {})}
        return {"metadata": {"annotations": annotations}, "spec": spec}

    assert AWSProvider.implemented_elsewhere(svc({PREFIX + "type": "external"}))
    assert AWSProvider.implemented_elsewhere(svc({PREFIX + "type": "nlb-ip"}))
    assert AWSProvider.implemented_elsewhere(svc({}, "service.k8s.aws/nlb"))
    assert AWSProvider.implemented_elsewhere(svc({PREFIX + "type": "nlb"})) is None
    assert AWSProvider.implemented_elsewhere(svc({})) is None
