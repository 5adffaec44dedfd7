"""The dispatch table: every method the daemon serves -> (spec with its params model, handler).

Read it as: method (in the spec's name), params model and kind (in the spec, see
``symphony.protocol._methods``), handler. ``route`` checks each handler's shape when this module
is imported, and mypy checks it against the spec's params and result types.

``inline=True`` marks handlers that never await: they run in the connection's reader, in
arrival order, with no task per request (the fast path; see ``route``). Handlers that await
(files, threads, other clients) are routed without it and get a task each, so a slow one never
holds up the next message.

Adding methods (the extension points):
  - the buffer API: write ``handlers/buffer.py`` with ``async def open(ctx, params:
    BufferOpenParams) -> BufferOpenResult`` and so on (the specs ``BUFFER_OPEN``...
    ``BUFFER_UNSUBSCRIBE`` already exist), and add its rows below. Shared buffer state goes in
    ``ctx.daemon.services``; ``ctx.daemon.buffer_count`` feeds ``symphony/info``;
    ``ctx.daemon.broadcast`` sends ``symphony/buffer/didChange`` encoded once per encoding.
  - standard LSP text sync (``textDocument/didOpen``, ``didChange``, ``didClose``,
    ``didSave``): declare their specs, write ``handlers/text_document.py``, add the rows;
    ``initialize`` advertises ``textDocumentSync`` as soon as didOpen and didClose are routed.
Every routed ``symphony/*`` method is listed in ``capabilities.experimental.symphony.methods``.
"""

from __future__ import annotations

from typing import Final

from symphony import protocol as m
from symphony.handlers import lifecycle, system
from symphony.server import RouteTable, route

__all__ = ["ROUTES"]

ROUTES: Final = RouteTable(
    [
        # -- lifecycle (LSP) ----------------------------------------------------------
        route(m.INITIALIZE, lifecycle.initialize, inline=True),
        route(m.INITIALIZED, lifecycle.initialized),
        route(m.SHUTDOWN, lifecycle.shutdown, inline=True),
        route(m.EXIT, lifecycle.exit),
        route(m.SET_TRACE, lifecycle.set_trace),
        route(m.CANCEL_REQUEST, lifecycle.cancel_request),
        # -- the daemon itself -----------------------------------------------------------
        route(m.PING, system.ping, inline=True),
        route(m.INFO, system.info, inline=True),
        route(m.SUBSCRIBE, system.subscribe, inline=True),
        route(m.UNSUBSCRIBE, system.unsubscribe, inline=True),
    ]
)
