"""The params the client's buffer helpers (and `symphony edit`) send, held against the
protocol's own params models: those forbid unknown fields, so a misspelt or mis-cased field
fails here, not in a user's session."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from symphony.clients._cli_client import text_change
from symphony.clients._client import (
    close_params,
    edit_params,
    get_text_params,
    open_params,
    save_params,
)
from symphony.protocol import (
    METHODS,
    BufferCloseParams,
    BufferEditParams,
    BufferGetTextParams,
    BufferOpenParams,
    BufferSaveParams,
    Position,
    Range,
    TextChange,
)

uris = st.text(min_size=1).map(lambda s: "untitled:" + s)
positions = st.builds(Position, line=st.integers(0, 10**6), character=st.integers(0, 10**6))
ranges = st.builds(
    lambda a, b: Range(start=min(a, b, key=_key), end=max(a, b, key=_key)), positions, positions
)
changes = st.builds(TextChange, range=ranges, text=st.text())


def _key(position: Position) -> tuple[int, int]:
    return position.line, position.character


@given(uri=uris, edits=st.lists(changes, max_size=5), base=st.integers(0, 2**31))
def test_edit_params_are_buffer_edit_params(uri: str, edits: list[TextChange], base: int) -> None:
    # Models and their wire dicts both work, and mean the same edit.
    for given_edits in (edits, [e.model_dump(by_alias=True) for e in edits]):
        params = BufferEditParams.model_validate(edit_params(uri, given_edits, base_revision=base))
        assert params.uri == uri
        assert params.base_revision == base
        assert params.edits == edits
    assert METHODS["symphony/buffer/edit"].params is BufferEditParams


@given(uri=uris, range=st.none() | ranges)
def test_get_text_params_are_buffer_get_text_params(uri: str, range: Range | None) -> None:
    params = BufferGetTextParams.model_validate(get_text_params(uri, range))
    assert params.uri == uri
    assert params.range == range


def test_open_params_are_buffer_open_params(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a relative path is made absolute against *our* directory
    by_path = BufferOpenParams.model_validate(open_params("src/a.py", language_id="python"))
    assert by_path.path == str(tmp_path / "src" / "a.py")
    assert by_path.language_id == "python"
    untitled = BufferOpenParams.model_validate(open_params(text="hello"))
    assert (untitled.text, untitled.path, untitled.uri) == ("hello", None, None)
    by_uri = BufferOpenParams.model_validate(open_params(uri="file:///x.py"))
    assert by_uri.uri == "file:///x.py"


def test_save_and_close_params_are_their_models(tmp_path: Path) -> None:
    assert BufferSaveParams.model_validate(save_params("untitled:1")).path is None
    elsewhere = BufferSaveParams.model_validate(save_params("untitled:1", str(tmp_path / "b")))
    assert elsewhere.path == str(tmp_path / "b")
    assert BufferSaveParams.model_validate(save_params("u:1", overwrite=True)).overwrite
    assert not BufferCloseParams.model_validate(close_params("u:1")).discard
    assert BufferCloseParams.model_validate(close_params("u:1", discard=True)).discard


@given(
    at=st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)),
    length=st.none() | st.tuples(st.integers(0, 3), st.integers(0, 50)),
    insert=st.text(),
)
def test_symphony_edit_sends_one_text_change(
    at: tuple[int, int], length: tuple[int, int] | None, insert: str
) -> None:
    delete_to = None if length is None else (at[0] + length[0], at[1] + length[1])
    change = TextChange.model_validate(text_change(at, delete_to, insert))
    assert (change.range.start.line, change.range.start.character) == at
    end = delete_to or at
    assert (change.range.end.line, change.range.end.character) == end
    assert change.text == insert
