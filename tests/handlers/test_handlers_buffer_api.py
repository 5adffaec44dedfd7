"""The ``symphony/buffer/*`` API end to end, against a real daemon over its Unix socket."""

from __future__ import annotations

import itertools
from pathlib import Path

from handlers_helpers import Daemon, apply_changes, edit_at

_names = itertools.count()


def new_file(daemon: Daemon, text: str, suffix: str = ".py") -> Path:
    path = daemon.workspace / f"api-{next(_names)}{suffix}"
    path.write_text(text, newline="")
    return path


def insert(line: int, character: int, text: str) -> dict[str, object]:
    position = {"line": line, "character": character}
    return {"range": {"start": position, "end": position}, "text": text}


def test_open_edit_undo_redo_save_close_a_file(daemon: Daemon) -> None:
    original = "def f():\n    return 1\n"
    path = new_file(daemon, original)
    client = daemon.unix()
    opened = client.result("symphony/buffer/open", {"path": str(path)})
    uri = path.resolve().as_uri()
    assert opened == {
        "uri": uri,
        "revision": 0,
        "lineCount": 3,
        "languageId": "python",
        "dirty": False,
    }
    # The same file by URI, or by a path relative to the workspace, is the same buffer.
    assert client.result("symphony/buffer/open", {"uri": uri})["uri"] == uri
    assert client.result("symphony/buffer/open", {"path": path.name})["uri"] == uri

    edited = client.result(
        "symphony/buffer/edit",
        {"uri": uri, "baseRevision": 0, "edits": [edit_at(original, 20, 21, "42", "utf-16")]},
    )
    assert edited == {"revision": 1}
    header = {"uri": uri, "baseRevision": 1, "edits": [insert(0, 0, "# answer\n")]}
    assert client.result("symphony/buffer/edit", header) == {"revision": 2}
    text = "# answer\ndef f():\n    return 42\n"
    assert client.result("symphony/buffer/getText", {"uri": uri}) == {"text": text, "revision": 2}
    ranged = {"start": {"line": 2, "character": 4}, "end": {"line": 2, "character": 13}}
    assert client.result("symphony/buffer/getText", {"uri": uri, "range": ranged}) == {
        "text": "return 42",
        "revision": 2,
    }
    assert client.result("symphony/buffer/list") == {
        "buffers": [{"uri": uri, "revision": 2, "dirty": True, "lineCount": 4}]
    }

    assert client.result("symphony/buffer/undo", {"uri": uri}) == {"revision": 3}
    assert client.result("symphony/buffer/getText", {"uri": uri})["text"] == (
        "def f():\n    return 42\n"
    )
    assert client.result("symphony/buffer/redo", {"uri": uri}) == {"revision": 4}
    assert client.result("symphony/buffer/getText", {"uri": uri})["text"] == text
    assert client.result("symphony/buffer/redo", {"uri": uri}) == {"revision": 4}  # nothing left

    saved = client.result("symphony/buffer/save", {"uri": uri})
    assert saved == {"revision": 4, "path": str(path.resolve())}
    assert path.read_text() == text
    assert client.result("symphony/buffer/list")["buffers"][0]["dirty"] is False
    assert client.result("symphony/buffer/close", {"uri": uri}) is None
    assert client.result("symphony/buffer/list") == {"buffers": []}
    client.close()


def test_utf8_and_utf16_clients_edit_text_with_astral_characters(daemon: Daemon) -> None:
    utf8 = daemon.unix(capabilities={"general": {"positionEncodings": ["utf-8"]}})
    utf16 = daemon.unix(capabilities={"general": {"positionEncodings": ["utf-16"]}})
    original = "a😀b\n𝄞c é\n"
    uri = utf8.result("symphony/buffer/open", {"text": original})["uri"]
    for client in (utf8, utf16):
        client.result("symphony/buffer/subscribe", {"uri": uri})

    # utf-8: after 😀 is byte 5; utf-16: after 𝄞 is unit 2.
    utf8.result(
        "symphony/buffer/edit", {"uri": uri, "baseRevision": 0, "edits": [insert(0, 5, "X")]}
    )
    utf16.result(
        "symphony/buffer/edit", {"uri": uri, "baseRevision": 1, "edits": [insert(1, 2, "Y")]}
    )
    expected = "a😀Xb\n𝄞Yc é\n"
    assert utf16.result("symphony/buffer/getText", {"uri": uri})["text"] == expected

    # Each subscriber got both revisions, with ranges in its own encoding.
    for client, encoding, first, second in (
        (utf8, "utf-8", 5, 4),
        (utf16, "utf-16", 3, 2),
    ):
        model = original
        for revision, character in ((1, first), (2, second)):
            note = client.wait_for(lambda n, r=revision: n.params["revision"] == r)
            assert note.method == "symphony/buffer/didChange"
            assert note.params["changes"][0]["range"]["start"]["character"] == character
            model = apply_changes(model, note.params["changes"], encoding)
        assert model == expected
    ranged = {"start": {"line": 1, "character": 0}, "end": {"line": 1, "character": 5}}
    assert utf8.result("symphony/buffer/getText", {"uri": uri, "range": ranged})["text"] == "𝄞Y"

    # Unsubscribed: a later revision's didChange would come before the edit's own reply.
    assert utf8.result("symphony/buffer/unsubscribe", {"uri": uri}) is None
    utf8.result(
        "symphony/buffer/edit", {"uri": uri, "baseRevision": 2, "edits": [insert(0, 0, "Z")]}
    )
    assert [n for n in utf8.notifications if n.method == "symphony/buffer/didChange"] == []
    utf8.result("symphony/buffer/close", {"uri": uri, "discard": True})
    utf8.close()
    utf16.close()


def test_a_stale_edit_is_rebased_and_an_overlapping_one_conflicts(daemon: Daemon) -> None:
    client = daemon.unix()
    uri = client.result("symphony/buffer/open", {"text": "one two three"})["uri"]
    client.result(
        "symphony/buffer/edit",
        {
            "uri": uri,
            "baseRevision": 0,
            "edits": [edit_at("one two three", 0, 3, "ONE!", "utf-16")],
        },
    )
    # Made against revision 0: "three" moved right by one; the edit follows it.
    rebased = client.result(
        "symphony/buffer/edit",
        {"uri": uri, "baseRevision": 0, "edits": [edit_at("one two three", 8, 13, "3", "utf-16")]},
    )
    assert rebased == {"revision": 2}
    assert client.result("symphony/buffer/getText", {"uri": uri})["text"] == "ONE! two 3"
    conflict = client.error(
        "symphony/buffer/edit",
        {"uri": uri, "baseRevision": 0, "edits": [edit_at("one two three", 2, 5, "", "utf-16")]},
    )
    assert conflict.code == -32901
    assert conflict.data == {"currentRevision": 2}
    unknown = client.error(
        "symphony/buffer/edit", {"uri": uri, "baseRevision": 9, "edits": [insert(0, 0, "x")]}
    )
    assert unknown.code == -32906
    assert unknown.data == {"revision": 9, "currentRevision": 2}
    client.result("symphony/buffer/close", {"uri": uri, "discard": True})
    client.close()


def test_bad_params_and_unknown_uris_keep_the_connection_usable(daemon: Daemon) -> None:
    client = daemon.unix()
    missing = client.error("symphony/buffer/getText", {"uri": "untitled:nope"})
    assert missing.code == -32900
    assert missing.data == {"uri": "untitled:nope"}
    bad = client.error("symphony/buffer/edit", {"uri": "untitled:nope", "baseRevision": -1})
    assert bad.code == -32602
    assert {tuple(e["loc"]) for e in bad.data} == {("baseRevision",), ("edits",)}
    assert client.error("symphony/buffer/open", {}).code == -32602
    assert client.error("symphony/buffer/open", {"uri": "no scheme"}).code == -32602
    assert client.error("symphony/buffer/open", {"path": "absent.txt"}).code == -32907
    uri = client.result("symphony/buffer/open", {"text": "x"})["uri"]
    overlap = client.error(
        "symphony/buffer/edit",
        {"uri": uri, "baseRevision": 0, "edits": [edit_at("x", 0, 1, "a", "utf-16")] * 2},
    )
    assert overlap.code == -32905
    backwards = {"start": {"line": 0, "character": 1}, "end": {"line": 0, "character": 0}}
    assert client.error("symphony/buffer/getText", {"uri": uri, "range": backwards}).code == -32602
    assert client.result("symphony/ping", {"data": 1}) == {"data": 1}
    assert client.result("symphony/buffer/getText", {"uri": uri}) == {"text": "x", "revision": 0}
    client.result("symphony/buffer/close", {"uri": uri, "discard": True})
    client.close()


def test_unsaved_text_is_never_dropped_by_accident(daemon: Daemon) -> None:
    client = daemon.unix()
    untitled = client.result("symphony/buffer/open", {"text": "draft", "languageId": "markdown"})
    assert untitled["uri"].startswith("untitled:Untitled-")
    assert (untitled["languageId"], untitled["dirty"]) == ("markdown", True)
    refused = client.error("symphony/buffer/close", {"uri": untitled["uri"]})
    assert refused.code == -32602
    assert refused.data[0]["loc"] == ["discard"]
    assert client.result("symphony/buffer/getText", {"uri": untitled["uri"]})["text"] == "draft"

    # Saving binds it to a file: clean now, so it closes without discard.
    target = daemon.workspace / f"draft-{next(_names)}.md"
    saved = client.result("symphony/buffer/save", {"uri": untitled["uri"], "path": str(target)})
    assert saved == {"revision": 0, "path": str(target.resolve())}
    assert target.read_text() == "draft"
    # The file's URI finds the buffer it is bound to.
    again = client.result("symphony/buffer/open", {"path": str(target)})
    assert (again["uri"], again["dirty"]) == (untitled["uri"], False)
    assert client.result("symphony/buffer/close", {"uri": untitled["uri"]}) is None

    empty = client.result("symphony/buffer/open", {"uri": "untitled:scratch", "text": ""})
    assert empty["dirty"] is False  # no text saved nowhere
    assert client.result("symphony/buffer/close", {"uri": "untitled:scratch"}) is None
    client.close()


def test_saving_checks_the_file_on_disk_and_saves_copies(daemon: Daemon) -> None:
    path = new_file(daemon, "v1\n", ".txt")
    client = daemon.unix()
    uri = client.result("symphony/buffer/open", {"path": str(path)})["uri"]
    client.result(
        "symphony/buffer/edit", {"uri": uri, "baseRevision": 0, "edits": [insert(1, 0, "mine\n")]}
    )
    path.write_text("theirs\n")
    conflict = client.error("symphony/buffer/save", {"uri": uri})
    assert conflict.code == -32908
    assert conflict.data == {"path": str(path.resolve())}
    assert path.read_text() == "theirs\n"
    saved = client.result("symphony/buffer/save", {"uri": uri, "overwrite": True})
    assert saved["revision"] == 1
    assert path.read_text() == "v1\nmine\n"

    copy = daemon.workspace / f"copy-{next(_names)}.txt"
    client.result(
        "symphony/buffer/edit", {"uri": uri, "baseRevision": 1, "edits": [insert(0, 0, ">")]}
    )
    assert client.result("symphony/buffer/save", {"uri": uri, "path": str(copy)}) == {
        "revision": 2,
        "path": str(copy.resolve()),
    }
    assert copy.read_text() == ">v1\nmine\n"
    listed = client.result("symphony/buffer/list")["buffers"]
    assert [(b["uri"], b["dirty"]) for b in listed] == [(uri, True)]  # still its own file's
    client.result("symphony/buffer/close", {"uri": uri, "discard": True})
    client.close()


def test_buffer_events_and_info(daemon: Daemon) -> None:
    watcher = daemon.unix()
    assert watcher.result("symphony/subscribe", {"topics": ["buffer/*"]}) == {
        "topics": ["buffer/*"]
    }
    client = daemon.unix(clientInfo={"name": "events-test"})
    uri = client.result("symphony/buffer/open", {"text": "e"})["uri"]
    assert client.result("symphony/info")["buffers"] == 1
    client.result(
        "symphony/buffer/edit", {"uri": uri, "baseRevision": 0, "edits": [insert(0, 1, "!")]}
    )
    client.result("symphony/buffer/close", {"uri": uri, "discard": True})
    assert client.result("symphony/info")["buffers"] == 0

    def event(topic: str) -> dict[str, object]:
        note = watcher.wait_for(lambda n: n.params["topic"] == topic)
        data: dict[str, object] = note.params["data"]
        return data

    assert event("buffer/opened") == {"uri": uri, "revision": 0, "languageId": "plaintext"}
    changed = event("buffer/changed")
    assert changed["revision"] == 1
    assert changed["origin"] == {"clientId": changed["origin"]["clientId"], "name": "events-test"}  # type: ignore[index]
    assert event("buffer/closed") == {"uri": uri, "discarded": True}
    watcher.close()
    client.close()


def test_every_spelling_of_a_file_reaches_one_buffer(daemon: Daemon) -> None:
    real = new_file(daemon, "same\n", ".md")
    link = daemon.workspace / f"link-{next(_names)}.md"
    link.symlink_to(real)
    client = daemon.unix()
    uri = client.result("symphony/buffer/open", {"path": str(link)})["uri"]
    assert uri == real.resolve().as_uri()
    spellings = [
        link.absolute().as_uri(),
        "file://localhost" + real.resolve().as_posix(),
        real.resolve().as_uri().replace("-", "%2D"),  # percent-encoded where it need not be
    ]
    for spelling in spellings:
        assert client.result("symphony/buffer/getText", {"uri": spelling}) == {
            "text": "same\n",
            "revision": 0,
        }
    assert len(client.result("symphony/buffer/list")["buffers"]) == 1
    client.result("symphony/buffer/close", {"uri": spellings[0]})
    assert client.result("symphony/buffer/list") == {"buffers": []}
    client.close()


def test_a_file_keeps_its_encoding_bom_and_line_endings(daemon: Daemon) -> None:
    path = daemon.workspace / f"windows-{next(_names)}.txt"
    path.write_bytes("\ufeffzwei\r\ndrei 😀\r\n".encode("utf-16-le"))
    client = daemon.unix()
    uri = client.result("symphony/buffer/open", {"path": str(path)})["uri"]
    assert client.result("symphony/buffer/getText", {"uri": uri})["text"] == "zwei\r\ndrei 😀\r\n"
    client.result(
        "symphony/buffer/edit",
        {"uri": uri, "baseRevision": 0, "edits": [insert(0, 0, "eins\r\n")]},
    )
    client.result("symphony/buffer/save", {"uri": uri})
    assert path.read_bytes() == "\ufeffeins\r\nzwei\r\ndrei 😀\r\n".encode("utf-16-le")
    client.result("symphony/buffer/close", {"uri": uri})
    client.close()


def test_a_file_that_does_not_decode_is_refused_with_where(daemon: Daemon) -> None:
    path = daemon.workspace / f"binary-{next(_names)}.txt"
    path.write_bytes(b"ok\n\xff\xfe\x00 not utf-8")
    client = daemon.unix()
    refused = client.error("symphony/buffer/open", {"path": str(path)})
    assert refused.code == -32907
    assert refused.data == {"path": str(path.resolve()), "encoding": "utf-8", "byteOffset": 3}
    assert client.result("symphony/buffer/list") == {"buffers": []}
    client.close()
