"""Handlers of the daemon's own methods: ping, info, event subscriptions."""

from __future__ import annotations

import os
from typing import Any

import symphony
from symphony.protocol import (
    InfoParams,
    InfoResult,
    InvalidParams,
    PingParams,
    PingResult,
    SubscribeParams,
    SubscribeResult,
    UnsubscribeParams,
)
from symphony.server import RequestContext

__all__ = ["info", "ping", "subscribe", "unsubscribe"]

_process: Any = None


async def ping(ctx: RequestContext, params: PingParams) -> PingResult:
    """Echo ``data`` back: a liveness check, and the cheapest round trip to measure."""
    return PingResult(data=params.data)


async def info(ctx: RequestContext, params: InfoParams) -> InfoResult:
    """Version, uptime, connections, buffers, RSS; and this connection's id and encoding."""
    global _process
    if _process is None:
        import psutil  # type: ignore[import-untyped]  # only symphony/info needs it: off the startup path

        _process = psutil.Process()
    daemon = ctx.daemon
    return InfoResult(
        version=symphony.__version__,
        pid=os.getpid(),
        uptime=daemon.uptime,
        connections=len(daemon.connections),
        buffers=daemon.buffer_count(),
        rss=_process.memory_info().rss,
        client_id=ctx.session.client_id,
        position_encoding=ctx.session.position_encoding,
    )


async def subscribe(ctx: RequestContext, params: SubscribeParams) -> SubscribeResult:
    """Receive ``symphony/event`` for topics matching these patterns."""
    try:
        topics = ctx.connection.subscribe(params.topics)
    except ValueError as exc:
        raise InvalidParams(
            str(exc), [{"type": "value_error", "loc": ["topics"], "msg": str(exc)}]
        ) from None
    return SubscribeResult(topics=topics)


async def unsubscribe(ctx: RequestContext, params: UnsubscribeParams) -> SubscribeResult:
    """Stop receiving events for these patterns."""
    return SubscribeResult(topics=ctx.connection.unsubscribe(params.topics))
