"""Neovim's own LSP client against a real Symphony daemon (issue 3, item 12).

Neovim (Debian's 0.7, ``nvim --embed --headless --clean``) is driven over msgpack-rpc; its
built-in client is started with ``vim.lsp.start_client`` and attached with
``vim.lsp.buf_attach_client`` (``symphony_lsp.lua``), exactly as a user's config would, with
``cmd = {"symphony", "serve", "--stdio", ...}`` or ``{"symphony", "attach"}``. The text is typed
the ways a user and a plugin change a buffer: normal and insert mode keys (through
``nvim_feedkeys``, as typed), ``nvim_buf_set_text`` and ``nvim_buf_set_lines``, with non-ASCII,
astral characters (two UTF-16 units: Neovim 0.7 always counts in UTF-16) and line breaks.

After each change the daemon's text, read by a separate raw client on the Unix socket with
``symphony/buffer/getText``, must equal Neovim's. Synchronisation is causal, never timed:
Neovim's own request to the daemon flushes its debounced ``didChange`` and is answered after
it (one connection's messages are handled in order); the daemon's edits reach Neovim through
``workspace/applyEdit``, which the Lua side waits for with ``vim.wait`` on the buffer's
changedtick under a deadline.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from e2e_helpers import (
    ATTACH,
    SYMPHONY,
    TIMEOUT,
    DaemonProcess,
    LspClient,
    Nvim,
    apply_changes,
    position,
    tail,
)

TIMEOUT_MS = int(TIMEOUT * 1000)

INITIAL = '# Symphony ✓ end to end\ndef greet(name):\n    return f"hello {name}"\n'
#: What ``STEPS`` make of ``INITIAL`` (the split leaves " done" on line 2, which ``2Gdd`` deletes).
FINAL = (
    "a\nb 🎉\nc\n# Symphony ✓ end to end — naïve 😀★\n𝄞 new line, ünïcode\n"
    "def greet(name):\n    # replaced 😀 here\n    return name\nx\n"
)


@dataclass
class Editor:
    """Neovim with its LSP client attached to one file; ``daemon_log`` explains failures."""

    nvim: Nvim
    client_id: int
    bufnr: int
    uri: str
    daemon_log: Callable[[], str]

    def converge(self) -> dict[str, Any]:
        """Wait until the daemon and Neovim hold the same text; that text and its revision."""
        state: dict[str, Any] = self.nvim.call(
            "converge", self.client_id, self.bufnr, self.uri, TIMEOUT_MS, timeout=TIMEOUT + 10
        )
        assert state["ok"], (
            f"Neovim and the daemon did not converge: {state}\n"
            f"{self.daemon_log()}\n{self.nvim.diagnostics()}"
        )
        return state

    def text(self) -> str:
        text: str = self.nvim.call("text_of", self.bufnr)
        return text

    def request(self, method: str, params: dict[str, Any]) -> Any:
        reply = self.nvim.call("request", self.client_id, method, params, TIMEOUT_MS)
        assert reply["ok"], f"{method} from Neovim failed: {reply}"
        return reply["result"]


def start_editor(
    nvim: Nvim,
    cmd: list[str],
    workspace: Path,
    path: Path,
    daemon_log: Callable[[], str],
    *,
    debounce_ms: int | None = None,
) -> Editor:
    """Start Neovim's LSP client with ``cmd`` and open ``path`` in it."""
    client = nvim.call("start", cmd, str(workspace), TIMEOUT_MS, debounce_ms, timeout=TIMEOUT + 10)
    assert client["ok"], f"{client}\n{daemon_log()}\n{nvim.diagnostics()}"
    # Neovim 0.7 neither offers general.positionEncodings nor reads positionEncoding back:
    # it counts in UTF-16, which is the daemon's default, and the daemon says so.
    assert client["offset_encoding"] == "utf-16"
    assert client["position_encoding"] == "utf-16"
    assert client["sync_change"] == 2, "the daemon advertises incremental text sync"
    opened = nvim.call("open", client["id"], str(path))
    assert opened["ok"], opened
    assert opened["text"] == path.read_text(encoding="utf-8")
    return Editor(nvim, client["id"], opened["bufnr"], opened["uri"], daemon_log)


def serve_stdio(workspace: Path, sock: Path, log: Path) -> list[str]:
    """The ``cmd`` of an editor-spawned daemon that also listens on ``sock`` for other clients."""
    return [
        SYMPHONY,
        "serve",
        "--stdio",
        "--unix",
        str(sock),
        "--workspace",
        str(workspace),
        "--log-file",
        str(log),
        "--log-format",
        "json",
    ]


def file_log(log: Path) -> Callable[[], str]:
    return lambda: f"daemon log:\n{tail(log)}"


def current_line(nvim: Nvim, line: int) -> str:
    text: str = nvim.request("nvim_buf_get_lines", 0, line, line + 1, True)[0]
    return text


def set_text_after_astral(nvim: Nvim) -> None:
    """A plugin's edit: ``nvim_buf_set_text`` right after the emoji (columns are bytes)."""
    line = current_line(nvim, 0)
    column = line.encode().index("😀".encode()) + len("😀".encode())
    nvim.request("nvim_buf_set_text", 0, 0, column, 0, column, ["★"])


# Each step changes Neovim's buffer one way; after each, the daemon must hold the same text.
STEPS: list[tuple[str, Callable[[Nvim], None]]] = [
    ("append with an astral character", lambda n: n.feed("ggA — naïve 😀 done<Esc>")),
    ("open a new line below", lambda n: n.feed("o𝄞 new line, ünïcode<Esc>")),
    ("nvim_buf_set_text after the astral character", set_text_after_astral),
    (
        "nvim_buf_set_lines replaces one line with two",
        lambda n: n.request(
            "nvim_buf_set_lines", 0, 3, 4, True, ["    # replaced 😀 here", "    return name"]
        ),
    ),
    ("join two lines", lambda n: n.feed("ggJ")),
    ("undo the join", lambda n: n.feed("u")),
    ("split a line after a non-BMP character", lambda n: n.feed("gg0f★a<CR><Esc>")),
    ("type, then backspace over an astral character", lambda n: n.feed("Gox😀y<BS><BS><Esc>")),
    ("delete a line", lambda n: n.feed("2Gdd")),
    ("insert several lines at once", lambda n: n.feed("ggOa<CR>b 🎉<CR>c<Esc>")),
]


def replay(start: str, revision: int, notes: list[dict[str, Any]], encoding: str) -> str:
    """The text a subscriber rebuilds from its ``didChange`` stream, checking the revisions
    are consecutive."""
    text = start
    for note in notes:
        params = note["params"]
        assert params["revision"] == revision + 1, "didChange revisions are consecutive"
        revision = params["revision"]
        text = apply_changes(text, params["changes"], encoding)
    return text


def did_changes(client: LspClient, uri: str) -> list[dict[str, Any]]:
    notes = [n for n in client.notifications if n["method"] == "symphony/buffer/didChange"]
    client.notifications.clear()
    assert all(n["params"]["uri"] == uri for n in notes)
    return notes


def test_neovim_typing_is_the_daemons_text(
    nvim: Nvim, workspace: Path, runtime_dir: Path, tmp_path: Path
) -> None:
    """Neovim spawns ``symphony serve --stdio`` (also listening on a Unix socket), types into
    a file, and after every change the daemon holds Neovim's text; a subscriber on the socket
    (in UTF-8) rebuilds the same text from its didChange stream; quitting Neovim stops the
    daemon it spawned, cleanly."""
    path = workspace / "hello.py"
    path.write_text(INITIAL, encoding="utf-8")
    sock = runtime_dir / "editor.sock"
    log = tmp_path / "daemon.log"
    editor = start_editor(nvim, serve_stdio(workspace, sock, log), workspace, path, file_log(log))
    state = editor.converge()
    assert state["text"] == INITIAL

    raw = LspClient(sock)
    raw.initialize("utf-8")
    raw.result("symphony/buffer/subscribe", {"uri": editor.uri})
    start = raw.result("symphony/buffer/getText", {"uri": editor.uri})
    assert start["text"] == INITIAL
    info = raw.result("symphony/info", {})
    assert info["positionEncoding"] == "utf-8"
    assert editor.request("symphony/info", {})["positionEncoding"] == "utf-16"

    for name, step in STEPS:
        before = editor.text()
        step(nvim)
        state = editor.converge()
        assert state["text"] != before, f"step {name!r} changed nothing"
        seen = raw.result("symphony/buffer/getText", {"uri": editor.uri})
        assert seen["text"] == state["text"], f"after {name!r}"
        assert seen["revision"] == state["revision"]

    final = raw.result("symphony/buffer/getText", {"uri": editor.uri})
    assert final["text"] == FINAL
    notes = did_changes(raw, editor.uri)
    assert {n["params"]["origin"]["name"] for n in notes} == {"Neovim"}
    assert replay(start["text"], start["revision"], notes, "utf-8") == final["text"]
    assert notes[-1]["params"]["revision"] == final["revision"]

    assert nvim.quit() == 0
    assert raw.wait_closed(), "the daemon Neovim spawned stops when Neovim exits"
    with contextlib.suppress(psutil.NoSuchProcess):
        psutil.Process(info["pid"]).wait(TIMEOUT)
    stopped = [e for e in log_entries(log) if e.get("event") == "stopped"]
    assert stopped, "the daemon logged its stop"
    assert stopped[-1]["exit_status"] == 0, "shutdown then exit: a clean stop"
    raw.close()


def log_entries(log: Path) -> list[dict[str, Any]]:
    entries = []
    for line in log.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def remote_editor(raw: LspClient, uri: str, encoding: str) -> Callable[[int, int, str], int]:
    """``edit(start, end, text)``: the raw client replaces ``start..end`` (indices in the
    daemon's current text) with ``text``, positions in ``encoding``; returns the new revision."""

    def edit(start: int, end: int, text: str) -> int:
        current = raw.result("symphony/buffer/getText", {"uri": uri})
        body = current["text"]
        change = {
            "range": {
                "start": position(body, start, encoding),
                "end": position(body, end, encoding),
            },
            "text": text,
        }
        result = raw.result(
            "symphony/buffer/edit",
            {"uri": uri, "baseRevision": current["revision"], "edits": [change]},
        )
        revision: int = result["revision"]
        return revision

    return edit


def test_edits_from_another_client_reach_neovim(
    nvim: Nvim, workspace: Path, runtime_dir: Path, tmp_path: Path
) -> None:
    """A raw client edits the buffer Neovim has open (in UTF-32 positions): the daemon shows
    Neovim the edit with ``workspace/applyEdit``, and Neovim's text becomes the daemon's."""
    path = workspace / "notes.md"
    path.write_text("# notes ✓\nfirst 😀 line\nsecond line\n", encoding="utf-8")
    sock = runtime_dir / "editor.sock"
    log = tmp_path / "daemon.log"
    editor = start_editor(nvim, serve_stdio(workspace, sock, log), workspace, path, file_log(log))
    editor.converge()
    raw = LspClient(sock)
    raw.initialize("utf-32")
    edit = remote_editor(raw, editor.uri, "utf-32")

    # An insertion with a line break and an astral character, at the very start.
    edit(0, 0, "🎵 from another client\n")
    state = editor.converge()
    assert state["text"] == "🎵 from another client\n# notes ✓\nfirst 😀 line\nsecond line\n"

    # A replacement spanning a line break, right after an astral character.
    body = state["text"]
    start = body.index("😀") + 1
    end = body.index("second") + len("second")
    revision = edit(start, end, " ✂ joined")
    state = editor.converge()
    assert state["text"] == "🎵 from another client\n# notes ✓\nfirst 😀 ✂ joined line\n"
    assert state["revision"] == revision
    assert editor.text() == state["text"]
    raw.close()


def test_neovim_typing_before_it_sees_a_remote_edit_converges(
    nvim: Nvim, workspace: Path, runtime_dir: Path, tmp_path: Path
) -> None:
    """Both edit at once, in the two orders a race can take; each edit ends up exactly once in
    both texts.

    1. Neovim types on its first line; the keystrokes reach the daemon only after a raw
       client's append at the end did and the daemon's ``applyEdit`` left for Neovim, but
       before Neovim applied it (``type_held`` keeps Neovim's loop from running until then);
       the daemon then sees Neovim's answer to the ``applyEdit`` before the ``didChange``
       that echoes it (``applied_then_quiet``). Neovim 0.7 takes ``changes`` without a
       version, so it applies that edit although its text moved on.
    2. The raw client appends based on a revision from before Neovim's keystrokes, which the
       daemon already has: its edit is rebased over them.
    """
    path = workspace / "both.txt"
    path.write_text("shared ✓ text\n", encoding="utf-8")
    sock = runtime_dir / "editor.sock"
    log = tmp_path / "daemon.log"
    # Neovim sends didChange only when something flushes it (a request or notification): with
    # 0.7's usual 150 ms, keystrokes typed long enough after the last didChange go out at once,
    # and which order the race takes would depend on the machine's speed.
    cmd = serve_stdio(workspace, sock, log)
    editor = start_editor(nvim, cmd, workspace, path, file_log(log), debounce_ms=TIMEOUT_MS)
    editor.converge()
    raw = LspClient(sock)
    raw.initialize("utf-16")

    def append(text: str, base: dict[str, Any]) -> None:
        end = position(base["text"], len(base["text"]), "utf-16")
        change = {"range": {"start": end, "end": end}, "text": text}
        raw.result(
            "symphony/buffer/edit",
            {"uri": editor.uri, "baseRevision": base["revision"], "edits": [change]},
        )

    # 1. Neovim's keystrokes arrive between the daemon's applyEdit and Neovim applying it.
    flag = tmp_path / "release-keystrokes"
    held = nvim.start_call(
        "type_held", editor.client_id, "ggI1 typed 😀 <Esc>", str(flag), TIMEOUT_MS
    )
    append("appended 🎵 remotely 1\n", raw.result("symphony/buffer/getText", {"uri": editor.uri}))
    # One more round trip: the daemon's applyEdit task has run by the time it is answered.
    raw.result("symphony/ping", {})
    flag.touch()
    typed = nvim.reply(held)
    assert typed["ok"], typed
    # Neovim applies the applyEdit; the daemon handles its answer before Neovim's echo of it.
    settled = nvim.call(
        "applied_then_quiet", editor.client_id, editor.bufnr, typed["tick"], TIMEOUT_MS
    )
    assert settled["ok"], settled
    state = editor.converge()
    assert state["text"] == "1 typed 😀 shared ✓ text\nappended 🎵 remotely 1\n"

    # 2. The remote edit is based on a revision older than Neovim's keystrokes.
    before = raw.result("symphony/buffer/getText", {"uri": editor.uri})
    nvim.feed("ggI2 typed 😀 <Esc>")
    assert editor.converge()["revision"] > before["revision"]
    append("appended 🎵 remotely 2\n", before)
    state = editor.converge()
    assert state["text"] == (
        "2 typed 😀 1 typed 😀 shared ✓ text\nappended 🎵 remotely 1\nappended 🎵 remotely 2\n"
    )
    seen = raw.result("symphony/buffer/getText", {"uri": editor.uri})
    assert seen["text"] == state["text"] == editor.text()
    raw.close()


def test_neovim_through_symphony_attach_leaves_the_daemon_warm(
    nvim: Nvim, workspace: Path, runtime_dir: Path
) -> None:
    """``cmd = {"symphony", "attach"}`` reaches the workspace's running daemon over its Unix
    socket; what Neovim typed is there for other clients, and stays after Neovim quits."""
    daemon = DaemonProcess(["--unix"], workspace=workspace)
    try:
        addresses = daemon.wait_ready()
        path = workspace / "warm.txt"
        path.write_text("warm ☕\n", encoding="utf-8")
        cmd = [*ATTACH, "--workspace", str(workspace), "--no-start"]
        editor = start_editor(nvim, cmd, workspace, path, daemon.diagnostics)
        nvim.feed("Go🔥 typed through attach<Esc>")
        state = editor.converge()
        assert state["text"] == "warm ☕\n🔥 typed through attach\n"
        neovim_id = editor.request("symphony/info", {})["clientId"]

        raw = LspClient(Path(addresses["unix"]))
        raw.initialize("utf-16")
        assert raw.result("symphony/buffer/getText", {"uri": editor.uri})["text"] == state["text"]
        assert raw.result("symphony/info", {})["connections"] == 2  # Neovim (via attach), us

        assert nvim.quit() == 0
        # Neovim's connection ends; the daemon and the unsaved buffer stay, warm.
        daemon.wait_log("connection closed", client_id=neovim_id)
        assert daemon.proc.poll() is None
        assert raw.result("symphony/info", {})["connections"] == 1
        buffers = raw.result("symphony/buffer/list", {})["buffers"]
        assert [b["dirty"] for b in buffers if b["uri"] == editor.uri] == [True]
        assert raw.result("symphony/buffer/getText", {"uri": editor.uri})["text"] == state["text"]
        raw.close()
    finally:
        daemon.stop()
