"""Selections and multiple cursors that follow the text through edits.

Theory of operation
-------------------
A :class:`Selection` is an ``anchor`` (where it started) and a ``head`` (where the cursor is), as
code-point offsets; a cursor is a selection with ``anchor == head``. A :class:`SelectionSet` is a
view's cursors: sorted, never overlapping, one of them primary.

When the text changes, every offset is *mapped* through the batch (the ascending ``edits`` of a
:class:`~symphony.editor_core.buffer.ChangeRecord`). For a position ``p`` and an edit replacing
``start..end`` with ``L`` code points (the same rules as CodeMirror's ``mapPos``):

- before ``start``: unchanged; after ``end``: shifted by the edit's length change;
- exactly at an insertion point (``start == end == p``): ``Bias.BEFORE`` stays before the new
  text, ``Bias.AFTER`` moves after it. Another view's insertion at your cursor leaves it where it
  was (``BEFORE``, the default); your own typing carries it along (``AFTER``);
- at the start of a replaced range: its new start; at its end: the end of the new text;
- strictly inside a replaced range: its new start (``BEFORE``) or the end of the new text
  (``AFTER``), so positions inside a deletion collapse to where it was.

A non-empty selection maps its start with ``AFTER`` and its end with ``BEFORE``, so text inserted
at its edges stays outside it; when both ends fell strictly inside one replaced range its text is
gone, and it becomes a cursor placed by the set's bias. After mapping, selections that overlap (or
a cursor touching another selection, which joins the one before it) merge into one, keeping the
direction of the primary or else of the first non-empty selection; the merged selection is
primary if any part was.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum
from itertools import accumulate, pairwise

from symphony.editor_core._exceptions import InvalidEdit
from symphony.editor_core._rope import Rope
from symphony.editor_core.buffer import ChangeRecord, Position, TextEdit

__all__ = ["Bias", "Selection", "SelectionSet", "map_offset"]


class Bias(IntEnum):
    """Which side of an insertion at its exact position an offset ends up on (CodeMirror's assoc)."""

    BEFORE = -1
    AFTER = 1


Changes = Sequence[TextEdit] | ChangeRecord
"""A batch to map through: a record, or ascending non-overlapping edits relative to one text."""


class _Mapping:
    """A batch prepared for mapping many offsets: O(k) to build, O(log k) per offset.

    Invariants:
        ``edits`` ascending and non-overlapping, so ``ends`` never decreases; ``shifts[i]`` is
        the length change of ``edits[:i]``.
    """

    __slots__ = ("edits", "ends", "shifts", "starts")

    def __init__(self, changes: Changes) -> None:
        edits = changes.edits if isinstance(changes, ChangeRecord) else tuple(changes)
        for previous, following in pairwise(edits):
            if (following.start, following.end) < (previous.start, previous.end) or (
                following.start < previous.end
            ):
                raise InvalidEdit(
                    f"edits to map through must be ascending and must not overlap: "
                    f"{previous.start}..{previous.end} then {following.start}..{following.end} "
                    f"(pass the ChangeRecord, or its .edits, not its .changes)"
                )
        self.edits = edits
        self.starts = [e.start for e in edits]
        self.ends = [e.end for e in edits]
        self.shifts = list(accumulate((e.delta for e in edits), initial=0))

    def map(self, offset: int, bias: Bias) -> int:
        edits, starts = self.edits, self.starts
        count = len(edits)
        i = bisect_left(self.ends, offset)  # edits[:i] end before the offset
        if i < count and self.ends[i] == offset and starts[i] < offset:
            i += 1  # a replaced range ending exactly here: the offset follows its new text
        shift = self.shifts[i]
        while i < count and starts[i] <= offset:
            edit = edits[i]
            if edit.start == edit.end:  # an insertion exactly here
                if bias is Bias.BEFORE:
                    break
                shift += len(edit.text)
                i += 1
                continue
            if edit.start == offset:  # the start of a replaced range
                break
            # strictly inside a replaced range
            return edit.start + shift + (len(edit.text) if bias is Bias.AFTER else 0)
        return offset + shift


def map_offset(offset: int, changes: Changes, bias: Bias = Bias.BEFORE) -> int:
    """Where code point ``offset`` of the text before ``changes`` is after them."""
    return _Mapping(changes).map(offset, bias)


@dataclass(frozen=True, slots=True)
class Selection:
    """A selection from ``anchor`` to ``head`` (code-point offsets); a cursor when they are equal.

    Invariants:
        ``anchor >= 0`` and ``head >= 0``.
    """

    anchor: int
    head: int

    def __post_init__(self) -> None:
        if self.anchor < 0 or self.head < 0:
            raise ValueError(f"selection {self.anchor}..{self.head}: offsets must be >= 0")

    @classmethod
    def cursor(cls, offset: int) -> Selection:
        """An empty selection at ``offset``."""
        return cls(offset, offset)

    @property
    def start(self) -> int:
        return min(self.anchor, self.head)

    @property
    def end(self) -> int:
        return max(self.anchor, self.head)

    @property
    def empty(self) -> bool:
        """Whether this is a cursor."""
        return self.anchor == self.head

    @property
    def backward(self) -> bool:
        """Whether the head comes before the anchor."""
        return self.head < self.anchor

    def map(self, changes: Changes, bias: Bias = Bias.BEFORE) -> Selection:
        """This selection after ``changes`` (see the module docstring for the rules)."""
        return self._mapped(_Mapping(changes), bias)

    def _mapped(self, mapping: _Mapping, bias: Bias) -> Selection:
        if self.empty:
            return Selection.cursor(mapping.map(self.head, bias))
        start = mapping.map(self.start, Bias.AFTER)
        end = mapping.map(self.end, Bias.BEFORE)
        if start > end:  # both ends were inside one replaced range: its text is gone
            return Selection.cursor(mapping.map(self.start, bias))
        return Selection(end, start) if self.backward else Selection(start, end)

    def to_positions(self, rope: Rope, encoding: str = "utf-16") -> tuple[Position, Position]:
        """``(anchor, head)`` as LSP positions in ``rope`` (``IndexError`` if out of range)."""
        return rope.position_at(self.anchor, encoding), rope.position_at(self.head, encoding)

    @classmethod
    def from_positions(
        cls, rope: Rope, anchor: Position, head: Position, encoding: str = "utf-16"
    ) -> Selection:
        """The selection between two LSP positions of ``rope`` (clamped as ``Rope.offset_at``)."""
        return cls(rope.offset_at(*anchor, encoding), rope.offset_at(*head, encoding))


class SelectionSet:
    """A view's selections: sorted by position, never overlapping, one of them primary.

    ``SelectionSet(selections, primary=0)`` sorts and merges what it is given (overlapping
    selections, and a cursor touching another selection, become one); ``primary`` indexes the
    given sequence, and the selection it ends up in is the primary one.

    Invariants:
        - at least one selection; ``0 <= primary_index < len(selections)``;
        - for consecutive selections ``a``, ``b``: ``a.end <= b.start``, and ``a.end < b.start``
          when either is a cursor.
    """

    __slots__ = ("_primary", "_selections")

    _selections: tuple[Selection, ...]
    _primary: int

    def __init__(self, selections: Iterable[Selection], primary: int = 0) -> None:
        given = list(selections)
        if not given:
            raise ValueError("a selection set needs at least one selection")
        if not 0 <= primary < len(given):
            raise IndexError(
                f"primary {primary} out of range: valid indexes are 0..{len(given) - 1}"
            )
        self._selections, self._primary = _normalize(given, primary)

    @classmethod
    def cursor(cls, offset: int) -> SelectionSet:
        """One cursor at ``offset``."""
        return cls([Selection.cursor(offset)])

    @property
    def selections(self) -> tuple[Selection, ...]:
        return self._selections

    @property
    def primary_index(self) -> int:
        return self._primary

    @property
    def primary(self) -> Selection:
        return self._selections[self._primary]

    def __len__(self) -> int:
        return len(self._selections)

    def __iter__(self) -> Iterator[Selection]:
        return iter(self._selections)

    def __getitem__(self, index: int) -> Selection:
        return self._selections[index]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SelectionSet):
            return NotImplemented
        return (self._selections, self._primary) == (other._selections, other._primary)

    def __hash__(self) -> int:
        return hash((self._selections, self._primary))

    def __repr__(self) -> str:
        return f"SelectionSet({list(self._selections)!r}, primary={self._primary})"

    def map(self, changes: Changes, bias: Bias = Bias.BEFORE) -> SelectionSet:
        """The selections after ``changes``; ``bias`` places cursors at an insertion point.

        O(k + m log k) for k changes and m selections.
        """
        mapping = _Mapping(changes)
        return SelectionSet((s._mapped(mapping, bias) for s in self._selections), self._primary)

    def to_positions(self, rope: Rope, encoding: str = "utf-16") -> list[tuple[Position, Position]]:
        """Every selection's ``(anchor, head)`` as LSP positions in ``rope``."""
        return [s.to_positions(rope, encoding) for s in self._selections]

    @classmethod
    def from_positions(
        cls,
        rope: Rope,
        ranges: Iterable[tuple[Position, Position]],
        primary: int = 0,
        encoding: str = "utf-16",
    ) -> SelectionSet:
        """A set from ``(anchor, head)`` LSP positions of ``rope``."""
        return cls((Selection.from_positions(rope, a, h, encoding) for a, h in ranges), primary)


def _normalize(given: list[Selection], primary: int) -> tuple[tuple[Selection, ...], int]:
    order = sorted(range(len(given)), key=lambda i: (given[i].start, given[i].end))
    out: list[Selection] = []
    out_primary = 0
    group: list[int] = []  # indexes (into `given`) of the selections merging into one

    def close() -> None:
        nonlocal out_primary
        members = [given[i] for i in group]
        start = min(s.start for s in members)
        end = max(s.end for s in members)
        if primary in group:
            out_primary = len(out)
        # A cursor has no direction: the primary's, if it is a range, else the first range's.
        ranges = [given[i] for i in group if not given[i].empty]
        lead = given[primary] if primary in group and not given[primary].empty else None
        backward = (lead or ranges[0]).backward if ranges else False
        out.append(Selection(end, start) if backward else Selection(start, end))

    group_end = -1
    group_empty = True
    for i in order:
        selection = given[i]
        if group and (
            selection.start < group_end
            or (selection.start == group_end and (selection.empty or group_empty))
        ):
            group.append(i)
            group_end = max(group_end, selection.end)
            group_empty = group_empty and selection.empty
            continue
        if group:
            close()
        group = [i]
        group_end = selection.end
        group_empty = selection.empty
    close()
    return tuple(out), out_primary
