"""lbprov.httpenv: a provider client's proxies and CA bundle, read from the environment once.

The providers' tests (``test_request_cpu.py`` of lbprov_gcp and lbprov_azure) check that their
clients use it: no read per request, a proxy of the environment applied, ``NO_PROXY`` honoured.
Here: that what it reads is what ``requests`` would have read per request.
"""

from __future__ import annotations

import pytest
import requests.utils

from lbprov.httpenv import HttpEnvironment, read_http_environment
from lbprov.testing import clean_http_environment


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    clean_http_environment(monkeypatch)


def test_without_proxy_variables_there_is_no_proxy_and_no_bundle() -> None:
    assert read_http_environment("https://management.azure.com") == HttpEnvironment({}, None)


def test_the_proxies_are_those_requests_would_use_for_the_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://plain.corp:3128")
    env = read_http_environment("https://compute.googleapis.com")
    assert env.proxies["https"] == "http://proxy.corp:3128"
    assert env.proxies == requests.utils.get_environ_proxies("https://compute.googleapis.com")


@pytest.mark.parametrize("no_proxy", ["compute.googleapis.com", ".googleapis.com", "*", "10.0.0.0/8"])
def test_no_proxy_bypasses_the_endpoint(monkeypatch: pytest.MonkeyPatch, no_proxy: str) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    endpoint = "https://10.1.2.3:8443" if "/" in no_proxy else "https://compute.googleapis.com"
    assert read_http_environment(endpoint).proxies == {}


def test_no_proxy_for_another_host_keeps_the_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,.internal")
    assert read_http_environment("https://management.azure.com").proxies["https"] == "http://proxy.corp:3128"


def test_the_ca_bundle_the_setting_then_requests_then_curl(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CURL_CA_BUNDLE", "/etc/ssl/certs/curl.pem")
    assert read_http_environment("https://x").ca_bundle == "/etc/ssl/certs/curl.pem"
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/corporate.pem")
    assert read_http_environment("https://x").ca_bundle == "/etc/ssl/certs/corporate.pem"
    assert read_http_environment("https://x", "/etc/lbprov/ca.pem").ca_bundle == "/etc/lbprov/ca.pem"


def test_an_empty_bundle_variable_is_no_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "")
    assert read_http_environment("https://x").ca_bundle is None
