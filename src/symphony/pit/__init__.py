"""The Pit, storage half: the artifact store and the stale manager.

- `symphony.pit.artifacts`: `ArtifactStore` (put, get, search, versions, lineage, ...);
- `symphony.pit.stale`: `StaleManager`, retention and tier policies, garbage collection;
- `symphony.pit.service`: typed request/response models for the ``symphony/artifact/*`` and
  ``symphony/pit/*`` methods (imports pydantic, so it is not imported here).

Errors are in `symphony.pit` itself (see ``_exceptions`` for the hierarchy).
"""

import importlib
from typing import TYPE_CHECKING, Any

from symphony.pit._exceptions import (
    AmbiguousRef,
    EncryptionError,
    EncryptionMismatch,
    IntegrityError,
    InvalidArgument,
    InvalidKey,
    InvalidQuery,
    KeyRequired,
    MissingData,
    NotFound,
    PitError,
    ProtectedArtifact,
    PutConflict,
    StoreFormatError,
    TamperedData,
    WrongKey,
)

if TYPE_CHECKING:
    from symphony.pit.artifacts import ArtifactStore, LiveReferences, default_store_path
    from symphony.pit.stale import RetentionPolicy, StaleManager, TierPolicy

# The store and the stale manager load on first use: the daemon imports the Pit's errors and
# models to build its route table at start-up, and the store (sqlite3, zstandard, cryptography)
# is only needed when the first Pit request arrives.
_WHERE = {
    "ArtifactStore": "artifacts",
    "LiveReferences": "artifacts",
    "default_store_path": "artifacts",
    "RetentionPolicy": "stale",
    "StaleManager": "stale",
    "TierPolicy": "stale",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'symphony.pit' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"symphony.pit.{module}"), name)
    globals()[name] = value
    return value

__all__ = [
    "AmbiguousRef",
    "ArtifactStore",
    "EncryptionError",
    "EncryptionMismatch",
    "IntegrityError",
    "InvalidArgument",
    "InvalidKey",
    "InvalidQuery",
    "KeyRequired",
    "LiveReferences",
    "MissingData",
    "NotFound",
    "PitError",
    "ProtectedArtifact",
    "PutConflict",
    "RetentionPolicy",
    "StaleManager",
    "StoreFormatError",
    "TamperedData",
    "TierPolicy",
    "WrongKey",
    "default_store_path",
]
