"""An editor that takes unversioned ``changes`` (Neovim 0.7) applies our ``applyEdit`` even when
it typed after we sent it: the next edit waits for that echo, so nothing lands twice."""

from __future__ import annotations

from symphony.editor_core import Buffer, TextEdit
from symphony.handlers._workspace import EditorView


def test_typing_before_an_unversioned_edit_lands_does_not_send_it_twice() -> None:
    buffer = Buffer("shared\n")
    view = EditorView(None, "u", 0, buffer.rope, applies_edits=True, versioned=False)
    view.remote(buffer.apply([TextEdit(7, 7, "appended\n")], origin="other"))
    assert view.may_send
    assert view.next_edit(buffer) == (7, 7, "appended\n")
    view.outstanding, view.sent_version = True, view.version
    # The editor types on line 0 (reported before its answer), then applies our edit anyway.
    view.version = 1
    assert view.editor_change(buffer, 0, 0, "1 ", "editor") is not None
    view.notified()
    view.answered(applied=True)
    assert buffer.text == "1 shared\nappended\n"
    assert not view.may_send  # its echo is on its way: sending again would double it
    # The echo, as Neovim reports an insertion at the end of a buffer: two changes.
    view.version = 3
    assert view.editor_change(buffer, 8, 8, "\nappended\n", "editor") is None
    assert view.editor_change(buffer, 18, 19, "", "editor") is None
    view.notified()
    assert buffer.text == "1 shared\nappended\n" == str(view.shadow)
    assert view.window is None
    assert not view.may_send


def test_an_unversioned_edit_refused_can_be_sent_again() -> None:
    buffer = Buffer("a\n")
    view = EditorView(None, "u", 0, buffer.rope, applies_edits=True, versioned=False)
    view.remote(buffer.apply([TextEdit(2, 2, "b\n")], origin="other"))
    assert view.next_edit(buffer) is not None
    view.outstanding, view.sent_version = True, view.version
    view.version = 1
    assert view.editor_change(buffer, 0, 0, "x", "editor") is not None
    view.notified()
    assert not view.may_send
    view.answered(applied=False)
    assert view.may_send
    assert view.sent is None


def test_a_versioned_editor_is_sent_the_edit_again_against_its_new_text() -> None:
    buffer = Buffer("a\n")
    view = EditorView(None, "u", 0, buffer.rope, applies_edits=True, versioned=True)
    view.remote(buffer.apply([TextEdit(2, 2, "b\n")], origin="other"))
    assert view.next_edit(buffer) is not None
    view.outstanding, view.sent_version = True, view.version
    view.version = 1
    assert view.editor_change(buffer, 0, 0, "x", "editor") is not None
    view.notified()
    view.answered(applied=False)  # rejected: the version moved on
    assert view.may_send
    assert view.next_edit(buffer) == (3, 3, "b\n")
