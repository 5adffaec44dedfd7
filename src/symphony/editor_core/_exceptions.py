"""Errors raised by the editor core.

Hierarchy::

    EditorCoreError
    ├── InvalidEdit            (also ValueError) edits that overlap, are unordered or out of range
    ├── RevisionConflict       an edit overlaps a change made since its base revision
    ├── UnknownRevision        a base revision the buffer never had or no longer remembers
    └── FileError              (also OSError subclasses stay OSError: missing file, permissions)
        ├── FileDecodeError    (also UnicodeError) bytes that are not valid in the file's encoding
        └── FileConflict       the file on disk changed since it was loaded or saved

Offsets outside a rope raise the built-in ``IndexError`` with the valid range in the message:
that is what a sequence does in Python, and what callers expect.
"""

from __future__ import annotations

__all__ = [
    "EditorCoreError",
    "FileConflict",
    "FileDecodeError",
    "FileError",
    "InvalidEdit",
    "RevisionConflict",
    "UnknownRevision",
]


class EditorCoreError(Exception):
    """Base class of every error the editor core raises on purpose."""


class InvalidEdit(EditorCoreError, ValueError):
    """A batch of edits is malformed: overlapping, out of range, or in an unknown encoding."""


class RevisionConflict(EditorCoreError):
    """An edit made against ``base_revision`` overlaps a change made since.

    ``current_revision`` is the buffer's revision now: the client re-reads and retries from it.
    """

    def __init__(self, message: str, *, base_revision: int, current_revision: int) -> None:
        super().__init__(message)
        self.base_revision = base_revision
        self.current_revision = current_revision


class UnknownRevision(EditorCoreError):
    """A revision is newer than the buffer's, or older than the history it keeps."""

    def __init__(self, message: str, *, revision: int, current_revision: int) -> None:
        super().__init__(message)
        self.revision = revision
        self.current_revision = current_revision


class FileError(EditorCoreError):
    """A file could not be loaded or saved as asked."""


class FileDecodeError(FileError, UnicodeError):
    """A file's bytes are not valid in its encoding. Never silently replaced.

    ``byte_offset`` is the offset in the file (counting any BOM) of the first bad byte.
    """

    def __init__(self, path: str, encoding: str, byte_offset: int, reason: str) -> None:
        super().__init__(
            f"{path}: not valid {encoding} at byte offset {byte_offset} ({reason}); "
            f"open it with an explicit encoding"
        )
        self.path = path
        self.encoding = encoding
        self.byte_offset = byte_offset
        self.reason = reason


class FileConflict(FileError):
    """The file on disk is not the one the buffer was loaded from or last saved to."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
