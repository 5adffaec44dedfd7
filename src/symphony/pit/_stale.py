"""The stale manager: retention, protection, tiers and garbage collection, in bounded slices.

Theory of operation
-------------------
Decisions are pure functions of a snapshot (`plan_retention`, `plan_tiers`): given the facts
about every artifact, a policy, the live references and the time, they return what to delete
or re-tier and why. They do no I/O, so property tests can throw any store state at them; the
one guarantee that matters, *a protected artifact is never planned for deletion*, is checked
there, and checked again when the deletion happens (`StaleManager` re-evaluates protection
inside the transaction that deletes, since a pin may have arrived after the plan).

`StaleManager.run_slice` executes a cycle as a resumable sequence of phases, doing at most
``max_units`` units of work per call (an artifact deleted, a content collected, 16 chunk rows
swept, a chunk re-encoded, a pack folder scanned, 64 pages vacuumed), each in short
transactions. The daemon calls it from a worker thread whenever it likes; no call holds the
store's write lock for more than one small batch, so requests are never blocked behind it.

Phases of a cycle::

    retention -> blobs -> tiers -> chunks -> packs -> files -> index -> vacuum -> (done)

Contents are collected before tiering so that a chunk shared with deleted versions is tiered by
the contents that remain, and chunks are swept after it so that packs emptied by either step
are compacted or deleted in the same cycle.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from symphony.pit import _gc
from symphony.pit._exceptions import InvalidArgument
from symphony.pit._log import logger
from symphony.pit._model import Tier
from symphony.pit._protect import protection_reasons
from symphony.pit._store import ArtifactStore

__all__ = [
    "DEFAULT_GRACE",
    "ArtifactFacts",
    "BlobFacts",
    "CycleReport",
    "Deletion",
    "RetentionPlan",
    "RetentionPolicy",
    "SliceReport",
    "StaleManager",
    "TierChange",
    "TierPolicy",
    "plan_retention",
    "plan_tiers",
]

DEFAULT_GRACE: Final = 3600.0  # seconds an unreferenced chunk or stray file is kept
_DAY: Final = 86400.0

Phase = Literal["retention", "blobs", "tiers", "chunks", "packs", "files", "index", "vacuum"]
PHASES: Final[tuple[Phase, ...]] = (
    "retention",
    "blobs",
    "tiers",
    "chunks",
    "packs",
    "files",
    "index",
    "vacuum",
)
GC_PHASES: Final[tuple[Phase, ...]] = ("blobs", "chunks", "packs", "files", "vacuum")


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """When artifact versions may be deleted. ``None`` disables a rule.

    - ``max_age``: versions older than this many seconds go;
    - ``keep_versions``: only the newest N versions of each name are kept;
    - ``size_budget``: oldest versions go until the stored bytes fit in the budget;
    - ``keep_latest``: the latest version of a name is never deleted by any rule.

    Protected artifacts (pinned, accepted suggestions, quality at or above the store's
    threshold, held by a live workflow) are never deleted, whatever the rules say.
    """

    max_age: float | None = None
    keep_versions: int | None = None
    size_budget: int | None = None
    keep_latest: bool = True

    def __post_init__(self) -> None:
        if self.max_age is not None and not self.max_age >= 0:
            raise InvalidArgument("max_age is a non-negative number of seconds")
        if self.keep_versions is not None and self.keep_versions < 1:
            raise InvalidArgument("keep_versions is at least 1")
        if self.size_budget is not None and self.size_budget < 0:
            raise InvalidArgument("size_budget is a non-negative number of bytes")

    @property
    def active(self) -> bool:
        return any(v is not None for v in (self.max_age, self.keep_versions, self.size_budget))


@dataclass(frozen=True, slots=True)
class TierPolicy:
    """When content moves to colder tiers, by the age of its newest artifact.

    Hot content is stored raw; warm is zstd-compressed (``warm_level``); cold is compressed
    harder (``cold_level``) and, with ``archive``, moved to the archive folder. All of it reads
    the same. ``None`` never moves content to that tier (and brings it back if it is there).
    """

    warm_after: float | None = 7 * _DAY
    cold_after: float | None = 30 * _DAY
    archive: bool = True
    warm_level: int = 3
    cold_level: int = 15

    def __post_init__(self) -> None:
        for value in (self.warm_after, self.cold_after):
            if value is not None and not value >= 0:
                raise InvalidArgument("tier ages are non-negative numbers of seconds")
        if not (1 <= self.warm_level <= 22 and 1 <= self.cold_level <= 22):
            raise InvalidArgument("zstd levels are between 1 and 22")

    def tier_for(self, age: float) -> Tier:
        if self.cold_after is not None and age >= self.cold_after:
            return "cold"
        if self.warm_after is not None and age >= self.warm_after:
            return "warm"
        return "hot"


@dataclass(frozen=True, slots=True)
class ArtifactFacts:
    """What retention needs to know about one artifact version."""

    id: int
    name: str
    version: int
    kind: str
    created_at: float
    pinned: bool
    quality: float | None
    outcome: str | None
    blob: int


@dataclass(frozen=True, slots=True)
class Deletion:
    artifact_id: int
    ref: str
    reason: Literal["age", "versions", "budget"]

    def to_json(self) -> dict[str, Any]:
        return {"artifactId": self.artifact_id, "ref": self.ref, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class RetentionPlan:
    """Artifacts to delete, and those a rule selected but protection kept (with why)."""

    deletions: tuple[Deletion, ...]
    kept_protected: tuple[tuple[int, tuple[str, ...]], ...]
    stored_bytes: int
    projected_bytes: int

    def to_json(self) -> dict[str, Any]:
        return {
            "deletions": [d.to_json() for d in self.deletions],
            "keptProtected": [
                {"artifactId": i, "reasons": list(reasons)} for i, reasons in self.kept_protected
            ],
            "storedBytes": self.stored_bytes,
            "projectedBytes": self.projected_bytes,
        }


def plan_retention(
    artifacts: Sequence[ArtifactFacts],
    policy: RetentionPolicy,
    *,
    now: float,
    quality_threshold: float | None,
    live: frozenset[int],
    blob_chunks: Mapping[int, Sequence[int]] | None = None,
    chunk_sizes: Mapping[int, int] | None = None,
) -> RetentionPlan:
    """Which artifacts ``policy`` deletes. Pure: no I/O, same inputs give the same plan.

    ``blob_chunks`` (content -> chunk ids) and ``chunk_sizes`` (chunk -> stored bytes) are only
    needed for a size budget: deleting an artifact frees the chunks no remaining artifact uses,
    which the plan simulates with reference counts, oldest artifacts first.

    Invariants (checked by property tests):
        - no planned deletion is protected (`protection_reasons` is empty for it);
        - with ``keep_latest``, no planned deletion is the latest version of its name;
        - each artifact is planned at most once, with the first rule that selected it.
    """
    by_name: dict[str, list[ArtifactFacts]] = defaultdict(list)
    for facts in artifacts:
        by_name[facts.name].append(facts)
    latest = {name: max(v.version for v in versions) for name, versions in by_name.items()}

    def protected(facts: ArtifactFacts) -> tuple[str, ...]:
        return protection_reasons(
            artifact_id=facts.id,
            kind=facts.kind,
            pinned=facts.pinned,
            quality=facts.quality,
            outcome=facts.outcome,
            quality_threshold=quality_threshold,
            live=live,
        )

    chosen: dict[int, Deletion] = {}
    kept: dict[int, tuple[str, ...]] = {}

    def select(facts: ArtifactFacts, reason: Literal["age", "versions", "budget"]) -> bool:
        if facts.id in chosen or facts.id in kept:
            return facts.id in chosen
        if policy.keep_latest and facts.version == latest[facts.name]:
            return False
        reasons = protected(facts)
        if reasons:
            kept[facts.id] = reasons
            return False
        chosen[facts.id] = Deletion(facts.id, f"{facts.name}@{facts.version}", reason)
        return True

    if policy.keep_versions is not None:
        for versions in by_name.values():
            ordered = sorted(versions, key=lambda v: v.version, reverse=True)
            for facts in ordered[policy.keep_versions :]:
                select(facts, "versions")
    if policy.max_age is not None:
        cutoff = now - policy.max_age
        for facts in artifacts:
            if facts.created_at < cutoff:
                select(facts, "age")

    # Reference counts, to know what deleting frees (exactly, for a budget).
    blob_refs: dict[int, int] = defaultdict(int)
    for facts in artifacts:
        blob_refs[facts.blob] += 1
    chunks_of = blob_chunks or {}
    sizes = chunk_sizes or {}
    chunk_refs: dict[int, int] = defaultdict(int)
    for blob in blob_refs:
        for chunk in chunks_of.get(blob, ()):
            chunk_refs[chunk] += 1
    stored = sum(sizes.get(c, 0) for c in chunk_refs)
    projected = stored

    def release(facts: ArtifactFacts) -> int:
        freed = 0
        blob_refs[facts.blob] -= 1
        if blob_refs[facts.blob] == 0:
            for chunk in chunks_of.get(facts.blob, ()):
                chunk_refs[chunk] -= 1
                if chunk_refs[chunk] == 0:
                    freed += sizes.get(chunk, 0)
        return freed

    index = {facts.id: facts for facts in artifacts}
    for artifact_id in chosen:
        projected -= release(index[artifact_id])
    if policy.size_budget is not None and projected > policy.size_budget:
        for facts in sorted(artifacts, key=lambda f: (f.created_at, f.id)):
            if projected <= policy.size_budget:
                break
            if facts.id not in chosen and select(facts, "budget"):
                projected -= release(facts)
    return RetentionPlan(
        deletions=tuple(sorted(chosen.values(), key=lambda d: d.artifact_id)),
        kept_protected=tuple(sorted(kept.items())),
        stored_bytes=stored,
        projected_bytes=projected,
    )


@dataclass(frozen=True, slots=True)
class BlobFacts:
    """What tiering needs to know about one content: its tier, its newest artifact's time."""

    id: int
    tier: Tier
    newest: float


@dataclass(frozen=True, slots=True)
class TierChange:
    blob_id: int
    old: Tier
    new: Tier

    def to_json(self) -> dict[str, Any]:
        return {"blobId": self.blob_id, "from": self.old, "to": self.new}


def plan_tiers(blobs: Sequence[BlobFacts], policy: TierPolicy, *, now: float) -> list[TierChange]:
    """The contents whose tier the policy changes. Pure."""
    changes = []
    for blob in blobs:
        tier = policy.tier_for(max(0.0, now - blob.newest))
        if tier != blob.tier:
            changes.append(TierChange(blob.id, blob.tier, tier))
    return changes


@dataclass(slots=True)
class CycleReport:
    """What a cycle did (or, in a dry run, would do). Byte counts are stored bytes."""

    dry_run: bool = False
    deleted_artifacts: list[Deletion] = field(default_factory=list)
    kept_protected: int = 0
    tier_changes: int = 0
    chunks_retiered: int = 0
    blobs_collected: int = 0
    chunks_marked: int = 0
    chunks_collected: int = 0
    chunks_waiting: int = 0
    chunk_bytes_freed: int = 0
    packs_deleted: int = 0
    packs_compacted: int = 0
    pack_bytes_freed: int = 0
    files_deleted: int = 0
    file_bytes_freed: int = 0
    texts_indexed: int = 0
    pages_vacuumed: int = 0
    units: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "dryRun": self.dry_run,
            "deletedArtifacts": [d.to_json() for d in self.deleted_artifacts],
            "keptProtected": self.kept_protected,
            "tierChanges": self.tier_changes,
            "chunksRetiered": self.chunks_retiered,
            "blobsCollected": self.blobs_collected,
            "chunksMarked": self.chunks_marked,
            "chunksCollected": self.chunks_collected,
            "chunksWaiting": self.chunks_waiting,
            "chunkBytesFreed": self.chunk_bytes_freed,
            "packsDeleted": self.packs_deleted,
            "packsCompacted": self.packs_compacted,
            "packBytesFreed": self.pack_bytes_freed,
            "filesDeleted": self.files_deleted,
            "fileBytesFreed": self.file_bytes_freed,
            "textsIndexed": self.texts_indexed,
            "pagesVacuumed": self.pages_vacuumed,
            "units": self.units,
        }


@dataclass(frozen=True, slots=True)
class SliceReport:
    """One `StaleManager.run_slice`: the phase it ended in, units used, whether the cycle
    finished (the next call starts a new one)."""

    phase: str
    units: int
    cycle_done: bool


class _Cycle:
    """State of a cycle in progress (what `run_slice` resumes)."""

    def __init__(self, phases: tuple[Phase, ...], dry_run: bool) -> None:
        self.phases = phases
        self.index = 0
        self.report = CycleReport(dry_run=dry_run)
        self.deletions: list[Deletion] | None = None
        self.tier_changes: list[TierChange] | None = None
        self.cursor = 0

    @property
    def phase(self) -> Phase | None:
        return self.phases[self.index] if self.index < len(self.phases) else None

    def advance(self) -> None:
        self.index += 1
        self.cursor = 0


class StaleManager:
    """Applies retention and tier policies to a store and collects its garbage.

    ``gc_grace`` is how long an unreferenced chunk or a stray file survives: longer than any
    put can take (0 is only safe when nothing else uses the store). ``clock`` is injectable
    for tests.
    """

    def __init__(
        self,
        store: ArtifactStore,
        *,
        retention: RetentionPolicy | None = None,
        tiers: TierPolicy | None = None,
        gc_grace: float = DEFAULT_GRACE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if gc_grace < 0:
            raise InvalidArgument("gc_grace is a non-negative number of seconds")
        self.store = store
        self.retention = retention if retention is not None else RetentionPolicy()
        self.tiers = tiers
        self.gc_grace = gc_grace
        self.clock = clock
        self._cycle: _Cycle | None = None
        self.last_report: CycleReport | None = None  # of the last cycle that finished

    # -- snapshots and plans -----------------------------------------------------------------

    def plan_retention(self, now: float | None = None) -> RetentionPlan:
        """The retention plan for the store as it is now (nothing is changed)."""
        at = self.clock() if now is None else now
        with self.store._read() as conn:
            facts = [
                ArtifactFacts(r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6], r[7], r[8])
                for r in conn.execute(
                    "SELECT id, name, version, kind, created_at, pinned, quality, outcome, blob "
                    "FROM artifacts"
                )
            ]
            blob_chunks: dict[int, list[int]] = defaultdict(list)
            sizes: dict[int, int] = {}
            if self.retention.size_budget is not None:
                for blob, chunk in conn.execute("SELECT blob, chunk FROM blob_chunks"):
                    blob_chunks[blob].append(chunk)
                sizes = dict(conn.execute("SELECT id, stored_size FROM chunks"))
        return plan_retention(
            facts,
            self.retention,
            now=at,
            quality_threshold=self.store.protect_quality,
            live=self.store.live.snapshot(),
            blob_chunks=blob_chunks,
            chunk_sizes=sizes,
        )

    def plan_tiers(self, now: float | None = None) -> list[TierChange]:
        if self.tiers is None:
            return []
        at = self.clock() if now is None else now
        rows = (
            self.store._db()
            .execute(
                "SELECT b.id, b.tier, max(a.created_at) FROM blobs b JOIN artifacts a ON a.blob = b.id "
                "GROUP BY b.id"
            )
            .fetchall()
        )
        return plan_tiers([BlobFacts(r[0], r[1], r[2]) for r in rows], self.tiers, now=at)

    # -- running ---------------------------------------------------------------------------

    def run_slice(self, max_units: int = 256, *, dry_run: bool = False) -> SliceReport:
        """Do at most ~``max_units`` units of the current cycle (starting one if none runs).

        A dry-run slice never changes the store; mixing dry and real slices in one cycle is
        not allowed (start a new manager or finish the cycle).
        """
        if max_units < 1:
            raise InvalidArgument("max_units is at least 1")
        if self._cycle is None:
            self._cycle = _Cycle(PHASES, dry_run)
        elif self._cycle.report.dry_run != dry_run:
            raise InvalidArgument("a cycle is running with another dry_run setting")
        cycle = self._cycle
        used = 0
        while used < max_units and cycle.phase is not None:
            phase = cycle.phase
            step, finished = self._step(cycle, phase, max_units - used)
            used += step
            if finished:
                cycle.advance()
        cycle.report.units += used
        last = cycle.phase or PHASES[-1]
        done = cycle.phase is None
        if done:
            self.last_report = cycle.report
            self._cycle = None
            logger().info(
                "pit.stale.cycle",
                dry_run=cycle.report.dry_run,
                deleted=len(cycle.report.deleted_artifacts),
                contents=cycle.report.blobs_collected,
                chunks=cycle.report.chunks_collected,
                packs=cycle.report.packs_deleted + cycle.report.packs_compacted,
                files=cycle.report.files_deleted,
                freed=cycle.report.chunk_bytes_freed
                + cycle.report.pack_bytes_freed
                + cycle.report.file_bytes_freed,
            )
        return SliceReport(phase=last, units=used, cycle_done=done)

    def run(self, *, dry_run: bool = False, max_units: int = 1024) -> CycleReport:
        """A whole cycle (retention, tiers, collection, index, vacuum), slice after slice."""
        self._cycle = _Cycle(PHASES, dry_run)
        return self._finish(max_units, dry_run)

    def gc(self, *, dry_run: bool = False, max_units: int = 1024) -> CycleReport:
        """Garbage collection only: no retention or tier policy is applied."""
        self._cycle = _Cycle(GC_PHASES, dry_run)
        return self._finish(max_units, dry_run)

    def _finish(self, max_units: int, dry_run: bool) -> CycleReport:
        cycle = self._cycle
        assert cycle is not None
        while cycle.phase is not None:
            self.run_slice(max_units, dry_run=dry_run)
        return cycle.report

    def _step(self, cycle: _Cycle, phase: Phase, budget: int) -> tuple[int, bool]:
        """Run ``phase`` for at most ``budget`` units: (units used, phase finished)."""
        report = cycle.report
        dry = report.dry_run
        store = self.store
        now = self.clock()
        if phase == "retention":
            if cycle.deletions is None:
                if not self.retention.active:
                    return 1, True
                plan = self.plan_retention(now)
                cycle.deletions = list(plan.deletions)
                report.kept_protected += len(plan.kept_protected)
                return 1, not cycle.deletions
            batch, cycle.deletions = cycle.deletions[:budget], cycle.deletions[budget:]
            if dry:
                report.deleted_artifacts.extend(batch)
            else:
                report.deleted_artifacts.extend(self._delete(batch, now))
            return max(1, len(batch)), not cycle.deletions
        if phase == "tiers":
            if self.tiers is None:
                return 1, True
            if cycle.tier_changes is None:
                cycle.tier_changes = self.plan_tiers(now)
                report.tier_changes += len(cycle.tier_changes)
                if not dry:
                    with store._write() as conn:
                        for change in cycle.tier_changes:
                            conn.execute(
                                "UPDATE blobs SET tier = ? WHERE id = ? AND tier = ?",
                                (change.new, change.blob_id, change.old),
                            )
                return 1, False
            move = _gc.move_tiers(
                store,
                limit=budget,
                cursor=cycle.cursor,
                archive=self.tiers.archive,
                warm_level=self.tiers.warm_level,
                cold_level=self.tiers.cold_level,
                dry_run=dry,
            )
            cycle.cursor = move.cursor
            report.chunks_retiered += move.moved
            return move.units, move.finished
        if phase == "blobs":
            count, _, finished = _gc.collect_blobs(store, limit=budget, dry_run=dry)
            report.blobs_collected += count
            return max(1, count), finished
        if phase == "chunks":
            sweep = _gc.sweep_chunks(
                store,
                limit=budget,
                grace=self.gc_grace,
                now=now,
                cursor=cycle.cursor,
                dry_run=dry,
            )
            cycle.cursor = sweep.cursor
            report.chunks_marked += sweep.marked
            report.chunks_collected += sweep.deleted
            report.chunks_waiting += sweep.waiting
            report.chunk_bytes_freed += sweep.freed_bytes
            return sweep.units, sweep.finished
        if phase == "packs":
            packs = _gc.collect_packs(store, limit=budget, dry_run=dry)
            report.packs_deleted += packs.deleted
            report.packs_compacted += packs.compacted
            report.pack_bytes_freed += packs.freed_bytes
            return max(1, packs.units), packs.finished
        if phase == "files":
            files = _gc.collect_files(
                store,
                limit=budget,
                grace=self.gc_grace,
                now=now,
                cursor=cycle.cursor,
                dry_run=dry,
            )
            cycle.cursor = files.cursor
            report.files_deleted += files.deleted
            report.file_bytes_freed += files.freed_bytes
            return files.units, files.finished
        if phase == "index":
            if dry:
                return 1, True
            count = store.index_pending(max_bytes=budget * 256 * 1024, max_contents=budget)
            report.texts_indexed += count
            return max(1, count), count == 0
        if phase == "vacuum":
            pages, finished = _gc.vacuum(store, limit=budget, dry_run=dry)
            report.pages_vacuumed += pages
            return max(1, -(-pages // 64)), finished
        raise AssertionError(phase)

    def _delete(self, batch: Sequence[Deletion], now: float) -> list[Deletion]:
        """Delete planned artifacts, re-checking protection and keep_latest in the transaction."""
        done: list[Deletion] = []
        store = self.store
        with store._write() as conn:
            live = store.live.snapshot()
            for deletion in batch:
                row = conn.execute(
                    "SELECT a.id, n.head FROM artifacts a JOIN names n ON n.name = a.name "
                    "WHERE a.id = ?",
                    (deletion.artifact_id,),
                ).fetchone()
                if row is None:
                    continue
                if self.retention.keep_latest and row[1] == row[0]:
                    continue
                if store._protection(conn, deletion.artifact_id, live):
                    continue
                store._delete_artifact(conn, deletion.artifact_id)
                done.append(deletion)
        return done
