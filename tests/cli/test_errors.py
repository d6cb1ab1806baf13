"""Cloud/credential/permission errors become one line that says which and how to fix it.

The exceptions are the SDKs' real exception classes, built the way the SDKs build them; the core
recognises them without importing any SDK (checked in a fresh interpreter below).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from lbprov.cli.errors import CLIError, describe
from lbprov.cloudcalls import ReadOnlyViolation
from lbprov.model import InvalidService


def aws_client_error(code: str, op: str = "DescribeLoadBalancers") -> Exception:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": f"{code} message"}}, op)


@pytest.mark.parametrize(
    ("make", "category", "words"),
    [
        (
            lambda: __import__("botocore.exceptions").exceptions.NoCredentialsError(),
            "credentials",
            "AWS: no credentials found",
        ),
        (lambda: __import__("botocore.exceptions").exceptions.NoRegionError(), "config", "--aws-region"),
        (
            lambda: aws_client_error("ExpiredToken"),
            "credentials",
            "AWS: the credentials have expired (ExpiredToken)",
        ),
        (
            lambda: aws_client_error("InvalidClientTokenId"),
            "credentials",
            "were rejected (InvalidClientTokenId)",
        ),
        (lambda: aws_client_error("AuthFailure"), "credentials", "were rejected (AuthFailure)"),
        (
            lambda: aws_client_error("AccessDenied"),
            "permission",
            "permission denied for DescribeLoadBalancers (AccessDenied)",
        ),
        (
            lambda: aws_client_error("UnauthorizedOperation", "DescribeInstances"),
            "permission",
            "DescribeInstances",
        ),
        (
            lambda: __import__("botocore.exceptions").exceptions.EndpointConnectionError(
                endpoint_url="https://ec2.xx-nowhere-1.amazonaws.com/"
            ),
            "network",
            "check --aws-region",
        ),
    ],
)
def test_aws(make, category, words) -> None:  # type: ignore[no-untyped-def]
    found = describe(make())
    assert found is not None and found.category == category and found.fatal
    assert words in found.message and "\n" not in found.message


def test_gcp() -> None:
    from google.api_core import exceptions as gexc
    from google.auth.exceptions import DefaultCredentialsError, RefreshError

    cases = [
        (
            DefaultCredentialsError("Your default credentials were not found."),
            "credentials",
            "gcloud auth application-default login",
        ),
        (
            RefreshError("invalid_grant: Token has been expired or revoked."),
            "credentials",
            "expired or revoked",
        ),
        (
            gexc.Forbidden("Required 'compute.forwardingRules.list' permission for 'projects/p'"),
            "permission",
            "roles/compute.viewer",
        ),
        (
            gexc.Forbidden("Compute Engine API has not been used in project 123 before or it is disabled."),
            "config",
            "compute.googleapis.com",
        ),
        (gexc.NotFound("The resource 'projects/nope' was not found"), "config", "project 'nope' not found"),
        (
            gexc.NotFound("The resource 'projects/p/regions/mars-1' was not found"),
            "config",
            "region 'mars-1' not found",
        ),
        (gexc.Unauthorized("Request had invalid authentication credentials."), "credentials", "rejected"),
    ]
    for exc, category, words in cases:
        found = describe(exc)
        assert found is not None, exc
        assert (found.category, words in found.message) == (category, True), found


def test_azure() -> None:
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ODataV4Format
    from azure.identity import CredentialUnavailableError

    def http(status: int, code: str) -> HttpResponseError:
        exc = HttpResponseError(message=f"({code}) something")
        exc.status_code = status
        exc.error = ODataV4Format({"code": code, "message": "something"})
        return exc

    cases = [
        (
            CredentialUnavailableError("DefaultAzureCredential failed to retrieve a token"),
            "credentials",
            "az login",
        ),
        (
            ClientAuthenticationError(message="AADSTS700082: The refresh token has expired"),
            "credentials",
            "expired",
        ),
        (http(403, "AuthorizationFailed"), "permission", "Microsoft.Network/*/read"),
        (http(404, "SubscriptionNotFound"), "config", "--azure-subscription-id"),
        (http(404, "ResourceGroupNotFound"), "config", "--azure-resource-group"),
        (http(401, "ExpiredAuthenticationToken"), "credentials", "expired"),
    ]
    for exc, category, words in cases:
        found = describe(exc)
        assert found is not None, exc
        assert (found.category, words in found.message) == (category, True), found


def test_wrapped_errors_are_found_through_the_cause_chain() -> None:
    from botocore.exceptions import NoCredentialsError

    try:
        try:
            raise NoCredentialsError()
        except NoCredentialsError as inner:
            raise RuntimeError("provider failed") from inner
    except RuntimeError as outer:
        found = describe(outer)
    assert found is not None and found.category == "credentials"


def test_provider_hook_is_asked_first() -> None:
    class P:
        @staticmethod
        def describe_error(exc: BaseException) -> str | None:
            return "fake: do this" if isinstance(exc, KeyError) else None

    found = describe(KeyError("x"), P())
    assert found is not None and found.message == "fake: do this"
    assert describe(ValueError("x"), P()) is None


def test_lbprov_errors() -> None:
    assert describe(ReadOnlyViolation("aws", "elbv2:CreateLoadBalancer")).category == "bug"  # type: ignore[union-attr]
    invalid = describe(InvalidService("spec.type", "nope"))
    assert invalid is not None and not invalid.fatal
    assert describe(CLIError("x", "kubernetes")).category == "kubernetes"  # type: ignore[union-attr]
    assert describe(ValueError("unrelated")) is None


def test_core_imports_no_cloud_sdk() -> None:
    code = (
        "import sys, lbprov.cli, lbprov.cli.errors, lbprov.cli.plan, lbprov.cli.gc, lbprov.manifests;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore', 'google', 'azure'));"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
