"""Metrics from CloudCalls events, the /metrics /healthz /readyz endpoint, and JSON logs."""

from __future__ import annotations

import io
import json
import logging
import urllib.error
import urllib.request

import pytest

from lbprov.cloudcalls import CloudCalls, RateLimits, ReadOnlyViolation
from lbprov.observability import HTTPEndpoint, JSONFormatter, Metrics, parse_address


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_cloud_calls_are_counted_by_provider_operation_kind_and_result() -> None:
    metrics = Metrics()
    calls = CloudCalls(
        "aws", is_write=lambda op: op.startswith("Create"), limits=RateLimits(None, 1, None, 1)
    )
    metrics.observe_cloud_calls(calls)
    calls.call("DescribeLoadBalancers", lambda: None)
    calls.call("CreateTargetGroup", lambda: None)
    calls.read_only = True
    with pytest.raises(ReadOnlyViolation):
        calls.call("CreateListener", lambda: None)
    text = metrics.render().decode()
    assert (
        'lbprov_cloud_calls_total{kind="read",operation="DescribeLoadBalancers",provider="aws",result="sent"} 1.0'
        in text
    )
    assert (
        'lbprov_cloud_calls_total{kind="write",operation="CreateTargetGroup",provider="aws",result="ok"} 1.0'
        in text
    )
    assert 'operation="CreateListener",provider="aws",result="refused"} 1.0' in text
    metrics.detach()
    calls.read_only = False
    calls.call("CreateTargetGroup", lambda: None)
    assert metrics.cloud_calls.labels("aws", "CreateTargetGroup", "write", "ok")._value.get() == 1


def test_endpoint_serves_metrics_health_and_readiness() -> None:
    metrics = Metrics()
    metrics.reconciles.labels("aws", "success").inc()
    ready = {"v": False}
    ep = HTTPEndpoint("127.0.0.1:0", metrics, ready=lambda: ready["v"]).start()
    try:
        status, body = _get(ep.url + "/metrics")
        assert status == 200 and 'lbprov_reconciles_total{provider="aws",result="success"} 1.0' in body
        assert _get(ep.url + "/healthz")[0] == 200
        assert _get(ep.url + "/readyz")[0] == 503
        ready["v"] = True
        assert _get(ep.url + "/readyz")[0] == 200
        assert _get(ep.url + "/nope")[0] == 404
    finally:
        ep.stop()


def test_parse_address() -> None:
    assert parse_address(":8080") == ("0.0.0.0", 8080)
    assert parse_address("127.0.0.1:0") == ("127.0.0.1", 0)
    with pytest.raises(ValueError):
        parse_address("8080x")


def test_json_logs_are_one_object_per_line_with_service_fields_and_no_credentials() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter())
    logger = logging.getLogger("lbprov.test.json")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.info(
        "applying plan: %s",
        "1 to create",
        extra={"service": "ns/web", "provider": "aws", "plan": "1 to create", "secret_access_key": "AKIA..."},
    )
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    obj = json.loads(lines[0])
    assert obj["msg"] == "applying plan: 1 to create"
    assert obj["service"] == "ns/web" and obj["provider"] == "aws" and obj["plan"] == "1 to create"
    assert obj["level"] == "info" and "time" in obj
    assert "AKIA" not in lines[0]
