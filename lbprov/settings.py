"""Provider settings: one pydantic-settings model per provider, loaded from flags, env and a file.

Precedence (highest first): command-line flags, environment (``LBPROV_<PROVIDER>_<FIELD>``, and
``LBPROV_CLUSTER_NAME`` / ``LBPROV_CLUSTER_ID`` for the shared fields), the settings file, the
model's defaults. A settings file is YAML or JSON: top-level ``cluster_name`` (and, rarely,
``cluster_id``) plus one mapping per provider::

    cluster_name: prod-eu
    aws:
      region: eu-west-1
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lbprov.naming import validate_cluster_name

S = TypeVar("S", bound="ProviderSettings")

#: Fields shared by every provider: top-level keys of the settings file, and their variables.
SHARED_FIELDS = {"cluster_name": "LBPROV_CLUSTER_NAME", "cluster_id": "LBPROV_CLUSTER_ID"}


class SettingsError(ValueError):
    """Settings are missing or malformed; the message names the field and the fix."""


class ProviderSettings(BaseSettings):
    """Base of every provider's settings model.

    Subclasses set ``model_config = SettingsConfigDict(env_prefix="LBPROV_<PROVIDER>_", ...)`` and
    describe every field (the descriptions become ``--help`` text and README docs).
    """

    model_config = SettingsConfigDict(extra="forbid", frozen=True)

    cluster_name: str = Field(
        "kubernetes",
        description="Name of the Kubernetes cluster; used in cloud names and ownership tags "
        "(env LBPROV_CLUSTER_NAME).",
    )

    cluster_id: str | None = Field(
        None,
        description="Identity of the cluster: the UID of its kube-system Namespace, tagged on every "
        "resource as lbprov.io/cluster-id and checked before any delete decided from cloud state. "
        "Read from the cluster when unset; set it only to run without one (env LBPROV_CLUSTER_ID).",
    )

    @field_validator("cluster_name")
    @classmethod
    def _cluster_name_is_a_dns_label(cls, value: str) -> str:
        return validate_cluster_name(value)


def read_settings_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML/JSON settings file into a mapping."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise SettingsError(f"settings file {p}: {exc.strerror}") from None
    try:
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise SettingsError(f"settings file {p}: not valid YAML/JSON ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError(f"settings file {p}: expected a mapping at the top level")
    return data


def _env_name(model: type[BaseSettings], field: str) -> str:
    prefix = str(model.model_config.get("env_prefix", ""))
    return (prefix + field).upper()


def load_settings(
    model: type[S],
    provider: str,
    *,
    file_data: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> S:
    """Build ``model`` from (lowest first) file data, environment and explicit overrides."""
    values: dict[str, Any] = {}
    file_data = dict(file_data or {})
    section = file_data.get(provider) or {}
    if not isinstance(section, Mapping):
        raise SettingsError(f"settings file: '{provider}' must be a mapping")
    for shared in SHARED_FIELDS:
        if shared in file_data:
            values[shared] = file_data[shared]
    values.update(section)
    # The environment outranks the file: drop file values whose variable is set.
    for key in list(values):
        if os.environ.get(_env_name(model, key)) is not None:
            del values[key]
    for shared, variable in SHARED_FIELDS.items():
        if shared not in values and os.environ.get(variable):
            values[shared] = os.environ[variable]
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return model(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(settings)'}: {err['msg']}" for err in exc.errors()
        )
        raise SettingsError(f"{provider} settings: {problems}") from None


def settings_as_dict(settings: BaseModel) -> dict[str, Any]:
    return settings.model_dump(mode="json")
