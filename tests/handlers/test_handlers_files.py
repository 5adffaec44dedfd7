"""Open files are watched: a clean buffer reloads, a dirty one reports a conflict, a deleted file
is reported, and the daemon's own saves are not mistaken for someone else's."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

from handlers_helpers import Daemon, RawClient

_names = itertools.count()


def on_disk(client: RawClient, uri: str, status: str) -> dict[str, object]:
    note = client.wait_for(
        lambda n: (
            n.method == "symphony/buffer/didChangeOnDisk"
            and n.params["uri"] == uri
            and n.params["status"] == status
        )
    )
    params: dict[str, object] = note.params
    return params


def open_watched(
    daemon: Daemon, client: RawClient, text: str, folder: str = ""
) -> tuple[Path, str]:
    directory = daemon.workspace / folder
    directory.mkdir(exist_ok=True)
    path = directory / f"watched-{next(_names)}.txt"
    path.write_text(text)
    uri = client.result("symphony/buffer/open", {"path": str(path)})["uri"]
    client.result("symphony/buffer/subscribe", {"uri": uri})
    return path, uri


def replace_atomically(path: Path, text: str) -> None:
    """What most editors do on save: write a new file, rename it over the old one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_an_external_change_reloads_a_clean_buffer(daemon: Daemon) -> None:
    client = daemon.unix()
    path, uri = open_watched(daemon, client, "first\n")
    replace_atomically(path, "second\n")
    reloaded = on_disk(client, uri, "reloaded")
    assert reloaded == {
        "uri": uri,
        "path": str(path.resolve()),
        "revision": 1,
        "status": "reloaded",
    }
    change = client.wait_for(lambda n: n.method == "symphony/buffer/didChange")
    assert change.params["revision"] == 1
    assert change.params["origin"] == {"clientId": "daemon", "name": "disk"}
    assert client.result("symphony/buffer/getText", {"uri": uri}) == {
        "text": "second\n",
        "revision": 1,
    }
    path.write_text("third\n")  # in place this time
    assert on_disk(client, uri, "reloaded")["revision"] == 2
    assert client.result("symphony/buffer/getText", {"uri": uri})["text"] == "third\n"
    assert client.result("symphony/buffer/list")["buffers"][0]["dirty"] is False
    client.result("symphony/buffer/close", {"uri": uri})
    client.close()


def test_an_external_change_under_unsaved_edits_is_a_conflict(daemon: Daemon) -> None:
    client = daemon.unix()
    path, uri = open_watched(daemon, client, "base\n")
    position = {"line": 1, "character": 0}
    client.result(
        "symphony/buffer/edit",
        {
            "uri": uri,
            "baseRevision": 0,
            "edits": [{"range": {"start": position, "end": position}, "text": "mine\n"}],
        },
    )
    replace_atomically(path, "theirs\n")
    conflict = on_disk(client, uri, "conflict")
    assert conflict["revision"] == 1
    assert client.result("symphony/buffer/getText", {"uri": uri})["text"] == "base\nmine\n"
    assert client.error("symphony/buffer/save", {"uri": uri}).code == -32908
    assert client.result("symphony/buffer/save", {"uri": uri, "overwrite": True})["revision"] == 1
    assert path.read_text() == "base\nmine\n"
    client.result("symphony/buffer/close", {"uri": uri})
    client.close()


def test_a_deleted_file_is_reported_and_its_text_kept(daemon: Daemon) -> None:
    client = daemon.unix()
    path, uri = open_watched(daemon, client, "keep me\n")
    path.unlink()
    assert on_disk(client, uri, "deleted")["revision"] == 0
    assert client.result("symphony/buffer/getText", {"uri": uri})["text"] == "keep me\n"
    assert client.result("symphony/buffer/list")["buffers"][0]["dirty"] is True
    # Saving writes it back; the buffer is clean again and closes without discard.
    assert client.result("symphony/buffer/save", {"uri": uri})["revision"] == 0
    assert path.read_text() == "keep me\n"
    assert client.result("symphony/buffer/close", {"uri": uri}) is None
    client.close()


def test_our_own_saves_are_not_reported_as_external_changes(daemon: Daemon) -> None:
    client = daemon.unix()
    path, uri = open_watched(daemon, client, "a\n", "own")
    sentinel, sentinel_uri = open_watched(daemon, client, "s\n", "own")
    for revision in range(3):
        position = {"line": 0, "character": 0}
        client.result(
            "symphony/buffer/edit",
            {
                "uri": uri,
                "baseRevision": revision,
                "edits": [{"range": {"start": position, "end": position}, "text": "x"}],
            },
        )
        assert client.result("symphony/buffer/save", {"uri": uri})["revision"] == revision + 1
    assert path.read_text() == "xxxa\n"
    # A later external change in the same directory is reported; nothing before it was ours.
    replace_atomically(sentinel, "changed\n")
    on_disk(client, sentinel_uri, "reloaded")
    reported = [n for n in client.notifications if n.method == "symphony/buffer/didChangeOnDisk"]
    assert reported == []
    assert client.result("symphony/buffer/list")["buffers"][0]["dirty"] is False
    for each in (uri, sentinel_uri):
        client.result("symphony/buffer/close", {"uri": each})
    client.close()


def test_files_in_every_open_directory_stay_watched(daemon: Daemon) -> None:
    """Opening a file in a new directory restarts the watcher; the old ones are still watched."""
    client = daemon.unix()
    first, first_uri = open_watched(daemon, client, "1\n", "dir-a")
    second, second_uri = open_watched(daemon, client, "2\n", "dir-b")
    third, third_uri = open_watched(daemon, client, "3\n", "dir-c")
    first.write_text("one\n")
    third.write_text("three\n")
    on_disk(client, first_uri, "reloaded")
    on_disk(client, third_uri, "reloaded")
    client.result("symphony/buffer/close", {"uri": third_uri})  # dir-c is no longer watched
    second.write_text("two\n")
    on_disk(client, second_uri, "reloaded")
    assert client.result("symphony/buffer/getText", {"uri": second_uri})["text"] == "two\n"
    for each in (first_uri, second_uri):
        client.result("symphony/buffer/close", {"uri": each})
    client.close()
