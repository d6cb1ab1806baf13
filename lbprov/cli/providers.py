"""``lbprov providers``: list the installed provider plugins."""

from __future__ import annotations

import argparse
from typing import Any

from lbprov.provider import available_providers


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("providers", help="list installed provider plugins")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    eps = available_providers()
    if not eps:
        print("no providers installed (pip install lbprov-aws, lbprov-gcp or lbprov-azure)")
        return 1
    for name, ep in sorted(eps.items()):
        dist = ep.dist.name if ep.dist else "?"
        version = ep.dist.version if ep.dist else "?"
        print(f"{name:8} {ep.value:32} {dist} {version}")
    return 0
