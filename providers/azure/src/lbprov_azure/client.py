"""The NetworkManagementClient as lbprov uses it: every request through CloudCalls.

Reads and PUTs are sent by :class:`~lbprov_azure.arm.ArmRequests` (the same requests, without the
SDK's generated operations and with a two-policy pipeline: less CPU per request); deletes by the
SDK's operations. Both share the client's credential and transport (:func:`make_clients`).

Two decisions make the counts honest and the read-only guard airtight:

* a pipeline policy (:class:`CloudCallsPolicy`) sits after authentication and calls
  ``CloudCalls.before_send(<operation>)`` for every request that actually goes on the wire (long
  operation polls included), with the operation name derived from method + URL;
* azure-core's own retry policy is not in the pipeline (:func:`pipeline_policies`): retries happen
  in CloudCalls (tenacity, honouring ``Retry-After``), so each retry is counted once and throttling
  is visible in metrics.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from azure.core.credentials import AccessToken
from azure.core.exceptions import (
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline import PipelineRequest, policies
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.core.polling import LROPoller
from azure.core.polling.base_polling import BadResponse, LocationPolling, StatusCheckPolling
from azure.mgmt.core.policies import (
    ARMAutoResourceProviderRegistrationPolicy,
    ARMChallengeAuthenticationPolicy,
)
from azure.mgmt.core.polling.arm_polling import (
    ARMPolling,
    AzureAsyncOperationPolling,
    BodyContentPolling,
)
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.network import __version__ as NETWORK_VERSION

from lbprov.cloudcalls import CloudCalls
from lbprov.httpenv import read_http_environment
from lbprov_azure.arm import ArmRequests, response_json
from lbprov_azure.operations import operation_for
from lbprov_azure.settings import AzureSettings
from lbprov_azure.transport import Urllib3Transport

T = TypeVar("T")
JSON = dict[str, Any]

#: The api-version of azure-mgmt-network's operations (its generated default), used by the raw reads
#: below so that they address the same API as the SDK's own calls (a test pins the two together).
ARM_API_VERSION = "2026-03-01"


class CloudCallsPolicy(SansIOHTTPPolicy):  # type: ignore[type-arg]  # serves every request type the SDK sends
    """Names, guards, rate-limits and counts every request before it is sent."""

    def __init__(self, calls: CloudCalls) -> None:
        self.calls = calls

    def on_request(self, request: PipelineRequest) -> None:  # type: ignore[type-arg]  # as the class
        http = request.http_request
        self.calls.before_send(operation_for(http.method, http.url))


class StaticTokenCredential:
    """A credential that always returns one token: the sandbox's. Never logged."""

    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token, int(time.time()) + 3600)


def status_of(exc: BaseException) -> int | None:
    if isinstance(exc, HttpResponseError):
        return exc.status_code
    return None


def is_throttle(exc: BaseException) -> bool:
    return status_of(exc) == 429


def is_retryable(exc: BaseException) -> bool:
    """Throttling, server errors and connection failures are transient; 4xx otherwise are not."""
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return True
    status = status_of(exc)
    return status is not None and (status == 429 or status >= 500)


def retry_after(exc: BaseException) -> float | None:
    """Seconds from the ``Retry-After`` header of a throttled/5xx answer (seconds form only)."""
    if not isinstance(exc, HttpResponseError) or exc.response is None:
        return None
    value = exc.response.headers.get("Retry-After")  # type: ignore[attr-defined]  # azure-core types response as its common base
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def error_code(exc: BaseException) -> str | None:
    """ARM's ``error.code`` of a failed request (e.g. ``PreconditionFailed``)."""
    if isinstance(exc, HttpResponseError):
        if exc.error is not None and exc.error.code:
            return str(exc.error.code)
        try:
            body = exc.response.json() if exc.response is not None else None  # type: ignore[attr-defined]  # as retry_after
        except Exception:
            return None
        if isinstance(body, dict):
            code = (body.get("error") or {}).get("code")
            return str(code) if code else None
    return None


class OperationTimeout(RuntimeError):
    """A long-running ARM operation did not end within ``operation_timeout_seconds``.

    Not a ``TimeoutError``: ARM answered (the operation is in progress); CloudCalls treats a
    ``TimeoutError`` as an endpoint that does not answer."""


def finish(poller: LROPoller[T], timeout: float, what: str) -> T:
    """The result of a long-running operation, polled for at most ``timeout`` seconds.

    azure-core polls the operation's ``Azure-AsyncOperation`` / ``Location`` URL (honouring
    ``Retry-After``) and raises :class:`~azure.core.exceptions.HttpResponseError` when it ends
    ``Failed``; one still ``InProgress`` at the deadline raises :class:`OperationTimeout` (it goes on
    in Azure, and the next reconcile sees its result) instead of holding a worker forever.
    """
    poller.wait(timeout)
    if not poller.done():
        raise _still_in_progress(what, timeout)
    return poller.result()


def _still_in_progress(what: str, timeout: float) -> OperationTimeout:
    return OperationTimeout(
        f"{what}: the ARM operation is still in progress after {timeout:g} s "
        "(setting operation_timeout_seconds); the next reconcile picks up its result"
    )


def make_client(settings: AzureSettings, calls: CloudCalls) -> NetworkManagementClient:
    """The SDK client alone (see :func:`make_clients`)."""
    return make_clients(settings, calls)[0]


def make_clients(settings: AzureSettings, calls: CloudCalls) -> tuple[NetworkManagementClient, ArmRequests]:
    """The SDK client, and :class:`~lbprov_azure.arm.ArmRequests` for the requests that lbprov sends
    itself (reads and PUTs: the controller's CPU per request, :mod:`lbprov_azure.arm`). Both share
    one credential and one transport (its connection pool, timeouts, proxy and CA bundle)."""
    if settings.auth == "static-token":
        assert settings.static_token is not None
        credential: Any = StaticTokenCredential(settings.static_token.get_secret_value())
    else:  # pragma: no cover - needs a real Azure identity
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    endpoint = settings.base_url or "https://management.azure.com"
    kwargs: dict[str, Any] = {
        "policies": pipeline_policies(credential, calls),
        "polling_interval": _polling_interval(settings),
    }
    if settings.base_url:
        kwargs["base_url"] = settings.base_url
        kwargs["credential_scopes"] = [ARM_SCOPE]
    kwargs.update(frozen_environment(settings))
    transport = Urllib3Transport(
        endpoint=endpoint,
        proxies=kwargs["proxies"],
        verify=kwargs.get("connection_verify", True),
        connection_timeout=calls.timeouts.connect,
        read_timeout=calls.timeouts.read,
    )
    kwargs["transport"] = transport
    sdk = NetworkManagementClient(credential, settings.subscription_id, **kwargs)
    arm = ArmRequests(
        endpoint=endpoint,
        transport=transport,
        credential=credential,
        scope=ARM_SCOPE,
        calls_policy=CloudCallsPolicy(calls),
    )
    return sdk, arm


#: The token scope of Azure Resource Manager (the SDK's default for the public cloud).
ARM_SCOPE = "https://management.azure.com/.default"


def pipeline_policies(credential: Any, calls: CloudCalls) -> list[Any]:
    """The client's pipeline: the SDK's default policies minus those lbprov does elsewhere or never uses.

    Kept, in the SDK's order: the request id, the user agent, ARM's resource-provider registration,
    redirects (with the clean-up of credentials on a redirect to another host), the bearer token
    (with ARM's claims challenges), and :class:`CloudCallsPolicy` after it, as before. Left out: the
    retry policy (retries are CloudCalls'; azure-core's were off), the proxy and headers policies
    (the transport holds the environment's proxy; lbprov sets no extra headers), the content decode
    policy (it parsed every JSON answer once more: long-operation polling, the SDK's error mapping
    and lbprov's raw reads parse the body themselves, and the SDK's deserializer parses it when no
    policy did), the custom hook, azure-core's network trace and HTTP logging and distributed
    tracing (lbprov logs and counts calls itself).
    Each left-out policy ran on every request: ~0.8 of 14.6 profiled CPU seconds on the scale bench.
    """
    return [
        policies.RequestIdPolicy(),
        policies.UserAgentPolicy(sdk_moniker=f"mgmt-network/{NETWORK_VERSION}"),
        ARMAutoResourceProviderRegistrationPolicy(),
        policies.RedirectPolicy(),
        ARMChallengeAuthenticationPolicy(credential, ARM_SCOPE),
        CloudCallsPolicy(calls),
        policies.SensitiveHeaderCleanupPolicy(),
    ]


def frozen_environment(settings: AzureSettings) -> dict[str, Any]:
    """The client's proxy and TLS settings, read from the environment once (:mod:`lbprov.httpenv`).

    A ``requests`` session that trusts the environment re-reads it on every request (about 9% of the
    controller's CPU in a profile of the Azure bench, when azure-core's ``RequestsTransport`` sent the
    requests). Every request of the client goes to one endpoint (ARM's long-operation URLs too): its
    proxies and the CA bundle (``settings.ca_bundle``, else the environment's) go to the client's
    transport (:class:`~lbprov_azure.transport.Urllib3Transport`), and ``use_env_settings=False``
    keeps azure-core's own per-request reads off.
    """
    env = read_http_environment(settings.base_url or "https://management.azure.com", settings.ca_bundle)
    out: dict[str, Any] = {"use_env_settings": False, "proxies": env.proxies}
    if env.ca_bundle:
        out["connection_verify"] = env.ca_bundle
    return out


def get_json(arm: ArmRequests, path: str) -> JSON | None:
    """One ARM resource as its REST JSON (None when it does not exist).

    Why not ``client.<ops>.get(...).as_dict()``: azure-mgmt-network's models deserialize every
    nested sub-resource into Python objects and back; for a shared load balancer with hundreds of
    frontends and rules that costs ~0.2 s of CPU per read, which made the controller CPU-bound and
    per-Service CPU grow with the load balancer's size. The JSON is the same (``as_dict()`` returns
    the REST shape); the request goes through :class:`~lbprov_azure.arm.ArmRequests`, so it is
    authenticated, counted and guarded as the SDK's are.
    """
    body = arm.get_json(f"{path}?api-version={ARM_API_VERSION}")
    return dict(body) if body is not None else None


def list_json(arm: ArmRequests, path: str) -> list[JSON]:
    """Every resource of an ARM collection as REST JSON, following ``nextLink`` (see :func:`get_json`)."""
    out: list[JSON] = []
    url: str | None = f"{path}?api-version={ARM_API_VERSION}"
    while url:
        page = arm.get_json(url) or {}
        out.extend(dict(v) for v in page.get("value") or [])
        url = page.get("nextLink")
    return out


def _polling_interval(settings: AzureSettings) -> float:
    """Seconds between long-operation polls when ARM sends no ``Retry-After`` (0 for an emulator)."""
    return 0 if settings.base_url else 2


class InThreadPolling(ARMPolling):
    """ARM's long-operation polling (azure-core's own ``run()``: the same requests), run in the
    calling thread, at once, inside ``initialize``.

    The SDK's ``LROPoller`` then finds the operation finished and starts no thread of its own: the
    caller only waited for that thread anyway (:func:`finish`), and a thread per write cost its start,
    hand-offs and wake-ups (about 1 ms of controller CPU per public IP create, measured with the
    emulator in a process of its own). An error of the operation is raised as ``LROPoller.result()``
    raised it; past ``timeout`` seconds the polling stops with :class:`OperationTimeout`, as
    :func:`finish` stopped waiting. Build it with :func:`_polling`.
    """

    def __init__(self, interval: float, *, timeout: float, what: str, **kwargs: Any) -> None:
        super().__init__(interval, **kwargs)
        self._deadline = time.monotonic() + timeout
        self._what_timeout = (what, timeout)

    def initialize(self, client: Any, initial_response: Any, deserialization_callback: Any) -> None:
        super().initialize(client, initial_response, deserialization_callback)
        if not self.finished():
            self.run()

    def _delay(self) -> None:
        if time.monotonic() + self._extract_delay() > self._deadline:
            raise _still_in_progress(*self._what_timeout)
        super()._delay()


class OperationStatusPolling(AzureAsyncOperationPolling):  # type: ignore[type-arg]  # serves every request type
    """azure-mgmt-core's ``Azure-AsyncOperation`` polling, without reading the write's own answer.

    azure-core takes the first status from the write's answer if it can (``set_initial_status``
    tries ``get_status``, which parses the body for a ``status`` member, and falls back to
    ``InProgress``). A PUT's answer is the resource, which has no ``status`` (ARM's RPC: the
    operation resource has ``status``, the resource ``provisioningState``), so the parse always ended
    in that fallback; for a shared load balancer it parsed the whole load balancer (hundreds of KB at
    600 frontends), about 8% of the controller's CPU on the scale bench (py-spy). Here the fallback is
    taken without the parse; the polls and their answers are read as azure-core reads them.
    """

    _first = False

    def __init__(self, on_succeeded: Callable[[], None] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: called once the operation has succeeded, before the final GET of the resource (see
        #: :func:`put_json`)
        self.on_succeeded = on_succeeded

    def get_final_get_url(self, pipeline_response: Any) -> str | None:
        # azure-core asks for the final GET's URL only after the operation succeeded (a failed or
        # canceled one raised before)
        if self.on_succeeded is not None:
            self.on_succeeded()
        return super().get_final_get_url(pipeline_response)

    def set_initial_status(self, pipeline_response: Any) -> str:
        self._first = True
        try:
            return str(super().set_initial_status(pipeline_response))
        finally:
            self._first = False

    def get_status(self, pipeline_response: Any) -> str:
        if self._first:
            raise BadResponse("the write's answer is the resource, not its operation: not read")
        return str(super().get_status(pipeline_response))


class JSONResultPolling(InThreadPolling):
    """:class:`InThreadPolling` whose final resource comes back as its REST JSON instead of an SDK
    model: the model round trip of a shared load balancer's PUT result (``_deserialize`` then
    ``as_dict()``) was the controller's largest CPU cost per write, growing with the load balancer
    (see :func:`get_json`, which does the same for reads). Its ``Azure-AsyncOperation`` polling is
    :class:`OperationStatusPolling`; the other ways (``Location``, the body's provisioningState) are
    azure-mgmt-core's, in its order."""

    def __init__(
        self,
        interval: float,
        *,
        timeout: float,
        what: str,
        on_succeeded: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault(
            "lro_algorithms",
            [
                OperationStatusPolling(on_succeeded),
                LocationPolling(),
                BodyContentPolling(),
                StatusCheckPolling(),
            ],
        )
        super().__init__(interval, timeout=timeout, what=what, **kwargs)

    def initialize(self, client: Any, initial_response: Any, deserialization_callback: Any) -> None:
        super().initialize(client, initial_response, response_json)


def _polling(
    cls: type[InThreadPolling], settings: AzureSettings, timeout: float, what: str, **extra: Any
) -> InThreadPolling:
    endpoint = settings.base_url or "https://management.azure.com"
    return cls(
        _polling_interval(settings),
        timeout=timeout,
        what=what,
        path_format_arguments={"endpoint": endpoint},
        **extra,
    )


def put_json(
    settings: AzureSettings,
    arm: ArmRequests,
    path: str,
    body: JSON,
    headers: Mapping[str, str],
    timeout: float,
    what: str,
    on_succeeded: Callable[[], None] | None = None,
) -> JSON:
    """Create or replace the resource at ``path`` (its ARM id) with ``body``; returns the resource
    as written, as REST JSON.

    ``on_succeeded`` is called in the calling thread when the operation's status says it succeeded,
    before the final GET of the resource (ARM's RPC for a PUT answered with ``Azure-AsyncOperation``:
    the resource is read again at its URL once the operation has succeeded): from then on the
    resource is ``Succeeded`` and may be referenced (a load balancer's frontend refuses a public IP
    whose operation has not succeeded, ``ReferencedResourceNotProvisioned``). It is not called when
    no status was polled (an answer that was already final) or when the operation failed.

    The request is the SDK's ``begin_create_or_update`` (its api-version, the body as JSON bytes,
    ``headers`` such as ``If-Match``), sent by :class:`~lbprov_azure.arm.ArmRequests`; the operation is
    polled by :class:`JSONResultPolling`, which returns the final resource without the model round
    trip. Call it inside the retried callable: each attempt needs a polling of its own.
    """
    polling = _polling(JSONResultPolling, settings, timeout, what, on_succeeded=on_succeeded)
    return arm.put_json(f"{path}?api-version={ARM_API_VERSION}", body, headers, polling)


def delete(
    settings: AzureSettings, begin: Callable[[ARMPolling], LROPoller[Any]], timeout: float, what: str
) -> None:
    """Delete a resource: ``begin(polling)`` is its ``begin_delete`` with the path arguments (and
    headers) bound; polled in the calling thread (:class:`InThreadPolling`). Call it inside the
    retried callable: each attempt needs a poller of its own."""
    finish(begin(_polling(InThreadPolling, settings, timeout, what)), timeout, what)
