"""The dispatch table: every method the daemon serves -> (spec with its params model, handler).

Read it as: method (in the spec's name), params model and kind (in the spec, see
``symphony.protocol._methods``), handler. ``route`` checks each handler's shape when this module
is imported, and mypy checks it against the spec's params and result types.

``inline=True`` marks handlers that never await: they run in the connection's reader, in
arrival order, with no task per request (the fast path; see ``route``). Handlers that await
(files, threads, other clients) are routed without it and get a task each, so a slow one never
holds up the next message.

Buffers: ``buffer`` (the ``symphony/buffer/*`` API) and ``text_document`` (standard LSP text
sync) are thin shells over one store shared by every connection, ``_workspace.Workspace``
(``ctx.daemon.services``; it feeds ``ctx.daemon.buffer_count`` and runs the file watcher through
``Daemon.start_service``). ``initialize`` is ``text_document.initialize``: the lifecycle's, plus
remembering whether the client takes ``workspace/applyEdit``. ``initialize`` advertises
``textDocumentSync`` (incremental, save) because didOpen, didChange, didClose and didSave are
routed here, and lists every routed ``symphony/*`` method in
``capabilities.experimental.symphony.methods``.
"""

from __future__ import annotations

from typing import Final

from symphony import protocol as m
from symphony.handlers import artifact, buffer, lifecycle, system, text_document
from symphony.server import RouteTable, route

__all__ = ["ROUTES"]

ROUTES: Final = RouteTable(
    [
        # -- lifecycle (LSP) ----------------------------------------------------------
        route(m.INITIALIZE, text_document.initialize, inline=True),
        route(m.INITIALIZED, lifecycle.initialized),
        route(m.SHUTDOWN, lifecycle.shutdown, inline=True),
        route(m.EXIT, lifecycle.exit),
        route(m.SET_TRACE, lifecycle.set_trace),
        route(m.CANCEL_REQUEST, lifecycle.cancel_request),
        # -- text document synchronisation (LSP): notifications, run in order ---------
        route(m.DID_OPEN, text_document.did_open),
        route(m.DID_CHANGE, text_document.did_change),
        route(m.DID_CLOSE, text_document.did_close),
        route(m.DID_SAVE, text_document.did_save),
        # -- buffers ------------------------------------------------------------------
        route(m.BUFFER_OPEN, buffer.open_buffer),
        route(m.BUFFER_GET_TEXT, buffer.get_text, inline=True),
        route(m.BUFFER_EDIT, buffer.edit, inline=True),
        route(m.BUFFER_UNDO, buffer.undo, inline=True),
        route(m.BUFFER_REDO, buffer.redo, inline=True),
        route(m.BUFFER_SAVE, buffer.save),
        route(m.BUFFER_CLOSE, buffer.close, inline=True),
        route(m.BUFFER_LIST, buffer.list_buffers, inline=True),
        route(m.BUFFER_SUBSCRIBE, buffer.subscribe, inline=True),
        route(m.BUFFER_UNSUBSCRIBE, buffer.unsubscribe, inline=True),
        # -- the daemon itself -----------------------------------------------------------
        route(m.PING, system.ping, inline=True),
        route(m.INFO, system.info, inline=True),
        route(m.SUBSCRIBE, system.subscribe, inline=True),
        route(m.UNSUBSCRIBE, system.unsubscribe, inline=True),
        # -- the Pit (symphony/artifact/*, symphony/pit/*): store calls run in threads ------
        route(artifact.ARTIFACT_PUT, artifact.put),
        route(artifact.ARTIFACT_PUT_PART, artifact.put_part),
        route(artifact.ARTIFACT_PUT_ABORT, artifact.put_abort),
        route(artifact.ARTIFACT_GET, artifact.get),
        route(artifact.ARTIFACT_STAT, artifact.stat),
        route(artifact.ARTIFACT_LIST, artifact.list_artifacts),
        route(artifact.ARTIFACT_SEARCH, artifact.search),
        route(artifact.ARTIFACT_VERSIONS, artifact.versions),
        route(artifact.ARTIFACT_PIN, artifact.pin),
        route(artifact.ARTIFACT_UNPIN, artifact.unpin),
        route(artifact.ARTIFACT_DELETE, artifact.delete),
        route(artifact.PIT_GC, artifact.gc),
        route(artifact.PIT_FSCK, artifact.fsck),
    ]
)
