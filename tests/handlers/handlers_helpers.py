"""Real daemon processes and a raw blocking client for the buffer and text-sync tests.

The client speaks the protocol through ``symphony.protocol``'s sans-IO ``StreamConnection``;
it keeps every notification it reads, answers the daemon's requests (``workspace/applyEdit``)
through a handler, and waits for things with a deadline, never a sleep.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from symphony.protocol import (
    CLOSED,
    NEED_DATA,
    Codec,
    ErrorResponse,
    Message,
    Notification,
    Received,
    Request,
    Response,
    StreamConnection,
)

TIMEOUT = 30.0  # generous: CI machines are shared; a hang still fails
Reply = Response | ErrorResponse


class DaemonProcess:
    """``python -m symphony.server`` as a subprocess; JSON log lines collected from stderr."""

    def __init__(self, args: list[str], *, workspace: Path, runtime_dir: Path) -> None:
        env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime_dir), "PYTHONUNBUFFERED": "1"}
        env.pop("SYMPHONY_TOKEN", None)
        self.workspace = workspace
        command = [sys.executable, "-m", "symphony.server", "--workspace", str(workspace)]
        self.proc = subprocess.Popen(
            [*command, "--log-format", "json", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
        )
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

    def ready(self) -> tuple[dict[str, str], str]:
        """The addresses the daemon listens on, and its token (from its discovery file)."""
        entry = self.wait_log("ready")
        token = json.loads(Path(entry["discovery"]).read_text())["token"]
        return entry["addresses"], token

    def errors(self) -> list[dict[str, Any]]:
        """Log lines at error level (a handler that failed, a task that crashed)."""
        with self._changed:
            return [e for e in self.logs if e.get("level") in ("error", "critical")]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(TIMEOUT)
        self._reader.join(TIMEOUT)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


@contextlib.contextmanager
def daemon_process(
    args: list[str], *, workspace: Path, runtime_dir: Path
) -> Iterator[DaemonProcess]:
    process = DaemonProcess(args, workspace=workspace, runtime_dir=runtime_dir)
    try:
        yield process
    finally:
        process.kill()


class RawClient:
    """A blocking JSON-RPC client over a Unix or TCP socket (no asyncio on this side).

    Notifications read while waiting for something else are kept in ``notifications``; the
    daemon's requests are answered by ``on_request(method, params) -> result`` (or -32601).
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.stream = StreamConnection()
        self.notifications: list[Notification] = []
        self.requests: list[Request] = []
        self.on_request: Callable[[str, Any], Any] | None = None
        self._ids = itertools.count(1)

    @classmethod
    def unix(cls, path: str) -> RawClient:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(TIMEOUT)
        sock.connect(path)
        return cls(sock)

    @classmethod
    def tcp(cls, address: str) -> RawClient:
        host, port = address.rsplit(":", 1)
        sock = socket.create_connection((host, int(port)), timeout=TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(sock)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def send(self, message: Message) -> None:
        self.sock.sendall(self.stream.send(message, Codec.JSON))

    def notify(self, method: str, params: Any = None) -> None:
        self.send(Notification(method, params))

    def _next(self, deadline: float) -> Message | None:
        """The next message from the daemon; None after answering one of its requests."""
        while True:
            event = self.stream.next_message()
            if event is CLOSED:
                raise EOFError("the daemon closed the connection")
            if event is NEED_DATA:
                self.sock.settimeout(max(0.001, deadline - time.monotonic()))
                try:
                    data = self.sock.recv(1 << 20)
                except TimeoutError:
                    raise TimeoutError("nothing from the daemon before the deadline") from None
                self.stream.receive_data(data)
                continue
            assert isinstance(event, Received)
            message = event.message
            if isinstance(message, Request):
                self._answer(message)
                return None
            return message  # type: ignore[return-value]

    def _answer(self, request: Request) -> None:
        self.requests.append(request)
        if self.on_request is None:
            self.send(ErrorResponse(request.id, -32601, f"no handler for {request.method}"))
        else:
            self.send(Response(request.id, self.on_request(request.method, request.params)))

    def call(self, method: str, params: Any = None, *, timeout: float = TIMEOUT) -> Reply:
        request_id = next(self._ids)
        self.send(Request(request_id, method, params))
        deadline = time.monotonic() + timeout
        while True:
            message = self._next(deadline)
            if isinstance(message, Notification):
                self.notifications.append(message)
            elif isinstance(message, Response | ErrorResponse) and message.id == request_id:
                return message

    def result(self, method: str, params: Any = None) -> Any:
        reply = self.call(method, params)
        assert isinstance(reply, Response), reply
        return reply.result

    def error(self, method: str, params: Any = None) -> ErrorResponse:
        reply = self.call(method, params)
        assert isinstance(reply, ErrorResponse), reply
        return reply

    def initialize(self, **params: Any) -> Any:
        params.setdefault("capabilities", {})
        result = self.result("initialize", params)
        self.notify("initialized", {})
        return result

    def wait_for(
        self, predicate: Callable[[Notification], bool], *, timeout: float = TIMEOUT
    ) -> Notification:
        """The first notification (kept or new) matching ``predicate``; it is removed."""
        deadline = time.monotonic() + timeout
        while True:
            for i, note in enumerate(self.notifications):
                if predicate(note):
                    return self.notifications.pop(i)
            message = self._next(deadline)
            if isinstance(message, Notification):
                self.notifications.append(message)

    def pump(self, until: Callable[[], bool], *, timeout: float = TIMEOUT) -> None:
        """Read (answering requests, keeping notifications) until ``until()`` holds."""
        deadline = time.monotonic() + timeout
        while not until():
            message = self._next(deadline)
            if isinstance(message, Notification):
                self.notifications.append(message)


def position_to_offset(text: str, line: int, character: int, encoding: str) -> int:
    """LSP position -> code-point offset in ``text`` (lines end at ``\\n`` only, here)."""
    start = 0
    for _ in range(line):
        start = text.index("\n", start) + 1
    end = text.find("\n", start)
    end = len(text) if end < 0 else end
    offset, units = start, 0
    while offset < end and units < character:
        units += unit_length(text[offset], encoding)
        offset += 1
    return offset


def offset_to_position(text: str, offset: int, encoding: str) -> dict[str, int]:
    line = text.count("\n", 0, offset)
    start = text.rfind("\n", 0, offset) + 1
    character = sum(unit_length(ch, encoding) for ch in text[start:offset])
    return {"line": line, "character": character}


def unit_length(ch: str, encoding: str) -> int:
    if encoding == "utf-8":
        return len(ch.encode("utf-8"))
    if encoding == "utf-16":
        return 2 if ord(ch) > 0xFFFF else 1
    return 1


def apply_changes(text: str, changes: list[dict[str, Any]], encoding: str) -> str:
    """Apply LSP content changes (one after another) to ``text``."""
    for change in changes:
        if "range" not in change:
            text = change["text"]
            continue
        start = change["range"]["start"]
        end = change["range"]["end"]
        low = position_to_offset(text, start["line"], start["character"], encoding)
        high = position_to_offset(text, end["line"], end["character"], encoding)
        text = text[:low] + change["text"] + text[high:]
    return text


def edit_at(text: str, low: int, high: int, new: str, encoding: str) -> dict[str, Any]:
    """An edit of ``text[low:high]`` as a ``{range, text}`` in ``encoding``."""
    return {
        "range": {
            "start": offset_to_position(text, low, encoding),
            "end": offset_to_position(text, high, encoding),
        },
        "text": new,
    }


@dataclass
class Daemon:
    """A running daemon of the module-scoped ``daemon`` fixture (conftest.py)."""

    process: DaemonProcess
    workspace: Path
    addresses: dict[str, str]
    token: str

    def unix(self, **initialize: object) -> RawClient:
        client = RawClient.unix(self.addresses["unix"])
        client.initialize(**initialize)
        return client
