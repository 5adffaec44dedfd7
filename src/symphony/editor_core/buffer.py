"""Buffers: a rope plus revisions, undo, rebasing, and the change records clients are sent.

Theory of operation
-------------------
A :class:`Buffer` holds a persistent :class:`~symphony.editor_core._rope.Rope` and a revision
number. Every batch of edits makes exactly one new revision and one :class:`ChangeRecord`; the
record holds the rope from before and after the batch, which costs nothing because ropes share
structure. The history keeps each revision's edits and the text they removed (not its ropes,
see below). Three things are built from them:

* **Clients.** ``ChangeRecord.changes`` lists the batch in descending start order, so that it can
  be applied one change after another (LSP ``contentChanges`` semantics) *and* every change's
  range is also valid in the pre-edit text: each change only touches text after the ones still to
  come. ``content_changes(encoding)`` turns them into ``(line, character)`` ranges for a client's
  own position encoding.

* **Rebasing.** A client or agent that edited revision ``r`` while others moved the buffer on
  sends its edits with ``base_revision=r``; :meth:`Buffer.rebase` maps them through every record
  since ``r``. The rule for one edit ``e`` against one change ``c`` made since (both half-open
  code-point ranges in the same text):

  - ``c`` ends at or before ``e`` starts: ``e`` shifts by ``c``'s length change. This covers an
    insertion exactly at ``e``'s start, and two insertions at one point (the one already applied
    goes first);
  - ``c`` starts at or after ``e`` ends: ``e`` is unaffected (an insertion at ``e``'s end stays
    after it);
  - otherwise the ranges overlap (``c.start < e.end and e.start < c.end``): ``RevisionConflict``.

  This is the ``transform`` of operational transformation restricted to the cases with a single
  right answer; overlapping edits have none, so the client re-reads and retries.

* **Undo.** Undo is linear and buffer-wide, as in a single-user editor: every content change
  goes through the undo stack (edits push, undo moves a group to the redo stack, redo moves it
  back, and a new edit clears the redo stack), so the group on top of a stack always applies to
  the current text exactly. A group stores its batches *composed* into one batch (the classic OT
  composition), and the inverse of that composed the same way from each batch's inverse, so
  undoing a thousand keystrokes is one revision with one small change. Undo and redo are changes
  like any other: they make revisions and records, and rebasing goes through them.

Typing merges into one undo group by a rule that looks at the edits only (no clock in the core):
a batch is *typing* when every edit inserts one code point that is not a line break, or every
edit deletes one code point that is not a line break; it joins the group of the previous batch
when that batch was typing of the same kind, from the same ``origin``, with as many edits, and
each edit continues where the matching previous one left the cursor (an insert right after the
previous insert; a backspace ending, or a forward delete starting, where the previous delete
was). Anything else starts a new group, as do ``break_undo_group()``, undo, redo and saving.
``with buffer.undo_group():`` puts every batch inside it into one group.

Dirty tracking compares *content states*, not revisions: every batch that changes the text makes
a fresh state token, undo returns to the token the group started from and redo to the one it
ended at. ``dirty`` is "the current token is not the saved one", so undoing back to the saved text
makes the buffer clean, and undoing past it makes it dirty again. Saving a revision that lies
inside a typing group splits the group there, so undo can stop exactly at the saved text.

Line endings are counted (``\\n``, ``\\r\\n``, lone ``\\r``, the LSP 3.17 breaks) once when the
buffer is made and then kept up to date from each edit's neighbourhood, so ``line_endings`` is
O(1). The text is never translated.

Memory and bounds. History entries and undo groups hold edits and removed text, never ropes: a
rope per revision would pin its own copy of the edited leaf and path (about 9 KB per revision on
code with non-ASCII text, measured), where a keystroke's entry is a few hundred bytes. The rope
of an older revision is rebuilt on demand by undoing the revisions since, from the current rope.
The buffer keeps the last ``HISTORY_LIMIT`` revisions, and fewer when the text they inserted and
removed adds up to more than ``HISTORY_TEXT_BUDGET`` code points (always at least the latest
one); ``rebase``, ``rope_at``, ``changes_since`` and ``mark_saved(revision)`` accept revisions
from ``oldest_revision`` to ``revision``. The undo and redo stacks keep the last ``UNDO_LIMIT``
groups, fewer when their text passes ``UNDO_TEXT_BUDGET`` (always at least the latest group).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from itertools import accumulate, islice, pairwise
from typing import Final, Literal

from symphony.editor_core._exceptions import InvalidEdit, RevisionConflict, UnknownRevision
from symphony.editor_core._rope import Rope

__all__ = [
    "HISTORY_LIMIT",
    "HISTORY_TEXT_BUDGET",
    "UNDO_LIMIT",
    "UNDO_TEXT_BUDGET",
    "Buffer",
    "ChangeKind",
    "ChangeRecord",
    "LineEnding",
    "LineEndings",
    "Position",
    "PositionEdit",
    "TextEdit",
    "resolve_edits",
]

# Defaults of the bounds (each can be set per buffer). 10,000 revisions is about an hour of
# continuous typing: a client that falls further behind re-reads the buffer instead of rebasing. The text budget stops
# a series of whole-file reloads from keeping many copies of a large file alive through history.
HISTORY_LIMIT: Final = 10_000
HISTORY_TEXT_BUDGET: Final = 64 * 1024 * 1024
UNDO_LIMIT: Final = 10_000
UNDO_TEXT_BUDGET: Final = 64 * 1024 * 1024

Position = tuple[int, int]
"""An LSP position: ``(line, character)``, character counted in some position encoding."""


# --- edits ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextEdit:
    """Replace code points ``start`` to ``end`` (end exclusive) with ``text``.

    An insertion has ``start == end``, a deletion an empty ``text``.

    Invariants:
        ``0 <= start <= end``.
    """

    start: int
    end: int
    text: str = ""

    def __post_init__(self) -> None:
        if not 0 <= self.start <= self.end:
            raise InvalidEdit(f"edit range {self.start}..{self.end}: need 0 <= start <= end")

    @property
    def delta(self) -> int:
        """How much the edit changes the length of the text."""
        return len(self.text) - (self.end - self.start)


@dataclass(frozen=True, slots=True)
class PositionEdit:
    """An edit whose range is LSP positions, as a client sends it (``TextEdit`` in LSP)."""

    start: Position
    end: Position
    text: str = ""


def resolve_edits(
    rope: Rope, edits: Iterable[TextEdit | PositionEdit], encoding: str = "utf-16"
) -> list[TextEdit]:
    """The edits with every position range turned into code-point offsets of ``rope``.

    Positions follow ``Rope.offset_at``: a character past its line's end clamps to the line end,
    a line past the last to the end of the text, a position inside a character rounds down.
    ``TextEdit`` items pass through unchanged. Raises ``InvalidEdit`` for a negative position, an
    unknown encoding, or a range whose end comes before its start.
    """
    resolved: list[TextEdit] = []
    for edit in edits:
        if isinstance(edit, TextEdit):
            resolved.append(edit)
            continue
        try:
            start = rope.offset_at(*edit.start, encoding)
            end = rope.offset_at(*edit.end, encoding)
        except (IndexError, ValueError) as exc:
            raise InvalidEdit(f"edit {edit.start}..{edit.end}: {exc}") from exc
        if end < start:
            raise InvalidEdit(
                f"edit {edit.start}..{edit.end} ({encoding}): the end comes before the start"
            )
        resolved.append(TextEdit(start, end, edit.text))
    return resolved


def _normalize(edits: Iterable[TextEdit], length: int) -> tuple[TextEdit, ...]:
    """The batch in canonical order, without no-ops; ``InvalidEdit`` if it is not a valid batch.

    Canonical order is by ``(start, end)``, keeping the given order among equal ranges, so two
    insertions at one point keep their order and an insertion sorts before a range starting at
    its point. In that order a batch is valid when no edit starts before the previous one ends.
    """
    ordered = list(edits)
    if len(ordered) > 1:
        ordered.sort(key=lambda e: (e.start, e.end))
    for edit in ordered:
        if edit.end > length:
            raise InvalidEdit(
                f"edit {edit.start}..{edit.end} out of range: the text has {length} code points"
            )
    for previous, following in pairwise(ordered):
        if following.start < previous.end:
            raise InvalidEdit(
                f"edits overlap: {previous.start}..{previous.end} and "
                f"{following.start}..{following.end}"
            )
    return tuple(e for e in ordered if e.start != e.end or e.text)


# --- line endings -----------------------------------------------------------------------------


class LineEnding(StrEnum):
    """The line-ending style of a text."""

    LF = "lf"
    CRLF = "crlf"
    CR = "cr"
    MIXED = "mixed"
    NONE = "none"  # no line break at all


_NEWLINE: Final = {LineEnding.LF: "\n", LineEnding.CRLF: "\r\n", LineEnding.CR: "\r"}


@dataclass(frozen=True, slots=True)
class LineEndings:
    """How many line breaks of each kind a text has (``\\r\\n`` counts once, as CRLF)."""

    lf: int = 0
    crlf: int = 0
    cr: int = 0

    @classmethod
    def of(cls, text: str | Rope) -> LineEndings:
        """Count the breaks of ``text``; a ``Rope`` is read chunk by chunk, without a copy."""
        if isinstance(text, str):
            return cls(*_count_breaks(text))
        lf = crlf = cr = 0
        last = ""
        for chunk in text.chunks():
            a, b, c = _count_breaks(chunk)
            lf, crlf, cr = lf + a, crlf + b, cr + c
            if last == "\r" and chunk[0] == "\n":  # a pair split across chunks: one CRLF
                lf, crlf, cr = lf - 1, crlf + 1, cr - 1
            last = chunk[-1]
        return cls(lf, crlf, cr)

    @property
    def kind(self) -> LineEnding:
        """``lf``, ``crlf`` or ``cr`` when all breaks agree, ``mixed`` when not, or ``none``."""
        kinds = [k for k, n in self._by_kind() if n]
        if not kinds:
            return LineEnding.NONE
        return kinds[0] if len(kinds) == 1 else LineEnding.MIXED

    @property
    def newline(self) -> str:
        """The break to use for new lines: the most frequent one (``\\n`` on a tie or none)."""
        best, count = LineEnding.LF, 0
        for kind, n in self._by_kind():
            if n > count:
                best, count = kind, n
        return _NEWLINE[best]

    def _by_kind(self) -> tuple[tuple[LineEnding, int], ...]:
        return ((LineEnding.LF, self.lf), (LineEnding.CRLF, self.crlf), (LineEnding.CR, self.cr))


def _count_breaks(text: str) -> tuple[int, int, int]:
    crlf = text.count("\r\n")
    return text.count("\n") - crlf, crlf, text.count("\r") - crlf


# --- change records ---------------------------------------------------------------------------


class ChangeKind(StrEnum):
    """What made a revision."""

    EDIT = "edit"
    UNDO = "undo"
    REDO = "redo"


@dataclass(frozen=True, slots=True, eq=False)
class ChangeRecord:
    """One revision of a buffer: the batch that made it, and the text before and after.

    ``changes`` is in descending start order: applied one after another to ``before`` they give
    ``after`` (LSP ``contentChanges``), and each change's range is also a range of ``before``.
    An empty ``changes`` is a revision that changed nothing (a batch of no-op edits).

    Invariants:
        - applying ``changes`` in order to ``str(before)`` gives ``str(after)``;
        - ``changes`` do not overlap and each one ends at or before the start of the previous
          one, so ``edits`` (the same changes in ascending order) is a valid batch on ``before``.
    """

    revision: int
    changes: tuple[TextEdit, ...]
    before: Rope
    after: Rope
    origin: object = None
    kind: ChangeKind = ChangeKind.EDIT

    @property
    def base_revision(self) -> int:
        """The revision the changes apply to: ``revision - 1``."""
        return self.revision - 1

    @property
    def edits(self) -> tuple[TextEdit, ...]:
        """The changes in ascending order: one batch, every range relative to ``before``."""
        return self.changes[::-1]

    def content_changes(self, encoding: str = "utf-16") -> list[PositionEdit]:
        """The changes as LSP ``contentChanges`` for a client using ``encoding``.

        Each range is computed on the text as it is when that change is applied (after the ones
        listed before it), which is what a client does. LSP positions cannot point between the
        ``\\r`` and ``\\n`` of one break, so a change with an end there is widened to take the
        whole pair, with the pair's half put back into its text: same result, exact positions.
        """
        rope = self.before
        out: list[PositionEdit] = []
        for change in self.changes:
            start, end, text = change.start, change.end, change.text
            size = len(rope)
            if 0 < start < size and rope.slice(start - 1, start + 1) == "\r\n":
                start, text = start - 1, "\r" + text
            if 0 < end < size and rope.slice(end - 1, end + 1) == "\r\n":
                end, text = end + 1, text + "\n"
            out.append(
                PositionEdit(
                    rope.position_at(start, encoding), rope.position_at(end, encoding), text
                )
            )
            rope = rope.replace(change.start, change.end, change.text)
        return out


# --- the buffer's private bookkeeping ---------------------------------------------------------
# History entries and undo groups keep edits and removed text, never ropes (module docstring).


@dataclass(slots=True)
class _Entry:
    """One revision in the history.

    Invariants:
        ``edits`` is a canonical batch on the text of ``revision - 1``; ``removed[i]`` is the
        text ``edits[i]`` replaced; ``size`` is the code points inserted plus removed.
    """

    revision: int
    edits: tuple[TextEdit, ...]
    removed: tuple[str, ...]
    origin: object
    kind: ChangeKind
    state_before: int
    state: int
    size: int
    _index: _RebaseIndex | None = None

    def index(self) -> _RebaseIndex:
        """What rebasing through this entry needs, built on first use (most are never used)."""
        if self._index is None:
            self._index = _RebaseIndex(self.edits)
        return self._index

    def record(self, before: Rope, after: Rope) -> ChangeRecord:
        return ChangeRecord(self.revision, self.edits[::-1], before, after, self.origin, self.kind)


class _RebaseIndex:
    """A batch's starts, ends and cumulative shifts, for bisecting.

    Invariants:
        ``ends`` never decreases (a valid batch in ascending order); ``shifts[i]`` is the length
        change of the first ``i`` edits.
    """

    __slots__ = ("ends", "shifts", "starts")

    def __init__(self, edits: tuple[TextEdit, ...]) -> None:
        self.starts = [e.start for e in edits]
        self.ends = [e.end for e in edits]
        self.shifts = list(accumulate((e.delta for e in edits), initial=0))


@dataclass(slots=True)
class _Member:
    """One batch of an undo group: the content state after it, its edits and their inverse."""

    state: int
    edits: tuple[TextEdit, ...]
    inverse: tuple[TextEdit, ...]


@dataclass(slots=True)
class _Group:
    """An undo group: its batches composed into one batch, and the inverse of that.

    Invariants:
        - ``edits`` is a canonical batch on the text before the group, equal in effect to every
          member's edits in turn; ``inverse`` is one on the text after it, undoing ``edits``;
        - the content state before the group is ``before_state``, after it ``members[-1].state``;
        - ``size`` is the code points inserted by ``edits`` and by ``inverse``.
    """

    before_state: int
    edits: tuple[TextEdit, ...]
    inverse: tuple[TextEdit, ...]
    members: list[_Member]
    size: int

    @classmethod
    def of(cls, before_state: int, members: list[_Member]) -> _Group:
        edits = _compose_all(m.edits for m in members)
        inverse = _compose_all(m.inverse for m in reversed(members))
        return cls(before_state, edits, inverse, members, _inserted(edits) + _inserted(inverse))

    @property
    def after_state(self) -> int:
        return self.members[-1].state

    def extend(self, member: _Member) -> None:
        self.edits = _compose(self.edits, member.edits)
        self.inverse = _compose(member.inverse, self.inverse)
        self.members.append(member)
        self.size = _inserted(self.edits) + _inserted(self.inverse)


def _inserted(edits: Iterable[TextEdit]) -> int:
    return sum(len(e.text) for e in edits)


@dataclass(frozen=True, slots=True)
class _Typing:
    """The last batch, when it was typing: who typed, which kind, where it left the cursors."""

    origin: object
    kind: Literal["insert", "delete"]
    cursors: tuple[int, ...]

    def continued_by(self, following: _Typing, edits: Sequence[TextEdit]) -> bool:
        if following.origin != self.origin or following.kind != self.kind:
            return False
        if len(edits) != len(self.cursors):
            return False
        if self.kind == "insert":
            return all(e.start == c for e, c in zip(edits, self.cursors, strict=True))
        return all(c in (e.start, e.end) for e, c in zip(edits, self.cursors, strict=True))


def _typing_of(edits: Sequence[TextEdit], removed: Sequence[str], origin: object) -> _Typing | None:
    """The batch as typing (see the module docstring), or None when it is not typing."""
    if len(edits) == 1:  # the common case, without the generic loops
        edit = edits[0]
        if edit.start == edit.end and len(edit.text) == 1 and edit.text not in "\r\n":
            return _Typing(origin, "insert", (edit.start + 1,))
        if edit.end - edit.start == 1 and not edit.text and removed[0] not in "\r\n":
            return _Typing(origin, "delete", (edit.start,))
        return None
    if all(e.start == e.end and len(e.text) == 1 and e.text not in "\r\n" for e in edits):
        kind: Literal["insert", "delete"] = "insert"
    elif all(
        e.end - e.start == 1 and not e.text and gone not in "\r\n"
        for e, gone in zip(edits, removed, strict=True)
    ):
        kind = "delete"
    else:
        return None
    cursors = []
    shift = 0
    for edit in edits:
        cursors.append(edit.start + shift + len(edit.text))
        shift += edit.delta
    return _Typing(origin, kind, tuple(cursors))


# A batch read as a walk over its base text: the OT "operation" form. An operation is
# (kind, count, text): retain or delete `count` code points, or insert `text` (count = its length).
_RETAIN, _DELETE, _INSERT = 0, 1, 2
_Op = tuple[int, int, str]


def _ops(edits: Sequence[TextEdit]) -> Iterator[_Op]:
    position = 0
    for edit in edits:
        if edit.start > position:
            yield _RETAIN, edit.start - position, ""
        if edit.end > edit.start:
            yield _DELETE, edit.end - edit.start, ""
        if edit.text:
            yield _INSERT, len(edit.text), edit.text
        position = edit.end


class _EditBuilder:
    """Collects retain/delete/insert operations back into a canonical batch of edits.

    Deletions and insertions with no retain between them become one edit, so the result never
    has two edits that touch.
    """

    def __init__(self) -> None:
        self._edits: list[TextEdit] = []
        self._position = 0
        self._start = -1  # start of the pending edit, -1 when none
        self._parts: list[str] = []

    def add(self, kind: int, count: int, text: str) -> None:
        if kind == _RETAIN:
            self._flush()
            self._position += count
            return
        if self._start < 0:
            self._start = self._position
        if kind == _DELETE:
            self._position += count
        else:
            self._parts.append(text)

    def finish(self) -> tuple[TextEdit, ...]:
        self._flush()
        return tuple(self._edits)

    def _flush(self) -> None:
        if self._start >= 0:
            self._edits.append(TextEdit(self._start, self._position, "".join(self._parts)))
            self._start = -1
            self._parts = []


def _compose(first: Sequence[TextEdit], second: Sequence[TextEdit]) -> tuple[TextEdit, ...]:
    """One batch with the effect of ``first`` then ``second`` (relative to ``first``'s result).

    The classic OT composition: walk both operation lists at once, past the end of a list the
    text is retained. Deletions of ``first`` and insertions of ``second`` pass straight through;
    where ``first`` retains, ``second``'s operation applies to the base text; where ``first``
    inserts, ``second`` keeps or deletes that inserted text.
    """
    ops1, ops2 = _ops(first), _ops(second)
    op1, op2 = next(ops1, None), next(ops2, None)
    out = _EditBuilder()
    while op1 is not None or op2 is not None:
        if op1 is not None and op1[0] == _DELETE:
            out.add(*op1)
            op1 = next(ops1, None)
        elif op2 is not None and op2[0] == _INSERT:
            out.add(*op2)
            op2 = next(ops2, None)
        elif op1 is None:  # the rest of `second` acts on text that `first` left alone
            assert op2 is not None  # the loop condition
            out.add(*op2)
            op2 = next(ops2, None)
        elif op2 is None:  # the rest of `first`, untouched by `second`
            out.add(*op1)
            op1 = next(ops1, None)
        else:
            kind1, count1, text1 = op1
            kind2, count2, _ = op2
            n = min(count1, count2)
            if kind1 == _RETAIN:
                out.add(kind2, n, "")
            elif kind2 == _RETAIN:
                out.add(_INSERT, n, text1[:n])
            # else: inserted by `first`, deleted by `second`: nothing reaches the result
            op1 = next(ops1, None) if n == count1 else (kind1, count1 - n, text1[n:])
            op2 = next(ops2, None) if n == count2 else (kind2, count2 - n, "")
    return out.finish()


def _invert(edits: Sequence[TextEdit], removed: Sequence[str]) -> tuple[TextEdit, ...]:
    """The batch that undoes ``edits`` (canonical) on their result, given the text they removed."""
    inverse = []
    shift = 0
    for edit, gone in zip(edits, removed, strict=True):
        start = edit.start + shift
        inverse.append(TextEdit(start, start + len(edit.text), gone))
        shift += edit.delta
    return tuple(inverse)


# --- the buffer -------------------------------------------------------------------------------


class Buffer:
    """A text with revisions, atomic multi-range edits, undo/redo, rebasing and dirty tracking.

    ``Buffer(text, revision=0)`` starts clean (its text counts as saved). Arguments
    ``history_limit``, ``history_budget``, ``undo_limit`` and ``undo_budget`` bound what it
    remembers (see the module docstring); they default to ``HISTORY_LIMIT``,
    ``HISTORY_TEXT_BUDGET``, ``UNDO_LIMIT`` and ``UNDO_TEXT_BUDGET``.

    Pure and synchronous: no I/O, no locks. The daemon owns each buffer from one task.

    Invariants:
        - ``revision`` strictly increases: each batch, undo and redo adds exactly one;
        - the history holds revisions ``oldest_revision + 1 .. revision``, contiguous, each
          starting from the content state the previous one ended in; applying the records
          after revision ``r`` to ``rope_at(r)`` yields the current rope;
        - ``line_endings`` equals ``LineEndings.of(rope)``;
        - the top undo group's ``inverse`` applies to the current text and its ``edits`` to
          the result lead back to it; the top redo group's ``edits`` apply to the current text;
        - ``dirty`` is ``False`` exactly when the current content state is the saved one.
    """

    def __init__(
        self,
        text: str | Rope = "",
        *,
        revision: int = 0,
        history_limit: int = HISTORY_LIMIT,
        history_budget: int = HISTORY_TEXT_BUDGET,
        undo_limit: int = UNDO_LIMIT,
        undo_budget: int = UNDO_TEXT_BUDGET,
    ) -> None:
        if history_limit < 1 or undo_limit < 1:
            raise ValueError("history_limit and undo_limit must be at least 1")
        self._rope = text if isinstance(text, Rope) else Rope(text)
        self._revision = revision
        self._history_limit = history_limit
        self._history_budget = history_budget
        self._undo_limit = undo_limit
        self._undo_budget = undo_budget
        # Invariant: _history holds revisions oldest_revision + 1 .. _revision, in order.
        self._history: deque[_Entry] = deque()
        self._history_size = 0  # sum of the entries' `size`
        self._line_endings = LineEndings.of(text)  # a str counts faster than its chunks
        # Content states: tokens, fresh for every batch that changes the text.
        self._state = 0
        self._next_state = 1
        self._saved_state: int | None = 0
        self._saved_revision: int | None = revision
        self._undo: deque[_Group] = deque()
        self._redo: list[_Group] = []
        self._undo_size = 0  # sum of the sizes of the groups on both stacks
        self._group_depth = 0  # nesting of `undo_group()` blocks
        self._explicit_open = False  # the top undo group belongs to the open `undo_group()`
        self._typing: _Typing | None = None  # the last batch, if typing the top group can extend

    def __repr__(self) -> str:
        return (
            f"<Buffer revision={self._revision} {len(self._rope)} code points"
            f"{' dirty' if self.dirty else ''}>"
        )

    # -- reading

    @property
    def rope(self) -> Rope:
        """The current text as a rope: a snapshot that stays valid while the buffer moves on."""
        return self._rope

    @property
    def text(self) -> str:
        """The current text as a ``str`` (a copy: O(n))."""
        return str(self._rope)

    @property
    def revision(self) -> int:
        """The current revision."""
        return self._revision

    @property
    def line_count(self) -> int:
        """Number of lines (LSP: ``""`` has one, ``"a\\n"`` two)."""
        return self._rope.line_count

    @property
    def line_endings(self) -> LineEndings:
        """The count of each kind of line break; ``.kind`` and ``.newline`` summarise it."""
        return self._line_endings

    @property
    def line_ending(self) -> LineEnding:
        """The text's line-ending style: ``lf``, ``crlf``, ``cr``, ``mixed`` or ``none``."""
        return self._line_endings.kind

    @property
    def newline(self) -> str:
        """The break a client should insert for a new line: the text's most frequent one."""
        return self._line_endings.newline

    @property
    def oldest_revision(self) -> int:
        """The oldest revision the buffer can still rebase from or return the text of."""
        if self._history:
            return self._history[0].revision - 1
        return self._revision

    def rope_at(self, revision: int) -> Rope:
        """The text at ``revision``; ``UnknownRevision`` outside ``oldest_revision..revision``.

        Rebuilt from the current rope by undoing the revisions since: O(m k log n) for m
        revisions of k edits back.
        """
        return self._ropes_since(revision)[0]

    def changes_since(self, revision: int) -> tuple[ChangeRecord, ...]:
        """The records of every revision after ``revision``, oldest first, to catch a client up.

        Their ``before``/``after`` ropes are rebuilt (see ``rope_at``): equal in content to the
        ones first returned, not the same objects.
        """
        ropes = self._ropes_since(revision)
        entries = islice(self._history, self._index(revision), None)
        return tuple(e.record(ropes[i], ropes[i + 1]) for i, e in enumerate(entries))

    def _ropes_since(self, revision: int) -> list[Rope]:
        """The ropes of revisions ``revision .. current``, rebuilt backwards from the current."""
        count = len(self._history) - self._index(revision)
        ropes = [self._rope]
        rope = self._rope
        for entry in islice(reversed(self._history), count):
            for edit in reversed(_invert(entry.edits, entry.removed)):
                rope = rope.replace(edit.start, edit.end, edit.text)
            ropes.append(rope)
        ropes.reverse()
        return ropes

    def _index(self, revision: int) -> int:
        """The history index of the entry whose base is ``revision`` (< current)."""
        oldest = self.oldest_revision
        if revision > self._revision:
            raise UnknownRevision(
                f"revision {revision} is newer than the buffer's revision {self._revision}",
                revision=revision,
                current_revision=self._revision,
            )
        if revision < oldest:
            raise UnknownRevision(
                f"revision {revision} is older than the oldest one kept ({oldest}); re-read "
                f"the buffer at revision {self._revision}",
                revision=revision,
                current_revision=self._revision,
            )
        return revision - oldest

    # -- editing

    def apply(
        self,
        edits: Iterable[TextEdit | PositionEdit],
        *,
        encoding: str = "utf-16",
        base_revision: int | None = None,
        origin: object = None,
    ) -> ChangeRecord:
        """Apply a batch of edits atomically as one new revision, and return its record.

        Every range is relative to the same text: the current one, or with ``base_revision`` the
        text at that revision, in which case the batch is rebased first (see :meth:`rebase`).
        ``PositionEdit`` ranges are LSP positions in ``encoding``. Edits must not overlap; two
        insertions at one point are inserted in the given order. ``origin`` (e.g. a client id) is
        carried on the record and keeps different writers' typing in separate undo groups.

        Raises ``InvalidEdit``, ``RevisionConflict`` or ``UnknownRevision``, and then changes
        nothing. Cost: O(k log n) for k edits on a text of n code points, plus the edited text.
        """
        if base_revision is None:
            batch = _normalize(resolve_edits(self._rope, edits, encoding), len(self._rope))
        else:
            batch = self._rebase(edits, base_revision, encoding)
        if not batch:
            return self._commit(batch, origin, ChangeKind.EDIT, self._state)[0]
        before_state = self._state
        state = self._fresh_state()
        record, removed = self._commit(batch, origin, ChangeKind.EDIT, state)
        self._record_undo(batch, removed, before_state, state, origin)
        return record

    def set_text(self, text: str, *, origin: object = None) -> ChangeRecord:
        """Replace the whole text (a reload), as one edit of only the part that differs.

        The common prefix and suffix are kept, so clients get a small change and selections
        outside the difference stay put. It is its own undo group. O(n) to find the difference.
        """
        rope = self._rope
        size, new_size = len(rope), len(text)
        prefix = 0
        for chunk in rope.chunks():
            piece = text[prefix : prefix + len(chunk)]
            if piece == chunk:
                prefix += len(chunk)
                continue
            prefix += _common_prefix(piece, chunk)
            break
        limit = min(size, new_size) - prefix
        suffix = 0
        block = 1024
        while suffix < limit:
            take = min(block, limit - suffix)
            old = rope.slice(size - suffix - take, size - suffix)
            new = text[new_size - suffix - take : new_size - suffix]
            if old != new:
                suffix += _common_prefix(old[::-1], new[::-1])
                break
            suffix += take
            block = min(2 * block, _SCAN_BLOCK)
        self.break_undo_group()
        edit = TextEdit(prefix, size - suffix, text[prefix : new_size - suffix])
        record = self.apply([edit], origin=origin)
        self.break_undo_group()
        return record

    def rebase(
        self,
        edits: Iterable[TextEdit | PositionEdit],
        base_revision: int,
        *,
        encoding: str = "utf-16",
    ) -> list[TextEdit]:
        """Edits made against ``base_revision``, moved to the current text (see module doc).

        Returns the batch in ascending order without no-ops, as offsets in the current text.
        Raises ``RevisionConflict`` (with ``current_revision``) when an edit overlaps a change
        made since, ``UnknownRevision`` for a revision newer than the buffer's or older than
        ``oldest_revision``, ``InvalidEdit`` for a batch that is invalid on its base text.
        """
        return list(self._rebase(edits, base_revision, encoding))

    def _rebase(
        self, edits: Iterable[TextEdit | PositionEdit], base_revision: int, encoding: str
    ) -> tuple[TextEdit, ...]:
        given = list(edits)
        if base_revision == self._revision:
            return _normalize(resolve_edits(self._rope, given, encoding), len(self._rope))
        first = self._index(base_revision)
        if any(isinstance(e, PositionEdit) for e in given):
            base = self.rope_at(base_revision)  # positions need the old text's lines
            batch = _normalize(resolve_edits(base, given, encoding), len(base))
        else:  # offsets only need the old length: the current one minus the changes since
            length = len(self._rope) - sum(
                sum(e.delta for e in entry.edits) for entry in islice(self._history, first, None)
            )
            batch = _normalize(resolve_edits(self._rope, given, encoding), length)
        moved = list(batch)
        for entry in islice(self._history, first, None):
            if not entry.edits:
                continue
            index = entry.index()
            for i, edit in enumerate(moved):
                # The changes of this entry that end at or before the edit starts shift it; the
                # next one conflicts if it starts before the edit ends.
                j = bisect_right(index.ends, edit.start)
                if j < len(index.starts) and index.starts[j] < edit.end:
                    change = entry.edits[j]
                    original = batch[i]
                    raise RevisionConflict(
                        f"edit {original.start}..{original.end} made against revision "
                        f"{base_revision} overlaps the change {change.start}..{change.end} of "
                        f"revision {entry.revision}; the buffer is at revision "
                        f"{self._revision}",
                        base_revision=base_revision,
                        current_revision=self._revision,
                    )
                shift = index.shifts[j]
                if shift:
                    moved[i] = TextEdit(edit.start + shift, edit.end + shift, edit.text)
        return tuple(moved)

    def _commit(
        self, batch: tuple[TextEdit, ...], origin: object, kind: ChangeKind, state: int
    ) -> tuple[ChangeRecord, tuple[str, ...]]:
        """Apply a canonical batch, make the revision, record it in the history.

        Returns the change record and the text each edit removed.
        """
        before = rope = self._rope
        endings = self._line_endings
        lf, crlf, cr = endings.lf, endings.crlf, endings.cr
        size = 0
        removed: list[str] = []
        for edit in reversed(batch):  # descending: each range is still valid in `rope`
            start, end, text = edit.start, edit.end, edit.text
            if start == end and not (cr or crlf) and "\r" not in text:
                lf += text.count("\n")  # no \r anywhere: no pair to split or join (LF typing)
                rope = rope.insert(start, text)
                removed.append("")
                size += len(text)
                continue
            # Recount breaks in the edit's neighbourhood, one code point either side: a break is
            # at most two code points, and those edge points are the same before and after, so
            # a pair they form with text outside the window miscounts equally in both counts.
            low = start - 1 if start else 0
            old = rope.slice(low, min(end + 1, len(rope)))
            gone = old[start - low : end - low]
            if "\r" in old or "\n" in old or "\r" in text or "\n" in text:
                new = old[: start - low] + text + old[end - low :]
                a, b, c = _count_breaks(old)
                x, y, z = _count_breaks(new)
                lf, crlf, cr = lf + x - a, crlf + y - b, cr + z - c
            rope = rope.replace(start, end, text)
            removed.append(gone)
            size += len(text) + len(gone)
        removed.reverse()
        self._revision += 1
        entry = _Entry(
            self._revision, batch, tuple(removed), origin, kind, self._state, state, size
        )
        self._rope = rope
        self._state = state
        if (lf, crlf, cr) != (endings.lf, endings.crlf, endings.cr):
            self._line_endings = LineEndings(lf, crlf, cr)
        self._history.append(entry)
        self._history_size += size
        while len(self._history) > self._history_limit or (
            self._history_size > self._history_budget and len(self._history) > 1
        ):
            self._history_size -= self._history.popleft().size
        return entry.record(before, rope), entry.removed

    def _fresh_state(self) -> int:
        state = self._next_state
        self._next_state += 1
        return state

    # -- undo

    @property
    def can_undo(self) -> bool:
        """Whether there is a group to undo."""
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        """Whether there is an undone group to redo."""
        return bool(self._redo)

    def _record_undo(
        self,
        batch: tuple[TextEdit, ...],
        removed: tuple[str, ...],
        before_state: int,
        state: int,
        origin: object,
    ) -> None:
        typing = None if self._group_depth else _typing_of(batch, removed, origin)
        top = self._undo[-1] if self._undo else None
        merge = top is not None and (
            self._explicit_open
            if self._group_depth
            else typing is not None
            and self._typing is not None
            and self._typing.continued_by(typing, batch)
        )
        member = _Member(state, batch, _invert(batch, removed))
        for group in self._redo:
            self._undo_size -= group.size
        self._redo.clear()
        if top is not None and merge:
            self._undo_size -= top.size
            top.extend(member)
            self._undo_size += top.size
        else:
            self._push_undo(_Group.of(before_state, [member]))
        self._explicit_open = self._group_depth > 0
        self._typing = typing

    def _push_undo(self, group: _Group) -> None:
        self._undo.append(group)
        self._undo_size += group.size
        while len(self._undo) > self._undo_limit or (
            self._undo_size > self._undo_budget and len(self._undo) > 1
        ):
            self._undo_size -= self._undo.popleft().size

    def break_undo_group(self) -> None:
        """End the current undo group: the next batch starts a new one."""
        self._typing = None
        self._explicit_open = False

    @contextmanager
    def undo_group(self) -> Iterator[None]:
        """Put every batch applied inside the block into one undo group (blocks may nest).

        An undo or redo inside the block ends the group; later batches in the block form a new
        one.
        """
        if not self._group_depth:
            self.break_undo_group()
        self._group_depth += 1
        try:
            yield
        finally:
            self._group_depth -= 1
            if not self._group_depth:
                self.break_undo_group()

    def undo(self, *, origin: object = None) -> ChangeRecord | None:
        """Undo the last group as a new revision; its record, or None if nothing to undo."""
        self.break_undo_group()
        if not self._undo:
            return None
        group = self._undo.pop()
        record, _ = self._commit(group.inverse, origin, ChangeKind.UNDO, group.before_state)
        self._redo.append(group)
        return record

    def redo(self, *, origin: object = None) -> ChangeRecord | None:
        """Redo the last undone group as a new revision; its record, or None if nothing to redo."""
        self.break_undo_group()
        if not self._redo:
            return None
        group = self._redo.pop()
        record, _ = self._commit(group.edits, origin, ChangeKind.REDO, group.after_state)
        self._undo_size -= group.size  # _push_undo counts it again
        self._push_undo(group)
        return record

    # -- saving

    @property
    def dirty(self) -> bool:
        """Whether the text differs from the saved state (by content state, not revision)."""
        return self._state != self._saved_state

    @property
    def saved_revision(self) -> int | None:
        """The revision last passed to (or current at) ``mark_saved``; None if never or forgotten."""
        return self._saved_revision

    def mark_saved(self, revision: int | None = None) -> None:
        """Record that the text at ``revision`` (default: the current one) is what is on disk.

        A save of an older revision (written from a snapshot while edits went on) is fine while
        that revision is still in the history; ``UnknownRevision`` otherwise.
        """
        if revision is None:
            revision = self._revision
        if revision == self._revision:
            state = self._state
        else:
            state = self._history[self._index(revision)].state_before
        if state == self._state:
            # Later typing must not merge into the group that ends at the saved state.
            self.break_undo_group()
        else:
            self._split_groups_at(state)
        self._saved_state = state
        self._saved_revision = revision

    def mark_unsaved(self) -> None:
        """Forget the saved state (e.g. the file was deleted): dirty until the next save."""
        self._saved_state = None
        self._saved_revision = None

    def _split_groups_at(self, state: int) -> None:
        """Split the undo group that passes through ``state``, so undo can stop there."""
        for stack, redo in ((self._undo, False), (self._redo, True)):
            for index, group in enumerate(stack):
                for i, member in enumerate(group.members[:-1]):
                    if member.state != state:
                        continue
                    head = _Group.of(group.before_state, group.members[: i + 1])
                    tail = _Group.of(state, group.members[i + 1 :])
                    self._undo_size += head.size + tail.size - group.size
                    # A redo stack is popped from the end, so its order is reversed.
                    pieces = [tail, head] if redo else [head, tail]
                    if isinstance(stack, deque):
                        del stack[index]
                        stack.insert(index, pieces[1])
                        stack.insert(index, pieces[0])
                    else:
                        stack[index : index + 1] = pieces
                    return

    # -- checks

    def _check_invariants(self) -> None:
        """Assert the invariants of the class docstring (for tests; O(history x n))."""
        history = list(self._history)
        for number, entry in enumerate(history, start=self.oldest_revision + 1):
            assert entry.revision == number, "history is not contiguous"
        for previous, entry in pairwise(history):
            assert entry.state_before == previous.state, "history states do not chain"
        if history:
            assert history[-1].revision == self._revision
            assert history[-1].state == self._state
        # Replay the history forwards from the oldest rebuilt rope: it must give the current
        # text, and each entry's removed text must be what its edits replaced.
        text = str(self.rope_at(self.oldest_revision))
        for entry in history:
            for edit, gone in zip(entry.edits, entry.removed, strict=True):
                assert text[edit.start : edit.end] == gone, "removed text is wrong"
            text = _apply_to_str(text, entry.edits)
        assert text == str(self._rope), "the history does not replay to the text"
        assert self._history_size == sum(e.size for e in history)
        assert self._line_endings == LineEndings.of(self._rope), "line endings drifted"
        current = str(self._rope)
        if self._undo:
            top = self._undo[-1]
            assert top.after_state == self._state
            before = _apply_to_str(current, top.inverse)
            assert _apply_to_str(before, top.edits) == current, "the top undo group is stale"
        if self._redo:
            top = self._redo[-1]
            assert top.before_state == self._state
            after = _apply_to_str(current, top.edits)
            assert _apply_to_str(after, top.inverse) == current, "the top redo group is stale"
        groups = [*self._undo, *self._redo]
        assert self._undo_size == sum(g.size for g in groups)
        for group in groups:
            assert group.size == _inserted(group.edits) + _inserted(group.inverse)


def _apply_to_str(text: str, edits: Sequence[TextEdit]) -> str:
    for edit in reversed(edits):
        text = text[: edit.start] + edit.text + text[edit.end :]
    return text


def _compose_all(batches: Iterable[tuple[TextEdit, ...]]) -> tuple[TextEdit, ...]:
    composed: tuple[TextEdit, ...] = ()
    for index, batch in enumerate(batches):
        composed = batch if index == 0 else _compose(composed, batch)
    return composed


_SCAN_BLOCK: Final = 1 << 16  # set_text compares the tails in blocks of at most this size


def _common_prefix(a: str, b: str) -> int:
    """Length of the common prefix: bisect on slice equality (C comparisons, not a char loop)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        mid = (low + high + 1) // 2
        if a[:mid] == b[:mid]:
            low = mid
        else:
            high = mid - 1
    return low
