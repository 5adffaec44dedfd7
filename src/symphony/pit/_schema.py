"""The SQLite schema of a Pit store, and how a connection to it is configured.

Durability: the database runs in WAL mode with ``synchronous=FULL``, so a commit returns only
after its WAL frames are fsynced: an acknowledged put survives a power cut, not only a killed
process (``NORMAL`` would survive SIGKILL but could lose the last commits on power loss). The
measured price is one fsync per put, ~0.3 ms on the build machine; ``docs/pit.md`` has the rest.

``auto_vacuum=INCREMENTAL`` is set before the first table exists (it cannot be changed later
without a full VACUUM), so garbage collection can give freed pages back to the file system in
bounded steps. ``mmap_size`` lets reads of inline chunks come straight from the page cache.
"""

from __future__ import annotations

import sqlite3
from typing import Final

__all__ = ["FORMAT_VERSION", "SCHEMA", "configure", "connect"]

FORMAT_VERSION: Final = 1

_MMAP_SIZE: Final = 256 * 1024 * 1024
_BUSY_TIMEOUT_MS: Final = 60_000

# Invariants (fsck checks each of them):
#   - every blob's chunks tile it: ordered by offset, each chunk starts where the previous ended,
#     and the last ends at blobs.size; chunk_count is their number;
#   - a chunk is inline (data NOT NULL, pack NULL) or packed (pack, offset NOT NULL, data NULL);
#     a packed chunk's bytes lie within its pack file;
#   - names.head is the newest remaining version of the name (NULL once all were deleted);
#     names.next_version is above every version the name ever had, so refs are never reused;
#   - text_fts holds (rowid = blob id) the text of head blobs only, and blobs.text_state says so.
# Every index costs each put a page in the WAL, so there are only those a query needs to not
# scan a table (lists by kind walk artifacts newest first and stop at the limit).
SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value ANY
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS packs (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    area       TEXT NOT NULL CHECK (area IN ('objects', 'archive')),
    size       INTEGER NOT NULL,
    created_at REAL NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS chunks (
    id          INTEGER PRIMARY KEY,
    hash        BLOB NOT NULL UNIQUE,
    size        INTEGER NOT NULL,
    codec       INTEGER NOT NULL,
    tier        TEXT NOT NULL DEFAULT 'hot' CHECK (tier IN ('hot', 'warm', 'cold')),
    stored_size INTEGER NOT NULL,
    pack        INTEGER REFERENCES packs(id),
    offset      INTEGER,
    data        BLOB,
    orphaned_at REAL,
    CHECK ((pack IS NULL) = (data IS NOT NULL)),
    CHECK ((pack IS NULL) = (offset IS NULL))
) STRICT;
CREATE INDEX IF NOT EXISTS chunks_pack ON chunks(pack) WHERE pack IS NOT NULL;
CREATE INDEX IF NOT EXISTS chunks_orphaned ON chunks(orphaned_at) WHERE orphaned_at IS NOT NULL;

CREATE TABLE IF NOT EXISTS blobs (
    id          INTEGER PRIMARY KEY,
    cid         BLOB NOT NULL UNIQUE,
    size        INTEGER NOT NULL,
    chunk_count INTEGER NOT NULL,
    tier        TEXT NOT NULL DEFAULT 'hot' CHECK (tier IN ('hot', 'warm', 'cold')),
    text_state  INTEGER NOT NULL DEFAULT 0,  -- 0 not indexed, 1 in text_fts, 2 not text
    created_at  REAL NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS blob_chunks (
    blob   INTEGER NOT NULL REFERENCES blobs(id),
    offset INTEGER NOT NULL,
    chunk  INTEGER NOT NULL REFERENCES chunks(id),
    PRIMARY KEY (blob, offset)
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS blob_chunks_chunk ON blob_chunks(chunk);

CREATE TABLE IF NOT EXISTS artifacts (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    blob       INTEGER NOT NULL REFERENCES blobs(id),
    kind       TEXT NOT NULL,
    parent     INTEGER REFERENCES artifacts(id),
    producer   TEXT,
    quality    REAL,
    outcome    TEXT CHECK (outcome IN ('pending', 'accepted', 'rejected')),
    pinned     INTEGER NOT NULL DEFAULT 0,
    meta       TEXT,
    created_at REAL NOT NULL,
    UNIQUE (name, version)
) STRICT;
CREATE INDEX IF NOT EXISTS artifacts_blob ON artifacts(blob);
CREATE INDEX IF NOT EXISTS artifacts_parent ON artifacts(parent) WHERE parent IS NOT NULL;

CREATE TABLE IF NOT EXISTS names (
    name         TEXT PRIMARY KEY,
    head         INTEGER REFERENCES artifacts(id),
    next_version INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS tags (
    artifact INTEGER NOT NULL REFERENCES artifacts(id),
    tag      TEXT NOT NULL,
    PRIMARY KEY (artifact, tag)
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tags_tag ON tags(tag);

CREATE TABLE IF NOT EXISTS relations (
    src INTEGER NOT NULL REFERENCES artifacts(id),
    rel TEXT NOT NULL,
    dst INTEGER NOT NULL REFERENCES artifacts(id),
    PRIMARY KEY (src, rel, dst)
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS relations_dst ON relations(dst);

CREATE VIRTUAL TABLE IF NOT EXISTS meta_fts USING fts5(
    name, kind, producer, tags, meta,
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE VIRTUAL TABLE IF NOT EXISTS text_fts USING fts5(
    body,
    tokenize = 'unicode61 remove_diacritics 2'
);
"""


def configure(conn: sqlite3.Connection, *, durable: bool = True) -> None:
    """Per-connection settings (journal mode and auto_vacuum persist in the file itself).

    Not ``durable``: ``synchronous=NORMAL``, commits are not fsynced (see the ``durability``
    argument of ``ArtifactStore.open``).
    """
    conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
    conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute(f"PRAGMA mmap_size = {_MMAP_SIZE}")
    conn.execute("PRAGMA temp_store = MEMORY")


def connect(path: str, *, durable: bool = True) -> sqlite3.Connection:
    """A connection in autocommit mode: transactions are always explicit (BEGIN ... COMMIT)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=60.0)
    configure(conn, durable=durable)
    return conn
