"""Consistency check of a store: what ``symphony pit fsck`` reports.

*Errors* break a promise the store makes: metadata that points at nothing (a content whose
chunks do not tile it, a chunk whose pack file is missing or too short, a name whose head is
wrong) or, with ``verify``, bytes that do not hash to their id. A store after any crash must have
none; only a damaged disk or a hand-edited file can cause them.

*Collectable* findings are normal after a crash or a deletion and harmless: pack files no row
names, temp files, contents no artifact holds, chunks no content lists. ``gc`` removes them.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from symphony.pit._exceptions import IntegrityError
from symphony.pit._model import format_cid
from symphony.pit._packs import PACK_SUFFIX, Area

if TYPE_CHECKING:
    from symphony.pit._store import ArtifactStore, ChunkLocation

__all__ = ["FsckReport", "Problem", "fsck"]

_MAX_LISTED = 1000  # problems listed per category (the counts are always complete)


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding: ``code`` is stable (tests and tools match on it), ``message`` is for people."""

    code: str
    message: str
    severity: Literal["error", "collectable"]

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "severity": self.severity}


@dataclass(slots=True)
class FsckReport:
    """The outcome of `fsck`: ``ok`` when there are no errors (collectables are fine)."""

    errors: list[Problem] = field(default_factory=list)
    collectable: list[Problem] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, code: str, message: str) -> None:
        if len(self.errors) < _MAX_LISTED:
            self.errors.append(Problem(code, message, "error"))

    def collect(self, code: str, message: str) -> None:
        if len(self.collectable) < _MAX_LISTED:
            self.collectable.append(Problem(code, message, "collectable"))

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "errors": [p.to_json() for p in self.errors],
            "collectable": [p.to_json() for p in self.collectable],
            "checked": dict(self.checked),
        }


def fsck(store: ArtifactStore, *, verify: bool = False) -> FsckReport:
    """Check ``store``. ``verify`` also reads every chunk and checks every hash (slow)."""
    report = FsckReport()
    conn = store._db()
    conn.execute("BEGIN")
    try:
        _check_database(conn, report)
        _check_names(conn, report)
        _check_blobs(conn, report)
        _check_chunks(store, conn, report)
        _check_files(store, conn, report)
        _check_garbage(conn, report)
        if verify:
            _verify_contents(store, conn, report)
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")
    return report


def _check_database(conn: sqlite3.Connection, report: FsckReport) -> None:
    for (line,) in conn.execute("PRAGMA quick_check").fetchall():
        if line != "ok":
            report.error("database", f"SQLite quick_check: {line}")
    for table, rowid, parent, _ in conn.execute("PRAGMA foreign_key_check").fetchall():
        report.error("dangling-reference", f"{table} row {rowid} refers to a missing {parent}")
    for table in ("meta_fts", "text_fts"):
        try:
            conn.execute(f"INSERT INTO {table} ({table}) VALUES ('integrity-check')")
        except sqlite3.DatabaseError as exc:
            report.error("search-index", f"{table}: {exc}")


def _check_names(conn: sqlite3.Connection, report: FsckReport) -> None:
    rows = conn.execute(
        "SELECT n.name, n.head, n.next_version, "
        "(SELECT id FROM artifacts a WHERE a.name = n.name ORDER BY version DESC LIMIT 1), "
        "(SELECT max(version) FROM artifacts a WHERE a.name = n.name) FROM names n"
    ).fetchall()
    for name, head, next_version, newest, max_version in rows:
        if head != newest:
            report.error(
                "name-head", f"{name}: head is {head}, newest version is artifact {newest}"
            )
        if max_version is not None and next_version <= max_version:
            report.error("name-version", f"{name}: next version {next_version} <= {max_version}")
    orphan_artifacts = conn.execute(
        "SELECT count(*) FROM artifacts a WHERE NOT EXISTS "
        "(SELECT 1 FROM names n WHERE n.name = a.name)"
    ).fetchone()[0]
    if orphan_artifacts:
        report.error("name-missing", f"{orphan_artifacts} artifacts have no names row")
    report.checked["artifacts"] = conn.execute("SELECT count(*) FROM artifacts").fetchone()[0]


def _check_blobs(conn: sqlite3.Connection, report: FsckReport) -> None:
    # Each content's chunks must tile it: the window gives each chunk the end of the previous.
    gaps = conn.execute(
        "SELECT blob, offset, expected FROM ("
        "  SELECT bc.blob, bc.offset, "
        "  coalesce(lag(bc.offset + c.size) OVER (PARTITION BY bc.blob ORDER BY bc.offset), 0) "
        "  AS expected FROM blob_chunks bc JOIN chunks c ON c.id = bc.chunk"
        ") WHERE offset != expected LIMIT 1000"
    ).fetchall()
    for blob, offset, expected in gaps:
        report.error("content-gap", f"content #{blob}: a chunk at {offset}, expected {expected}")
    sizes = conn.execute(
        "SELECT b.id, b.cid, b.size, b.chunk_count, count(bc.chunk), "
        "coalesce(sum(c.size), 0), count(c.id) FROM blobs b "
        "LEFT JOIN blob_chunks bc ON bc.blob = b.id LEFT JOIN chunks c ON c.id = bc.chunk "
        "GROUP BY b.id"
    ).fetchall()
    for _, cid, size, chunk_count, listed, total, present in sizes:
        label = format_cid(cid)
        if listed != present:
            report.error("missing-chunk", f"{label}: {listed - present} chunks are missing")
        if listed != chunk_count:
            report.error("chunk-count", f"{label}: {listed} chunks listed, {chunk_count} recorded")
        if total != size:
            report.error("content-size", f"{label}: chunks hold {total} bytes, size is {size}")
    report.checked["contents"] = len(sizes)


def _check_chunks(store: ArtifactStore, conn: sqlite3.Connection, report: FsckReport) -> None:
    bad_inline = conn.execute(
        "SELECT hash FROM chunks WHERE pack IS NULL AND length(data) != stored_size LIMIT 1000"
    ).fetchall()
    for (chunk_hash,) in bad_inline:
        report.error(
            "inline-size", f"chunk {bytes(chunk_hash).hex()}: inline bytes have the wrong length"
        )
    packs = conn.execute(
        "SELECT p.id, p.name, p.area, p.size, "
        "(SELECT max(c.offset + c.stored_size) FROM chunks c WHERE c.pack = p.id), "
        "(SELECT count(*) FROM chunks c WHERE c.pack = p.id) FROM packs p"
    ).fetchall()
    for _, name, area, size, end, count in packs:
        path = store.layout.pack_path(area, name)
        try:
            actual = os.stat(path).st_size
        except FileNotFoundError:
            if count:
                report.error(
                    "missing-pack", f"pack {name} ({area}) holds {count} chunks but is missing"
                )
            else:
                report.collect("empty-pack-row", f"pack {name} is empty and its file is gone")
            continue
        if actual != size:
            report.error("pack-size", f"pack {name}: {actual} bytes on disk, {size} recorded")
        if end is not None and end > actual:
            report.error("pack-short", f"pack {name}: chunks reach byte {end}, file has {actual}")
        if count == 0:
            report.collect("empty-pack", f"pack {name} holds no chunk")
    report.checked["packs"] = len(packs)
    report.checked["chunks"] = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]


def _check_files(store: ArtifactStore, conn: sqlite3.Connection, report: FsckReport) -> None:
    known = {(area, name) for name, area in conn.execute("SELECT name, area FROM packs")}
    areas: tuple[Area, ...] = ("objects", "archive")
    for area in areas:
        for path in store.layout.iter_pack_files(area):
            if (area, path.name[: -len(PACK_SUFFIX)]) not in known:
                report.collect("orphan-pack", f"{path}: no chunk refers to this pack")
    for path in store.layout.iter_tmp_files():
        report.collect("temp-file", f"{path}: left by an interrupted write")


def _check_garbage(conn: sqlite3.Connection, report: FsckReport) -> None:
    blobs = conn.execute(
        "SELECT count(*) FROM blobs b WHERE NOT EXISTS (SELECT 1 FROM artifacts a WHERE a.blob = b.id)"
    ).fetchone()[0]
    if blobs:
        report.collect("unreferenced-content", f"{blobs} contents belong to no artifact")
    chunks = conn.execute(
        "SELECT count(*) FROM chunks c WHERE NOT EXISTS "
        "(SELECT 1 FROM blob_chunks bc WHERE bc.chunk = c.id)"
    ).fetchone()[0]
    if chunks:
        report.collect("unreferenced-chunk", f"{chunks} chunks belong to no content")


def _verify_contents(store: ArtifactStore, conn: sqlite3.Connection, report: FsckReport) -> None:
    """Read every content and check chunk and content hashes."""
    from symphony.pit._store import _CHUNKS_OF_BLOB

    verified = 0
    for blob_id, cid in conn.execute("SELECT id, cid FROM blobs").fetchall():
        locations: list[ChunkLocation] = conn.execute(_CHUNKS_OF_BLOB, (blob_id,)).fetchall()
        hasher = hashlib.sha256()
        try:
            for loc in locations:
                data = store._load([loc])[0]
                if hashlib.sha256(data).digest() != loc[1]:
                    report.error(
                        "chunk-hash", f"chunk {bytes(loc[1]).hex()} does not hash to its id"
                    )
                hasher.update(data)
        except (IntegrityError, FileNotFoundError, OSError) as exc:
            report.error("unreadable", f"{format_cid(cid)}: {exc}")
            continue
        if hasher.digest() != bytes(cid):
            report.error("content-hash", f"{format_cid(cid)} does not hash to its id")
        verified += 1
    report.checked["verified"] = verified
