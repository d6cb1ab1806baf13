"""The ``lbprov`` command line: ``run | plan | gc | demo | providers``.

Each subcommand lives in its own module of this package and exposes
``register(subparsers) -> None``, which adds its parser and sets ``func`` (taking the parsed
arguments, returning the exit code). Modules are found by name in :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

#: Subcommand modules, in the order ``--help`` lists them.
COMMANDS = ("run", "plan", "gc", "demo", "providers")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lbprov",
        description="Cloud load balancers for Kubernetes Services of type LoadBalancer.",
    )
    parser.add_argument("--debug", action="store_true", help="show stack traces and debug logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"lbprov.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"lbprov.cli.{name}":
                continue  # subcommand not built in this version
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
