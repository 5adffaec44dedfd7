"""Transports: how bytes (or WebSocket messages) get to and from one client.

A transport is deliberately small (httpcore's lesson: a one-method interface makes an in-memory
fake honest): ``receive`` one chunk or message, ``send`` one, report how much is waiting to be
written, close. The ``Connection`` above it does everything else, the same way for every kind.

- ``framed`` transports (stdio, TCP, Unix socket, memory) carry a byte stream that needs LSP's
  ``Content-Length`` framing; ``receive`` returns whatever bytes arrived.
- unframed transports (WebSocket) carry one message per frame; ``receive`` returns one message,
  ``str`` for a text frame (JSON) and ``bytes`` for a binary frame (msgpack).
- ``trusted`` transports were authenticated by the operating system (the spawning editor's pipes,
  a 0600 Unix socket, an in-process pipe); the others need the daemon's token.

Writes never block the event loop: ``send`` hands the bytes to the OS (or the peer's buffer) and
awaits only when the transport's own buffer is above its high-water mark. The ``Connection``
bounds what it queues above that (see ``Connection`` for the slow-reader policy).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import os
import stat
from collections import deque
from typing import TYPE_CHECKING, Any, Final, Literal

from symphony.server._exceptions import ConfigError, TransportClosed

if TYPE_CHECKING:
    from websockets.asyncio.server import ServerConnection

__all__ = [
    "MemoryPeer",
    "MemoryTransport",
    "StreamTransport",
    "Transport",
    "TransportKind",
    "WebSocketTransport",
    "open_stdio",
]

TransportKind = Literal["stdio", "tcp", "unix", "ws", "memory"]

#: Bytes asked for per read: large enough to take everything a pipe or socket has buffered in one
#: call (a 50 MB message arrives in a few hundred reads, not tens of thousands).
READ_SIZE: Final = 1 << 20
#: The OS-level transport pauses our writer above this many buffered bytes.
WRITE_HIGH_WATER: Final = 1 << 20


class Transport(abc.ABC):
    """One client's pipe. Subclasses set ``kind``, ``framed``, ``trusted`` and ``peer``."""

    kind: TransportKind
    framed: bool
    trusted: bool
    peer: str

    @abc.abstractmethod
    async def receive(self) -> bytes | str | None:
        """The next chunk (framed) or message (unframed); ``None`` once the peer has closed."""

    @abc.abstractmethod
    async def send(self, data: bytes, *, text: bool = True) -> None:
        """Write ``data`` (a frame's worth of bytes, or one message: ``text`` picks a WebSocket
        text or binary frame). Raises ``TransportClosed`` if the peer is gone."""

    def write_nowait(self, data: bytes, *, text: bool = True) -> bool:
        """Write ``data`` right now if that cannot block (nothing buffered, not closing).

        Returns False when the caller must go through ``send`` instead. The connection uses it
        to answer without a hop through its writer task when the pipe is idle.
        """
        return False

    @abc.abstractmethod
    def write_buffer_size(self) -> int:
        """Bytes handed to ``send`` that the peer has not taken yet (as far as we can tell)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Start closing; idempotent. Data already sent is flushed if the peer still reads."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Close now, dropping unsent data (a slow reader that went over its limit)."""

    @abc.abstractmethod
    async def wait_closed(self) -> None:
        """Wait until the transport is closed."""


class StreamTransport(Transport):
    """A byte stream over asyncio streams: TCP, a Unix socket, or the stdio pipes."""

    framed = True

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        kind: TransportKind,
        trusted: bool,
        peer: str,
    ) -> None:
        self.kind = kind
        self.trusted = trusted
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
        if self._writer.is_closing():
            raise TransportClosed(f"{self.kind} transport to {self.peer} is closed")
        try:
            self._writer.write(data)
            await self._writer.drain()
        except (ConnectionError, OSError, RuntimeError) as exc:
            # RuntimeError: asyncio refuses to write to a transport that is closing.
            raise TransportClosed(f"{self.kind} peer {self.peer} went away: {exc}") from exc

    def write_nowait(self, data: bytes, *, text: bool = True) -> bool:
        transport = self._writer.transport
        if transport.is_closing() or transport.get_write_buffer_size():
            return False
        transport.write(data)
        return True

    def write_buffer_size(self) -> int:
        return self._writer.transport.get_write_buffer_size()

    def close(self) -> None:
        if not self._writer.is_closing():
            self._writer.close()

    def abort(self) -> None:
        self._writer.transport.abort()

    async def wait_closed(self) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()


async def open_stdio() -> StreamTransport:
    """The transport for an editor that spawned us: LSP on our stdin and stdout.

    Both pipes go through asyncio (``connect_read_pipe``/``connect_write_pipe``): no thread per
    read, unlike pygls's ``start_io``. Before that we take the protocol's file descriptors for
    ourselves and point fd 0 at /dev/null and fd 1 at stderr, so a stray ``print`` or a C
    library's write can never corrupt the protocol stream.
    """
    loop = asyncio.get_running_loop()
    for fd, name in ((0, "stdin"), (1, "stdout")):
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)):
            raise ConfigError(
                f"--stdio needs {name} to be a pipe, a socket or a terminal (as an editor "
                f"spawning the daemon provides), not a regular file"
            )
    in_fd = os.dup(0)
    out_fd = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    in_pipe = os.fdopen(in_fd, "rb", buffering=0)
    out_pipe = os.fdopen(out_fd, "wb", buffering=0)
    reader = asyncio.StreamReader(limit=READ_SIZE, loop=loop)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader, loop=loop), in_pipe)
    write_transport, write_protocol = await loop.connect_write_pipe(
        lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader(loop=loop), loop=loop), out_pipe
    )
    writer = asyncio.StreamWriter(write_transport, write_protocol, None, loop)
    return StreamTransport(reader, writer, kind="stdio", trusted=True, peer="stdio")


class WebSocketTransport(Transport):
    """One WebSocket connection (``websockets``' asyncio server): one message per frame."""

    kind: TransportKind = "ws"
    framed = False

    def __init__(self, connection: ServerConnection, *, trusted: bool) -> None:
        self.trusted = trusted
        address: Any = connection.remote_address
        self.peer = f"{address[0]}:{address[1]}" if isinstance(address, tuple) else str(address)
        self._ws = connection
        self._closing = False

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
            raise TransportClosed(f"WebSocket peer {self.peer} went away: {exc}") from exc

    def write_buffer_size(self) -> int:
        return self._ws.transport.get_write_buffer_size()

    def close(self) -> None:
        # A WebSocket closes with a handshake (a close frame each way), which needs awaiting:
        # wait_closed does it, and the connection always awaits wait_closed right after this.
        self._closing = True

    def abort(self) -> None:
        self._ws.transport.abort()

    async def wait_closed(self) -> None:
        await self._ws.close(code=1000, reason="closed by the daemon")


class _Pipe:
    """One direction of an in-memory pipe, with a high-water mark like a socket buffer's.

    Chunks are ``bytes``, or ``str`` for the text messages of an unframed pipe (a WebSocket's
    text frames).

    Invariant: ``size`` is the total length of ``chunks``.
    """

    def __init__(self, high_water: int) -> None:
        self.chunks: deque[bytes | str] = deque()
        self.size = 0
        self.high_water = high_water
        self.closed = False
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()

    def write(self, data: bytes | str) -> None:
        if self.closed:
            raise TransportClosed("in-memory pipe is closed")
        if data:
            self.chunks.append(data)
            self.size += len(data)
            self._readable.set()
            if self.size > self.high_water:
                self._writable.clear()

    async def wait_writable(self) -> None:
        await self._writable.wait()

    async def read(self, *, one: bool = False) -> bytes | str | None:
        """All buffered bytes (or, with ``one``, the oldest message); ``None`` once closed."""
        while not self.chunks:
            if self.closed:
                return None
            self._readable.clear()
            await self._readable.wait()
        if one:
            data = self.chunks.popleft()
            self.size -= len(data)
        else:
            data = b"".join(c if isinstance(c, bytes) else c.encode() for c in self.chunks)
            self.chunks.clear()
            self.size = 0
        if self.size <= self.high_water:
            self._writable.set()
        return data

    def close(self) -> None:
        self.closed = True
        self._readable.set()
        self._writable.set()


class MemoryTransport(Transport):
    """An in-process transport for tests: a byte stream (or, unframed, a message pipe) whose
    other end is a ``MemoryPeer``. Its buffer fills like a socket's when the peer stops reading,
    so slow-reader behaviour is testable without sockets."""

    kind: TransportKind = "memory"

    def __init__(self, *, framed: bool = True, trusted: bool = True, high_water: int = 1 << 16):
        self.framed = framed
        self.trusted = trusted
        self.peer = "memory"
        self._to_server = _Pipe(high_water=1 << 62)
        self._to_client = _Pipe(high_water=high_water)
        self._closed = asyncio.Event()
        self.peer_end = MemoryPeer(self._to_server, self._to_client, framed=framed)

    async def receive(self) -> bytes | str | None:
        return await self._to_server.read(one=not self.framed)

    async def send(self, data: bytes, *, text: bool = True) -> None:
        self._to_client.write(data.decode() if text and not self.framed else data)
        await self._to_client.wait_writable()
        if self._to_client.closed:
            raise TransportClosed("in-memory peer went away")

    def write_nowait(self, data: bytes, *, text: bool = True) -> bool:
        pipe = self._to_client
        if pipe.closed or pipe.size:
            return False
        pipe.write(data.decode() if text and not self.framed else data)
        return True

    def write_buffer_size(self) -> int:
        return self._to_client.size

    def close(self) -> None:
        self._to_client.close()
        self._to_server.close()
        self._closed.set()

    def abort(self) -> None:
        self.close()

    async def wait_closed(self) -> None:
        await self._closed.wait()


class MemoryPeer:
    """The client's end of a ``MemoryTransport``."""

    def __init__(self, outgoing: _Pipe, incoming: _Pipe, *, framed: bool) -> None:
        self._out = outgoing
        self._in = incoming
        self._framed = framed

    def send(self, data: bytes | str) -> None:
        """Send bytes (framed) or one message (unframed: ``str`` is a text frame) to the server."""
        self._out.write(data)

    async def receive(self) -> bytes | str | None:
        """Framed: every byte the server sent since the last call. Unframed: one message.
        ``None`` once the server closed and everything was read."""
        return await self._in.read(one=not self._framed)

    @property
    def unread(self) -> int:
        """Bytes the server sent that this end has not read."""
        return self._in.size

    def close(self) -> None:
        """Close this end, as a client process that exits would."""
        self._out.close()
        self._in.close()
