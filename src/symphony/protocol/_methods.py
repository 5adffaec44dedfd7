"""The catalogue of methods: name, kind, direction, params model, result model, one line of doc.

A ``RequestSpec[P, R]`` is typed by its params and result, so code that takes a spec can be
checked by mypy end to end: the server's route table pairs each spec with a handler of type
``(RequestContext, P) -> Awaitable[R]``, and a client's ``request(spec, params)`` returns ``R``.
``docs/protocol.schema.json`` is generated from this catalogue (``python -m
symphony.protocol.schema``).

Direction ``client`` means the client sends it to the daemon; ``server`` the other way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Generic, Literal, TypeVar

from pydantic import BaseModel

from symphony.protocol import _models as m

__all__ = [
    "BUFFER_CLOSE",
    "BUFFER_DID_CHANGE",
    "BUFFER_DID_CHANGE_ON_DISK",
    "BUFFER_EDIT",
    "BUFFER_GET_TEXT",
    "BUFFER_LIST",
    "BUFFER_OPEN",
    "BUFFER_REDO",
    "BUFFER_SAVE",
    "BUFFER_SUBSCRIBE",
    "BUFFER_UNDO",
    "BUFFER_UNSUBSCRIBE",
    "CANCEL_REQUEST",
    "DID_CHANGE",
    "DID_CLOSE",
    "DID_OPEN",
    "DID_SAVE",
    "EVENT",
    "EVENTS_DROPPED",
    "EXIT",
    "INFO",
    "INITIALIZE",
    "INITIALIZED",
    "LOG_TRACE",
    "METHODS",
    "PING",
    "SET_TRACE",
    "SHUTDOWN",
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "WORKSPACE_APPLY_EDIT",
    "MethodSpec",
    "NotificationSpec",
    "RequestSpec",
]

P = TypeVar("P", bound=BaseModel)
R = TypeVar("R", bound=BaseModel | None)
Direction = Literal["client", "server"]


@dataclass(frozen=True, slots=True)
class RequestSpec(Generic[P, R]):
    """A request: answered with a result of type ``result`` (``NoneType`` for ``null``)."""

    method: str
    params: type[P]
    result: type[R]
    doc: str
    direction: Direction = "client"

    @property
    def kind(self) -> Literal["request"]:
        return "request"


@dataclass(frozen=True, slots=True)
class NotificationSpec(Generic[P]):
    """A notification: never answered."""

    method: str
    params: type[P]
    doc: str
    direction: Direction = "client"

    @property
    def kind(self) -> Literal["notification"]:
        return "notification"


MethodSpec = RequestSpec[Any, Any] | NotificationSpec[Any]
_NULL: Final = type(None)

# -- lifecycle and LSP base protocol -------------------------------------------------------------
INITIALIZE: Final = RequestSpec(
    "initialize",
    m.InitializeParams,
    m.InitializeResult,
    "Start the session: negotiates the position encoding, checks the token (TCP, WebSocket).",
)
INITIALIZED: Final = NotificationSpec(
    "initialized", m.InitializedParams, "The client has the initialize result."
)
SHUTDOWN: Final = RequestSpec(
    "shutdown", m.ShutdownParams, _NULL, "Stop taking requests on this connection; exit follows."
)
EXIT: Final = NotificationSpec(
    "exit",
    m.ExitParams,
    "Close this connection (an editor-spawned --stdio daemon exits: 0 after shutdown, else 1).",
)
SET_TRACE: Final = NotificationSpec(
    "$/setTrace", m.SetTraceParams, "off | messages | verbose: $/logTrace for each call handled."
)
LOG_TRACE: Final = NotificationSpec(
    "$/logTrace", m.LogTraceParams, "One trace line, when tracing is on.", direction="server"
)
CANCEL_REQUEST: Final = NotificationSpec(
    "$/cancelRequest", m.CancelParams, "Cancel a request in flight; it answers -32800."
)

# -- text document synchronisation (standard LSP; routed once their handlers exist) ------------
DID_OPEN: Final = NotificationSpec(
    "textDocument/didOpen",
    m.DidOpenTextDocumentParams,
    "The client opened a document: the buffer with this URI now holds its text.",
)
DID_CHANGE: Final = NotificationSpec(
    "textDocument/didChange",
    m.DidChangeTextDocumentParams,
    "The client changed an open document (incremental ranges, or the full text).",
)
DID_CLOSE: Final = NotificationSpec(
    "textDocument/didClose", m.DidCloseTextDocumentParams, "The client closed a document."
)
DID_SAVE: Final = NotificationSpec(
    "textDocument/didSave", m.DidSaveTextDocumentParams, "The client saved a document."
)

WORKSPACE_APPLY_EDIT: Final = RequestSpec(
    "workspace/applyEdit",
    m.ApplyWorkspaceEditParams,
    m.ApplyWorkspaceEditResult,
    "Changes other clients made to a document this editor has open (if it can apply edits).",
    direction="server",
)

# -- symphony/buffer/* ---------------------------------------------------------------------------
BUFFER_OPEN: Final = RequestSpec(
    "symphony/buffer/open",
    m.BufferOpenParams,
    m.BufferOpenResult,
    "Open a file, a URI, or untitled text; returns the buffer's state.",
)
BUFFER_GET_TEXT: Final = RequestSpec(
    "symphony/buffer/getText",
    m.BufferGetTextParams,
    m.BufferGetTextResult,
    "The buffer's text, or a range of it, and the revision it was read at.",
)
BUFFER_EDIT: Final = RequestSpec(
    "symphony/buffer/edit",
    m.BufferEditParams,
    m.RevisionResult,
    "Apply edits made against baseRevision, atomically; rebased over later changes.",
)
BUFFER_UNDO: Final = RequestSpec(
    "symphony/buffer/undo", m.BufferUndoParams, m.RevisionResult, "Undo the last change group."
)
BUFFER_REDO: Final = RequestSpec(
    "symphony/buffer/redo", m.BufferRedoParams, m.RevisionResult, "Redo the last undone group."
)
BUFFER_SAVE: Final = RequestSpec(
    "symphony/buffer/save",
    m.BufferSaveParams,
    m.BufferSaveResult,
    "Write the buffer to its file (or path), atomically.",
)
BUFFER_CLOSE: Final = RequestSpec(
    "symphony/buffer/close", m.BufferCloseParams, _NULL, "Close the buffer."
)
BUFFER_LIST: Final = RequestSpec(
    "symphony/buffer/list", m.BufferListParams, m.BufferListResult, "Every open buffer."
)
BUFFER_SUBSCRIBE: Final = RequestSpec(
    "symphony/buffer/subscribe",
    m.BufferSubscribeParams,
    _NULL,
    "Receive symphony/buffer/didChange for this buffer.",
)
BUFFER_UNSUBSCRIBE: Final = RequestSpec(
    "symphony/buffer/unsubscribe",
    m.BufferUnsubscribeParams,
    _NULL,
    "Stop receiving symphony/buffer/didChange for this buffer.",
)
BUFFER_DID_CHANGE: Final = NotificationSpec(
    "symphony/buffer/didChange",
    m.BufferDidChangeParams,
    "A new revision of a subscribed buffer: its changes, in this connection's encoding.",
    direction="server",
)
BUFFER_DID_CHANGE_ON_DISK: Final = NotificationSpec(
    "symphony/buffer/didChangeOnDisk",
    m.BufferDidChangeOnDiskParams,
    "An open buffer's file changed on disk: reloaded, in conflict, or deleted.",
    direction="server",
)

# -- events and system ------------------------------------------------------------------------------
SUBSCRIBE: Final = RequestSpec(
    "symphony/subscribe",
    m.SubscribeParams,
    m.SubscribeResult,
    "Receive symphony/event for topics matching these patterns (* one segment, ** any).",
)
UNSUBSCRIBE: Final = RequestSpec(
    "symphony/unsubscribe",
    m.UnsubscribeParams,
    m.SubscribeResult,
    "Remove topic patterns given to symphony/subscribe.",
)
EVENT: Final = NotificationSpec(
    "symphony/event", m.EventParams, "An event from the daemon's event bus.", direction="server"
)
EVENTS_DROPPED: Final = NotificationSpec(
    "symphony/eventsDropped",
    m.EventsDroppedParams,
    "This client read too slowly and missed count events (resynchronise what you track).",
    direction="server",
)
PING: Final = RequestSpec("symphony/ping", m.PingParams, m.PingResult, "Echo params.data back.")
INFO: Final = RequestSpec(
    "symphony/info",
    m.InfoParams,
    m.InfoResult,
    "Version, uptime, connections, buffers, RSS, and this connection's id and encoding.",
)

#: Every method, by name, in the order the docs list them.
METHODS: Final[dict[str, MethodSpec]] = {
    spec.method: spec
    for spec in (
        INITIALIZE,
        INITIALIZED,
        SHUTDOWN,
        EXIT,
        SET_TRACE,
        LOG_TRACE,
        CANCEL_REQUEST,
        DID_OPEN,
        DID_CHANGE,
        DID_CLOSE,
        DID_SAVE,
        WORKSPACE_APPLY_EDIT,
        BUFFER_OPEN,
        BUFFER_GET_TEXT,
        BUFFER_EDIT,
        BUFFER_UNDO,
        BUFFER_REDO,
        BUFFER_SAVE,
        BUFFER_CLOSE,
        BUFFER_LIST,
        BUFFER_SUBSCRIBE,
        BUFFER_UNSUBSCRIBE,
        BUFFER_DID_CHANGE,
        BUFFER_DID_CHANGE_ON_DISK,
        SUBSCRIBE,
        UNSUBSCRIBE,
        EVENT,
        EVENTS_DROPPED,
        PING,
        INFO,
    )
}
