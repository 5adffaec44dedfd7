"""The `symphony` command line.

Each room that has commands provides a module with ``register(subparsers) -> None`` that adds its
subcommands, each setting ``func`` (``Callable[[argparse.Namespace], int]``) as a default. Those
modules are imported only when the command line is built, and they must keep their own heavy
imports inside the command functions: `symphony attach` must start fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

import symphony

__all__ = ["build_parser", "main"]

# Modules contributing subcommands, in the order they appear in `symphony --help`.
_COMMAND_MODULES: tuple[str, ...] = (
    "symphony.clients._cli_serve",
    "symphony.clients._cli_client",
    "symphony.clients._cli_pit",
    "symphony.clients._cli_demo",
)


def build_parser(modules: tuple[str, ...] = _COMMAND_MODULES) -> argparse.ArgumentParser:
    """The argument parser, with the subcommands of ``modules`` (by default every room's)."""
    parser = argparse.ArgumentParser(
        prog="symphony",
        description="Symphony: the backend daemon of an AI-first development environment.",
    )
    parser.add_argument("--version", action="version", version=f"symphony {symphony.__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name in modules:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    if arguments[:1] == ["attach"]:
        # Editors spawn `symphony attach` for every session: it skips building the whole parser
        # (argparse costs ~3 ms a subcommand) and every import but its own, to stay under 100 ms.
        from symphony.clients._attach import main as attach_main

        return attach_main(arguments[1:])
    # `symphony serve --stdio` is what an editor spawns: its parser alone, not every room's
    # (each registered module costs imports and ~3 ms of argparse).
    only_serve = arguments[:1] == ["serve"]
    parser = build_parser(("symphony.clients._cli_serve",) if only_serve else _COMMAND_MODULES)
    args = parser.parse_args(arguments)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    status: int = func(args)
    return status
