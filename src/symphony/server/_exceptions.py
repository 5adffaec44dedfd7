"""Errors raised by the server room.

Hierarchy::

    ServerError                    anything symphony.server raises on purpose
    ├── ConfigError                options that cannot work: nothing to serve, a malformed address,
    │                              a non-loopback address without allow_remote
    ├── AlreadyRunning             a live daemon already serves this workspace (discovery file)
    ├── RouteError (also TypeError) a handler registered with the wrong shape; names the method
    │                              and the handler
    └── TransportClosed            the peer is gone; the connection ends quietly

Errors of the layer below are mapped at this room's edge: a handler's ``RpcError`` becomes an
error response, any other exception a -32603 with a log id, a ``RemoteProtocolError`` a -32700
followed by closing that connection, an ``OSError`` on a socket ``TransportClosed``. None of them
ever ends another connection or the daemon.
"""

from __future__ import annotations

__all__ = ["AlreadyRunning", "ConfigError", "RouteError", "ServerError", "TransportClosed"]


class ServerError(Exception):
    """Base class of every error the server room raises on purpose."""


class ConfigError(ServerError):
    """The daemon's options cannot work as given; the message says which and why."""


class AlreadyRunning(ServerError):
    """A live daemon already serves this workspace."""

    def __init__(self, pid: int, discovery_file: str) -> None:
        super().__init__(
            f"a Symphony daemon (pid {pid}) already serves this workspace "
            f"(see {discovery_file}); stop it with `symphony stop` or attach to it"
        )
        self.pid = pid
        self.discovery_file = discovery_file


class RouteError(ServerError, TypeError):
    """A route was declared with a handler of the wrong shape, or twice."""


class TransportClosed(ServerError):
    """The transport is closed (by the peer or by us); nothing more can be sent."""
