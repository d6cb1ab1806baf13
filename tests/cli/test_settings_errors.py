"""Settings errors name what the user can change: the flag, the environment variable, the file key.

Checked with the real providers' settings models through the real command line.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_testlib import run_cli

PROVIDER_VARS = ("LBPROV_GCP_", "LBPROV_AWS_", "LBPROV_AZURE_", "LBPROV_CLUSTER_")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(PROVIDER_VARS):
            monkeypatch.delenv(name)


def error_of(argv: list[str]) -> str:
    r = run_cli(argv)
    assert r.code == 1, r
    lines = r.err.splitlines()
    assert len(lines) == 1, r.err
    return lines[0]


def test_missing_settings_name_their_flags_and_variables(tmp_path: Path) -> None:
    line = error_of(["plan", "--provider", "gcp", "--gcp-project", "my-project", "-f", str(tmp_path)])
    assert line == (
        "lbprov plan: error: gcp settings: required but not given: "
        "--gcp-region (LBPROV_GCP_REGION, gcp.region), --gcp-network (LBPROV_GCP_NETWORK, gcp.network)"
    )


def test_a_bad_value_names_the_flag_the_variable_and_the_value() -> None:
    line = error_of(["plan", "--provider", "aws", "--aws-max-attempts", "0"])
    assert line == (
        "lbprov plan: error: aws settings: --aws-max-attempts (LBPROV_AWS_MAX_ATTEMPTS, aws.max_attempts): "
        "'0': Input should be greater than or equal to 1"
    )


def test_a_typo_at_the_top_of_the_settings_file_is_caught(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text("clustername: prod\naws:\n  region: eu-west-1\n")
    line = error_of(["plan", "--provider", "aws", "--settings", str(f)])
    assert line.startswith(
        "lbprov plan: error: settings file: unknown top-level key 'clustername' (did you mean 'cluster_name'?)"
    )
    assert "aws, azure, gcp" in line


def test_a_typo_inside_a_provider_section_is_caught_with_a_suggestion(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text("aws:\n  regoin: eu-west-1\n")
    line = error_of(["plan", "--provider", "aws", "--settings", str(f)])
    assert line == "lbprov plan: error: aws settings: unknown setting aws.regoin (did you mean 'region'?)"


def test_other_providers_sections_and_shared_keys_are_accepted(tmp_path: Path) -> None:
    from lbprov_aws import AWSSettings

    from lbprov.settings import load_settings

    data = {"cluster_name": "prod", "cluster_id": "uid-1", "gcp": {"project": "x"}, "aws": {}}
    s = load_settings(AWSSettings, "aws", file_data=data, sections={"aws", "gcp", "azure"})
    assert (s.cluster_name, s.cluster_id) == ("prod", "uid-1")


@pytest.mark.parametrize(
    ("region", "why"),
    [
        ("eu-west-1a", "an AZ is not a region"),
        ("eu_west_1", "is not an AWS region code"),
        ("", "is not an AWS region code"),
        ("EU-WEST-1", "is not an AWS region code"),
    ],
)
def test_a_malformed_aws_region_is_refused_up_front_naming_the_flag(region: str, why: str) -> None:
    line = error_of(["plan", "--provider", "aws", f"--aws-region={region}"])
    assert line.startswith("lbprov plan: error: aws settings: --aws-region (LBPROV_AWS_REGION, aws.region): ")
    assert why in line


@pytest.mark.parametrize(
    "region", ["us-east-1", "us-gov-west-1", "cn-north-1", "ap-southeast-7", "us-isob-east-1"]
)
def test_real_aws_region_codes_are_accepted(region: str) -> None:
    from lbprov_aws import AWSSettings

    assert AWSSettings(region=region).region == region


AZURE_REQUIRED = {
    "subscription_id": "00000000-0000-0000-0000-000000000000",
    "resource_group": "rg",
    "vnet_name": "vnet",
    "subnet_name": "subnet",
}


@pytest.mark.parametrize(
    ("location", "why"),
    [("westeurop", "did you mean 'westeurope'?"), ("east us!", "is not an Azure region name")],
)
def test_a_wrong_azure_location_is_refused_naming_the_flag(location: str, why: str) -> None:
    flags = [f"--azure-{k.replace('_', '-')}={v}" for k, v in AZURE_REQUIRED.items()]
    line = error_of(["plan", "--provider", "azure", *flags, f"--azure-location={location}"])
    assert line.startswith(
        "lbprov plan: error: azure settings: --azure-location (LBPROV_AZURE_LOCATION, azure.location): "
    )
    assert why in line


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("West Europe", "westeurope"),
        ("eastus2", "eastus2"),
        ("westus4", "westus4"),
        ("newregion", "newregion"),
    ],
)
def test_azure_display_names_and_regions_newer_than_the_list_are_accepted(given: str, kept: str) -> None:
    from lbprov_azure import AzureSettings

    assert AzureSettings(**AZURE_REQUIRED, location=given).location == kept
