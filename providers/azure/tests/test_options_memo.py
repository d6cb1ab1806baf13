"""Azure options are parsed once per distinct input (lbprov_azure.options_memo), and the memo never
changes an answer: it is keyed by everything parse_options reads, and refusals are never kept."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

import pytest
from lbprov_azure.options import (
    ALLOWED_IP_RANGES,
    DISABLE_FLOATING_IP,
    INTERNAL,
    IPV4,
    PROBE_INTERVAL,
    parse_options,
)
from lbprov_azure.options_memo import OptionsMemo

from lbprov.model import HealthCheck, Intent, InvalidService, Port, ServiceRef

PORT_PROTOCOL = "service.beta.kubernetes.io/port_80_health-probe_protocol"
PORT_PROBE = "service.beta.kubernetes.io/port_80_health-probe_port"


def _intent(name: str = "a", **changes: Any) -> Intent:
    base = Intent(
        ref=ServiceRef("default", name, f"uid-{name}"),
        cluster="c",
        lb_name=f"a{name}",
        scheme="external",
        ports=(Port("http", "TCP", 80, 30080), Port("https", "TCP", 443, 30443)),
        targets=(),
    )
    return replace(base, **changes)


#: (intent changes, annotations): inputs that parse_options accepts, several per field it reads
CASES: list[tuple[dict[str, Any], dict[str, str]]] = [
    ({}, {}),
    ({}, {"kubectl.kubernetes.io/last-applied-configuration": "{}", "team": "x"}),
    ({}, {INTERNAL: "true"}),
    ({}, {DISABLE_FLOATING_IP: "true", PROBE_INTERVAL: "10"}),
    ({}, {ALLOWED_IP_RANGES: "10.0.0.0/8"}),
    ({"requested_ip": "20.1.2.3"}, {}),
    ({"requested_ip": "20.1.2.3"}, {IPV4: "20.1.2.3"}),
    ({"ip_families": ("IPv4", "IPv6")}, {ALLOWED_IP_RANGES: "fd00::/64"}),
    ({"source_ranges": ("10.0.0.0/8",)}, {}),
    ({}, {PORT_PROTOCOL: "Http"}),
    ({}, {PORT_PROBE: "https"}),
    ({"ports": (Port("http", "TCP", 80, 31080), Port("https", "TCP", 443, 31443))}, {PORT_PROBE: "https"}),
    ({"health_check": HealthCheck("HTTP", 32000, "/healthz")}, {}),
    (
        {"health_check": HealthCheck("HTTP", 32000, "/healthz")},
        {"service.beta.kubernetes.io/port_80_no_probe_rule": "true"},
    ),
]


def test_every_answer_is_the_one_parse_options_gives_for_that_very_input():
    memo = OptionsMemo()
    for _ in range(2):  # the second pass is answered from the memo, and must give the same
        for changes, given in CASES:
            intent = _intent(**changes)
            assert memo.parse(intent, given) == parse_options(intent, given), (
                changes,
                given,
            )
    assert memo.parsed <= len(CASES) and memo.hits >= len(CASES)


def test_inputs_that_differ_only_in_what_parse_options_reads_get_their_own_answer():
    memo = OptionsMemo()
    # the same annotations, a NodePort apart: a per-port probe port resolves to that NodePort
    a = memo.parse(_intent("a"), {PORT_PROBE: "https"})
    b = memo.parse(
        _intent("b", ports=(Port("http", "TCP", 80, 31080), Port("https", "TCP", 443, 31443))),
        {PORT_PROBE: "https"},
    )
    assert (a.ports[0].probe_port, b.ports[0].probe_port) == (30443, 31443)
    # spec.loadBalancerIP is the frontend address when no annotation names one
    assert memo.parse(_intent("c", requested_ip="20.1.2.3"), {}).ipv4 == "20.1.2.3"
    assert memo.parse(_intent("d"), {}).ipv4 is None
    # a Local Service refuses per-port probe protocols that a Cluster one accepts
    assert memo.parse(_intent("e"), {PORT_PROTOCOL: "Http"}).ports[0].probe_protocol == "Http"
    with pytest.raises(InvalidService, match="externalTrafficPolicy: Local"):
        memo.parse(_intent("f", health_check=HealthCheck("HTTP", 32000, "/healthz")), {PORT_PROTOCOL: "Http"})
    # allowed IP ranges are refused beside spec.loadBalancerSourceRanges, accepted without
    assert memo.parse(_intent("g"), {ALLOWED_IP_RANGES: "10.0.0.0/8"}).allowed_ip_ranges == ("10.0.0.0/8",)
    with pytest.raises(InvalidService, match="loadBalancerSourceRanges"):
        memo.parse(_intent("h", source_ranges=("10.0.0.0/8",)), {ALLOWED_IP_RANGES: "10.0.0.0/8"})
    # an IPv6 range needs the IPv6 family
    with pytest.raises(InvalidService, match="no IP family"):
        memo.parse(_intent("i"), {ALLOWED_IP_RANGES: "fd00::/64"})
    assert memo.parse(
        _intent("j", ip_families=("IPv4", "IPv6")), {ALLOWED_IP_RANGES: "fd00::/64"}
    ).allowed_ip_ranges


def test_a_refusal_is_never_kept_each_service_gets_its_own_error_every_time():
    memo = OptionsMemo()
    bad = {PROBE_INTERVAL: "1"}
    for name in ("a", "b", "a"):
        with pytest.raises(InvalidService) as err:
            memo.parse(_intent(name), bad)
        assert PROBE_INTERVAL in err.value.field
    assert memo.parsed == 0 and memo.hits == 0
    # unknown keys of the Azure namespace are refused as before, however often asked
    for _ in range(2):
        with pytest.raises(InvalidService, match="not supported by lbprov"):
            memo.parse(_intent(), {"service.beta.kubernetes.io/azure-no-such-key": "x"})


def test_services_with_the_same_azure_annotations_share_one_parse():
    memo = OptionsMemo()
    answers = {
        id(memo.parse(_intent(f"s{i}", ports=(Port("p", "TCP", 80, 30000 + i),)), {"team": str(i)}))
        for i in range(100)
    }
    assert len(answers) == 1 and memo.parsed == 1 and memo.hits == 99


class _Recording:
    """An intent that records which of its fields are read."""

    def __init__(self, intent: Intent) -> None:
        self._intent = intent
        self.read: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        self.read.add(name)
        return getattr(self._intent, name)


def test_the_memo_key_holds_every_intent_field_parse_options_reads():
    """Fails when parse_options starts reading a field of the intent the memo key leaves out."""
    keyed = {"requested_ip", "ip_families", "source_ranges", "ports", "health_check"}
    read: set[str] = set()
    for changes, given in CASES:
        rec = _Recording(_intent(**changes))
        parse_options(rec, given)  # type: ignore[arg-type]  # duck-typed on purpose
        read |= rec.read
    assert read <= keyed, sorted(read - keyed)
    assert keyed <= {f.name for f in fields(Intent)}
