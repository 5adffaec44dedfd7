"""`symphony serve`: run the daemon (the command editors and `symphony attach` start).

Only argparse is imported here; the daemon itself is imported when the command runs, so building
the command line stays cheap for every other command.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["add_arguments", "main", "register"]


def register(subparsers: Any) -> None:
    """Add ``serve`` to the ``symphony`` command line."""
    parser = subparsers.add_parser(
        "serve",
        help="run the daemon (stdio, TCP, Unix socket, WebSocket)",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


_DESCRIPTION = """\
Run the Symphony daemon for a workspace. Give any of --stdio, --tcp, --unix, --ws (several at
once is fine: an editor-spawned --stdio daemon can also listen for other clients).

While it listens on a socket the daemon writes a discovery file (pid, addresses, token; mode
0600) in $XDG_RUNTIME_DIR/symphony/ (or /tmp/symphony-UID/); TCP and WebSocket clients must send
that token as initializationOptions.token. Set SYMPHONY_TOKEN to choose the token.

Exit status: 0 on a clean stop (SIGTERM, SIGINT, or shutdown then exit on stdio), 1 if the stdio
client exited without shutdown or the daemon could not start, 2 for unusable options.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `symphony serve` (shared with `python -m symphony.server`)."""
    where = parser.add_argument_group("where to listen")
    where.add_argument("--stdio", action="store_true", help="speak LSP on stdin/stdout")
    where.add_argument("--tcp", metavar="HOST:PORT", help="listen on TCP (host: 127.0.0.1)")
    where.add_argument(
        "--unix",
        metavar="PATH",
        nargs="?",
        const="",
        help="listen on a Unix socket (mode 0600; default path in the runtime directory)",
    )
    where.add_argument("--ws", metavar="HOST:PORT", help="listen for WebSocket clients")
    where.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow --tcp/--ws on a non-loopback address (clients still need the token)",
    )
    where.add_argument(
        "--allow-origin",
        metavar="ORIGIN",
        action="append",
        default=[],
        help="a browser origin allowed to open WebSockets (loopback origins always are)",
    )
    parser.add_argument(
        "--workspace", metavar="DIR", default=".", help="the workspace served (default: .)"
    )
    parser.add_argument(
        "--max-message-size",
        metavar="BYTES",
        type=int,
        default=None,
        help="largest message accepted (default 64 MiB)",
    )
    logs = parser.add_argument_group("logging (never on stdout)")
    logs.add_argument("--log-file", metavar="PATH", help="log to this file instead of stderr")
    logs.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error", "critical"),
    )
    logs.add_argument(
        "--log-format",
        choices=("json", "console"),
        default=None,
        help="json lines, or console for humans (default: console on a terminal, else json)",
    )


def run(args: argparse.Namespace) -> int:
    """Run the daemon as the parsed arguments say; returns the exit status."""
    from symphony.server import Limits, ServeOptions, serve

    log_format = args.log_format
    if log_format is None:
        log_format = "console" if args.log_file is None and sys.stderr.isatty() else "json"
    limits = Limits()
    if args.max_message_size is not None:
        if args.max_message_size < 1:
            print("symphony serve: --max-message-size must be positive", file=sys.stderr)
            return 2
        limits = Limits(
            max_message_size=args.max_message_size,
            max_write_buffer=max(2 * args.max_message_size, limits.event_buffer),
        )
    options = ServeOptions(
        stdio=args.stdio,
        tcp=args.tcp,
        unix=args.unix,
        ws=args.ws,
        workspace=args.workspace,
        log_file=args.log_file,
        log_level=args.log_level,
        log_format=log_format,
        allow_remote=args.allow_remote,
        allowed_origins=tuple(args.allow_origin),
        token=os.environ.get("SYMPHONY_TOKEN") or None,
        limits=limits,
    )
    return serve(options)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m symphony.server [OPTIONS]`: the same as `symphony serve [OPTIONS]`."""
    parser = argparse.ArgumentParser(
        prog="python -m symphony.server",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))
