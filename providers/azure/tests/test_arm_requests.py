"""lbprov_azure.arm sends the SDK's requests for less CPU: the same headers, body and errors, the
write's own answer not parsed, no SDK operation or model involved (issue 14, Azure create)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.core.polling import base_polling
from azure.mgmt.network.operations import _operations
from lbprov_azure import AzureProvider
from lbprov_azure import client as azclient
from lbprov_azure.desired import Ids
from lbprov_azure.testing import SANDBOX_RG

#: Headers whose value is drawn per request (the request id) or set by the HTTP layer.
_PER_REQUEST = {"x-ms-client-request-id", "content-length"}


def _recording(provider: AzureProvider) -> list[tuple[str, str, dict[str, str], bytes | None]]:
    """Every request the provider's transport sends: method, URL, headers, body."""
    transport = provider.client._client._pipeline._transport
    sent: list[tuple[str, str, dict[str, str], bytes | None]] = []
    real = transport.send

    def send(request: Any, **kwargs: Any) -> Any:
        body = request.content
        if hasattr(body, "getvalue"):
            body = body.getvalue()
        sent.append((request.method, request.url, dict(request.headers), body))
        return real(request, **kwargs)

    transport.send = send
    return sent


def _comparable(sent: list[tuple[str, str, dict[str, str], bytes | None]]) -> list[Any]:
    out = []
    for method, url, headers, body in sent:
        url = url.split("/operations/")[0]  # each write's operation has an id of its own
        kept = {k.lower(): v for k, v in headers.items() if k.lower() not in _PER_REQUEST}
        out.append((method, url, kept, json.loads(body) if body else None))
    return out


def _pip_body() -> dict[str, Any]:
    return {
        "location": "westeurope",
        "sku": {"name": "Standard"},
        "properties": {"publicIPAllocationMethod": "Static"},
        "tags": {"k8s-azure-service": "default/web"},
    }


def test_a_put_sends_the_sdks_requests_header_for_header(provider: AzureProvider, cluster: str) -> None:
    sdk_sent = _recording(provider)
    ops = provider.client.public_ip_addresses
    sdk = ops.begin_create_or_update(
        SANDBOX_RG,
        f"{cluster}-sdk",
        io.BytesIO(json.dumps(_pip_body()).encode()),
        headers={"If-None-Match": "*"},
        content_type="application/json",
    ).result()
    lean_provider = AzureProvider.from_settings(provider.settings)
    lean_sent = _recording(lean_provider)
    lean = azclient.put_json(
        provider.settings,
        lean_provider.observer.arm,
        Ids(provider.settings.subscription_id).pip(SANDBOX_RG, f"{cluster}-sdk"),
        _pip_body(),
        {"If-Match": sdk.etag},
        60,
        "public IP",
    )
    assert [m for m, *_ in lean_sent] == [m for m, *_ in sdk_sent] == ["PUT", "GET", "GET"]
    sdk_view, lean_view = _comparable(sdk_sent), _comparable(lean_sent)
    # the same requests but for the precondition the test asked of each
    assert sdk_view[0][2].pop("if-none-match") == "*" and lean_view[0][2].pop("if-match") == sdk.etag
    assert lean_view == sdk_view
    # as azure-core's polling does, a write's polls and final GET repeat its request id
    ids = [h["x-ms-client-request-id"] for _, _, h, _ in lean_sent]
    assert len(set(ids)) == 1
    assert lean["properties"]["ipAddress"] == sdk.ip_address
    assert lean == ops.get(SANDBOX_RG, f"{cluster}-sdk").as_dict()


def test_a_read_sends_the_sdk_clients_request(provider: AzureProvider, cluster: str) -> None:
    path = Ids(provider.settings.subscription_id).pip(SANDBOX_RG, f"{cluster}-none")
    sdk_sent = _recording(provider)
    from azure.core.rest import HttpRequest

    provider.client.send_request(HttpRequest("GET", f"{path}?api-version={azclient.ARM_API_VERSION}"))
    lean_provider = AzureProvider.from_settings(provider.settings)
    lean_sent = _recording(lean_provider)
    assert azclient.get_json(lean_provider.observer.arm, path) is None
    assert _comparable(lean_sent) == _comparable(sdk_sent)
    assert lean_provider.calls.stats.to_json()["by_operation"] == {"publicIPAddresses.get (read)": 1}


@pytest.mark.parametrize(
    ("headers", "body_change", "status", "code"),
    [
        ({"If-None-Match": "*"}, {}, 412, "PreconditionFailed"),  # it exists
        ({}, {"tags": {"bad/name": "x"}}, 400, "InvalidTagNameCharacters"),
    ],
)
def test_an_error_answer_raises_what_the_sdk_raised(
    provider: AzureProvider,
    cluster: str,
    headers: dict[str, str],
    body_change: dict[str, Any],
    status: int,
    code: str,
) -> None:
    ops = provider.client.public_ip_addresses
    name = f"{cluster}-err"
    ops.begin_create_or_update(SANDBOX_RG, name, _pip_body()).result()
    body = {**_pip_body(), **body_change}
    with pytest.raises(HttpResponseError) as sdk_error:
        ops.begin_create_or_update(
            SANDBOX_RG,
            name,
            io.BytesIO(json.dumps(body).encode()),
            headers=headers,
            content_type="application/json",
        ).result()
    with pytest.raises(HttpResponseError) as lean_error:
        azclient.put_json(
            provider.settings,
            provider.observer.arm,
            Ids(provider.settings.subscription_id).pip(SANDBOX_RG, name),
            body,
            headers,
            60,
            "public IP",
        )
    for exc in (sdk_error.value, lean_error.value):
        assert (exc.status_code, azclient.error_code(exc)) == (status, code)
    assert type(lean_error.value) is type(sdk_error.value)


def test_a_writes_own_answer_is_not_parsed_its_operations_are(
    provider: AzureProvider, cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """azure-core parsed a PUT's answer (the whole resource: a shared load balancer's hundreds of KB)
    looking for an operation ``status`` it never has; the polls' answers are still read."""
    parsed: list[str] = []
    as_json = base_polling._as_json

    def recording(response: Any) -> Any:
        parsed.append(response.request.method)
        return as_json(response)

    monkeypatch.setattr(base_polling, "_as_json", recording)
    result = azclient.put_json(
        provider.settings,
        provider.observer.arm,
        Ids(provider.settings.subscription_id).pip(SANDBOX_RG, f"{cluster}-parse"),
        _pip_body(),
        {"If-None-Match": "*"},
        60,
        "public IP",
    )
    assert result["properties"]["provisioningState"] == "Succeeded"
    assert "PUT" not in parsed
    assert parsed and set(parsed) == {"GET"}  # the operation's status


def test_a_service_is_created_without_any_sdk_operation_for_reads_and_puts(
    provider: AzureProvider, intent_for: Any, make_service: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an SDK operation was used")

    for ops in (
        _operations.LoadBalancersOperations,
        _operations.PublicIPAddressesOperations,
        _operations.SecurityRulesOperations,
        _operations.NetworkSecurityGroupsOperations,
    ):
        for name in ("get", "list", "begin_create_or_update"):
            if hasattr(ops, name):
                monkeypatch.setattr(ops, name, refuse)
    intent = intent_for(make_service(ports=[("TCP", 80), ("UDP", 53)]))
    plan = provider.plan(intent)
    assert {c.kind for c in plan.changes} >= {"load-balancer", "public-ip", "nsg-rule"}
    assert provider.apply(plan)[0].ip
    assert provider.plan(intent).empty


def test_a_read_only_provider_refuses_a_put_unsent(provider: AzureProvider, cluster: str, state: Any) -> None:
    """The dry run's guard (CloudCallsPolicy after authentication) holds for these requests too."""
    from lbprov.cloudcalls import ReadOnlyViolation

    dry = AzureProvider.from_settings(provider.settings, read_only=True)
    logged = len(state.log)
    with pytest.raises(ReadOnlyViolation):
        azclient.put_json(
            dry.settings,
            dry.observer.arm,
            Ids(dry.settings.subscription_id).pip(SANDBOX_RG, f"{cluster}-dry"),
            _pip_body(),
            {"If-None-Match": "*"},
            60,
            "public IP",
        )
    assert len(state.log) == logged  # nothing reached the emulator
    assert (
        azclient.get_json(
            dry.observer.arm, Ids(dry.settings.subscription_id).pip(SANDBOX_RG, f"{cluster}-dry")
        )
        is None
    )
