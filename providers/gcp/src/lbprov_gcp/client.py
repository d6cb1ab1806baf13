"""The provider's only door to the Compute Engine API (REST, JSON).

Every HTTP request -- list pages and operation waits included -- goes through one
:class:`~lbprov_gcp.transport.Transport` (urllib3, signed by google-auth), which first passes it to
``CloudCalls.before_send(<api method id>)``: counted, rate-limited, and refused in read-only mode
before it leaves the process. Calls are wrapped in ``CloudCalls.call(..., hooked=True)`` for
retries, the single retry policy. Writes carry a ``requestId`` that stays the same across retries,
so a retried write whose first attempt did reach the API is not applied twice. Errors are raised as
google-api-core exceptions (``NotFound``, ``Conflict``, ...), from the API's error body.

Resources cross this boundary as plain dicts with the API's JSON field names, as the API sends
them (google-cloud-compute is not used at run time: see :class:`Compute`).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials, Credentials

from lbprov.cloudcalls import CloudCalls
from lbprov_gcp.settings import GCPSettings
from lbprov_gcp.transport import NoAnswer, Transport

Json = dict[str, Any]

_THROTTLE_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"}


def _reasons(exc: BaseException) -> set[str]:
    out: set[str] = set()
    for err in getattr(exc, "errors", None) or []:
        if isinstance(err, Mapping) and err.get("reason"):
            out.add(str(err["reason"]))
    return out


def is_throttle(exc: BaseException) -> bool:
    if isinstance(exc, gexc.TooManyRequests):
        return True
    return isinstance(exc, gexc.Forbidden) and bool(
        _reasons(exc) & {"rateLimitExceeded", "userRateLimitExceeded"}
    )


def is_retryable(exc: BaseException) -> bool:
    """Throttling, 5xx and connection failures are transient; everything else is an answer."""
    if is_throttle(exc):
        return True
    if isinstance(
        exc,
        gexc.InternalServerError
        | gexc.BadGateway
        | gexc.ServiceUnavailable
        | gexc.GatewayTimeout
        | gexc.DeadlineExceeded,
    ):
        return True
    return isinstance(exc, NoAnswer)  # refused, reset, timed out: no answer came


def retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def is_not_found(exc: BaseException) -> bool:
    return isinstance(exc, gexc.NotFound)


def is_in_use(exc: BaseException) -> bool:
    return isinstance(exc, gexc.BadRequest) and "resourceInUseByAnotherResource" in _reasons(exc)


@dataclass(frozen=True)
class _Kind:
    scope: str  # "regions", "zones", "global"
    api: str  # API collection id for operation names


_KINDS: dict[str, _Kind] = {
    "healthChecks": _Kind("regions", "regionHealthChecks"),
    "backendServices": _Kind("regions", "regionBackendServices"),
    "forwardingRules": _Kind("regions", "forwardingRules"),
    "addresses": _Kind("regions", "addresses"),
    "firewalls": _Kind("global", "firewalls"),
    "instanceGroups": _Kind("zones", "instanceGroups"),
    # read only: whether the subnetwork serves IPv6 (stackType, ipv6AccessType)
    "subnetworks": _Kind("regions", "subnetworks"),
    # cloud-provider-gcp's target pools: read and deleted when lbprov takes their Service over
    "targetPools": _Kind("regions", "targetPools"),
    # read only: the nodes' network tags, when the setting node_tags does not give them
    "instances": _Kind("zones", "instances"),
    # cloud-provider-gcp's legacy HTTP health checks (no client in google-cloud-compute at all)
    "httpHealthChecks": _Kind("global", "httpHealthChecks"),
}

#: Where the Compute API is when the setting ``api_endpoint`` does not say.
DEFAULT_ENDPOINT = "https://compute.googleapis.com"


def endpoint_url(api_endpoint: str | None) -> str:
    """The API's base URL; an endpoint without a scheme is HTTPS (as google-api-core takes it)."""
    endpoint = (api_endpoint or DEFAULT_ENDPOINT).rstrip("/")
    return endpoint if re.match(r"^https?://", endpoint) else f"https://{endpoint}"


def credentials_for(settings: GCPSettings) -> Credentials:
    """Anonymous credentials for a loopback emulator; Application Default Credentials otherwise."""
    if settings.uses_emulator:
        return AnonymousCredentials()  # type: ignore[no-untyped-call]
    import google.auth

    creds, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/compute"])
    return creds


#: Read timeout of an ``operations.wait`` request: the API holds its answer until the operation is
#: DONE or about two minutes have passed (https://cloud.google.com/compute/docs/reference/rest/v1/
#: globalOperations/wait), so the core's 30 s read timeout would turn a slow backend-service update
#: into a timeout, which the circuit counts as the endpoint being unreachable.
WAIT_ANSWER_SECONDS = 130.0


class Compute:
    """Typed, guarded, retried access to the Compute REST API for one project and region.

    Every request is plain JSON over one :class:`~lbprov_gcp.transport.Transport` (urllib3, signed
    by google-auth): google-cloud-compute's clients converted each body and each answer to
    protobuf and back, and its import alone took over a second of CPU and about 110 MB (issue 14).
    The API's JSON field names are what the provider builds and reads anyway; the emulator checks
    every body against the API's own message descriptors, so a wrong field still fails in tests.
    """

    def __init__(
        self, settings: GCPSettings, calls: CloudCalls, credentials: Credentials | None = None
    ) -> None:
        self.settings = settings
        self.project = settings.project
        self.region = settings.region
        self.calls = calls
        self.endpoint = endpoint_url(settings.api_endpoint)
        self.transport = Transport(credentials or credentials_for(settings), calls, self.endpoint)
        # The core's connect and read timeouts, so a silent endpoint fails fast once instead of
        # stalling a minute; operations.wait alone may hold its answer longer (WAIT_ANSWER_SECONDS).
        self.timeout: tuple[float, float] = (self.calls.timeouts.connect, self.calls.timeouts.read)

    # -- plumbing ---------------------------------------------------------------------------------

    def _wait(self, op: Json, kind: str, zone: str | None) -> None:
        """Wait until a long-running operation is DONE (``operations.wait``: the API answers when the
        operation is done, or after about two minutes), then raise its error as the API would."""
        deadline = time.monotonic() + self.settings.operation_timeout_seconds
        scope = _KINDS[kind].scope
        if scope == "regions":
            api, path = "regionOperations", f"regions/{self.region}/operations"
        elif scope == "zones":
            api, path = "zoneOperations", f"zones/{zone}/operations"
        else:
            api, path = "globalOperations", "global/operations"
        while op.get("status") != "DONE":
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"operation {op.get('name')} did not finish in {self.settings.operation_timeout_seconds}s"
                )
            op = self._rest(
                f"{api}.wait",
                "POST",
                f"{path}/{op['name']}/wait",
                timeout=(self.timeout[0], max(self.timeout[1], WAIT_ANSWER_SECONDS)),
            )
        code = op.get("httpErrorStatusCode")
        errors = [
            {"reason": e.get("code"), "message": e.get("message")}
            for e in (op.get("error") or {}).get("errors") or []
        ]
        if code or errors:
            message = (
                op.get("httpErrorMessage")
                or "; ".join(str(e["message"]) for e in errors)
                or "operation failed"
            )
            raise gexc.from_http_status(code or 500, message, errors=errors)  # type: ignore[no-untyped-call]

    # -- the REST API as JSON (reads, and the legacy httpHealthChecks) -----------------------------

    def _rest(
        self,
        op: str,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        body: Json | None = None,
        timeout: tuple[float, float] | None = None,
    ) -> Json:
        """One request to ``projects/<project>/<path>`` through the guarded transport
        (counted, rate-limited, refused in read-only mode like every other call), answered as the
        API's JSON; errors are raised as google-api-core exceptions, as the SDK raises them.

        google-cloud-compute's methods parsed each answer into protobuf messages, which the
        provider then turned back into JSON, resource by resource: for a round's listings of every
        Service's resources, those two conversions were most of the controller's CPU per resync
        (issue 14). The JSON the API sends differs from that round trip only in leaving out empty
        lists and maps, which the provider reads as absent.
        """
        url = f"{self.endpoint}/compute/v1/projects/{self.project}/{path}"

        def run(request: Mapping[str, Any], retry: Any, timeout: tuple[float, float]) -> Json:
            answer = self.transport.send(method, url, dict(params) if params else None, body, timeout)
            if answer.status_code >= 400:
                try:
                    payload = answer.json()
                except ValueError:
                    payload = {"error": {"message": answer.text or "unknown error"}}
                full = f"{url}?{urlencode(params)}" if params else url
                raise gexc.format_http_response_error(answer, method, full, payload)
            data: Json = answer.json()
            return data

        result: Json = self.calls.call(
            op,
            run,
            request={"url": url, **(params or {})},
            retry=None,
            timeout=timeout or self.timeout,
            hooked=True,
        )
        return result

    def _path(self, kind: str, zone: str | None) -> str:
        """The collection's path under the project (``regions/R/forwardingRules``)."""
        scope = _KINDS[kind].scope
        if scope == "regions":
            return f"regions/{self.region}/{kind}"
        if scope == "zones":
            if zone is None:
                raise ValueError(f"{kind} is zonal: give a zone")
            return f"zones/{zone}/{kind}"
        return f"global/{kind}"

    def _pages(self, op: str, path: str, filter: str | None, method: str = "GET") -> Iterator[Json]:
        """Every page of a list (``nextPageToken``)."""
        token = ""
        while True:
            params = {"filter": filter} if filter else {}
            if token:
                params["pageToken"] = token
            page = self._rest(op, method, path, params)
            yield page
            token = str(page.get("nextPageToken") or "")
            if not token:
                return

    # -- reads (the API's JSON, see :meth:`_rest`) --------------------------------------------------

    def get(self, kind: str, name: str, zone: str | None = None) -> Json | None:
        try:
            return self._rest(f"{_KINDS[kind].api}.get", "GET", f"{self._path(kind, zone)}/{name}")
        except gexc.NotFound:
            return None

    def list_items(self, kind: str, filter: str | None = None, zone: str | None = None) -> list[Json]:
        api = _KINDS[kind].api
        items: list[Json] = []
        for page in self._pages(f"{api}.list", self._path(kind, zone), filter):
            items.extend(page.get("items") or [])
        return items

    def instance_groups(self, prefix: str) -> dict[tuple[str, str], Json]:
        """The instance groups whose names start with ``prefix`` in this region's zones, by
        (zone, name): one aggregated list."""
        out: dict[tuple[str, str], Json] = {}
        pages = self._pages(
            "instanceGroups.aggregatedList", "aggregated/instanceGroups", f'name eq "{prefix}.*"'
        )
        for page in pages:
            for scope, scoped in (page.get("items") or {}).items():
                zone = scope.split("/")[-1]
                if not zone.startswith(self.region + "-"):
                    continue
                for group in scoped.get("instanceGroups") or []:
                    if str(group.get("name", "")).startswith(prefix):
                        out[(zone, group["name"])] = group
        return out

    def group_members(self, zone: str, name: str) -> list[str]:
        """Names of the instances in a zonal instance group."""
        path = f"zones/{zone}/instanceGroups/{name}/listInstances"
        members: list[str] = []
        token = ""
        while True:
            params = {"pageToken": token} if token else None
            page = self._rest(
                "instanceGroups.listInstances", "POST", path, params, body={"instanceState": "ALL"}
            )
            members += [str(i["instance"]).rstrip("/").split("/")[-1] for i in page.get("items") or []]
            token = str(page.get("nextPageToken") or "")
            if not token:
                return sorted(members)

    # -- writes (each waits for its operation) ----------------------------------------------------

    def _write(
        self, kind: str, verb: str, method: str, path: str, body: Json | None, zone: str | None
    ) -> None:
        """One write with a ``requestId`` that stays the same across its retries, then its wait."""
        params = {"requestId": str(uuid.uuid4())}
        op = self._rest(f"{_KINDS[kind].api}.{verb}", method, path, params, body)
        self._wait(op, kind, zone)

    def insert(self, kind: str, body: Json, zone: str | None = None) -> None:
        self._write(kind, "insert", "POST", self._path(kind, zone), body, zone)

    def delete(self, kind: str, name: str, zone: str | None = None) -> None:
        self._write(kind, "delete", "DELETE", f"{self._path(kind, zone)}/{name}", None, zone)

    def modify(self, kind: str, verb: str, name: str, body: Json) -> None:
        """``patch`` (merge) or ``update`` (replace) a resource; ``body`` carries the fingerprint."""
        method = {"patch": "PATCH", "update": "PUT"}[verb]
        self._write(kind, verb, method, f"{self._path(kind, None)}/{name}", body, None)

    def set_labels(self, kind: str, name: str, body: Json) -> None:
        """``setLabels`` on a regional forwarding rule or address (``body``: labels + labelFingerprint)."""
        self._write(kind, "setLabels", "POST", f"{self._path(kind, None)}/{name}/setLabels", body, None)

    def change_members(self, verb: str, zone: str, group: str, instances: list[str]) -> None:
        """``addInstances`` / ``removeInstances`` in chunks of 1000 (the API's limit per call)."""
        path = f"zones/{zone}/instanceGroups/{group}/{verb}"
        for start in range(0, len(instances), 1000):
            chunk = instances[start : start + 1000]
            refs = [{"instance": f"projects/{self.project}/zones/{zone}/instances/{name}"} for name in chunk]
            self._write("instanceGroups", verb, "POST", path, {"instances": refs}, zone)
