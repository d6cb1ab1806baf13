"""ARM requests without azure-mgmt-network's generated operations and with a two-policy pipeline.

Why: on the scale bench the Azure controller's CPU is the bound on create time, and most of it is
spent per ARM request (about 3.4 per Service: the public IP's PUT, operation poll and final GET, and
a share of the load balancers' and NSG rules' writes). Measured per GET against the emulator, with
the controller's CPU alone (``time.thread_time``): about 0.45 ms for urllib3 and http.client, 0.55
through the two-policy pipeline below, 0.8-0.9 through the SDK client's seven-policy pipeline and
``send_request`` (which deep-copies every request), and 0.9-1.2 ms through the SDK's generated
operation. A create's PUT went through the generated operation and its two polls through
``send_request``.

The requests are the ones the SDK sent (a test compares them header by header):

* ``x-ms-client-request-id``: a ``uuid1`` per request, as azure-core's ``RequestIdPolicy`` makes it;
  a write's polls and final GET repeat the write's id, as azure-core's polling does;
* ``User-Agent``: azure-core's ``UserAgentPolicy`` string for azure-mgmt-network, worked out once;
* ``Authorization``: azure-mgmt-core's ``ARMChallengeAuthenticationPolicy`` itself (the token cache
  and its refresh, claims challenges, HTTPS only), then :class:`~lbprov_azure.client.CloudCallsPolicy`
  (the operation's name, the read-only guard, the write fence, rate limits, counts), as in the SDK's
  pipeline (:func:`~lbprov_azure.client.pipeline_policies`); retries stay CloudCalls' own;
* a write's body as JSON bytes (the same JSON value, written by orjson: :func:`json_of`), ``Content-Type`` and ``Accept: application/json``, and the caller's
  ``If-Match`` / ``If-None-Match``.

Left out with the SDK's pipeline: following redirects (ARM answers none; a 3xx is an error here,
which CloudCalls does not retry) and the automatic registration of the Microsoft.Network resource
provider on a 409 ``MissingSubscriptionRegistration`` (a subscription that holds the cluster's VNet
has it registered).

A PUT is a long-running operation (:meth:`ArmRequests.put_json`), polled by azure-core's own ARM
polling (:class:`~lbprov_azure.client.JSONResultPolling`, in the calling thread), which is handed this
module's requests instead of the SDK client's.

Why a public IP's create stays three requests (PUT, poll, GET). ARM's contract (Azure/
azure-resource-manager-rpc, v1.0/async-api-reference.proxy.md, "Creating or Updating Resources
Asynchronously" and "ProvisioningState property") says a PUT whose answer carries a terminal
provisioningState (Succeeded) is done, and that while provisioning goes on the answer *must* carry a
non-terminal state and an ``Azure-AsyncOperation`` or ``Location`` header; azure-core polls whenever
the header is there. Microsoft.Network answers a PUT that starts work with ``Updating`` and the
header (so does the emulator), so skipping the poll on ``Succeeded`` saves nothing here, and knowing
the state means parsing the answer, which for a shared load balancer costs more than it could save.
The poll's answer is the operation resource (``status``, and RP-defined ``properties`` only on
success: Network's carry none), not the public IP, so the final GET is what brings the address.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import orjson
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ResourceNotModifiedError,
    map_error,
)
from azure.core.pipeline import Pipeline, PipelineResponse
from azure.core.pipeline.policies import SansIOHTTPPolicy, UserAgentPolicy
from azure.core.rest import HttpRequest
from azure.mgmt.core.exceptions import ARMErrorFormat
from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy
from azure.mgmt.network import __version__ as NETWORK_VERSION

from lbprov_azure.transport import Urllib3Transport

JSON = dict[str, Any]

#: The SDK's error map of a create_or_update's first answer (azure-mgmt-network's generated
#: ``_create_or_update_initial``): the same exception classes for the same statuses.
_PUT_ERRORS: Mapping[int, type[HttpResponseError]] = {
    401: ClientAuthenticationError,
    404: ResourceNotFoundError,
    409: ResourceExistsError,
    304: ResourceNotModifiedError,
}


def user_agent() -> str:
    """The ``User-Agent`` the SDK client's ``UserAgentPolicy`` sends (client.pipeline_policies)."""
    return UserAgentPolicy(sdk_moniker=f"mgmt-network/{NETWORK_VERSION}").user_agent


class ArmRequests:
    """Sends ARM requests with the SDK client's headers and authentication (see the module doc)."""

    def __init__(
        self,
        *,
        endpoint: str,
        transport: Urllib3Transport,
        credential: Any,
        scope: str,
        calls_policy: SansIOHTTPPolicy[HttpRequest, Any],
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.user_agent = user_agent()
        self._pipeline: Pipeline[HttpRequest, Any] = Pipeline(
            transport,
            policies=[ARMChallengeAuthenticationPolicy(credential, scope), calls_policy],
        )

    def url(self, path_or_url: str) -> str:
        return path_or_url if "://" in path_or_url else f"{self.endpoint}{path_or_url}"

    def send(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ) -> PipelineResponse[HttpRequest, Any]:
        """One request as it goes on the wire (no retry: CloudCalls retries the whole call)."""
        head = {
            **(headers or {}),
            "x-ms-client-request-id": request_id or str(uuid.uuid1()),
            "User-Agent": self.user_agent,
        }
        return self._pipeline.run(HttpRequest(method, self.url(url), headers=head, content=body))

    def get_json(self, url: str) -> Any:
        """GET ``url`` as JSON; None on 404 (another error status raises ``HttpResponseError``)."""
        response = self.send("GET", url).http_response
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise HttpResponseError(response=response)
        return json_of(response)

    def put_json(self, url: str, body: JSON, headers: Mapping[str, str], polling: Any) -> JSON:
        """Create or replace the resource at ``url`` and return it as REST JSON, once its operation
        has ended (``polling``: a :class:`~lbprov_azure.client.JSONResultPolling` for this write).

        The first answer's errors are the SDK's (the same classes, ARM's error format); the
        operation's are azure-core polling's."""
        response = self.send(
            "PUT",
            url,
            body=orjson.dumps(body),
            headers={**headers, "Content-Type": "application/json", "Accept": "application/json"},
        )
        first = response.http_response
        if first.status_code not in (200, 201):
            map_error(status_code=first.status_code, response=first, error_map=_PUT_ERRORS)
            raise HttpResponseError(response=first, error_format=ARMErrorFormat)
        polling.initialize(_PollingClient(self), response, response_json)
        return dict(polling.resource())


def json_of(response: Any) -> Any:
    """A response's JSON body, parsed by orjson.

    Why: a shared load balancer's body is large (about 2.4 MB at 600 frontends with two rules each)
    and the controller parses one per LB write (the final GET) and per LB read; orjson parses it in
    less than half the time of the standard library (4.4 against 9.9 ms of CPU, measured) and
    writes the PUT's body 20 times faster (0.6 against 12.7 ms). ARM's JSON is UTF-8 (RFC 8259); a
    body orjson refuses is read by azure-core's own ``json()`` (its charset), which raises what it
    raised before if it is not JSON either."""
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.json()


def response_json(pipeline_response: Any) -> Any:
    """The JSON body of a pipeline response (azure-core polling's deserialization callback)."""
    return json_of(pipeline_response.http_response)


class _PollingClient:
    """What azure-core's polling asks of its client (``request_status``: ``format_url``,
    ``send_request`` returning the pipeline response; ``_pipeline._transport`` to sleep), answered
    by :class:`ArmRequests`. A poll repeats the write's ``x-ms-client-request-id``: azure-core passes it
    as ``request_id``, which the SDK's ``RequestIdPolicy`` turned into the header."""

    def __init__(self, arm: ArmRequests) -> None:
        self._arm = arm
        self._pipeline = arm._pipeline

    def format_url(self, url: str, **kwargs: Any) -> str:
        return self._arm.url(url)

    def send_request(
        self,
        request: HttpRequest,
        *,
        _return_pipeline_response: bool = False,
        request_id: str | None = None,
        **kwargs: Any,
    ) -> Any:
        response = self._arm.send(
            request.method, request.url, headers=dict(request.headers), request_id=request_id
        )
        return response if _return_pipeline_response else response.http_response
