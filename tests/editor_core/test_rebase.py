"""Rebasing: edits made against an older revision, moved over the changes made since.

Two models. For one batch applied in between, the expected text is the *union* of both batches
applied at once to the base text, the batch already applied first among insertions at one point;
the expected conflicts are the pairs whose ranges overlap (``a.start < b.end and b.start <
a.end``). For many revisions in between (edits, typing, undo, redo), a hop-by-hop restatement of
the rule: an edit shifts by every change that ends at or before its start, and conflicts with one
that overlaps it.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from symphony.editor_core import _rope
from symphony.editor_core._exceptions import InvalidEdit, RevisionConflict, UnknownRevision
from symphony.editor_core.buffer import Buffer, PositionEdit, TextEdit

_pieces = st.sampled_from(["a", "b", "\n", "\r", "\r\n", "é", "😀", " "])
texts = st.one_of(st.lists(_pieces, max_size=30).map("".join), st.text(max_size=30))
_SNIPPETS = ["", "", "x", "yz", "\n", "\r", "\r\n", "😀", "é", "a\r", "\nb"]
edit_texts = st.one_of(st.sampled_from(_SNIPPETS), st.text(max_size=3))


@pytest.fixture(autouse=True)
def small_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_rope, "MIN_LEAF", 2)
    monkeypatch.setattr(_rope, "MAX_LEAF", 8)
    monkeypatch.setattr(_rope, "BUILD_LEAF", 4)
    monkeypatch.setattr(_rope, "MIN_CHILDREN", 2)
    monkeypatch.setattr(_rope, "MAX_CHILDREN", 4)


@st.composite
def batches(draw: st.DrawFn, length: int, max_edits: int = 4) -> list[TextEdit]:
    """A valid batch on a text of `length` code points, in random order."""
    count = draw(st.integers(0, max_edits))
    cuts = sorted(draw(st.lists(st.integers(0, length), min_size=2 * count, max_size=2 * count)))
    edits = [TextEdit(cuts[2 * i], cuts[2 * i + 1], draw(edit_texts)) for i in range(count)]
    return draw(st.permutations(edits))


def real(edits: list[TextEdit]) -> list[TextEdit]:
    """The edits that change something (a buffer drops no-ops)."""
    return [e for e in edits if e.start != e.end or e.text]


def overlaps(a: TextEdit, b: TextEdit) -> bool:
    return a.start < b.end and b.start < a.end


def model_apply(text: str, edits: list[TextEdit]) -> str:
    pieces, position = [], 0
    for edit in sorted(edits, key=lambda e: (e.start, e.end)):
        pieces.append(text[position : edit.start])
        pieces.append(edit.text)
        position = edit.end
    pieces.append(text[position:])
    return "".join(pieces)


def model_union(text: str, applied: list[TextEdit], late: list[TextEdit]) -> str:
    """Both batches at once on the base text; among equal ranges, the applied one first."""
    tagged = [(e, 0) for e in applied] + [(e, 1) for e in late]
    ordered = sorted(tagged, key=lambda p: (p[0].start, p[0].end, p[1]))
    return model_apply(text, [e for e, _ in ordered])


@given(texts, st.data())
def test_rebase_over_one_batch_equals_applying_both_at_once(text: str, data: st.DataObject) -> None:
    applied = data.draw(batches(len(text)), label="applied")
    late = data.draw(batches(len(text)), label="late")
    buffer = Buffer(text)
    buffer.apply(applied, origin="first")
    conflict = any(overlaps(a, b) for a in real(applied) for b in real(late))
    if conflict:
        with pytest.raises(RevisionConflict) as caught:
            buffer.apply(late, base_revision=0, origin="second")
        assert caught.value.base_revision == 0
        assert caught.value.current_revision == 1
        assert buffer.revision == 1
        assert buffer.text == model_apply(text, applied)
        return
    expected = model_union(text, real(applied), real(late))
    rebased = buffer.rebase(late, 0)
    assert model_apply(buffer.text, rebased) == expected
    record = buffer.apply(late, base_revision=0, origin="second")
    assert buffer.text == expected
    assert record.edits == tuple(rebased)
    assert record.origin == "second"


@given(texts, st.data())
def test_rebase_over_many_revisions_matches_the_hop_by_hop_rule(
    text: str, data: st.DataObject
) -> None:
    buffer = Buffer(text, revision=3)
    late = data.draw(batches(len(text)), label="late")
    for step in range(data.draw(st.integers(1, 5))):
        action = data.draw(st.sampled_from(["edit", "type", "undo", "redo"]), label=f"{step}")
        if action == "edit":
            buffer.apply(data.draw(batches(len(buffer.rope)), label=f"batch {step}"))
        elif action == "type":
            at = data.draw(st.integers(0, len(buffer.rope)))
            for ch in "ab":
                buffer.apply([TextEdit(at, at, ch)])
                at += 1
        elif action == "undo":
            buffer.undo()
        else:
            buffer.redo()
    # In base-text order: when a deletion brings two of them to one point, that order stays.
    moved: list[TextEdit] | None = sorted(real(late), key=lambda e: (e.start, e.end))
    for record in buffer.changes_since(3):
        assert moved is not None
        if any(overlaps(c, e) for c in record.edits for e in moved):
            moved = None
            break
        moved = [
            TextEdit(e.start + shift, e.end + shift, e.text)
            for e in moved
            for shift in [sum(c.delta for c in record.edits if c.end <= e.start)]
        ]
    current = buffer.text
    if moved is None:
        with pytest.raises(RevisionConflict) as caught:
            buffer.apply(late, base_revision=3)
        assert caught.value.current_revision == buffer.revision
        assert buffer.text == current
    else:
        buffer.apply(late, base_revision=3)
        assert buffer.text == model_apply(current, moved)


def test_the_tie_rules() -> None:
    buffer = Buffer("0123456789")
    buffer.apply([TextEdit(2, 2, "A"), TextEdit(8, 8, "B")])  # revision 1: "01A234567B89"
    # An insertion at an edit's start shifts it; at its end does not.
    assert buffer.rebase([TextEdit(2, 5, "x")], 0) == [TextEdit(3, 6, "x")]
    assert buffer.rebase([TextEdit(5, 8, "x")], 0) == [TextEdit(6, 9, "x")]
    # Two insertions at one point: the one already applied goes first.
    assert buffer.rebase([TextEdit(2, 2, "x")], 0) == [TextEdit(3, 3, "x")]
    # Conflicts: an insertion strictly inside, an edit across a replaced range.
    with pytest.raises(RevisionConflict, match=r"edit 1\.\.3 made against revision 0"):
        buffer.rebase([TextEdit(1, 3, "x")], 0)
    buffer.apply([TextEdit(4, 7, "")])  # revision 2 deletes "345" (revision 1 coordinates)
    with pytest.raises(RevisionConflict) as caught:
        buffer.rebase([TextEdit(4, 4, "x")], 0)  # inside the deleted range
    assert (caught.value.base_revision, caught.value.current_revision) == (0, 2)
    # Touching the deleted range from either side is fine.
    assert buffer.rebase([TextEdit(3, 3, "x"), TextEdit(6, 6, "y")], 0) == [
        TextEdit(4, 4, "x"),
        TextEdit(4, 4, "y"),
    ]


def test_rebasing_goes_through_undo_and_redo() -> None:
    buffer = Buffer("hello world")
    for i, ch in enumerate("abc"):
        buffer.apply([TextEdit(i, i, ch)])  # revisions 1..3
    buffer.undo()  # revision 4: back to "hello world"
    assert buffer.rebase([TextEdit(6, 11, "there")], 0) == [TextEdit(6, 11, "there")]
    buffer.redo()  # revision 5
    assert buffer.rebase([TextEdit(6, 11, "there")], 4) == [TextEdit(9, 14, "there")]
    buffer.apply([TextEdit(6, 11, "there")], base_revision=0)
    assert buffer.text == "abchello there"


def test_position_edits_resolve_against_the_base_revision() -> None:
    buffer = Buffer("a\r\nb\r\nc")
    buffer.apply([TextEdit(0, 0, "new\r\n")])  # revision 1 shifts every line down
    buffer.apply([PositionEdit((2, 0), (2, 1), "C")], base_revision=0)
    assert buffer.text == "new\r\na\r\nb\r\nC"
    # The same position against the current revision means a different line.
    buffer.apply([PositionEdit((2, 0), (2, 1), "B")])
    assert buffer.text == "new\r\na\r\nB\r\nC"


def test_unknown_revisions_and_invalid_batches() -> None:
    buffer = Buffer("abc", history_limit=3)
    for i in range(5):
        buffer.apply([TextEdit(i, i, "x")])
    assert buffer.oldest_revision == 2
    for revision in (1, 6):
        with pytest.raises(UnknownRevision) as caught:
            buffer.rebase([TextEdit(0, 0, "y")], revision)
        assert caught.value.revision == revision
        assert caught.value.current_revision == 5
        with pytest.raises(UnknownRevision):
            buffer.apply([TextEdit(0, 0, "y")], base_revision=revision)
    assert buffer.rebase([TextEdit(0, 1, "y")], 2) == [TextEdit(0, 1, "y")]
    assert buffer.rebase([TextEdit(8, 8, "y")], 5) == [TextEdit(8, 8, "y")]
    # Validity is judged on the base text: offset 6 exists now but not at revision 2.
    with pytest.raises(InvalidEdit, match="out of range"):
        buffer.rebase([TextEdit(6, 6, "y")], 2)
    with pytest.raises(InvalidEdit, match="overlap"):
        buffer.rebase([TextEdit(0, 2, "y"), TextEdit(1, 3, "z")], 2)
    assert buffer.revision == 5
