"""Selections moving through edits, against a simple model.

The model maps an offset by walking the batch from the start of the text with the rules written
out case by case; the implementation bisects precomputed ends and shifts instead. Merging is checked by its
specification: the result is sorted and non-overlapping, covers every mapped selection, and each
result is the hull of the mapped selections it holds.
"""

from __future__ import annotations

import re
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from symphony.editor_core._exceptions import InvalidEdit
from symphony.editor_core._rope import Rope
from symphony.editor_core._selection import Bias, Selection, SelectionSet, map_offset
from symphony.editor_core.buffer import Buffer, TextEdit

_BREAK = re.compile(r"\r\n|\r|\n")
_CODEC = {"utf-8": ("utf-8", 1), "utf-16": ("utf-16-le", 2), "utf-32": ("utf-32-le", 4)}

_pieces = st.sampled_from(["a", "b", "\n", "\r", "\r\n", "é", "😀", " "])
texts = st.one_of(st.lists(_pieces, max_size=30).map("".join), st.text(max_size=30))
_SNIPPETS = ["", "", "x", "yz", "\n", "\r\n", "😀", "é"]
edit_texts = st.one_of(st.sampled_from(_SNIPPETS), st.text(max_size=3))
biases = st.sampled_from([Bias.BEFORE, Bias.AFTER])


@st.composite
def ascending_batches(draw: st.DrawFn, length: int) -> list[TextEdit]:
    """A valid batch in canonical (ascending) order; edits may touch and insertions coincide."""
    count = draw(st.integers(0, 4))
    cuts = sorted(draw(st.lists(st.integers(0, length), min_size=2 * count, max_size=2 * count)))
    return [TextEdit(cuts[2 * i], cuts[2 * i + 1], draw(edit_texts)) for i in range(count)]


@st.composite
def selection_lists(draw: st.DrawFn, length: int) -> list[Selection]:
    offsets = st.integers(0, length)
    return draw(
        st.lists(
            st.one_of(offsets.map(Selection.cursor), st.builds(Selection, offsets, offsets)),
            min_size=1,
            max_size=5,
        )
    )


def model_map(offset: int, ascending: list[TextEdit], bias: Bias) -> int:
    """Walk the batch from the start, counting the new text's length up to where `offset` lands.

    (Applying the changes one at a time in either order is not a model: once a deletion collapses
    a position onto an insertion point, which side of the insertion it came from is lost.)
    """
    written = 0  # length of the new text produced so far
    consumed = 0  # offset in the old text up to which it has been produced
    for edit in ascending:
        unchanged = edit.start - consumed
        if offset < edit.start:
            return written + offset - consumed
        if offset == edit.start and (edit.start < edit.end or bias is Bias.BEFORE):
            return written + unchanged  # before a replacement, or before an insertion
        if offset < edit.end:  # strictly inside a replaced range
            return written + unchanged + (len(edit.text) if bias is Bias.AFTER else 0)
        written += unchanged + len(edit.text)
        consumed = edit.end
    return written + offset - consumed


def model_select(selection: Selection, ascending: list[TextEdit], bias: Bias) -> Selection:
    if selection.empty:
        return Selection.cursor(model_map(selection.head, ascending, bias))
    start = model_map(selection.start, ascending, Bias.AFTER)
    end = model_map(selection.end, ascending, Bias.BEFORE)
    if start > end:
        return Selection.cursor(model_map(selection.start, ascending, bias))
    return Selection(end, start) if selection.backward else Selection(start, end)


def check_normalized(result: SelectionSet, parts: list[Selection], primary: int) -> None:
    """`result` is what merging `parts` (with `parts[primary]` primary) must give."""
    selections = list(result)
    for a, b in pairwise(selections):
        assert a.end <= b.start
        if a.empty or b.empty:
            assert a.end < b.start, "a cursor touching a selection must have merged"
    for part in parts:
        assert any(r.start <= part.start and part.end <= r.end for r in selections)
    for r in selections:
        inside = [p for p in parts if r.start <= p.start and p.end <= r.end]
        assert min(p.start for p in inside) == r.start
        assert max(p.end for p in inside) == r.end
        ranges = [p for p in inside if not p.empty]
        if len(ranges) == 1 and (ranges[0].start, ranges[0].end) == (r.start, r.end):
            assert r.backward == ranges[0].backward  # a lone range keeps its direction
    chosen = result.primary
    assert chosen.start <= parts[primary].start
    assert parts[primary].end <= chosen.end
    if not parts[primary].empty:
        assert chosen.backward == parts[primary].backward


def model_position(text: str, offset: int, encoding: str) -> tuple[int, int]:
    lines = _BREAK.split(text[:offset])
    codec, width = _CODEC[encoding]
    return len(lines) - 1, len(lines[-1].encode(codec, "surrogatepass")) // width


def inside_crlf(text: str, offset: int) -> bool:
    return 0 < offset < len(text) and text[offset - 1] == "\r" and text[offset] == "\n"


# --- properties -------------------------------------------------------------------------------


@given(texts, st.data(), biases)
def test_selections_map_like_the_walking_model(text: str, data: st.DataObject, bias: Bias) -> None:
    edits = data.draw(ascending_batches(len(text)))
    for selection in data.draw(selection_lists(len(text))):
        assert selection.map(edits, bias) == model_select(selection, edits, bias)
        assert map_offset(selection.head, edits, bias) == model_map(selection.head, edits, bias)


@given(texts, st.data(), biases)
def test_selection_sets_follow_buffer_records(text: str, data: st.DataObject, bias: Bias) -> None:
    given_selections = data.draw(selection_lists(len(text)))
    primary = data.draw(st.integers(0, len(given_selections) - 1))
    selections = SelectionSet(given_selections, primary)
    check_normalized(selections, given_selections, primary)
    buffer = Buffer(text)
    record = buffer.apply(data.draw(ascending_batches(len(text))))
    mapped = selections.map(record, bias)
    parts = [s.map(record, bias) for s in selections]
    check_normalized(mapped, parts, selections.primary_index)
    assert all(selection.end <= len(buffer.rope) for selection in mapped)
    # A selection no edit touches still selects the same text, the same way round.
    for selection, moved in zip(selections, parts, strict=True):
        if all(e.end < selection.start or e.start > selection.end for e in record.edits):
            assert buffer.text[moved.start : moved.end] == text[selection.start : selection.end]
            assert moved.backward == selection.backward


@given(texts, st.data(), st.sampled_from(list(_CODEC)))
def test_positions_round_trip(text: str, data: st.DataObject, encoding: str) -> None:
    rope = Rope(text)
    offsets = st.integers(0, len(text)).filter(lambda o: not inside_crlf(text, o))
    selection = Selection(data.draw(offsets), data.draw(offsets))
    anchor, head = selection.to_positions(rope, encoding)
    assert anchor == model_position(text, selection.anchor, encoding)
    assert head == model_position(text, selection.head, encoding)
    assert Selection.from_positions(rope, anchor, head, encoding) == selection
    selections = SelectionSet([selection, Selection.cursor(0)], primary=0)
    ranges = selections.to_positions(rope, encoding)
    back = SelectionSet.from_positions(rope, ranges, selections.primary_index, encoding)
    assert back == selections


# --- examples ---------------------------------------------------------------------------------


def test_a_cursor_at_an_insertion_point_stays_before_it_unless_it_is_typing() -> None:
    insert = [TextEdit(3, 3, "xyz")]
    assert Selection.cursor(3).map(insert) == Selection.cursor(3)
    assert Selection.cursor(3).map(insert, Bias.AFTER) == Selection.cursor(6)
    assert Selection.cursor(4).map(insert) == Selection.cursor(7)
    # Two insertions at one point: BEFORE stays before both, AFTER goes after both.
    both = [TextEdit(3, 3, "ab"), TextEdit(3, 3, "c")]
    assert map_offset(3, both) == 3
    assert map_offset(3, both, Bias.AFTER) == 6


def test_positions_in_a_deleted_range_collapse_to_its_start() -> None:
    delete = [TextEdit(2, 6)]
    for offset in range(2, 7):
        assert map_offset(offset, delete) == 2
        assert map_offset(offset, delete, Bias.AFTER) == 2
    assert map_offset(8, delete) == 4
    replace = [TextEdit(2, 6, "XY")]
    assert [map_offset(o, replace) for o in range(1, 8)] == [1, 2, 2, 2, 2, 4, 5]
    assert [map_offset(o, replace, Bias.AFTER) for o in range(1, 8)] == [1, 2, 4, 4, 4, 4, 5]


def test_a_selection_keeps_insertions_at_its_edges_outside() -> None:
    selection = Selection(2, 5)
    edges = [TextEdit(2, 2, "<"), TextEdit(5, 5, ">")]
    assert selection.map(edges) == Selection(3, 6)
    assert Selection(5, 2).map(edges) == Selection(6, 3)  # direction kept
    # The selected text replaced as a whole: the selection covers the new text.
    assert selection.map([TextEdit(2, 5, "abcd")]) == Selection(2, 6)
    # Both ends strictly inside a replaced range: a cursor, placed by the bias.
    assert Selection(3, 4).map([TextEdit(2, 6, "ab")]) == Selection.cursor(2)
    assert Selection(3, 4).map([TextEdit(2, 6, "ab")], Bias.AFTER) == Selection.cursor(4)


def test_selections_that_meet_after_an_edit_merge_and_the_primary_survives() -> None:
    selections = SelectionSet(
        [Selection.cursor(0), Selection.cursor(3), Selection(5, 7), Selection(9, 12)], primary=2
    )
    mapped = selections.map([TextEdit(1, 6)])  # the second cursor and the range's start meet
    assert list(mapped) == [Selection.cursor(0), Selection(1, 2), Selection(4, 7)]
    assert mapped.primary == Selection(1, 2)
    assert mapped.primary_index == 1
    # Backward primary wins the direction; touching ranges stay apart.
    merged = SelectionSet([Selection(0, 4), Selection(6, 2), Selection(6, 8)], primary=1)
    assert list(merged) == [Selection(6, 0), Selection(6, 8)]
    assert merged.primary_index == 0
    # A cursor has no direction to give: the range keeps its own.
    assert list(SelectionSet([Selection.cursor(3), Selection(5, 1)], primary=0)) == [
        Selection(5, 1)
    ]


def test_invalid_selections_and_batches() -> None:
    with pytest.raises(ValueError, match="at least one"):
        SelectionSet([])
    with pytest.raises(IndexError):
        SelectionSet([Selection.cursor(0)], primary=1)
    with pytest.raises(ValueError, match=">= 0"):
        Selection(-1, 0)
    with pytest.raises(InvalidEdit, match="ascending"):
        map_offset(0, [TextEdit(5, 6), TextEdit(1, 2)])
    with pytest.raises(InvalidEdit, match="ascending"):
        map_offset(0, [TextEdit(1, 4), TextEdit(2, 3)])


def test_selections_follow_buffer_records_including_undo() -> None:
    buffer = Buffer("alpha beta gamma")
    view = SelectionSet([Selection(6, 10), Selection.cursor(16)], primary=0)
    record = buffer.apply([TextEdit(0, 5, "A"), TextEdit(16, 16, "!")], origin="other")
    view = view.map(record)
    assert buffer.text[view.primary.start : view.primary.end] == "beta"
    assert view[1] == Selection.cursor(12)  # the other client's "!" went after our cursor
    undo = buffer.undo()
    assert undo is not None
    view = view.map(undo)
    assert buffer.text[view.primary.start : view.primary.end] == "beta"
    assert view[1] == Selection.cursor(16)
