"""Live references: artifacts a running workflow still needs, which nothing may delete.

The Conductor (or anything else) says what it holds in one of two ways, whichever fits it:

- push: ``live.hold(owner, ids)`` when a workflow starts using artifacts and
  ``live.release(owner)`` when it ends (``owner`` is any string: a workflow run id);
- pull: ``live.add_provider(fn)``, where ``fn()`` returns the artifact ids it holds right now;
  it is called whenever protection is decided, so it must be cheap and must not block.

Both the stale manager and ``ArtifactStore.delete`` consult `LiveReferences.snapshot` at the
moment they decide, inside the transaction that deletes, so a hold taken before a deletion
commits always wins.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

__all__ = ["LiveReferences"]


class LiveReferences:
    """A thread-safe registry of artifact ids held by live workflows."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holds: dict[str, frozenset[int]] = {}
        self._providers: list[Callable[[], Iterable[int]]] = []

    def hold(self, owner: str, artifact_ids: Iterable[int]) -> None:
        """Protect ``artifact_ids`` until ``release(owner)``; adds to what ``owner`` holds."""
        ids = frozenset(int(i) for i in artifact_ids)
        with self._lock:
            self._holds[owner] = self._holds.get(owner, frozenset()) | ids

    def release(self, owner: str) -> None:
        """Drop everything ``owner`` holds (a no-op if it holds nothing)."""
        with self._lock:
            self._holds.pop(owner, None)

    def add_provider(self, provider: Callable[[], Iterable[int]]) -> None:
        """Ask ``provider()`` for held ids each time protection is decided."""
        with self._lock:
            self._providers.append(provider)

    def remove_provider(self, provider: Callable[[], Iterable[int]]) -> None:
        with self._lock:
            self._providers.remove(provider)

    def snapshot(self) -> frozenset[int]:
        """Every artifact id held right now, by holds and providers."""
        with self._lock:
            held = set().union(*self._holds.values()) if self._holds else set()
            providers = list(self._providers)
        for provider in providers:
            held.update(int(i) for i in provider())
        return frozenset(held)
