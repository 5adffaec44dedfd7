"""Standard LSP text sync against a real daemon: documents an editor opens are the buffers the
``symphony/buffer/*`` API sees, and an editor that takes ``workspace/applyEdit`` is shown the
changes others make, without its echo of them being applied twice."""

from __future__ import annotations

import itertools
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_lsp
from handlers_helpers import Daemon, RawClient, edit_at, offset_to_position, position_to_offset
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

_names = itertools.count()
APPLY_EDIT = {"workspace": {"applyEdit": True, "workspaceEdit": {"documentChanges": True}}}


def minimal_change(old: str, new: str) -> tuple[int, int, str]:
    """The change an editor that diffs its lines reports (prefix first, like Neovim)."""
    prefix = 0
    while prefix < min(len(old), len(new)) and old[prefix] == new[prefix]:
        prefix += 1
    suffix = 0
    limit = min(len(old), len(new)) - prefix
    while suffix < limit and old[len(old) - 1 - suffix] == new[len(new) - 1 - suffix]:
        suffix += 1
    return prefix, len(old) - suffix, new[prefix : len(new) - suffix]


class Editor:
    """A raw LSP editor: its own text and version, incremental didChange, and (if it takes them)
    ``workspace/applyEdit`` applied the way Neovim does: rejected when its version moved on,
    otherwise applied and reported back as its own diff."""

    def __init__(self, client: RawClient, uri: str, text: str, encoding: str = "utf-16"):
        self.client, self.uri, self.text, self.encoding = client, uri, text, encoding
        self.version = 1
        self.applied = self.rejected = 0
        client.on_request = self._on_request
        client.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}},
        )

    def type(self, low: int, high: int, new: str) -> None:
        change = edit_at(self.text, low, high, new, self.encoding)
        self.text = self.text[:low] + new + self.text[high:]
        self.version += 1
        self.client.notify(
            "textDocument/didChange",
            {
                "textDocument": {"uri": self.uri, "version": self.version},
                "contentChanges": [change],
            },
        )

    def _on_request(self, method: str, params: Any) -> Any:
        assert method == "workspace/applyEdit"
        (document,) = params["edit"]["documentChanges"]
        assert document["textDocument"]["uri"] == self.uri
        if document["textDocument"]["version"] < self.version:
            self.rejected += 1
            return {"applied": False, "failureReason": "the document changed"}
        (edit,) = document["edits"]
        start, end = edit["range"]["start"], edit["range"]["end"]
        low = position_to_offset(self.text, start["line"], start["character"], self.encoding)
        high = position_to_offset(self.text, end["line"], end["character"], self.encoding)
        new = self.text[:low] + edit["newText"] + self.text[high:]
        self.applied += 1
        self.type(*minimal_change(self.text, new))
        return {"applied": True}


def editor_client(daemon: Daemon, *, applies_edits: bool) -> RawClient:
    return daemon.unix(capabilities=APPLY_EDIT if applies_edits else {}, clientInfo={"name": "ed"})


def workspace_file(daemon: Daemon, text: str) -> tuple[Path, str]:
    path = daemon.workspace / f"doc-{next(_names)}.py"
    path.write_text(text)
    return path, path.resolve().as_uri()


def test_initialize_advertises_incremental_text_sync(daemon: Daemon) -> None:
    client = RawClient.unix(daemon.addresses["unix"])
    caps = client.initialize()["capabilities"]
    assert caps["textDocumentSync"] == {
        "openClose": True,
        "change": 2,
        "save": {"includeText": False},
    }
    assert "symphony/buffer/edit" in caps["experimental"]["symphony"]["methods"]
    client.close()


def test_an_editors_document_is_the_apis_buffer(daemon: Daemon) -> None:
    path, uri = workspace_file(daemon, "on disk\n")
    api = daemon.unix()
    editor = Editor(editor_client(daemon, applies_edits=False), uri, "in the editor\n")
    editor.type(0, 2, "IN")  # "IN the editor\n"
    editor.type(14, 14, "more 😀\n")
    editor.client.notify(
        "textDocument/didChange",
        {"textDocument": {"uri": uri, "version": 9}, "contentChanges": [{"text": "whole\n"}]},
    )
    # Through the editor's connection: after its notifications, in order.
    assert editor.client.result("symphony/buffer/getText", {"uri": uri}) == {
        "text": "whole\n",
        "revision": 4,
    }
    assert api.result("symphony/buffer/getText", {"uri": uri})["text"] == "whole\n"
    assert api.result("symphony/buffer/list")["buffers"] == [
        {"uri": uri, "revision": 4, "dirty": True, "lineCount": 2}
    ]
    # The editor closes it with unsaved changes: the buffer stays until someone decides.
    editor.client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    assert editor.client.result("symphony/buffer/list")["buffers"][0]["uri"] == uri
    assert api.error("symphony/buffer/close", {"uri": uri}).code == -32602
    # An editor that saves it itself: the file holds the buffer's text, so the buffer is clean.
    Editor(editor.client, uri, "whole\n")
    path.write_text("whole\n")
    editor.client.notify("textDocument/didSave", {"textDocument": {"uri": uri}})
    assert editor.client.result("symphony/buffer/list")["buffers"] == [
        {"uri": uri, "revision": 4, "dirty": False, "lineCount": 2}
    ]
    # A clean document closed by its last editor closes.
    editor.client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    assert editor.client.result("symphony/buffer/list")["buffers"] == []
    editor.client.close()
    api.close()


def test_an_editor_is_shown_others_changes_and_its_echo_is_not_applied_twice(
    daemon: Daemon,
) -> None:
    _, uri = workspace_file(daemon, "")
    api = daemon.unix()
    editor = Editor(editor_client(daemon, applies_edits=True), uri, "alpha\nbeta\n")
    api.result("symphony/buffer/open", {"uri": uri})
    api.result("symphony/buffer/subscribe", {"uri": uri})
    base = api.result("symphony/buffer/getText", {"uri": uri})
    assert base == {"text": "alpha\nbeta\n", "revision": 1}  # didOpen's text, over the file's

    after = api.result(
        "symphony/buffer/edit",
        {"uri": uri, "baseRevision": 1, "edits": [edit_at(base["text"], 6, 6, "aa", "utf-16")]},
    )
    editor.client.pump(lambda: editor.applied == 1)
    assert editor.text == "alpha\naabeta\n"
    # The echo reached the daemon (same connection, in order) and made no revision.
    assert editor.client.result("symphony/buffer/getText", {"uri": uri}) == {
        "text": editor.text,
        "revision": after["revision"],
    }

    # Concurrent: the editor types before it reads our next applyEdit, which it then rejects;
    # its own edit still applies, and a fresh applyEdit brings it up to date.
    api.result(
        "symphony/buffer/edit",
        {"uri": uri, "baseRevision": 2, "edits": [edit_at(editor.text, 0, 0, ">> ", "utf-16")]},
    )
    editor.type(len(editor.text), len(editor.text), "typed\n")
    editor.client.pump(lambda: editor.applied == 2)
    assert editor.rejected == 1
    final = editor.client.result("symphony/buffer/getText", {"uri": uri})
    assert final == {"text": ">> alpha\naabeta\ntyped\n", "revision": 4}
    assert editor.text == final["text"]
    # The API's subscriber saw the three revisions, and no fourth one for the echoes.
    api.wait_for(lambda n: n.method == "symphony/buffer/didChange" and n.params["revision"] == 4)
    assert api.result("symphony/buffer/getText", {"uri": uri})["revision"] == 4
    revisions = [n.params["revision"] for n in api.notifications if "revision" in n.params]
    assert revisions == [2, 3]  # (4 was taken by wait_for)
    api.result("symphony/subscribe", {"topics": ["connection/closed"]})
    editor.client.close()  # the connection ends: its hold goes with it
    api.wait_for(lambda n: n.params.get("topic") == "connection/closed")
    api.result("symphony/buffer/close", {"uri": uri, "discard": True})
    assert api.result("symphony/buffer/list")["buffers"] == []
    api.close()


def test_two_editors_see_each_others_typing(daemon: Daemon) -> None:
    _, uri = workspace_file(daemon, "shared\n")
    first = Editor(editor_client(daemon, applies_edits=True), uri, "shared\n")
    second = Editor(editor_client(daemon, applies_edits=True), uri, "shared\n")
    first.type(0, 0, "1")
    second.client.pump(lambda: second.text == "1shared\n")
    second.type(8, 8, "2")
    first.client.pump(lambda: first.text == "1shared\n2")
    for editor in (first, second):
        assert editor.client.result("symphony/buffer/getText", {"uri": uri}) == {
            "text": "1shared\n2",
            "revision": 2,
        }
    assert offset_to_position(first.text, 9, "utf-16") == {"line": 1, "character": 1}
    for editor in (first, second):
        editor.client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    api = daemon.unix()
    api.result("symphony/buffer/close", {"uri": uri, "discard": True})
    api.close()
    first.client.close()
    second.client.close()


# -- a stock LSP client (pytest-lsp, on pygls) over stdio -----------------------------------------


@pytest_lsp.fixture(
    config=ClientServerConfig(
        server_command=[
            sys.executable,
            "-m",
            "symphony.server",
            "--stdio",
            "--log-level",
            "warning",
        ]
    ),
)
async def lsp(lsp_client: LanguageClient) -> AsyncIterator[None]:
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(),
            client_info=types.ClientInfo(name="pytest-lsp"),
        )
    )
    yield
    await lsp_client.shutdown_session()


async def test_a_stock_lsp_client_syncs_a_document(lsp: LanguageClient, tmp_path: Path) -> None:
    lsp_client = lsp
    uri = (tmp_path / "stock.py").as_uri()  # a new file: nothing on disk yet
    lsp_client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id="python", version=1, text="x = 1\n"
            )
        )
    )
    change = types.TextDocumentContentChangePartial(
        range=types.Range(
            start=types.Position(line=0, character=4), end=types.Position(line=0, character=5)
        ),
        text="😀",
    )
    lsp_client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[change],
        )
    )
    text = await lsp_client.protocol.send_request_async("symphony/buffer/getText", {"uri": uri})
    assert (text.text, text.revision) == ("x = 😀\n", 1)
    listed = await lsp_client.protocol.send_request_async("symphony/buffer/list", {})
    assert [(b.uri, b.dirty) for b in listed.buffers] == [(uri, True)]
    lsp_client.text_document_did_close(
        types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    still = await lsp_client.protocol.send_request_async("symphony/buffer/list", {})
    assert [b.uri for b in still.buffers] == [uri]  # unsaved: kept
