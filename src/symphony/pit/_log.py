"""The Pit's structlog logger, imported on first use.

structlog (and the asyncio it imports) cost the command line a sizeable part of its start-up;
the hot paths (put, get) never log, so only the first log line pays for the import.

In the daemon, structlog is configured (``symphony.server``) and Pit lines join its log with
``logger=symphony.pit``. Anywhere else (the command line, a script) they go to stderr, never
stdout: stdout is a command's output (``symphony artifact get`` writes content there).
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["logger"]


def logger() -> Any:
    """A structlog logger for the Pit (see the module docstring for where lines go)."""
    import structlog

    if structlog.is_configured():
        return structlog.get_logger("symphony.pit").bind(logger="symphony.pit")
    return structlog.wrap_logger(
        structlog.PrintLogger(file=sys.stderr), logger_name="symphony.pit"
    ).bind(logger="symphony.pit")
