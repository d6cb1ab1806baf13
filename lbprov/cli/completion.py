"""``lbprov completion bash|zsh|fish``: the shell completion script, made by argcomplete.

The script calls ``lbprov`` itself on every Tab (argcomplete's protocol: the ``_ARGCOMPLETE``
environment), so completions always match the installed version: subcommands, flags, each
provider's settings flags and the choices of ``--provider``, ``-o`` and the like.
:func:`lbprov.cli.main` builds only the subcommand being completed, which keeps a Tab as fast as
``lbprov --help``.
"""

from __future__ import annotations

import argparse
import sys
from typing import IO, Any

SHELLS = ("bash", "zsh", "fish")

EPILOG = """\
Load it into the current shell, or install it for every new one:
  bash:  source <(lbprov completion bash)      # or: lbprov completion bash > ~/.local/share/bash-completion/completions/lbprov
  zsh:   source <(lbprov completion zsh)       # or: lbprov completion zsh > "${fpath[1]}/_lbprov"
  fish:  lbprov completion fish | source       # or: lbprov completion fish > ~/.config/fish/completions/lbprov.fish
"""


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "completion",
        help="print the shell completion script (bash, zsh or fish)",
        description="Print the script that completes lbprov's subcommands, flags and provider "
        "names in SHELL.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("shell", choices=SHELLS, metavar="SHELL", help="bash, zsh or fish")
    parser.set_defaults(func=run)


def script(shell: str) -> str:
    from argcomplete.shell_integration import shellcode

    text: str = shellcode(["lbprov"], shell=shell)
    return text


def run(args: argparse.Namespace, *, stdout: IO[str] | None = None) -> int:
    out = stdout if stdout is not None else sys.stdout
    out.write(script(args.shell))
    return 0
