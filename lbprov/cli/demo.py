"""``lbprov demo``: sandbox Kubernetes API + cloud emulator + the controller, in one process."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from lbprov.observability import setup_logging
from lbprov.provider import available_providers


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "demo",
        help="run the controller against a local Kubernetes API and cloud emulator",
        description="Start the sandbox Kubernetes API server and the provider's cloud emulator, create "
        "three nodes, apply examples/services.yaml, run the controller until every Service has its "
        "load balancer, print them, delete one Service to show the cleanup, and exit.",
    )
    parser.add_argument(
        "--provider",
        choices=sorted(available_providers()),
        default="aws",
        help="cloud provider whose emulator to use (default: aws)",
    )
    parser.add_argument(
        "--serve",
        action="store_true",
        help="keep running afterwards and print the kubectl command to use against the sandbox",
    )
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="give up after this many seconds (default: 120)"
    )
    parser.add_argument(
        "--logs",
        action="store_true",
        help="show the controller's JSON logs on stderr (default: progress only)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lbprov.sandbox.demo import run_demo

    debug = getattr(args, "debug", False)
    level = logging.DEBUG if debug else (logging.INFO if args.logs else logging.ERROR)
    setup_logging(level)
    try:
        run_demo(args.provider, serve=args.serve, timeout=args.timeout)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if debug:
            raise
        print(f"lbprov demo: failed: {exc}", file=sys.stderr)
        return 1
    return 0
