"""The ``lbprov`` command line: ``run | plan | gc | demo | providers | version | completion``.

Each subcommand lives in its own module of this package and exposes
``register(subparsers) -> None``, which adds its parser and sets ``func`` (taking the parsed
arguments, returning the exit code). Modules are found by name in :data:`COMMANDS`.

Only the subcommand being run is imported and built: the others appear in ``lbprov --help`` as a
name and a line of help (:data:`COMMANDS`), so that ``lbprov --help`` (and every shell completion,
which runs the parser) does not import the controller, the Kubernetes client or every provider's
settings. No path imports a cloud SDK before a provider is actually built.

One rule for usage errors in every subcommand (:class:`Parser`): one line naming the problem, a
hint to the subcommand's own ``--help``, exit code 1 -- since 2 means "changes pending" for
``plan`` and ``gc`` (terraform's ``-detailed-exitcode``), a typo must never look like it.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from lbprov import __version__

#: Subcommand modules and their one-line help, in the order ``--help`` lists them.
COMMANDS: dict[str, str] = {
    "run": "run the controller",
    "plan": "show what lbprov would do (read-only; exit 0 no changes, 2 changes, 1 error)",
    "gc": "find load balancers owned by this cluster whose Service is gone; --apply deletes them",
    "demo": "run the controller against a local Kubernetes API and cloud emulator",
    "providers": "list installed provider plugins",
    "version": "print the versions of lbprov and of the installed providers",
    "completion": "print the shell completion script (bash, zsh or fish)",
}

#: Exit code of a usage error (bad flag, missing argument), in every subcommand.
EXIT_USAGE = 1


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line plus a hint, with exit code 1.

    argparse prints the whole usage block first (45 lines for ``plan``, with every provider's
    flags) and exits 2; and a subcommand's unknown flag is reported by the top-level parser with
    the top-level usage. Here each parser reports its own unknown arguments.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\nSee '{self.prog} --help'.\n")

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        ns, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return ns, extras


def _selected(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv`` (the first word that is not an option), if any."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def _completion_words() -> list[str]:
    """The words typed so far, when the parser runs for shell completion (argcomplete)."""
    line = os.environ.get("COMP_LINE", "")
    point = int(os.environ.get("COMP_POINT", len(line)) or len(line))
    return line[:point].split()[1:]


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The whole parser, or (given ``argv``) one with only the subcommand ``argv`` names built."""
    parser = Parser(
        prog="lbprov",
        description="Cloud load balancers for Kubernetes Services of type LoadBalancer.",
        epilog="Exit codes: 0 success; 1 error, including every usage error; plan and gc: 2 changes "
        "pending. Shell completion: lbprov completion --help.",
    )
    parser.add_argument("--version", action="version", version=f"lbprov {__version__}")
    parser.add_argument("--debug", action="store_true", help="show stack traces and debug logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = None if argv is None else _selected(argv)
    for name, help_text in COMMANDS.items():
        if argv is not None and name != wanted:
            sub.add_parser(name, help=help_text)  # listed in --help; built only when chosen
            continue
        try:
            module = importlib.import_module(f"lbprov.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"lbprov.cli.{name}":
                continue  # subcommand not built in this version
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    completing = "_ARGCOMPLETE" in os.environ
    parser = build_parser(_completion_words() if completing else args_in)
    if completing:
        import argcomplete

        argcomplete.autocomplete(parser)  # answers the shell and exits
    args = parser.parse_args(args_in)
    code: int = args.func(args)
    if argv is None:  # the process's own command (the ``lbprov`` script, ``python -m lbprov``)
        before_exit()
    return code


def before_exit() -> None:
    """The command is done and the process exits next: freeze the heap (:func:`gc.freeze`), so that
    the interpreter's last garbage collections, while it tears its modules down, skip it.

    Everything a command must do on its way out (a controller's graceful stop, the lease released,
    the sandbox's servers and emulator stopped, files removed) is done before it returns; what was
    left was the interpreter's own teardown. With the served demo's heap (moto's backends, the SDKs'
    models, 150,000-350,000 tracked objects) the process exited 0.9-2.7 s after Ctrl-C at load 2-5
    and up to 8.9 s at load 10 (2 cores), though its last stop step ended 0.1-0.6 s after it: the
    rest was those collections (faulthandler: "Garbage-collecting", the main thread alone). Frozen,
    it exits 0.2-1.1 s after Ctrl-C at load 8-15. Nothing is skipped: ``atexit`` handlers and the
    flush of stdout and stderr still run, and objects are still freed as their modules go.
    """
    import gc

    gc.freeze()


if __name__ == "__main__":
    sys.exit(main())
