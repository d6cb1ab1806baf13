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

import difflib
import json
import os
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, TypeVar, get_args

import yaml
from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
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


def flag_name(provider: str, field: str) -> str:
    """The command-line flag of a provider setting: ``--<provider>-<field>`` (``--gcp-project``)."""
    if field == "cluster_name":
        return "--cluster-name"
    return f"--{provider}-{field.replace('_', '-')}"


def is_secret(annotation: Any) -> bool:
    """``SecretStr`` fields have no flag: a flag's value shows in the process list."""
    return annotation is SecretStr or SecretStr in get_args(annotation)


def where_to_set(model: type[BaseSettings], provider: str, field: str) -> str:
    """The flag, variable and file key of ``field``: ``--gcp-project (LBPROV_GCP_PROJECT, gcp.project)``.

    A secret has no flag (``LBPROV_AWS_SECRET_ACCESS_KEY, aws.secret_access_key``); ``cluster_id``
    neither.
    """
    info = model.model_fields.get(field)
    env = SHARED_FIELDS.get(field) or _env_name(model, field)
    key = field if field in SHARED_FIELDS else f"{provider}.{field}"
    if field == "cluster_name" or (field not in SHARED_FIELDS and info and not is_secret(info.annotation)):
        return f"{flag_name(provider, field)} ({env}, {key})"
    return f"{env} ({key})"


def _did_you_mean(word: str, candidates: Collection[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _problems(model: type[BaseSettings], provider: str, exc: ValidationError) -> str:
    """pydantic's errors, said with the flags and variables the user can change: unknown keys
    first, then the missing settings in one list, then each bad value."""
    unknown: list[str] = []
    missing: list[str] = []
    bad: list[str] = []
    fields = [f for f in model.model_fields if f not in SHARED_FIELDS]
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        field = loc[0] if loc else ""
        if err["type"] == "extra_forbidden":
            unknown.append(f"unknown setting {provider}.{'.'.join(loc)}{_did_you_mean(field, fields)}")
        elif field not in model.model_fields:
            bad.append(f"{'.'.join(loc) or '(settings)'}: {err['msg']}")
        elif err["type"] == "missing":
            missing.append(field)
        else:
            value = err.get("input")
            msg = str(err["msg"]).removeprefix("Value error, ")
            plain = isinstance(value, str | int | float) and len(loc) == 1 and repr(value) not in msg
            shown = f"{value!r}: " if plain else ""
            bad.append(f"{where_to_set(model, provider, field)}: {shown}{msg}")
    if missing:
        unknown.append(
            f"required but not given: {', '.join(where_to_set(model, provider, f) for f in missing)}"
        )
    return "; ".join([*unknown, *bad])


def check_top_level(file_data: Mapping[str, Any], sections: Collection[str]) -> None:
    """Refuse a top-level key of the settings file that is neither shared nor a provider section.

    A typo there (``clustername:``) would otherwise be ignored silently and the default used,
    while typos inside a provider section are caught by the model (``extra="forbid"``).
    """
    known = [*SHARED_FIELDS, *sorted(sections)]
    for key in file_data:
        if key not in known:
            raise SettingsError(
                f"settings file: unknown top-level key {key!r}{_did_you_mean(str(key), known)}; "
                f"expected {', '.join(SHARED_FIELDS)} or a provider section ({', '.join(sorted(sections))})"
            )


def load_settings(
    model: type[S],
    provider: str,
    *,
    file_data: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
    sections: Collection[str] | None = None,
) -> S:
    """Build ``model`` from (lowest first) file data, environment and explicit overrides.

    ``sections`` are the provider sections a settings file may hold (the installed providers);
    with it, any other top-level key is an error. Errors name the flag, the environment variable
    and the file key of each setting at fault.
    """
    values: dict[str, Any] = {}
    file_data = dict(file_data or {})
    if sections is not None:
        check_top_level(file_data, {*sections, provider})
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
        raise SettingsError(f"{provider} settings: {_problems(model, provider, exc)}") from None


def settings_as_dict(settings: BaseModel) -> dict[str, Any]:
    return settings.model_dump(mode="json")
