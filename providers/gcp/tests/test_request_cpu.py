"""The controller's CPU per cloud request and per plan (issue 14): structural cuts pinned by counts.

Each test counts the work that used to be done per request or per plan and is now done once per
client or once per read round; none measures time.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import certifi
import pytest
import requests
from gcp_helpers import converge, intent_for, make_service
from google.auth.credentials import AnonymousCredentials
from google.protobuf import json_format
from lbprov_gcp import GCPProvider, observe, options
from lbprov_gcp.client import Compute
from lbprov_gcp.operations import is_write
from lbprov_gcp.sandbox.emulator import ComputeEmulator
from lbprov_gcp.settings import GCPSettings

from lbprov.cloudcalls import CallEvent, CloudCalls, CloudUnreachable
from lbprov.provider import SandboxCloud
from lbprov.testing import clean_http_environment


@pytest.fixture
def clean_proxy_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    clean_http_environment(monkeypatch)
    yield monkeypatch


def _compute(sandbox: SandboxCloud) -> Compute:
    """A Compute client on the emulator without retries (a refused connection fails at once)."""
    s = sandbox.settings
    settings = GCPSettings(
        project=s["project"], region=s["region"], network=s["network"], api_endpoint=s["api_endpoint"]
    )
    return Compute(settings, CloudCalls("gcp", is_write=is_write), credentials=AnonymousCredentials())


def test_the_environment_is_read_once_per_client_not_once_per_request(
    sandbox: SandboxCloud, clean_proxy_env: pytest.MonkeyPatch
) -> None:
    reads: list[str] = []
    real_proxies = requests.utils.get_environ_proxies

    def proxies(url: str, no_proxy: Any = None) -> Any:
        reads.append("proxies")
        return real_proxies(url, no_proxy=no_proxy)

    clean_proxy_env.setattr(requests.utils, "get_environ_proxies", proxies)
    compute = _compute(sandbox)
    assert reads == ["proxies"]
    for _ in range(10):
        compute.list_items("firewalls")
        compute.get("addresses", "missing")
    assert reads == ["proxies"]


def test_a_proxy_from_the_environment_still_applies_and_no_proxy_still_bypasses_it(
    sandbox: SandboxCloud, clean_proxy_env: pytest.MonkeyPatch
) -> None:
    # A proxy nobody listens on: a request sent through it fails; one that bypasses it succeeds.
    clean_proxy_env.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    with pytest.raises(CloudUnreachable, match="cannot reach"):
        _compute(sandbox).list_items("firewalls")
    clean_proxy_env.setenv("NO_PROXY", "127.0.0.1")
    assert isinstance(_compute(sandbox).list_items("firewalls"), list)


def test_the_ca_bundle_of_the_environment_is_kept(clean_proxy_env: pytest.MonkeyPatch) -> None:
    settings = GCPSettings(project="lbprov-test", region="us-central1", network="default")
    clean_proxy_env.delenv("REQUESTS_CA_BUNDLE", raising=False)
    clean_proxy_env.delenv("CURL_CA_BUNDLE", raising=False)
    plain = Compute(settings, CloudCalls("gcp", is_write=is_write), credentials=AnonymousCredentials())
    assert plain.transport.pool.connection_pool_kw["ca_certs"] == certifi.where()  # as requests verifies
    clean_proxy_env.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/corporate.pem")
    compute = Compute(settings, CloudCalls("gcp", is_write=is_write), credentials=AnonymousCredentials())
    assert compute.transport.pool.connection_pool_kw["ca_certs"] == "/etc/ssl/certs/corporate.pem"


class _CountingList(list[Any]):
    """A listing that counts how often it is scanned from end to end."""

    def __init__(self, items: list[Any], scans: Counter[str], collection: str) -> None:
        super().__init__(items)
        self.scans, self.collection = scans, collection

    def __iter__(self) -> Iterator[Any]:
        self.scans[self.collection] += 1
        return super().__iter__()


def test_a_read_round_scans_each_listing_once_however_many_plans_look_up_their_names(
    provider: GCPProvider, sandbox: SandboxCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each plan of a round used to scan every listing for its few names: N plans, N x N."""
    intents = [
        intent_for(
            provider, make_service(f"s{i}", ip=f"203.0.113.{i + 10}" if i % 2 else None), sandbox.nodes
        )
        for i in range(6)
    ]
    for intent in intents:
        converge(provider, intent)
    scans: Counter[str] = Counter()
    real = provider.compute.list_items

    def list_items(collection: str, filter: str | None = None, zone: str | None = None) -> list[Any]:
        return _CountingList(real(collection, filter, zone), scans, collection)

    monkeypatch.setattr(provider.compute, "list_items", list_items)
    with provider.read_round():
        for _ in range(3):
            assert all(provider.plan(intent).empty for intent in intents)
    # one scan to build each index: by name, and by IP for the requested IPs' lookups
    assert scans == {
        "healthChecks": 1,
        "backendServices": 1,
        "forwardingRules": 2,
        "addresses": 2,
        "firewalls": 1,
    }


def test_no_request_or_answer_is_converted_to_protobuf_and_back(
    provider: GCPProvider, sandbox: SandboxCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests and answers are the API's JSON as sent: the SDK used to parse every listed resource
    into a protobuf message, which the provider turned back into JSON (two conversions per
    resource), and every write body and operation the other way round."""
    intents = [intent_for(provider, make_service(f"c{i}"), sandbox.nodes) for i in range(4)]
    conversions: Counter[str] = Counter()
    for name in ("Parse", "ParseDict", "MessageToJson", "MessageToDict"):
        real = getattr(json_format, name)

        def counted(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            conversions[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(json_format, name, counted)
    for intent in intents:
        converge(provider, intent)
    assert provider.calls.stats.writes >= 4 * 5, dict(provider.calls.stats.sent)
    provider.calls.reset()
    with provider.read_round():
        assert all(provider.plan(intent).empty for intent in intents)
    assert provider.calls.stats.reads == 8, dict(provider.calls.stats.sent)
    assert conversions == {}


def test_reads_follow_every_page_of_a_list(
    provider: GCPProvider, sandbox: SandboxCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GCE pages lists (at most 500 per page); the emulator is made to page at 1 here."""
    intents = [intent_for(provider, make_service(f"p{i}"), sandbox.nodes) for i in range(3)]
    for intent in intents:
        converge(provider, intent)
    real_page = ComputeEmulator._page

    def tiny_pages(query: dict[str, str]) -> tuple[int, int]:
        start, _ = real_page(query)
        return start, 1

    monkeypatch.setattr(ComputeEmulator, "_page", staticmethod(tiny_pages))
    provider.calls.reset()
    assert len(provider.compute.list_items("forwardingRules")) == 3
    groups = provider.compute.instance_groups("k8s-ig--")
    members = {key: provider.compute.group_members(*key) for key in groups}
    assert sorted(m for ms in members.values() for m in ms) == sorted(n.name for n in sandbox.nodes)
    sent = provider.calls.stats.sent
    assert sent[("forwardingRules.list", "read")] == 3, dict(sent)
    assert sent[("instanceGroups.listInstances", "read")] == len(sandbox.nodes), dict(sent)
    with provider.read_round():  # and a round's plans see every resource
        assert all(provider.plan(intent).empty for intent in intents)


def test_the_provider_converges_without_importing_google_cloud_compute(sandbox: SandboxCloud) -> None:
    """The SDK's import alone was over a second of CPU and about 110 MB in every controller."""
    script = """
import json, sys
from lbprov_gcp.testing import converge, intent_for, make_service, provider_for
from lbprov.model import SandboxNode
from lbprov.provider import SandboxCloud
nodes = [SandboxNode(**n) for n in json.loads(sys.argv[1])]
cloud = SandboxCloud(provider="gcp", settings=json.loads(sys.argv[2]), nodes=nodes, endpoint="")
provider = provider_for(cloud)
intent = intent_for(provider, make_service("imports"), nodes)
converge(provider, intent)
assert provider.plan(intent).empty
print(json.dumps(sorted(m for m in sys.modules if m.startswith("google.cloud"))))
"""
    nodes = json.dumps([dataclasses.asdict(n) for n in sandbox.nodes])
    done = subprocess.run(
        [sys.executable, "-c", script, nodes, json.dumps(sandbox.settings)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == []


class _CountingPattern:
    """A compiled pattern that counts its matches."""

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern, self.matches = pattern, 0

    def match(self, text: str) -> re.Match[str] | None:
        self.matches += 1
        return self.pattern.match(text)


def test_a_round_of_plans_parses_the_nodes_provider_ids_once(
    provider: GCPProvider, sandbox: SandboxCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each plan parsed every node's providerID three times (validation, reads, diff)."""
    intents = [intent_for(provider, make_service(f"n{i}"), sandbox.nodes) for i in range(5)]
    for intent in intents:
        converge(provider, intent)
    counting = _CountingPattern(options._PROVIDER_ID)
    monkeypatch.setattr(options, "_PROVIDER_ID", counting)
    options.instances.cache_clear()
    with provider.read_round():
        for intent in intents:
            resolved = provider.resolve(intent, {})
            assert provider.plan(resolved).empty
    assert counting.matches == len(sandbox.nodes)


def test_a_running_operation_costs_one_wait_per_write_whatever_its_scope(
    provider: GCPProvider, sandbox: SandboxCloud, server: Any
) -> None:
    """``operations.wait`` answers when the operation is done: one call per write, zonal, regional
    or global, and no polling interval that waits longer than the operation takes."""
    server.emulator.operation_delay = 0.05
    converge(provider, intent_for(provider, make_service("waits"), sandbox.nodes))
    server.emulator.operation_delay = 0.0
    stats = provider.calls.stats
    waits = {op: n for (op, kind), n in stats.sent.items() if op.endswith("Operations.wait")}
    assert set(waits) == {"regionOperations.wait", "zoneOperations.wait", "globalOperations.wait"}
    assert sum(waits.values()) == stats.writes, dict(stats.sent)


def test_each_round_parses_a_firewall_destination_once_however_many_times_it_is_planned(
    provider: GCPProvider, sandbox: SandboxCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    intents = [intent_for(provider, make_service(f"d{i}"), sandbox.nodes) for i in range(4)]
    for intent in intents:
        converge(provider, intent)
    parsed: list[str] = []
    real = ipaddress.ip_network

    def ip_network(value: str, strict: bool = True) -> Any:
        parsed.append(value)
        return real(value, strict=strict)

    monkeypatch.setattr(observe, "ipaddress", SimpleNamespace(ip_network=ip_network))
    observe._cidr.cache_clear()
    for _ in range(3):
        with provider.read_round():
            assert all(provider.plan(intent).empty for intent in intents)
    assert len(parsed) == len(set(parsed)) == 4  # one traffic firewall per Service


def test_a_rounds_first_plan_lists_the_collections_at_the_same_time(
    provider: GCPProvider, sandbox: SandboxCloud, server: Any
) -> None:
    """The first plan of a round paid each listing's round trip in turn; now the longest chain."""
    intents = [intent_for(provider, make_service(f"w{i}"), sandbox.nodes) for i in range(3)]
    for intent in intents:
        converge(provider, intent)
    lock = threading.Lock()
    in_flight = {"now": 0, "most": 0}

    def track(event: CallEvent) -> None:
        with lock:
            if event.result == "sent":
                in_flight["now"] += 1
                in_flight["most"] = max(in_flight["most"], in_flight["now"])
            elif event.result in ("ok", "error"):
                in_flight["now"] -= 1

    server.inject(
        None, latency=1.0
    )  # every answer waits (long enough for a loaded CI machine to start them all)
    provider.calls.listeners.append(track)
    provider.calls.reset()
    with provider.read_round():
        assert all(provider.plan(intent).empty for intent in intents)
    # 5 collections and the groups at once; then the two zones' members at once
    assert in_flight["most"] >= 5, in_flight  # (6 unless the machine is too slow to start them)
    sent = provider.calls.stats.sent
    assert provider.calls.stats.reads == 8, dict(sent)  # the same reads as one after another
