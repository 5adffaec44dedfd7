"""The editor core: pure, synchronous text structures every edit in Symphony goes through.

``Rope`` is the persistent text; ``buffer.Buffer`` adds revisions, undo and rebasing;
``files`` loads and saves atomically. Nothing here does asyncio, talks to the server, or imports
a third-party package: the daemon, extensions and tests can all trust it.
"""

from symphony.editor_core._exceptions import (
    EditorCoreError,
    FileConflict,
    FileDecodeError,
    FileError,
    InvalidEdit,
    RevisionConflict,
    UnknownRevision,
)
from symphony.editor_core._rope import ENCODINGS, Encoding, Rope
from symphony.editor_core.files import DiskCheck, DiskState, FileStamp, LoadedFile

__all__ = [
    "ENCODINGS",
    "DiskCheck",
    "DiskState",
    "EditorCoreError",
    "Encoding",
    "FileConflict",
    "FileDecodeError",
    "FileError",
    "FileStamp",
    "InvalidEdit",
    "LoadedFile",
    "RevisionConflict",
    "Rope",
    "UnknownRevision",
]
