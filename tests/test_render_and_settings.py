"""Plan rendering (text and JSON), settings precedence, naming and the provider registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from lbprov.model import Action, Change, Ingress, Plan, ServiceRef
from lbprov.naming import is_owned_by_service, lb_name, ownership_tags, validate_cluster_name
from lbprov.provider import ProviderNotFound, available_providers, load_provider
from lbprov.render import SCHEMA_ID, plan_to_json, render_plan
from lbprov.settings import ProviderSettings, SettingsError, load_settings, read_settings_file

REF = ServiceRef("shop", "web", "5f2b2c3e-1111-2222-3333-444455556666")


def sample_plan() -> Plan:
    return Plan(
        provider="aws",
        ref=REF,
        changes=(
            Change(Action.CREATE, "listener", "80", after={"port": 80, "protocol": "TCP"}),
            Change(
                Action.UPDATE,
                "target-group",
                "tg-1",
                before={"port": 30080, "hc": "TCP"},
                after={"port": 30081, "hc": "TCP"},
            ),
            Change(
                Action.REPLACE,
                "load-balancer",
                "lb",
                before={"scheme": "internal"},
                after={"scheme": "internet-facing"},
                reason="scheme cannot change in place",
            ),
            Change(Action.DELETE, "security-group-rule", "r1", before={"cidr": "0.0.0.0/0"}),
        ),
        ingress=(Ingress(hostname="lb.example"),),
        operation="ensure",
    )


def test_text_plan_reads_like_terraform() -> None:
    text = render_plan(sample_plan())
    assert "shop/web (aws, ensure)" in text
    assert "  + listener '80'" in text and "port: 80" in text
    assert "  ~ target-group 'tg-1'" in text and "port: 30080 -> 30081" in text and "hc:" not in text
    assert "-/+ load-balancer 'lb'  # scheme cannot change in place" in text
    assert "  - security-group-rule 'r1'" in text
    assert "Plan: 1 to create, 1 to update, 1 to replace, 1 to delete." in text
    assert "\033[" not in text
    assert "\033[32m" in render_plan(sample_plan(), colour=True)


def test_empty_plan_says_no_changes() -> None:
    plan = Plan(provider="aws", ref=REF)
    assert plan.empty and "no changes" in render_plan(plan)


def test_json_plan_has_stable_schema() -> None:
    data = plan_to_json(sample_plan())
    json.dumps(data)
    assert data["schema"] == SCHEMA_ID
    assert data["service"] == {"namespace": "shop", "name": "web", "uid": REF.uid}
    assert data["summary"] == {"create": 1, "update": 1, "replace": 1, "delete": 1, "adopt": 0}
    assert data["changes"][1]["diff"] == {"port": {"before": 30080, "after": 30081}}
    assert data["ingress"] == [{"hostname": "lb.example"}]


def test_lb_name_is_upstream_default_load_balancer_name() -> None:
    assert lb_name("5f2b2c3e-1111-2222-3333-444455556666") == "a5f2b2c3e11112222333344445555666"


def test_ownership_requires_cluster_and_uid() -> None:
    tags = ownership_tags("prod", REF)
    assert is_owned_by_service(tags, "prod", REF.uid)
    assert not is_owned_by_service(tags, "other", REF.uid)
    assert not is_owned_by_service(tags, "prod", "another-uid")


@pytest.mark.parametrize("bad", ["", "-a", "_a", "a.b", "a b", "x" * 101, "é"])
def test_cluster_names_outside_what_eks_allows_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="cluster name"):
        validate_cluster_name(bad)


@pytest.mark.parametrize("good", ["prod", "Prod-EU_1", "0cluster", "x" * 100, "my_cluster-"])
def test_cluster_names_as_eks_allows_them_are_kept_verbatim(good: str) -> None:
    assert validate_cluster_name(good) == good


class DemoSettings(ProviderSettings):
    model_config = SettingsConfigDict(env_prefix="LBPROV_DEMO_", extra="forbid", frozen=True)
    region: str = Field("r-default", description="region")


def test_settings_precedence_flags_over_env_over_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    f = tmp_path / "s.yaml"
    f.write_text("cluster_name: from-file\ndemo:\n  region: r-file\n")
    data = read_settings_file(f)
    assert load_settings(DemoSettings, "demo", file_data=data).region == "r-file"
    monkeypatch.setenv("LBPROV_DEMO_REGION", "r-env")
    s = load_settings(DemoSettings, "demo", file_data=data)
    assert (s.region, s.cluster_name) == ("r-env", "from-file")
    assert (
        load_settings(DemoSettings, "demo", file_data=data, overrides={"region": "r-flag"}).region == "r-flag"
    )
    monkeypatch.setenv("LBPROV_CLUSTER_NAME", "from-env")
    assert load_settings(DemoSettings, "demo").cluster_name == "from-env"


def test_settings_errors_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="unknown_field"):
        load_settings(DemoSettings, "demo", overrides={"unknown_field": 1})
    with pytest.raises(SettingsError, match="cluster_name"):
        load_settings(DemoSettings, "demo", overrides={"cluster_name": "bad.name"})
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(SettingsError, match="mapping"):
        read_settings_file(bad)
    with pytest.raises(SettingsError, match="No such file"):
        read_settings_file(tmp_path / "missing.yaml")


def test_registry_lists_installed_providers_and_explains_missing_ones() -> None:
    assert {"aws", "gcp", "azure"} <= set(available_providers())
    with pytest.raises(ProviderNotFound, match="lbprov-nosuch"):
        load_provider("nosuch")
