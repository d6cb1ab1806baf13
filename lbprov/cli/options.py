"""Options shared by subcommands: provider selection and provider settings as flags.

Every field of every installed provider's settings model becomes a flag
``--<provider>-<field>`` (e.g. ``--aws-region``), documented from the field's description;
``--cluster-name`` and ``--settings FILE`` are common. Secret fields (``SecretStr``) get no flag:
a flag's value shows in the process list, so secrets come from the environment or the file only. Environment variables
``LBPROV_<PROVIDER>_<FIELD>`` and ``LBPROV_CLUSTER_NAME`` work too (see :mod:`lbprov.settings`).
"""

from __future__ import annotations

import argparse
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, get_args, get_origin

from pydantic import BaseModel

from lbprov.provider import Provider, available_providers, load_provider
from lbprov.settings import (
    SHARED_FIELDS,
    ProviderSettings,
    SettingsError,
    flag_name,
    is_secret,
    load_settings,
    read_settings_file,
)

if TYPE_CHECKING:
    from lbprov.kube.client import KubeClient

#: Entry-point group of the providers' settings models alone (``aws = "lbprov_aws.settings:AWSSettings"``).
SETTINGS_ENTRY_POINT_GROUP = "lbprov.settings"


def settings_model(name: str) -> type[BaseModel]:
    """Provider ``name``'s settings model, loaded without its cloud SDK where the provider allows.

    ``lbprov --help`` and the settings flags need every provider's settings model; loading the
    provider class would import boto3, google-cloud-compute and the Azure SDK (seconds). A provider
    registers the model alone under :data:`SETTINGS_ENTRY_POINT_GROUP`; one that does not (a third
    party's) is loaded whole, as before.
    """
    for ep in entry_points(group=SETTINGS_ENTRY_POINT_GROUP):
        if ep.name == name:
            model: type[BaseModel] = ep.load()
            return model
    return load_provider(name).settings_model


def _flag(provider: str, field: str) -> str:
    return flag_name(provider, field)


def _dest(provider: str, field: str) -> str:
    return f"setting__{provider}__{field}"


def add_provider_options(parser: argparse.ArgumentParser, *, multiple: bool = False) -> None:
    """Add ``--provider``, ``--cluster-name``, ``--settings`` and each provider's settings flags."""
    names = sorted(available_providers())
    if multiple:
        parser.add_argument(
            "--provider",
            action="append",
            choices=names,
            help="cloud provider to serve (repeat for several; default: aws)",
        )
        parser.add_argument(
            "--default-provider",
            metavar="NAME",
            choices=[*names, "none"],
            help="provider for Services without spec.loadBalancerClass: 'none' (the same as "
            "--no-default-provider) means no provider (default: the first --provider)",
        )
    else:
        parser.add_argument("--provider", choices=names, default="aws", help="cloud provider (default: aws)")
    parser.add_argument("--cluster-name", help="cluster name used in cloud names and ownership tags")
    parser.add_argument("--settings", metavar="FILE", help="provider settings file (YAML or JSON)")
    for name in names:
        try:
            model = settings_model(name)
        except Exception:  # a broken plugin must not break the CLI for the others
            continue
        group = parser.add_argument_group(f"{name} settings (env LBPROV_{name.upper()}_<FIELD>)")
        for field, info in model.model_fields.items():
            if field in SHARED_FIELDS or _is_secret(info.annotation):
                continue  # secrets only from env or the settings file: flags show in `ps`
            kwargs: dict[str, Any] = {
                "dest": _dest(name, field),
                # argparse expands %-formats in help: a description's own '%' is text
                "help": (info.description or "").replace("%", "%%"),
                "metavar": field.upper(),
            }
            if info.annotation is bool:
                kwargs["action"] = argparse.BooleanOptionalAction
                kwargs["default"] = None
                del kwargs["metavar"]
            elif _is_sequence(info.annotation):
                kwargs["type"] = _comma_list
                kwargs["help"] += " (comma-separated)"
            if info.is_required():
                kwargs["help"] += " (required)"
            elif info.default not in (None, "", (), []) and not isinstance(info.default, BaseModel):
                shown = (
                    ",".join(map(str, info.default))
                    if isinstance(info.default, list | tuple)
                    else info.default
                )
                kwargs["help"] += f" (default: {shown})"
            group.add_argument(_flag(name, field), **kwargs)


def _is_sequence(annotation: Any) -> bool:
    """list[...]/tuple[...]/set[...], optionally inside ``X | None``."""
    candidates = [annotation, *get_args(annotation)]
    return any(get_origin(a) in (list, tuple, set, frozenset) for a in candidates)


def _comma_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _is_secret(annotation: Any) -> bool:
    return is_secret(annotation)


def provider_settings(args: argparse.Namespace, name: str) -> ProviderSettings:
    """The validated settings of provider ``name`` from flags, env and ``--settings``."""
    model = settings_model(name)
    file_data = read_settings_file(args.settings) if getattr(args, "settings", None) else {}
    overrides: dict[str, Any] = {
        field: getattr(args, _dest(name, field), None) for field in model.model_fields
    }
    overrides["cluster_name"] = getattr(args, "cluster_name", None)
    if not issubclass(model, ProviderSettings):
        raise SettingsError(f"provider {name}: settings model must derive from ProviderSettings")
    sections = set(available_providers())
    return load_settings(model, name, file_data=file_data, overrides=overrides, sections=sections)


def build_provider(
    args: argparse.Namespace, name: str, *, read_only: bool = False, kube: KubeClient | None = None
) -> Provider:
    """The provider ``name``; with ``kube``, its settings get the cluster's identity and facts."""
    cls = load_provider(name)
    settings: dict[str, Any] = provider_settings(args, name).model_dump()
    if kube is not None:
        from lbprov.kube.facts import fill_settings

        settings = fill_settings(kube, cls, settings, read_only=read_only)
    return cls.from_settings(settings, read_only=read_only)


def add_default_provider_option(parser: argparse.ArgumentParser) -> None:
    """``--default-provider NAME|none`` for the single-provider commands (``plan``, ``gc``)."""
    parser.add_argument(
        "--default-provider",
        metavar="NAME",
        choices=[*sorted(available_providers()), "none"],
        help="provider serving Services without spec.loadBalancerClass: 'none' means no provider "
        "(default: --provider)",
    )


def default_provider(args: argparse.Namespace) -> str | None:
    """The provider serving Services without a class: ``--default-provider``, else ``--provider``."""
    chosen: str = args.default_provider if args.default_provider is not None else args.provider
    return None if chosen == "none" else chosen
