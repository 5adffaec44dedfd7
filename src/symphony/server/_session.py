"""A client's session: everything the daemon knows about one connection's client.

Each connection has exactly one session, created when the connection opens and dropped when it
closes. Sessions share nothing with each other: not the lifecycle state, not the position
encoding, not the subscriptions. What clients share (buffers, the event bus) lives in the daemon.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from symphony.protocol import (
    DEFAULT_POSITION_ENCODING,
    Codec,
    Lifecycle,
    PositionEncoding,
)

__all__ = ["Session", "TraceLevel"]

TraceLevel = Literal["off", "messages", "verbose"]


@dataclass(slots=True, eq=False)
class Session:
    """One client's state.

    ``client_id`` is unique within the daemon's lifetime (``c1``, ``c2``...) and is what
    ``origin.clientId`` of a change names. ``authenticated`` is True from the start on a trusted
    transport (stdio, Unix socket) and becomes True on TCP/WebSocket once the client presented the
    token. ``codec`` is how the daemon encodes what it sends unprompted (notifications, events):
    the codec the client used for ``initialize``.

    ``buffer_subscriptions`` is the set of buffer URIs this client receives
    ``symphony/buffer/didChange`` for; the buffer handlers own it.
    """

    client_id: str
    transport: str
    authenticated: bool
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    position_encoding: PositionEncoding = DEFAULT_POSITION_ENCODING
    client_name: str | None = None
    client_version: str | None = None
    trace: TraceLevel = "off"
    codec: Codec = Codec.JSON
    buffer_subscriptions: set[str] = field(default_factory=set)
    topics: list[str] = field(default_factory=list)

    @property
    def state(self) -> str:
        return self.lifecycle.state.value
