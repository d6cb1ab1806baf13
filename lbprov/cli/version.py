"""``lbprov version``: the versions of lbprov, Python and every installed provider plugin.

The providers' versions come from their distributions' metadata (the entry points of the
``lbprov.providers`` group), so nothing is imported: a provider whose SDK is broken still shows.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import IO, Any

from lbprov import __version__
from lbprov.provider import available_providers


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "version",
        help="print the versions of lbprov and of the installed providers",
        description="Print the versions of lbprov, Python and each installed provider plugin "
        "(`lbprov --version` prints lbprov's alone).",
    )
    parser.add_argument(
        "-o", "--output", choices=("text", "json"), default="text", help="output format (default: text)"
    )
    parser.set_defaults(func=run)


def versions() -> dict[str, Any]:
    """lbprov's, Python's and each provider's distribution name and version."""
    try:
        core = version("lbprov")
    except PackageNotFoundError:  # running from a source tree that was never installed
        core = __version__
    providers = {
        name: {
            "distribution": ep.dist.name if ep.dist else None,
            "version": ep.dist.version if ep.dist else None,
            "entry_point": ep.value,
        }
        for name, ep in sorted(available_providers().items())
    }
    return {"lbprov": core, "python": platform.python_version(), "providers": providers}


def run(args: argparse.Namespace, *, stdout: IO[str] | None = None) -> int:
    out = stdout if stdout is not None else sys.stdout
    found = versions()
    if args.output == "json":
        out.write(json.dumps(found, indent=2, sort_keys=True) + "\n")
        return 0
    print(f"lbprov {found['lbprov']} (Python {found['python']})", file=out)
    if not found["providers"]:
        print("no providers installed (pip install lbprov-aws, lbprov-gcp or lbprov-azure)", file=out)
    for name, info in found["providers"].items():
        print(f"  {name:8} {info['distribution'] or '?'} {info['version'] or '?'}", file=out)
    return 0
