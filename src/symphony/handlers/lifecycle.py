"""Handlers of the LSP lifecycle: initialize, initialized, shutdown, exit, $/setTrace,
$/cancelRequest.

Which of these may run in which state is not decided here but by the transition table in
``symphony.protocol._lifecycle``; the connection consults it before dispatching. These handlers
do what is left: check the token, negotiate the position encoding, describe what the daemon can
do, record the trace level, cancel.
"""

from __future__ import annotations

import hmac

import symphony
from symphony.protocol import (
    CancelParams,
    ExitParams,
    InitializedParams,
    InitializeParams,
    InitializeResult,
    ServerCapabilities,
    ServerInfo,
    SetTraceParams,
    ShutdownParams,
    SymphonyCapabilities,
    TextDocumentSyncOptions,
    Unauthorized,
    negotiate_position_encoding,
)
from symphony.server import RequestContext, RouteTable

__all__ = [
    "cancel_request",
    "capabilities",
    "exit",
    "initialize",
    "initialized",
    "set_trace",
    "shutdown",
]

_SYNC_OPEN_CLOSE = ("textDocument/didOpen", "textDocument/didClose")
_SYNC_CHANGE = "textDocument/didChange"
_SYNC_SAVE = "textDocument/didSave"


async def initialize(ctx: RequestContext, params: InitializeParams) -> InitializeResult:
    """Authenticate (TCP, WebSocket), negotiate the encoding, advertise what works."""
    session = ctx.session
    if not session.authenticated:
        token = params.token
        if token is None or not hmac.compare_digest(token.encode(), ctx.daemon.token.encode()):
            # Answer, then close: an unauthenticated client gets nothing else from us.
            ctx.connection.close("unauthorized")
            raise Unauthorized(
                "unauthorized: this transport needs the daemon's token in "
                "initializationOptions.token (see the workspace's discovery file)"
                if token is None
                else "unauthorized: wrong token"
            )
        session.authenticated = True
    session.position_encoding = negotiate_position_encoding(params.position_encodings)
    if params.client_info is not None:
        session.client_name = params.client_info.name
        session.client_version = params.client_info.version
    if params.trace is not None:
        session.trace = params.trace
    ctx.connection.log.info(
        "initialize",
        client=session.client_name,
        position_encoding=session.position_encoding,
        process_id=params.process_id,
    )
    return InitializeResult(
        capabilities=capabilities(ctx.daemon.routes, session.position_encoding),
        server_info=ServerInfo(name="symphony", version=symphony.__version__),
    )


def capabilities(routes: RouteTable, position_encoding: str) -> ServerCapabilities:
    """Exactly what this route table serves: text document sync only if its handlers are
    routed, and the list of ``symphony/*`` methods under ``experimental.symphony``."""
    sync = None
    if all(method in routes for method in _SYNC_OPEN_CLOSE):
        sync = TextDocumentSyncOptions(
            open_close=True,
            change=2 if _SYNC_CHANGE in routes else 0,
            save={"includeText": False} if _SYNC_SAVE in routes else None,
        )
    symphony_methods = sorted(m for m in routes if m.startswith("symphony/"))
    return ServerCapabilities(
        position_encoding=position_encoding,
        text_document_sync=sync,
        experimental={
            "symphony": SymphonyCapabilities(
                version=symphony.__version__, methods=symphony_methods
            ).model_dump()
        },
    )


async def initialized(ctx: RequestContext, params: InitializedParams) -> None:
    """The client has our capabilities; tell the event bus a client is ready."""
    session = ctx.session
    ctx.daemon.bus.publish(
        "connection/initialized", {"clientId": session.client_id, "name": session.client_name}
    )


async def shutdown(ctx: RequestContext, params: ShutdownParams) -> None:
    """Nothing to release per connection; the lifecycle now refuses further requests."""
    ctx.connection.log.info("shutdown requested")


async def exit(ctx: RequestContext, params: ExitParams) -> None:
    """The connection closes itself once this returns (the lifecycle is EXITED); for the stdio
    client of an editor-spawned daemon the daemon then stops (``Daemon._connection_closed``)."""
    ctx.connection.log.info("exit", exit_status=ctx.session.lifecycle.exit_status)


async def set_trace(ctx: RequestContext, params: SetTraceParams) -> None:
    """``off``, ``messages`` or ``verbose``: $/logTrace after each request (with its params)."""
    ctx.session.trace = params.value


async def cancel_request(ctx: RequestContext, params: CancelParams) -> None:
    """Cancel a request of this connection that is still running (it answers -32800)."""
    ctx.connection.cancel(params.id)
