"""An LSP editor's view of a buffer: the window between its text and the buffer's, echoes of our
``applyEdit``, and convergence. Pure: a ``Buffer``, an ``EditorView`` and a str for the editor."""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from symphony.editor_core import Buffer, TextEdit
from symphony.handlers._workspace import EditorView

TEXTS = st.text(alphabet="ab\n😀", max_size=6)


def minimal_change(old: str, new: str) -> tuple[int, int, str]:
    """The change an editor that diffs its text reports (Neovim's compute_diff: prefix first)."""
    prefix = 0
    while prefix < min(len(old), len(new)) and old[prefix] == new[prefix]:
        prefix += 1
    suffix = 0
    while (
        suffix < min(len(old), len(new)) - prefix
        and old[len(old) - 1 - suffix] == new[len(new) - 1 - suffix]
    ):
        suffix += 1
    return prefix, len(old) - suffix, new[prefix : len(new) - suffix]


class EditorSync(RuleBasedStateMachine):
    """Another client edits the buffer, the editor types, our applyEdits reach the editor late
    (or are rejected because it moved on); its echoes come back as the editor reports them."""

    @initialize(text=TEXTS)
    def start(self, text: str) -> None:
        self.buffer = Buffer(text)
        self.editor = text
        self.version = 0
        self.view = EditorView(None, "file:///x", 0, self.buffer.rope, applies_edits=True)
        self.in_flight: tuple[int, int, str, int] | None = None
        self.remote_only = text  # the buffer's text if the editor never typed
        self.typed = False

    @rule(data=st.data())
    def another_client_edits(self, data: st.DataObject) -> None:
        size = len(self.buffer.rope)
        start = data.draw(st.integers(0, size))
        end = data.draw(st.integers(start, size))
        text = data.draw(TEXTS)
        record = self.buffer.apply([TextEdit(start, end, text)], origin="other")
        self.remote_only = self.remote_only[:start] + text + self.remote_only[end:]
        self.view.remote(record)

    @rule(data=st.data())
    def editor_types(self, data: st.DataObject) -> None:
        start = data.draw(st.integers(0, len(self.editor)))
        end = data.draw(st.integers(start, len(self.editor)))
        text = data.draw(TEXTS)
        if start == end and not text:
            return
        self.typed = True
        self.editor = self.editor[:start] + text + self.editor[end:]
        self.version += 1
        self.view.version = self.version
        self.view.editor_change(self.buffer, start, end, text, "editor")

    @rule()
    def daemon_sends_apply_edit(self) -> None:
        if self.in_flight is None:
            pending = self.view.next_edit(self.buffer)
            if pending is not None:
                self.in_flight = (*pending, self.version)

    @rule(as_diffed=st.booleans())
    def editor_receives_apply_edit(self, as_diffed: bool) -> None:
        if self.in_flight is None:
            return
        start, end, text, version = self.in_flight
        self.in_flight = None
        if version != self.version:
            return  # stale: the editor rejects it (Neovim: "buffer newer than edits")
        old = self.editor
        self.editor = old[:start] + text + old[end:]
        self.version += 1
        self.view.version = self.version
        change = minimal_change(old, self.editor) if as_diffed else (start, end, text)
        self.view.editor_change(self.buffer, *change, "editor")

    @invariant()
    def the_view_knows_the_editors_text(self) -> None:
        assert str(self.view.shadow) == self.editor
        if self.view.window is None:
            assert self.editor == self.buffer.text

    @invariant()
    def echoes_never_reach_the_buffer(self) -> None:
        if not self.typed:
            assert self.buffer.text == self.remote_only

    def teardown(self) -> None:
        if not hasattr(self, "view"):
            return
        # Quiet now: every applyEdit arrives; the editor ends with the buffer's text.
        for _ in range(4):
            self.in_flight = None
            self.daemon_sends_apply_edit()
            self.editor_receives_apply_edit(as_diffed=True)
        assert self.editor == self.buffer.text
        assert self.view.window is None


TestEditorSync = EditorSync.TestCase


def test_an_echo_shifted_into_a_run_of_equal_characters_is_not_applied_twice() -> None:
    buffer = Buffer("xay")
    view = EditorView(None, "u", 0, buffer.rope, applies_edits=True)
    view.remote(buffer.apply([TextEdit(1, 1, "a")], origin="other"))  # "xaay"
    assert view.next_edit(buffer) == (1, 1, "a")
    # Neovim reports the insertion after the run of a's, not where we put it.
    assert view.editor_change(buffer, 2, 2, "a", "editor") is None
    assert buffer.text == "xaay"
    assert view.in_sync


def test_typing_outside_unseen_changes_applies_shifted() -> None:
    buffer = Buffer("0123456789")
    view = EditorView(None, "u", 0, buffer.rope, applies_edits=True)
    view.remote(buffer.apply([TextEdit(2, 4, "ABCDEF")], origin="other"))  # 01ABCDEF456789
    record = view.editor_change(buffer, 9, 9, "!", "editor")  # after "8" in the editor's text
    assert record is not None
    assert buffer.text == "01ABCDEF45678!9"
    assert str(view.shadow) == "012345678!9"
    assert view.next_edit(buffer) == (2, 4, "ABCDEF")


def test_an_overlapping_edit_loses_to_the_buffer_when_the_editor_can_be_told() -> None:
    buffer = Buffer("hello world")
    view = EditorView(None, "u", 0, buffer.rope, applies_edits=True)
    view.remote(buffer.apply([TextEdit(0, 5, "HOWDY")], origin="other"))
    assert view.editor_change(buffer, 1, 3, "EL", "editor") is None  # "hELlo world"
    assert buffer.text == "HOWDY world"
    start, end, text = view.next_edit(buffer) or (0, 0, "")
    editor = str(view.shadow)
    assert editor[:start] + text + editor[end:] == "HOWDY world"


def test_an_overlapping_edit_wins_when_the_editor_cannot_be_told() -> None:
    buffer = Buffer("hello world")
    view = EditorView(None, "u", 0, buffer.rope, applies_edits=False)
    view.remote(buffer.apply([TextEdit(0, 5, "HOWDY")], origin="other"))
    record = view.editor_change(buffer, 1, 3, "EL", "editor")
    assert record is not None
    assert buffer.text == "hELlo world" == str(view.shadow)
    assert view.in_sync


def test_pending_edits_never_split_a_crlf_pair() -> None:
    buffer = Buffer("a\r\nb")
    view = EditorView(None, "u", 0, buffer.rope, applies_edits=True)
    view.remote(buffer.apply([TextEdit(2, 2, "x")], origin="other"))  # between \r and \n
    start, end, text = view.next_edit(buffer) or (0, 0, "")
    editor = str(view.shadow)
    assert editor[start - 1 : start] != "\r"
    assert editor[end : end + 1] != "\n"
    assert editor[:start] + text + editor[end:] == "a\rx\nb"
