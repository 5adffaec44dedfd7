"""`symphony attach`: bridge an editor's stdio to the workspace's daemon, starting it if needed.

This is the command editors put in their LSP configuration. It must be fast (a warm daemon
answers ``initialize`` within 100 ms of the editor spawning us), so it parses nothing: it copies
bytes both ways between its stdin/stdout and the daemon's Unix socket, and imports only the
standard library's lightest modules and the discovery helpers. No asyncio, no pydantic, no
``symphony.protocol``.

Theory of operation
-------------------
1. **Find** the daemon: the workspace's discovery file names its pid and Unix socket. The warm
   path (a daemon runs) reads that file and connects, nothing more: ``_connect_warm`` locates
   the file as ``symphony.server._discovery`` does (a test holds the two in agreement) without
   importing it, because its dataclasses, tempfile and pathlib cost more than the rest of
   attach. Any miss (no file, an unreadable one, a socket that refuses) falls back to the full
   lookup of ``symphony.server._discovery``, where a file whose pid is gone is stale.
2. **Start** one if none runs (``ensure_daemon``): under an exclusive ``flock`` on
   ``<runtime dir>/<workspace key>.lock`` (two editors attaching at once start *one* daemon),
   look again, then spawn ``python -m symphony.server --unix --workspace W`` detached: a new
   session (no signal from the editor's terminal reaches it), stdin and stdout on /dev/null,
   stderr on ``<runtime dir>/<workspace key>.log`` (0600, truncated per start, so a crash before
   logging is configured is still on record). Then wait for its discovery file, which the daemon
   writes only once every listener accepts, polling with a backoff from 2 ms to 50 ms under a
   deadline; a daemon that exits first is reported with its status and the tail of its log.
3. **Bridge**: two threads, each a blocking loop of one ``read`` and one ``write`` system call:
   stdin -> socket in a helper thread, socket -> stdout in the main thread. Measured against a
   ``selectors`` loop it is as fast (a blocking call returns as soon as bytes arrive; there is
   no event loop to go around) and simpler to get right: a slow editor that does not read our
   stdout never delays the bytes flowing the other way. When the editor closes our stdin we
   shut down the socket's write half, so the daemon sees EOF and ends that connection; when
   the daemon closes the socket (after ``exit``, or when it stops) we exit. The daemon outlives
   us either way: buffers stay warm for the next client.

Exit status: 0 when the daemon closed the connection (or the editor went away), 1 if the
connection broke, 3 if no daemon runs and ``--no-start`` was given, 5 if one could not be
started or reached.
"""

from __future__ import annotations

import os
import sys

# Not ``typing.TYPE_CHECKING``: importing typing costs this hot path several milliseconds, and
# mypy treats any constant of this name the same way.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from _socket import socket as Socket
    from collections.abc import Sequence
    from pathlib import Path
    from typing import Final

    from symphony.server._discovery import DiscoveryInfo

__all__ = [
    "DEFAULT_SERVE_COMMAND",
    "EXIT_BROKEN",
    "EXIT_NO_DAEMON",
    "EXIT_UNREACHABLE",
    "StartError",
    "add_arguments",
    "bridge",
    "connect_unix",
    "ensure_daemon",
    "find_daemon",
    "run",
    "start_daemon",
]

#: How a daemon is started: ``python -m symphony.server`` takes exactly the options of
#: ``symphony serve``, and works whether or not the console script is on PATH.
DEFAULT_SERVE_COMMAND: Final[tuple[str, ...]] = (sys.executable, "-m", "symphony.server")

EXIT_BROKEN: Final = 1
EXIT_NO_DAEMON: Final = 3
EXIT_UNREACHABLE: Final = 5

#: Bytes per read: everything the socket or pipe has, in one system call.
READ_SIZE: Final = 1 << 20
#: Default seconds to wait for a daemon we started (a cold start is ~0.5 s; CI machines are slow).
START_TIMEOUT: Final = 15.0
#: Polling backoff while waiting for a daemon to come up: first delay and cap, in seconds.
_POLL_FIRST: Final = 0.002
_POLL_MAX: Final = 0.05
#: Lines of the daemon's log quoted when it fails to start.
_LOG_TAIL_LINES: Final = 15


class StartError(Exception):
    """A daemon could not be started, or did not come up in time (the message says why)."""


# -- finding and starting the daemon ---------------------------------------------------------------


def find_daemon(workspace: str) -> DiscoveryInfo | None:
    """The live daemon of ``workspace`` (a real path), per its discovery file, or None."""
    from symphony.server._discovery import read_discovery

    return read_discovery(workspace)


def _runtime_file(workspace: str, suffix: str) -> Path:
    from symphony.server._discovery import runtime_dir, workspace_key

    return runtime_dir() / f"{workspace_key(workspace)}{suffix}"


def ensure_daemon(
    workspace: str, *, timeout: float = START_TIMEOUT, serve_args: Sequence[str] = ()
) -> DiscoveryInfo:
    """The workspace's running daemon, started in the background first if none runs.

    Safe against concurrent callers (another ``attach``, ``open``...): starting is serialised by
    a lock file, and whoever gets the lock second finds the first one's daemon. Raises
    ``StartError`` if it cannot be started or does not come up within ``timeout`` seconds.
    """
    workspace = os.path.realpath(workspace)
    info = find_daemon(workspace)
    if info is not None:
        return info
    import fcntl
    import time

    deadline = time.monotonic() + timeout
    lock_path = _runtime_file(workspace, ".lock")
    lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        delay = _POLL_FIRST
        while True:
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                # Someone else is starting the daemon; theirs will do.
                info = find_daemon(workspace)
                if info is not None:
                    return info
                if time.monotonic() >= deadline:
                    raise StartError(
                        f"timed out after {timeout:g} s waiting for another process that is "
                        f"starting the daemon of {workspace} (lock {lock_path})"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, _POLL_MAX)
        info = find_daemon(workspace)
        if info is not None:
            return info
        return start_daemon(workspace, deadline=deadline, serve_args=serve_args)
    finally:
        os.close(lock_fd)  # releases the flock


def start_daemon(
    workspace: str, *, deadline: float, serve_args: Sequence[str] = ()
) -> DiscoveryInfo:
    """Spawn a detached daemon for ``workspace`` and wait (until ``deadline``, a
    ``time.monotonic()`` value) for its discovery file. The caller holds the start lock.

    ``posix_spawn`` rather than ``subprocess``: no ``fork`` of a process that may have threads
    (the async client calls this from a worker thread), a new session in the same call
    (``setsid``), and no ``Popen`` object whose finaliser complains that the daemon, which is
    meant to outlive us, is still running. Every descriptor Python opened is close-on-exec, so
    the daemon inherits exactly /dev/null, /dev/null and the log file.
    """
    import contextlib
    import signal
    import time

    log_path = _runtime_file(workspace, ".log")
    argv = [
        *DEFAULT_SERVE_COMMAND,
        "--unix",
        "--workspace",
        workspace,
        "--log-format",
        "json",
        *serve_args,
    ]
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        pid = os.posix_spawn(
            argv[0],
            argv,
            os.environ,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                (os.POSIX_SPAWN_DUP2, log_fd, 2),
            ],
            setsid=True,
        )
    except OSError as exc:
        raise StartError(f"cannot start the daemon ({' '.join(argv)}): {exc}") from exc
    finally:
        os.close(log_fd)
    delay = _POLL_FIRST
    while True:
        status = _exit_status(pid)
        info = find_daemon(workspace)
        if info is not None and (info.pid == pid or status is not None):
            # Ours; or ours lost a race to a daemon started without our lock (``serve`` run by
            # hand), and that one is as good.
            return info
        if status is not None:
            raise StartError(
                f"the daemon exited with status {status} before it was ready; "
                f"its log ({log_path}):\n{_tail(log_path)}"
            )
        if time.monotonic() >= deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            raise StartError(
                f"the daemon (pid {pid}) was not ready in time; terminated it. "
                f"Its log ({log_path}):\n{_tail(log_path)}"
            )
        time.sleep(delay)
        delay = min(delay * 2, _POLL_MAX)


def _exit_status(pid: int) -> int | None:
    """The exit status of our child ``pid`` if it has exited (reaping it), else None."""
    try:
        waited, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return -1  # already reaped by someone else: it is gone all the same
    return os.waitstatus_to_exitcode(status) if waited else None


def _tail(path: Path) -> str:
    try:
        lines = path.read_text("utf-8", "replace").splitlines()
    except OSError as exc:
        return f"  (cannot read it: {exc})"
    return "\n".join("  " + line for line in lines[-_LOG_TAIL_LINES:]) or "  (empty)"


# -- bridging ----------------------------------------------------------------------------------------


def _connect_warm(workspace: str) -> Socket | None:
    """The warm path: a socket connected to the daemon the discovery file names, or None."""
    path = _warm_discovery_file(workspace)
    if path is None:
        return None
    import json

    try:
        with open(path, "rb") as f:
            address = json.loads(f.read())["addresses"]["unix"]
        if not isinstance(address, str):
            return None
        return connect_unix(address)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _warm_discovery_file(workspace: str) -> str | None:
    """Where ``symphony.server._discovery.discovery_path`` puts the workspace's discovery file,
    when that is ``$XDG_RUNTIME_DIR/symphony`` and a directory of ours; None otherwise (the
    ``/tmp`` fallback, or anything odd, is left to the full lookup)."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if not xdg:
        return None
    directory = os.path.join(xdg, "symphony")
    try:
        info = os.lstat(directory)
    except OSError:
        return None
    # S_ISDIR, and ours: a directory someone else controls could hold a planted file.
    if info.st_mode & 0o170000 != 0o040000 or info.st_uid != os.getuid():
        return None
    key = _sha256(workspace.encode("utf-8", "surrogateescape"))[:16]
    return os.path.join(directory, key + ".json")


def _sha256(data: bytes) -> str:
    """``hashlib.sha256(data).hexdigest()``, through CPython's builtin SHA-256 module when it has
    one: ``hashlib`` loads OpenSSL first, which costs the warm path 5 to 15 ms."""
    # _sha256 in CPython 3.11, _sha2 from 3.12; hashlib anywhere else.
    for name in ("_sha256", "_sha2", "hashlib"):
        try:
            module = __import__(name)
        except ImportError:
            continue
        digest: str = module.sha256(data).hexdigest()
        return digest
    raise ImportError("no SHA-256 implementation")


def connect_unix(path: str) -> Socket:
    """A connected, blocking Unix socket to the daemon.

    ``_socket`` rather than ``socket``: the wrapper module's enum set-up costs ~5 ms here, and
    the bridge needs nothing from it.
    """
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except BaseException:
        sock.close()
        raise
    return sock


def bridge(sock: Socket, in_fd: int = 0, out_fd: int = 1) -> int:
    """Copy ``in_fd`` -> ``sock`` and ``sock`` -> ``out_fd`` until the daemon closes the socket.

    Returns the exit status: 0 when the daemon closed cleanly or the reader of ``out_fd`` went
    away, ``EXIT_BROKEN`` if the connection broke (reset).
    """
    import _socket
    import threading

    def pump_in() -> None:
        try:
            while data := os.read(in_fd, READ_SIZE):
                sock.sendall(data)
        except OSError:
            pass  # the daemon's end is gone; the main loop sees it too
        finally:
            # The editor closed our stdin: tell the daemon this client is done (it then closes
            # the connection, which ends the main loop).
            try:  # noqa: SIM105 - contextlib is not imported on this path
                sock.shutdown(_socket.SHUT_WR)
            except OSError:
                pass  # already closed

    threading.Thread(target=pump_in, name="attach-stdin", daemon=True).start()
    try:
        while data := sock.recv(READ_SIZE):
            view = memoryview(data)
            while view:
                written = os.write(out_fd, view)
                view = view[written:]
    except BrokenPipeError:
        return 0  # the editor closed our stdout: it is gone, and so are we
    except OSError as exc:
        print(f"symphony attach: connection to the daemon broke: {exc}", file=sys.stderr)
        return EXIT_BROKEN
    return 0


# -- the command -------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """`symphony attach [OPTIONS]` on its own: parses only attach's options.

    For a front end that wants attach's fast path: building the whole `symphony` parser costs
    a few milliseconds per subcommand (argparse looks up translations for each), which an
    editor pays on every start."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="symphony attach",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


DESCRIPTION: Final = """\
Bridge this process's stdin/stdout to the workspace's daemon over its Unix socket, byte for
byte: put `symphony attach` in your editor's LSP configuration. If no daemon runs for the
workspace, one is started in the background first; it outlives the editor, so buffers stay
warm for the next client. Its log is $XDG_RUNTIME_DIR/symphony/<workspace key>.log."""
EPILOG: Final = (
    "exit status: 0 the daemon closed the connection; 1 the connection broke; "
    "3 no daemon and --no-start; 5 could not start or reach one"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `symphony attach`."""
    parser.add_argument(
        "--workspace", metavar="DIR", default=".", help="the workspace (default: .)"
    )
    parser.add_argument(
        "--no-start",
        action="store_true",
        help="fail (exit 3) instead of starting a daemon when none runs",
    )
    parser.add_argument(
        "--start-timeout",
        metavar="SECONDS",
        type=float,
        default=START_TIMEOUT,
        help=f"how long to wait for a daemon we start (default {START_TIMEOUT:g})",
    )
    parser.add_argument(
        "--serve-arg",
        metavar="ARG",
        action="append",
        default=[],
        help="an extra option for a daemon we start, e.g. --serve-arg=--tcp=127.0.0.1:7420 "
        "(repeatable)",
    )


def run(args: argparse.Namespace) -> int:
    """`symphony attach`: returns the exit status."""
    workspace = os.path.realpath(args.workspace)
    if not os.path.isdir(workspace):
        print(f"symphony attach: {args.workspace}: not a directory", file=sys.stderr)
        return 2
    sock = _connect_warm(workspace)
    if sock is None:
        status_or_sock = _connect_cold(workspace, args)
        if isinstance(status_or_sock, int):
            return status_or_sock
        sock = status_or_sock
    try:
        return bridge(sock)
    except KeyboardInterrupt:
        return 130
    finally:
        sock.close()


def _connect_cold(workspace: str, args: argparse.Namespace) -> Socket | int:
    """The full path: find (or start) the daemon, connect; or the exit status of a failure."""
    import errno

    try:
        if args.no_start:
            info = find_daemon(workspace)
            if info is None:
                print(f"symphony attach: no daemon is running for {workspace}", file=sys.stderr)
                return EXIT_NO_DAEMON
        else:
            info = ensure_daemon(workspace, timeout=args.start_timeout, serve_args=args.serve_arg)
    except (StartError, OSError) as exc:
        print(f"symphony attach: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    path = info.addresses.get("unix")
    if path is None:
        print(
            f"symphony attach: the daemon of {workspace} (pid {info.pid}) does not listen on "
            "a Unix socket; stop it (`symphony stop`) or restart it with --unix",
            file=sys.stderr,
        )
        return EXIT_UNREACHABLE
    try:
        return connect_unix(path)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        hint = " (is it still starting, or did it die?)" if exc.errno == errno.ECONNREFUSED else ""
        print(
            f"symphony attach: cannot connect to the daemon of {workspace} (pid {info.pid}) at "
            f"{path}: {reason}{hint}",
            file=sys.stderr,
        )
        return EXIT_UNREACHABLE
