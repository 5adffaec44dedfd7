"""Pydantic models for the params and results of every method Symphony speaks.

Field names are snake_case in Python and camelCase on the wire (``base_revision`` <->
``baseRevision``); both spellings validate. Params of ``symphony/*`` methods forbid unknown fields,
so a typo is a -32602 naming the field instead of a silently ignored option; the standard LSP
params (``initialize`` and friends) ignore unknown fields, as LSP requires of a server facing
newer clients. Results ignore unknown fields too, so an older client can read a newer daemon.

Only what we use of LSP is modelled here, in a few small classes: importing ``lsprotocol.types``
costs about a third of a second, which the startup path cannot afford.

Positions and ranges are LSP's (zero-based line, character offset in the connection's negotiated
position encoding); revisions are the daemon's per-buffer integers.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

__all__ = [
    "ApplyWorkspaceEditParams",
    "ApplyWorkspaceEditResult",
    "BufferCloseParams",
    "BufferDidChangeOnDiskParams",
    "BufferDidChangeParams",
    "BufferEditParams",
    "BufferGetTextParams",
    "BufferGetTextResult",
    "BufferListParams",
    "BufferListResult",
    "BufferOpenParams",
    "BufferOpenResult",
    "BufferRedoParams",
    "BufferSaveParams",
    "BufferSaveResult",
    "BufferSubscribeParams",
    "BufferSummary",
    "BufferUndoParams",
    "BufferUnsubscribeParams",
    "CancelParams",
    "ChangeOrigin",
    "ClientInfo",
    "DidChangeTextDocumentParams",
    "DidCloseTextDocumentParams",
    "DidOpenTextDocumentParams",
    "DidSaveTextDocumentParams",
    "EventParams",
    "EventsDroppedParams",
    "ExitParams",
    "InfoParams",
    "InfoResult",
    "InitializeParams",
    "InitializeResult",
    "InitializedParams",
    "LogTraceParams",
    "OptionalVersionedTextDocumentIdentifier",
    "ParamsModel",
    "PingParams",
    "PingResult",
    "Position",
    "Range",
    "RevisionResult",
    "ServerCapabilities",
    "ServerInfo",
    "SetTraceParams",
    "ShutdownParams",
    "SubscribeParams",
    "SubscribeResult",
    "SymphonyCapabilities",
    "TextChange",
    "TextDocumentContentChangeEvent",
    "TextDocumentEdit",
    "TextDocumentIdentifier",
    "TextDocumentItem",
    "TextDocumentSyncOptions",
    "TextEdit",
    "TraceValue",
    "UnsubscribeParams",
    "VersionedTextDocumentIdentifier",
    "WireModel",
    "WorkspaceEdit",
    "WorkspaceFolder",
]

NonNegativeInt = Annotated[int, Field(ge=0)]
TraceValue = Literal["off", "messages", "verbose"]


class WireModel(BaseModel):
    """Base of every model that travels: camelCase on the wire, unknown fields ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="ignore",
        # Build each model's validator on first use, not at import: the daemon must answer
        # initialize within 400 ms of spawn, and most models are not needed for that.
        defer_build=True,
    )


class ParamsModel(WireModel):
    """Base of ``symphony/*`` params: unknown fields are an error (-32602 naming them)."""

    model_config = ConfigDict(extra="forbid")


# -- LSP basics --------------------------------------------------------------------------------


class Position(WireModel):
    """LSP ``Position``: zero-based line, and character offset in the negotiated encoding."""

    line: NonNegativeInt
    character: NonNegativeInt


class Range(WireModel):
    """LSP ``Range``: ``start`` inclusive, ``end`` exclusive."""

    start: Position
    end: Position


class TextChange(WireModel):
    """Replace ``range`` with ``text`` (an insertion has an empty range, a deletion empty text)."""

    range: Range
    text: str


# -- lifecycle (standard LSP) ------------------------------------------------------------------


class ClientInfo(WireModel):
    name: str
    version: str | None = None


class WorkspaceFolder(WireModel):
    uri: str
    name: str


class InitializeParams(WireModel):
    """LSP ``InitializeParams``, reduced to what the daemon reads.

    ``capabilities`` stays a plain dict: clients send hundreds of fields and we read one
    (``general.positionEncodings``). ``initialization_options`` is any JSON value, as in LSP;
    Symphony reads ``token`` from it when it is an object.
    """

    process_id: int | None = None
    client_info: ClientInfo | None = None
    locale: str | None = None
    root_uri: str | None = None
    capabilities: dict[str, Any] = Field(default_factory=dict)
    initialization_options: Any = None
    trace: TraceValue | None = None
    workspace_folders: list[WorkspaceFolder] | None = None

    @property
    def token(self) -> str | None:
        """``initializationOptions.token``, the daemon's token for TCP and WebSocket clients."""
        options = self.initialization_options
        if isinstance(options, dict):
            token = options.get("token")
            if isinstance(token, str):
                return token
        return None

    @property
    def position_encodings(self) -> list[str] | None:
        """``capabilities.general.positionEncodings``: the client's encodings, preferred first."""
        general = self.capabilities.get("general")
        if isinstance(general, dict):
            encodings = general.get("positionEncodings")
            if isinstance(encodings, list):
                return [e for e in encodings if isinstance(e, str)]
        return None


class TextDocumentSyncOptions(WireModel):
    """How the client sends ``textDocument/did*`` (``change``: 1 full, 2 incremental)."""

    open_close: bool = False
    change: Literal[0, 1, 2] = 0
    save: dict[str, Any] | None = None


class SymphonyCapabilities(WireModel):
    """``capabilities.experimental.symphony``: the ``symphony/*`` methods this daemon serves."""

    version: str
    methods: list[str]


class ServerCapabilities(WireModel):
    position_encoding: str
    text_document_sync: TextDocumentSyncOptions | None = None
    experimental: dict[str, Any] | None = None


class ServerInfo(WireModel):
    name: str
    version: str | None = None


class InitializeResult(WireModel):
    capabilities: ServerCapabilities
    server_info: ServerInfo | None = None


class InitializedParams(WireModel):
    pass


class ShutdownParams(WireModel):
    """``shutdown`` has no params (LSP: ``void``); anything sent is ignored."""


class ExitParams(WireModel):
    """``exit`` has no params (LSP: ``void``); anything sent is ignored."""


class SetTraceParams(WireModel):
    value: TraceValue


class LogTraceParams(WireModel):
    message: str
    verbose: str | None = None


class CancelParams(WireModel):
    id: int | str


# -- text document synchronisation (standard LSP) ---------------------------------------------
# Spec: https://microsoft.github.io/language-server-protocol/specifications/lsp/3.17/specification/#textSynchronization


class TextDocumentIdentifier(WireModel):
    uri: str


class VersionedTextDocumentIdentifier(TextDocumentIdentifier):
    """``version`` is the client's document version, not the daemon's revision."""

    version: int


class TextDocumentItem(WireModel):
    uri: str
    language_id: str
    version: int
    text: str


class TextDocumentContentChangeEvent(WireModel):
    """With ``range``: replace it with ``text`` (incremental sync). Without: the whole text."""

    range: Range | None = None
    range_length: int | None = None
    text: str


class DidOpenTextDocumentParams(WireModel):
    text_document: TextDocumentItem


class DidChangeTextDocumentParams(WireModel):
    """``content_changes`` apply in order, each to the text left by the previous one."""

    text_document: VersionedTextDocumentIdentifier
    content_changes: list[TextDocumentContentChangeEvent]


class DidCloseTextDocumentParams(WireModel):
    text_document: TextDocumentIdentifier


class DidSaveTextDocumentParams(WireModel):
    text_document: TextDocumentIdentifier
    text: str | None = None


# -- workspace/applyEdit (standard LSP, server -> client) ---------------------------------------
# Spec: https://microsoft.github.io/language-server-protocol/specifications/lsp/3.17/specification/#workspace_applyEdit
# How the daemon shows an editor the changes other clients made to a document it has open.


class TextEdit(WireModel):
    """LSP ``TextEdit``: replace ``range`` with ``new_text``. The edits of one list all refer to
    the same text (unlike ``contentChanges``, which apply one after another)."""

    range: Range
    new_text: str


class OptionalVersionedTextDocumentIdentifier(TextDocumentIdentifier):
    """``version``: the client's version the edits were made for (``null``: any version)."""

    version: int | None = None


class TextDocumentEdit(WireModel):
    text_document: OptionalVersionedTextDocumentIdentifier
    edits: list[TextEdit]


class WorkspaceEdit(WireModel):
    """``document_changes`` (versioned, when the client supports it) or ``changes`` by URI."""

    changes: dict[str, list[TextEdit]] | None = None
    document_changes: list[TextDocumentEdit] | None = None


class ApplyWorkspaceEditParams(WireModel):
    label: str | None = None
    edit: WorkspaceEdit


class ApplyWorkspaceEditResult(WireModel):
    applied: bool
    failure_reason: str | None = None
    failed_change: int | None = None


# -- symphony/buffer/* -------------------------------------------------------------------------


class BufferOpenParams(ParamsModel):
    """Open a buffer, or get the one already open.

    ``path`` opens a file (its ``file:`` URI keys the buffer); ``uri`` alone names an open buffer
    or a ``file:`` URI to load; ``text`` without a path makes an ``untitled:`` buffer holding it.
    """

    uri: str | None = None
    path: str | None = None
    text: str | None = None
    language_id: str | None = None

    @model_validator(mode="after")
    def _needs_something_to_open(self) -> BufferOpenParams:
        if self.uri is None and self.path is None and self.text is None:
            raise ValueError("give at least one of uri, path or text")
        return self


class BufferOpenResult(WireModel):
    uri: str
    revision: int
    line_count: int
    language_id: str
    dirty: bool


class BufferGetTextParams(ParamsModel):
    """``range`` absent: the whole text."""

    uri: str
    range: Range | None = None


class BufferGetTextResult(WireModel):
    text: str
    revision: int


class BufferEditParams(ParamsModel):
    """Edits relative to ``base_revision``: non-overlapping, applied atomically.

    Edits against an older revision are rebased over the changes since; one that overlaps such a
    change fails with RevisionConflict (data: ``{currentRevision}``).
    """

    uri: str
    base_revision: NonNegativeInt
    edits: list[TextChange]


class RevisionResult(WireModel):
    """The buffer's revision after the call (edit, undo, redo)."""

    revision: int


class BufferUndoParams(ParamsModel):
    uri: str


class BufferRedoParams(ParamsModel):
    uri: str


class BufferSaveParams(ParamsModel):
    """``path`` absent: save to the buffer's own file (an untitled buffer needs one).

    A save to the buffer's own file fails with FileConflict when the file changed on disk since
    it was read; ``overwrite: true`` writes anyway (after the user chose to keep their text).
    """

    uri: str
    path: str | None = None
    overwrite: bool = False


class BufferSaveResult(WireModel):
    revision: int
    path: str


class BufferCloseParams(ParamsModel):
    """Close the buffer for the API. One that LSP editors still have open stays open for them.
    Closing one with unsaved changes that nobody else holds needs ``discard: true`` (else
    -32602): unsaved text is never dropped by accident."""

    uri: str
    discard: bool = False


class BufferListParams(ParamsModel):
    pass


class BufferSummary(WireModel):
    uri: str
    revision: int
    dirty: bool
    line_count: int


class BufferListResult(WireModel):
    buffers: list[BufferSummary]


class BufferSubscribeParams(ParamsModel):
    uri: str


class BufferUnsubscribeParams(ParamsModel):
    uri: str


class ChangeOrigin(WireModel):
    """Who made a change: the client's id and its ``clientInfo.name`` (if it gave one)."""

    client_id: str
    name: str | None = None


class BufferDidChangeParams(WireModel):
    """Sent to subscribers for every revision, in order. Ranges are relative to the previous
    revision and in the *receiving* connection's position encoding."""

    uri: str
    revision: int
    changes: list[TextChange]
    origin: ChangeOrigin


class BufferDidChangeOnDiskParams(WireModel):
    """A watched file changed on disk.

    ``status``: ``reloaded`` (the buffer was unmodified and now holds the new text, at
    ``revision``), ``conflict`` (the buffer has unsaved changes and kept them), ``deleted``.
    """

    uri: str
    path: str
    revision: int
    status: Literal["reloaded", "conflict", "deleted"]


# -- symphony/* events and system ----------------------------------------------------------------


class SubscribeParams(ParamsModel):
    """Topic patterns: segments split by ``/``; ``*`` matches one segment, ``**`` any number."""

    topics: list[str] = Field(min_length=1)


class UnsubscribeParams(ParamsModel):
    topics: list[str] = Field(min_length=1)


class SubscribeResult(WireModel):
    """Every pattern this connection is subscribed to after the call."""

    topics: list[str]


class EventParams(WireModel):
    topic: str
    data: Any = None


class EventsDroppedParams(WireModel):
    """``count`` events were not delivered because this client read too slowly."""

    count: int


class PingParams(ParamsModel):
    """``data`` (any JSON value) is echoed back."""

    data: Any = None


class PingResult(WireModel):
    data: Any = None


class InfoParams(ParamsModel):
    pass


class InfoResult(WireModel):
    version: str
    pid: int
    uptime: float = Field(description="seconds since the daemon started")
    connections: int
    buffers: int
    rss: int = Field(description="resident set size of the daemon, in bytes")
    client_id: str = Field(description="this connection's client id")
    position_encoding: str = Field(description="this connection's negotiated encoding")
