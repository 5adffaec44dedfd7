"""Real daemon processes and CLI runs for the client tests (no mocks: real processes, sockets)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from symphony.clients import _cli
from symphony.server._discovery import pid_alive, read_discovery

#: Generous: CI machines run several test suites at once.
TIMEOUT = 20.0
SERVE = [sys.executable, "-m", "symphony.server"]
# Through the real `symphony` entry point once the client commands are registered there;
# until then through the same ``register`` via the module's own ``main``.
if "symphony.clients._cli_client" in _cli._COMMAND_MODULES:
    CLI = [sys.executable, "-m", "symphony"]
else:
    CLI = [sys.executable, "-m", "symphony.clients._cli_client"]


class DaemonProcess:
    """``python -m symphony.server`` as a subprocess; its JSON log lines are collected from
    stderr by a thread, so tests wait on log events (a condition with a deadline)."""

    def __init__(self, args: Sequence[str], *, workspace: Path) -> None:
        self.workspace = workspace
        self.proc = subprocess.Popen(
            [*SERVE, "--workspace", str(workspace), "--log-format", "json", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.pid = self.proc.pid
        self.logs: list[dict[str, Any]] = []
        self.stderr_lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._changed:
                self.stderr_lines.append(line)
                with contextlib.suppress(ValueError):
                    entry = json.loads(line)
                    if isinstance(entry, dict):
                        self.logs.append(entry)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_log(self, event: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The first log line with this event; fails if the process exits first."""

        def find() -> dict[str, Any] | None:
            return next((e for e in self.logs if e.get("event") == event), None)

        with self._changed:
            self._changed.wait_for(
                lambda: find() is not None or not self._reader.is_alive(), timeout
            )
            found = find()
        if found is None:
            raise AssertionError(
                f"no {event!r} log line (exit code {self.proc.poll()}); stderr:\n"
                + "\n".join(self.stderr_lines[-30:])
            )
        return found

    def wait_ready(self) -> dict[str, str]:
        addresses: dict[str, str] = self.wait_log("ready")["addresses"]
        return addresses

    def terminate(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(TIMEOUT)
        self._reader.join(TIMEOUT)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a stopped process cannot die otherwise
            self.proc.kill()
            self.proc.wait(TIMEOUT)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


def run_cli(
    *args: str, input: str | None = None, timeout: float = TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Run a `symphony` command to completion; stdout and stderr captured as text."""
    return subprocess.run(
        [*CLI, *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n%b" % (len(body), body)


class LspPipe:
    """A raw LSP conversation over a process's stdin/stdout (what an editor does to attach)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdin is not None
        assert proc.stdout is not None
        self.proc = proc
        self._in: IO[bytes] = proc.stdin
        self._out: IO[bytes] = proc.stdout
        self._buffer = b""
        self._ids = iter(range(1, 1 << 30))

    def send(self, message: dict[str, Any]) -> None:
        self._in.write(frame(message))
        self._in.flush()

    def _read_message(self) -> dict[str, Any]:
        while b"\r\n\r\n" not in self._buffer:
            self._fill()
        header, _, rest = self._buffer.partition(b"\r\n\r\n")
        length = int(header.split(b":", 1)[1])
        while len(rest) < length:
            self._buffer = header + b"\r\n\r\n" + rest
            self._fill()
            header, _, rest = self._buffer.partition(b"\r\n\r\n")
        self._buffer = rest[length:]
        message: dict[str, Any] = json.loads(rest[:length])
        return message

    def _fill(self) -> None:
        # read1: whatever is available (at least one byte); b"" is EOF.
        data = self._out.read1(1 << 16)  # type: ignore[attr-defined]
        if not data:
            raise EOFError(f"the process closed its stdout (exit code {self.proc.poll()})")
        self._buffer += data

    def call(self, method: str, params: Any = None) -> dict[str, Any]:
        """Send a request; return its reply message (notifications before it are skipped)."""
        request_id = next(self._ids)
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        while True:
            reply = self._read_message()
            if reply.get("id") == request_id and "method" not in reply:
                return reply

    def result(self, method: str, params: Any = None) -> Any:
        reply = self.call(method, params)
        assert "result" in reply, reply
        return reply["result"]

    def notify(self, method: str, params: Any = None) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)

    def close(self) -> None:
        """Kill the process if it still runs; close its pipes."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(TIMEOUT)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()

    def read_to_eof(self) -> bytes:
        """Everything until the process closes its stdout."""
        rest: bytes = self._buffer + self._out.read()
        self._buffer = b""
        return rest


def spawn_attach(workspace: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*CLI, "attach", "--workspace", str(workspace), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def wait_pid_gone(pid: int, timeout: float = TIMEOUT) -> bool:
    """Wait on a pidfd (readable once the process exits) with a deadline."""
    import select

    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        poller.poll(timeout * 1000)
    finally:
        os.close(fd)
    return not pid_alive(pid)


def stop_workspace_daemon(workspace: Path) -> None:
    """Stop (SIGTERM, then SIGKILL) whatever daemon the discovery file names for ``workspace``
    (a daemon started by `attach` is detached: nobody else would)."""
    info = read_discovery(workspace)
    if info is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(info.pid, signal.SIGTERM)
    if not wait_pid_gone(info.pid, 10.0):
        with contextlib.suppress(ProcessLookupError):
            os.kill(info.pid, signal.SIGKILL)
        wait_pid_gone(info.pid, 10.0)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(info.pid, os.WNOHANG)  # reap it if this process started it (start=True)


def elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
