"""Handlers of standard LSP text synchronisation: ``textDocument/didOpen``, ``didChange``,
``didClose``, ``didSave`` (https://microsoft.github.io/language-server-protocol/specifications/
lsp/3.17/specification/#textSynchronization).

Documents an editor opens are the buffers of the shared store (``symphony.handlers._workspace``),
keyed by URI, so ``symphony/buffer/getText`` and the other ``symphony/*`` clients see what the
editor typed, and the editor is shown their changes through ``workspace/applyEdit`` when it can
apply edits. The rules (whose text wins at ``didOpen``, how the editor's own echo of an applied
edit is told apart, what closing keeps) are in that module's docstring.

Notifications run in the editor's reader, in order, each to completion before the next is read
(``didOpen`` and ``didSave`` may wait for a file read; ``didChange`` never waits).

``initialize`` is ``lifecycle.initialize`` plus one thing this module needs: whether the client
said it takes ``workspace/applyEdit`` (and versioned ``documentChanges``), remembered per client
in the ``EditorCapabilities`` service.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from symphony.handlers import lifecycle
from symphony.protocol import (
    DidChangeTextDocumentParams,
    DidCloseTextDocumentParams,
    DidOpenTextDocumentParams,
    DidSaveTextDocumentParams,
    InitializeParams,
    InitializeResult,
)
from symphony.server import RequestContext

if TYPE_CHECKING:
    from symphony.handlers._workspace import Workspace
    from symphony.server import Daemon, Event

__all__ = [
    "EditorCapabilities",
    "did_change",
    "did_close",
    "did_open",
    "did_save",
    "initialize",
]


class EditorCapabilities:
    """What each LSP client said, at ``initialize``, about edits sent to it by the daemon.

    Only clients that take ``workspace/applyEdit`` are recorded; a client is forgotten when its
    connection closes. (Kept apart from the buffer store so that ``initialize`` does not load
    the editor core.)
    """

    def __init__(self, daemon: Daemon) -> None:
        # client id -> (takes workspace/applyEdit, takes versioned documentChanges)
        self._clients: dict[str, tuple[bool, bool]] = {}
        daemon.bus.subscribe(["connection/closed"], self._forget)

    @classmethod
    def of(cls, daemon: Daemon) -> EditorCapabilities:
        found = daemon.services.find(cls)
        if found is None:
            found = cls(daemon)
            daemon.services.provide(cls, found)
        return found

    def record(self, client_id: str, capabilities: dict[str, Any]) -> None:
        workspace = capabilities.get("workspace")
        if not isinstance(workspace, dict) or workspace.get("applyEdit") is not True:
            return
        edit = workspace.get("workspaceEdit")
        versioned = isinstance(edit, dict) and edit.get("documentChanges") is True
        self._clients[client_id] = (True, versioned)

    def of_client(self, client_id: str) -> tuple[bool, bool]:
        """``(applies_edits, versioned)`` for this client."""
        return self._clients.get(client_id, (False, False))

    def _forget(self, event: Event) -> None:
        self._clients.pop(event.data["clientId"], None)


def _store(ctx: RequestContext) -> Workspace:
    from symphony.handlers._workspace import Workspace  # the editor core, on first use

    return Workspace.of(ctx.daemon)


async def initialize(ctx: RequestContext, params: InitializeParams) -> InitializeResult:
    """``lifecycle.initialize``, then remember what the client takes (see module docstring)."""
    result = await lifecycle.initialize(ctx, params)
    EditorCapabilities.of(ctx.daemon).record(ctx.session.client_id, params.capabilities)
    return result


async def did_open(ctx: RequestContext, params: DidOpenTextDocumentParams) -> None:
    """The editor opened a document: the buffer with its URI now holds the editor's text."""
    item = params.text_document
    applies_edits, versioned = EditorCapabilities.of(ctx.daemon).of_client(ctx.session.client_id)
    await _store(ctx).editor_opened(
        ctx.connection,
        item.uri,
        item.language_id,
        item.version,
        item.text,
        applies_edits=applies_edits,
        versioned=versioned,
    )


async def did_change(ctx: RequestContext, params: DidChangeTextDocumentParams) -> None:
    """Incremental (``range``) or full changes, in this editor's position encoding."""
    document = params.text_document
    _store(ctx).editor_changed(
        ctx.connection, document.uri, document.version, params.content_changes
    )


async def did_close(ctx: RequestContext, params: DidCloseTextDocumentParams) -> None:
    """The editor closed the document (a dirty buffer nobody else holds stays in the store)."""
    _store(ctx).editor_closed(ctx.connection, params.text_document.uri)


async def did_save(ctx: RequestContext, params: DidSaveTextDocumentParams) -> None:
    """The editor wrote the file: if it holds the buffer's text, the buffer is saved."""
    await _store(ctx).editor_saved(ctx.connection, params.text_document.uri)
