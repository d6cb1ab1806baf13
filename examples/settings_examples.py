"""Writes ``examples/settings-<cloud>.yaml`` from the providers' settings models.

Every field of a provider's settings model appears in its example, with its description, its flag,
its environment variable and its default; required fields and fields with a default are set (to an
example value or the default), optional ones are commented out. ``tests/cli/test_examples.py``
checks that the files are what this script writes, so they cannot fall behind the models:

    .venv/bin/python examples/settings_examples.py      # after changing a settings model
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from lbprov.cli.options import settings_model
from lbprov.settings import SHARED_FIELDS, flag_name, is_secret

HERE = Path(__file__).resolve().parent
PROVIDERS = ("aws", "gcp", "azure")
WIDTH = 100

#: Example values for fields that have no default (required, or optional and unset).
EXAMPLES: dict[str, dict[str, Any]] = {
    "shared": {"cluster_name": "prod", "cluster_id": "4f9d5c3e-0a1b-4c2d-9e8f-7a6b5c4d3e2f"},
    "aws": {
        "endpoint_url": "http://127.0.0.1:5000",
        "access_key_id": "AKIAIOSFODNN7EXAMPLE",
        "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "vpc_id": "vpc-0123456789abcdef0",
        "node_security_group_id": "sg-0123456789abcdef0",
    },
    "gcp": {
        "project": "my-project",
        "region": "europe-west1",
        "network": "default",
        "subnetwork": "default",
        "node_tags": ["gke-prod-node"],
        "api_endpoint": "http://127.0.0.1:8085",
        "gce_cluster_id": "a1b2c3d4e5f60718",
    },
    "azure": {
        "subscription_id": "00000000-0000-0000-0000-000000000000",
        "resource_group": "prod-rg",
        "location": "westeurope",
        "vnet_name": "prod-vnet",
        "vnet_resource_group": "network-rg",
        "subnet_name": "nodes",
        "security_group_name": "prod-nsg",
        "base_url": "https://127.0.0.1:8443",
        "ca_bundle": "/etc/lbprov/ca.pem",
        "static_token": "a-bearer-token",
    },
}

HEADER = """\
# Settings of the {name} provider: lbprov run|plan|gc --provider {name} --settings settings-{name}.yaml
#
# Every setting is also a flag and an environment variable (named beside it below); flags win over
# the environment, which wins over this file, which wins over the defaults. Required settings are
# set to example values; optional ones without a default are commented out. Secrets have no flag
# (a flag's value shows in the process list): prefer the environment for them.
# Written by examples/settings_examples.py from the settings model; do not edit by hand.
"""


def _value(value: Any) -> str:
    if isinstance(value, tuple):
        value = list(value)
    return json.dumps(value) if not isinstance(value, str) else _scalar(value)


def _scalar(text: str) -> str:
    """A YAML scalar: plain where YAML reads it back as the same string, else JSON-quoted."""
    import yaml

    plain = yaml.safe_dump(text, default_flow_style=True).strip().removesuffix("...").strip()
    return plain if yaml.safe_load(plain) == text else json.dumps(text)


def _comment(text: str, indent: str) -> list[str]:
    return textwrap.wrap(
        text,
        WIDTH,
        initial_indent=f"{indent}# ",
        subsequent_indent=f"{indent}# ",
        break_on_hyphens=False,
        break_long_words=False,
    )


def _entry(model: type[BaseModel], provider: str, field: str, indent: str) -> list[str]:
    info = model.model_fields[field]
    secret = is_secret(info.annotation)
    env = SHARED_FIELDS.get(field) or (str(model.model_config.get("env_prefix", "")) + field).upper()
    ways = [f"env {env}"]
    if field == "cluster_name" or (field not in SHARED_FIELDS and not secret):
        ways.insert(0, f"flag {flag_name(provider, field)}")
    if info.is_required():
        ways.append("required")
    elif info.default is not None:
        ways.append(f"default: {_value(info.default)}")
    if secret:
        ways.append("secret")
    lines = _comment(info.description or "", indent)
    lines.append(f"{indent}# ({'; '.join(ways)})")
    group = "shared" if field in SHARED_FIELDS else provider
    if field not in EXAMPLES[group] and (info.is_required() or info.default is None or secret):
        raise KeyError(f"no example value for {provider}.{field}: add one to EXAMPLES in {__file__}")
    if info.is_required():
        lines.append(f"{indent}{field}: {_value(EXAMPLES[group][field])}")
    elif info.default is None or secret:
        lines.append(f"{indent}# {field}: {_value(EXAMPLES[group][field])}")
    elif field in EXAMPLES["shared"]:
        lines.append(f"{indent}{field}: {_value(EXAMPLES['shared'][field])}")
    else:
        lines.append(f"{indent}{field}: {_value(info.default)}")
    return lines


def render(provider: str) -> str:
    """The example settings file of ``provider``."""
    model = settings_model(provider)
    lines = HEADER.format(name=provider).splitlines()
    for field in SHARED_FIELDS:
        lines += ["", *_entry(model, provider, field, "")]
    lines += ["", f"{provider}:"]
    for i, field in enumerate(f for f in model.model_fields if f not in SHARED_FIELDS):
        lines += ([""] if i else []) + _entry(model, provider, field, "  ")
    return "\n".join(lines) + "\n"


def path(provider: str) -> Path:
    return HERE / f"settings-{provider}.yaml"


def main() -> int:
    for provider in PROVIDERS:
        path(provider).write_text(render(provider))
        print(f"wrote {path(provider)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
