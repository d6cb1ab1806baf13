"""The parts index answers exactly what the scans it replaces answered (``names.owns_part`` and
``observe.find`` over every item of a load balancer)."""

from __future__ import annotations

from lbprov_azure import names, parts
from lbprov_azure.diff.families import owned_frontends
from lbprov_azure.observe import find, items

A, B = "a" + "1" * 31, "a" + "2" * 31


def _lb(*names_by_field: tuple[str, list[str]]) -> dict:
    return {"properties": {fld: [{"name": n, "properties": {}} for n in ns] for fld, ns in names_by_field}}


def test_own_others_and_find_match_the_scans_they_replace():
    lb = _lb(
        ("frontendIPConfigurations", [A, B.upper(), "kube-frontend"]),
        ("loadBalancingRules", [f"{A}-TCP-80", f"{B}-UDP-53", f"{A.upper()}-TCP-443", "aks-outbound"]),
        ("probes", [f"{A}-TCP-80", f"{A}x-TCP-80"]),  # a longer name with A as a prefix is not A's
        ("backendAddressPools", ["pool"]),
    )
    for fld in (*parts.FIELDS, "backendAddressPools"):
        for base in (A, B, "kube", "a-with-dash"):
            scanned = [i for i in items(lb, fld) if names.owns_part(base, i["name"])]
            assert parts.own(lb, fld, base) == scanned, (fld, base)
            assert parts.others(lb, fld, base) == len(items(lb, fld)) - len(scanned)
        for it in items(lb, fld):
            for name in (it["name"], it["name"].swapcase(), it["name"] + "-x"):
                assert parts.find(lb, fld, name) is find(items(lb, fld), name)
    assert parts.own(None, "probes", A) == [] and parts.find(None, "probes", A) is None


def test_a_new_body_gets_a_new_index():
    before = _lb(("loadBalancingRules", [f"{A}-TCP-80"]))
    assert len(parts.own(before, "loadBalancingRules", A)) == 1
    after = _lb(("loadBalancingRules", [f"{A}-TCP-80", f"{A}-TCP-443"]))  # a write's result
    assert len(parts.own(after, "loadBalancingRules", A)) == 2
    assert len(parts.own(before, "loadBalancingRules", A)) == 1


def test_the_indexes_of_a_read_round_go_when_the_round_ends(provider):
    with provider.read_round():
        body = {"name": "lb-of-the-round", **_lb(("probes", [f"{A}-TCP-80"]))}
        assert parts.own(body, "probes", A) and parts._cache
    assert not parts._cache  # the round's bodies are not kept alive by their indexes


class _CountingList(list):
    """A body's list of parts that counts how often it is scanned from end to end."""

    scans = 0

    def __iter__(self):
        type(self).scans += 1
        return super().__iter__()


def test_a_services_frontends_of_both_families_come_from_the_index_not_a_scan_per_plan():
    frontends = [A, f"{A}-IPv6", f"{A}-subnet1", B, f"{B.upper()}-IPV6", "kube-frontend"]
    lb = {"name": "lb-frontends", **_lb(("frontendIPConfigurations", frontends))}
    wanted = {A: [A, f"{A}-IPv6"], B: [B, f"{B.upper()}-IPV6"], "a" + "3" * 31: []}
    for base, expected in wanted.items():  # what the scan by name answered
        scanned = [
            fe for fe in items(lb, "frontendIPConfigurations") if fe["name"].lower() in {base, f"{base}-ipv6"}
        ]
        assert [fe["name"] for fe in owned_frontends(lb, base)] == [fe["name"] for fe in scanned]
        assert [fe["name"] for fe in scanned] == expected
    counted = _CountingList(lb["properties"]["frontendIPConfigurations"])
    lb = {"name": "lb-frontends", "properties": {"frontendIPConfigurations": counted}}
    _CountingList.scans = 0
    for _ in range(20):  # 20 plans of a read round, each asking for its Service's frontends
        for base in wanted:
            owned_frontends(lb, base)
    assert _CountingList.scans == 1  # the index's one build
    assert owned_frontends(None, A) == []


def test_pool_addresses_follow_each_body_and_go_with_the_round() -> None:
    """parts.pool_addresses: the addresses of every backend pool of the body asked about (a newer
    body of the same load balancer gets its own answer), dropped by forget() as the indexes are."""
    from lbprov_azure import parts as p

    def lb(*pools: list[str]) -> dict:
        return {
            "name": "bench",
            "properties": {
                "backendAddressPools": [
                    {
                        "name": f"pool-{i}",
                        "properties": {
                            "loadBalancerBackendAddresses": [{"properties": {"ipAddress": ip}} for ip in ips]
                        },
                    }
                    for i, ips in enumerate(pools)
                ]
            },
        }

    first = lb(["10.0.0.4", "10.0.0.5"], ["10.0.0.6"])
    assert p.pool_addresses(first) == {"10.0.0.4", "10.0.0.5", "10.0.0.6"}
    second = lb(["10.0.0.4"])  # the same load balancer, written since
    assert p.pool_addresses(second) == {"10.0.0.4"}
    assert p.pool_addresses(first) == {"10.0.0.4", "10.0.0.5", "10.0.0.6"}
    assert p.pool_addresses(lb()) == frozenset()
    p.forget()
    assert p._pools == {}
