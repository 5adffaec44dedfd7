"""Differential and property tests of the Rope against a plain ``str`` model.

The tree's tuning constants are shrunk for most tests (``small_tree``) so that texts of a few
dozen code points already make trees several levels deep, with every leaf seam, split and merge
exercised; a few tests run at the real constants on larger texts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from symphony.editor_core import _rope
from symphony.editor_core._rope import Rope

_BREAK = re.compile(r"\r\n|\r|\n")
_CODEC = {"utf-8": ("utf-8", 1), "utf-16": ("utf-16-le", 2), "utf-32": ("utf-32-le", 4)}

# Text that stresses what a rope gets wrong: line breaks of all three kinds (so \r\n pairs get
# split and joined by edits), astral characters (two UTF-16 units, four UTF-8 bytes), two- and
# three-byte characters, and arbitrary Unicode.
_pieces = st.sampled_from(["a", "b", "\n", "\r", "\r\n", "é", "日", "😀", "\U0010ffff", " "])
texts = st.one_of(
    st.lists(_pieces, max_size=60).map("".join),
    st.text(max_size=60),
)
edit_texts = st.one_of(
    st.lists(_pieces, max_size=12).map("".join),
    st.lists(_pieces, max_size=80).map("".join),
    st.text(max_size=10),
)


@pytest.fixture(autouse=True)
def small_tree(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(_rope, "MIN_LEAF", 2)
    monkeypatch.setattr(_rope, "MAX_LEAF", 8)
    monkeypatch.setattr(_rope, "BUILD_LEAF", 4)
    monkeypatch.setattr(_rope, "MIN_CHILDREN", 2)
    monkeypatch.setattr(_rope, "MAX_CHILDREN", 4)
    return


def model_lines(text: str) -> list[str]:
    return _BREAK.split(text)


def model_position(text: str, offset: int, encoding: str) -> tuple[int, int]:
    before = text[:offset]
    lines = model_lines(before)
    start = offset - len(lines[-1])
    codec, width = _CODEC[encoding]
    return len(lines) - 1, len(text[start:offset].encode(codec, "surrogatepass")) // width


def inside_crlf(text: str, offset: int) -> bool:
    return 0 < offset < len(text) and text[offset - 1] == "\r" and text[offset] == "\n"


@st.composite
def edit_scripts(draw: st.DrawFn) -> tuple[str, list[tuple[int, int, str]]]:
    text = draw(texts)
    length = len(text)
    script = []
    for _ in range(draw(st.integers(0, 12))):
        start = draw(st.integers(0, length))
        end = draw(st.integers(start, length))
        insert = draw(edit_texts)
        script.append((start, end, insert))
        length += len(insert) - (end - start)
    return text, script


@given(edit_scripts())
def test_edits_match_str_model(case: tuple[str, list[tuple[int, int, str]]]) -> None:
    text, script = case
    rope = Rope(text)
    model = text
    for start, end, insert in script:
        rope = rope.replace(start, end, insert)
        model = model[:start] + insert + model[end:]
        assert str(rope) == model
        rope._check_invariants()
    assert len(rope) == len(model)
    assert rope.utf8_len == len(model.encode("utf-8", "surrogatepass"))
    assert rope.utf16_len == len(model.encode("utf-16-le", "surrogatepass")) // 2
    assert rope.line_count == len(model_lines(model))


@given(edit_scripts())
def test_edits_share_structure_and_old_versions_stay_intact(
    case: tuple[str, list[tuple[int, int, str]]],
) -> None:
    text, script = case
    versions = [(Rope(text), text)]
    for start, end, insert in script:
        rope, model = versions[-1]
        versions.append((rope.replace(start, end, insert), model[:start] + insert + model[end:]))
    for rope, model in versions:
        assert str(rope) == model


@given(texts, st.data())
def test_insert_and_delete_are_replace(text: str, data: st.DataObject) -> None:
    rope = Rope(text)
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    insert = data.draw(edit_texts)
    assert str(rope.insert(start, insert)) == text[:start] + insert + text[start:]
    assert str(rope.delete(start, end)) == text[:start] + text[end:]


@given(texts, st.data())
def test_slice_matches_str(text: str, data: st.DataObject) -> None:
    rope = Rope(text)
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    assert rope.slice(start, end) == text[start:end]


@given(edit_scripts())
def test_lines_chunks_and_line_match_model(case: tuple[str, list[tuple[int, int, str]]]) -> None:
    text, script = case
    rope = Rope(text)
    for start, end, insert in script:
        rope = rope.replace(start, end, insert)
        text = text[:start] + insert + text[end:]
    expected = model_lines(text)
    assert list(rope.lines()) == expected
    assert rope.line_count == len(expected)
    assert [rope.line(i) for i in range(len(expected))] == expected
    assert "".join(rope.chunks()) == text
    for i in range(len(expected) + 1):
        assert rope.line_start(i) == _model_line_start(text, i)


def _model_line_start(text: str, index: int) -> int:
    if index == 0:
        return 0
    breaks = list(_BREAK.finditer(text))
    return breaks[index - 1].end() if index <= len(breaks) else len(text)


@given(edit_scripts(), st.sampled_from(["utf-8", "utf-16", "utf-32"]))
def test_position_conversions_match_model_and_round_trip(
    case: tuple[str, list[tuple[int, int, str]]], encoding: str
) -> None:
    text, script = case
    rope = Rope(text)
    for start, end, insert in script:
        rope = rope.replace(start, end, insert)
        text = text[:start] + insert + text[end:]
    note(repr(text))
    for offset in range(len(text) + 1):
        position = rope.position_at(offset, encoding)
        if inside_crlf(text, offset):
            # Between \r and \n is no place a cursor can be: it maps to the end of its line.
            line, _ = position
            assert rope.offset_at(*position, encoding) == offset - 1
            assert line == len(model_lines(text[:offset])) - 2
            continue
        assert position == model_position(text, offset, encoding)
        assert rope.offset_at(*position, encoding) == offset


@given(texts, st.integers(0, 70), st.integers(0, 300), st.sampled_from(["utf-8", "utf-16"]))
def test_offset_at_clamps_and_rounds_down(
    text: str, line: int, character: int, encoding: str
) -> None:
    rope = Rope(text)
    lines = model_lines(text)
    offset = rope.offset_at(line, character, encoding)
    if line >= len(lines):
        assert offset == len(text)
        return
    start = _model_line_start(text, line)
    content = lines[line]
    codec, width = _CODEC[encoding]
    # The model: the longest prefix of the line whose encoding fits in `character` units.
    fits = 0
    for k in range(len(content) + 1):
        if len(content[:k].encode(codec, "surrogatepass")) // width <= character:
            fits = k
    assert offset == start + fits


def test_line_counts_follow_lsp() -> None:
    assert Rope("").line_count == 1
    assert Rope("a\n").line_count == 2
    assert Rope("a\r\nb").line_count == 2
    assert Rope("a\rb\nc").line_count == 3
    assert Rope("\r\n\r\n").line_count == 3
    assert list(Rope("").lines()) == [""]


def test_crlf_stays_one_break_when_split_and_joined() -> None:
    rope = Rope("ab\r\ncd")
    assert rope.line_count == 2
    split = rope.insert(3, "X")  # between \r and \n: now two breaks
    assert str(split) == "ab\rX\ncd"
    assert split.line_count == 3
    joined = split.delete(3, 4)  # and back to one
    assert joined.line_count == 2
    assert joined.line(0) == "ab"
    joined._check_invariants()
    # Joining across a leaf seam: a \r at the end of one leaf meets a \n from an insert.
    rope = Rope("x" * 7 + "\r" + "y" * 20)
    rope = rope.insert(8, "\n")
    rope._check_invariants()
    assert rope.line_count == 2
    assert rope.line(1) == "y" * 20


def test_surrogate_pair_and_multibyte_positions_round_down() -> None:
    rope = Rope("a😀b")
    assert rope.offset_at(0, 2, "utf-16") == 1  # inside the surrogate pair: start of 😀
    assert rope.offset_at(0, 3, "utf-16") == 2
    assert rope.offset_at(0, 3, "utf-8") == 1  # inside the 4-byte sequence
    assert rope.offset_at(0, 5, "utf-8") == 2
    assert rope.position_at(2, "utf-16") == (0, 3)
    assert rope.position_at(2, "utf-8") == (0, 5)
    assert rope.position_at(2, "utf-32") == (0, 2)


def test_lone_surrogates_are_measured_not_rejected() -> None:
    rope = Rope("a\ud800b")
    assert rope.utf16_len == 3
    assert rope.utf8_len == 5
    assert rope.position_at(3, "utf-8") == (0, 5)
    assert rope.offset_at(0, 2, "utf-8") == 1  # inside the surrogate's three bytes


def test_out_of_range_offsets_name_the_valid_range() -> None:
    rope = Rope("hello")
    with pytest.raises(IndexError, match=r"0 <= start <= end <= 5"):
        rope.insert(6, "x")
    with pytest.raises(IndexError, match=r"0 <= start <= end <= 5"):
        rope.delete(3, 2)
    with pytest.raises(IndexError, match=r"0 <= start <= end <= 5"):
        rope.slice(-1, 2)
    with pytest.raises(IndexError, match=r"valid offsets are 0..5"):
        rope.position_at(7)
    with pytest.raises(IndexError, match=r"valid lines are 0..0"):
        rope.line(1)
    with pytest.raises(IndexError, match=r">= 0"):
        rope.offset_at(-1, 0)
    with pytest.raises(ValueError, match=r"unknown position encoding 'utf-7'"):
        rope.position_at(0, "utf-7")
    with pytest.raises(TypeError, match="must be str"):
        Rope(b"bytes")  # type: ignore[arg-type]


@given(texts, texts)
def test_equality_is_by_content(a: str, b: str) -> None:
    left = Rope(a)
    right = Rope("").insert(0, b)
    assert (left == right) == (a == b)
    assert Rope(a) == Rope("").insert(0, a)
    assert left != a  # a Rope is not a str


def test_empty_rope_edits() -> None:
    rope = Rope()
    assert str(rope) == ""
    assert len(rope) == 0
    assert rope.delete(0, 0) is rope
    grown = rope.insert(0, "abc\r\n" * 10)
    assert str(grown.delete(0, len(grown))) == ""
    assert grown.delete(0, len(grown)).line_count == 1


class TestRealConstants:
    """The default tree shape, on texts large enough for several levels of it."""

    @pytest.fixture(autouse=True)
    def small_tree(self) -> None:  # overrides the module fixture: keep the real constants
        return None

    def test_large_text_round_trips_and_stays_balanced(self) -> None:
        line = "    def value(self) -> int:  # café 😀\r\n"
        text = line * 40_000
        rope = Rope(text)
        rope._check_invariants()
        assert rope._root.height >= 2
        assert str(rope) == text
        assert rope.line_count == 40_001
        assert rope.line(12_345) == line[:-2]
        # Many edits at spread positions, including across leaf seams and big inserts.
        model = text
        step = 7_919
        for i in range(400):
            at = (i * step) % len(model)
            if i % 3 == 0:
                rope, model = rope.delete(at, at + 37), model[:at] + model[at + 37 :]
            elif i % 50 == 0:
                rope, model = rope.insert(at, line * 100), model[:at] + line * 100 + model[at:]
            else:
                rope, model = rope.insert(at, "é\r"), model[:at] + "é\r" + model[at:]
        rope._check_invariants()
        assert str(rope) == model
        assert rope.utf16_len == len(model.encode("utf-16-le")) // 2
        assert rope.line_count == len(model_lines(model))
        for offset in range(0, len(model), 104_729):
            position = rope.position_at(offset)
            if not inside_crlf(model, offset):
                assert position == model_position(model, offset, "utf-16")
                assert rope.offset_at(*position) == offset

    def test_deleting_almost_everything_shrinks_the_tree(self) -> None:
        rope = Rope("x" * 500_000)
        rope = rope.delete(10, 499_990)
        rope._check_invariants()
        assert str(rope) == "x" * 20
        assert rope._root.height == 0
