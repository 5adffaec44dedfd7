"""The writer process of the crash tests: it puts artifacts until it is killed.

Run as a script, this module is a tiny fork server: it imports the store once, then for each
``["spawn", store, seed, start, mode, fifo]`` line on stdin forks a writer (answering
``["pid", N]``), and for each ``["reap", N]`` waits for that child (``["reaped", N, status]``). Forking a warm interpreter
costs milliseconds where starting one costs a quarter of a second, which is what lets the crash
test afford hundreds of kills. (``multiprocessing``'s fork server re-imports the parent's main
module, pytest, in every child, which costs as much as starting afresh.)

A writer sends ``["put", index, content id, ref]`` (JSON lines on the FIFO) only after `put`
returned, so the parent knows
exactly which puts the store has promised to keep. It also sends markers when it reaches the
windows where a crash matters most: ``pack-durable`` (a pack file renamed into place, not yet
referenced by any commit) and ``transaction`` (inside a write transaction, before its commit).
The markers only observe: the wrapped functions run unchanged. The parent kills the process
with SIGKILL after a marker or an acknowledgement of its choosing.

In ``gc`` mode it also deletes artifacts (``deleting`` / ``deleted`` messages around each
delete) and runs slices of the stale manager with a zero grace period (safe: it is the only
process using the store while it lives) and tiering that moves chunks between encodings, packs
and the archive, so kills also land in deletions, collection, compaction and tier moves.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import os
import random
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

from symphony.pit._packs import PackWriter
from symphony.pit.artifacts import ArtifactStore
from symphony.pit.stale import StaleManager, TierPolicy

_WORDS = [
    "def",
    "class",
    "return",
    "self",
    "value",
    "items",
    "for",
    "while",
    "import",
    "from",
    "yield",
    "lambda",
    "async",
    "await",
    "pit",
    "store",
    "chunk",
    "artifact",
    "version",
    "lineage",
    "suggestion",
    "accepted",
    "workflow",
]


@functools.lru_cache(maxsize=8)
def base_text(seed: int) -> bytes:
    """~250 KB of text, deterministic per seed (versions of a document edit it)."""
    rng = random.Random(seed)
    lines = []
    size = 0
    while size < 250_000:
        indent = " " * 4 * rng.randrange(4)
        lines.append(indent + " ".join(rng.choices(_WORDS, k=rng.randrange(2, 10))))
        size += len(lines[-1]) + 1
    return "\n".join(lines).encode()


def content_for(seed: int, index: int) -> tuple[str, bytes]:
    """The name and content of put number ``index`` (the parent recomputes it to compare)."""
    rng = random.Random(seed * 1_000_003 + index)
    slot = index % 10
    if slot < 4:
        return f"small-{index % 7}", rng.randbytes(rng.randrange(0, 8000))
    text = base_text(seed)
    if slot < 6:
        start = rng.randrange(len(text) // 2)
        return f"medium-{index % 5}", text[start : start + rng.randrange(20_000, 120_000)]
    if slot < 9:
        cut = rng.randrange(len(text))
        return "doc", text[:cut] + f"\nedit {index}\n".encode() + text[cut:]
    # Above INLINE_MAX: stored in a pack file of its own.
    return "big", rng.randbytes(rng.randrange(300_000, 700_000))


class _Channel:
    """Messages to the parent: one JSON line per ``os.write`` (atomic on a pipe)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def send(self, message: tuple[object, ...]) -> None:
        os.write(self.fd, json.dumps(message).encode() + b"\n")


def run(store_path: str, seed: int, start: int, channel: _Channel, mode: str) -> None:
    """Put (and in ``gc`` mode delete and collect) forever, reporting to ``channel``."""
    finish = PackWriter.finish

    def finish_and_report(self: PackWriter) -> Path:
        path = finish(self)
        channel.send(("marker", "pack-durable"))
        return path

    write = ArtifactStore._write

    @contextlib.contextmanager
    def write_and_report(self: ArtifactStore) -> Iterator[sqlite3.Connection]:
        with write(self) as conn:
            channel.send(("marker", "transaction"))
            yield conn

    PackWriter.finish = finish_and_report  # type: ignore[method-assign]
    ArtifactStore._write = write_and_report  # type: ignore[method-assign]

    store = ArtifactStore.open(store_path)
    manager = StaleManager(
        store,
        gc_grace=0,
        tiers=TierPolicy(
            warm_after=0, cold_after=0 if seed % 2 else None, warm_level=1, cold_level=3
        ),
    )
    previous: tuple[int, str] | None = None
    for index in itertools.count(start):
        name, data = content_for(seed, index)
        result = store.put(data, name=name)
        channel.send(("put", index, result.content_id, result.artifact.ref))
        if mode == "gc" and previous is not None and index % 3 == 2:
            channel.send(("deleting", previous[0]))
            store.delete(previous[1], force=True)
            channel.send(("deleted", previous[0]))
            manager.run_slice(max_units=64)
        previous = (index, result.artifact.ref)


def serve() -> None:
    """The fork server loop: JSON requests on stdin, one answer line each on stdout."""
    for line in sys.stdin:
        request = json.loads(line)
        if request[0] == "spawn":
            _, store_path, seed, start, mode, fifo = request
            base_text(seed)  # computed once here, inherited by every child
            pid = os.fork()
            if pid == 0:  # the writer: never returns into the server loop
                os.dup2(2, 1)  # stdout is the server's answer channel: not the writer's
                try:
                    channel = _Channel(os.open(fifo, os.O_WRONLY))
                    run(store_path, seed, start, channel, mode)
                finally:
                    os._exit(1)
            print(json.dumps(["pid", pid]), flush=True)
        elif request[0] == "reap":
            _, status = os.waitpid(request[1], 0)
            print(json.dumps(["reaped", request[1], status]), flush=True)


if __name__ == "__main__":
    serve()
