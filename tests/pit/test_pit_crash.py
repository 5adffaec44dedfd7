"""Crash safety: a writer killed with SIGKILL at random moments never loses an acknowledged put.

Each iteration starts a writer process (forked by a fork server that imported the store once,
see ``pit_crash_writer``, so an iteration costs milliseconds, not an interpreter start-up), lets it acknowledge a random number of puts,
then kills it at a moment chosen by the parent: right after an acknowledgement (the next put is
under way), right after a pack file became durable but before the commit that references it,
or inside a write transaction. Then, in the parent: the store opens (SQLite recovers its WAL),
``fsck`` finds no error, and every acknowledged artifact reads back byte-identical.

Iterations run in series of 25 on one store, so later iterations also recover from earlier
crashes and deduplicate against chunks written before them; a quarter of the iterations run the
writer in ``gc`` mode, where kills also land in deletions, collection, compaction and tier moves.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import select
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pit_crash_writer
import pytest

from symphony.pit import NotFound
from symphony.pit.artifacts import ArtifactStore, fsck
from symphony.pit.stale import StaleManager

ITERATIONS = 200
SERIES = 8
_DEADLINE = 60.0  # seconds an iteration may wait for its writer's next message


@dataclass
class _Series:
    seed: int
    path: Path
    acked: dict[int, tuple[str, str]] = field(default_factory=dict)  # index -> (cid, ref)
    sizes: dict[int, int] = field(default_factory=dict)  # index -> expected size
    deleted: set[int] = field(default_factory=set)
    # Deletions started but never acknowledged: each may or may not have committed.
    uncertain: set[int] = field(default_factory=set)
    next_index: int = 0
    kills: dict[str, int] = field(default_factory=dict)


class _ForkServer:
    """The parent's end of ``pit_crash_writer``'s fork server."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, pit_crash_writer.__file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def request(self, *request: object) -> list[object]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        answer = json.loads(self.process.stdout.readline())
        assert isinstance(answer, list)
        return answer

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        assert self.process.wait(timeout=30) == 0


class _Messages:
    """JSON lines from a writer's FIFO, read with a deadline."""

    def __init__(self, fifo: Path) -> None:
        # Non-blocking open: there is no writer yet. Reads see EOF only after one came and went.
        self.fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        self.buffer = b""
        self.eof = False

    def next(self, timeout: float) -> list[object] | None:
        """The next message; None at EOF, or if ``timeout`` is 0 and none is waiting."""
        while b"\n" not in self.buffer:
            if self.eof:
                return None
            ready, _, _ = select.select([self.fd], [], [], timeout)
            if not ready:
                if timeout == 0:
                    return None
                raise AssertionError(f"writer silent for {timeout} s")
            data = os.read(self.fd, 65536)
            if not data:
                self.eof = True
            self.buffer += data
        line, self.buffer = self.buffer.split(b"\n", 1)
        message = json.loads(line)
        assert isinstance(message, list)
        return message

    def close(self) -> None:
        os.close(self.fd)


def _handle(series: _Series, message: list[object]) -> None:
    kind = message[0]
    if kind == "put":
        index, cid, ref = message[1], message[2], message[3]
        assert isinstance(index, int)
        assert isinstance(cid, str)
        assert isinstance(ref, str)
        _, expected = pit_crash_writer.content_for(series.seed, index)
        assert cid == "sha256:" + hashlib.sha256(expected).hexdigest()
        series.acked[index] = (cid, ref)
        series.sizes[index] = len(expected)
        series.next_index = max(series.next_index, index + 1)
    elif kind == "deleting":
        assert isinstance(message[1], int)
        series.uncertain.add(message[1])
    elif kind == "deleted":
        assert isinstance(message[1], int)
        series.deleted.add(message[1])
        series.uncertain.discard(message[1])


def _iteration(
    server: _ForkServer, series: _Series, rng: random.Random, mode: str, fifo: Path
) -> None:
    os.mkfifo(fifo)
    messages = _Messages(fifo)
    answer = server.request(
        "spawn", str(series.path), series.seed, series.next_index, mode, str(fifo)
    )
    pid = answer[1]
    assert isinstance(pid, int)
    wanted_acks = rng.randrange(0, 4)
    trigger = rng.choice(["ack", "pack-durable", "transaction", "transaction"])
    acks = 0
    try:
        while (message := messages.next(_DEADLINE)) is not None:
            _handle(series, message)
            if message[0] == "put":
                acks += 1
                if trigger == "ack" and acks >= wanted_acks:
                    break
            elif message[0] == "marker" and message[1] == trigger and acks >= wanted_acks:
                break
        else:
            raise AssertionError("the writer exited on its own")
    finally:
        os.kill(pid, signal.SIGKILL)
        reaped = server.request("reap", pid)
    assert reaped == ["reaped", pid, signal.SIGKILL], reaped
    series.kills[trigger] = series.kills.get(trigger, 0) + 1
    # Messages sent before the kill are acknowledgements too: those puts returned.
    while (message := messages.next(0)) is not None:
        _handle(series, message)
    messages.close()
    os.unlink(fifo)


def _verify(series: _Series, new: set[int], *, everything: bool = False) -> None:
    """fsck finds no error, and every acknowledged artifact is there with its content id and
    size; the ``new`` ones (all, with ``everything``) also read back byte-identical.

    An acknowledged content id is the SHA-256 of the expected bytes (checked on arrival), so
    ``get(verify=True)`` returning at all proves the bytes identical; ``new`` ones are also
    compared with the regenerated bytes directly.
    """
    with ArtifactStore.open(series.path) as store:
        report = fsck(store)
        assert report.ok, [p.message for p in report.errors]
        present = {info.ref: info for info in store.list_artifacts(limit=10_000)}
        for index, (cid, ref) in sorted(series.acked.items()):
            if index in series.deleted:
                continue
            info = present.get(ref)
            if info is None:
                assert index in series.uncertain, f"acknowledged {ref} is lost"
                with pytest.raises(NotFound):
                    store.get(ref)
                continue
            assert info.content_id == cid
            assert info.size == series.sizes[index]
            if index in new:
                _, expected = pit_crash_writer.content_for(series.seed, index)
                assert store.get(cid) == expected, f"{ref} does not read back"
                assert store.get(ref) == expected, f"{ref} does not read back"
            elif everything:
                assert len(store.get(ref, verify=True)) == series.sizes[index]


def _run_series(seed: int, path: Path, iterations: int) -> _Series:
    series = _Series(seed=seed, path=path)
    rng = random.Random(seed)
    server = _ForkServer()
    try:
        for iteration in range(iterations):
            before = set(series.acked)
            mode = "gc" if iteration % 4 == 3 else "put"
            _iteration(server, series, rng, mode, path.with_name(f"{path.name}.fifo"))
            _verify(series, set(series.acked) - before)
    finally:
        server.close()
    _verify(series, set(), everything=True)
    with ArtifactStore.open(path) as store:
        StaleManager(store, gc_grace=0).gc()
        report = fsck(store, verify=True)
        assert report.ok, report.to_json()
        assert not report.collectable, report.to_json()
    return series


def test_sigkill_at_random_moments_loses_no_acknowledged_put(tmp_path: Path) -> None:
    per_series = ITERATIONS // SERIES
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [
            pool.submit(_run_series, seed, tmp_path / f"store-{seed}", per_series)
            for seed in range(SERIES)
        ]
        results = [future.result() for future in futures]
    kills: dict[str, int] = {}
    for series in results:
        for trigger, count in series.kills.items():
            kills[trigger] = kills.get(trigger, 0) + count
    assert sum(kills.values()) == ITERATIONS
    # Every kind of kill point was exercised, and plenty of puts were acknowledged.
    assert set(kills) == {"ack", "pack-durable", "transaction"}
    assert sum(len(s.acked) for s in results) >= ITERATIONS
