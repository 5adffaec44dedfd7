"""Test clients for the server: an in-memory async client, a blocking client for real pipes and
sockets, and a real daemon process. They speak the protocol through ``symphony.protocol``'s
sans-IO ``StreamConnection``, the same code a real client uses."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from symphony.protocol import (
    CLOSED,
    NEED_DATA,
    Codec,
    ErrorResponse,
    Incoming,
    Message,
    Notification,
    Received,
    Request,
    Response,
    StreamConnection,
    decode_message,
    encode_message,
)
from symphony.server import Daemon, MemoryPeer, MemoryTransport

Reply = Response | ErrorResponse
TIMEOUT = 30.0  # generous: CI machines are shared; a hang still fails


class MemoryClient:
    """A client on the peer end of a ``MemoryTransport``."""

    def __init__(self, peer: MemoryPeer, *, framed: bool) -> None:
        self.peer = peer
        self.framed = framed
        self.stream = StreamConnection()
        self.received: deque[Received] = deque()
        self.notifications: list[Notification] = []
        self._ids = itertools.count(1)
        self.eof = False

    def send(self, message: Message | list[Message], codec: Codec = Codec.JSON) -> None:
        if self.framed:
            self.peer.send(self.stream.send(message, codec))  # type: ignore[arg-type]
        else:
            body = encode_message(message, codec)  # type: ignore[arg-type]
            self.peer.send(body.decode() if codec is Codec.JSON else body)

    def send_raw(self, data: bytes | str) -> None:
        self.peer.send(data)

    async def next(self) -> Received | None:
        """The next message from the server; None once it closed the connection."""
        async with asyncio.timeout(TIMEOUT):
            while not self.received:
                if self.eof:
                    return None
                data = await self.peer.receive()
                if data is None:
                    self.eof = True
                    if self.framed:
                        self.stream.receive_data(b"")
                        self._drain_stream()
                    continue
                if self.framed:
                    assert isinstance(data, bytes)
                    self.stream.receive_data(data)
                    self._drain_stream()
                else:
                    codec = Codec.JSON if isinstance(data, str) else Codec.MSGPACK
                    self.received.append(Received(decode_message(data, codec), codec))
            return self.received.popleft()

    def _drain_stream(self) -> None:
        while (event := self.stream.next_message()) is not NEED_DATA and event is not CLOSED:
            assert isinstance(event, Received)
            self.received.append(event)

    async def reply(self, request_id: Any) -> Received:
        """Read until the reply to ``request_id``; notifications seen meanwhile are kept."""
        while True:
            event = await self.next()
            assert event is not None, f"connection closed before the reply to {request_id!r}"
            message = event.message
            if isinstance(message, Notification):
                self.notifications.append(message)
                continue
            if isinstance(message, Response | ErrorResponse) and message.id == request_id:
                return event
            raise AssertionError(f"unexpected message while waiting for {request_id!r}: {message}")

    async def call(self, method: str, params: Any = None, *, codec: Codec = Codec.JSON) -> Reply:
        request_id = next(self._ids)
        self.send(Request(request_id, method, params), codec)
        message = (await self.reply(request_id)).message
        assert isinstance(message, Response | ErrorResponse)
        return message

    async def result(self, method: str, params: Any = None) -> Any:
        reply = await self.call(method, params)
        assert isinstance(reply, Response), reply
        return reply.result

    async def initialize(self, **params: Any) -> Any:
        params.setdefault("capabilities", {})
        result = await self.result("initialize", params)
        self.send(Notification("initialized", {}))
        return result

    async def closed(self) -> bool:
        """Read until the server closes; True if it did (other messages are discarded)."""
        while (await self.next()) is not None:
            pass
        return True

    async def notification(self, method: str) -> Notification:
        """The next notification called ``method`` (earlier ones kept are used first)."""
        for i, note in enumerate(self.notifications):
            if note.method == method:
                return self.notifications.pop(i)
        while True:
            event = await self.next()
            assert event is not None, f"connection closed before a {method} notification"
            if isinstance(event.message, Notification):
                if event.message.method == method:
                    return event.message
                self.notifications.append(event.message)


@contextlib.asynccontextmanager
async def connect(
    daemon: Daemon, *, framed: bool = True, trusted: bool = True, high_water: int = 1 << 16
) -> AsyncIterator[MemoryClient]:
    """A client connected to ``daemon`` in memory, for the duration of the block."""
    transport = MemoryTransport(framed=framed, trusted=trusted, high_water=high_water)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(daemon.serve(transport))
        client = MemoryClient(transport.peer_end, framed=framed)
        try:
            yield client
        finally:
            client.peer.close()
            async with asyncio.timeout(TIMEOUT):
                await task


# -- real processes ------------------------------------------------------------------------------


class BlockingClient:
    """A raw blocking client over a socket or a pair of pipes (no asyncio on this side)."""

    def __init__(self, reader: BinaryIO | socket.socket, writer: BinaryIO | socket.socket):
        self._reader = reader
        self._writer = writer
        self.stream = StreamConnection()
        self.pending: deque[Incoming] = deque()
        self.notifications: list[Notification] = []
        self._ids = itertools.count(1)

    @classmethod
    def tcp(cls, address: str) -> BlockingClient:
        host, port = address.rsplit(":", 1)
        sock = socket.create_connection((host.strip("[]"), int(port)), timeout=TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(sock, sock)

    @classmethod
    def unix(cls, path: str) -> BlockingClient:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(TIMEOUT)
        sock.connect(path)
        return cls(sock, sock)

    def close(self) -> None:
        for end in {id(self._reader): self._reader, id(self._writer): self._writer}.values():
            with contextlib.suppress(OSError):
                end.close()

    def close_write(self) -> None:
        """Half-close: the daemon sees EOF but can still answer."""
        if isinstance(self._writer, socket.socket):
            self._writer.shutdown(socket.SHUT_WR)
        else:
            self._writer.close()

    def send_bytes(self, data: bytes) -> None:
        if isinstance(self._writer, socket.socket):
            self._writer.sendall(data)
        else:
            self._writer.write(data)
            self._writer.flush()

    def send(self, message: Message | list[Message], codec: Codec = Codec.JSON) -> None:
        self.send_bytes(self.stream.send(message, codec))  # type: ignore[arg-type]

    def _read_chunk(self) -> bytes:
        if isinstance(self._reader, socket.socket):
            return self._reader.recv(1 << 20)
        ready, _, _ = select.select([self._reader], [], [], TIMEOUT)
        if not ready:
            raise TimeoutError("no data from the daemon")
        return os.read(self._reader.fileno(), 1 << 20)

    def next(self) -> Incoming | None:
        """The next message; None once the daemon closed the stream."""
        while not self.pending:
            event = self.stream.next_message()
            if event is CLOSED:
                return None
            if event is NEED_DATA:
                try:
                    data = self._read_chunk()
                except ConnectionResetError:
                    data = b""
                self.stream.receive_data(data)
                continue
            assert isinstance(event, Received)
            self.pending.append(event.message)
        return self.pending.popleft()

    def reply(self, request_id: Any) -> Reply:
        while True:
            message = self.next()
            assert message is not None, f"connection closed before the reply to {request_id!r}"
            if isinstance(message, Notification):
                self.notifications.append(message)
                continue
            assert isinstance(message, Response | ErrorResponse), message
            if message.id == request_id:
                return message

    def call(self, method: str, params: Any = None, *, codec: Codec = Codec.JSON) -> Reply:
        request_id = next(self._ids)
        self.send(Request(request_id, method, params), codec)
        return self.reply(request_id)

    def result(self, method: str, params: Any = None) -> Any:
        reply = self.call(method, params)
        assert isinstance(reply, Response), reply
        return reply.result

    def initialize(self, **params: Any) -> Any:
        params.setdefault("capabilities", {})
        result = self.result("initialize", params)
        self.send(Notification("initialized", {}))
        return result

    def closed_by_peer(self) -> bool:
        """Read until the daemon closes the stream; True when it has."""
        while self.next() is not None:
            pass
        return True


SERVE = [sys.executable, "-m", "symphony.server"]


class DaemonProcess:
    """A real daemon subprocess; its JSON log lines are collected from stderr by a thread."""

    def __init__(
        self,
        args: list[str],
        *,
        runtime_dir: Path,
        workspace: Path,
        stdio: bool = False,
        python_flags: tuple[str, ...] = (),
    ):
        env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime_dir), "PYTHONUNBUFFERED": "1"}
        env.pop("SYMPHONY_TOKEN", None)
        self.spawned_at = time.perf_counter()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                *python_flags,
                *SERVE[1:],
                "--workspace",
                str(workspace),
                "--log-format",
                "json",
                *args,
            ],
            stdin=subprocess.PIPE if stdio else subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdio else subprocess.DEVNULL,
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

    def wait_log(self, event: str, timeout: float = 30.0, **fields: Any) -> dict[str, Any]:
        """Wait for a log line with this event (and fields); fail if the process exits first."""

        def find() -> dict[str, Any] | None:
            for entry in self.logs:
                if entry.get("event") == event and all(
                    entry.get(k) == v for k, v in fields.items()
                ):
                    return entry
            return None

        with self._changed:
            ok = self._changed.wait_for(
                lambda: find() is not None or not self._reader.is_alive(), timeout
            )
            found = find()
        if not ok or found is None:
            raise AssertionError(
                f"no {event!r} log line (exit code {self.proc.poll()}); stderr:\n"
                + "\n".join(self.stderr_lines[-30:])
            )
        return found

    def wait_ready(self, timeout: float = 30.0) -> dict[str, str]:
        addresses: dict[str, str] = self.wait_log("ready", timeout)["addresses"]
        return addresses

    def stdio_client(self) -> BlockingClient:
        assert self.proc.stdout is not None
        assert self.proc.stdin is not None
        return BlockingClient(self.proc.stdout, self.proc.stdin)  # type: ignore[arg-type]

    def wait(self, timeout: float = 20.0) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(timeout)
        return code

    def terminate(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(TIMEOUT)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


@contextlib.contextmanager
def daemon_process(
    args: list[str], *, runtime_dir: Path, workspace: Path, stdio: bool = False
) -> Iterator[DaemonProcess]:
    process = DaemonProcess(args, runtime_dir=runtime_dir, workspace=workspace, stdio=stdio)
    try:
        yield process
    finally:
        process.kill()
