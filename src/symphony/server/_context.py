"""What a handler gets besides its params: who is asking, and the daemon they share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from symphony.protocol import Id, NotificationSpec

if TYPE_CHECKING:
    from symphony.server._connection import Connection
    from symphony.server._daemon import Daemon
    from symphony.server._session import Session

__all__ = ["RequestContext"]


@dataclass(slots=True, eq=False)
class RequestContext:
    """The context of one call: the connection it came on, its method and id.

    ``request_id`` is ``None`` for a notification. ``session`` is the caller's session,
    ``daemon`` what every client shares (event bus, services, connections).
    """

    connection: Connection
    method: str
    request_id: Id | None

    @property
    def session(self) -> Session:
        return self.connection.session

    @property
    def daemon(self) -> Daemon:
        return self.connection.daemon

    def notify(self, spec: NotificationSpec[Any], params: BaseModel) -> None:
        """Send a notification to the caller (reliably: it is never dropped)."""
        self.connection.notify(spec, params)
