"""Three clients, over TCP, a Unix socket and WebSocket, each in its own position encoding, edit
one buffer at once. Each keeps a local copy from the ``symphony/buffer/didChange`` notifications
it receives; all copies must end equal to the daemon's text, and every client must have received
every revision exactly once, in order."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

from handlers_helpers import Daemon, apply_changes, edit_at

from symphony.clients._client import SymphonyClient
from symphony.protocol import Notification, RevisionConflict

EDITS_PER_CLIENT = 120
ALPHABET = "ab😀é\n"


@dataclass
class Editor:
    name: str
    client: SymphonyClient
    encoding: str
    text: str = ""
    revision: int = 0
    revisions: list[int] = field(default_factory=list)
    progress: asyncio.Event = field(default_factory=asyncio.Event)

    def on_change(self, note: Notification) -> None:
        params = note.params
        self.revisions.append(params["revision"])
        self.text = apply_changes(self.text, params["changes"], self.encoding)
        self.revision = params["revision"]
        self.progress.set()

    async def reach(self, revision: int) -> None:
        while self.revision < revision:
            self.progress.clear()
            await self.progress.wait()


async def edit_randomly(editor: Editor, uri: str, rng: random.Random) -> int:
    """Edits made against whatever revision this editor has seen (often stale by then).
    Returns how many conflicted with a change made since (each one checked here)."""
    conflicts: list[tuple[int, int | None]] = []
    for _ in range(EDITS_PER_CLIENT):
        text, base = editor.text, editor.revision
        low = rng.randint(0, len(text))
        high = min(len(text), low + rng.choice([0, 0, 1, 2]))
        new = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 3)))
        edit = edit_at(text, low, high, new, editor.encoding)
        params = {"uri": uri, "baseRevision": base, "edits": [edit]}
        try:
            await editor.client.request("symphony/buffer/edit", params)
        except RevisionConflict as exc:
            conflicts.append((base, exc.current_revision))
        if rng.random() < 0.3:
            await asyncio.sleep(0)  # let the others' notifications in: varied staleness
    for base, current in conflicts:
        assert current is not None
        assert current > base
    return len(conflicts)


async def test_three_transports_converge_and_see_every_revision_in_order(daemon: Daemon) -> None:
    addresses, token = daemon.addresses, daemon.token
    clients = [
        ("tcp", SymphonyClient.tcp(addresses["tcp"], token=token, position_encodings=["utf-8"])),
        ("unix", SymphonyClient.unix(addresses["unix"], position_encodings=["utf-16"])),
        ("ws", SymphonyClient.ws(addresses["ws"], token=token, position_encodings=["utf-32"])),
    ]
    async with clients[0][1] as tcp, clients[1][1] as unix, clients[2][1] as ws:
        editors = [
            Editor(name, client, client.position_encoding)
            for (name, _), client in zip(clients, (tcp, unix, ws), strict=True)
        ]
        assert [e.encoding for e in editors] == ["utf-8", "utf-16", "utf-32"]
        start = "start 😀\nsecond é line\n"
        opened = await unix.request("symphony/buffer/open", {"text": start})
        uri = opened["uri"]
        for editor in editors:
            editor.text, editor.revision = start, opened["revision"]
            editor.client.on_notification("symphony/buffer/didChange", editor.on_change)
            await editor.client.request("symphony/buffer/subscribe", {"uri": uri})

        async with asyncio.TaskGroup() as tg:
            runs = [
                tg.create_task(edit_randomly(e, uri, random.Random(f"seed-{e.name}")))
                for e in editors
            ]
        final = await unix.request("symphony/buffer/getText", {"uri": uri})
        # Each client's own reply came after its notifications; wait for the others' last ones.
        async with asyncio.timeout(30):
            for editor in editors:
                await editor.reach(final["revision"])

        conflicts = sum(run.result() for run in runs)
        assert final["revision"] == EDITS_PER_CLIENT * 3 - conflicts
        for editor in editors:
            assert editor.revisions == list(range(1, final["revision"] + 1)), editor.name
            assert editor.text == final["text"], editor.name
        await unix.request("symphony/buffer/close", {"uri": uri, "discard": True})
