"""Clients for the end-to-end tests: Neovim driven over msgpack-rpc (``nvim --embed``), and a raw
blocking LSP client for the daemon's Unix socket.

Both are written against the wire, not against ``symphony.protocol``: they play the part of
programs that know nothing of Symphony's code (Neovim, a script), so a framing or encoding
mistake shared by the daemon and our own protocol layer cannot cancel out here.

Every read has a deadline (``TIMEOUT``): a stuck peer fails the test with what it was waiting
for and the tail of the relevant logs, never hangs it.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest

#: Generous: CI machines run several suites at once, and Neovim starts a daemon of its own.
TIMEOUT = 30.0

#: The Lua side of the tests: starts Neovim's LSP client, opens files, waits for convergence.
LUA_MODULE = Path(__file__).with_name("symphony_lsp.lua")

#: The console script installed beside this interpreter: what a user's editor config names.
SYMPHONY = str(Path(sys.executable).with_name("symphony"))

#: What an editor config names to reach the workspace's daemon.
ATTACH = [SYMPHONY, "attach"]


def nvim_executable() -> str:
    """Neovim's path; a missing Neovim fails the test (CI installs Debian's ``neovim``)."""
    found = shutil.which("nvim")
    if found is None:
        pytest.fail(
            "nvim is not installed: the Neovim end-to-end tests need Debian's neovim "
            "(apt-get install -y neovim); CI installs it in .ci/run",
            pytrace=False,
        )
    return found


def tail(path: Path, lines: int = 30) -> str:
    """The end of a log file, for failure messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"({path}: {exc})"


class NvimError(Exception):
    """Neovim answered a request with an error."""


class Nvim:
    """``nvim --embed --headless --clean``, driven over msgpack-rpc on its stdio.

    msgpack-rpc (https://github.com/msgpack-rpc/msgpack-rpc/blob/master/spec.md): a request is
    ``[0, id, method, params]``, its response ``[1, id, error, result]``, a notification
    ``[2, method, params]``; no framing, messages are concatenated msgpack arrays.
    """

    def __init__(self, *, cwd: Path, home: Path, env: dict[str, str]) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.stderr_path = home / "nvim.stderr"
        # Neovim's own LSP log (stdpath('cache')/lsp.log) and state go under ``home``.
        env = {
            **env,
            "XDG_CACHE_HOME": str(home / "cache"),
            "XDG_STATE_HOME": str(home / "state"),
            "XDG_DATA_HOME": str(home / "data"),
            "XDG_CONFIG_HOME": str(home / "config"),
        }
        self.lsp_log = home / "cache" / "nvim" / "lsp.log"
        with self.stderr_path.open("wb") as stderr:
            self.proc = subprocess.Popen(
                [nvim_executable(), "--embed", "--headless", "--clean", "-n"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                cwd=cwd,
                env=env,
            )
        self._unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
        self._ids = 0
        self._methods: dict[int, str] = {}
        self.notifications: list[Any] = []

    def request(self, method: str, *args: Any, timeout: float = TIMEOUT) -> Any:
        """Call an API function; its result, or ``NvimError``."""
        return self.reply(self.send(method, *args), timeout=timeout)

    def send(self, method: str, *args: Any) -> int:
        """Send a request without waiting; its id, for ``reply``."""
        assert self.proc.stdin is not None
        self._ids += 1
        self._methods[self._ids] = method
        self.proc.stdin.write(msgpack.packb([0, self._ids, method, list(args)]))
        self.proc.stdin.flush()
        return self._ids

    def reply(self, request_id: int, timeout: float = TIMEOUT) -> Any:
        """The result of request ``request_id`` (sent by ``send``), or ``NvimError``."""
        method = self._methods.pop(request_id)
        deadline = time.monotonic() + timeout
        while True:
            for message in self._unpacker:
                if message[0] == 1 and message[1] == request_id:
                    if message[2] is not None:
                        raise NvimError(f"{method}: {message[2]}")
                    return message[3]
                self.notifications.append(message)
            self._unpacker.feed(self._read(deadline, f"Neovim's answer to {method}"))

    def _read(self, deadline: float, what: str) -> bytes:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        remaining = deadline - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(remaining, 0))
        if not ready:
            raise TimeoutError(f"no {what} within the deadline\n{self.diagnostics()}")
        data = os.read(fd, 1 << 16)
        if not data:
            raise ConnectionError(f"Neovim exited while waiting for {what}\n{self.diagnostics()}")
        return data

    def lua(self, code: str, *args: Any, timeout: float = TIMEOUT) -> Any:
        """Run Lua (``...`` are ``args``) and return its value."""
        return self.request("nvim_exec_lua", code, list(args), timeout=timeout)

    def call(self, function: str, *args: Any, timeout: float = TIMEOUT) -> Any:
        """Call a function of ``tests/e2e/symphony_lsp.lua`` with ``args``."""
        return self.reply(self.start_call(function, *args), timeout=timeout)

    def start_call(self, function: str, *args: Any) -> int:
        """``call`` without waiting for the result; the request id, for ``reply``."""
        code = f"return dofile({json.dumps(str(LUA_MODULE))}).{function}(...)"
        return self.send("nvim_exec_lua", code, list(args))

    def feed(self, keys: str) -> None:
        """Type ``keys`` (``<Esc>``, ``<CR>``, ``<BS>`` notation) as a user would.

        ``x`` executes them before the call returns, ``t`` makes them count as typed (undo
        blocks, insert-mode behaviour)."""
        # Converted in Lua: the key codes are not UTF-8, so they cannot travel as msgpack str.
        self.lua(
            "local keys = vim.api.nvim_replace_termcodes(..., true, false, true)\n"
            "vim.api.nvim_feedkeys(keys, 'xt', false)",
            keys,
        )

    def quit(self, timeout: float = TIMEOUT) -> int:
        """``:qa!`` and wait for Neovim to exit (its LSP client stops its servers first)."""
        assert self.proc.stdin is not None
        # A notification: Neovim exits without answering, so no response is awaited.
        self.proc.stdin.write(msgpack.packb([2, "nvim_command", ["qa!"]]))
        self.proc.stdin.flush()
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(TIMEOUT)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()

    def diagnostics(self) -> str:
        return (
            f"nvim stderr:\n{tail(self.stderr_path)}\n"
            f"nvim lsp.log:\n{tail(self.lsp_log)}\n"
            f"nvim notifications: {self.notifications[-10:]}"
        )


class LspClient:
    """A raw blocking LSP client on a Unix socket: Content-Length framing, JSON bodies."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(str(path))
        self._buffer = b""
        self._ids = 0
        self.notifications: deque[dict[str, Any]] = deque()

    def close(self) -> None:
        self.sock.close()

    def send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}, ensure_ascii=False).encode()
        self.sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def receive(self, deadline: float) -> dict[str, Any] | None:
        """The next message, or None once the daemon closed the connection."""
        while True:
            header_end = self._buffer.find(b"\r\n\r\n")
            if header_end >= 0:
                headers = self._buffer[:header_end].decode("ascii").split("\r\n")
                length = next(
                    int(value)
                    for name, _, value in (h.partition(":") for h in headers)
                    if name.strip().lower() == "content-length"
                )
                end = header_end + 4 + length
                if len(self._buffer) >= end:
                    body = self._buffer[header_end + 4 : end]
                    self._buffer = self._buffer[end:]
                    message: dict[str, Any] = json.loads(body)
                    return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no message from the daemon within the deadline")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(1 << 16)
            except ConnectionResetError:
                data = b""
            if not data:
                return None
            self._buffer += data

    def request(self, method: str, params: Any = None) -> dict[str, Any]:
        """Send a request and return its response (notifications meanwhile are kept)."""
        self._ids += 1
        request_id = self._ids
        self.send({"id": request_id, "method": method, "params": params})
        deadline = time.monotonic() + TIMEOUT
        while True:
            message = self.receive(deadline)
            assert message is not None, f"the daemon closed the connection during {method}"
            if "method" in message:
                if "id" in message:  # a request from the daemon: we implement none
                    self.send({"id": message["id"], "error": {"code": -32601, "message": "no"}})
                else:
                    self.notifications.append(message)
                continue
            assert message.get("id") == request_id, message
            return message

    def result(self, method: str, params: Any = None) -> Any:
        reply = self.request(method, params)
        assert "result" in reply, f"{method} failed: {reply}"
        return reply["result"]

    def notify(self, method: str, params: Any = None) -> None:
        self.send({"method": method, "params": params})

    def initialize(self, encoding: str) -> dict[str, Any]:
        result: dict[str, Any] = self.result(
            "initialize",
            {
                "processId": os.getpid(),
                "clientInfo": {"name": "e2e-raw-client"},
                "capabilities": {"general": {"positionEncodings": [encoding]}},
            },
        )
        self.notify("initialized", {})
        return result

    def wait_closed(self, timeout: float = TIMEOUT) -> bool:
        """Read until the daemon closes the connection; True once it has."""
        deadline = time.monotonic() + timeout
        while self.receive(deadline) is not None:
            pass
        return True


# -- LSP positions ---------------------------------------------------------------------------------

_UNITS: dict[str, Callable[[str], int]] = {
    "utf-8": lambda c: len(c.encode("utf-8")),
    "utf-16": lambda c: 2 if ord(c) > 0xFFFF else 1,
    "utf-32": lambda c: 1,
}


def offset(text: str, line: int, character: int, encoding: str) -> int:
    """The index in ``text`` of an LSP position in ``encoding``; a position inside a character
    or past the end of its line is an error (the daemon must never send one)."""
    start = 0
    for _ in range(line):
        newline = text.index("\n", start)
        start = newline + 1
    end = text.find("\n", start)
    end = len(text) if end < 0 else end
    units = _UNITS[encoding]
    index, counted = start, 0
    while counted < character:
        if index >= end:
            raise ValueError(f"character {character} is past the end of line {line}")
        counted += units(text[index])
        index += 1
    if counted != character:
        raise ValueError(f"character {character} of line {line} splits a code point")
    return index


def apply_changes(text: str, changes: list[dict[str, Any]], encoding: str) -> str:
    """Apply ``symphony/buffer/didChange`` changes (each relative to the text the previous one
    left, as LSP content changes are)."""
    for change in changes:
        start = change["range"]["start"]
        end = change["range"]["end"]
        a = offset(text, start["line"], start["character"], encoding)
        b = offset(text, end["line"], end["character"], encoding)
        text = text[:a] + change["text"] + text[b:]
    return text


def position(text: str, index: int, encoding: str) -> dict[str, int]:
    """The LSP position of ``text[index]`` in ``encoding``."""
    line = text.count("\n", 0, index)
    start = text.rfind("\n", 0, index) + 1
    units = _UNITS[encoding]
    return {"line": line, "character": sum(units(c) for c in text[start:index])}


class DaemonProcess:
    """``symphony serve`` started by a test; its JSON log lines are collected from stderr by a
    thread, so tests wait on log events (a condition with a deadline), never on time."""

    def __init__(self, args: list[str], *, workspace: Path) -> None:
        self.proc = subprocess.Popen(
            [SYMPHONY, "serve", "--workspace", str(workspace), "--log-format", "json", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.logs: list[dict[str, Any]] = []
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._changed:
                self.lines.append(line)
                with contextlib.suppress(ValueError):
                    entry = json.loads(line)
                    if isinstance(entry, dict):
                        self.logs.append(entry)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_log(self, event: str, **fields: Any) -> dict[str, Any]:
        """The first log entry ``event`` with these fields; fails if the daemon exits first."""

        def find() -> dict[str, Any] | None:
            for entry in self.logs:
                if entry.get("event") == event and all(
                    entry.get(k) == v for k, v in fields.items()
                ):
                    return entry
            return None

        with self._changed:
            self._changed.wait_for(
                lambda: find() is not None or not self._reader.is_alive(), TIMEOUT
            )
            found = find()
        assert found is not None, f"no {event!r} {fields} in the daemon's log\n{self.diagnostics()}"
        return found

    def wait_ready(self) -> dict[str, str]:
        addresses: dict[str, str] = self.wait_log("ready")["addresses"]
        return addresses

    def diagnostics(self) -> str:
        with self._changed:
            lines = self.lines[-30:]
        return f"daemon (exit status {self.proc.poll()}) log:\n" + "\n".join(lines)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(TIMEOUT)
        self._reader.join(TIMEOUT)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
