"""The one way handlers run blocking work: ``await to_thread(func, *args)``.

Handlers run on the event loop, so anything that blocks (a large file write and its fsync, a
subprocess wait, a CPU-heavy transform of a big buffer) would stall every client. ``to_thread``
runs it in the daemon's worker pool and returns its result; contextvars go along. A cancelled
handler stops waiting, but the thread runs its call to the end: threads cannot be interrupted,
so keep each call short or make it check a flag.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ParamSpec, TypeVar

__all__ = ["to_thread"]

P = ParamSpec("P")
R = TypeVar("R")


async def to_thread(func: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """Run ``func(*args, **kwargs)`` in a worker thread and return its result."""
    return await asyncio.to_thread(func, *args, **kwargs)
