"""Handlers of the ``symphony/buffer/*`` API: thin shells over the shared buffer store.

Each handler validates nothing itself (the route did, with the params model), finds the
document, calls the store (``symphony.handlers._workspace``), and shapes the result; errors of
the editor core become protocol errors inside the store, at this boundary. Positions and ranges
are in the caller's negotiated position encoding.

Everything that only computes is routed ``inline`` (it runs in the caller's reader, in arrival
order, so a client's edits apply in the order it sent them and every change is fanned out
before the next message is read). ``open`` and ``save`` touch the disk and are not inline: a
client that pipelines requests after them must wait for their replies first.

The store module (and with it the editor core) is imported on the first call, not at startup:
an editor-spawned daemon must answer ``initialize`` fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from symphony.protocol import (
    BufferCloseParams,
    BufferEditParams,
    BufferGetTextParams,
    BufferGetTextResult,
    BufferListParams,
    BufferListResult,
    BufferOpenParams,
    BufferOpenResult,
    BufferRedoParams,
    BufferSaveParams,
    BufferSaveResult,
    BufferSubscribeParams,
    BufferSummary,
    BufferUndoParams,
    BufferUnsubscribeParams,
    InvalidParams,
    RevisionResult,
)
from symphony.server import RequestContext

if TYPE_CHECKING:
    from symphony.handlers._workspace import Document, Workspace

__all__ = [
    "close",
    "edit",
    "get_text",
    "list_buffers",
    "open_buffer",
    "redo",
    "save",
    "subscribe",
    "undo",
    "unsubscribe",
]


def store(ctx: RequestContext) -> Workspace:
    """The daemon's buffer store (made on first use)."""
    from symphony.handlers._workspace import Workspace

    return Workspace.of(ctx.daemon)


def _opened(doc: Document) -> BufferOpenResult:
    buffer = doc.buffer
    return BufferOpenResult(
        uri=doc.uri,
        revision=buffer.revision,
        line_count=buffer.line_count,
        language_id=doc.language_id,
        dirty=doc.dirty,
    )


async def open_buffer(ctx: RequestContext, params: BufferOpenParams) -> BufferOpenResult:
    """Open a file (``path``, or a ``file:`` ``uri``), an open buffer by URI, or untitled text."""
    doc = await store(ctx).open(
        ctx.connection,
        uri=params.uri,
        path=params.path,
        text=params.text,
        language_id=params.language_id,
    )
    return _opened(doc)


async def get_text(ctx: RequestContext, params: BufferGetTextParams) -> BufferGetTextResult:
    """The whole text, or the text of ``range``, at the current revision."""
    buffer = store(ctx).get(params.uri).buffer
    rope = buffer.rope
    if params.range is None:
        return BufferGetTextResult(text=str(rope), revision=buffer.revision)
    encoding = ctx.session.position_encoding
    start, end = params.range.start, params.range.end
    low = rope.offset_at(start.line, start.character, encoding)
    high = rope.offset_at(end.line, end.character, encoding)
    if high < low:
        message = f"range ends before it starts: {start.line}:{start.character} .. {end.line}:{end.character}"
        raise InvalidParams(message, [{"type": "value_error", "loc": ["range"], "msg": message}])
    return BufferGetTextResult(text=rope.slice(low, high), revision=buffer.revision)


async def edit(ctx: RequestContext, params: BufferEditParams) -> RevisionResult:
    """Apply edits made against ``baseRevision`` atomically (rebased over later changes)."""
    workspace = store(ctx)
    doc = workspace.get(params.uri)
    revision = workspace.edit(ctx.connection, doc, params.edits, params.base_revision)
    return RevisionResult(revision=revision)


async def undo(ctx: RequestContext, params: BufferUndoParams) -> RevisionResult:
    """Undo the last change group (buffer-wide); the revision is unchanged if none is left."""
    workspace = store(ctx)
    return RevisionResult(revision=workspace.undo(ctx.connection, workspace.get(params.uri)))


async def redo(ctx: RequestContext, params: BufferRedoParams) -> RevisionResult:
    """Redo the last undone group; the revision is unchanged if none is left."""
    workspace = store(ctx)
    doc = workspace.get(params.uri)
    return RevisionResult(revision=workspace.undo(ctx.connection, doc, redo=True))


async def save(ctx: RequestContext, params: BufferSaveParams) -> BufferSaveResult:
    """Write the buffer atomically to its file (or to ``path``); see ``Workspace.save``."""
    workspace = store(ctx)
    doc = workspace.get(params.uri)
    revision, path = await workspace.save(
        ctx.connection, doc, params.path, overwrite=params.overwrite
    )
    return BufferSaveResult(revision=revision, path=path)


async def close(ctx: RequestContext, params: BufferCloseParams) -> None:
    """Drop the API's hold on the buffer (see "Holders and closing" in ``_workspace``)."""
    workspace = store(ctx)
    workspace.close(workspace.get(params.uri), discard=params.discard)


async def list_buffers(ctx: RequestContext, params: BufferListParams) -> BufferListResult:
    """Every open buffer, by URI."""
    return BufferListResult(
        buffers=[
            BufferSummary(
                uri=doc.uri,
                revision=doc.buffer.revision,
                dirty=doc.dirty,
                line_count=doc.buffer.line_count,
            )
            for doc in store(ctx).documents
        ]
    )


async def subscribe(ctx: RequestContext, params: BufferSubscribeParams) -> None:
    """Receive ``symphony/buffer/didChange`` for every later revision of this buffer."""
    workspace = store(ctx)
    workspace.subscribe(ctx.connection, workspace.get(params.uri))


async def unsubscribe(ctx: RequestContext, params: BufferUnsubscribeParams) -> None:
    """Stop receiving ``symphony/buffer/didChange`` for this buffer."""
    workspace = store(ctx)
    workspace.unsubscribe(ctx.connection, workspace.get(params.uri))
