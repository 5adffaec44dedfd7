"""The editor core: pure, synchronous text structures every edit in Symphony goes through.

``Rope`` is the persistent text; ``Buffer`` adds revisions, atomic batches, undo and rebasing;
``Selection``/``SelectionSet`` move cursors through changes; ``files`` loads and saves atomically
(``files.load``, ``files.save``, ``files.check``). Nothing here does asyncio, talks to the server,
or imports a third-party package: the daemon, extensions and tests can all trust it.
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
from symphony.editor_core._selection import Bias, Selection, SelectionSet, map_offset
from symphony.editor_core.buffer import (
    HISTORY_LIMIT,
    HISTORY_TEXT_BUDGET,
    UNDO_LIMIT,
    UNDO_TEXT_BUDGET,
    Buffer,
    ChangeKind,
    ChangeRecord,
    LineEnding,
    LineEndings,
    Position,
    PositionEdit,
    TextEdit,
    resolve_edits,
)
from symphony.editor_core.files import DiskCheck, DiskState, FileStamp, LoadedFile

__all__ = [
    "ENCODINGS",
    "HISTORY_LIMIT",
    "HISTORY_TEXT_BUDGET",
    "UNDO_LIMIT",
    "UNDO_TEXT_BUDGET",
    "Bias",
    "Buffer",
    "ChangeKind",
    "ChangeRecord",
    "DiskCheck",
    "DiskState",
    "EditorCoreError",
    "Encoding",
    "FileConflict",
    "FileDecodeError",
    "FileError",
    "FileStamp",
    "InvalidEdit",
    "LineEnding",
    "LineEndings",
    "LoadedFile",
    "Position",
    "PositionEdit",
    "RevisionConflict",
    "Rope",
    "Selection",
    "SelectionSet",
    "TextEdit",
    "UnknownRevision",
    "map_offset",
    "resolve_edits",
]
