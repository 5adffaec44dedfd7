"""The buffer store every connection shares: documents by URI, their files, editors, subscribers.

Theory of operation
-------------------
**Identity.** A document is keyed by URI. A ``file:`` URI names a file, and the key of a file's
document is the ``file:`` URI of its *real* path (symlinks resolved, percent-encoding
normalised), so ``symphony/buffer/open {path}``, an editor's ``textDocument/didOpen`` and the
CLI's ``symphony cat`` reach the same buffer however they spell it; spellings seen are kept as
aliases. Other schemes (``untitled:``, anything an editor invents) are keys as they are; ``open``
with ``text`` alone makes ``untitled:Untitled-N``.

**Holders and closing.** A document is *held* by the API (``symphony/buffer/open`` sets the hold,
``symphony/buffer/close`` drops it) and by every connection that has it open through LSP
(``didOpen``/``didClose``, or the connection ending). Unsaved text is never dropped silently:

- when its last holder lets go, a *clean* document closes; a *dirty* one stays in the store (and
  in ``symphony/buffer/list``) with no holder, until it becomes clean (saved, undone, reloaded),
  which closes it, or the API closes it with ``discard: true``;
- ``symphony/buffer/close`` on a document that LSP editors still have open only drops the API's
  hold; on one that nobody else holds and that has unsaved changes it needs ``discard: true``
  (otherwise -32602, naming ``discard``).

A document without a file (``untitled:``) counts as dirty while it holds any text, since that
text is saved nowhere. Saving it with a ``path`` binds it to that file (its URI stays).

**Changes.** Every revision, whoever made it (API edit, undo, an editor's ``didChange``, a reload
from disk), goes through ``Workspace._changed`` right after the core made it, in the same
synchronous step: subscribers get ``symphony/buffer/didChange`` (encoded once per position
encoding by ``Daemon.broadcast``, never dropped: a subscriber that stops reading is disconnected
as a slow reader instead, so the ones that stay connected see every revision), the event bus gets
``buffer/changed``, and every LSP editor with the document open is brought up to date (below).
Handlers that change buffers are inline routes or notifications, which run in their connection's
reader in arrival order, and nothing awaits between a change and its fan-out, so every
subscriber's outbox receives the revisions in revision order.

**LSP editors.** LSP has no server-to-client ``didChange``; the standard way to show an editor
other clients' changes is ``workspace/applyEdit``, which we send to editors that advertised
``workspace.applyEdit``. Each editor has an ``EditorView``: ``shadow``, its text as its own
``didChange`` notifications describe it, and ``window``, the one region where that text differs
from the buffer (``None`` when equal). A remote revision widens the window (``_compose``); an
``applyEdit`` proposes to replace the window's part of the editor's text with the buffer's.

Loop avoidance: the editor's ``didChange`` after applying our edit (its *echo*) must not be
applied again. We never match echoes by version or by shape (editors recompute the change, e.g.
Neovim diffs lines, and debounce several into one notification); we look at what it does to the
text. An editor change that makes the window smaller is absorbed: the shadow takes it, the buffer
does not (an echo, or the editor typing what another client typed: either way both sides now
agree there). A change outside the window is the editor's own and applies to the buffer, shifted
past the window. A change inside the window that does not shrink it overlaps edits the editor had
not seen yet: with ``applyEdit`` the buffer's text wins there (the next ``applyEdit`` replaces
it, so the editor shows the outcome); without it the editor's text wins (it cannot be told
otherwise, as at ``didOpen``). At most one ``applyEdit`` per editor and document is in flight;
another is sent once the editor has reported a new version, so a stale edit that the editor
rejects (Neovim checks ``textDocument.version``) is resent against its new text, never repeated
against the same one.

``didOpen`` of a document the daemon already holds with other text replaces the buffer's text
with the editor's (what the user sees is the truth): one ``set_text`` revision that subscribers
and other editors receive like any change.

**Files.** A file's document keeps the ``FileStamp`` of the bytes it was loaded from or saved
as. Saves and disk checks of one document hold its ``disk_lock``, so a watcher event caused by
our own save is checked against the stamp that save returned (``UNCHANGED``), never against the
one before. The watcher is one ``watchfiles.awatch`` over the set of directories holding open
files, not recursive; when that set changes it is restarted, and every open file is checked
once the new watcher is armed, so a change while none was watching is not missed. On a change,
``files.check(path, stamp)``:

- ``UNCHANGED``/``TOUCHED``: keep the fresher stamp;
- ``MODIFIED``: read it; if it holds the buffer's very text (an editor saved it), mark the buffer
  saved; else if the buffer is clean, reload it (one ``set_text`` revision, so subscribers get
  an ordinary ``didChange``) and send ``didChangeOnDisk {status: "reloaded"}``; else keep the
  user's text and send ``{status: "conflict"}`` once per version of the file;
- ``DELETED``: keep the text, mark it unsaved, send ``{status: "deleted"}``.

``didChangeOnDisk`` goes to the document's subscribers; the bus gets ``buffer/changedOnDisk``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NamedTuple
from urllib.parse import unquote, urlsplit

from symphony import editor_core as core
from symphony.editor_core import (
    Buffer,
    ChangeRecord,
    FileStamp,
    PositionEdit,
    Rope,
    TextEdit,
    files,
)
from symphony.protocol import (
    BufferNotFound,
    FileConflict,
    FileError,
    InvalidEdit,
    InvalidParams,
    PermissionDenied,
    RevisionConflict,
    RpcError,
    TextChange,
    TextDocumentContentChangeEvent,
    UnknownRevision,
)
from symphony.protocol._methods import WORKSPACE_APPLY_EDIT
from symphony.protocol._models import (
    ApplyWorkspaceEditParams,
    OptionalVersionedTextDocumentIdentifier,
    Position,
    Range,
    TextDocumentEdit,
    WorkspaceEdit,
)
from symphony.protocol._models import TextEdit as LspTextEdit
from symphony.server import TransportClosed, get_logger, to_thread

if TYPE_CHECKING:
    from symphony.server import Connection, Daemon, Event

__all__ = [
    "APPLY_EDIT_TIMEOUT",
    "ECHO_REACH",
    "LOAD_IN_THREAD_BYTES",
    "Document",
    "EditorView",
    "Workspace",
    "file_uri",
    "guess_language",
    "rpc_error",
    "uri_path",
]

#: Files larger than this are read in a worker thread (a smaller read costs less than the hop).
LOAD_IN_THREAD_BYTES: Final = 1 << 20
#: Seconds an editor has to answer ``workspace/applyEdit`` before we stop waiting.
APPLY_EDIT_TIMEOUT: Final = 30.0
#: How far (code points) outside the window an editor change is still tested as an echo: an
#: editor that diffs texts may report an insertion anywhere in a run of equal characters.
ECHO_REACH: Final = 4096
# The watcher: changes are grouped for at most WATCH_DEBOUNCE_MS, and yielded once none came
# for WATCH_STEP_MS (also how often a stop is noticed).
WATCH_DEBOUNCE_MS: Final = 400
WATCH_STEP_MS: Final = 30
#: Seconds before watching again after the watcher failed with no change to the directories.
WATCH_RETRY: Final = 2.0

_SCHEME: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
#: The origin of revisions made by reloading a file from disk.
DISK_ORIGIN: Final = {"clientId": "daemon", "name": "disk"}

_LANGUAGES: Final = {
    ".py": "python", ".pyi": "python", ".js": "javascript", ".mjs": "javascript",
    ".cjs": "javascript", ".jsx": "javascriptreact", ".ts": "typescript",
    ".tsx": "typescriptreact", ".rs": "rust", ".go": "go", ".c": "c", ".h": "c",
    ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hpp": "cpp", ".hh": "cpp", ".java": "java",
    ".kt": "kotlin", ".swift": "swift", ".rb": "ruby", ".php": "php", ".lua": "lua",
    ".sh": "shellscript", ".bash": "shellscript", ".zsh": "shellscript", ".md": "markdown",
    ".markdown": "markdown", ".rst": "restructuredtext", ".json": "json", ".jsonc": "jsonc",
    ".yaml": "yaml", ".yml": "yaml", ".toml": "toml", ".ini": "ini", ".cfg": "ini",
    ".xml": "xml", ".html": "html", ".htm": "html", ".css": "css", ".scss": "scss",
    ".sql": "sql", ".vim": "vim", ".tex": "latex", ".txt": "plaintext", ".cs": "csharp",
    ".hs": "haskell", ".ml": "ocaml", ".ex": "elixir", ".exs": "elixir", ".erl": "erlang",
    ".clj": "clojure", ".scala": "scala", ".r": "r", ".dart": "dart", ".zig": "zig",
    ".nix": "nix", ".dockerfile": "dockerfile", ".mk": "makefile",
}  # fmt: skip
_LANGUAGE_OF_NAME: Final = {"Makefile": "makefile", "Dockerfile": "dockerfile"}


# -- URIs, paths, languages ----------------------------------------------------------------------


def file_uri(path: str) -> str:
    """The ``file:`` URI of an absolute path (percent-encoded as editors do)."""
    return Path(path).as_uri()


def uri_path(uri: str) -> str | None:
    """The real path a ``file:`` URI names, or None for another scheme (or a remote host)."""
    if not uri.startswith("file:"):
        return None
    parts = urlsplit(uri)
    if parts.netloc not in ("", "localhost"):
        return None
    path = unquote(parts.path)
    if not path.startswith("/"):
        return None
    return os.path.realpath(path)


def guess_language(name: str) -> str:
    """An LSP language id from a file name's extension (``plaintext`` when unknown)."""
    base = name.rsplit("/", 1)[-1]
    known = _LANGUAGE_OF_NAME.get(base)
    if known is not None:
        return known
    dot = base.rfind(".")
    return _LANGUAGES.get(base[dot:].lower(), "plaintext") if dot > 0 else "plaintext"


def rpc_error(exc: BaseException, path: str | None = None) -> RpcError:
    """The protocol error for an editor-core or operating-system error (this layer's boundary)."""
    if isinstance(exc, RpcError):
        return exc
    if isinstance(exc, core.RevisionConflict):
        return RevisionConflict(str(exc), current_revision=exc.current_revision)
    if isinstance(exc, core.UnknownRevision):
        return UnknownRevision(
            str(exc), revision=exc.revision, current_revision=exc.current_revision
        )
    if isinstance(exc, core.InvalidEdit):
        return InvalidEdit(str(exc))
    if isinstance(exc, core.FileConflict):
        return FileConflict(str(exc), path=exc.path)
    if isinstance(exc, core.FileDecodeError):
        data = {"path": exc.path, "encoding": exc.encoding, "byteOffset": exc.byte_offset}
        return FileError(str(exc), data)
    if isinstance(exc, core.FileError):
        return FileError(str(exc), path=path)
    if isinstance(exc, PermissionError):
        where = exc.filename or path
        return PermissionDenied(f"{where}: permission denied", {"path": where})
    if isinstance(exc, OSError):
        where = exc.filename or path
        return FileError(f"{where}: {exc.strerror or exc}", path=where)
    return FileError(str(exc), path=path)


def _invalid(field_name: str, message: str) -> InvalidParams:
    return InvalidParams(message, [{"type": "value_error", "loc": [field_name], "msg": message}])


# -- where an editor's text differs from the buffer's ---------------------------------------------


class _Window(NamedTuple):
    """The one region where an editor's text ``x`` differs from the buffer's text ``b``.

    Invariants: ``x[:lo] == b[:lo]``; ``x[x_hi:] == b[b_hi:]``; so ``b`` is ``x`` with
    ``x[lo:x_hi]`` replaced by ``b[lo:b_hi]``.
    """

    lo: int
    x_hi: int
    b_hi: int

    @property
    def size(self) -> int:
        return self.x_hi - self.lo + self.b_hi - self.lo


def _compose(window: _Window | None, record: ChangeRecord) -> _Window | None:
    """The window after the buffer moved on by ``record`` (the editor's text unchanged)."""
    changes = record.changes  # descending and disjoint: [0] ends last, [-1] starts first
    if not changes:
        return window
    low, high = changes[-1].start, changes[0].end
    delta = sum(change.delta for change in changes)
    if window is None:
        return _Window(low, high, high + delta)
    # Past max(b_hi, high) both texts are still the old buffer's suffix.
    mark = max(window.b_hi, high)
    return _Window(min(window.lo, low), window.x_hi + mark - window.b_hi, mark + delta)


def _absorb(window: _Window, start: int, end: int, delta: int) -> _Window:
    """The window after the editor replaced ``start..end`` of its text (the buffer unchanged)."""
    high = max(window.x_hi, end)
    return _Window(min(window.lo, start), high + delta, window.b_hi + high - window.x_hi)


def _trim(x: Rope, b: Rope, window: _Window) -> _Window | None:
    """The smallest window between ``x`` and ``b`` inside ``window``; None when they are equal.

    Its ends never split a ``\\r\\n`` pair: LSP positions cannot point between the two.
    """
    xs = x.slice(window.lo, window.x_hi)
    bs = b.slice(window.lo, window.b_hi)
    if xs == bs:
        return None
    prefix = _common_prefix(xs, bs)
    limit = min(len(xs), len(bs)) - prefix
    suffix = min(_common_prefix(xs[::-1], bs[::-1]), limit)
    lo, x_hi, b_hi = window.lo + prefix, window.x_hi - suffix, window.b_hi - suffix
    if lo > 0 and x.slice(lo - 1, lo) == "\r":
        lo -= 1
    if x_hi < len(x) and x.slice(x_hi, x_hi + 1) == "\n":
        x_hi, b_hi = x_hi + 1, b_hi + 1
    return _Window(lo, x_hi, b_hi)


def _common_prefix(a: str, b: str) -> int:
    """Length of the common prefix: bisect on slice equality (C comparisons, not a char loop)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


# -- an editor's view of a document --------------------------------------------------------------


@dataclass(slots=True)
class _Sent:
    """The last ``applyEdit`` sent to an editor, until its echo arrives or it is dropped.

    ``window`` goes from the editor's text when it was sent (still its ``shadow``) to ``rope``,
    the buffer's text then, which the editor has once it applied the edit; ``since`` from
    ``rope`` to the buffer's text now (``None``: the buffer has not moved since).
    """

    window: _Window
    rope: Rope
    since: _Window | None = None


@dataclass(eq=False, slots=True)
class EditorView:
    """One LSP editor's copy of a document (see "LSP editors" in the module docstring).

    ``connection`` is the editor's connection, ``uri`` its own spelling of the document's URI
    (what ``applyEdit`` must name), ``version`` the last version it reported, ``encoding`` its
    position encoding. ``applies_edits``: it advertised ``workspace.applyEdit``; ``versioned``:
    it takes ``documentChanges`` (with the version it must still be at).

    Invariants:
        - ``shadow`` is the editor's text at ``version`` as its notifications describe it;
        - ``window`` is None when ``shadow`` has the buffer's text; otherwise it is a
          ``_Window`` from ``shadow`` to the buffer's text;
        - ``sent``, when set, was computed from the current ``shadow`` (any change of the
          editor's clears it or is its echo; so does an answer other than ``applied: true``);
        - ``echo_due`` (never when ``versioned``) from sending an ``applyEdit`` until its
          echo is in ``shadow``: seen as such, or the window closed, or a ``didChange`` came
          after the editor said it applied it (``replied``), or it was not applied.
        - ``outstanding`` while an ``applyEdit`` to the editor awaits its answer (at most one).
    """

    connection: Any
    uri: str
    version: int
    shadow: Rope
    encoding: str = "utf-16"
    applies_edits: bool = False
    versioned: bool = False
    window: _Window | None = None
    sent: _Sent | None = None
    outstanding: bool = False
    sent_version: int | None = None
    echo_due: bool = False
    replied: bool = False
    closed: bool = False

    @property
    def in_sync(self) -> bool:
        """Whether the editor has the buffer's text and nothing of ours is on its way to it
        (then its positions are the buffer's)."""
        return self.window is None and self.sent is None

    @property
    def may_send(self) -> bool:
        """Whether another ``applyEdit`` may go now: the editor lacks changes, none is in
        flight, it reported a new version since the last one, and (editors that apply
        unversioned edits whatever their text) the echo of the last one was seen or the edit
        was refused: sent again before that, the same text would land twice."""
        return (
            self.window is not None
            and self.applies_edits
            and not self.outstanding
            and not self.closed
            and self.sent_version != self.version
            and not self.echo_due
        )

    def answered(self, applied: bool) -> None:
        """The editor answered the ``applyEdit`` in flight (``applied``), or never will
        (False): one it did not apply has no echo coming."""
        self.outstanding = False
        if not applied:
            self.sent, self.echo_due = None, False
        elif self.echo_due:
            self.replied = True

    def notified(self) -> None:
        """A ``didChange`` notification was taken in. An editor that applies our edits
        before it answers reports its changes in order, so one that comes after its
        ``applied: true`` holds the echo; and once the window is closed none can be due."""
        if self.replied or self.window is None:
            self.echo_due = self.replied = False

    def remote(self, record: ChangeRecord) -> None:
        """The buffer moved on by a change the editor did not make."""
        self.window = _compose(self.window, record)
        if self.sent is not None:
            self.sent.since = _compose(self.sent.since, record)

    def editor_change(
        self, buffer: Buffer, start: int, end: int, text: str, origin: object
    ) -> ChangeRecord | None:
        """The editor replaced ``start..end`` (code points of ``shadow``) with ``text``.

        Applies what is the editor's own to ``buffer`` and returns that revision's record (the
        caller fans it out), or None when nothing reached the buffer (an echo of ours, or an
        edit that overlapped changes the editor had not seen, which the buffer's text wins).
        """
        x, b = self.shadow, buffer.rope
        delta = len(text) - (end - start)
        after = x.replace(start, end, text)
        sent, self.sent = self.sent, None
        if (
            sent is not None
            and _trim(after, sent.rope, _absorb(sent.window, start, end, delta)) is None
        ):
            # The echo of what we sent: the editor has the buffer's text of then.
            self.shadow, self.window = sent.rope, sent.since
            if sent.since is None:
                self.shadow = b
            self.echo_due = self.replied = False
            return None
        # Otherwise the editor moved on without it: a versioned editor rejects it; one that
        # takes unversioned edits applies it to its new text, and its echo, still to come
        # (perhaps as several changes, e.g. Neovim's at the end of a buffer), is absorbed as
        # the editor typing what the buffer has (``echo_due`` holds the next edit back).
        return self._own_change(buffer, start, end, text, after, origin)

    def _own_change(
        self, buffer: Buffer, start: int, end: int, text: str, after: Rope, origin: object
    ) -> ChangeRecord | None:
        """``editor_change`` for a change that is not the echo of an edit we sent."""
        x, b = self.shadow, buffer.rope
        delta = len(text) - (end - start)
        window = None if self.window is None else _trim(x, b, self.window)
        if window is None:  # in sync: the editor's offsets are the buffer's
            record = buffer.apply([TextEdit(start, end, text)], origin=origin)
            self.shadow, self.window = buffer.rope, None
            return record
        # Near the window the change may bring both texts closer (the editor typed what another
        # client typed): tested by content, not by shape.
        near = start <= window.x_hi + ECHO_REACH and end + ECHO_REACH >= window.lo
        absorbed = _trim(after, b, _absorb(window, start, end, delta)) if near else window
        if near and (absorbed is None or absorbed.size < window.size):
            self._take(after, b, absorbed)
            return None
        if end <= window.lo or start >= window.x_hi:  # the editor's own, outside the window
            shift = 0 if end <= window.lo else window.b_hi - window.x_hi
            record = buffer.apply([TextEdit(start + shift, end + shift, text)], origin=origin)
            self.shadow = after
            if end <= window.lo:
                self.window = _Window(window.lo + delta, window.x_hi + delta, window.b_hi + delta)
            else:
                self.window = window
            return record
        # It overlaps changes the editor has not seen yet (so it is near: `absorbed` is set).
        if absorbed is not None and not self.applies_edits:
            # It cannot be told otherwise: the buffer takes the editor's text in the window.
            replacement = after.slice(absorbed.lo, absorbed.x_hi)
            record = buffer.apply(
                [TextEdit(absorbed.lo, absorbed.b_hi, replacement)], origin=origin
            )
            self.shadow, self.window = buffer.rope, None
            return record
        self._take(after, b, absorbed)
        return None

    def _take(self, after: Rope, b: Rope, window: _Window | None) -> None:
        if window is None:
            self.shadow, self.window = b, None
        else:
            self.shadow, self.window = after, window

    def replace_all(self, buffer: Buffer, text: str, origin: object) -> ChangeRecord | None:
        """The editor sent its whole text (a change without a range)."""
        if self.in_sync:
            record = buffer.set_text(text, origin=origin)
            self.shadow = buffer.rope
            return record
        return self.editor_change(buffer, 0, len(self.shadow), text, origin)

    def next_edit(self, buffer: Buffer) -> tuple[int, int, str] | None:
        """The edit to send that brings the editor to the buffer's text, ``(start, end, text)``
        in ``shadow``, remembered as sent; None when it has the buffer's text already."""
        if self.window is None:
            return None
        window = _trim(self.shadow, buffer.rope, self.window)
        self.window = window
        if window is None:
            self.shadow = buffer.rope
            return None
        self.sent = _Sent(window, buffer.rope)
        self.echo_due, self.replied = not self.versioned, False
        return window.lo, window.x_hi, buffer.rope.slice(window.lo, window.b_hi)


# -- documents -----------------------------------------------------------------------------------


@dataclass(eq=False, slots=True)
class Document:
    """One buffer in the store, with what the store knows about it.

    ``path`` is the real path of its file (None: no file yet); ``stamp`` the file as last read
    or written (None: not on disk, or deleted since); ``encoding``/``bom`` how to write it.
    ``held``: the API holds it open; ``editors``: LSP editors that have it open;
    ``subscribers``: connections receiving ``symphony/buffer/didChange`` (in subscription order).
    ``notice``: what was last reported about the file (``"deleted"``, or the SHA-256 of a
    version in conflict), so each is reported once.
    """

    uri: str
    buffer: Buffer
    language_id: str
    path: str | None = None
    stamp: FileStamp | None = None
    encoding: str = "utf-8"
    bom: bool = False
    held: bool = False
    editors: dict[Any, EditorView] = field(default_factory=dict)
    subscribers: dict[Any, None] = field(default_factory=dict)
    aliases: set[str] = field(default_factory=set)
    notice: str | None = None
    closed: bool = False
    disk_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def dirty(self) -> bool:
        """Unsaved changes: differs from its file, or (no file) holds text saved nowhere."""
        if self.path is None:
            return len(self.buffer.rope) > 0
        return self.buffer.dirty


@dataclass(eq=False, slots=True)
class _Client:
    """What the store keeps per connection, to let go of it when the connection ends."""

    connection: Any
    subscribed: set[Document] = field(default_factory=set)
    editing: set[Document] = field(default_factory=set)


def origin_of(connection: Connection) -> dict[str, str]:
    """``symphony/buffer/didChange``'s ``origin`` for changes made by ``connection``."""
    session = connection.session
    if session.client_name is None:
        return {"clientId": session.client_id}
    return {"clientId": session.client_id, "name": session.client_name}


def _position(rope: Rope, offset: int, encoding: str) -> Position:
    line, character = rope.position_at(offset, encoding)
    return Position.model_construct(line=line, character=character)


def _change_json(edit: PositionEdit) -> dict[str, Any]:
    (sl, sc), (el, ec) = edit.start, edit.end
    return {
        "range": {"start": {"line": sl, "character": sc}, "end": {"line": el, "character": ec}},
        "text": edit.text,
    }


# -- the store -----------------------------------------------------------------------------------


class Workspace:
    """The daemon's buffer store (one per daemon, in ``daemon.services``; see module docstring).

    Use ``Workspace.of(daemon)``: the first call makes it, provides it, points
    ``daemon.buffer_count`` at it and starts its background work (the file watcher, requests to
    editors) through ``daemon.start_service``.

    Invariants:
        - ``_docs`` maps each open document's URI to it; ``_by_path`` each bound file's real
          path to its document; ``_aliases`` other spellings of their URIs; none holds a closed
          document;
        - a connection is in a document's ``subscribers``/``editors`` exactly when the document
          is in that connection's ``_Client.subscribed``/``editing``.
    """

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.log = get_logger("symphony.buffers")
        self._docs: dict[str, Document] = {}
        self._by_path: dict[str, Document] = {}
        self._aliases: dict[str, Document] = {}
        self._clients: dict[str, _Client] = {}
        self._untitled = itertools.count(1)
        self._tg: asyncio.TaskGroup | None = None
        self._stopping = False
        self._dirs_changed = asyncio.Event()
        self._watch_stop: asyncio.Event | None = None
        self._watching: frozenset[str] = frozenset()
        self._requests: set[asyncio.Task[None]] = set()
        daemon.bus.subscribe(["connection/closed"], self._on_connection_closed)
        daemon.buffer_count = self.__len__
        self.background = daemon.start_service(self.run)
        if not self.background:
            self.log.info("daemon not running: no file watching, no applyEdit to editors")

    @classmethod
    def of(cls, daemon: Daemon) -> Workspace:
        """The daemon's store, made on first use."""
        store = daemon.services.find(cls)
        if store is None:
            store = cls(daemon)
            daemon.services.provide(cls, store)
        return store

    def __len__(self) -> int:
        return len(self._docs)

    @property
    def documents(self) -> list[Document]:
        """Every open document, by URI."""
        return [self._docs[uri] for uri in sorted(self._docs)]

    # -- finding ---------------------------------------------------------------------------------

    def find(self, uri: str) -> Document | None:
        """The open document with this URI (or another spelling of it), or None."""
        doc = self._docs.get(uri) or self._aliases.get(uri)
        if doc is not None:
            return doc
        path = uri_path(uri)
        if path is None:
            return None
        doc = self._by_path.get(path)
        if doc is not None:
            doc.aliases.add(uri)
            self._aliases[uri] = doc
        return doc

    def get(self, uri: str) -> Document:
        """The open document with this URI; ``BufferNotFound`` (-32900) if none."""
        doc = self._docs.get(uri) or self.find(uri)
        if doc is None:
            raise BufferNotFound(f"no open buffer has the URI {uri}", {"uri": uri})
        return doc

    def resolve_path(self, path: str) -> str:
        """The real path of ``path`` (relative to the daemon's workspace)."""
        return os.path.realpath(os.path.join(self.daemon.workspace, path))

    # -- opening ---------------------------------------------------------------------------------

    async def open(
        self,
        connection: Connection,
        *,
        uri: str | None,
        path: str | None,
        text: str | None,
        language_id: str | None,
    ) -> Document:
        """``symphony/buffer/open``: the document for a path, a URI or untitled text, held by
        the API. ``text`` for an open document replaces its text (one revision)."""
        if uri is not None and not _SCHEME.match(uri):
            raise _invalid("uri", f"not a URI: {uri!r} (give a path as `path`)")
        real = None
        if path is not None:
            real = self.resolve_path(path)
            if uri is not None and uri_path(uri) != real:
                raise _invalid("uri", f"uri {uri} and path {path} name different documents")
        elif uri is not None and self.find(uri) is None:
            real = uri_path(uri)
        doc: Document | None
        if real is not None:
            doc = self._by_path.get(real)
            if doc is None:
                doc, made = await self._open_file(real, text, language_id)
                if made:
                    text = None  # it holds that text already
        elif uri is not None:
            doc = self.find(uri)
            if doc is None:
                if text is None:
                    raise BufferNotFound(
                        f"no open buffer has the URI {uri} (give text to make one)", {"uri": uri}
                    )
                doc = self._add(Document(uri, Buffer(text), language_id or guess_language(uri)))
                text = None
        else:
            assert text is not None  # the params model requires one of uri, path, text
            doc = self._add(
                Document(self._untitled_uri(), Buffer(text), language_id or "plaintext")
            )
            text = None
        if text is not None and text != doc.buffer.text:
            record = doc.buffer.set_text(text, origin=connection.session.client_id)
            self._changed(doc, record, origin_of(connection))
        if language_id is not None:
            doc.language_id = language_id
        doc.held = True
        return doc

    def _untitled_uri(self) -> str:
        while True:
            uri = f"untitled:Untitled-{next(self._untitled)}"
            if uri not in self._docs:
                return uri

    async def _open_file(
        self, real: str, text: str | None, language_id: str | None
    ) -> tuple[Document, bool]:
        """Load ``real`` into a new document holding ``text`` if given (an absent file is an
        error unless it is). Returns the document and whether it is new: another client may
        have opened the file while we read it."""
        try:
            loaded: files.LoadedFile | None = await _load(real)
        except FileNotFoundError:
            if text is None:
                raise FileError(
                    f"{real}: no such file (give text to make a buffer for a new file)",
                    path=real,
                ) from None
            loaded = None
        except (OSError, core.FileError) as exc:
            raise rpc_error(exc, real) from None
        existing = self._by_path.get(real)
        if existing is not None:
            return existing, False
        language = language_id or guess_language(real)
        if loaded is None:
            doc = Document(file_uri(real), Buffer(text or ""), language, path=real)
            doc.buffer.mark_unsaved()
        else:
            doc = Document(
                file_uri(real),
                Buffer(loaded.text),
                language,
                path=real,
                stamp=loaded.stamp,
                encoding=loaded.encoding,
                bom=loaded.bom,
            )
            if text is not None and text != loaded.text:
                doc.buffer.set_text(text)
        return self._add(doc), True

    def _add(self, doc: Document) -> Document:
        self._docs[doc.uri] = doc
        if doc.path is not None:
            self._by_path[doc.path] = doc
            self._update_watch()
        self.daemon.bus.publish(
            "buffer/opened",
            {"uri": doc.uri, "revision": doc.buffer.revision, "languageId": doc.language_id},
        )
        return doc

    # -- editing ---------------------------------------------------------------------------------

    def edit(
        self,
        connection: Connection,
        doc: Document,
        changes: Iterable[TextChange],
        base_revision: int | None,
    ) -> int:
        """Apply an API client's batch (ranges in its encoding), fan the revision out, and
        return it."""
        session = connection.session
        buffer, encoding = doc.buffer, session.position_encoding
        try:
            edits: list[TextEdit | PositionEdit]
            if base_revision is None or base_revision == buffer.revision:
                edits = _resolve(buffer.rope, changes, encoding)
            else:  # positions in an older text: the core resolves them there
                edits = [
                    PositionEdit(
                        (change.range.start.line, change.range.start.character),
                        (change.range.end.line, change.range.end.character),
                        change.text,
                    )
                    for change in changes
                ]
            record = buffer.apply(
                edits, encoding=encoding, base_revision=base_revision, origin=session.client_id
            )
        except core.EditorCoreError as exc:
            raise rpc_error(exc) from None
        self._changed(doc, record, origin_of(connection))
        return record.revision

    def undo(self, connection: Connection, doc: Document, *, redo: bool = False) -> int:
        """Undo (or redo) the last group; the buffer's revision after it."""
        client_id = connection.session.client_id
        buffer = doc.buffer
        record = buffer.redo(origin=client_id) if redo else buffer.undo(origin=client_id)
        if record is not None:
            self._changed(doc, record, origin_of(connection))
            self._release_if_orphan(doc)
        return buffer.revision

    def _changed(
        self,
        doc: Document,
        record: ChangeRecord,
        origin: dict[str, str],
        source: EditorView | None = None,
    ) -> None:
        """Fan one new revision out: subscribers, the bus, the other editors (in this order,
        synchronously, right after the core made it: see "Changes" in the module docstring)."""
        if doc.subscribers:
            uri, revision = doc.uri, record.revision

            def params_for(encoding: str) -> dict[str, Any]:
                changes = [_change_json(c) for c in record.content_changes(encoding)]
                return {"uri": uri, "revision": revision, "changes": changes, "origin": origin}

            self.daemon.broadcast(
                doc.subscribers, "symphony/buffer/didChange", params_for, droppable=False
            )
        self.daemon.bus.publish(
            "buffer/changed",
            {
                "uri": doc.uri,
                "revision": record.revision,
                "kind": record.kind.value,
                "origin": origin,
            },
        )
        if doc.editors and record.changes:
            for view in doc.editors.values():
                if view is not source:
                    view.remote(record)
                    self._sync_editor(doc, view)

    # -- subscriptions ---------------------------------------------------------------------------

    def subscribe(self, connection: Connection, doc: Document) -> None:
        doc.subscribers[connection] = None
        connection.session.buffer_subscriptions.add(doc.uri)
        self._client(connection).subscribed.add(doc)

    def unsubscribe(self, connection: Connection, doc: Document) -> None:
        doc.subscribers.pop(connection, None)
        connection.session.buffer_subscriptions.discard(doc.uri)
        client = self._clients.get(connection.session.client_id)
        if client is not None:
            client.subscribed.discard(doc)

    def _client(self, connection: Connection) -> _Client:
        client_id = connection.session.client_id
        client = self._clients.get(client_id)
        if client is None:
            client = self._clients[client_id] = _Client(connection)
        return client

    def _on_connection_closed(self, event: Event) -> None:
        client = self._clients.pop(event.data["clientId"], None)
        if client is None:
            return
        connection = client.connection
        for doc in client.subscribed:
            doc.subscribers.pop(connection, None)
        for doc in client.editing:
            view = doc.editors.pop(connection, None)
            if view is not None:
                view.closed = True
            self._release_if_orphan(doc)

    # -- closing ---------------------------------------------------------------------------------

    def close(self, doc: Document, *, discard: bool) -> bool:
        """``symphony/buffer/close``: drop the API's hold; True if the document closed.

        A document that editors still have open stays open for them. One with unsaved changes
        that nobody else holds closes only with ``discard`` (else ``InvalidParams``).
        """
        if doc.editors:
            doc.held = False
            return False
        dirty = doc.dirty
        if dirty and not discard:
            raise _invalid(
                "discard",
                f"{doc.uri} has unsaved changes: save it, or close it with discard: true",
            )
        doc.held = False
        self._close(doc, discarded=dirty)
        return True

    def _release_if_orphan(self, doc: Document) -> None:
        """Close a document nobody holds, unless it has unsaved changes (it waits for them)."""
        if doc.closed or doc.held or doc.editors:
            return
        if doc.dirty:
            self.log.info("buffer kept: unsaved changes and no holder", uri=doc.uri)
            return
        self._close(doc, discarded=False)

    def _close(self, doc: Document, *, discarded: bool) -> None:
        doc.closed = True
        del self._docs[doc.uri]
        if doc.path is not None and self._by_path.get(doc.path) is doc:
            del self._by_path[doc.path]
            self._update_watch()
        for alias in doc.aliases:
            self._aliases.pop(alias, None)
        for connection in doc.subscribers:
            connection.session.buffer_subscriptions.discard(doc.uri)
            client = self._clients.get(connection.session.client_id)
            if client is not None:
                client.subscribed.discard(doc)
        doc.subscribers.clear()
        for connection, view in doc.editors.items():
            view.closed = True
            client = self._clients.get(connection.session.client_id)
            if client is not None:
                client.editing.discard(doc)
        doc.editors.clear()
        self.daemon.bus.publish("buffer/closed", {"uri": doc.uri, "discarded": discarded})

    # -- saving ----------------------------------------------------------------------------------

    async def save(
        self, connection: Connection, doc: Document, path: str | None, *, overwrite: bool
    ) -> tuple[int, str]:
        """``symphony/buffer/save``: ``(revision saved, path written)``.

        To its own file: atomically, checked against the stamp (``FileConflict`` if the file
        changed since it was read, unless ``overwrite``). To another ``path``: a buffer without
        a file is bound to it; a file's buffer writes a copy there and stays bound to its own.
        """
        target = None if path is None else self.resolve_path(path)
        if target is None or target == doc.path:
            if doc.path is None:
                raise _invalid("path", f"{doc.uri} has no file yet: give a path to save it to")
            return await self._save_own(doc, overwrite=overwrite)
        if doc.path is None:
            other = self._by_path.get(target)
            if other is not None:
                raise FileConflict(f"{target}: already open as {other.uri}", path=target)
            doc.path = target  # reserved now: nobody else can bind it while we write
            self._by_path[target] = doc
            try:
                return await self._save_own(doc, overwrite=True)
            except BaseException:
                if doc.stamp is None:
                    doc.path = None
                    if self._by_path.get(target) is doc:
                        del self._by_path[target]
                raise
            finally:
                self._update_watch()
        rope, revision = doc.buffer.rope, doc.buffer.revision
        try:
            await to_thread(files.save, target, rope.chunks(), encoding=doc.encoding, bom=doc.bom)
        except (OSError, core.FileError) as exc:
            raise rpc_error(exc, target) from None
        return revision, target

    async def _save_own(self, doc: Document, *, overwrite: bool) -> tuple[int, str]:
        path = doc.path
        assert path is not None
        async with doc.disk_lock:
            buffer = doc.buffer
            rope, revision = buffer.rope, buffer.revision
            expected = None if overwrite else doc.stamp
            try:
                stamp = await to_thread(
                    files.save,
                    path,
                    rope.chunks(),
                    encoding=doc.encoding,
                    bom=doc.bom,
                    expected=expected,
                )
            except (OSError, core.FileError) as exc:
                raise rpc_error(exc, path) from None
            doc.stamp = stamp
            doc.notice = None
            if not doc.closed:
                with contextlib.suppress(core.UnknownRevision):
                    buffer.mark_saved(revision)
        self.daemon.bus.publish(
            "buffer/saved", {"uri": doc.uri, "revision": revision, "path": path}
        )
        self._release_if_orphan(doc)
        return revision, path

    # -- LSP editors -----------------------------------------------------------------------------

    async def editor_opened(
        self,
        connection: Connection,
        uri: str,
        language_id: str,
        version: int,
        text: str,
        *,
        applies_edits: bool,
        versioned: bool,
    ) -> Document:
        """``textDocument/didOpen``: the editor's text becomes the buffer's (module docstring)."""
        doc = self.find(uri)
        if doc is None:
            real = uri_path(uri)
            if real is not None:
                loaded = await self._load_for_editor(real)
                doc = self._by_path.get(real)
                if doc is None:
                    doc = self._new_file_doc(real, loaded, language_id, text)
            else:
                doc = self._add(Document(uri, Buffer(text), language_id))
        if doc.uri != uri and uri not in doc.aliases:
            doc.aliases.add(uri)
            self._aliases[uri] = doc
        if text != doc.buffer.text:
            record = doc.buffer.set_text(text, origin=connection.session.client_id)
            self._changed(doc, record, origin_of(connection))
        previous = doc.editors.get(connection)
        if previous is not None:
            previous.closed = True
        doc.editors[connection] = EditorView(
            connection,
            uri,
            version,
            doc.buffer.rope,
            encoding=connection.session.position_encoding,
            applies_edits=applies_edits,
            versioned=versioned,
        )
        self._client(connection).editing.add(doc)
        return doc

    async def _load_for_editor(self, real: str) -> files.LoadedFile | None:
        """The file behind an editor's document, or None (absent, or unreadable: logged)."""
        try:
            return await _load(real)
        except FileNotFoundError:
            return None
        except (OSError, core.FileError) as exc:
            self.log.warning("cannot read the file behind an editor's document", error=str(exc))
            return None

    def _new_file_doc(
        self, real: str, loaded: files.LoadedFile | None, language_id: str, text: str
    ) -> Document:
        """A document for an editor's file: the file's text at revision 0 (the editor's text
        follows as a change), or, when the file cannot be read, the editor's, unsaved."""
        if loaded is None:
            doc = Document(file_uri(real), Buffer(text), language_id, path=real)
            doc.buffer.mark_unsaved()
        else:
            doc = Document(
                file_uri(real),
                Buffer(loaded.text),
                language_id,
                path=real,
                stamp=loaded.stamp,
                encoding=loaded.encoding,
                bom=loaded.bom,
            )
        return self._add(doc)

    def editor_changed(
        self,
        connection: Connection,
        uri: str,
        version: int,
        changes: list[TextDocumentContentChangeEvent],
    ) -> None:
        """``textDocument/didChange``: apply what is the editor's own (module docstring)."""
        doc = self.find(uri)
        view = None if doc is None else doc.editors.get(connection)
        if doc is None or view is None:
            self.log.warning("didChange for a document this editor has not opened", uri=uri)
            return
        view.version = version
        origin = origin_of(connection)
        client_id = connection.session.client_id
        buffer = doc.buffer
        encoding = view.encoding
        for change in changes:
            try:
                if change.range is None:
                    record = view.replace_all(buffer, change.text, client_id)
                else:
                    start, end = change.range.start, change.range.end
                    if view.in_sync:  # the common case: straight to the core
                        edit = PositionEdit(
                            (start.line, start.character), (end.line, end.character), change.text
                        )
                        record = buffer.apply([edit], encoding=encoding, origin=client_id)
                        view.shadow = buffer.rope
                    else:
                        shadow = view.shadow
                        low = shadow.offset_at(start.line, start.character, encoding)
                        high = shadow.offset_at(end.line, end.character, encoding)
                        if high < low:
                            raise core.InvalidEdit(f"range {change.range} ends before it starts")
                        record = view.editor_change(buffer, low, high, change.text, client_id)
            except core.EditorCoreError as exc:
                # A change we cannot place: the editor and the buffer may now differ. Tell the
                # log; the next applyEdit (if it takes them) brings the editor back.
                self.log.warning("editor change ignored", uri=uri, error=str(exc))
                continue
            if record is not None:
                self._changed(doc, record, origin, source=view)
        view.notified()
        self._sync_editor(doc, view)

    def editor_closed(self, connection: Connection, uri: str) -> None:
        """``textDocument/didClose``: the editor lets go (the document may close)."""
        doc = self.find(uri)
        if doc is None:
            return
        view = doc.editors.pop(connection, None)
        if view is None:
            return
        view.closed = True
        client = self._clients.get(connection.session.client_id)
        if client is not None:
            client.editing.discard(doc)
        self._release_if_orphan(doc)

    async def editor_saved(self, connection: Connection, uri: str) -> None:
        """``textDocument/didSave``: the editor wrote the file; check it now (not only when the
        watcher says so), so the buffer is marked saved before the next message is read."""
        doc = self.find(uri)
        if doc is not None and doc.path is not None:
            await self.check_disk(doc)

    def _sync_editor(self, doc: Document, view: EditorView) -> None:
        """Send ``applyEdit`` if the editor lacks changes, can take them, and none is in flight
        or it reported a new version since the last one (see the module docstring)."""
        if not view.may_send or self._tg is None or self._stopping:
            return
        view.outstanding = True
        task = self._tg.create_task(self._apply_edit(doc, view))
        self._requests.add(task)
        task.add_done_callback(self._requests.discard)

    async def _apply_edit(self, doc: Document, view: EditorView) -> None:
        applied = False
        try:
            if view.closed or doc.closed:
                return
            # Computed now, not when scheduled: revisions made meanwhile go in the same edit.
            pending = view.next_edit(doc.buffer)
            if pending is None:
                return
            start, end, text = pending
            shadow, encoding = view.shadow, view.encoding
            edit = LspTextEdit(
                range=Range(
                    start=_position(shadow, start, encoding), end=_position(shadow, end, encoding)
                ),
                new_text=text,
            )
            if view.versioned:
                workspace_edit = WorkspaceEdit(
                    document_changes=[
                        TextDocumentEdit(
                            text_document=OptionalVersionedTextDocumentIdentifier(
                                uri=view.uri, version=view.version
                            ),
                            edits=[edit],
                        )
                    ]
                )
            else:
                workspace_edit = WorkspaceEdit(changes={view.uri: [edit]})
            view.sent_version = view.version
            async with asyncio.timeout(APPLY_EDIT_TIMEOUT):
                reply = await view.connection.request(
                    WORKSPACE_APPLY_EDIT,
                    ApplyWorkspaceEditParams(label="symphony", edit=workspace_edit),
                )
            applied = isinstance(reply, dict) and reply.get("applied") is True
            if not applied:
                self.log.info("editor did not apply an edit", uri=view.uri, reply=reply)
        except (RpcError, TransportClosed, TimeoutError) as exc:
            self.log.info("applyEdit failed", uri=view.uri, error=repr(exc))
        finally:
            view.answered(applied)
            if not doc.closed:
                self._sync_editor(doc, view)

    # -- files on disk ---------------------------------------------------------------------------

    async def check_disk(self, doc: Document) -> None:
        """Compare a document's file with its stamp and act on it (module docstring, "Files")."""
        async with doc.disk_lock:
            path = doc.path
            if doc.closed or path is None:
                return
            try:
                if doc.stamp is not None:  # (None: not on disk when we last looked)
                    result = await to_thread(files.check, path, doc.stamp)
                    if result.state in (files.DiskState.UNCHANGED, files.DiskState.TOUCHED):
                        doc.stamp = result.stamp
                        return
                    if result.state is files.DiskState.DELETED:
                        self._file_deleted(doc)
                        return
                    assert result.stamp is not None
                    if doc.notice == result.stamp.sha256:
                        return  # this version's conflict was reported already
                loaded = await to_thread(files.load, path)
            except FileNotFoundError:
                if doc.stamp is not None:
                    self._file_deleted(doc)
                return
            except (OSError, core.FileError) as exc:
                self.log.warning("cannot check a file", path=path, error=str(exc))
                return
            if self._docs.get(doc.uri) is not doc:  # closed while we read
                return
            buffer = doc.buffer
            if loaded.text == buffer.text:  # our very text (an editor saved it): saved
                self._take_stamp(doc, loaded)
                buffer.mark_saved()
                self._release_if_orphan(doc)
                return
            if not doc.dirty and doc.stamp is not None:
                record = buffer.set_text(loaded.text, origin="disk")
                self._take_stamp(doc, loaded)
                buffer.mark_saved()
                self._changed(doc, record, DISK_ORIGIN)
                self._disk_notice(doc, "reloaded")
                return
            if doc.notice != loaded.stamp.sha256:
                doc.notice = loaded.stamp.sha256
                self._disk_notice(doc, "conflict")

    def _take_stamp(self, doc: Document, loaded: files.LoadedFile) -> None:
        doc.stamp = loaded.stamp
        doc.encoding, doc.bom = loaded.encoding, loaded.bom
        doc.notice = None

    def _file_deleted(self, doc: Document) -> None:
        doc.stamp = None
        doc.buffer.mark_unsaved()
        if doc.notice != "deleted":
            doc.notice = "deleted"
            self._disk_notice(doc, "deleted")

    def _disk_notice(self, doc: Document, status: str) -> None:
        params = {
            "uri": doc.uri,
            "path": doc.path,
            "revision": doc.buffer.revision,
            "status": status,
        }
        self.log.info("file changed on disk", **params)
        if doc.subscribers:
            self.daemon.broadcast(
                doc.subscribers,
                "symphony/buffer/didChangeOnDisk",
                lambda encoding: params,
                droppable=False,
            )
        self.daemon.bus.publish("buffer/changedOnDisk", params)

    # -- background work: the watcher and requests to editors -----------------------------------

    async def run(self) -> None:
        """The store's background work, for the daemon's lifetime (``Daemon.start_service``)."""
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                tg.create_task(self._watch())
                for doc in list(self._docs.values()):  # editors that lagged before we ran
                    for view in list(doc.editors.values()):
                        self._sync_editor(doc, view)
                await self.daemon.until_stopping()
                self._stopping = True
                self._dirs_changed.set()
                if self._watch_stop is not None:
                    self._watch_stop.set()
                for task in list(self._requests):
                    task.cancel()
        except Exception:
            self.log.exception("buffer store background work failed")
        finally:
            self._tg = None

    def _directories(self) -> frozenset[str]:
        return frozenset(os.path.dirname(path) for path in self._by_path)

    def _update_watch(self) -> None:
        """The set of files changed: restart the watcher if its directories changed."""
        if self._directories() != self._watching:
            self._dirs_changed.set()
            if self._watch_stop is not None:
                self._watch_stop.set()

    async def _watch(self) -> None:
        while not self._stopping:
            self._dirs_changed.clear()
            # Made before anything awaits: a stop or a change of directories from now on sets it.
            stop = self._watch_stop = asyncio.Event()
            directories = self._directories()
            watched = await to_thread(_existing_directories, directories)
            self._watching = directories
            if stop.is_set():
                continue
            if not watched:
                await self._dirs_changed.wait()
                continue
            from watchfiles import awatch  # off the startup path: loaded with the first file

            try:
                changes_of = awatch(
                    *watched,
                    watch_filter=None,
                    recursive=False,
                    stop_event=stop,
                    debounce=WATCH_DEBOUNCE_MS,
                    step=WATCH_STEP_MS,
                )
                async with contextlib.aclosing(changes_of) as changes:
                    # The first step of `changes` arms the watcher before it awaits anything,
                    # so this check (a task, run after that) sees whatever happened before.
                    assert self._tg is not None
                    self._tg.create_task(self._check_all())
                    async for batch in changes:
                        await self._disk_changed({path for _, path in batch})
            except Exception as exc:
                self.log.warning("file watcher failed", error=repr(exc), directories=watched)
                await self._check_all()
                if not self._dirs_changed.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(WATCH_RETRY):
                            await self._dirs_changed.wait()

    async def _disk_changed(self, paths: set[str]) -> None:
        for path in sorted(paths):
            doc = self._by_path.get(path)
            if doc is not None:
                await self.check_disk(doc)

    async def _check_all(self) -> None:
        for doc in list(self._by_path.values()):
            await self.check_disk(doc)


def _resolve(
    rope: Rope, changes: Iterable[TextChange], encoding: str
) -> list[TextEdit | PositionEdit]:
    """Changes made against the current text, as offsets: what ``resolve_edits`` does, except
    that an insertion's two equal positions are converted once (half the cost of a keystroke on
    a long text, where finding a line is most of the work)."""
    edits: list[TextEdit | PositionEdit] = []
    for change in changes:
        start, end = change.range.start, change.range.end
        low = rope.offset_at(start.line, start.character, encoding)
        if end.line == start.line and end.character == start.character:
            high = low
        else:
            high = rope.offset_at(end.line, end.character, encoding)
            if high < low:
                raise core.InvalidEdit(
                    f"edit {start.line}:{start.character}..{end.line}:{end.character} "
                    f"({encoding}): the end comes before the start"
                )
        edits.append(TextEdit(low, high, change.text))
    return edits


async def _load(path: str) -> files.LoadedFile:
    """``files.load``, in a worker thread for a large file."""
    if os.stat(path).st_size > LOAD_IN_THREAD_BYTES:
        return await to_thread(files.load, path)
    return files.load(path)


def _existing_directories(directories: Iterable[str]) -> list[str]:
    return sorted(d for d in directories if os.path.isdir(d))
