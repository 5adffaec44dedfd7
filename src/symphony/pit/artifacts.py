"""``symphony.pit.artifacts``: the artifact store.

Content-addressed (SHA-256), deduplicated with content-defined chunking, versioned with
lineage, searchable (SQLite FTS5), optionally encrypted at rest (AES-256-GCM), crash-safe.
See ``docs/pit.md`` for the layout on disk, the durability argument and the API shapes.

Example::

    from symphony.pit.artifacts import ArtifactStore, default_store_path

    with ArtifactStore.open(default_store_path(".")) as store:
        result = store.put(b"print('hi')\\n", name="hello.py", kind="code")
        assert store.get(result.content_id) == b"print('hi')\\n"
"""

from symphony.pit._chunking import CHUNKER_ID, MAX_CHUNK, MIN_CHUNK
from symphony.pit._crypto import KEY_ENV, KEY_FILE_ENV, load_key, parse_key, write_key_file
from symphony.pit._fsck import FsckReport, Problem, fsck
from symphony.pit._live import LiveReferences
from symphony.pit._model import (
    AUTO,
    KINDS,
    OUTCOMES,
    TIERS,
    ArtifactInfo,
    ArtifactRef,
    Outcome,
    PutResult,
    Relation,
    SearchHit,
    StoreStats,
    Tier,
    format_cid,
    parse_cid,
)
from symphony.pit._store import (
    INDEX_MAX,
    INLINE_MAX,
    WHOLE_MAX,
    ArtifactStore,
    Upload,
    default_store_path,
)

__all__ = [
    "AUTO",
    "CHUNKER_ID",
    "INDEX_MAX",
    "INLINE_MAX",
    "KEY_ENV",
    "KEY_FILE_ENV",
    "KINDS",
    "MAX_CHUNK",
    "MIN_CHUNK",
    "OUTCOMES",
    "TIERS",
    "WHOLE_MAX",
    "ArtifactInfo",
    "ArtifactRef",
    "ArtifactStore",
    "FsckReport",
    "LiveReferences",
    "Outcome",
    "Problem",
    "PutResult",
    "Relation",
    "SearchHit",
    "StoreStats",
    "Tier",
    "Upload",
    "default_store_path",
    "format_cid",
    "fsck",
    "load_key",
    "parse_cid",
    "parse_key",
    "write_key_file",
]
