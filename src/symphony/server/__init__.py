"""The daemon's I/O shell (httpcore's role around the sans-IO ``symphony.protocol``).

- ``serve(options)``: the whole ``symphony serve`` program; ``Daemon``: listeners, connections,
  the event bus, shared ``Services``, graceful shutdown, the discovery file.
- ``Connection``: one client (its ``Session``, its ``TaskGroup``, its bounded outbox).
- Transports: stdio pipes, TCP, Unix socket, WebSocket, and ``MemoryTransport`` for tests.
- ``RouteTable``/``route``: the dispatch table's types (the table itself is
  ``symphony.handlers.ROUTES``); ``RequestContext`` is what a handler gets; ``to_thread`` is how
  it runs blocking work.
- ``EventBus``: in-process publish/subscribe with wildcard topics and bounded queues.
- Discovery helpers (``read_discovery``, ``runtime_dir``...), used by ``symphony attach``.

Names are imported on first access, so ``from symphony.server import read_discovery`` (what
``attach`` does) does not load asyncio, pydantic or websockets.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from symphony.server._connection import (
        Connection,
        Limits,
    )
    from symphony.server._context import (
        RequestContext,
    )
    from symphony.server._daemon import (
        Daemon,
        ServeOptions,
        serve,
    )
    from symphony.server._discovery import (
        DiscoveryInfo,
        default_unix_path,
        discovery_path,
        pid_alive,
        read_discovery,
        remove_discovery,
        runtime_dir,
        workspace_key,
        write_discovery,
    )
    from symphony.server._events import (
        Event,
        EventBus,
        EventQueue,
        EventsDropped,
        SharedNotification,
        Subscription,
        topic_matches,
        validate_pattern,
        validate_topic,
    )
    from symphony.server._exceptions import (
        AlreadyRunning,
        ConfigError,
        RouteError,
        ServerError,
        TransportClosed,
    )
    from symphony.server._listeners import (
        Listener,
        is_loopback_host,
        parse_address,
    )
    from symphony.server._logging import (
        configure_logging,
        get_logger,
    )
    from symphony.server._routes import (
        Handler,
        Route,
        RouteTable,
        route,
    )
    from symphony.server._services import (
        Services,
    )
    from symphony.server._session import (
        Session,
        TraceLevel,
    )
    from symphony.server._threads import (
        to_thread,
    )
    from symphony.server._transports import (
        MemoryPeer,
        MemoryTransport,
        StreamTransport,
        Transport,
        TransportKind,
        WebSocketTransport,
        open_stdio,
    )

_WHERE: dict[str, str] = {
    "Connection": "_connection",
    "Limits": "_connection",
    "RequestContext": "_context",
    "Daemon": "_daemon",
    "ServeOptions": "_daemon",
    "serve": "_daemon",
    "DiscoveryInfo": "_discovery",
    "default_unix_path": "_discovery",
    "discovery_path": "_discovery",
    "pid_alive": "_discovery",
    "read_discovery": "_discovery",
    "remove_discovery": "_discovery",
    "runtime_dir": "_discovery",
    "workspace_key": "_discovery",
    "write_discovery": "_discovery",
    "Event": "_events",
    "EventBus": "_events",
    "EventQueue": "_events",
    "EventsDropped": "_events",
    "SharedNotification": "_events",
    "Subscription": "_events",
    "topic_matches": "_events",
    "validate_pattern": "_events",
    "validate_topic": "_events",
    "AlreadyRunning": "_exceptions",
    "ConfigError": "_exceptions",
    "RouteError": "_exceptions",
    "ServerError": "_exceptions",
    "TransportClosed": "_exceptions",
    "Listener": "_listeners",
    "is_loopback_host": "_listeners",
    "parse_address": "_listeners",
    "configure_logging": "_logging",
    "get_logger": "_logging",
    "Handler": "_routes",
    "Route": "_routes",
    "RouteTable": "_routes",
    "route": "_routes",
    "Services": "_services",
    "Session": "_session",
    "TraceLevel": "_session",
    "to_thread": "_threads",
    "MemoryPeer": "_transports",
    "MemoryTransport": "_transports",
    "StreamTransport": "_transports",
    "Transport": "_transports",
    "TransportKind": "_transports",
    "WebSocketTransport": "_transports",
    "open_stdio": "_transports",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'symphony.server' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"symphony.server.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "AlreadyRunning",
    "ConfigError",
    "Connection",
    "Daemon",
    "DiscoveryInfo",
    "Event",
    "EventBus",
    "EventQueue",
    "EventsDropped",
    "Handler",
    "Limits",
    "Listener",
    "MemoryPeer",
    "MemoryTransport",
    "RequestContext",
    "Route",
    "RouteError",
    "RouteTable",
    "ServeOptions",
    "ServerError",
    "Services",
    "Session",
    "SharedNotification",
    "StreamTransport",
    "Subscription",
    "TraceLevel",
    "Transport",
    "TransportClosed",
    "TransportKind",
    "WebSocketTransport",
    "configure_logging",
    "default_unix_path",
    "discovery_path",
    "get_logger",
    "is_loopback_host",
    "open_stdio",
    "parse_address",
    "pid_alive",
    "read_discovery",
    "remove_discovery",
    "route",
    "runtime_dir",
    "serve",
    "to_thread",
    "topic_matches",
    "validate_pattern",
    "validate_topic",
    "workspace_key",
    "write_discovery",
]
