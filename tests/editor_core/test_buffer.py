"""Differential and property tests of ``Buffer`` against a plain ``str`` model.

The model applies a batch by sorting it stably by range and concatenating the pieces, decides
overlap pair by pair, converts LSP positions by splitting lines with a regex, and models undo as
a stack of groups of content states (the undo-grouping rule is restated from its specification
in the ``buffer`` module docstring). The rope's tree constants are shrunk (``small_tree``) so that
short texts span many leaves and chunk seams.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from symphony.editor_core import _rope
from symphony.editor_core._exceptions import InvalidEdit, UnknownRevision
from symphony.editor_core._rope import Rope
from symphony.editor_core.buffer import (
    Buffer,
    ChangeKind,
    ChangeRecord,
    LineEnding,
    LineEndings,
    PositionEdit,
    TextEdit,
    resolve_edits,
)

_BREAK = re.compile(r"\r\n|\r|\n")
_CODEC = {"utf-8": ("utf-8", 1), "utf-16": ("utf-16-le", 2), "utf-32": ("utf-32-le", 4)}
ENCODINGS = list(_CODEC)

# Line breaks of all three kinds (so edits split and join \r\n pairs), astral characters (two
# UTF-16 units, four UTF-8 bytes), two- and three-byte characters, and arbitrary Unicode.
_pieces = st.sampled_from(["a", "b", "\n", "\r", "\r\n", "é", "日", "😀", "\U0010ffff", " "])
texts = st.one_of(st.lists(_pieces, max_size=40).map("".join), st.text(max_size=40))
# Inserted text: one draw from snippets that split, join and extend \r\n pairs and carry
# multi-unit characters (cheap to generate), or arbitrary short Unicode.
_SNIPPETS = [
    "",
    "",
    "x",
    "yz",
    "\n",
    "\r",
    "\r\n",
    "\n\r",
    "😀",
    "é",
    "日本",
    "a\r",
    "\nb",
    "😀\r\n",
]
edit_texts = st.one_of(st.sampled_from(_SNIPPETS), st.text(max_size=4))


@pytest.fixture(autouse=True)
def small_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_rope, "MIN_LEAF", 2)
    monkeypatch.setattr(_rope, "MAX_LEAF", 8)
    monkeypatch.setattr(_rope, "BUILD_LEAF", 4)
    monkeypatch.setattr(_rope, "MIN_CHILDREN", 2)
    monkeypatch.setattr(_rope, "MAX_CHILDREN", 4)
    return


# --- the model --------------------------------------------------------------------------------


def model_overlaps(edits: list[TextEdit]) -> bool:
    return any(
        a.start < b.end and b.start < a.end for i, a in enumerate(edits) for b in edits[i + 1 :]
    )


def model_apply(text: str, edits: list[TextEdit]) -> str:
    ordered = sorted(edits, key=lambda e: (e.start, e.end))
    pieces, position = [], 0
    for edit in ordered:
        pieces.append(text[position : edit.start])
        pieces.append(edit.text)
        position = edit.end
    pieces.append(text[position:])
    return "".join(pieces)


def model_line_endings(text: str) -> tuple[int, int, int]:
    breaks = _BREAK.findall(text)
    return breaks.count("\n"), breaks.count("\r\n"), breaks.count("\r")


def model_position(text: str, offset: int, encoding: str) -> tuple[int, int]:
    lines = _BREAK.split(text[:offset])
    codec, width = _CODEC[encoding]
    return len(lines) - 1, len(lines[-1].encode(codec, "surrogatepass")) // width


def model_offset(text: str, line: int, character: int, encoding: str) -> int:
    """LSP position to offset: clamp to the line end, past the last line to the text's end."""
    parts = _BREAK.split(text)
    if line >= len(parts):
        return len(text)
    start = sum(len(p) for p in parts[:line]) + sum(len(b) for b in _BREAK.findall(text)[:line])
    codec, width = _CODEC[encoding]
    units = 0
    for i, ch in enumerate(parts[line]):
        units += len(ch.encode(codec, "surrogatepass")) // width
        if units > character:
            return start + i
    return start + len(parts[line])


def inside_crlf(text: str, offset: int) -> bool:
    return 0 < offset < len(text) and text[offset - 1] == "\r" and text[offset] == "\n"


def replay(text: str, record: ChangeRecord) -> str:
    """Apply a record's changes one after another, checking each range is one of `before`."""
    before = str(record.before)
    for change in record.changes:
        assert text[change.start : change.end] == before[change.start : change.end]
        text = text[: change.start] + change.text + text[change.end :]
    return text


@st.composite
def batches(draw: st.DrawFn, length: int, max_edits: int = 4) -> list[TextEdit]:
    """A valid batch on a text of `length` code points, in random order (may touch/coincide)."""
    count = draw(st.integers(0, max_edits))
    cuts = sorted(draw(st.lists(st.integers(0, length), min_size=2 * count, max_size=2 * count)))
    edits = [TextEdit(cuts[2 * i], cuts[2 * i + 1], draw(edit_texts)) for i in range(count)]
    return draw(st.permutations(edits))


@st.composite
def any_batches(draw: st.DrawFn, length: int) -> list[TextEdit]:
    """A batch that may overlap or run past the end of the text."""
    edits = []
    for _ in range(draw(st.integers(1, 4))):
        start = draw(st.integers(0, length + 1))
        end = draw(st.integers(start, length + 2))
        edits.append(TextEdit(start, end, draw(edit_texts)))
    return edits


# --- batches ----------------------------------------------------------------------------------


@given(texts, st.data())
def test_batches_match_the_str_model(text: str, data: st.DataObject) -> None:
    buffer = Buffer(text)
    model = text
    for step in range(3):
        if data.draw(st.booleans(), label="valid"):
            edits = data.draw(batches(len(model)), label=f"batch {step}")
        else:
            edits = data.draw(any_batches(len(model)), label=f"batch {step}")
        revision = buffer.revision
        if model_overlaps(edits) or any(e.end > len(model) for e in edits):
            with pytest.raises(InvalidEdit):
                buffer.apply(edits)
            assert buffer.text == model
            assert buffer.revision == revision
            continue
        record = buffer.apply(edits, origin=("client", step))
        expected = model_apply(model, edits)
        assert buffer.text == expected
        assert record.revision == buffer.revision == revision + 1
        assert record.base_revision == revision
        assert record.origin == ("client", step)
        assert record.kind is ChangeKind.EDIT
        assert str(record.before) == model
        assert record.after is buffer.rope
        assert replay(model, record) == expected
        assert model_apply(model, list(record.edits)) == expected
        assert buffer.line_count == len(_BREAK.split(expected))
        lf, crlf, cr = model_line_endings(expected)
        assert buffer.line_endings == LineEndings(lf=lf, crlf=crlf, cr=cr)
        assert buffer.rope_at(revision) == record.before
        model = expected
    buffer._check_invariants()


def test_two_insertions_at_one_point_keep_the_given_order() -> None:
    buffer = Buffer("a\r\nb")
    record = buffer.apply([TextEdit(2, 2, "1"), TextEdit(1, 2, "R"), TextEdit(2, 2, "2")])
    assert buffer.text == "aR12\nb"
    # Sequential order: descending, and the later of two insertions at one point first.
    assert record.changes == (TextEdit(2, 2, "2"), TextEdit(2, 2, "1"), TextEdit(1, 2, "R"))


def test_overlap_error_names_both_ranges_and_changes_nothing() -> None:
    buffer = Buffer("hello world")
    with pytest.raises(InvalidEdit, match=r"2\.\.5 and 4\.\.7"):
        buffer.apply([TextEdit(4, 7, "x"), TextEdit(0, 0, "a"), TextEdit(2, 5, "y")])
    with pytest.raises(InvalidEdit, match="out of range"):
        buffer.apply([TextEdit(0, 1, ""), TextEdit(11, 12, "")])
    assert buffer.text == "hello world"
    assert buffer.revision == 0
    assert not buffer.dirty
    with pytest.raises(InvalidEdit):
        TextEdit(3, 2, "")
    # An insertion at the start of a replaced range, or where one ends, is no overlap.
    buffer.apply([TextEdit(6, 11, "there"), TextEdit(6, 6, "out "), TextEdit(0, 5, "hi")])
    assert buffer.text == "hi out there"


@given(texts, st.data(), st.sampled_from(ENCODINGS))
def test_position_edits_equal_offset_edits(text: str, data: st.DataObject, encoding: str) -> None:
    edits = [
        e
        for e in data.draw(batches(len(text)))
        if not inside_crlf(text, e.start) and not inside_crlf(text, e.end)
    ]
    positioned = [
        PositionEdit(
            model_position(text, e.start, encoding), model_position(text, e.end, encoding), e.text
        )
        for e in edits
    ]
    by_offset, by_position = Buffer(text), Buffer(text)
    by_offset.apply(edits)
    by_position.apply(positioned, encoding=encoding)
    assert by_position.text == by_offset.text == model_apply(text, edits)


def test_positions_clamp_and_bad_positions_are_invalid_edits() -> None:
    rope = Rope("ab\r\n😀c\n")
    # Past the line end clamps to it; past the last line to the end; inside a surrogate pair
    # rounds down.
    assert resolve_edits(rope, [PositionEdit((0, 9), (5, 0), "x")]) == [TextEdit(2, 7, "x")]
    assert resolve_edits(rope, [PositionEdit((1, 1), (1, 2), "")]) == [TextEdit(4, 5, "")]
    assert resolve_edits(rope, [PositionEdit((1, 4), (1, 4), "")], "utf-8") == [TextEdit(5, 5)]
    with pytest.raises(InvalidEdit):
        resolve_edits(rope, [PositionEdit((-1, 0), (0, 0), "")])
    with pytest.raises(InvalidEdit, match="end comes before the start"):
        resolve_edits(rope, [PositionEdit((1, 0), (0, 1), "")])
    with pytest.raises(InvalidEdit, match="encoding"):
        resolve_edits(rope, [PositionEdit((0, 0), (0, 0), "")], "latin-1")


@given(texts, st.data(), st.sampled_from(ENCODINGS))
def test_content_changes_replay_as_lsp_content_changes(
    text: str, data: st.DataObject, encoding: str
) -> None:
    buffer = Buffer(text)
    record = buffer.apply(data.draw(batches(len(text))))
    replayed = text
    for change in record.content_changes(encoding):
        start = model_offset(replayed, *change.start, encoding)
        end = model_offset(replayed, *change.end, encoding)
        # Exact positions: converting back gives the same position (nothing was clamped).
        assert model_position(replayed, start, encoding) == change.start
        assert model_position(replayed, end, encoding) == change.end
        replayed = replayed[:start] + change.text + replayed[end:]
    assert replayed == buffer.text


def test_content_changes_never_point_inside_a_crlf_pair() -> None:
    buffer = Buffer("ab\r\ncd")
    record = buffer.apply([TextEdit(3, 3, "x")])
    assert buffer.text == "ab\rx\ncd"
    assert record.content_changes() == [PositionEdit((0, 2), (1, 0), "\rx\n")]
    record = buffer.apply([TextEdit(3, 4, "")])  # delete the "x": \r and \n join again
    assert record.content_changes() == [PositionEdit((1, 0), (1, 1), "")]
    record = buffer.apply([TextEdit(3, 3, "")])  # a no-op inside the pair: no change at all
    assert record.content_changes() == []
    record = buffer.apply([TextEdit(1, 3, ""), TextEdit(4, 5, "D")])  # ends on both sides
    assert record.content_changes() == [
        PositionEdit((1, 0), (1, 1), "D"),
        PositionEdit((0, 1), (1, 0), "\n"),
    ]
    assert buffer.text == "a\nDd"


@given(texts, texts)
def test_set_text_changes_only_the_difference(old: str, new: str) -> None:
    buffer = Buffer(old)
    record = buffer.set_text(new)
    assert buffer.text == new
    assert len(record.changes) <= 1
    if record.changes:
        change = record.changes[0]
        assert old[: change.start] == new[: change.start]
        assert old[change.end :] == new[len(new) - (len(old) - change.end) :]
        assert change.text == new[change.start : len(new) - (len(old) - change.end)]
    else:
        assert old == new
    buffer.undo()
    assert buffer.text == old


class TestRealConstants:
    """Large texts, at the real tree constants."""

    @pytest.fixture(autouse=True)
    def small_tree(self) -> None:  # overrides the module fixture: keep the real constants
        return None

    def test_set_text_on_a_large_text_finds_a_small_difference(self) -> None:
        line = "    return value  # é😀\r\n"
        old = line * 40_000
        new = old[:500_000] + "X" + old[500_003:]
        buffer = Buffer(old)
        record = buffer.set_text(new)
        assert record.changes == (TextEdit(500_000, 500_003, "X"),)
        assert buffer.text == new
        assert buffer.line_ending is LineEnding.CRLF


# --- line endings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "newline"),
    [
        ("", LineEnding.NONE, "\n"),
        ("no break", LineEnding.NONE, "\n"),
        ("a\nb\n", LineEnding.LF, "\n"),
        ("a\r\nb\r\n", LineEnding.CRLF, "\r\n"),
        ("a\rb\r", LineEnding.CR, "\r"),
        ("a\r\nb\r\nc\n", LineEnding.MIXED, "\r\n"),
        ("a\nb\r\n", LineEnding.MIXED, "\n"),  # a tie prefers \n
        ("\r\r\n\r", LineEnding.MIXED, "\r"),
    ],
)
def test_line_ending_detection(text: str, kind: LineEnding, newline: str) -> None:
    buffer = Buffer(text)
    assert buffer.line_ending is kind
    assert buffer.newline == newline
    assert LineEndings.of(text) == LineEndings.of(Rope(text)) == buffer.line_endings
    assert buffer.text == text  # never translated


def test_joining_a_crlf_pair_across_chunks_counts_once() -> None:
    buffer = Buffer("a\r" + "b" * 50 + "\nc")
    assert buffer.line_endings == LineEndings(lf=1, crlf=0, cr=1)
    buffer.apply([TextEdit(2, 52, "")])
    assert buffer.line_endings == LineEndings(lf=0, crlf=1, cr=0)
    assert buffer.line_ending is LineEnding.CRLF
    buffer.apply([TextEdit(2, 2, "x")])
    assert buffer.line_ending is LineEnding.MIXED


# --- undo, redo, grouping, dirty: examples -------------------------------------------------------


def type_text(buffer: Buffer, at: int, text: str, origin: object = None) -> int:
    for ch in text:
        buffer.apply([TextEdit(at, at, ch)], origin=origin)
        at += 1
    return at


def test_consecutive_typing_is_one_undo_group_and_a_newline_breaks_it() -> None:
    buffer = Buffer("")
    at = type_text(buffer, 0, "hello")
    at = type_text(buffer, at, "\n")
    type_text(buffer, at, "world")
    assert buffer.text == "hello\nworld"
    undo = buffer.undo()
    assert undo is not None
    assert undo.kind is ChangeKind.UNDO
    assert undo.changes == (TextEdit(6, 11, ""),)  # one change for five keystrokes
    assert buffer.text == "hello\n"
    buffer.undo()
    assert buffer.text == "hello"
    buffer.undo()
    assert buffer.text == ""
    assert buffer.undo() is None
    assert buffer.revision == 14  # 11 keystrokes, 3 undos: revisions never go back
    redo = buffer.redo()
    assert redo is not None
    assert redo.kind is ChangeKind.REDO
    assert buffer.text == "hello"


def test_backspaces_group_separately_from_inserts() -> None:
    buffer = Buffer("XYZ")
    type_text(buffer, 0, "abcd")
    buffer.apply([TextEdit(3, 4, "")])  # backspace, backspace, then delete forward
    buffer.apply([TextEdit(2, 3, "")])
    buffer.apply([TextEdit(2, 3, "")])
    assert buffer.text == "abYZ"
    buffer.undo()
    assert buffer.text == "abcdXYZ"
    buffer.undo()
    assert buffer.text == "XYZ"


def test_backspacing_over_a_line_break_is_its_own_group() -> None:
    buffer = Buffer("ab\r\ncd")
    for start in (5, 4, 3, 2, 1):  # d, c, the \n of the pair, the now lone \r, b
        buffer.apply([TextEdit(start, start + 1, "")])
    assert buffer.text == "a"
    expected = ["ab", "ab\r", "ab\r\n", "ab\r\ncd"]
    for text in expected:
        buffer.undo()
        assert buffer.text == text
    assert not buffer.can_undo


def test_typing_from_two_origins_or_elsewhere_starts_new_groups() -> None:
    buffer = Buffer("0123456789")
    type_text(buffer, 10, "ab", origin="alice")
    type_text(buffer, 0, "xy", origin="bob")
    type_text(buffer, 14, "cd", origin="alice")  # alice continues, but bob typed in between
    assert buffer.text == "xy0123456789abcd"
    buffer.undo()
    assert buffer.text == "xy0123456789ab"
    type_text(buffer, 5, "QR")
    type_text(buffer, 0, "S")  # not where the previous typing left the cursor
    buffer.undo()
    assert buffer.text == "xy012QR3456789ab"


def test_typing_that_continues_another_origins_cursor_is_a_new_group() -> None:
    buffer = Buffer("")
    buffer.apply([TextEdit(0, 0, "a")], origin="alice")
    buffer.apply([TextEdit(1, 1, "b")], origin="bob")  # right where alice's cursor is
    buffer.apply([TextEdit(2, 2, "c")], origin="bob")
    buffer.undo()
    assert buffer.text == "a"


def test_multi_cursor_typing_merges() -> None:
    buffer = Buffer("a\nb\nc")
    cursors = [1, 3, 5]
    for ch in "xyz":
        record = buffer.apply([TextEdit(c, c, ch) for c in cursors])
        cursors = [c + i + 1 for i, c in enumerate(cursors)]
        assert len(record.changes) == 3
    assert buffer.text == "axyz\nbxyz\ncxyz"
    buffer.undo()
    assert buffer.text == "a\nb\nc"


def test_explicit_groups_and_breaks() -> None:
    buffer = Buffer("one two")
    with buffer.undo_group():
        buffer.apply([TextEdit(0, 3, "1")])
        with buffer.undo_group():
            buffer.apply([TextEdit(2, 5, "2")])
        buffer.apply([TextEdit(0, 0, ">")])
    assert buffer.text == ">1 2"
    type_text(buffer, 4, "ab")
    buffer.break_undo_group()
    type_text(buffer, 6, "cd")
    buffer.undo()
    assert buffer.text == ">1 2ab"
    buffer.undo()
    assert buffer.text == ">1 2"
    record = buffer.undo()
    assert buffer.text == "one two"
    assert record is not None
    # The group's three batches were composed into one: two changes, the space untouched.
    assert record.changes == (TextEdit(3, 4, "two"), TextEdit(0, 2, "one"))


def test_undo_inside_a_group_ends_it() -> None:
    buffer = Buffer("")
    with buffer.undo_group():
        buffer.apply([TextEdit(0, 0, "a")])
        buffer.apply([TextEdit(1, 1, "b")])
        buffer.undo()
        assert buffer.text == ""
        buffer.apply([TextEdit(0, 0, "c")])
        buffer.apply([TextEdit(1, 1, "d")])
    assert buffer.text == "cd"
    assert not buffer.can_redo  # a new edit cleared it
    buffer.undo()
    assert buffer.text == ""
    assert not buffer.can_undo


def test_dirty_follows_content_states_through_save_undo_redo() -> None:
    buffer = Buffer("text")
    assert not buffer.dirty
    type_text(buffer, 4, "abc")
    assert buffer.dirty
    buffer.mark_saved()
    assert not buffer.dirty
    assert buffer.saved_revision == buffer.revision
    type_text(buffer, 7, "de")  # saving broke the group: this is a new one
    assert buffer.dirty
    buffer.undo()
    assert buffer.text == "textabc"
    assert not buffer.dirty  # back to exactly the saved content
    buffer.undo()
    assert buffer.text == "text"
    assert buffer.dirty  # undo past the save
    buffer.redo()
    assert not buffer.dirty
    buffer.redo()
    assert buffer.dirty
    buffer.mark_unsaved()  # e.g. the file was deleted
    buffer.undo()
    assert buffer.dirty
    assert buffer.saved_revision is None


def test_a_change_and_its_reverse_stay_dirty() -> None:
    buffer = Buffer("abc")
    buffer.apply([TextEdit(3, 3, "d")])
    buffer.apply([TextEdit(3, 4, "")])
    assert buffer.text == "abc"
    assert buffer.dirty  # states, not content comparison: O(1) and no false "clean"
    buffer.undo()
    buffer.undo()
    assert not buffer.dirty


def test_saving_an_older_revision_inside_a_typing_group_splits_it() -> None:
    buffer = Buffer("")
    type_text(buffer, 0, "abcd")  # revisions 1..4, one typing group
    buffer.mark_saved(2)  # the snapshot of "ab" was written while typing went on
    assert buffer.dirty
    type_text(buffer, 4, "e")  # still the same typing group as "cd"
    buffer.undo()
    assert buffer.text == "ab"
    assert not buffer.dirty
    buffer.undo()
    assert buffer.text == ""
    assert buffer.dirty
    buffer.redo()
    assert not buffer.dirty
    buffer.redo()
    assert buffer.text == "abcde"
    # A save of a revision the buffer no longer remembers is refused.
    small = Buffer("", history_limit=2)
    type_text(small, 0, "abcd")
    with pytest.raises(UnknownRevision):
        small.mark_saved(1)
    with pytest.raises(UnknownRevision):
        small.mark_saved(5)


def test_saving_an_undone_revision_splits_a_group_on_the_redo_stack() -> None:
    buffer = Buffer("")
    type_text(buffer, 0, "abc")
    buffer.undo()
    buffer.mark_saved(2)  # the save of "ab" finished after the undo
    assert buffer.dirty
    buffer.redo()
    assert buffer.text == "ab"
    assert not buffer.dirty
    buffer.redo()
    assert buffer.text == "abc"


def test_no_op_batches_make_a_revision_but_no_undo_step() -> None:
    buffer = Buffer("abc")
    type_text(buffer, 3, "d")
    record = buffer.apply([TextEdit(1, 1, "")])
    assert record.changes == ()
    assert record.revision == 2
    type_text(buffer, 4, "e")  # still merges with "d"
    buffer.undo()
    assert buffer.text == "abc"


@given(texts, st.data())
def test_undo_all_returns_the_original_and_redo_all_the_final(
    text: str, data: st.DataObject
) -> None:
    buffer = Buffer(text)
    for step in range(data.draw(st.integers(1, 4))):
        buffer.apply(data.draw(batches(len(buffer.text))), origin=step % 2)
        if data.draw(st.booleans()):
            buffer.break_undo_group()
    final = buffer.text
    revision = buffer.revision
    while buffer.undo() is not None:
        assert buffer.revision > revision
        revision = buffer.revision
    assert buffer.text == text
    assert not buffer.dirty
    while buffer.redo() is not None:
        pass
    assert buffer.text == final
    buffer._check_invariants()


# --- history ----------------------------------------------------------------------------------


def test_history_is_bounded_by_count_and_by_text_budget() -> None:
    buffer = Buffer("", history_limit=5)
    type_text(buffer, 0, "abcdefghij")
    assert buffer.revision == 10
    assert buffer.oldest_revision == 5
    assert str(buffer.rope_at(5)) == "abcde"
    assert [r.revision for r in buffer.changes_since(7)] == [8, 9, 10]
    assert buffer.changes_since(10) == ()
    for revision in (4, 11):
        with pytest.raises(UnknownRevision) as caught:
            buffer.changes_since(revision)
        assert caught.value.revision == revision
        assert caught.value.current_revision == 10
    buffer.undo()  # undo does not depend on the history: the group keeps what it needs
    assert buffer.text == ""

    budget = Buffer("", history_budget=10)
    budget.apply([TextEdit(0, 0, "x" * 6)])
    budget.apply([TextEdit(0, 0, "y" * 3)])
    assert budget.oldest_revision == 0
    budget.apply([TextEdit(0, 0, "z" * 3)])  # 12 code points > 10: the oldest goes
    assert budget.oldest_revision == 1
    budget.apply([TextEdit(0, 12, "big" * 10)])  # alone over budget: only it is kept
    assert budget.oldest_revision == 3
    budget._check_invariants()


def test_undo_is_bounded_by_group_count_and_by_text_budget() -> None:
    buffer = Buffer("", undo_limit=3)
    for word in ("one ", "two ", "three ", "four "):
        buffer.apply([TextEdit(len(buffer.rope), len(buffer.rope), word)])
    undone = 0
    while buffer.undo() is not None:
        undone += 1
    assert undone == 3
    assert buffer.text == "one "

    budget = Buffer("", undo_budget=10)
    budget.apply([TextEdit(0, 0, "abcd")])  # a group of 4 inserted + 0 in its inverse
    budget.apply([TextEdit(4, 4, "efgh")])
    budget.apply([TextEdit(8, 8, "ijkl")])  # 12 > 10: the oldest group goes
    budget.undo()
    budget.undo()
    assert budget.undo() is None
    assert budget.text == "abcd"
    budget.redo()
    budget.apply([TextEdit(0, 8, "X" * 20)])  # alone over budget: kept, but nothing else
    assert budget.undo() is not None
    assert budget.undo() is None
    assert budget.text == "abcdefgh"
    budget._check_invariants()


def test_changes_since_replay_to_the_current_text() -> None:
    buffer = Buffer("fn main() {}\r\n")
    buffer.apply([TextEdit(11, 11, "\r\n    run();\r\n")])
    buffer.apply([TextEdit(0, 2, "pub fn")])
    buffer.undo()
    text = str(buffer.rope_at(0))
    assert text == "fn main() {}\r\n"
    records = buffer.changes_since(0)
    assert [r.kind for r in records] == [ChangeKind.EDIT, ChangeKind.EDIT, ChangeKind.UNDO]
    for record in records:
        assert str(record.before) == text
        text = replay(text, record)
        assert str(record.after) == text
    assert text == buffer.text
    assert records[-1].after == buffer.rope


# --- the state machine ------------------------------------------------------------------------


@dataclass(eq=False)
class Node:
    """A content state of the model (compared by identity, like the buffer's state tokens)."""

    text: str


@dataclass
class Typing:
    origin: object
    kind: str
    cursors: list[int]


def model_typing(text: str, edits: list[TextEdit], origin: object) -> Typing | None:
    """The grouping rule of the buffer module docstring, restated on the model."""
    if all(e.start == e.end and len(e.text) == 1 and e.text not in "\r\n" for e in edits):
        kind = "insert"
    elif all(e.end - e.start == 1 and not e.text and text[e.start] not in "\r\n" for e in edits):
        kind = "delete"
    else:
        return None
    cursors, shift = [], 0
    for e in edits:
        cursors.append(e.start + shift + len(e.text))
        shift += len(e.text) - (e.end - e.start)
    return Typing(origin, kind, cursors)


def continues(previous: Typing | None, now: Typing | None, edits: list[TextEdit]) -> bool:
    if previous is None or now is None:
        return False
    if (previous.origin, previous.kind, len(previous.cursors)) != (
        now.origin,
        now.kind,
        len(edits),
    ):
        return False
    if now.kind == "insert":
        return all(e.start == c for e, c in zip(edits, previous.cursors, strict=True))
    return all(c in (e.start, e.end) for e, c in zip(edits, previous.cursors, strict=True))


@dataclass
class Model:
    current: Node
    saved: Node | None
    revision: int = 0
    undo: list[list[Node]] = field(default_factory=list)  # [before, after 1, after 2, ...]
    redo: list[list[Node]] = field(default_factory=list)
    typing: Typing | None = None
    explicit: bool = False  # inside an undo_group block whose group is on top
    at_revision: dict[int, Node] = field(default_factory=dict)

    def edit(self, edits: list[TextEdit], origin: object, grouped: bool) -> None:
        self.revision += 1
        canonical = [
            e for e in sorted(edits, key=lambda e: (e.start, e.end)) if e.start != e.end or e.text
        ]
        if not canonical:
            self.at_revision[self.revision] = self.current
            return
        node = Node(model_apply(self.current.text, canonical))
        typing = None if grouped else model_typing(self.current.text, canonical, origin)
        merge = self.explicit if grouped else continues(self.typing, typing, canonical)
        if merge and self.undo:
            self.undo[-1].append(node)
        else:
            self.undo.append([self.current, node])
        self.explicit = grouped
        self.typing = typing
        self.redo.clear()
        self.current = node
        self.at_revision[self.revision] = node

    def break_group(self) -> None:
        self.typing = None
        self.explicit = False

    def undo_step(self) -> None:
        self.break_group()
        if self.undo:
            group = self.undo.pop()
            self.redo.append(group)
            self.current = group[0]
            self.revision += 1
            self.at_revision[self.revision] = self.current

    def redo_step(self) -> None:
        self.break_group()
        if self.redo:
            group = self.redo.pop()
            self.undo.append(group)
            self.current = group[-1]
            self.revision += 1
            self.at_revision[self.revision] = self.current

    def save(self, revision: int) -> None:
        node = self.at_revision[revision]
        if node is self.current:
            self.break_group()
        else:
            for stack, reverse in ((self.undo, False), (self.redo, True)):
                for index, group in enumerate(stack):
                    inner = [i for i, n in enumerate(group[1:-1], start=1) if n is node]
                    if inner:
                        head, tail = group[: inner[0] + 1], group[inner[0] :]
                        stack[index : index + 1] = [tail, head] if reverse else [head, tail]
                        break
        self.saved = node


class BufferMachine(RuleBasedStateMachine):
    """Random edits, typing, groups, undo, redo and saves, against the model."""

    def __init__(self) -> None:
        super().__init__()
        self.buffer = Buffer("")
        self.model = Model(current=Node(""), saved=None)
        self.model.saved = self.model.current
        self.model.at_revision[0] = self.model.current

    @rule(text=texts)
    def start_over(self, text: str) -> None:
        self.buffer = Buffer(text, revision=7)
        self.model = Model(current=Node(text), saved=None, revision=7)
        self.model.saved = self.model.current
        self.model.at_revision[7] = self.model.current

    @rule(data=st.data(), origin=st.sampled_from(["a", "b"]))
    def edit(self, data: st.DataObject, origin: str) -> None:
        edits = data.draw(batches(len(self.model.current.text)))
        self.buffer.apply(edits, origin=origin)
        self.model.edit(edits, origin, grouped=False)

    @rule(data=st.data(), kind=st.sampled_from(["insert", "backspace", "delete"]))
    def typing_run(self, data: st.DataObject, kind: str) -> None:
        """A few keystrokes, each continuing the last, each from either origin."""
        typing = self.model.typing
        if typing is not None and data.draw(st.booleans(), label="continue"):
            cursors = list(typing.cursors)
        else:
            size = len(self.model.current.text)
            cursors = sorted(set(data.draw(st.lists(st.integers(0, size), max_size=3))))
        for _ in range(data.draw(st.integers(1, 3), label="keystrokes")):
            origin = data.draw(st.sampled_from(["a", "b"]), label="origin")
            char = data.draw(st.sampled_from(["x", "😀", "é", "\n"]), label="char")
            size = len(self.model.current.text)
            if kind == "insert":
                edits = [TextEdit(c, c, char) for c in cursors]
            elif kind == "backspace":
                edits = [TextEdit(c - 1, c) for c in cursors if c > 0]
            else:
                edits = [TextEdit(c, c + 1) for c in cursors if c < size]
            if model_overlaps(edits):
                return
            self.buffer.apply(edits, origin=origin)
            self.model.edit(edits, origin, grouped=False)
            if self.model.typing is None:
                return
            cursors = list(self.model.typing.cursors)

    @rule(data=st.data())
    def grouped_edits(self, data: st.DataObject) -> None:
        with self.buffer.undo_group():
            self.model.break_group()
            for _ in range(data.draw(st.integers(1, 3))):
                edits = data.draw(batches(len(self.model.current.text)))
                self.buffer.apply(edits)
                self.model.edit(edits, None, grouped=True)
        self.model.break_group()

    @rule(text=texts)
    def set_text(self, text: str) -> None:
        self.buffer.set_text(text)
        self.model.break_group()
        old = self.model.current.text
        self.model.edit([TextEdit(0, len(old), text)] if old != text else [], None, False)
        self.model.break_group()

    @rule()
    def undo(self) -> None:
        record = self.buffer.undo()
        assert (record is None) == (not self.model.undo)
        self.model.undo_step()
        if record is not None:
            assert record.kind is ChangeKind.UNDO

    @rule()
    def redo(self) -> None:
        record = self.buffer.redo()
        assert (record is None) == (not self.model.redo)
        self.model.redo_step()

    @rule()
    def break_group(self) -> None:
        self.buffer.break_undo_group()
        self.model.break_group()

    @rule()
    def save(self) -> None:
        self.buffer.mark_saved()
        self.model.save(self.model.revision)

    @precondition(lambda self: self.model.revision > self.buffer.oldest_revision)
    @rule(data=st.data())
    def save_older_revision(self, data: st.DataObject) -> None:
        revision = data.draw(st.integers(self.buffer.oldest_revision, self.model.revision))
        self.buffer.mark_saved(revision)
        self.model.save(revision)

    @rule()
    def forget_save(self) -> None:
        self.buffer.mark_unsaved()
        self.model.saved = None

    @invariant()
    def matches_model(self) -> None:
        buffer, model = self.buffer, self.model
        note(f"text={model.current.text!r} revision={model.revision}")
        assert buffer.text == model.current.text
        assert buffer.revision == model.revision
        assert buffer.dirty == (model.saved is not model.current)
        assert buffer.can_undo == bool(model.undo)
        assert buffer.can_redo == bool(model.redo)
        lf, crlf, cr = model_line_endings(model.current.text)
        assert buffer.line_endings == LineEndings(lf=lf, crlf=crlf, cr=cr)

    def teardown(self) -> None:
        # The internal invariants replay the whole history: once per run, not once per step.
        self.buffer._check_invariants()


def test_buffer_state_machine() -> None:
    # Examples come from the profile; 12 steps each is enough to reach typing runs, groups,
    # saves inside groups and undo past them, and keeps 500 examples within seconds.
    run_state_machine_as_test(BufferMachine, settings=settings(stateful_step_count=12))
