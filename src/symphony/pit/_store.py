"""The artifact store: content-addressed, deduplicated, versioned, searchable, crash-safe.

Theory of operation
-------------------
Content is identified by its SHA-256 (the *content id*). Content up to ``WHOLE_MAX`` bytes is
one chunk; larger content is cut by content-defined chunking (`symphony.pit._chunking`), so
versions with small edits share all but a few chunks. Chunks are identified by their own
SHA-256 and stored once, whichever contents they belong to.

A put is two steps. **Step 1**, without any lock: hash, chunk, and look up which chunks the store
already has; encode (seal, compress) the new ones, and either keep them in memory (at most
``INLINE_MAX`` bytes in all) or write them to a new pack file, made durable with temp file,
fsync, rename and directory fsync. **Step 2** is one SQLite write transaction: insert the new
chunks (inline bytes go in the same transaction), the blob with its chunk list, and the artifact
row with its version, tags, relations and metadata index entry. The transaction commits with
``synchronous=FULL`` before `put` returns. A crash before the commit leaves at most an orphan
pack (unreferenced, collected later); a crash after it leaves a complete artifact.

Small puts (the common case: suggestions, diffs, logs, a 100 KB file) never create a file:
their bytes ride in the WAL frames of the one transaction, so they cost one fsync instead of the
three a new file needs (file, directory, WAL). Measured: ~1x a plain write+fsync instead of ~2x.

Garbage collection races. Step 1 decides without a lock that a chunk exists. The collector
(`symphony.pit._gc`) therefore never deletes a chunk it has not first *marked* as unreferenced
(``orphaned_at``) at least a grace period earlier, and step 1 treats marked chunks as new. So a
chunk step 1 saw unmarked outlives the put unless the put takes longer than the grace period;
step 2 checks (cheaply, only if the collector ran meanwhile: ``gc_epoch``) and raises
`PutConflict` in that case, which `put` of in-memory content retries by itself.

Concurrency: each thread uses its own SQLite connection; readers never block (WAL snapshots),
writers take SQLite's write lock with ``BEGIN IMMEDIATE`` (and, within a process, a mutex first,
so threads queue instead of polling). Several processes (the daemon, the CLI) can share a store.
Pack files are immutable; the collector deletes one only after committing that nothing refers to
it, and a reader whose pack vanished under it (moved by compaction or tiering) re-reads the
chunk locations and retries.

Text search: a metadata index (``meta_fts``, every version) and a content index (``text_fts``,
the latest version of each name) are both filled outside puts, by `ArtifactStore.index_pending`
(called by `search` before it queries, and by the daemon in the background), so a put never
pays for tokenizing 10 MB of text, never holds the write lock while doing it, and a small put
writes half the WAL pages it would with an FTS5 insert in its transaction.
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Final, Literal, cast

from symphony.pit._chunking import CHUNKER_ID, Chunker
from symphony.pit._crypto import CODEC_RAW, Sealer, decode_chunk, encode_chunk, load_key
from symphony.pit._exceptions import (
    AmbiguousRef,
    EncryptionMismatch,
    InvalidArgument,
    InvalidQuery,
    KeyRequired,
    MissingData,
    NotFound,
    PitError,
    ProtectedArtifact,
    PutConflict,
    StoreFormatError,
    TamperedData,
    WrongKey,
)
from symphony.pit._live import LiveReferences
from symphony.pit._log import logger
from symphony.pit._model import (
    AUTO,
    ArtifactInfo,
    ArtifactRef,
    Auto,
    ContentRef,
    IdRef,
    NameRef,
    Outcome,
    PutResult,
    Relation,
    SearchHit,
    StoreStats,
    Tier,
    format_cid,
    normalize_tags,
    parse_ref,
    validate_kind,
    validate_meta,
    validate_name,
    validate_outcome,
    validate_producer,
    validate_quality,
    validate_relation,
    validate_tag,
)
from symphony.pit._packs import Layout, PackWriter, read_ranges
from symphony.pit._protect import protection_reasons
from symphony.pit._schema import FORMAT_VERSION, SCHEMA, connect

__all__ = [
    "INDEX_MAX",
    "INLINE_MAX",
    "WHOLE_MAX",
    "ArtifactStore",
    "ChunkLocation",
    "Upload",
    "default_store_path",
]

# Tuning constants.
WHOLE_MAX: Final = 128 * 1024  # content up to this size is one chunk (its id is the content id)
INLINE_MAX: Final = 256 * 1024  # new chunk bytes a put may store inline, in its transaction
INDEX_MAX: Final = 4 * 1024 * 1024  # text indexed per content (the rest is not searchable)
SEARCH_CATCHUP_BYTES: Final = 64 * 1024 * 1024  # most text `search` indexes before querying
READ_GROUP: Final = 8 * 1024 * 1024  # bytes read from packs at a time when streaming content
_SQL_BATCH: Final = 500  # values per IN (...) list, below SQLite's parameter limit
_READ_RETRIES: Final = 3

_INFO_COLUMNS: Final = """
    a.id, a.name, a.version, b.cid, b.size, a.kind, a.parent, a.producer, a.quality,
    a.outcome, a.pinned, a.meta, a.created_at, b.tier,
    (SELECT group_concat(t.tag, char(31)) FROM tags t WHERE t.artifact = a.id)
"""
_INFO_FROM: Final = "artifacts a JOIN blobs b ON b.id = a.blob"

_CHUNK_COLUMNS: Final = """
    bc.offset, c.hash, c.size, c.codec, c.stored_size, c.data, c.offset, p.name, p.area
"""
_CHUNKS_OF_BLOB: Final = f"""
    SELECT {_CHUNK_COLUMNS}
    FROM blob_chunks bc JOIN chunks c ON c.id = bc.chunk LEFT JOIN packs p ON p.id = c.pack
    WHERE bc.blob = ? ORDER BY bc.offset
"""
_CHUNKS_OF_CID: Final = f"""
    SELECT {_CHUNK_COLUMNS}
    FROM blobs b JOIN blob_chunks bc ON bc.blob = b.id JOIN chunks c ON c.id = bc.chunk
    LEFT JOIN packs p ON p.id = c.pack
    WHERE b.cid = ? AND EXISTS (SELECT 1 FROM artifacts x WHERE x.blob = b.id)
    ORDER BY bc.offset
"""

ChunkLocation = tuple[int, bytes, int, int, int, bytes | None, int | None, str | None, str | None]
"""A chunk of a blob: (offset in blob, hash, size, codec, stored size, inline bytes,
pack offset, pack name, pack area)."""


def default_store_path(workspace: str | os.PathLike[str] = ".") -> Path:
    """Where a workspace keeps its store: ``<workspace>/.symphony/pit``."""
    return Path(workspace) / ".symphony" / "pit"


def _row_to_info(row: Sequence[Any]) -> ArtifactInfo:
    tags = tuple(sorted(row[14].split("\x1f"))) if row[14] else ()
    return ArtifactInfo(
        id=row[0],
        name=row[1],
        version=row[2],
        content_id=format_cid(row[3]),
        size=row[4],
        kind=row[5],
        parent_id=row[6],
        producer=row[7],
        quality=row[8],
        outcome=row[9],
        pinned=bool(row[10]),
        tags=tags,
        meta=json.loads(row[11]) if row[11] else {},
        created_at=row[12],
        tier=row[13],
    )


def _meta_text(meta_json: str | None) -> str:
    """The words of a meta object for the metadata index: keys and scalar values."""
    if not meta_json:
        return ""
    words: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                words.append(str(key))
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif value is not None:
            words.append(str(value))

    walk(json.loads(meta_json))
    return " ".join(words)


def _fts_query(text: str) -> str:
    """A plain query (words, ``word*`` prefixes) as an FTS5 query that cannot be malformed."""
    terms = []
    for word in text.split():
        prefix = word.endswith("*") and len(word) > 1
        core = word[:-1] if prefix else word
        quoted = '"' + core.replace('"', '""') + '"'
        terms.append(quoted + ("*" if prefix else ""))
    if not terms:
        raise InvalidArgument("empty search query")
    return " ".join(terms)


_TERM = re.compile(r"\w+", re.UNICODE)
_SNIPPET_CONTEXT: Final = 60


def _query_terms(query: str) -> list[str]:
    """The words of a query, lowercased, without FTS5 operators (for snippets)."""
    operators = {"AND", "OR", "NOT", "NEAR"}
    return [w.lower() for w in _TERM.findall(query) if w not in operators]


def _snippet(text: str, terms: Sequence[str]) -> str:
    """About 120 characters of ``text`` around the first term found, terms in [brackets]."""
    lowered = text.lower()
    first = min((pos for term in terms if (pos := lowered.find(term)) >= 0), default=0)
    start = max(0, first - _SNIPPET_CONTEXT)
    end = min(len(text), first + _SNIPPET_CONTEXT)
    window = text[start:end]
    if terms:
        pattern = re.compile(
            "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True)), re.IGNORECASE
        )
        window = pattern.sub(lambda m: f"[{m.group(0)}]", window)
    return (
        ("..." if start > 0 else "") + " ".join(window.split()) + ("..." if end < len(text) else "")
    )


class _Spec:
    """The validated metadata of a put."""

    __slots__ = (
        "created_at",
        "kind",
        "meta_json",
        "name",
        "outcome",
        "parent",
        "pinned",
        "producer",
        "quality",
        "relations",
        "tags",
    )

    def __init__(
        self,
        *,
        name: str,
        kind: str,
        parent: ArtifactRef | Auto | None,
        producer: str | None,
        quality: float | None,
        outcome: str | None,
        tags: Sequence[str],
        meta: Mapping[str, Any] | None,
        relations: Sequence[tuple[str, ArtifactRef]],
        pinned: bool,
        created_at: float | None,
    ) -> None:
        self.name = validate_name(name)
        self.kind = validate_kind(kind)
        if not isinstance(parent, Auto) and parent is not None:
            parse_ref(parent)
        self.parent = parent
        self.producer = validate_producer(producer)
        self.quality = validate_quality(quality)
        self.outcome = validate_outcome(outcome)
        self.tags = normalize_tags(tags)
        self.meta_json = validate_meta(meta)
        self.relations = tuple((validate_relation(rel), target) for rel, target in relations)
        for _, target in self.relations:
            parse_ref(target)
        self.pinned = bool(pinned)
        if created_at is not None and not isinstance(created_at, int | float):
            raise InvalidArgument("created_at is a POSIX timestamp")
        self.created_at = created_at


class ArtifactStore:
    """A Pit artifact store in one folder. Open it with `ArtifactStore.open`.

    Thread-safe: share one instance between threads. Several processes may open the same
    folder at once. Close it when done (or use it as a context manager); closing while other
    threads still use it is an error on their side.
    """

    def __init__(
        self,
        layout: Layout,
        sealer: Sealer | None,
        *,
        protect_quality: float | None,
        live: LiveReferences,
    ) -> None:
        self.layout = layout
        self._sealer = sealer
        self.protect_quality = protect_quality
        self.live = live
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._closed = False

    # -- opening and closing --------------------------------------------------------------

    @classmethod
    def open(
        cls,
        root: str | os.PathLike[str],
        *,
        key: bytes | str | None = None,
        key_file: str | os.PathLike[str] | None = None,
        use_environment: bool = True,
        create: bool = True,
        archive_dir: str | os.PathLike[str] | None = None,
        protect_quality: float | None = 0.8,
        live: LiveReferences | None = None,
        durability: Literal["full", "process"] = "full",
    ) -> ArtifactStore:
        """Open (and with ``create``, create) the store in folder ``root``.

        The key comes from ``key``, else ``key_file``, else (with ``use_environment``) the
        ``SYMPHONY_PIT_KEY`` or ``SYMPHONY_PIT_KEY_FILE`` environment variables. A store created
        with a key is encrypted for good; opening it needs the same key (`KeyRequired`,
        `WrongKey`), and a key for a store created without one is `EncryptionMismatch`.
        ``archive_dir`` is where cold packs go (default ``root/archive``). Artifacts with a
        quality score of at least ``protect_quality`` are protected from deletion.

        ``durability="full"`` (the default): a put is on disk when it returns, through power
        cuts (fsync of pack files, their folders and the WAL). ``"process"`` skips every fsync:
        a put survives its process being killed (the kernel still holds the writes) but not a
        power cut, after which the store may need its last puts again or even reference lost
        pack data. For scratch stores and tests only.
        """
        if durability not in ("full", "process"):
            raise InvalidArgument(f"durability is 'full' or 'process', not {durability!r}")
        durable = durability == "full"
        layout = Layout(
            Path(root),
            Path(archive_dir) if archive_dir is not None else None,
            durable=durable,
        )
        key_bytes = load_key(key=key, key_file=key_file, environ=None if use_environment else {})
        exists = layout.db_path.exists()
        if not exists and not create:
            raise StoreFormatError(f"{layout.root} is not a Pit store (no pit.db)")
        layout.ensure()
        validate_quality(protect_quality)
        conn = connect(str(layout.db_path), durable=durable)
        try:
            meta = cls._initialize(conn, key_bytes)
        finally:
            conn.close()
        sealer = cls._check_key(layout, meta, key_bytes)
        return cls(
            layout,
            sealer,
            protect_quality=protect_quality,
            live=live if live is not None else LiveReferences(),
        )

    @staticmethod
    def _initialize(conn: sqlite3.Connection, key: bytes | None) -> dict[str, Any]:
        """Create the schema and the store's identity if missing; return the meta table."""
        # auto_vacuum only takes effect before the first table exists; WAL persists in the file.
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreFormatError(f"cannot put the store database in WAL mode (got {mode})")
        conn.execute("BEGIN IMMEDIATE")
        try:
            has_meta = conn.execute(
                "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'meta'"
            ).fetchone()
            if has_meta is None:
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            if not meta:
                meta = {
                    "format": FORMAT_VERSION,
                    "chunker": CHUNKER_ID,
                    "created_at": time.time(),
                    "encryption": "none",
                    "gc_epoch": 0,
                    "meta_indexed": 0,
                }
                if key is not None:
                    salt = os.urandom(16)
                    meta["encryption"] = "aes-256-gcm"
                    meta["key_salt"] = salt
                    meta["key_check"] = Sealer(key).key_check(salt)
                conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", meta.items())
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        if meta.get("format") != FORMAT_VERSION:
            raise StoreFormatError(
                f"store format {meta.get('format')!r} is not {FORMAT_VERSION}; "
                f"it was written by another version of Symphony"
            )
        return meta

    @staticmethod
    def _check_key(layout: Layout, meta: Mapping[str, Any], key: bytes | None) -> Sealer | None:
        if meta.get("encryption") == "aes-256-gcm":
            if key is None:
                raise KeyRequired(
                    f"the store at {layout.root} is encrypted: give its key (key file, "
                    f"SYMPHONY_PIT_KEY or SYMPHONY_PIT_KEY_FILE)"
                )
            sealer = Sealer(key)
            if not sealer.matches(meta["key_salt"], meta["key_check"]):
                raise WrongKey(f"this is not the key of the store at {layout.root}")
            return sealer
        if key is not None:
            raise EncryptionMismatch(
                f"the store at {layout.root} was created without encryption; "
                f"open it without a key (check SYMPHONY_PIT_KEY / SYMPHONY_PIT_KEY_FILE)"
            )
        return None

    def close(self) -> None:
        """Close every connection this store opened (in any thread)."""
        self._closed = True
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()

    def __enter__(self) -> ArtifactStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def root(self) -> Path:
        return self.layout.root

    @property
    def encrypted(self) -> bool:
        return self._sealer is not None

    @property
    def sealer(self) -> Sealer | None:
        return self._sealer

    # -- connections and transactions --------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise PitError(f"the store at {self.root} is closed")
            conn = connect(str(self.layout.db_path), durable=self.layout.durable)
            self._local.conn = conn
            with self._conns_lock:
                self._conns.append(conn)
        return conn

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every statement inside sees the same snapshot."""
        conn = self._db()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            if conn.in_transaction:  # an error inside may already have ended it
                conn.execute("COMMIT")

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``), committed on success, else rolled back."""
        conn = self._db()
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            try:
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def _gc_epoch(self, conn: sqlite3.Connection | None = None) -> int:
        db = conn if conn is not None else self._db()
        row = db.execute("SELECT value FROM meta WHERE key = 'gc_epoch'").fetchone()
        return int(row[0]) if row else 0

    # -- putting ------------------------------------------------------------------------

    def put(
        self,
        content: bytes | bytearray | memoryview | Iterable[bytes] | IO[bytes],
        *,
        name: str,
        kind: str = "file",
        parent: ArtifactRef | Auto | None = AUTO,
        producer: str | None = None,
        quality: float | None = None,
        outcome: str | None = None,
        tags: Sequence[str] = (),
        meta: Mapping[str, Any] | None = None,
        relations: Sequence[tuple[str, ArtifactRef]] = (),
        pinned: bool = False,
        created_at: float | None = None,
    ) -> PutResult:
        """Store ``content`` as the next version of ``name``; durable when this returns.

        ``content`` is bytes, an iterable of bytes pieces, or a binary file object (read in
        1 MiB pieces). ``parent`` defaults to the previous version of ``name`` (None: no
        parent). ``relations`` are ``(relation, target ref)`` edges from the new artifact.
        """
        spec = _Spec(
            name=name,
            kind=kind,
            parent=parent,
            producer=producer,
            quality=quality,
            outcome=outcome,
            tags=tags,
            meta=meta,
            relations=relations,
            pinned=pinned,
            created_at=created_at,
        )
        if isinstance(content, bytes | bytearray | memoryview):
            data = bytes(content)
            if len(data) <= WHOLE_MAX:
                return self._put_whole(data, spec)
            try:
                return self._put_stream((data,), spec)
            except PutConflict:
                logger().warning("pit.put.retry", name=spec.name, reason="collected chunks")
                return self._put_stream((data,), spec)
        if hasattr(content, "read"):
            file = cast(IO[bytes], content)
            return self._put_stream(iter(lambda: file.read(1 << 20), b""), spec)
        return self._put_stream(content, spec)

    def upload(self) -> Upload:
        """Start a streamed put: ``write`` pieces to the `Upload`, then ``commit(name=...)``."""
        return Upload(self)

    def _put_stream(self, pieces: Iterable[bytes], spec: _Spec) -> PutResult:
        upload = Upload(self)
        try:
            for piece in pieces:
                upload.write(piece)
        except BaseException:
            upload.abort()
            raise
        return upload._commit_spec(spec)

    def _encode(self, data: bytes | memoryview, chunk_hash: bytes) -> tuple[int, bytes]:
        if self._sealer is None:
            return CODEC_RAW, bytes(data)
        return encode_chunk(data, chunk_hash, compress_level=None, sealer=self._sealer)

    def _put_whole(self, data: bytes, spec: _Spec) -> PutResult:
        """A put of content stored as one chunk: everything happens in one transaction."""
        cid = hashlib.sha256(data).digest()
        codec, stored = self._encode(data, cid)
        now = time.time()
        new_chunks = 0
        stored_bytes = 0
        with self._write() as conn:
            row = conn.execute("SELECT id, tier FROM blobs WHERE cid = ?", (cid,)).fetchone()
            deduplicated = row is not None
            tier: Tier = "hot"
            if row is not None:
                blob_id, tier = row
            else:
                chunk_ids: list[int] = []
                if data:
                    chunk = conn.execute("SELECT id FROM chunks WHERE hash = ?", (cid,)).fetchone()
                    if chunk is None:
                        cur = conn.execute(
                            "INSERT INTO chunks (hash, size, codec, stored_size, data) "
                            "VALUES (?, ?, ?, ?, ?)",
                            (cid, len(data), codec, len(stored), stored),
                        )
                        chunk_ids.append(cast(int, cur.lastrowid))
                        new_chunks, stored_bytes = 1, len(stored)
                    else:
                        chunk_ids.append(chunk[0])
                        conn.execute(
                            "UPDATE chunks SET orphaned_at = NULL WHERE id = ? "
                            "AND orphaned_at IS NOT NULL",
                            (chunk[0],),
                        )
                blob_id = self._insert_blob(conn, cid, len(data), [(0, i) for i in chunk_ids], now)
            info = self._insert_artifact(
                conn, blob_id, spec, now, cid=cid, size=len(data), tier=tier
            )
        return PutResult(
            artifact=info,
            chunks=1 if data else 0,
            new_chunks=new_chunks,
            stored_bytes=stored_bytes,
            deduplicated=deduplicated,
        )

    @staticmethod
    def _insert_blob(
        conn: sqlite3.Connection,
        cid: bytes,
        size: int,
        chunks: Sequence[tuple[int, int]],
        now: float,
    ) -> int:
        cur = conn.execute(
            "INSERT INTO blobs (cid, size, chunk_count, created_at) VALUES (?, ?, ?, ?)",
            (cid, size, len(chunks), now),
        )
        blob_id = cast(int, cur.lastrowid)
        conn.executemany(
            "INSERT INTO blob_chunks (blob, offset, chunk) VALUES (?, ?, ?)",
            [(blob_id, offset, chunk_id) for offset, chunk_id in chunks],
        )
        return blob_id

    def _insert_artifact(
        self,
        conn: sqlite3.Connection,
        blob_id: int,
        spec: _Spec,
        now: float,
        *,
        cid: bytes,
        size: int,
        tier: Tier,
    ) -> ArtifactInfo:
        """Insert the next version of ``spec.name`` holding content ``blob_id``; return it.

        The record is built from what was inserted, not read back: one query less per put.
        """
        row = conn.execute(
            "SELECT head, next_version FROM names WHERE name = ?", (spec.name,)
        ).fetchone()
        head, version = (None, 1) if row is None else row
        if isinstance(spec.parent, Auto):
            parent_id = head
        elif spec.parent is None:
            parent_id = None
        else:
            parent_id = self._resolve_artifact(conn, spec.parent)
        created_at = spec.created_at if spec.created_at is not None else now
        cur = conn.execute(
            "INSERT INTO artifacts (name, version, blob, kind, parent, producer, quality, "
            "outcome, pinned, meta, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                spec.name,
                version,
                blob_id,
                spec.kind,
                parent_id,
                spec.producer,
                spec.quality,
                spec.outcome,
                int(spec.pinned),
                spec.meta_json,
                created_at,
            ),
        )
        artifact_id = cast(int, cur.lastrowid)
        if row is None:
            conn.execute(
                "INSERT INTO names (name, head, next_version) VALUES (?, ?, ?)",
                (spec.name, artifact_id, version + 1),
            )
        else:
            conn.execute(
                "UPDATE names SET head = ?, next_version = ? WHERE name = ?",
                (artifact_id, version + 1, spec.name),
            )
        if spec.tags:
            conn.executemany(
                "INSERT INTO tags (artifact, tag) VALUES (?, ?)",
                [(artifact_id, tag) for tag in spec.tags],
            )
        for rel, target in spec.relations:
            target_id = self._resolve_artifact(conn, target)
            conn.execute(
                "INSERT OR IGNORE INTO relations (src, rel, dst) VALUES (?, ?, ?)",
                (artifact_id, rel, target_id),
            )
        return ArtifactInfo(
            id=artifact_id,
            name=spec.name,
            version=version,
            content_id=format_cid(cid),
            size=size,
            kind=spec.kind,
            parent_id=parent_id,
            producer=spec.producer,
            quality=spec.quality,
            outcome=spec.outcome,
            pinned=spec.pinned,
            tags=spec.tags,
            meta=json.loads(spec.meta_json) if spec.meta_json else {},
            created_at=created_at,
            tier=tier,
        )

    @staticmethod
    def _index_metadata(
        conn: sqlite3.Connection, artifact_id: int, *, replace: bool = False
    ) -> None:
        """(Re)index one artifact's metadata, unless `index_pending` has not reached it yet."""
        row = conn.execute("SELECT value FROM meta WHERE key = 'meta_indexed'").fetchone()
        if artifact_id > (int(row[0]) if row else 0):
            return  # index_pending will index it, as it is then
        if replace:
            conn.execute("DELETE FROM meta_fts WHERE rowid = ?", (artifact_id,))
        conn.execute(
            "INSERT INTO meta_fts (rowid, name, kind, producer, tags, meta) "
            "SELECT a.id, a.name, a.kind, coalesce(a.producer, ''), "
            "coalesce((SELECT group_concat(tag, ' ') FROM tags WHERE artifact = a.id), ''), ? "
            "FROM artifacts a WHERE a.id = ?",
            (
                _meta_text(
                    conn.execute(
                        "SELECT meta FROM artifacts WHERE id = ?", (artifact_id,)
                    ).fetchone()[0]
                ),
                artifact_id,
            ),
        )

    # -- resolving refs -------------------------------------------------------------------

    def _resolve_artifact(self, conn: sqlite3.Connection, ref: ArtifactRef) -> int:
        """The id of the artifact ``ref`` names (for content refs: the newest holding it)."""
        parsed = parse_ref(ref)
        if isinstance(parsed, IdRef):
            row = conn.execute("SELECT id FROM artifacts WHERE id = ?", (parsed.id,)).fetchone()
        elif isinstance(parsed, NameRef):
            if parsed.version is None:
                row = conn.execute(
                    "SELECT head FROM names WHERE name = ? AND head IS NOT NULL", (parsed.name,)
                ).fetchone()
            else:
                row = conn.execute(
                    "SELECT id FROM artifacts WHERE name = ? AND version = ?",
                    (parsed.name, parsed.version),
                ).fetchone()
        else:
            if parsed.fallback_name is not None:
                row = conn.execute(
                    "SELECT head FROM names WHERE name = ? AND head IS NOT NULL",
                    (parsed.fallback_name,),
                ).fetchone()
                if row is not None:
                    return int(row[0])
            blob_id = self._resolve_content(conn, parsed, str(ref))
            row = conn.execute(
                "SELECT max(id) FROM artifacts WHERE blob = ?", (blob_id,)
            ).fetchone()
        if row is None or row[0] is None:
            raise NotFound(str(ref))
        return int(row[0])

    @staticmethod
    def _resolve_content(conn: sqlite3.Connection, ref: ContentRef, text: str) -> int:
        """The blob id of the content ``ref`` names; only content some artifact holds."""
        if ref.complete:
            rows = conn.execute(
                "SELECT b.id, b.cid FROM blobs b WHERE b.cid = ? "
                "AND EXISTS (SELECT 1 FROM artifacts a WHERE a.blob = b.id)",
                (bytes.fromhex(ref.prefix),),
            ).fetchall()
        else:
            low = bytes.fromhex((ref.prefix + "0" * 64)[:64])
            high = bytes.fromhex((ref.prefix + "f" * 64)[:64])
            rows = conn.execute(
                "SELECT b.id, b.cid FROM blobs b WHERE b.cid BETWEEN ? AND ? "
                "AND EXISTS (SELECT 1 FROM artifacts a WHERE a.blob = b.id) LIMIT 5",
                (low, high),
            ).fetchall()
        if not rows:
            raise NotFound(text, "content")
        if len(rows) > 1:
            raise AmbiguousRef(text, [format_cid(r[1]) for r in rows])
        return int(rows[0][0])

    def _resolve_blob(self, conn: sqlite3.Connection, ref: ArtifactRef) -> tuple[int, bytes, int]:
        """``(blob id, content id, size)`` of the content ``ref`` names."""
        parsed = parse_ref(ref)
        if isinstance(parsed, ContentRef) and parsed.fallback_name is None:
            blob_id = self._resolve_content(conn, parsed, str(ref))
            row = conn.execute(
                "SELECT id, cid, size FROM blobs WHERE id = ?", (blob_id,)
            ).fetchone()
        else:
            artifact_id = self._resolve_artifact(conn, ref)
            row = conn.execute(
                "SELECT b.id, b.cid, b.size FROM artifacts a JOIN blobs b ON b.id = a.blob "
                "WHERE a.id = ?",
                (artifact_id,),
            ).fetchone()
        return int(row[0]), bytes(row[1]), int(row[2])

    def _info(self, conn: sqlite3.Connection, artifact_id: int) -> ArtifactInfo:
        row = conn.execute(
            f"SELECT {_INFO_COLUMNS} FROM {_INFO_FROM} WHERE a.id = ?", (artifact_id,)
        ).fetchone()
        if row is None:
            raise NotFound(str(artifact_id))
        return _row_to_info(row)

    # -- reading ------------------------------------------------------------------------

    def get(self, ref: ArtifactRef, *, verify: bool = False) -> bytes:
        """The whole content ``ref`` names. ``verify`` re-checks every SHA-256 on the way.

        For content too large to hold in memory use `iter_content` or `read`.
        """
        for attempt in range(_READ_RETRIES):
            locations, cid, size = self._locate(ref)
            try:
                parts = self._load(locations)
            except FileNotFoundError:
                # A pack moved (compaction, tiering) after we read its location: look again.
                if attempt + 1 < _READ_RETRIES:
                    continue
                raise MissingData(
                    f"content {format_cid(cid)}: a pack file it needs is missing",
                    chunk=format_cid(cid),
                ) from None
            data = parts[0] if len(parts) == 1 else b"".join(parts)  # no copy for one chunk
            if len(data) != size:
                raise MissingData(
                    f"content {format_cid(cid)}: {len(data)} bytes found, {size} expected",
                    chunk=format_cid(cid),
                )
            if verify and hashlib.sha256(data).digest() != cid:
                raise TamperedData(
                    f"content {format_cid(cid)} does not hash to its id", chunk=format_cid(cid)
                )
            return data
        raise AssertionError("unreachable")

    def _locate(self, ref: ArtifactRef) -> tuple[list[ChunkLocation], bytes, int]:
        """The chunk locations of the content ``ref`` names, its id and size (one snapshot)."""
        parsed = parse_ref(ref)
        conn = self._db()
        if isinstance(parsed, ContentRef) and parsed.complete and parsed.fallback_name is None:
            # Fast path: one statement, so one snapshot, no explicit transaction.
            cid = bytes.fromhex(parsed.prefix)
            rows = conn.execute(_CHUNKS_OF_CID, (cid,)).fetchall()
            if rows:
                return rows, cid, sum(r[2] for r in rows)
        with self._read() as conn:
            blob_id, cid, size = self._resolve_blob(conn, ref)
            rows = conn.execute(_CHUNKS_OF_BLOB, (blob_id,)).fetchall()
        return rows, cid, size

    def _load(self, locations: Sequence[ChunkLocation], verify: bool = False) -> list[bytes]:
        """The plaintext of consecutive chunks, as pieces whose concatenation is their content.

        Raw chunks lying back to back in one pack (what one put writes) come out of a single
        ``pread`` as one piece: reading 10 MB costs one read, not one per chunk. ``verify``
        keeps one piece per chunk and checks each hash.
        """
        pieces: list[bytes | None] = []
        reads: dict[tuple[str, str], list[tuple[int, int, int, list[ChunkLocation]]]] = {}
        for loc in locations:
            if loc[5] is not None:
                pieces.append(self._decode(bytes(loc[5]), loc))
                continue
            key = (cast(str, loc[8]), cast(str, loc[7]))
            runs = reads.setdefault(key, [])
            offset = cast(int, loc[6])
            last = runs[-1] if runs else None
            if (
                not verify
                and loc[3] == CODEC_RAW
                and last is not None
                and last[0] == len(pieces) - 1
                and last[1] + last[2] == offset
                and last[3][-1][3] == CODEC_RAW
            ):
                last[3].append(loc)
                runs[-1] = (last[0], last[1], last[2] + loc[4], last[3])
                continue
            runs.append((len(pieces), offset, loc[4], [loc]))
            pieces.append(None)
        for (area, name), runs in reads.items():
            path = self.layout.pack_path(cast(Literal["objects", "archive"], area), name)
            try:
                stored = read_ranges(path, [(offset, length) for _, offset, length, _ in runs])
            except EOFError as exc:
                raise MissingData(str(exc), chunk=runs[0][3][0][1].hex()) from None
            for (index, _, _, locs), record in zip(runs, stored, strict=True):
                if len(locs) == 1:
                    pieces[index] = self._decode(record, locs[0])
                elif len(record) != sum(loc[2] for loc in locs):
                    raise MissingData(f"{path}: short read", chunk=locs[0][1].hex())
                else:
                    pieces[index] = record
        if verify:
            for loc, data in zip(locations, pieces, strict=True):
                if hashlib.sha256(cast(bytes, data)).digest() != loc[1]:
                    raise TamperedData(
                        f"chunk {loc[1].hex()} does not hash to its id", chunk=loc[1].hex()
                    )
        return cast(list[bytes], pieces)

    def _decode(self, stored: bytes, loc: ChunkLocation) -> bytes:
        codec = loc[3]
        if codec == CODEC_RAW:
            if len(stored) != loc[2]:
                raise TamperedData(
                    f"chunk {loc[1].hex()}: {len(stored)} bytes stored, {loc[2]} written",
                    chunk=loc[1].hex(),
                )
            return stored
        return decode_chunk(stored, codec, loc[1], loc[2], self._sealer)

    def iter_content(self, ref: ArtifactRef, *, verify: bool = False) -> Iterator[bytes]:
        """The content ``ref`` names, as pieces of at most ~``READ_GROUP`` bytes (in order).

        Memory stays bounded whatever the size. Content is immutable, so if a pack moves under
        the iteration, it looks the chunks up again and resumes at the same offset.
        """
        locations, cid, size = self._locate(ref)
        hasher = hashlib.sha256() if verify else None
        position = 0
        i = 0
        retries = 0
        while i < len(locations):
            group = [locations[i]]
            group_bytes = locations[i][2]
            while i + len(group) < len(locations) and group_bytes < READ_GROUP:
                group.append(locations[i + len(group)])
                group_bytes += group[-1][2]
            try:
                parts = self._load(group, verify=verify)
            except FileNotFoundError:
                retries += 1
                if retries >= _READ_RETRIES:
                    raise MissingData(
                        f"content {format_cid(cid)}: a pack file it needs is missing",
                        chunk=format_cid(cid),
                    ) from None
                locations = self._locate(format_cid(cid))[0]
                i = next(
                    (k for k, loc in enumerate(locations) if loc[0] == position), len(locations)
                )
                continue
            retries = 0
            piece = b"".join(parts)
            if hasher is not None:
                hasher.update(piece)
            position += len(piece)
            i += len(group)
            yield piece
        if position != size:
            raise MissingData(
                f"content {format_cid(cid)}: {position} bytes found, {size} expected",
                chunk=format_cid(cid),
            )
        if hasher is not None and hasher.digest() != cid:
            raise TamperedData(
                f"content {format_cid(cid)} does not hash to its id", chunk=format_cid(cid)
            )

    def read(self, ref: ArtifactRef, offset: int, length: int) -> bytes:
        """``length`` bytes of the content ``ref`` names, from ``offset`` (fewer at the end)."""
        if offset < 0 or length < 0:
            raise InvalidArgument("offset and length are non-negative")
        for attempt in range(_READ_RETRIES):
            with self._read() as conn:
                blob_id, cid, size = self._resolve_blob(conn, ref)
                end = min(offset + length, size)
                if offset >= end:
                    return b""
                rows = conn.execute(
                    f"SELECT {_CHUNK_COLUMNS} FROM blob_chunks bc "
                    "JOIN chunks c ON c.id = bc.chunk LEFT JOIN packs p ON p.id = c.pack "
                    "WHERE bc.blob = ? AND bc.offset < ? AND bc.offset >= "
                    "(SELECT max(offset) FROM blob_chunks WHERE blob = ? AND offset <= ?) "
                    "ORDER BY bc.offset",
                    (blob_id, end, blob_id, offset),
                ).fetchall()
            try:
                parts = self._load(rows)
            except FileNotFoundError:
                if attempt + 1 < _READ_RETRIES:
                    continue
                raise MissingData(
                    f"content {format_cid(cid)}: a pack file it needs is missing",
                    chunk=format_cid(cid),
                ) from None
            first = rows[0][0]
            return b"".join(parts)[offset - first : end - first]
        raise AssertionError("unreachable")

    # -- metadata -------------------------------------------------------------------------

    def stat(self, ref: ArtifactRef) -> ArtifactInfo:
        """The artifact ``ref`` names (for a content id: the newest artifact holding it)."""
        with self._read() as conn:
            return self._info(conn, self._resolve_artifact(conn, ref))

    def versions(self, name: str) -> list[ArtifactInfo]:
        """Every remaining version of ``name``, oldest first."""
        validate_name(name)
        rows = (
            self._db()
            .execute(
                f"SELECT {_INFO_COLUMNS} FROM {_INFO_FROM} WHERE a.name = ? ORDER BY a.version",
                (name,),
            )
            .fetchall()
        )
        if not rows:
            raise NotFound(name)
        return [_row_to_info(r) for r in rows]

    def list_artifacts(
        self,
        *,
        name_prefix: str | None = None,
        kind: str | None = None,
        tag: str | None = None,
        producer: str | None = None,
        heads_only: bool = False,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[ArtifactInfo]:
        """Artifacts, newest first, filtered; page with ``before_id`` (the last id seen)."""
        clauses: list[str] = []
        params: list[Any] = []
        if name_prefix:
            clauses.append("a.name >= ? AND a.name < ?")
            params += [name_prefix, name_prefix + "\U0010ffff"]
        if kind is not None:
            clauses.append("a.kind = ?")
            params.append(validate_kind(kind))
        if tag is not None:
            clauses.append("EXISTS (SELECT 1 FROM tags t WHERE t.artifact = a.id AND t.tag = ?)")
            params.append(validate_tag(tag))
        if producer is not None:
            clauses.append("a.producer = ?")
            params.append(producer)
        if heads_only:
            clauses.append("EXISTS (SELECT 1 FROM names n WHERE n.name = a.name AND n.head = a.id)")
        if before_id is not None:
            clauses.append("a.id < ?")
            params.append(int(before_id))
        if not 1 <= limit <= 10_000:
            raise InvalidArgument("limit is between 1 and 10000")
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = (
            self._db()
            .execute(
                f"SELECT {_INFO_COLUMNS} FROM {_INFO_FROM} {where} ORDER BY a.id DESC LIMIT ?",
                (*params, limit),
            )
            .fetchall()
        )
        return [_row_to_info(r) for r in rows]

    def lineage(self, ref: ArtifactRef, *, limit: int = 1000) -> list[ArtifactInfo]:
        """The artifact ``ref`` names, then its parent, grandparent, ... (at most ``limit``)."""
        with self._read() as conn:
            start = self._resolve_artifact(conn, ref)
            rows = conn.execute(
                f"""
                WITH RECURSIVE chain(id, depth) AS (
                    SELECT ?, 0
                    UNION ALL
                    SELECT a.parent, chain.depth + 1 FROM artifacts a JOIN chain ON a.id = chain.id
                    WHERE a.parent IS NOT NULL AND chain.depth + 1 < ?
                )
                SELECT {_INFO_COLUMNS} FROM chain JOIN artifacts a ON a.id = chain.id
                JOIN blobs b ON b.id = a.blob ORDER BY chain.depth
                """,
                (start, limit),
            ).fetchall()
        return [_row_to_info(r) for r in rows]

    def relations(self, ref: ArtifactRef) -> list[Relation]:
        """Every relation from or to the artifact ``ref`` names."""
        with self._read() as conn:
            artifact_id = self._resolve_artifact(conn, ref)
            rows = conn.execute(
                "SELECT src, rel, dst FROM relations WHERE src = ? "
                "UNION SELECT src, rel, dst FROM relations WHERE dst = ? ORDER BY 1, 2, 3",
                (artifact_id, artifact_id),
            ).fetchall()
        return [Relation(r[0], r[1], r[2]) for r in rows]

    def relate(self, source: ArtifactRef, relation: str, target: ArtifactRef) -> Relation:
        """Add the edge ``source --relation--> target`` (adding it twice is a no-op)."""
        rel = validate_relation(relation)
        with self._write() as conn:
            src = self._resolve_artifact(conn, source)
            dst = self._resolve_artifact(conn, target)
            conn.execute(
                "INSERT OR IGNORE INTO relations (src, rel, dst) VALUES (?, ?, ?)", (src, rel, dst)
            )
        return Relation(src, rel, dst)

    def unrelate(self, source: ArtifactRef, relation: str, target: ArtifactRef) -> bool:
        """Remove an edge; whether it existed."""
        rel = validate_relation(relation)
        with self._write() as conn:
            src = self._resolve_artifact(conn, source)
            dst = self._resolve_artifact(conn, target)
            cur = conn.execute(
                "DELETE FROM relations WHERE src = ? AND rel = ? AND dst = ?", (src, rel, dst)
            )
        return cur.rowcount > 0

    def _update(
        self, ref: ArtifactRef, sql: str, params: Sequence[Any], *, reindex: bool
    ) -> ArtifactInfo:
        with self._write() as conn:
            artifact_id = self._resolve_artifact(conn, ref)
            conn.execute(sql, (*params, artifact_id))
            if reindex:
                self._index_metadata(conn, artifact_id, replace=True)
            return self._info(conn, artifact_id)

    def pin(self, ref: ArtifactRef) -> ArtifactInfo:
        """Protect an artifact from deletion until `unpin`."""
        return self._update(ref, "UPDATE artifacts SET pinned = 1 WHERE id = ?", (), reindex=False)

    def unpin(self, ref: ArtifactRef) -> ArtifactInfo:
        return self._update(ref, "UPDATE artifacts SET pinned = 0 WHERE id = ?", (), reindex=False)

    def set_quality(self, ref: ArtifactRef, quality: float | None) -> ArtifactInfo:
        value = validate_quality(quality)
        return self._update(
            ref, "UPDATE artifacts SET quality = ? WHERE id = ?", (value,), reindex=False
        )

    def set_outcome(self, ref: ArtifactRef, outcome: Outcome | None) -> ArtifactInfo:
        """Record what became of a suggestion: accepted suggestions are never deleted."""
        value = validate_outcome(outcome)
        return self._update(
            ref, "UPDATE artifacts SET outcome = ? WHERE id = ?", (value,), reindex=False
        )

    def tag(self, ref: ArtifactRef, *tags: str) -> ArtifactInfo:
        valid = normalize_tags(tags)
        with self._write() as conn:
            artifact_id = self._resolve_artifact(conn, ref)
            conn.executemany(
                "INSERT OR IGNORE INTO tags (artifact, tag) VALUES (?, ?)",
                [(artifact_id, t) for t in valid],
            )
            self._index_metadata(conn, artifact_id, replace=True)
            return self._info(conn, artifact_id)

    def untag(self, ref: ArtifactRef, *tags: str) -> ArtifactInfo:
        valid = normalize_tags(tags)
        with self._write() as conn:
            artifact_id = self._resolve_artifact(conn, ref)
            conn.executemany(
                "DELETE FROM tags WHERE artifact = ? AND tag = ?",
                [(artifact_id, t) for t in valid],
            )
            self._index_metadata(conn, artifact_id, replace=True)
            return self._info(conn, artifact_id)

    def protection(self, ref: ArtifactRef) -> tuple[str, ...]:
        """Why the artifact ``ref`` names is protected from deletion (empty: it is not)."""
        with self._read() as conn:
            artifact_id = self._resolve_artifact(conn, ref)
            return self._protection(conn, artifact_id, self.live.snapshot())

    def _protection(
        self, conn: sqlite3.Connection, artifact_id: int, live: frozenset[int]
    ) -> tuple[str, ...]:
        kind, pinned, quality, outcome = conn.execute(
            "SELECT kind, pinned, quality, outcome FROM artifacts WHERE id = ?", (artifact_id,)
        ).fetchone()
        return protection_reasons(
            artifact_id=artifact_id,
            kind=kind,
            pinned=bool(pinned),
            quality=quality,
            outcome=outcome,
            quality_threshold=self.protect_quality,
            live=live,
        )

    def delete(self, ref: ArtifactRef, *, force: bool = False) -> ArtifactInfo:
        """Delete one artifact version; its content goes at the next garbage collection.

        Refuses a protected artifact (`ProtectedArtifact`) unless ``force``. Children of the
        deleted version are re-parented to its parent, so lineage stays connected.
        """
        live = self.live.snapshot()
        with self._write() as conn:
            artifact_id = self._resolve_artifact(conn, ref)
            info = self._info(conn, artifact_id)
            reasons = self._protection(conn, artifact_id, live)
            if reasons and not force:
                raise ProtectedArtifact(info.ref, reasons)
            self._delete_artifact(conn, artifact_id)
        return info

    def _delete_artifact(self, conn: sqlite3.Connection, artifact_id: int) -> None:
        """Delete one artifact row and everything that hangs off it (inside a write txn)."""
        name, parent = conn.execute(
            "SELECT name, parent FROM artifacts WHERE id = ?", (artifact_id,)
        ).fetchone()
        conn.execute("UPDATE artifacts SET parent = ? WHERE parent = ?", (parent, artifact_id))
        conn.execute("DELETE FROM tags WHERE artifact = ?", (artifact_id,))
        conn.execute("DELETE FROM relations WHERE src = ? OR dst = ?", (artifact_id, artifact_id))
        conn.execute("DELETE FROM meta_fts WHERE rowid = ?", (artifact_id,))
        conn.execute(
            "UPDATE names SET head = (SELECT id FROM artifacts WHERE name = ?1 AND id != ?2 "
            "ORDER BY version DESC LIMIT 1) WHERE name = ?1 AND head = ?2",
            (name, artifact_id),
        )
        conn.execute("DELETE FROM artifacts WHERE id = ?", (artifact_id,))

    # -- search ---------------------------------------------------------------------------

    def index_pending(
        self, *, max_bytes: int = SEARCH_CATCHUP_BYTES, max_contents: int | None = None
    ) -> int:
        """Bring the content index up to date, reading at most ~``max_bytes`` of text.

        Indexes the metadata of new artifacts, the text of each name's latest version, and
        drops versions that stopped being the latest. Returns the number of artifacts and
        contents indexed or dropped; 0 means up to date (an encrypted store's content is never
        indexed, only its metadata). Each content is one short
        write transaction, so this never holds the write lock for long. ``max_contents``
        bounds the number of contents indexed in this call.
        """
        done = self._index_pending_metadata(max_contents)
        if self._sealer is not None or (max_contents is not None and done >= max_contents):
            return done
        with self._write() as conn:
            stale = conn.execute(
                "SELECT id FROM blobs WHERE text_state = 1 AND id NOT IN "
                "(SELECT a.blob FROM names n JOIN artifacts a ON a.id = n.head) LIMIT ?",
                (-1 if max_contents is None else max_contents,),
            ).fetchall()
            for (blob_id,) in stale:
                conn.execute("DELETE FROM text_fts WHERE rowid = ?", (blob_id,))
                conn.execute("UPDATE blobs SET text_state = 0 WHERE id = ?", (blob_id,))
            done += len(stale)
        if max_contents is not None and done >= max_contents:
            return done
        budget = max_bytes
        while budget > 0:
            pending = (
                self._db()
                .execute(
                    "SELECT DISTINCT b.id, b.cid, b.size FROM names n JOIN artifacts a ON a.id = n.head "
                    "JOIN blobs b ON b.id = a.blob WHERE b.text_state = 0 LIMIT 64"
                )
                .fetchall()
            )
            if not pending:
                break
            for blob_id, cid, size in pending:
                text = self._text_of(format_cid(cid), size)
                with self._write() as conn:
                    state = conn.execute(
                        "SELECT text_state FROM blobs WHERE id = ?", (blob_id,)
                    ).fetchone()
                    if state is None or state[0] != 0:
                        continue
                    if text is None:
                        conn.execute("UPDATE blobs SET text_state = 2 WHERE id = ?", (blob_id,))
                    else:
                        conn.execute(
                            "INSERT INTO text_fts (rowid, body) VALUES (?, ?)", (blob_id, text)
                        )
                        conn.execute("UPDATE blobs SET text_state = 1 WHERE id = ?", (blob_id,))
                done += 1
                budget -= min(size, INDEX_MAX)
                if budget <= 0 or (max_contents is not None and done >= max_contents):
                    budget = 0
                    break
        return done

    def _index_pending_metadata(self, max_artifacts: int | None) -> int:
        """Index the metadata of artifacts put since the last call (in id order).

        Puts leave this out of their transaction: an FTS5 insert dirties several pages, which
        roughly doubled the bytes a small put writes to the WAL.
        """
        done = 0
        while max_artifacts is None or done < max_artifacts:
            batch = 256 if max_artifacts is None else min(256, max_artifacts - done)
            with self._write() as conn:
                row = conn.execute("SELECT value FROM meta WHERE key = 'meta_indexed'").fetchone()
                mark = int(row[0]) if row else 0
                ids = [
                    r[0]
                    for r in conn.execute(
                        "SELECT id FROM artifacts WHERE id > ? ORDER BY id LIMIT ?", (mark, batch)
                    )
                ]
                if not ids:
                    return done
                conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('meta_indexed', ?)",
                    (ids[-1],),
                )
                for artifact_id in ids:
                    self._index_metadata(conn, artifact_id, replace=True)
            done += len(ids)
        return done

    def _text_of(self, cid: str, size: int) -> str | None:
        """The indexable text of a content: its first ``INDEX_MAX`` bytes if they are UTF-8
        without NUL bytes, else None."""
        try:
            data = self.read(cid, 0, INDEX_MAX)
        except NotFound:
            return None
        if b"\x00" in data:
            return None
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            return str(decoder.decode(data, final=size <= INDEX_MAX))
        except UnicodeDecodeError:
            return None

    def search(
        self,
        query: str,
        *,
        kind: str | None = None,
        limit: int = 20,
        all_versions: bool = False,
        raw: bool = False,
    ) -> list[SearchHit]:
        """Full-text search over metadata (every version) and content (latest versions).

        ``query`` is words (all must match; ``word*`` matches a prefix), or with ``raw`` an
        FTS5 query (``"a phrase"``, ``OR``, ``NOT``, ``NEAR``, ``column:``). Hits are ranked
        by bm25; unless ``all_versions``, only the newest matching version of a name is kept.
        """
        match = query if raw else _fts_query(query)
        if kind is not None:
            validate_kind(kind)
        if not 1 <= limit <= 1000:
            raise InvalidArgument("limit is between 1 and 1000")
        self.index_pending()
        kind_clause = "AND a.kind = ?" if kind is not None else ""
        kind_params = [kind] if kind is not None else []
        fetch = limit * 4
        try:
            with self._read() as conn:
                # FTS5's snippet() is quadratic in the number of hits in a document (a term
                # repeated 40,000 times in 1 MB took 38 s), so content snippets are cut here
                # from the first match, for the hits actually returned.
                content_rows = conn.execute(
                    f"SELECT a.id, text_fts.rank, text_fts.rowid "
                    f"FROM text_fts JOIN artifacts a ON a.blob = text_fts.rowid "
                    f"JOIN names n ON n.name = a.name AND n.head = a.id "
                    f"WHERE text_fts MATCH ? {kind_clause} ORDER BY text_fts.rank LIMIT ?",
                    (match, *kind_params, fetch),
                ).fetchall()
                meta_rows = conn.execute(
                    f"SELECT a.id, meta_fts.rank, snippet(meta_fts, -1, '[', ']', '...', 8) "
                    f"FROM meta_fts JOIN artifacts a ON a.id = meta_fts.rowid "
                    f"WHERE meta_fts MATCH ? {kind_clause} ORDER BY meta_fts.rank LIMIT ?",
                    (match, *kind_params, fetch),
                ).fetchall()
                hits: dict[int, tuple[float, Literal["content", "metadata"], str | int]] = {}
                for artifact_id, rank, blob_id in content_rows:
                    hits[artifact_id] = (rank, "content", blob_id)
                for artifact_id, rank, snippet in meta_rows:
                    if artifact_id not in hits or rank < hits[artifact_id][0]:
                        hits[artifact_id] = (rank, "metadata", snippet)
                infos = {i: self._info(conn, i) for i in hits}
                ordered = sorted(hits.items(), key=lambda item: (item[1][0], -item[0]))
                results: list[SearchHit] = []
                seen_names: dict[str, int] = {}
                for artifact_id, (rank, matched, detail) in ordered:
                    info = infos[artifact_id]
                    if not all_versions and info.name in seen_names:
                        kept = seen_names[info.name]
                        if results[kept].artifact.version < info.version:
                            results[kept] = SearchHit(
                                info, results[kept].rank, matched, cast(str, detail)
                            )
                        continue
                    seen_names[info.name] = len(results)
                    results.append(SearchHit(info, rank, matched, cast(str, detail)))
                results = results[:limit]
                terms = _query_terms(query)
                for i, hit in enumerate(results):
                    if hit.matched == "content":
                        blob_id = hits[hit.artifact.id][2]
                        body = conn.execute(
                            "SELECT body FROM text_fts WHERE rowid = ?", (blob_id,)
                        ).fetchone()
                        text = body[0] if body else ""
                        results[i] = SearchHit(
                            hit.artifact, hit.rank, "content", _snippet(text, terms)
                        )
        except sqlite3.OperationalError as exc:
            # Plain queries are quoted and cannot be malformed; a raw one is the only variable
            # part of these statements, so any error but contention is the query's.
            if raw and "locked" not in str(exc) and "busy" not in str(exc):
                raise InvalidQuery(f"bad search query {query!r}: {exc}") from None
            raise
        return results

    # -- statistics -------------------------------------------------------------------------

    def stats(self) -> StoreStats:
        with self._read() as conn:
            artifacts, logical = conn.execute(
                "SELECT count(*), coalesce(sum(b.size), 0) FROM artifacts a "
                "JOIN blobs b ON b.id = a.blob"
            ).fetchone()
            names = conn.execute("SELECT count(*) FROM names WHERE head IS NOT NULL").fetchone()[0]
            blobs, content = conn.execute(
                "SELECT count(*), coalesce(sum(size), 0) FROM blobs"
            ).fetchone()
            chunks, stored, inline = conn.execute(
                "SELECT count(*), coalesce(sum(stored_size), 0), "
                "coalesce(sum(CASE WHEN pack IS NULL THEN stored_size END), 0) FROM chunks"
            ).fetchone()
            packs, pack_bytes = conn.execute(
                "SELECT count(*), coalesce(sum(size), 0) FROM packs"
            ).fetchone()
            tiers = dict(conn.execute("SELECT tier, count(*) FROM blobs GROUP BY tier").fetchall())
            page_size = conn.execute("PRAGMA page_size").fetchone()[0]
            page_count = conn.execute("PRAGMA page_count").fetchone()[0]
        wal = self.layout.db_path.with_name(self.layout.db_path.name + "-wal")
        wal_size = wal.stat().st_size if wal.exists() else 0
        return StoreStats(
            artifacts=artifacts,
            names=names,
            blobs=blobs,
            chunks=chunks,
            packs=packs,
            logical_bytes=logical,
            content_bytes=content,
            stored_bytes=stored,
            inline_bytes=inline,
            pack_bytes=pack_bytes,
            database_bytes=page_size * page_count + wal_size,
            encrypted=self.encrypted,
            tiers=tiers,
        )

    def checkpoint(self) -> None:
        """Copy the WAL into the database file and truncate it (the daemon does this idle)."""
        self._db().execute("PRAGMA wal_checkpoint(TRUNCATE)")


class Upload:
    """A put streamed in pieces: `write` them, then `commit` (or `abort`).

    Memory stays bounded: new chunks go to a pack file once they exceed ``INLINE_MAX``.
    Content of at most ``WHOLE_MAX`` bytes is held back and stored as one chunk, exactly as
    `ArtifactStore.put` of the same bytes would, so a content has one chunk list however it
    arrived. Use it as a context manager to abort on error.

    Invariants:
        - ``_order`` lists the chunks written so far (hash, size) in content order; each hash
          is in ``_known`` (existing, unmarked chunks) or in ``_new`` (to insert at commit);
        - new chunk bytes are either all inline (``_pack`` is None) or all in ``_pack``.
    """

    def __init__(self, store: ArtifactStore) -> None:
        self._store = store
        self._hasher = hashlib.sha256()
        self._size = 0
        self._head: bytearray | None = bytearray()  # content held back while <= WHOLE_MAX
        self._chunker = Chunker()
        self._order: list[tuple[bytes, int]] = []
        self._known: dict[bytes, int] = {}
        # hash -> (size, codec, stored size, inline stored bytes or None, pack offset or None)
        self._new: dict[bytes, tuple[int, int, int, bytes | None, int | None]] = {}
        self._inline_bytes = 0
        self._pack: PackWriter | None = None
        self._epoch = store._gc_epoch()
        self._state: Literal["open", "committed", "aborted"] = "open"

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._size

    def __enter__(self) -> Upload:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._state == "open":
            self.abort()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._state != "open":
            raise InvalidArgument(f"upload is {self._state}")
        if not data:
            return
        self._hasher.update(data)
        self._size += len(data)
        if self._head is not None:
            if not self._head and len(data) > WHOLE_MAX:
                self._head = None  # large from the first piece: no need to hold it back
            else:
                self._head += data
                if len(self._head) <= WHOLE_MAX:
                    return
                data, self._head = bytes(self._head), None
        self._add(self._chunker.feed(data))

    def _add(self, chunks: list[bytes]) -> None:
        if not chunks:
            return
        hashes = [hashlib.sha256(c).digest() for c in chunks]
        unknown = list({h for h in hashes if h not in self._known and h not in self._new})
        conn = self._store._db()
        for i in range(0, len(unknown), _SQL_BATCH):
            batch = unknown[i : i + _SQL_BATCH]
            rows = conn.execute(
                f"SELECT hash, id FROM chunks WHERE orphaned_at IS NULL AND hash IN "
                f"({','.join('?' * len(batch))})",
                batch,
            ).fetchall()
            self._known.update((bytes(h), chunk_id) for h, chunk_id in rows)
        for chunk, chunk_hash in zip(chunks, hashes, strict=True):
            self._order.append((chunk_hash, len(chunk)))
            if chunk_hash in self._known or chunk_hash in self._new:
                continue
            codec, stored = self._store._encode(chunk, chunk_hash)
            if self._pack is None and self._inline_bytes + len(stored) <= INLINE_MAX:
                self._new[chunk_hash] = (len(chunk), codec, len(stored), stored, None)
                self._inline_bytes += len(stored)
                continue
            if self._pack is None:
                self._pack = PackWriter(self._store.layout)
                for key, (size, c, n, inline, _) in list(self._new.items()):
                    assert inline is not None
                    self._new[key] = (size, c, n, None, self._pack.append(inline))
            self._new[chunk_hash] = (
                len(chunk),
                codec,
                len(stored),
                None,
                self._pack.append(stored),
            )

    def abort(self) -> None:
        """Drop everything written; nothing reaches the store."""
        if self._state == "open":
            self._state = "aborted"
            if self._pack is not None:
                self._pack.discard()

    def commit(
        self,
        *,
        name: str,
        kind: str = "file",
        parent: ArtifactRef | Auto | None = AUTO,
        producer: str | None = None,
        quality: float | None = None,
        outcome: str | None = None,
        tags: Sequence[str] = (),
        meta: Mapping[str, Any] | None = None,
        relations: Sequence[tuple[str, ArtifactRef]] = (),
        pinned: bool = False,
        created_at: float | None = None,
    ) -> PutResult:
        """Store what was written as the next version of ``name`` (see `ArtifactStore.put`)."""
        try:
            spec = _Spec(
                name=name,
                kind=kind,
                parent=parent,
                producer=producer,
                quality=quality,
                outcome=outcome,
                tags=tags,
                meta=meta,
                relations=relations,
                pinned=pinned,
                created_at=created_at,
            )
        except BaseException:
            self.abort()
            raise
        return self._commit_spec(spec)

    def _commit_spec(self, spec: _Spec) -> PutResult:
        if self._state != "open":
            raise InvalidArgument(f"upload is {self._state}")
        if self._head is not None:
            self._state = "committed"
            return self._store._put_whole(bytes(self._head), spec)
        committed = False
        deduplicated = False
        try:
            self._add(self._chunker.finish())
            if self._pack is not None:
                self._pack.finish()
            result, deduplicated = self._transaction(spec)
            committed = True
            return result
        finally:
            self._state = "committed" if committed else "aborted"
            if self._pack is not None and (deduplicated or not committed):
                self._pack.discard()

    def _transaction(self, spec: _Spec) -> tuple[PutResult, bool]:
        store = self._store
        cid = self._hasher.digest()
        now = time.time()
        new_chunks = 0
        stored_bytes = 0
        with store._write() as conn:
            row = conn.execute("SELECT id, tier FROM blobs WHERE cid = ?", (cid,)).fetchone()
            deduplicated = row is not None
            tier: Tier = "hot"
            if row is not None:
                blob_id, tier = row
            else:
                if store._gc_epoch(conn) != self._epoch:
                    self._check_known(conn)
                pack_id = None
                if self._pack is not None:
                    pack_id = conn.execute(
                        "INSERT INTO packs (name, area, size, created_at) VALUES (?, ?, ?, ?)",
                        (self._pack.name, self._pack.area, self._pack.size, now),
                    ).lastrowid
                # Chunks new to step 1 may have been added since by another put: those rows
                # stay as they are (ours become dead space in our pack, compacted later).
                ids = dict(self._known)
                new_hashes = list(self._new)
                for i in range(0, len(new_hashes), _SQL_BATCH):
                    ids.update(self._chunk_ids(conn, new_hashes[i : i + _SQL_BATCH]))
                fresh = [h for h in new_hashes if h not in ids]
                conn.executemany(
                    "INSERT INTO chunks (hash, size, codec, stored_size, pack, offset, data) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (h, size, codec, n, None if inline else pack_id, offset, inline)
                        for h in fresh
                        for size, codec, n, inline, offset in (self._new[h],)
                    ],
                )
                new_chunks = len(fresh)
                stored_bytes = sum(self._new[h][2] for h in fresh)
                for i in range(0, len(fresh), _SQL_BATCH):
                    ids.update(self._chunk_ids(conn, fresh[i : i + _SQL_BATCH]))
                known_ids = list(self._known.values())
                for i in range(0, len(known_ids), _SQL_BATCH):
                    batch_ids = known_ids[i : i + _SQL_BATCH]
                    conn.execute(
                        f"UPDATE chunks SET orphaned_at = NULL WHERE orphaned_at IS NOT NULL "
                        f"AND id IN ({','.join('?' * len(batch_ids))})",
                        batch_ids,
                    )
                chunks: list[tuple[int, int]] = []
                offset_in_blob = 0
                for chunk_hash, size in self._order:
                    chunks.append((offset_in_blob, ids[chunk_hash]))
                    offset_in_blob += size
                blob_id = store._insert_blob(conn, cid, self._size, chunks, now)
            info = store._insert_artifact(
                conn, blob_id, spec, now, cid=cid, size=self._size, tier=tier
            )
        result = PutResult(
            artifact=info,
            chunks=len(self._order),
            new_chunks=new_chunks,
            stored_bytes=stored_bytes,
            deduplicated=deduplicated,
        )
        return result, deduplicated

    @staticmethod
    def _chunk_ids(conn: sqlite3.Connection, hashes: Sequence[bytes]) -> list[tuple[bytes, int]]:
        rows = conn.execute(
            f"SELECT hash, id FROM chunks WHERE hash IN ({','.join('?' * len(hashes))})",
            list(hashes),
        ).fetchall()
        return [(bytes(h), i) for h, i in rows]

    def _check_known(self, conn: sqlite3.Connection) -> None:
        """The collector ran since step 1: make sure the chunks we rely on still exist."""
        known_ids = list(self._known.values())
        present = 0
        for i in range(0, len(known_ids), _SQL_BATCH):
            batch = known_ids[i : i + _SQL_BATCH]
            present += conn.execute(
                f"SELECT count(*) FROM chunks WHERE id IN ({','.join('?' * len(batch))})", batch
            ).fetchone()[0]
        if present != len(known_ids):
            raise PutConflict(
                f"{len(known_ids) - present} chunks this put shares were garbage-collected "
                f"while it ran (it took longer than the collector's grace period); retry"
            )
