"""Thin clients of the daemon: the Python client library and the `symphony` command line.

- ``SymphonyClient``: asyncio client over stdio (spawning a daemon), TCP, Unix socket, WebSocket
  or the workspace's discovery file; typed helpers for the buffer API; reconnect with backoff.
- ``connect()`` / ``SyncClient``: the same for scripts, synchronously.
- Errors: ``ClientError`` > ``ConnectError`` > ``DaemonNotFound``; ``ConnectionLost``,
  ``RequestTimeout``. Errors the daemon answers with are the protocol's ``RpcError`` classes.

Names load on first use: ``symphony attach`` lives in this package and must not pay for the
client's imports (asyncio, pydantic) on its way to a warm daemon.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from symphony.clients._client import Backoff, NotificationStream, SymphonyClient
    from symphony.clients._sync import SyncClient, SyncNotifications, connect
    from symphony.clients._transport import (
        Channel,
        ClientError,
        ConnectError,
        ConnectionLost,
        Connector,
        DaemonNotFound,
        RequestTimeout,
        StdioConnector,
        TcpConnector,
        UnixConnector,
        WebSocketConnector,
        WorkspaceConnector,
    )

__all__ = [
    "Backoff",
    "Channel",
    "ClientError",
    "ConnectError",
    "ConnectionLost",
    "Connector",
    "DaemonNotFound",
    "NotificationStream",
    "RequestTimeout",
    "StdioConnector",
    "SymphonyClient",
    "SyncClient",
    "SyncNotifications",
    "TcpConnector",
    "UnixConnector",
    "WebSocketConnector",
    "WorkspaceConnector",
    "connect",
]

_WHERE = {
    "Backoff": "_client",
    "NotificationStream": "_client",
    "SymphonyClient": "_client",
    "SyncClient": "_sync",
    "SyncNotifications": "_sync",
    "connect": "_sync",
    **{
        name: "_transport"
        for name in (
            "Channel",
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
        )
    },
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'symphony.clients' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"symphony.clients.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
