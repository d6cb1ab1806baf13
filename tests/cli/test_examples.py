"""``examples/settings-<cloud>.yaml``: every field of the provider's settings model, with its meaning,
valid as written and valid with every commented-out setting switched on."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from lbprov.cli.options import settings_model
from lbprov.settings import SHARED_FIELDS, load_settings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PROVIDERS = ("aws", "gcp", "azure")


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("settings_examples", EXAMPLES / "settings_examples.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def commented_keys(text: str) -> dict[str, int]:
    """``# key: value`` lines (a setting switched off) by key, with their indentation."""
    return {m[2]: len(m[1]) for m in re.finditer(r"^( *)# (\w+): ", text, re.M)}


def switched_on(text: str, provider: str) -> str:
    fields = set(settings_model(provider).model_fields)
    return re.sub(
        r"^( *)# (\w+): ", lambda m: f"{m[1]}{m[2]}: " if m[2] in fields else m[0], text, flags=re.M
    )


@pytest.mark.parametrize("provider", PROVIDERS)
def test_example_is_what_the_generator_writes_from_the_model(provider: str) -> None:
    written = (EXAMPLES / f"settings-{provider}.yaml").read_text()
    assert written == generator().render(provider), (
        f"examples/settings-{provider}.yaml is behind the settings model: "
        "run .venv/bin/python examples/settings_examples.py"
    )


@pytest.mark.parametrize("provider", PROVIDERS)
def test_example_lists_every_field_with_its_meaning(provider: str) -> None:
    model = settings_model(provider)
    text = (EXAMPLES / f"settings-{provider}.yaml").read_text()
    data = yaml.safe_load(text)
    active = {*(k for k in data if k in SHARED_FIELDS), *data[provider]}
    listed = active | set(commented_keys(text))
    assert listed == set(model.model_fields)
    flat = " ".join(line.strip().lstrip("# ") for line in text.splitlines())
    for field, info in model.model_fields.items():
        assert info.description and " ".join(info.description.split()) in flat, field


@pytest.mark.parametrize("provider", PROVIDERS)
def test_example_is_valid_as_written_and_with_every_setting_on(
    provider: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(("LBPROV_", "AWS_", "AZURE_", "GOOGLE_")):
            monkeypatch.delenv(name)
    model = settings_model(provider)
    text = (EXAMPLES / f"settings-{provider}.yaml").read_text()
    as_written = load_settings(model, provider, file_data=yaml.safe_load(text), sections=PROVIDERS)  # type: ignore[type-var]
    assert as_written.cluster_name == "prod"
    everything = yaml.safe_load(switched_on(text, provider))
    assert set(everything[provider]) | {k for k in everything if k in SHARED_FIELDS} == set(
        model.model_fields
    )
    load_settings(model, provider, file_data=everything, sections=PROVIDERS)  # type: ignore[type-var]
