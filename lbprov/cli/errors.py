"""Cloud, credential, permission and input errors as one-line messages that say how to fix them.

``lbprov plan`` and ``lbprov gc`` run against real accounts, where the usual failure is not a bug but
missing or expired credentials, the wrong region/project/subscription, or a missing permission. The
user should get one line naming which and what to do, not a stack trace (``lbprov --debug`` shows
it).

The core must not import a cloud SDK, so exceptions are recognised by the names of their classes
(the fully-qualified names along the MRO) and duck-typed attributes (``response`` of botocore's
``ClientError``, ``status_code``/``error`` of azure-core's ``HttpResponseError``, ``code`` of
google-api-core's ``GoogleAPICallError``). A provider class may also expose
``describe_error(exc) -> str | None`` (a static or class method) for errors only it understands; its
answer is taken first and treated as fatal.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

Category = Literal["credentials", "permission", "config", "network", "kubernetes", "input", "bug"]

#: Categories that would fail every Service the same way: the run stops at the first one.
FATAL: frozenset[str] = frozenset({"credentials", "permission", "config", "network", "kubernetes", "bug"})


@dataclass(frozen=True)
class UserError:
    """An error explained for the user: one line, and whether it stops the whole run."""

    category: Category
    message: str

    @property
    def fatal(self) -> bool:
        return self.category in FATAL

    def __str__(self) -> str:
        return self.message


class CLIError(Exception):
    """Raised by the CLI itself for a problem whose message is already user-ready."""

    def __init__(self, message: str, category: Category = "input") -> None:
        super().__init__(message)
        self.category: Category = category


def _class_names(exc: BaseException) -> set[str]:
    names: set[str] = set()
    for cls in type(exc).__mro__:
        names.add(f"{cls.__module__}.{cls.__qualname__}")
        names.add(cls.__name__)
    return names


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and its causes (providers may wrap SDK errors)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _first_line(text: object, limit: int = 300) -> str:
    line = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


# -- AWS (botocore) ---------------------------------------------------------------------------------

_AWS_EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"}
_AWS_INVALID = {
    "InvalidClientTokenId",
    "AuthFailure",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
    "InvalidAccessKeyId",
    "IncompleteSignature",
    "MissingAuthenticationToken",
}
_AWS_DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnauthorizedAccess",
    "Forbidden",
}
_AWS_READ_PERMISSIONS = (
    "elasticloadbalancing:Describe* and ec2:DescribeInstances/DescribeSecurityGroups/DescribeSubnets/"
    "DescribeVpcs (the read-only policy of terraform/aws)"
)


def _aws(exc: BaseException, names: set[str]) -> UserError | None:
    if "botocore.exceptions.NoCredentialsError" in names or "PartialCredentialsError" in names:
        return UserError(
            "credentials",
            "AWS: no credentials found: set AWS_PROFILE (aws configure / aws sso login) or "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run with an instance role / IRSA",
        )
    if "botocore.exceptions.NoRegionError" in names:
        return UserError("config", "AWS: no region configured: pass --aws-region or set AWS_REGION")
    if "botocore.exceptions.ProfileNotFound" in names:
        return UserError(
            "config", f"AWS: {_first_line(exc)}: fix AWS_PROFILE or add the profile to ~/.aws/config"
        )
    if {"TokenRetrievalError", "SSOTokenLoadError", "UnauthorizedSSOTokenError"} & names:
        return UserError("credentials", "AWS: the SSO session has expired or is missing: run `aws sso login`")
    if "CredentialRetrievalError" in names:
        return UserError(
            "credentials",
            f"AWS: could not obtain credentials ({_first_line(exc)}): check the profile's "
            "credential_process / role settings",
        )
    if "botocore.exceptions.EndpointConnectionError" in names:
        url = getattr(exc, "kwargs", {}).get("endpoint_url", "the AWS endpoint")
        return UserError(
            "network",
            f"AWS: cannot reach {url}: check --aws-region (an unknown region has no endpoint) "
            "and the network/proxy settings",
        )
    if "botocore.exceptions.ClientError" in names:
        response: dict[str, Any] = getattr(exc, "response", None) or {}
        code = str((response.get("Error") or {}).get("Code", ""))
        op = getattr(exc, "operation_name", None) or "the request"
        if code in _AWS_EXPIRED:
            return UserError(
                "credentials",
                f"AWS: the credentials have expired ({code}): refresh them (aws sso login, or a new "
                "session token) and retry",
            )
        if code in _AWS_INVALID:
            return UserError(
                "credentials",
                f"AWS: the credentials were rejected ({code}): check AWS_ACCESS_KEY_ID / "
                "AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN or the profile, and that they belong to "
                "this partition",
            )
        if code in _AWS_DENIED:
            return UserError(
                "permission",
                f"AWS: permission denied for {op} ({code}): lbprov plan needs {_AWS_READ_PERMISSIONS}",
            )
        if code == "OptInRequired":
            return UserError(
                "config", f"AWS: the region is not enabled for this account ({code}): check --aws-region"
            )
        if code in {"InvalidRegion", "InvalidEndpoint"}:
            return UserError("config", f"AWS: {code}: check --aws-region")
    return None


# -- GCP (google-auth, google-api-core) -------------------------------------------------------------

_GCP_PROJECT_NOT_FOUND = re.compile(r"projects/([^/'\"\s]+)['\"]? (?:was )?not found", re.I)
_GCP_REGION_NOT_FOUND = re.compile(r"regions/([^/'\"\s]+)['\"]? (?:was )?not found", re.I)


def _gcp(exc: BaseException, names: set[str]) -> UserError | None:
    if "google.auth.exceptions.DefaultCredentialsError" in names and (
        path := os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    ):
        if not os.path.isfile(path):
            return UserError(
                "credentials",
                f"GCP: GOOGLE_APPLICATION_CREDENTIALS={path}: no such file: point it at a service-account "
                "key file, or unset it to use `gcloud auth application-default login`",
            )
        return UserError(
            "credentials",
            f"GCP: GOOGLE_APPLICATION_CREDENTIALS={path} is not a usable credentials file "
            f"({_first_line(exc, 160)}): point it at a service-account key file (JSON), or unset it",
        )
    if "google.auth.exceptions.DefaultCredentialsError" in names:
        return UserError(
            "credentials",
            "GCP: no Application Default Credentials: run `gcloud auth application-default login`, "
            "or set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, or use Workload Identity",
        )
    if "google.auth.exceptions.RefreshError" in names:
        return UserError(
            "credentials",
            f"GCP: the credentials could not be refreshed (expired or revoked: {_first_line(exc, 160)}): "
            "run `gcloud auth application-default login` again",
        )
    if not any(n.startswith("google.api_core.exceptions.") for n in names):
        return None
    text = _first_line(getattr(exc, "message", None) or exc)
    if "Unauthorized" in names or "Unauthenticated" in names:
        return UserError(
            "credentials",
            f"GCP: the credentials were rejected ({text}): run `gcloud auth application-default login`",
        )
    if "Forbidden" in names or "PermissionDenied" in names:
        if "has not been used" in text or "is disabled" in text or "SERVICE_DISABLED" in text:
            return UserError(
                "config",
                "GCP: the Compute Engine API is not enabled in this project: "
                "`gcloud services enable compute.googleapis.com` (or check --gcp-project)",
            )
        return UserError(
            "permission",
            f"GCP: permission denied ({text}): lbprov plan needs compute.*.get/list on the project "
            "(roles/compute.viewer, or the read-only role of terraform/gcp)",
        )
    if "NotFound" in names:
        if m := _GCP_REGION_NOT_FOUND.search(text):
            return UserError("config", f"GCP: region {m.group(1)!r} not found: check --gcp-region")
        if m := _GCP_PROJECT_NOT_FOUND.search(text):
            return UserError(
                "config",
                f"GCP: project {m.group(1)!r} not found, or the credentials cannot see it: check --gcp-project",
            )
    if "BadRequest" in names and "region" in text.lower():
        return UserError("config", f"GCP: {text}: check --gcp-region")
    return None


# -- Azure (azure-core, azure-identity) -------------------------------------------------------------


def _azure_code(exc: BaseException) -> str:
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None) if error is not None else None
    return str(code or "")


def _azure(exc: BaseException, names: set[str]) -> UserError | None:
    if "azure.core.exceptions.ClientAuthenticationError" in names or "CredentialUnavailableError" in names:
        text = _first_line(getattr(exc, "message", None) or exc, 200)
        if "expired" in text.lower():
            return UserError(
                "credentials", f"Azure: the credentials have expired ({text}): run `az login` again"
            )
        return UserError(
            "credentials",
            "Azure: no usable credential (DefaultAzureCredential): run `az login`, or set "
            "AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET, or use workload identity "
            f"({text})",
        )
    if "azure.core.exceptions.HttpResponseError" not in names:
        return None
    status = getattr(exc, "status_code", None)
    code = _azure_code(exc)
    text = _first_line(getattr(exc, "message", None) or exc, 200)
    if code in {"SubscriptionNotFound", "InvalidSubscriptionId"}:
        return UserError(
            "config",
            f"Azure: subscription not found or not accessible ({code}): check --azure-subscription-id",
        )
    if code == "ResourceGroupNotFound":
        return UserError("config", f"Azure: {text}: check --azure-resource-group")
    if code in {"ExpiredAuthenticationToken"} or (status == 401 and "expired" in text.lower()):
        return UserError("credentials", f"Azure: the access token has expired ({code}): run `az login`")
    if status == 401 or code in {"InvalidAuthenticationToken", "InvalidAuthenticationTokenTenant"}:
        return UserError(
            "credentials",
            f"Azure: the credentials were rejected ({code or status}): check the tenant and "
            "`az login`/AZURE_* settings",
        )
    if status == 403 or code in {"AuthorizationFailed", "LinkedAuthorizationFailed"}:
        return UserError(
            "permission",
            f"Azure: permission denied ({code or status}): lbprov plan needs Microsoft.Network/*/read "
            "on the resource group (the Reader role, or the read-only role of terraform/azure)",
        )
    return None


# -- Kubernetes and generic -------------------------------------------------------------------------


#: What each command can do instead of reading the cluster (only plan reads manifests).
_KUBE_HINTS = {"plan": "pass --kubeconfig/--context, or read manifests with -f and nodes with --nodes"}
_KUBE_HINT = "pass --kubeconfig/--context"


def _kubernetes(exc: BaseException, names: set[str], command: str = "plan") -> UserError | None:
    hint = _KUBE_HINTS.get(command, _KUBE_HINT)
    if "lbprov.kube.client.KubeUnreachable" in names:
        return UserError("kubernetes", f"{_first_line(exc, 400)}: {hint}")
    if "lbprov.kube.config.KubeConfigError" in names or (
        "ConfigException" in names and any(n.startswith("kubernetes.") for n in names)
    ):
        return UserError("kubernetes", f"Kubernetes: {_first_line(exc)}: {hint}")
    if "lbprov.kube.client.KubeError" in names or "kubernetes.client.exceptions.ApiException" in names:
        status = getattr(exc, "status", None)
        if status in (401, 403):
            return UserError(
                "kubernetes",
                f"Kubernetes: {'unauthorised' if status == 401 else 'forbidden'} ({status}): "
                f"lbprov {command} needs get/list on services and nodes",
            )
        if status == 404 and "namespace" in str(exc).lower():
            return UserError("kubernetes", f"Kubernetes: {_first_line(exc)}: check -n/--namespace")
        return UserError("kubernetes", f"Kubernetes API error: {_first_line(exc)}")
    return None


def _ownership_hint(text: str) -> str:
    """A foreign resource that carries a cluster name: perhaps this cluster's, under another name."""
    if re.search(r"cluster", text, re.I) and "--cluster-name" not in text:
        return (
            f"{text} (if this cluster made it under another name, run with that --cluster-name; cluster "
            "names must match the tags exactly)"
        )
    return text


def _unreachable(exc: BaseException, command: str, *, explicit_only: bool = False) -> UserError | None:
    """A connection-level failure anywhere in the chain, named by its endpoint.

    The clouds' and the API server's own wrappers (``CloudUnreachable``, ``KubeUnreachable``) say
    which side failed; a raw one (a credential's token request, an SDK call outside CloudCalls)
    is named by the endpoint it carries -- never assumed to be the Kubernetes API's.
    """
    for link in _chain(exc):
        names = _class_names(link)
        if "lbprov.cloudcalls.CloudUnreachable" in names:
            return UserError("network", _first_line(link, 400))
        if "lbprov.kube.client.KubeUnreachable" in names:
            return _kubernetes(link, names, command)
    if explicit_only:
        return None
    from lbprov.cloudcalls import Timeouts, describe_connection_error, failed_endpoint, is_connection_error

    if not is_connection_error(exc):
        return None
    endpoint = failed_endpoint(exc) or "the endpoint"
    detail, check = describe_connection_error(exc, Timeouts())
    what = f"the sign-in endpoint {endpoint}" if _is_credential_error(exc) else endpoint
    return UserError("network", f"cannot reach {what}: {detail}: {check}")


def _is_credential_error(exc: BaseException) -> bool:
    return any(
        n.startswith(("azure.identity.", "google.auth.")) or n.endswith("ClientAuthenticationError")
        for link in _chain(exc)
        for n in _class_names(link)
    )


def describe(exc: BaseException, provider: Any = None, command: str = "plan") -> UserError | None:
    """Explain ``exc`` in one line, or ``None`` when it is not a recognised user-side problem.

    ``command`` (``plan``, ``gc``, ``run``) picks the hints that command can follow.
    """
    explicit = _unreachable(exc, command, explicit_only=True)
    if explicit is not None:
        return explicit
    found = _describe_links(exc, provider, command)
    if found is None or found.category == "credentials":
        # A credential that could not reach its sign-in host is a network problem, not a
        # missing setting: say which host.
        return _unreachable(exc, command) or found
    return found


def _describe_links(exc: BaseException, provider: Any, command: str) -> UserError | None:
    hook = getattr(provider, "describe_error", None)
    for link in _chain(exc):
        if callable(hook):
            try:
                text = hook(link)
            except Exception:
                text = None
            if text:
                return UserError("config", _first_line(text, 400))
        names = _class_names(link)
        if "lbprov.cloudcalls.CloudUnreachable" in names:
            return UserError("network", _first_line(link, 400))
        if "lbprov.cloudcalls.ReadOnlyViolation" in names:
            return UserError(
                "bug",
                f"{link} -- nothing was sent; this is a bug in the provider (a plan must only read), "
                "please report it",
            )
        if isinstance(link, CLIError):
            return UserError(link.category, str(link))
        if {"lbprov.settings.SettingsError", "lbprov.provider.ProviderNotFound"} & names:
            return UserError("config", _first_line(link, 1000))  # every setting at fault
        if "lbprov.manifests.ManifestError" in names:
            return UserError("input", _first_line(link, 400))
        if "lbprov.model.OwnershipConflict" in names:
            return UserError("input", _ownership_hint(_first_line(link, 400)))
        if "lbprov.model.InvalidService" in names:
            return UserError("input", _first_line(link, 400))
        for recogniser in (_aws, _gcp, _azure):
            found = recogniser(link, names)
            if found is not None:
                return found
        if (found := _kubernetes(link, names, command)) is not None:
            return found
    return None
