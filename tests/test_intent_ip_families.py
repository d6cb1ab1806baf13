"""build_intent: ``spec.ipFamilies`` / ``spec.ipFamilyPolicy`` against what a provider can serve."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from lbprov.intent import IntentSettings, build_intent
from lbprov.model import InvalidService

SETTINGS = IntentSettings(cluster="test")


def service(**spec: Any) -> dict[str, Any]:
    ports = [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080, "nodePort": 30080}]
    return {
        "metadata": {"name": "web", "namespace": "shop", "uid": "5f2b2c3e-1111-2222-3333-444455556666"},
        "spec": {"type": "LoadBalancer", "ports": ports, **spec},
    }


def node(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"providerID": f"aws:///zone-a/i-{name}"}}


class _DualStack:
    """Only what build_intent reads of a provider: the families it serves (resolve is identity)."""

    ip_families: ClassVar[frozenset[str]] = frozenset({"IPv4", "IPv6"})

    def resolve(self, intent: Any, annotations: Any) -> Any:
        return intent


class _IPv4Only(_DualStack):
    ip_families: ClassVar[frozenset[str]] = frozenset({"IPv4"})


def test_a_service_without_the_fields_is_ipv4_single_stack() -> None:
    intent = build_intent(service(), [node("a")], SETTINGS)
    assert intent.ip_families == ("IPv4",)
    assert intent.ip_family_policy == "SingleStack"


@pytest.mark.parametrize(
    ("families", "policy", "expected"),
    [
        (["IPv4"], "SingleStack", ("IPv4",)),
        (["IPv6"], "SingleStack", ("IPv6",)),
        (["IPv4", "IPv6"], "RequireDualStack", ("IPv4", "IPv6")),
        (["IPv6", "IPv4"], "PreferDualStack", ("IPv6", "IPv4")),
    ],
)
def test_a_dual_stack_provider_gets_the_families_in_order(
    families: list[str], policy: str, expected: tuple[str, ...]
) -> None:
    spec = service(ipFamilies=families, ipFamilyPolicy=policy)
    intent = build_intent(spec, [node("a")], SETTINGS, _DualStack())
    assert intent.ip_families == expected
    assert intent.ip_family_policy == policy


def test_prefer_dual_stack_drops_a_secondary_family_the_provider_cannot_serve() -> None:
    spec = service(ipFamilies=["IPv4", "IPv6"], ipFamilyPolicy="PreferDualStack")
    assert build_intent(spec, [node("a")], SETTINGS, _IPv4Only()).ip_families == ("IPv4",)


@pytest.mark.parametrize(
    ("families", "policy"),
    [
        (["IPv6"], "SingleStack"),
        (["IPv4", "IPv6"], "RequireDualStack"),
        (["IPv6", "IPv4"], "PreferDualStack"),  # the primary family is never dropped
    ],
)
def test_an_ipv6_service_never_silently_gets_an_ipv4_load_balancer(families: list[str], policy: str) -> None:
    spec = service(ipFamilies=families, ipFamilyPolicy=policy)
    with pytest.raises(InvalidService) as err:
        build_intent(spec, [node("a")], SETTINGS, _IPv4Only())
    assert "spec.ipFamilies" in str(err.value)
    assert "IPv6" in str(err.value)


def test_without_a_provider_only_ipv4_is_served() -> None:
    with pytest.raises(InvalidService, match=r"spec\.ipFamilies"):
        build_intent(service(ipFamilies=["IPv6"]), [node("a")], SETTINGS)


@pytest.mark.parametrize(
    ("field", "spec"),
    [
        ("spec.ipFamilies", {"ipFamilies": ["IPv5"]}),
        ("spec.ipFamilies", {"ipFamilies": ["IPv4", "IPv4"], "ipFamilyPolicy": "RequireDualStack"}),
        ("spec.ipFamilies", {"ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "SingleStack"}),
        ("spec.ipFamilyPolicy", {"ipFamilyPolicy": "DualStackPlease"}),
    ],
)
def test_bad_values_are_refused_naming_the_field(field: str, spec: dict[str, Any]) -> None:
    with pytest.raises(InvalidService) as err:
        build_intent(service(**spec), [node("a")], SETTINGS, _DualStack())
    assert field in str(err.value)
