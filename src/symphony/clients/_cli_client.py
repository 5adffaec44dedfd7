"""The client commands of `symphony`: attach, status, stop, open, cat, edit, watch, call.

Each talks to the daemon of a workspace (``--workspace``, default the current directory), found
through its discovery file, or to an explicit address (``--unix``, ``--tcp``, ``--ws``). Output
is for humans by default; ``--json`` prints JSON for scripts (one object, or one per line for
``watch``). Errors are one line on stderr, and the exit status says what kind:

    0  done
    1  `status`: no daemon runs; `stop`: the daemon did not stop in time
    2  bad usage (options, positions, JSON)
    3  no daemon runs for the workspace (and the command does not start one)
    4  the daemon answered with an error (the line shows its code)
    5  could not connect, or the connection was lost or timed out

Which commands start a daemon when none runs: ``attach`` and ``open`` (so a buffer stays warm
in it for the next client), unless ``--no-start``; ``call`` with ``--start``. ``cat``, ``edit``
and ``watch`` need a daemon that already has something to show, so they do not start one (a
fresh daemon has no buffers and no past events); ``status`` and ``stop`` never do.

Only argparse is imported when the command line is built; each command imports what it needs
when it runs, so `symphony attach` starts fast.
"""

from __future__ import annotations

import argparse
import os
import sys

# Not ``typing.TYPE_CHECKING``: `symphony attach` goes through this module, and importing
# typing costs it milliseconds; mypy treats any constant of this name the same way.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence
    from typing import Any, Final

    from symphony.clients._client import SymphonyClient

__all__ = [
    "EXIT_CONNECTION",
    "EXIT_FAILURE",
    "EXIT_NO_DAEMON",
    "EXIT_OK",
    "EXIT_RPC",
    "EXIT_USAGE",
    "main",
    "register",
]

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2
EXIT_NO_DAEMON: Final = 3
EXIT_RPC: Final = 4
EXIT_CONNECTION: Final = 5

#: Seconds a request may take before the command gives up (``--timeout``).
DEFAULT_TIMEOUT: Final = 30.0
#: Seconds `stop` waits for the daemon to exit (``--timeout``).
STOP_TIMEOUT: Final = 15.0

_EXIT_STATUS_HELP = """\
exit status: 0 done; 1 see the command; 2 bad usage; 3 no daemon runs for the workspace;
4 the daemon answered with an error; 5 could not connect, connection lost, or timed out"""


class _UsageError(Exception):
    """Bad input found after parsing (exit 2)."""


# -- the command line --------------------------------------------------------------------------


def register(subparsers: Any) -> None:
    """Add the client commands to the ``symphony`` command line."""
    from symphony.clients import _attach

    fmt = argparse.RawDescriptionHelpFormatter

    parser = subparsers.add_parser(
        "attach",
        help="bridge stdio to the workspace's daemon (what editors run), starting it if needed",
        description=_attach.DESCRIPTION,
        epilog=_attach.EPILOG,
        formatter_class=fmt,
    )
    _attach.add_arguments(parser)
    parser.set_defaults(func=_attach.run)

    parser = _command(subparsers, "status", "is a daemon running for this workspace?", fmt)
    parser.epilog = "exit status: 0 a daemon runs; 1 none does; 5 it does not answer"
    parser.set_defaults(func=_sync(_status))

    parser = _command(subparsers, "stop", "stop the workspace's daemon gracefully", fmt)
    parser.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=float,
        default=STOP_TIMEOUT,
        help=f"how long to wait for it to exit (default {STOP_TIMEOUT:g})",
    )
    parser.add_argument(
        "--force", action="store_true", help="SIGKILL it if it has not exited in time"
    )
    parser.epilog = "exit status: 0 stopped; 1 it did not stop in time; 3 none runs"
    parser.set_defaults(func=_sync(_stop))

    parser = _command(
        subparsers, "open", "open a file in the daemon: its uri, revision, lines", fmt
    )
    _connection_options(parser, start=True)
    parser.add_argument("file", metavar="FILE", nargs="?", help="the file to open")
    parser.add_argument("--text", help="open an untitled buffer holding TEXT (no FILE)")
    parser.add_argument("--language-id", metavar="ID", help="the buffer's language id")
    parser.set_defaults(func=_client_command(_open, _check_open))

    parser = _command(subparsers, "cat", "print an open buffer's text exactly", fmt)
    _connection_options(parser, start=False)
    parser.add_argument("uri", metavar="URI", help="the buffer's URI (or a file's path)")
    parser.set_defaults(func=_client_command(_cat))

    parser = _command(
        subparsers,
        "edit",
        "insert (or replace) text in an open buffer",
        fmt,
        description_extra=(
            "Positions are LINE:CHARACTER, both from 0, the character counted in code points "
            "(the CLI negotiates UTF-32). Without --base-revision the edit applies to the "
            "buffer's current revision."
        ),
    )
    _connection_options(parser, start=False)
    parser.add_argument("uri", metavar="URI", help="the buffer's URI (or a file's path)")
    parser.add_argument(
        "--at", metavar="L:C", type=_position, required=True, help="where the edit starts"
    )
    parser.add_argument("--insert", metavar="TEXT", default="", help="the text to insert")
    parser.add_argument(
        "--delete-to", metavar="L:C", type=_position, help="replace the text from --at to here"
    )
    parser.add_argument(
        "--base-revision",
        metavar="N",
        type=int,
        help="the revision the positions refer to (edits are rebased over later changes)",
    )
    parser.set_defaults(func=_client_command(_edit, _check_edit))

    parser = _command(
        subparsers,
        "watch",
        "stream the daemon's events (symphony/event) until Ctrl-C",
        fmt,
        description_extra=(
            "TOPIC patterns split on '/': '*' matches one segment, '**' any number (default: "
            "'**', everything). One line per event: time, topic, data as JSON; with --json, "
            "one JSON object {topic, data} per line."
        ),
    )
    _connection_options(parser, start=False)
    parser.add_argument("topics", metavar="TOPIC", nargs="*", help="topic patterns")
    parser.set_defaults(func=_client_command(_watch))

    parser = _command(subparsers, "call", "send a raw request; print its result as JSON", fmt)
    _connection_options(parser, start=None)
    parser.add_argument("method", metavar="METHOD", help="e.g. symphony/info")
    parser.add_argument(
        "params", metavar="JSON", nargs="?", help="the params (an object or array; - for stdin)"
    )
    parser.set_defaults(func=_client_command(_call, _check_call))


def _command(
    subparsers: Any,
    name: str,
    help: str,
    formatter: type[argparse.HelpFormatter],
    *,
    description_extra: str = "",
) -> argparse.ArgumentParser:
    description = help[0].upper() + help[1:] + "."
    if description_extra:
        import textwrap

        description += "\n\n" + textwrap.fill(description_extra, 88)
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=help,
        description=description,
        epilog=_EXIT_STATUS_HELP,
        formatter_class=formatter,
    )
    parser.add_argument(
        "--workspace", metavar="DIR", default=".", help="the workspace (default: .)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.set_defaults(prog=parser.prog)
    return parser


def _connection_options(parser: argparse.ArgumentParser, *, start: bool | None) -> None:
    where = parser.add_argument_group(
        "where the daemon is (default: the workspace's discovery file)"
    )
    exclusive = where.add_mutually_exclusive_group()
    exclusive.add_argument("--unix", metavar="PATH", help="its Unix socket")
    exclusive.add_argument("--tcp", metavar="HOST:PORT", help="its TCP address")
    exclusive.add_argument("--ws", metavar="URL", help="its WebSocket URL (ws://HOST:PORT/)")
    where.add_argument(
        "--token",
        help="the daemon's token for --tcp/--ws (default: $SYMPHONY_TOKEN, else the "
        "workspace's discovery file)",
    )
    parser.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"give up on a request after this long (default {DEFAULT_TIMEOUT:g})",
    )
    if start is True:
        parser.add_argument(
            "--no-start",
            dest="start",
            action="store_false",
            help="fail (exit 3) instead of starting a daemon when none runs",
        )
    elif start is None:
        parser.add_argument(
            "--start",
            action="store_true",
            help="start a daemon in the background when none runs",
        )
    parser.set_defaults(start=bool(start))


def _position(text: str) -> tuple[int, int]:
    line, sep, character = text.partition(":")
    try:
        if not sep:
            raise ValueError
        position = int(line), int(character)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a position: expected LINE:CHARACTER, e.g. 0:4"
        ) from None
    if position[0] < 0 or position[1] < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: line and character count from 0")
    return position


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m symphony.clients._cli_client COMMAND ...``: these commands alone (the same as
    ``symphony COMMAND ...``). ``attach`` skips building the other commands' parsers."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    if arguments[:1] == ["attach"]:
        from symphony.clients._attach import main as attach_main

        return attach_main(arguments[1:])
    parser = argparse.ArgumentParser(prog="symphony")
    register(parser.add_subparsers(title="commands", metavar="COMMAND"))
    args = parser.parse_args(arguments)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    status: int = func(args)
    return status


# -- running commands ------------------------------------------------------------------------------


def _fail(args: argparse.Namespace, message: str, status: int) -> int:
    print(f"{args.prog}: {message}", file=sys.stderr)
    return status


def _sync(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except KeyboardInterrupt:
            return 130
        except _UsageError as exc:
            return _fail(args, str(exc), EXIT_USAGE)

    return run


def _client_command(
    command: Callable[[argparse.Namespace, SymphonyClient], Awaitable[int]],
    check: Callable[[argparse.Namespace], None] | None = None,
) -> Callable[[argparse.Namespace], int]:
    """A command that talks to the daemon: ``check`` the arguments (raising ``_UsageError``)
    before connecting, connect as the options say, run, map errors to the exit statuses
    documented above."""

    def run(args: argparse.Namespace) -> int:
        import asyncio

        from symphony.clients._transport import (
            ConnectError,
            ConnectionLost,
            DaemonNotFound,
            RequestTimeout,
        )
        from symphony.protocol import RpcError

        try:
            if check is not None:
                check(args)
            client = _make_client(args)
            return asyncio.run(_with_client(client, args, command))
        except KeyboardInterrupt:
            return 0 if command is _watch else 130
        except _UsageError as exc:
            return _fail(args, str(exc), EXIT_USAGE)
        except DaemonNotFound as exc:
            return _fail(
                args,
                f"no daemon is running for {exc.workspace} "
                "(start one with `symphony serve --unix`, or `symphony open FILE`)",
                EXIT_NO_DAEMON,
            )
        except RpcError as exc:
            return _fail(args, _describe_rpc_error(exc), EXIT_RPC)
        except (ConnectError, ConnectionLost, RequestTimeout) as exc:
            return _fail(args, str(exc), EXIT_CONNECTION)
        except BrokenPipeError:
            # Our reader went away (`symphony watch | head`): not an error of ours.
            _silence_stdout()
            return EXIT_OK
        except OSError as exc:  # e.g. a runtime directory we may not use
            return _fail(args, str(exc), EXIT_CONNECTION)

    return run


async def _with_client(
    client: SymphonyClient,
    args: argparse.Namespace,
    command: Callable[[argparse.Namespace, SymphonyClient], Awaitable[int]],
) -> int:
    async with client:
        return await command(args, client)


def _make_client(args: argparse.Namespace) -> SymphonyClient:
    from symphony.clients._client import SymphonyClient

    options: dict[str, Any] = {
        "timeout": args.timeout,
        "client_name": f"symphony-cli ({args.prog.split()[-1]})",
        # Code points: what `edit --at L:C` counts, and what a terminal user means.
        "position_encodings": ("utf-32", "utf-16"),
    }
    token = args.token or os.environ.get("SYMPHONY_TOKEN") or None
    if args.unix is not None:
        return SymphonyClient.unix(args.unix, **options)
    if args.tcp is not None or args.ws is not None:
        if token is None:
            from symphony.clients._attach import find_daemon

            info = find_daemon(os.path.realpath(args.workspace))
            token = info.token if info is not None else None
        if args.tcp is not None:
            try:
                return SymphonyClient.tcp(args.tcp, token=token, **options)
            except ValueError as exc:
                raise _UsageError(str(exc)) from None
        return SymphonyClient.ws(args.ws, token=token, **options)
    return SymphonyClient.connect_workspace(args.workspace, start=args.start, **options)


def _describe_rpc_error(exc: Any) -> str:
    import json

    text = f"error {exc.code}: {exc.message}"
    if exc.data is not None:
        data = json.dumps(exc.data, ensure_ascii=False)
        text += f" (data: {data if len(data) <= 500 else data[:500] + '...'})"
    return text


def _print_json(value: Any, *, pretty: bool = False) -> None:
    import json

    print(json.dumps(value, ensure_ascii=False, indent=2 if pretty else None), flush=True)


def _silence_stdout() -> None:
    # Python flushes stdout at exit; with the reader gone that would fail again, noisily.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _as_uri(text: str) -> str:
    """A URI as given, or a file's path made into its ``file:`` URI."""
    import re
    from pathlib import Path

    # RFC 3986 scheme; two characters at least, so that a Windows-style "C:" is a path.
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]+:", text):
        return text

    return Path(text).expanduser().resolve().as_uri()


# -- status and stop (no connection needed to find the daemon) ---------------------------------


def _status(args: argparse.Namespace) -> int:
    import asyncio

    from symphony.clients._attach import find_daemon

    workspace = os.path.realpath(args.workspace)
    info = find_daemon(workspace)
    if info is None:
        if args.json:
            _print_json({"running": False, "workspace": workspace})
        else:
            print(f"no daemon is running for {workspace}")
        return EXIT_FAILURE
    try:
        live = asyncio.run(_query_info(workspace, DEFAULT_TIMEOUT))
    except Exception as exc:  # any failure to get an answer: report what we know, and it
        if args.json:
            _print_json(
                {
                    "running": True,
                    "answering": False,
                    "workspace": workspace,
                    "pid": info.pid,
                    "addresses": info.addresses,
                    "error": str(exc),
                }
            )
        return _fail(args, f"the daemon (pid {info.pid}) does not answer: {exc}", EXIT_CONNECTION)
    # ``connections`` counts this query's own connection; report the others.
    others = max(live.connections - 1, 0)
    if args.json:
        _print_json(
            {
                "running": True,
                "answering": True,
                "workspace": info.workspace,
                "pid": live.pid,
                "version": live.version,
                "startedAt": info.started_at,
                "uptime": live.uptime,
                "addresses": info.addresses,
                "connections": others,
                "buffers": live.buffers,
                "rss": live.rss,
            }
        )
        return EXIT_OK
    print(f"symphony daemon for {info.workspace}")
    print(f"  pid          {live.pid}")
    print(f"  version      {live.version}")
    print(f"  uptime       {_duration(live.uptime)}")
    for kind, address in sorted(info.addresses.items()):
        print(f"  {kind:<12} {address}")
    print(f"  clients      {others}")
    print(f"  buffers      {live.buffers}")
    print(f"  memory       {live.rss / (1 << 20):.1f} MiB")
    return EXIT_OK


async def _query_info(workspace: str, request_timeout: float) -> Any:
    from symphony.clients._client import SymphonyClient

    async with SymphonyClient.connect_workspace(
        workspace, client_name="symphony-cli (status)", timeout=request_timeout
    ) as client:
        return await client.info()


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    parts = [f"{days}d"] if days else []
    if days or hours:
        parts.append(f"{hours}h")
    if days or hours or minutes:
        parts.append(f"{minutes}m")
    parts.append(f"{seconds}s")
    return " ".join(parts)


def _stop(args: argparse.Namespace) -> int:
    import contextlib
    import signal

    from symphony.clients._attach import find_daemon

    workspace = os.path.realpath(args.workspace)
    info = find_daemon(workspace)
    if info is None:
        if args.json:
            _print_json({"stopped": False, "running": False, "workspace": workspace})
        return _fail(args, f"no daemon is running for {workspace}", EXIT_NO_DAEMON)
    pid = info.pid
    if not _is_symphony_daemon(pid, workspace):
        return _fail(
            args,
            f"pid {pid} from the discovery file does not look like a Symphony daemon "
            "(stale file?); not signalling it",
            EXIT_FAILURE,
        )
    # SIGTERM is the daemon's graceful stop: listeners close, requests get their grace period,
    # the discovery file and socket are removed. (LSP's shutdown+exit would only end *our*
    # connection: on a socket, exit closes the connection, not the daemon.)
    with contextlib.suppress(ProcessLookupError):  # gone meanwhile: stopped all the same
        os.kill(pid, signal.SIGTERM)
    stopped = _wait_gone(pid, args.timeout)
    forced = False
    if not stopped and args.force:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        forced = stopped = _wait_gone(pid, 5.0)
    if args.json:
        _print_json({"stopped": stopped, "forced": forced, "pid": pid, "workspace": workspace})
    if not stopped:
        return _fail(
            args,
            f"the daemon (pid {pid}) did not exit within {args.timeout:g} s (--force to kill it)",
            EXIT_FAILURE,
        )
    if not args.json:
        how = "killed" if forced else "stopped"
        print(f"{how} the daemon of {workspace} (pid {pid})")
    return EXIT_OK


def _is_symphony_daemon(pid: int, workspace: str) -> bool:
    """Whether ``pid`` is the daemon the discovery file says it is: its ``symphony/info`` names
    that pid or, if it cannot be asked, its command line mentions symphony. A stale discovery
    file whose pid was reused must not get someone else's process killed."""
    import asyncio

    try:
        live = asyncio.run(_query_info(workspace, 5.0))
        return bool(live.pid == pid)
    except Exception:
        pass
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"symphony" in f.read()
    except OSError:
        return False


def _wait_gone(pid: int, timeout: float) -> bool:
    """Wait until ``pid`` has exited (True) or ``timeout`` seconds passed (False).

    A pidfd becomes readable when the process exits, so we sleep in ``poll`` until then; where
    pidfds are missing (old kernels) we poll the pid with a short backoff instead.
    """
    import select
    import time

    from symphony.server._discovery import pid_alive

    deadline = time.monotonic() + timeout
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    except (AttributeError, OSError):
        fd = None
    if fd is not None:
        try:
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            remaining = max(deadline - time.monotonic(), 0.0)
            poller.poll(remaining * 1000)
        finally:
            os.close(fd)
        return not pid_alive(pid)
    delay = 0.002
    while pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    return True


# -- commands over a connection --------------------------------------------------------------------


def _check_open(args: argparse.Namespace) -> None:
    if (args.file is None) == (args.text is None):
        raise _UsageError("give FILE, or --text TEXT for an untitled buffer")


async def _open(args: argparse.Namespace, client: SymphonyClient) -> int:
    result = await client.open(args.file, text=args.text, language_id=args.language_id)
    if args.json:
        _print_json(result.model_dump(by_alias=True))
    else:
        state = ", modified" if result.dirty else ""
        print(
            f"{result.uri}  revision {result.revision}, {result.line_count} "
            f"line{'s' if result.line_count != 1 else ''}, {result.language_id}{state}"
        )
    return EXIT_OK


async def _cat(args: argparse.Namespace, client: SymphonyClient) -> int:
    result = await client.get_text(_as_uri(args.uri))
    if args.json:
        _print_json({"text": result.text, "revision": result.revision})
        return EXIT_OK
    # Exactly the text: no newline added, no encoding error (lone surrogates pass through).
    sys.stdout.flush()
    sys.stdout.buffer.write(result.text.encode("utf-8", "surrogatepass"))
    sys.stdout.buffer.flush()
    return EXIT_OK


def _check_edit(args: argparse.Namespace) -> None:
    end = args.delete_to if args.delete_to is not None else args.at
    if end < args.at:
        raise _UsageError("--delete-to comes before --at")
    if end == args.at and not args.insert:
        raise _UsageError("nothing to do: give --insert TEXT and/or --delete-to L:C")
    if args.base_revision is not None and args.base_revision < 0:
        raise _UsageError("--base-revision counts from 0")


def text_change(
    at: tuple[int, int], delete_to: tuple[int, int] | None, insert: str
) -> dict[str, Any]:
    """The ``TextChange`` (wire form) of ``edit --at L:C [--delete-to L:C] [--insert TEXT]``."""
    start = {"line": at[0], "character": at[1]}
    end = start if delete_to is None else {"line": delete_to[0], "character": delete_to[1]}
    return {"range": {"start": start, "end": end}, "text": insert}


async def _edit(args: argparse.Namespace, client: SymphonyClient) -> int:
    uri = _as_uri(args.uri)
    change = text_change(args.at, args.delete_to, args.insert)
    base = args.base_revision
    if base is None:
        # The current revision, cheaply: the text of an empty range.
        at = change["range"]["start"]
        base = (await client.get_text(uri, {"start": at, "end": at})).revision
    result = await client.edit(uri, [change], base_revision=base)
    if args.json:
        _print_json({"uri": uri, "revision": result.revision})
    else:
        print(f"{uri}  revision {result.revision}")
    return EXIT_OK


async def _watch(args: argparse.Namespace, client: SymphonyClient) -> int:
    import json
    import time

    topics = args.topics or ["**"]
    async with client.notifications("symphony/event", "symphony/eventsDropped") as events:
        await client.subscribe(*topics)
        # On stderr in both modes (stdout is the data); it also says "subscribed" to a script.
        print(f"watching {' '.join(topics)} (Ctrl-C to stop)", file=sys.stderr, flush=True)
        async for note in events:
            params = note.params if isinstance(note.params, dict) else {}
            if note.method == "symphony/eventsDropped":
                print(
                    f"{args.prog}: {params.get('count')} events dropped (reading too slowly)",
                    file=sys.stderr,
                    flush=True,
                )
                continue
            if args.json:
                _print_json({"topic": params.get("topic"), "data": params.get("data")})
            else:
                now = time.time()
                stamp = (
                    time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d}"
                )
                data = json.dumps(params.get("data"), ensure_ascii=False)
                print(f"{stamp} {params.get('topic')} {data}", flush=True)
    from symphony.clients._transport import ConnectionLost

    raise ConnectionLost("the daemon closed the connection")


def _check_call(args: argparse.Namespace) -> None:
    """Parse the params (before connecting: a typo costs no daemon start)."""
    import json

    params: Any = None
    if args.params is not None:
        text = sys.stdin.read() if args.params == "-" else args.params
        try:
            params = json.loads(text)
        except ValueError as exc:
            raise _UsageError(f"the params are not JSON: {exc}") from None
        if not isinstance(params, (dict, list)):
            raise _UsageError("the params must be a JSON object or array")
    args.parsed_params = params


async def _call(args: argparse.Namespace, client: SymphonyClient) -> int:
    result = await client.request(args.method, args.parsed_params)
    _print_json(result, pretty=not args.json)
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
