"""The Pit, storage half: the artifact store and the stale manager.

- `symphony.pit.artifacts`: `ArtifactStore` (put, get, search, versions, lineage, ...);
- `symphony.pit.stale`: `StaleManager`, retention and tier policies, garbage collection;
- `symphony.pit.service`: typed request/response models for the ``symphony/artifact/*`` and
  ``symphony/pit/*`` methods (imports pydantic, so it is not imported here).

Errors are in `symphony.pit` itself (see ``_exceptions`` for the hierarchy).
"""

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
from symphony.pit.artifacts import ArtifactStore, LiveReferences, default_store_path
from symphony.pit.stale import RetentionPolicy, StaleManager, TierPolicy

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
