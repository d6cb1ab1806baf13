"""The provider's botocore models hold exactly the operations lbprov_aws calls (trimmed_models.py).

The rest of the AWS suite runs every provider call through these trimmed clients against moto, so a
shape the trimming lost would fail there too; these tests pin the set itself and the memory kept.
"""

from __future__ import annotations

import gc
from typing import Any

import botocore.session  # type: ignore[import-untyped]
import pytest
from botocore.model import ServiceModel  # type: ignore[import-untyped]
from lbprov_aws import client as client_module
from lbprov_aws.client import PREFIXES, AWSClients
from lbprov_aws.operations import OPERATIONS, iam_permissions, is_write
from lbprov_aws.sandbox.strict import RULES
from lbprov_aws.settings import AWSSettings
from lbprov_aws.trimmed_models import SERVICES, TrimmingLoader, operations_by_service, trim

from lbprov.cloudcalls import CloudCalls

IAM_PREFIX = {"ec2": "ec2", "elbv2": "elasticloadbalancing", "elb": "elasticloadbalancing"}


@pytest.fixture(scope="module")
def clients() -> AWSClients:
    settings = AWSSettings(
        region="us-east-1", endpoint_url="http://127.0.0.1:1", access_key_id="x", secret_access_key="x"
    )
    return AWSClients(settings, CloudCalls("aws", is_write=is_write))


def _full_model(service: str) -> dict[str, Any]:
    model: dict[str, Any] = botocore.session.get_session().get_service_data(service)
    return model


def test_each_client_has_exactly_the_operations_lbprov_calls(clients: AWSClients) -> None:
    for prefix in PREFIXES:
        have = set(clients.clients[prefix].meta.service_model.operation_names)
        want = {name.partition(":")[2] for name in OPERATIONS if name.startswith(f"{prefix}:")}
        assert have == want, prefix
        assert have == operations_by_service()[SERVICES[prefix]]


def test_the_strict_layer_and_iam_cover_no_other_operation() -> None:
    """What the sandbox's strict layer checks is what the trimmed clients can send, and each
    operation kept has its IAM action in the least-privilege list (terraform/aws is checked
    against that list by tests/deploy/test_least_privilege.py)."""
    kept = {f"{prefix}:{op}" for prefix in PREFIXES for op in operations_by_service()[SERVICES[prefix]]}
    assert set(RULES) <= kept
    iam = set(iam_permissions())
    for name in kept:
        prefix, _, op = name.partition(":")
        assert f"{IAM_PREFIX[prefix]}:{op}" in iam, name


def _walk(shape: Any, seen: set[str]) -> None:
    """Every shape reachable from ``shape``, resolved by botocore (a missing one raises)."""
    if shape is None or shape.name in seen:
        return
    seen.add(shape.name)
    for member in getattr(shape, "members", {}).values():
        _walk(member, seen)
    for attr in ("member", "key", "value"):
        _walk(getattr(shape, attr, None), seen)


def test_every_shape_of_the_kept_operations_resolves() -> None:
    for service, ops in operations_by_service().items():
        full = _full_model(service)
        trimmed = trim(full, ops)
        assert len(trimmed["shapes"]) < len(full["shapes"])
        model = ServiceModel(trimmed, service_name=service)
        seen: set[str] = set()
        for op in model.operation_names:
            operation = model.operation_model(op)
            _walk(operation.input_shape, seen)
            _walk(operation.output_shape, seen)
            for error in operation.error_shapes:
                _walk(error, seen)
        assert seen == set(trimmed["shapes"]), service
        assert "documentation" not in str(trimmed["operations"])


def test_an_operation_the_installed_botocore_lacks_is_named() -> None:
    with pytest.raises(ValueError, match="NoSuchOperation"):
        trim(_full_model("elb"), frozenset({"DescribeTags", "NoSuchOperation"}))


def test_the_loader_keeps_no_full_model(clients: AWSClients) -> None:
    gc.collect()
    loader = client_module._LOADER
    assert isinstance(loader, TrimmingLoader)
    keep = operations_by_service()
    for value in loader._cache.values():
        for item in value if isinstance(value, tuple) else (value,):
            if isinstance(item, dict) and "operations" in item:
                meta = item["metadata"]
                if meta["endpointPrefix"] == "ec2":
                    service = "ec2"
                else:  # elb and elbv2 share the endpoint prefix elasticloadbalancing
                    service = "elbv2" if meta["apiVersion"] == "2015-12-01" else "elb"
                assert set(item["operations"]) == keep[service], service
