"""Listening sockets: TCP, Unix, WebSocket. Each accepted client becomes a ``Transport`` that the
daemon serves as a connection of its own (nothing is shared between connections but the daemon).

Security basics (the issue's section 8): a TCP or WebSocket address that is not loopback needs
``allow_remote``; the Unix socket is created 0600 (the umask is tightened around ``bind``, so it
is never reachable by others, not even for a moment); TCP and WebSocket clients must present the
daemon's token. A WebSocket client may present it in the handshake (``?token=``,
``Authorization: Bearer``, or a ``symphony.token.<token>`` subprotocol for browsers, which cannot
set headers), which makes the connection authenticated before ``initialize``; a wrong token there
is refused with 401. The handshake's ``Origin`` is checked: no Origin (not a browser) and loopback
origins pass, others must be listed in ``allowed_origins`` (a web page on another site must not
drive the daemon).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hmac
import ipaddress
import os
import socket
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from symphony.server._exceptions import ConfigError
from symphony.server._transports import READ_SIZE, StreamTransport, Transport, WebSocketTransport

if TYPE_CHECKING:
    from websockets.asyncio.server import ServerConnection
    from websockets.http11 import Request
    from websockets.http11 import Response as HttpResponse

__all__ = [
    "Listener",
    "is_loopback_host",
    "parse_address",
    "start_tcp",
    "start_unix",
    "start_ws",
]

#: The WebSocket subprotocol we speak; a client offering it gets it back (browsers need that).
WS_SUBPROTOCOL = "symphony"
_WS_TOKEN_PREFIX = "symphony.token."

Spawn = Callable[[Transport], "asyncio.Task[None]"]


@dataclass(slots=True)
class Listener:
    """One listening socket. ``address`` is what clients connect to (as the discovery file says)."""

    kind: str
    address: str
    server: Any
    path: Path | None = None

    def close(self) -> None:
        """Stop accepting. Open connections are left to the daemon, which closes each one
        gracefully (running requests first); websockets would otherwise drop them at once."""
        if self.kind == "ws":
            self.server.close(close_connections=False)
        else:
            self.server.close()

    async def wait_closed(self) -> None:
        await self.server.wait_closed()
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


def parse_address(text: str, *, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT``, ``PORT`` or ``[IPV6]:PORT`` -> (host, port). Port 0 = any free."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = "", text
    host = host.strip("[]") or default_host
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"invalid address {text!r}: expected HOST:PORT") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"invalid address {text!r}: port {port} is out of range")
    return host, port


def is_loopback_host(host: str) -> bool:
    """Whether every address ``host`` resolves to is a loopback address."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(
        ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos
    )


def _check_host(kind: str, host: str, allow_remote: bool) -> None:
    if not allow_remote and not is_loopback_host(host):
        raise ConfigError(
            f"--{kind} {host}: not a loopback address; anyone who can reach it could try to "
            "drive this daemon. Pass --allow-remote if you mean it (clients still need the token)."
        )


def _format_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


async def start_tcp(spawn: Spawn, host: str, port: int, *, allow_remote: bool) -> Listener:
    """Listen on TCP; every client is untrusted until it presents the token."""
    _check_host("tcp", host, allow_remote)

    def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        name = f"{_format_host(peer[0])}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        spawn(StreamTransport(reader, writer, kind="tcp", trusted=False, peer=name))

    server = await asyncio.start_server(accept, host, port, limit=READ_SIZE)
    bound = server.sockets[0].getsockname()
    return Listener("tcp", f"{_format_host(bound[0])}:{bound[1]}", server)


async def start_unix(spawn: Spawn, path: Path) -> Listener:
    """Listen on a Unix socket created 0600: the OS lets only our user (and root) connect."""
    _clear_stale_socket(path)

    def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        spawn(StreamTransport(reader, writer, kind="unix", trusted=True, peer=str(path)))

    # Tighten the umask around bind so the socket is 0600 from the moment it exists.
    old_umask = os.umask(0o177)
    try:
        server = await asyncio.start_unix_server(accept, path, limit=READ_SIZE)
    finally:
        os.umask(old_umask)
    os.chmod(path, 0o600)
    return Listener("unix", str(path), server, path=path)


def _clear_stale_socket(path: Path) -> None:
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise ConfigError(f"--unix {path}: exists and is not a socket; refusing to replace it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError as exc:
        if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
            path.unlink(missing_ok=True)  # a socket left by a daemon that died
            return
        raise ConfigError(f"--unix {path}: cannot use it: {exc}") from exc
    finally:
        probe.close()
    raise ConfigError(f"--unix {path}: another process is listening on it")


def is_allowed_origin(origin: str | None, allowed: Sequence[str]) -> bool:
    """No Origin (not a browser), a loopback origin, or one listed in ``allowed``."""
    if origin is None:
        return True
    if origin in allowed:
        return True
    host = urlsplit(origin).hostname
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def handshake_token(request: Request) -> str | None:
    """The token a WebSocket client presented in its handshake, if any."""
    query = parse_qs(urlsplit(request.path).query)
    if query.get("token"):
        return query["token"][0]
    authorization = request.headers.get("Authorization")
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    for value in request.headers.get_all("Sec-WebSocket-Protocol"):
        for proto in value.split(","):
            proto = proto.strip()
            if proto.startswith(_WS_TOKEN_PREFIX):
                return proto[len(_WS_TOKEN_PREFIX) :]
    return None


async def start_ws(
    spawn: Spawn,
    host: str,
    port: int,
    *,
    token: str,
    allow_remote: bool,
    allowed_origins: Sequence[str],
    max_message_size: int,
) -> Listener:
    """Listen for WebSocket clients (``websockets``' asyncio server): one message per frame."""
    _check_host("ws", host, allow_remote)
    from websockets.asyncio.server import serve

    def process_request(connection: ServerConnection, request: Request) -> HttpResponse | None:
        origin = request.headers.get("Origin")
        if not is_allowed_origin(origin, allowed_origins):
            return connection.respond(
                HTTPStatus.FORBIDDEN, f"origin {origin} is not allowed (see --allow-origin)\n"
            )
        presented = handshake_token(request)
        if presented is not None and not hmac.compare_digest(presented.encode(), token.encode()):
            return connection.respond(HTTPStatus.UNAUTHORIZED, "wrong token\n")
        return None

    def select_subprotocol(connection: ServerConnection, offered: Sequence[str]) -> Any:
        return WS_SUBPROTOCOL if WS_SUBPROTOCOL in offered else None

    async def handler(connection: ServerConnection) -> None:
        # process_request refused any wrong token, so a token here is the right one.
        request = connection.request
        trusted = request is not None and handshake_token(request) is not None
        task = spawn(WebSocketTransport(connection, trusted=trusted))
        # websockets closes the socket when this handler returns, so wait for the connection;
        # the shield keeps a cancelled handler from cancelling the connection's own task.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(task)

    server = await serve(
        handler,
        host,
        port,
        process_request=process_request,
        select_subprotocol=select_subprotocol,
        max_size=max_message_size,
        compression=None,
    )
    bound = next(iter(server.sockets)).getsockname()
    return Listener("ws", f"ws://{_format_host(bound[0])}:{bound[1]}/", server)
