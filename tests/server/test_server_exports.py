"""The public surface of the server and handler rooms, locked (trio's test_exports)."""

from __future__ import annotations

import subprocess
import sys

import symphony.handlers
import symphony.server

SERVER = {
    "AlreadyRunning", "ConfigError", "Connection", "Daemon", "DiscoveryInfo", "Event", "EventBus",
    "EventQueue", "EventsDropped", "Handler", "Limits", "Listener", "MemoryPeer",
    "MemoryTransport", "RequestContext", "Route", "RouteError", "RouteTable", "ServeOptions",
    "ServerError", "Services", "Session", "SharedNotification", "StreamTransport",
    "Subscription", "TraceLevel", "Transport", "TransportClosed", "TransportKind",
    "WebSocketTransport", "configure_logging", "default_unix_path", "discovery_path",
    "get_logger", "is_loopback_host", "open_stdio", "parse_address", "pid_alive",
    "read_discovery", "remove_discovery", "route", "runtime_dir", "serve", "to_thread",
    "topic_matches", "validate_pattern", "validate_topic", "workspace_key", "write_discovery",
}  # fmt: skip


def test_server_exports_are_locked_and_resolve() -> None:
    assert set(symphony.server.__all__) == SERVER
    for name in SERVER:
        assert getattr(symphony.server, name) is not None, name


def test_handlers_export_only_the_table() -> None:
    assert symphony.handlers.__all__ == ["ROUTES"]


def test_discovery_helpers_load_without_the_daemon() -> None:
    """`symphony attach` reads the discovery file; that must not load asyncio or pydantic."""
    code = (
        "import sys\n"
        "from symphony.server import read_discovery, runtime_dir, workspace_key\n"
        "print(sorted(m for m in ('asyncio', 'pydantic', 'websockets', 'structlog')"
        " if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"
