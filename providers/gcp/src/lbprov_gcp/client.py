"""The provider's only door to google-cloud-compute.

Every client's ``requests`` session gets :class:`GuardedAdapter` mounted, so each HTTP request the
SDK sends — including list pages and the operation polls that ``.result()`` makes — first passes
``CloudCalls.before_send(<api method id>)``: counted, rate-limited, and refused in read-only mode
before it leaves the process. Calls are wrapped in ``CloudCalls.call(..., hooked=True)`` for retries,
with the SDK's own retry switched off (``retry=None``) so there is a single retry policy. Inserts
carry a ``requestId`` that stays the same across retries, so a retried write whose first attempt
did reach the API is not applied twice.

Resources cross this boundary as plain dicts with the API's JSON field names.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from google.api_core import exceptions as gexc
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials, Credentials

from lbprov.cloudcalls import CloudCalls
from lbprov_gcp.operations import operation_for
from lbprov_gcp.settings import GCPSettings

Json = dict[str, Any]

_THROTTLE_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"}


class GuardedAdapter(requests.adapters.HTTPAdapter):
    """A requests adapter that passes every request through ``CloudCalls.before_send`` first."""

    def __init__(self, calls: CloudCalls) -> None:
        super().__init__()
        self.calls = calls

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        self.calls.before_send(operation_for(str(request.method), str(request.url)))
        return super().send(request, *args, **kwargs)


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
    return isinstance(exc, requests.ConnectionError | requests.Timeout)


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


def _compute_v1() -> Any:
    """google.cloud.compute_v1, imported on first use: it takes seconds to import, and every
    ``lbprov`` command loads every installed provider to build its settings flags."""
    from google.cloud import compute_v1

    return compute_v1


@dataclass(frozen=True)
class _Kind:
    client_name: str  # compute_v1 client class
    message_name: str  # compute_v1 message class
    field: str  # request field of the name, e.g. "forwarding_rule"
    scope: str  # "regions", "zones", "global"
    api: str  # API collection id for operation names

    @property
    def client(self) -> type[Any]:
        cls: type[Any] = getattr(_compute_v1(), self.client_name)
        return cls

    @property
    def message(self) -> type[Any]:
        cls: type[Any] = getattr(_compute_v1(), self.message_name)
        return cls


_KINDS: dict[str, _Kind] = {
    "healthChecks": _Kind(
        "RegionHealthChecksClient",
        "HealthCheck",
        "health_check",
        "regions",
        "regionHealthChecks",
    ),
    "backendServices": _Kind(
        "RegionBackendServicesClient",
        "BackendService",
        "backend_service",
        "regions",
        "regionBackendServices",
    ),
    "forwardingRules": _Kind(
        "ForwardingRulesClient",
        "ForwardingRule",
        "forwarding_rule",
        "regions",
        "forwardingRules",
    ),
    "addresses": _Kind("AddressesClient", "Address", "address", "regions", "addresses"),
    "firewalls": _Kind("FirewallsClient", "Firewall", "firewall", "global", "firewalls"),
    "instanceGroups": _Kind(
        "InstanceGroupsClient", "InstanceGroup", "instance_group", "zones", "instanceGroups"
    ),
    # read only: whether the subnetwork serves IPv6 (stackType, ipv6AccessType)
    "subnetworks": _Kind("SubnetworksClient", "Subnetwork", "subnetwork", "regions", "subnetworks"),
    # cloud-provider-gcp's target pools: read and deleted when lbprov takes their Service over
    "targetPools": _Kind("TargetPoolsClient", "TargetPool", "target_pool", "regions", "targetPools"),
    # read only: the nodes' network tags, when the setting node_tags does not give them
    "instances": _Kind("InstancesClient", "Instance", "instance", "zones", "instances"),
}


def freeze_environment(session: requests.Session, endpoint: str) -> None:
    """Read the environment's HTTP settings once, for the one host every request goes to.

    A ``requests`` session that trusts the environment reads it again on every request: all of
    ``os.environ`` twice for the proxies (``get_environ_proxies``), plus a ``~/.netrc`` lookup. At
    a few thousand requests per minute that was a quarter of the controller's CPU per request
    (bench/scale.py profile, issue 14). Every request of a :class:`Compute` goes to ``endpoint``,
    so the answer is the same each time: the proxies for it (``NO_PROXY`` honoured) and the CA
    bundle of ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` are taken now. ``.netrc`` is not used: the
    session's credentials sign every request.
    """
    session.proxies = dict(requests.utils.get_environ_proxies(endpoint))
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle and session.verify is True:
        session.verify = bundle
    session.trust_env = False


def credentials_for(settings: GCPSettings) -> Credentials:
    """Anonymous credentials for a loopback emulator; Application Default Credentials otherwise."""
    if settings.uses_emulator:
        return AnonymousCredentials()  # type: ignore[no-untyped-call]
    import google.auth

    creds, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/compute"])
    return creds


class Compute:
    """Typed, guarded, retried access to the Compute API for one project and region."""

    def __init__(
        self, settings: GCPSettings, calls: CloudCalls, credentials: Credentials | None = None
    ) -> None:
        self.settings = settings
        self.project = settings.project
        self.region = settings.region
        self.calls = calls
        creds = credentials or credentials_for(settings)
        options = ClientOptions(api_endpoint=settings.api_endpoint) if settings.api_endpoint else None
        adapter = GuardedAdapter(calls)

        def make(cls: type[Any]) -> Any:
            client = cls(credentials=creds, client_options=options, transport="rest")
            session = client._transport._session
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            freeze_environment(session, str(client._transport._host))
            return client

        self.region_ops = make(_compute_v1().RegionOperationsClient)
        self.zone_ops = make(_compute_v1().ZoneOperationsClient)
        self.global_ops = make(_compute_v1().GlobalOperationsClient)
        self.clients: dict[str, Any] = {}
        for kind, spec in _KINDS.items():
            client = make(spec.client)
            # ``.result()`` polls through these; by default they would be built for Google's endpoint
            # with an unguarded session.
            extended = client._transport._extended_operations_services
            extended["region_operations"] = self.region_ops
            extended["zone_operations"] = self.zone_ops
            extended["global_operations"] = self.global_ops
            self.clients[kind] = client
        # One answer deadline for every request (the REST transport takes a single timeout): the
        # core's read timeout, so a silent endpoint fails fast once instead of stalling a minute.
        self.timeout = self.calls.timeouts.read

    # -- plumbing ---------------------------------------------------------------------------------

    def _scope(self, kind: str, zone: str | None) -> dict[str, str]:
        scope = _KINDS[kind].scope
        if scope == "regions":
            return {"project": self.project, "region": self.region}
        if scope == "zones":
            if zone is None:
                raise ValueError(f"{kind} is zonal: give a zone")
            return {"project": self.project, "zone": zone}
        return {"project": self.project}

    def _call(self, op_name: str, fn: Callable[..., Any], /, **request: Any) -> Any:
        return self.calls.call(op_name, fn, request=request, retry=None, timeout=self.timeout, hooked=True)

    def _wait(self, op: Any, kind: str, zone: str | None) -> None:
        """Wait until a long-running operation is DONE (``operations.wait``), then raise its error."""
        done = _compute_v1().Operation.Status.DONE
        raw = op
        deadline = time.monotonic() + self.settings.operation_timeout_seconds
        scope = _KINDS[kind].scope
        while raw.status != done:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"operation {op.name} did not finish in {self.settings.operation_timeout_seconds}s"
                )
            if scope == "regions":
                raw = self._call(
                    "regionOperations.wait",
                    self.region_ops.wait,
                    operation=op.name,
                    **self._scope(kind, zone),
                )
            elif scope == "zones":
                raw = self._call(
                    "zoneOperations.wait", self.zone_ops.wait, operation=op.name, **self._scope(kind, zone)
                )
            else:
                raw = self._call(
                    "globalOperations.wait", self.global_ops.wait, operation=op.name, project=self.project
                )
        code = raw.http_error_status_code
        errors = [{"reason": e.code, "message": e.message} for e in raw.error.errors] if raw.error else []
        if code or errors:
            message = raw.http_error_message or "; ".join(e["message"] for e in errors) or "operation failed"
            raise gexc.from_http_status(code or 500, message, errors=errors)  # type: ignore[no-untyped-call]

    # -- the REST API as JSON (reads, and the legacy httpHealthChecks) -----------------------------

    def _rest(
        self,
        op: str,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        body: Json | None = None,
    ) -> Json:
        """One request to ``projects/<project>/<path>`` through a compute_v1 client's guarded session
        (counted, rate-limited, refused in read-only mode like every other call), answered as the
        API's JSON; errors are raised as google-api-core exceptions, as the SDK raises them.

        Reads go this way rather than through the SDK's methods: the SDK parses each answer into
        protobuf messages, which the provider then turned back into JSON, resource by resource.
        For a round's listings of every Service's resources, those two conversions were most of
        the controller's CPU per resync (issue 14). The JSON the API sends is what the provider
        works with; it differs from the round trip only in leaving out empty lists and maps.
        The legacy ``global/httpHealthChecks`` have no client in google-cloud-compute at all.
        """
        client = self.clients["firewalls"]
        url = f"{client._transport._host}/compute/v1/projects/{self.project}/{path}"

        def run(request: Mapping[str, Any], retry: Any, timeout: float) -> Json:
            response = client._transport._session.request(
                method, url, params=params, json=body, timeout=timeout
            )
            if response.status_code >= 400:
                raise gexc.from_http_response(response)  # type: ignore[no-untyped-call]
            data: Json = response.json()
            return data

        result: Json = self.calls.call(
            op, run, request={"url": url, **(params or {})}, retry=None, timeout=self.timeout, hooked=True
        )
        return result

    def _path(self, kind: str, zone: str | None) -> str:
        """The collection's path under the project (``regions/R/forwardingRules``)."""
        scope = _KINDS[kind].scope if kind in _KINDS else "global"
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

    def _legacy_delete(self, name: str) -> None:
        raw = self._rest(
            "httpHealthChecks.delete",
            "DELETE",
            f"global/httpHealthChecks/{name}",
            {"requestId": str(uuid.uuid4())},
        )
        op = _compute_v1().Operation.from_json(json.dumps(raw), ignore_unknown_fields=True)
        self._wait(op, "firewalls", None)  # a global operation, like the firewalls'

    # -- reads (the API's JSON, see :meth:`_rest`) --------------------------------------------------

    def get(self, kind: str, name: str, zone: str | None = None) -> Json | None:
        try:
            return self._rest(f"{_KINDS[kind].api}.get", "GET", f"{self._path(kind, zone)}/{name}")
        except gexc.NotFound:
            return None

    def list_items(self, kind: str, filter: str | None = None, zone: str | None = None) -> list[Json]:
        api = _KINDS[kind].api if kind in _KINDS else kind
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

    def insert(self, kind: str, body: Json, zone: str | None = None) -> None:
        spec = _KINDS[kind]
        resource = spec.message.from_json(json.dumps(body), ignore_unknown_fields=False)
        op = self._call(
            f"{spec.api}.insert",
            self.clients[kind].insert,
            **self._scope(kind, zone),
            **{f"{spec.field}_resource": resource},
            request_id=str(uuid.uuid4()),
        )
        self._wait(op, kind, zone)

    def delete(self, kind: str, name: str, zone: str | None = None) -> None:
        if kind == "httpHealthChecks":
            self._legacy_delete(name)
            return
        spec = _KINDS[kind]
        op = self._call(
            f"{spec.api}.delete",
            self.clients[kind].delete,
            **self._scope(kind, zone),
            **{spec.field: name},
            request_id=str(uuid.uuid4()),
        )
        self._wait(op, kind, zone)

    def modify(self, kind: str, verb: str, name: str, body: Json) -> None:
        """``patch`` (merge) or ``update`` (replace) a resource; ``body`` carries the fingerprint."""
        spec = _KINDS[kind]
        resource = spec.message.from_json(json.dumps(body), ignore_unknown_fields=False)
        op = self._call(
            f"{spec.api}.{verb}",
            getattr(self.clients[kind], verb),
            **self._scope(kind, None),
            **{spec.field: name, f"{spec.field}_resource": resource},
            request_id=str(uuid.uuid4()),
        )
        self._wait(op, kind, None)

    def set_labels(self, kind: str, name: str, body: Json) -> None:
        """``setLabels`` on a regional forwarding rule or address (``body``: labels + labelFingerprint)."""
        spec = _KINDS[kind]
        op = self._call(
            f"{spec.api}.setLabels",
            self.clients[kind].set_labels,
            **self._scope(kind, None),
            resource=name,
            region_set_labels_request_resource=_compute_v1().RegionSetLabelsRequest.from_json(
                json.dumps(body)
            ),
            request_id=str(uuid.uuid4()),
        )
        self._wait(op, kind, None)

    def change_members(self, verb: str, zone: str, group: str, instances: list[str]) -> None:
        """``addInstances`` / ``removeInstances`` in chunks of 1000 (the API's limit per call)."""
        client = self.clients["instanceGroups"]
        method = client.add_instances if verb == "addInstances" else client.remove_instances
        field = (
            "instance_groups_add_instances_request_resource"
            if verb == "addInstances"
            else "instance_groups_remove_instances_request_resource"
        )
        for start in range(0, len(instances), 1000):
            chunk = instances[start : start + 1000]
            refs = [{"instance": f"projects/{self.project}/zones/{zone}/instances/{name}"} for name in chunk]
            op = self._call(
                f"instanceGroups.{verb}",
                method,
                project=self.project,
                zone=zone,
                instance_group=group,
                request_id=str(uuid.uuid4()),
                **{field: {"instances": refs}},
            )
            self._wait(op, "instanceGroups", zone)
