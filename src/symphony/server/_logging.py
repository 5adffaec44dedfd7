"""Logging for the daemon: structlog, to stderr or a file, as JSON lines or for humans.

Never stdout: on ``--stdio`` that is the protocol stream (and ``open_stdio`` points fd 1 at
stderr anyway, so a stray print cannot corrupt it).
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal, TextIO

import structlog

__all__ = ["LOG_FORMATS", "LOG_LEVELS", "LogFormat", "configure_logging", "get_logger"]

LogFormat = Literal["json", "console"]
LOG_FORMATS: tuple[LogFormat, ...] = ("json", "console")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def configure_logging(
    level: str = "info", fmt: LogFormat = "json", file: str | None = None
) -> TextIO:
    """Configure structlog for this process; returns the stream logs go to."""
    if level not in LOG_LEVELS:
        raise ValueError(f"unknown log level {level!r}; use one of {', '.join(LOG_LEVELS)}")
    if fmt not in LOG_FORMATS:
        raise ValueError(f"unknown log format {fmt!r}; use json or console")
    stream: TextIO = open(file, "a", buffering=1, encoding="utf-8") if file else sys.stderr  # noqa: SIM115
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if fmt == "json":
        processors += [
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ]
    else:
        processors.append(structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.WriteLoggerFactory(file=stream),
        cache_logger_on_first_use=True,
    )
    return stream


def get_logger(name: str) -> Any:
    """A structlog logger named ``name`` (the ``logger`` key of every line)."""
    return structlog.get_logger(name).bind(logger=name)
