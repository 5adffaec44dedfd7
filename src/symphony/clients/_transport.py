"""How the Python client reaches a daemon: connectors, channels, and the client's errors.

A ``Connector`` knows an address and opens a fresh ``Channel`` to it each time it is asked (the
client asks again after a disconnect, when it reconnects). A ``Channel`` is one open connection,
behind the same four operations whatever carries it:

- ``framed`` channels (stdio pipes, TCP, Unix socket) carry a byte stream in LSP's
  ``Content-Length`` framing; ``receive`` returns whatever bytes arrived;
- unframed channels (WebSocket) carry one message per frame: ``str`` for a text frame (JSON),
  ``bytes`` for a binary frame (msgpack).

Parsing is not done here: the client feeds what ``receive`` returns to the sans-IO
``symphony.protocol.StreamConnection`` (or ``decode_message`` for a frame), the same code the
daemon uses. This module imports no pydantic; websockets only when a WebSocket is opened.

Errors raised by the client (exceptions the daemon *answers* with are ``symphony.protocol``'s
``RpcError`` subclasses, raised as themselves: ``RevisionConflict``, ``BufferNotFound``...)::

    ClientError                  anything symphony.clients raises on purpose
    ├── ConnectError             could not open a connection (refused, no such socket, a spawned
    │   │                        daemon that exited, a WebSocket handshake refused...)
    │   └── DaemonNotFound       no daemon runs for this workspace (no live discovery file)
    ├── ConnectionLost           the connection ended (or the client was closed) while a request
    │                            was waiting for its reply, or before it could be sent
    └── RequestTimeout           no reply within the request's timeout (also a TimeoutError);
                                 ``$/cancelRequest`` was sent for it
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal

from symphony.clients._attach import DEFAULT_SERVE_COMMAND

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

    from symphony.server._discovery import DiscoveryInfo

__all__ = [
    "DEFAULT_SERVE_COMMAND",
    "Channel",
    "ChannelKind",
    "ClientError",
    "ConnectError",
    "ConnectionLost",
    "Connector",
    "DaemonNotFound",
    "RequestTimeout",
    "StdioConnector",
    "TcpConnector",
    "UnixConnector",
    "WebSocketConnector",
    "WorkspaceConnector",
    "parse_tcp_address",
]

ChannelKind = Literal["stdio", "tcp", "unix", "ws"]

#: Bytes asked for per read: whatever the socket has, in one call (a 50 MB reply in ~50 reads).
READ_SIZE: Final = 1 << 20
#: Above this many bytes waiting in our send buffer, a sender waits for the peer to read.
WRITE_HIGH_WATER: Final = 1 << 20
#: Seconds a spawned stdio daemon gets to exit after ``exit`` before it is terminated.
STDIO_EXIT_GRACE: Final = 5.0


# -- errors ------------------------------------------------------------------------------------


class ClientError(Exception):
    """Base of every error ``symphony.clients`` raises on purpose (not the daemon's RpcErrors)."""


class ConnectError(ClientError):
    """A connection could not be opened (or a spawned daemon exited before answering)."""


class DaemonNotFound(ConnectError):
    """No daemon runs for this workspace: no discovery file, or its process is gone."""

    def __init__(self, workspace: str, message: str | None = None) -> None:
        self.workspace = workspace
        super().__init__(
            message
            or f"no Symphony daemon is running for {workspace} "
            "(start one with `symphony serve --unix`, or let `symphony attach` start it)"
        )


class ConnectionLost(ClientError):
    """The connection ended (or the client closed) before a request got its reply."""


class RequestTimeout(ClientError, TimeoutError):
    """A request got no reply within its timeout; the client sent ``$/cancelRequest`` for it."""

    def __init__(self, method: str, timeout: float) -> None:
        self.method = method
        self.timeout = timeout
        super().__init__(f"{method}: no reply within {timeout:g} s (cancelled)")


# -- channels ------------------------------------------------------------------------------------


class Channel(abc.ABC):
    """One open connection to a daemon. Subclasses set ``kind``, ``framed`` and ``peer``."""

    kind: ChannelKind
    framed: bool
    peer: str

    @abc.abstractmethod
    async def receive(self) -> bytes | str | None:
        """The next chunk (framed) or message (unframed); ``None`` once the peer closed."""

    @abc.abstractmethod
    async def send(self, data: bytes, *, text: bool = True) -> None:
        """Write one frame's bytes (or one WebSocket message: ``text`` picks the frame type).

        Raises ``ConnectionLost`` if the connection is gone."""

    @abc.abstractmethod
    def close(self) -> None:
        """Start closing (idempotent). Bytes already sent are flushed if the peer reads."""

    @abc.abstractmethod
    async def wait_closed(self) -> None:
        """Wait until the channel is closed (bounded: a peer that does not read is aborted)."""

    def end_of_input(self) -> None:  # noqa: B027 - optional hook, nothing to do by default
        """We will send nothing more (a stdio daemon then sees EOF on its stdin)."""


class StreamChannel(Channel):
    """A byte stream over asyncio streams (TCP, Unix socket)."""

    framed = True

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        kind: ChannelKind,
        peer: str,
    ) -> None:
        self.kind = kind
        self.peer = peer
        self._reader = reader
        self._writer = writer
        writer.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)

    async def receive(self) -> bytes | None:
        try:
            data = await self._reader.read(READ_SIZE)
        except (ConnectionError, OSError):
            return None
        return data or None

    async def send(self, data: bytes, *, text: bool = True) -> None:
        writer = self._writer
        if writer.is_closing():
            raise ConnectionLost(f"the connection to {self.peer} is closed")
        try:
            writer.write(data)
            # drain() returns at once below the high-water mark; above it, it waits for the
            # daemon to read (backpressure instead of an unbounded buffer).
            await writer.drain()
        except (ConnectionError, OSError, RuntimeError) as exc:
            raise ConnectionLost(f"the connection to {self.peer} was lost: {exc}") from exc

    def close(self) -> None:
        if not self._writer.is_closing():
            self._writer.close()

    def end_of_input(self) -> None:
        with contextlib.suppress(OSError, RuntimeError):
            if self._writer.can_write_eof() and not self._writer.is_closing():
                self._writer.write_eof()

    async def wait_closed(self) -> None:
        try:
            async with asyncio.timeout(STDIO_EXIT_GRACE):
                await self._writer.wait_closed()
        except (ConnectionError, OSError):
            pass
        except TimeoutError:
            self._writer.transport.abort()


class StdioChannel(StreamChannel):
    """The pipes of a daemon we spawned (``serve --stdio``). Closing it ends the process:
    the client sends ``shutdown`` and ``exit`` first; here we close stdin and wait for the
    process, terminating it if it does not exit within ``STDIO_EXIT_GRACE`` seconds."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        assert process.stdin is not None
        super().__init__(process.stdout, process.stdin, kind="stdio", peer=f"pid {process.pid}")
        self.process = process

    def close(self) -> None:
        with contextlib.suppress(OSError, RuntimeError):
            super().close()

    async def wait_closed(self) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            await super().wait_closed()
        process = self.process
        try:
            async with asyncio.timeout(STDIO_EXIT_GRACE):
                await process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                async with asyncio.timeout(STDIO_EXIT_GRACE):
                    await process.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()


class WebSocketChannel(Channel):
    """A WebSocket (``websockets``' asyncio client): one message per frame."""

    kind: ChannelKind = "ws"
    framed = False

    def __init__(self, connection: ClientConnection, *, peer: str) -> None:
        self.peer = peer
        self._ws = connection

    async def receive(self) -> bytes | str | None:
        from websockets.exceptions import ConnectionClosed

        try:
            message: bytes | str = await self._ws.recv()
        except ConnectionClosed:
            return None
        return message

    async def send(self, data: bytes, *, text: bool = True) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            await self._ws.send(data, text=text)
        except ConnectionClosed as exc:
            raise ConnectionLost(f"the WebSocket to {self.peer} was closed: {exc}") from exc

    def close(self) -> None:
        """Nothing to do synchronously: the closing handshake needs the loop, and
        ``wait_closed`` drives it (a reader blocked in ``receive`` then gets ``None``)."""

    async def wait_closed(self) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(STDIO_EXIT_GRACE):
                await self._ws.close()
        self._ws.transport.abort()


# -- connectors ------------------------------------------------------------------------------------


class Connector(abc.ABC):
    """An address the client can (re)connect to. ``open`` returns a new ``Channel`` each time.

    ``token`` is sent as ``initializationOptions.token`` (TCP and WebSocket need it); connectors
    that look it up (``WorkspaceConnector``) update it on every ``open``. ``reconnectable`` is
    False for a spawned daemon: when its pipes close, the daemon is gone.
    """

    kind: ChannelKind
    token: str | None = None
    reconnectable: bool = True

    @abc.abstractmethod
    async def open(self) -> Channel:
        """A new connection. Raises ``ConnectError`` (or ``DaemonNotFound``) if it fails."""

    @abc.abstractmethod
    def describe(self) -> str:
        """Where this connects to, for messages."""


def parse_tcp_address(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT``, ``PORT`` or ``[IPV6]:PORT`` -> (host, port); host 127.0.0.1."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = "", text
    host = host.strip("[]") or "127.0.0.1"
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"invalid address {text!r}: expected HOST:PORT") from None
    if not 0 < port <= 65535:
        raise ValueError(f"invalid address {text!r}: port {port} is out of range")
    return host, port


@dataclass(slots=True)
class TcpConnector(Connector):
    """``HOST:PORT`` over TCP. The daemon wants its token (from the discovery file)."""

    host: str
    port: int
    token: str | None = None
    kind: ChannelKind = field(default="tcp", init=False)
    reconnectable: bool = field(default=True, init=False)

    async def open(self) -> Channel:
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port, limit=READ_SIZE)
        except OSError as exc:
            raise ConnectError(f"cannot connect to {self.describe()}: {exc}") from exc
        with contextlib.suppress(OSError):
            import socket

            sock = writer.get_extra_info("socket")
            if sock is not None:
                # Requests are small and latency-bound: send each at once.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return StreamChannel(reader, writer, kind="tcp", peer=self.describe())

    def describe(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp {host}:{self.port}"


@dataclass(slots=True)
class UnixConnector(Connector):
    """A Unix socket: the OS authenticates us (the socket is 0600), no token needed."""

    path: str
    token: str | None = None
    kind: ChannelKind = field(default="unix", init=False)
    reconnectable: bool = field(default=True, init=False)

    async def open(self) -> Channel:
        try:
            reader, writer = await asyncio.open_unix_connection(self.path, limit=READ_SIZE)
        except OSError as exc:
            raise ConnectError(f"cannot connect to {self.describe()}: {exc}") from exc
        return StreamChannel(reader, writer, kind="unix", peer=self.describe())

    def describe(self) -> str:
        return f"unix {self.path}"


@dataclass(slots=True)
class WebSocketConnector(Connector):
    """A ``ws://`` URL. The token goes in the handshake (``Authorization: Bearer``), which
    authenticates the connection before ``initialize``; it is also sent in ``initialize``."""

    url: str
    token: str | None = None
    origin: str | None = None
    max_message_size: int | None = None
    kind: ChannelKind = field(default="ws", init=False)
    reconnectable: bool = field(default=True, init=False)

    async def open(self) -> Channel:
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidHandshake, InvalidURI

        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        try:
            connection = await connect(
                self.url,
                additional_headers=headers,
                origin=self.origin,  # type: ignore[arg-type]
                compression=None,
                # The daemon is local (or named explicitly): never through an HTTP proxy.
                proxy=None,
                max_size=self.max_message_size,
                # Liveness is the daemon's job to check; a busy client must not be dropped
                # because a ping's pong waited behind a large message.
                ping_interval=None,
            )
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
            raise ConnectError(f"cannot connect to {self.describe()}: {exc}") from exc
        return WebSocketChannel(connection, peer=self.describe())

    def describe(self) -> str:
        return f"ws {self.url}"


@dataclass(slots=True)
class StdioConnector(Connector):
    """Spawn a daemon and speak to it over its stdin/stdout (it lives as long as the client).

    ``argv`` is the whole command (default: ``python -m symphony.server --stdio``);
    ``stderr`` is where its log goes (default: inherited).
    """

    argv: Sequence[str] = (*DEFAULT_SERVE_COMMAND, "--stdio")
    env: Mapping[str, str] | None = None
    cwd: str | None = None
    stderr: int | None = None
    kind: ChannelKind = field(default="stdio", init=False)
    reconnectable: bool = field(default=False, init=False)

    async def open(self) -> Channel:
        try:
            process = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=self.stderr,
                env=dict(self.env) if self.env is not None else None,
                cwd=self.cwd,
                limit=READ_SIZE,
            )
        except OSError as exc:
            raise ConnectError(f"cannot start {self.describe()}: {exc}") from exc
        return StdioChannel(process)

    def describe(self) -> str:
        return "stdio " + " ".join(self.argv)


#: The transports a ``WorkspaceConnector`` tries by default, in order.
_PREFERENCE: Final = ("unix", "tcp", "ws")


@dataclass(slots=True)
class WorkspaceConnector(Connector):
    """The daemon of a workspace, found through its discovery file on every ``open``.

    Looking it up each time is what makes reconnecting work across a daemon restart: the new
    daemon has a new pid and token (and maybe new TCP/WebSocket ports). ``prefer`` picks the
    transport; by default (None) the first the daemon listens on of the Unix socket (no token,
    lowest latency), TCP, WebSocket. With ``start``, a daemon is started in the background
    when none runs (``symphony.clients._attach``).
    """

    workspace: str = "."
    prefer: Literal["unix", "tcp", "ws"] | None = None
    start: bool = False
    start_timeout: float = 15.0
    token: str | None = None
    kind: ChannelKind = field(default="unix", init=False)
    reconnectable: bool = field(default=True, init=False)
    pid: int | None = field(default=None, init=False)

    async def open(self) -> Channel:
        # Reading the discovery file, and above all starting a daemon, blocks: off the loop.
        workspace, info = await asyncio.to_thread(self._discover)
        self.pid = info.pid
        self.token = info.token
        kinds = (self.prefer,) if self.prefer is not None else _PREFERENCE
        kind = next((k for k in kinds if k in info.addresses), None)
        if kind is None:
            raise ConnectError(
                f"the daemon of {workspace} (pid {info.pid}) does not listen on "
                f"{self.prefer or 'a socket'} "
                f"(it listens on: {', '.join(sorted(info.addresses)) or 'nothing'})"
            )
        address = info.addresses[kind]
        connector: Connector
        if kind == "unix":
            connector = UnixConnector(address)
        elif kind == "tcp":
            host, port = parse_tcp_address(address)
            connector = TcpConnector(host, port, token=info.token)
        else:
            connector = WebSocketConnector(address, token=info.token)
        self.kind = connector.kind
        return await connector.open()

    def _discover(self) -> tuple[str, DiscoveryInfo]:
        from symphony.clients._attach import StartError, ensure_daemon, find_daemon

        workspace = os.path.realpath(self.workspace)
        if self.start:
            try:
                return workspace, ensure_daemon(workspace, timeout=self.start_timeout)
            except (StartError, OSError) as exc:
                raise ConnectError(str(exc)) from exc
        info = find_daemon(workspace)
        if info is None:
            raise DaemonNotFound(workspace)
        return workspace, info

    def describe(self) -> str:
        return f"the daemon of {self.workspace}" + (f" ({self.prefer})" if self.prefer else "")
