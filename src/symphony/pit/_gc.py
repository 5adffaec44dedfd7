"""Garbage collection and data movement, each step bounded so the daemon can interleave it.

Theory of operation
-------------------
Deleting an artifact only removes its row. What it held goes in stages, each a function here
that does at most ``limit`` units of work in short transactions and says whether it finished:

1. `collect_blobs`: contents no artifact holds are deleted with their chunk lists. Puts decide
   whether a content exists inside their write transaction, so this needs no grace period.
2. `sweep_chunks`: a chunk no content lists is first *marked* (``orphaned_at``), and deleted
   only when a later sweep finds it still unreferenced and marked for longer than ``grace``.
   A put's unlocked first step treats marked chunks as absent, so any chunk it relies on was
   unmarked when it looked and cannot go before a full grace period has passed; deleting bumps
   ``gc_epoch`` so a put that took longer than that notices (`PutConflict`).
3. `collect_packs`: packs with no chunk left are deleted (row first, file after the commit);
   packs mostly dead are compacted: live records are copied verbatim (sealed records are bound
   to their chunk, not their place, so they move without re-encryption) into a new durable
   pack, rows are switched over in one transaction, and the old file goes after the commit.
4. `collect_files`: files nothing in the database names (packs of puts that died before their
   commit, temp files) once they are older than ``grace``: a put in progress is younger.
5. `vacuum`: gives freed database pages back to the file system (``incremental_vacuum``).

`move_tiers` re-encodes chunks whose tier differs from the hottest tier of the contents that
use them (hot: raw; warm: zstd; cold: zstd, in the archive folder when enabled).

Every deletion of a file happens after the commit that stopped referencing it: a crash in
between leaves an orphan file (step 4 removes it), never a reference to a missing file.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final, NamedTuple, cast

from symphony.pit._crypto import encode_chunk
from symphony.pit._model import TIERS, Tier
from symphony.pit._packs import PACK_SUFFIX, Area, PackWriter

if TYPE_CHECKING:
    from symphony.pit._store import ArtifactStore, ChunkLocation

__all__ = [
    "MIN_LIVE_RATIO",
    "FileSweep",
    "collect_blobs",
    "collect_files",
    "collect_packs",
    "move_tiers",
    "sweep_chunks",
    "vacuum",
]

MIN_LIVE_RATIO: Final = 0.5  # packs with less live data than this fraction are compacted
_SCAN_PER_UNIT: Final = 16  # chunk rows one unit of sweeping may look at
_PAGES_PER_UNIT: Final = 64  # database pages one unit of vacuuming frees
_MOVE_BYTES_PER_UNIT: Final = 64 * 1024  # plaintext one unit of tier moving may re-encode


def _bump_epoch(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'gc_epoch'")


def collect_blobs(store: ArtifactStore, *, limit: int, dry_run: bool) -> tuple[int, int, bool]:
    """Delete up to ``limit`` contents no artifact holds: ``(count, bytes, finished)``.

    A dry run counts all of them (one aggregate query) and changes nothing.
    """
    if dry_run:
        count, size = (
            store._db()
            .execute(
                "SELECT count(*), coalesce(sum(size), 0) FROM blobs b "
                "WHERE NOT EXISTS (SELECT 1 FROM artifacts a WHERE a.blob = b.id)"
            )
            .fetchone()
        )
        return int(count), int(size), True
    with store._write() as conn:
        rows = conn.execute(
            "SELECT id, size, text_state FROM blobs b "
            "WHERE NOT EXISTS (SELECT 1 FROM artifacts a WHERE a.blob = b.id) LIMIT ?",
            (limit,),
        ).fetchall()
        if rows:
            for blob_id, _, text_state in rows:
                if text_state == 1:
                    conn.execute("DELETE FROM text_fts WHERE rowid = ?", (blob_id,))
                conn.execute("DELETE FROM blob_chunks WHERE blob = ?", (blob_id,))
                conn.execute("DELETE FROM blobs WHERE id = ?", (blob_id,))
    return len(rows), sum(r[1] for r in rows), len(rows) < limit


@dataclass(slots=True)
class ChunkSweep:
    """What one `sweep_chunks` call did (or, dry, would do)."""

    marked: int = 0
    deleted: int = 0
    freed_bytes: int = 0
    waiting: int = 0  # unreferenced, but marked less than a grace period ago
    cursor: int = 0
    units: int = 0
    finished: bool = False


def sweep_chunks(
    store: ArtifactStore,
    *,
    limit: int,
    grace: float,
    now: float,
    cursor: int,
    dry_run: bool,
) -> ChunkSweep:
    """Mark and delete unreferenced chunks among the next ``limit * 16`` chunk ids."""
    result = ChunkSweep(cursor=cursor)
    # A dry run counts as unreferenced what no *held* content uses: the contents no artifact
    # holds are still there (a dry run deletes nothing) but a real run collects them first.
    referenced = (
        "EXISTS (SELECT 1 FROM blob_chunks bc JOIN artifacts a ON a.blob = bc.blob "
        "WHERE bc.chunk = c.id)"
        if dry_run
        else "EXISTS (SELECT 1 FROM blob_chunks bc WHERE bc.chunk = c.id)"
    )
    ctx = store._read() if dry_run else store._write()
    with ctx as conn:
        rows = conn.execute(
            f"SELECT c.id, c.orphaned_at, c.stored_size, {referenced} "
            "FROM chunks c WHERE c.id > ? ORDER BY c.id LIMIT ?",
            (cursor, limit * _SCAN_PER_UNIT),
        ).fetchall()
        to_mark: list[int] = []
        to_unmark: list[int] = []
        to_delete: list[tuple[int, int]] = []
        for chunk_id, orphaned_at, stored_size, referenced in rows:
            if referenced:
                if orphaned_at is not None:
                    to_unmark.append(chunk_id)
            elif orphaned_at is None:
                # Marked now; with a zero grace period it may also go now (nothing else runs).
                to_mark.append(chunk_id)
                if grace <= 0:
                    to_delete.append((chunk_id, stored_size))
            elif orphaned_at <= now - grace:
                to_delete.append((chunk_id, stored_size))
            else:
                result.waiting += 1
        result.marked = len(to_mark)
        if not dry_run:
            conn.executemany(
                "UPDATE chunks SET orphaned_at = ? WHERE id = ?", [(now, i) for i in to_mark]
            )
            conn.executemany(
                "UPDATE chunks SET orphaned_at = NULL WHERE id = ?", [(i,) for i in to_unmark]
            )
            for chunk_id, stored_size in to_delete:
                cur = conn.execute(
                    "DELETE FROM chunks WHERE id = ? AND NOT EXISTS "
                    "(SELECT 1 FROM blob_chunks bc WHERE bc.chunk = ?)",
                    (chunk_id, chunk_id),
                )
                if cur.rowcount:
                    result.deleted += 1
                    result.freed_bytes += stored_size
            if result.deleted:
                _bump_epoch(conn)
        else:
            result.deleted = len(to_delete)
            result.freed_bytes = sum(size for _, size in to_delete)
    result.cursor = rows[-1][0] if rows else cursor
    result.finished = len(rows) < limit * _SCAN_PER_UNIT
    result.units = max(1, -(-len(rows) // _SCAN_PER_UNIT))
    return result


@dataclass(slots=True)
class PackSweep:
    deleted: int = 0
    compacted: int = 0
    freed_bytes: int = 0
    units: int = 0
    finished: bool = False


def collect_packs(store: ArtifactStore, *, limit: int, dry_run: bool) -> PackSweep:
    """Delete empty packs and compact sparse ones, up to ``limit`` units (one per chunk moved)."""
    result = PackSweep()
    rows = (
        store._db()
        .execute(
            "SELECT p.id, p.name, p.area, p.size, "
            "coalesce((SELECT sum(c.stored_size) FROM chunks c WHERE c.pack = p.id), 0), "
            "(SELECT count(*) FROM chunks c WHERE c.pack = p.id) "
            "FROM packs p ORDER BY p.id"
        )
        .fetchall()
    )
    for pack_id, name, area, size, live_bytes, live_chunks in rows:
        if result.units >= limit:
            return result
        if live_chunks == 0:
            if not dry_run and not _drop_pack(store, pack_id, name, area):
                continue
            result.deleted += 1
            result.freed_bytes += size
            result.units += 1
        elif live_bytes < size * MIN_LIVE_RATIO:
            if dry_run:
                result.compacted += 1
                result.freed_bytes += size - live_bytes
                result.units += live_chunks
                continue
            freed = _compact_pack(store, pack_id, name, area)
            result.compacted += 1
            result.freed_bytes += freed
            result.units += live_chunks
    result.finished = True
    return result


def _drop_pack(store: ArtifactStore, pack_id: int, name: str, area: str) -> bool:
    with store._write() as conn:
        if conn.execute("SELECT 1 FROM chunks WHERE pack = ? LIMIT 1", (pack_id,)).fetchone():
            return False
        conn.execute("DELETE FROM packs WHERE id = ?", (pack_id,))
    with contextlib.suppress(FileNotFoundError):
        os.unlink(store.layout.pack_path(cast(Area, area), name))
    return True


def _compact_pack(store: ArtifactStore, pack_id: int, name: str, area: str) -> int:
    """Copy the live records of a pack into a new one; return the bytes freed."""
    from symphony.pit._packs import read_ranges

    chunks = (
        store._db()
        .execute(
            "SELECT id, offset, stored_size FROM chunks WHERE pack = ? ORDER BY offset", (pack_id,)
        )
        .fetchall()
    )
    old_path = store.layout.pack_path(cast(Area, area), name)
    try:
        records = read_ranges(old_path, [(offset, n) for _, offset, n in chunks])
    except (FileNotFoundError, EOFError):
        return 0  # fsck reports it; nothing sensible to copy
    writer = PackWriter(store.layout, cast(Area, area))
    try:
        moves = [
            (chunk_id, old, writer.append(rec))
            for (chunk_id, old, _), rec in zip(chunks, records, strict=True)
        ]
        writer.finish()
        with store._write() as conn:
            new_id = conn.execute(
                "INSERT INTO packs (name, area, size, created_at) VALUES (?, ?, ?, ?)",
                (writer.name, writer.area, writer.size, time.time()),
            ).lastrowid
            conn.executemany(
                "UPDATE chunks SET pack = ?, offset = ? WHERE id = ? AND pack = ? AND offset = ?",
                [(new_id, new, chunk_id, pack_id, old) for chunk_id, old, new in moves],
            )
            left = conn.execute("SELECT count(*) FROM chunks WHERE pack = ?", (pack_id,)).fetchone()
            old_size = conn.execute("SELECT size FROM packs WHERE id = ?", (pack_id,)).fetchone()
            if left[0] == 0:
                conn.execute("DELETE FROM packs WHERE id = ?", (pack_id,))
    except BaseException:
        writer.discard()
        raise
    if left[0] == 0:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(old_path)
        return int(old_size[0]) - writer.size if old_size else 0
    return 0


@dataclass(slots=True)
class FileSweep:
    deleted: int = 0
    freed_bytes: int = 0
    orphans: list[str] = field(default_factory=list)
    cursor: int = 0
    units: int = 0
    finished: bool = False


def collect_files(
    store: ArtifactStore, *, limit: int, grace: float, now: float, cursor: int, dry_run: bool
) -> FileSweep:
    """Delete files the database does not name and older than ``grace``.

    ``cursor`` walks the existing fan-out folders of both areas (one unit each), then the temp
    folders (one unit).
    """
    layout = store.layout
    result = FileSweep(cursor=cursor)
    known = {(area, name) for name, area in store._db().execute("SELECT name, area FROM packs")}
    areas: Sequence[Area] = ("objects", "archive")
    folders: list[tuple[str, Path | None]] = [
        (area, folder) for area in areas for folder in layout.fan_out_dirs(area)
    ]
    folders.append(("tmp", None))
    position = cursor
    while result.units < limit and position < len(folders):
        result.units += 1
        kind, folder = folders[position]
        position += 1
        candidates: list[tuple[str, str]] = []  # (pack name or "", path)
        if folder is not None:
            with contextlib.suppress(FileNotFoundError):
                for entry in os.scandir(folder):
                    if entry.name.endswith(PACK_SUFFIX):
                        pack_name = entry.name[: -len(PACK_SUFFIX)]
                        if (kind, pack_name) not in known:
                            candidates.append((pack_name, entry.path))
        else:
            candidates.extend(("", str(path)) for path in layout.iter_tmp_files())
        for pack_name, path in candidates:
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue
            if st.st_mtime > now - grace:
                continue  # maybe a put still running: packs are renamed before their commit
            if not dry_run:
                if pack_name and not _still_orphan(store, cast(Area, kind), pack_name):
                    continue
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    continue
            result.orphans.append(path)
            result.deleted += 1
            result.freed_bytes += st.st_size
    result.cursor = position
    result.finished = position >= len(folders)
    result.units = max(1, result.units)
    return result


def _still_orphan(store: ArtifactStore, area: Area, name: str) -> bool:
    """Recheck under the write lock that no pack row names the file (a commit may just have)."""
    with store._write() as conn:
        return (
            conn.execute("SELECT 1 FROM packs WHERE name = ? AND area = ?", (name, area)).fetchone()
            is None
        )


def vacuum(store: ArtifactStore, *, limit: int, dry_run: bool) -> tuple[int, bool]:
    """Return up to ``limit * 64`` free database pages to the file system: (pages, finished).

    A dry run reports all free pages.
    """
    conn = store._db()
    free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
    pages = free if dry_run else min(free, limit * _PAGES_PER_UNIT)
    if pages and not dry_run:
        with store._write() as conn:
            conn.execute(f"PRAGMA incremental_vacuum({int(pages)})").fetchall()
    return pages, dry_run or pages >= free


@dataclass(slots=True)
class TierMove:
    moved: int = 0
    bytes: int = 0
    cursor: int = 0
    units: int = 0
    finished: bool = False


class _Move(NamedTuple):
    """One chunk re-encoded by `move_tiers`, and what it was (to update it only if unchanged)."""

    chunk_id: int
    tier: Tier
    codec: int
    stored: bytes
    area: Area | None  # None: inline
    offset: int | None
    old_codec: int
    old_tier: str
    old_pack: int | None
    old_offset: int | None


def move_tiers(
    store: ArtifactStore,
    *,
    limit: int,
    cursor: int,
    archive: bool,
    warm_level: int,
    cold_level: int,
    dry_run: bool,
) -> TierMove:
    """Re-encode chunks whose tier is not the hottest tier of the contents that use them.

    Hot chunks are raw, warm ones zstd at ``warm_level``, cold ones zstd at ``cold_level`` and,
    with ``archive``, in an archive pack. Inline chunks stay inline unless archived. The
    update of each row only applies if the chunk did not change meanwhile.
    """
    result = TierMove(cursor=cursor)
    rows = (
        store._db()
        .execute(
            "SELECT c.id, c.hash, c.size, c.codec, c.stored_size, c.data, c.offset, p.name, p.area, "
            "c.tier, c.pack, (SELECT min(CASE b.tier WHEN 'hot' THEN 0 WHEN 'warm' THEN 1 ELSE 2 END) "
            "FROM blob_chunks bc JOIN blobs b ON b.id = bc.blob WHERE bc.chunk = c.id) "
            "FROM chunks c LEFT JOIN packs p ON p.id = c.pack WHERE c.id > ? ORDER BY c.id LIMIT ?",
            (cursor, limit * _SCAN_PER_UNIT),
        )
        .fetchall()
    )
    result.finished = len(rows) < limit * _SCAN_PER_UNIT
    budget = limit * _MOVE_BYTES_PER_UNIT
    todo = []
    scanned = 0
    for row in rows:
        result.cursor = row[0]
        scanned += 1
        if row[11] is None or TIERS[row[11]] == row[9]:
            continue
        todo.append(row)
        budget -= row[2]
        if budget <= 0:
            result.finished = False
            break
    result.units = max(
        1, -(-scanned // _SCAN_PER_UNIT), sum(r[2] for r in todo) // _MOVE_BYTES_PER_UNIT
    )
    if dry_run or not todo:
        result.moved = len(todo)
        result.bytes = sum(r[2] for r in todo)
        return result
    writers: dict[Area, PackWriter] = {}
    moves: list[_Move] = []
    try:
        for row in todo:
            location = cast("ChunkLocation", (0, *row[1:9]))
            try:
                plain = store._load([location])[0]
            except FileNotFoundError:
                result.finished = False
                continue  # moved under us; the next cycle sees its new place
            tier: Tier = TIERS[row[11]]
            level = None if tier == "hot" else warm_level if tier == "warm" else cold_level
            codec, stored = encode_chunk(
                plain, bytes(row[1]), compress_level=level, sealer=store.sealer
            )
            area: Area | None
            if tier == "cold" and archive:
                area = "archive"
            elif row[5] is not None:
                area = None
            else:
                area = "objects"
            offset = None
            if area is not None:
                writer = writers.get(area)
                if writer is None:
                    writer = writers[area] = PackWriter(store.layout, area)
                offset = writer.append(stored)
            moves.append(
                _Move(row[0], tier, codec, stored, area, offset, row[3], row[9], row[10], row[6])
            )
            result.moved += 1
            result.bytes += row[2]
        for writer in writers.values():
            writer.finish()
        with store._write() as conn:
            pack_ids: dict[Area, int] = {}
            for area, writer in writers.items():
                pack_ids[area] = cast(
                    int,
                    conn.execute(
                        "INSERT INTO packs (name, area, size, created_at) VALUES (?, ?, ?, ?)",
                        (writer.name, writer.area, writer.size, time.time()),
                    ).lastrowid,
                )
            conn.executemany(
                "UPDATE chunks SET tier = ?, codec = ?, stored_size = ?, data = ?, pack = ?, "
                "offset = ? WHERE id = ? AND codec = ? AND tier = ? AND pack IS ? AND offset IS ?",
                [
                    (
                        m.tier,
                        m.codec,
                        len(m.stored),
                        m.stored if m.area is None else None,
                        None if m.area is None else pack_ids[m.area],
                        m.offset,
                        m.chunk_id,
                        m.old_codec,
                        m.old_tier,
                        m.old_pack,
                        m.old_offset,
                    )
                    for m in moves
                ],
            )
    except BaseException:
        for writer in writers.values():
            writer.discard()
        raise
    return result
