"""Shared services by type: how rooms hand the daemon's handlers what they share.

The daemon does not know the buffer store, the Pit or the extension host; whoever wires the
daemon (``serve``) provides them here, and handlers fetch them by type::

    daemon.services.provide(BufferStore, store)          # at startup
    store = ctx.daemon.services.get(BufferStore)         # in a handler, typed as BufferStore
"""

from __future__ import annotations

from typing import Any, TypeVar

__all__ = ["Services"]

T = TypeVar("T")


class Services:
    """A typed registry: one instance per type."""

    def __init__(self) -> None:
        self._by_type: dict[type[Any], Any] = {}

    def provide(self, kind: type[T], instance: T) -> None:
        """Register ``instance`` as the ``kind`` service (replacing any earlier one)."""
        if not isinstance(instance, kind):
            raise TypeError(f"{instance!r} is not a {kind.__qualname__}")
        self._by_type[kind] = instance

    def get(self, kind: type[T]) -> T:
        """The ``kind`` service; ``LookupError`` naming it if nobody provided one."""
        try:
            instance: T = self._by_type[kind]
        except KeyError:
            raise LookupError(
                f"no {kind.__qualname__} service: the daemon was started without one "
                "(see Daemon.services)"
            ) from None
        return instance

    def find(self, kind: type[T]) -> T | None:
        """The ``kind`` service, or None."""
        instance: T | None = self._by_type.get(kind)
        return instance

    def __contains__(self, kind: object) -> bool:
        return kind in self._by_type
