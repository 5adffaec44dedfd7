"""Errors raised by the Pit's storage half (the artifact store and the stale manager).

Hierarchy::

    PitError
    ├── NotFound               (also LookupError) no artifact, content or upload matches a ref
    ├── AmbiguousRef           (also LookupError) a content-id prefix matches several contents
    ├── InvalidArgument        (also ValueError) a malformed name, kind, tag, ref, quality, ...
    │   └── InvalidQuery       a search query FTS5 cannot parse
    ├── ProtectedArtifact      delete refused: pinned, accepted suggestion, high quality, live
    ├── PutConflict            a put raced a garbage collection past its grace period; retry it
    ├── StoreFormatError       the folder is not a Pit store, or one written by a newer version
    ├── EncryptionError        the key and the store do not go together
    │   ├── KeyRequired        the store is encrypted and no key was supplied
    │   ├── WrongKey           the key is not the one the store was created with
    │   ├── InvalidKey         (also ValueError) key material that is not 32 bytes
    │   └── EncryptionMismatch a key was supplied for a store created without encryption
    └── IntegrityError         stored data is not what the metadata promises (fsck finds these)
        ├── TamperedData       bytes fail authentication (AES-GCM) or their hash: modified,
        │                      truncated, or written under another key; never returned as data
        └── MissingData        metadata points at a pack file or inline data that is not there

Errors say whose fault they are: `InvalidArgument`, `NotFound` and `ProtectedArtifact` are the
caller's; `IntegrityError` is the disk's (or an attacker's) and `fsck` reports the same cases;
`PutConflict` is nobody's, and retrying succeeds.
"""

from __future__ import annotations

__all__ = [
    "AmbiguousRef",
    "EncryptionError",
    "EncryptionMismatch",
    "IntegrityError",
    "InvalidArgument",
    "InvalidKey",
    "InvalidQuery",
    "KeyRequired",
    "MissingData",
    "NotFound",
    "PitError",
    "ProtectedArtifact",
    "PutConflict",
    "StoreFormatError",
    "TamperedData",
    "WrongKey",
]


class PitError(Exception):
    """Base class of every error the artifact store and the stale manager raise on purpose."""


class NotFound(PitError, LookupError):
    """No artifact, content or upload matches ``ref``."""

    def __init__(self, ref: str, what: str = "artifact") -> None:
        super().__init__(f"no {what} matches {ref!r}")
        self.ref = ref
        self.what = what


class AmbiguousRef(PitError, LookupError):
    """A content-id prefix matches more than one content; ``candidates`` lists some of them."""

    def __init__(self, ref: str, candidates: list[str]) -> None:
        shown = ", ".join(candidates)
        super().__init__(f"{ref!r} matches several contents ({shown}); give more digits")
        self.ref = ref
        self.candidates = candidates


class InvalidArgument(PitError, ValueError):
    """An argument is malformed: a name, kind, tag, ref, quality score, policy value, ..."""


class InvalidQuery(InvalidArgument):
    """A search query that SQLite FTS5 cannot parse (only with ``raw=True`` queries)."""


class ProtectedArtifact(PitError):
    """``delete`` refused because the artifact is protected; ``reasons`` say why.

    Pass ``force=True`` to delete it anyway: retention never does.
    """

    def __init__(self, ref: str, reasons: tuple[str, ...]) -> None:
        super().__init__(f"{ref} is protected ({', '.join(reasons)}); use force to delete it")
        self.ref = ref
        self.reasons = reasons


class PutConflict(PitError):
    """A put found that chunks it meant to share were collected while it ran; retry the put.

    Only a put that lasts longer than the garbage collector's grace period can see this.
    """


class StoreFormatError(PitError):
    """The folder is not a Pit store, or its format is newer than this code understands."""


class EncryptionError(PitError):
    """The key supplied (or not) does not go with the store."""


class KeyRequired(EncryptionError):
    """The store is encrypted and no key was supplied (key file, environment, or argument)."""


class WrongKey(EncryptionError):
    """The supplied key is not the key the store was created with."""


class InvalidKey(EncryptionError, ValueError):
    """Key material is malformed: not 32 bytes, nor 64 hex digits, nor base64 of 32 bytes."""


class EncryptionMismatch(EncryptionError):
    """A key was supplied for a store created without encryption."""


class IntegrityError(PitError):
    """Stored data is not what the metadata says it is."""


class TamperedData(IntegrityError):
    """Stored bytes fail authentication or their hash check. Never returned as content."""

    def __init__(self, message: str, *, chunk: str) -> None:
        super().__init__(message)
        self.chunk = chunk


class MissingData(IntegrityError):
    """Metadata points at a pack file, or a range of one, that is not on disk."""

    def __init__(self, message: str, *, chunk: str) -> None:
        super().__init__(message)
        self.chunk = chunk
