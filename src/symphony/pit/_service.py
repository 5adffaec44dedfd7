"""The typed service surface behind ``symphony/artifact/*`` and ``symphony/pit/*``.

Each method takes one params model and returns one result model (pydantic, camelCase on the
wire, bytes as base64 in JSON and raw in msgpack), so a JSON-RPC handler is a one-liner::

    async def put(ctx: Context, params: PutParams) -> PutResultModel:
        return await to_thread(ctx.pit.put, params)

Every method blocks (disk, SQLite): call it through the daemon's one ``to_thread`` helper.

Large content never travels as one giant message. Writing: send the pieces with `put_part`
(the first call returns an ``upload`` id, each piece at most ``max_message`` bytes), then `put`
with that ``upload`` and the metadata; `put_abort` drops an upload, and `abandon` drops all of
a connection's uploads when it closes. Reading: `get` returns at most ``max_message`` bytes
from ``offset`` and says whether it reached the end (``eof``); the client asks again from
``offset + len(data)``, with the ``contentId`` of the first answer as its ``ref``.

Errors are the store's exceptions (`symphony.pit` hierarchy); the handler maps them to
JSON-RPC errors (``docs/pit.md`` suggests the codes).
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from symphony.pit._exceptions import InvalidArgument, NotFound
from symphony.pit._model import AUTO, ArtifactInfo

if TYPE_CHECKING:
    # The store, the stale manager and fsck load only when a service method needs them: the
    # daemon builds its route table from the models below at start-up, and an editor waits.
    from symphony.pit._store import ArtifactStore, Upload

__all__ = [
    "MAX_MESSAGE",
    "ArtifactModel",
    "ArtifactService",
    "DeleteParams",
    "FsckParams",
    "FsckResult",
    "GcParams",
    "GcResult",
    "GetParams",
    "GetResult",
    "ListParams",
    "ListResult",
    "PutAbortParams",
    "PutParams",
    "PutPartParams",
    "PutPartResult",
    "PutResultModel",
    "RefParams",
    "RelationModel",
    "RetentionParams",
    "SearchHitModel",
    "SearchParams",
    "SearchResult",
    "StatResult",
    "VersionsParams",
    "VersionsResult",
]

MAX_MESSAGE = 1024 * 1024  # bytes of content in one request or response


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        ser_json_bytes="base64",
        val_json_bytes="base64",
        # Schemas are built on first use: the daemon defines these at start-up (route table),
        # most sessions never send a Pit request.
        defer_build=True,
    )


Ref = str | int


class ArtifactModel(_Model):
    """One artifact version (see `symphony.pit.artifacts.ArtifactInfo`)."""

    id: int
    ref: str
    name: str
    version: int
    content_id: str
    size: int
    kind: str
    parent_id: int | None
    producer: str | None
    quality: float | None
    outcome: Literal["pending", "accepted", "rejected"] | None
    pinned: bool
    tags: list[str]
    meta: dict[str, Any]
    created_at: float
    tier: Literal["hot", "warm", "cold"]

    @classmethod
    def of(cls, info: ArtifactInfo) -> ArtifactModel:
        return cls.model_validate(info.to_json())


class RelationModel(_Model):
    source_id: int
    relation: str
    target_id: int


class PutParams(_Model):
    """``symphony/artifact/put``: store ``content``, or commit the ``upload`` sent in parts."""

    name: str
    kind: str = "file"
    content: bytes | None = None
    upload: str | None = None
    parent: Ref | None = None
    no_parent: bool = False  # record no parent (by default: the previous version)
    producer: str | None = None
    quality: float | None = None
    outcome: Literal["pending", "accepted", "rejected"] | None = None
    tags: list[str] = Field(default_factory=list)
    meta: dict[str, Any] | None = None
    relations: list[tuple[str, Ref]] = Field(default_factory=list)
    pinned: bool = False


class PutResultModel(_Model):
    artifact: ArtifactModel
    chunks: int
    new_chunks: int
    stored_bytes: int
    deduplicated: bool


class PutPartParams(_Model):
    """``symphony/artifact/putPart``: one piece of a large content (no ``upload``: a new one)."""

    data: bytes
    upload: str | None = None


class PutPartResult(_Model):
    upload: str
    received: int  # bytes received so far in this upload


class PutAbortParams(_Model):
    upload: str


class GetParams(_Model):
    """``symphony/artifact/get``: at most ``length`` (and ``MAX_MESSAGE``) bytes from ``offset``."""

    ref: Ref
    offset: int = Field(default=0, ge=0)
    length: int = Field(default=MAX_MESSAGE, ge=0)


class GetResult(_Model):
    content_id: str
    size: int
    offset: int
    data: bytes
    eof: bool


class RefParams(_Model):
    ref: Ref


class StatResult(_Model):
    artifact: ArtifactModel
    protection: list[str]
    relations: list[RelationModel]


class ListParams(_Model):
    name_prefix: str | None = None
    kind: str | None = None
    tag: str | None = None
    producer: str | None = None
    heads_only: bool = False
    limit: int = Field(default=100, ge=1, le=10_000)
    before_id: int | None = None


class ListResult(_Model):
    artifacts: list[ArtifactModel]
    next_before_id: int | None  # pass as beforeId for the next page; null at the end


class VersionsParams(_Model):
    name: str


class VersionsResult(_Model):
    versions: list[ArtifactModel]


class SearchParams(_Model):
    query: str
    kind: str | None = None
    limit: int = Field(default=20, ge=1, le=1000)
    all_versions: bool = False
    raw: bool = False


class SearchHitModel(_Model):
    artifact: ArtifactModel
    rank: float
    matched: Literal["content", "metadata"]
    snippet: str


class SearchResult(_Model):
    hits: list[SearchHitModel]


class DeleteParams(_Model):
    ref: Ref
    force: bool = False


class RetentionParams(_Model):
    max_age: float | None = None
    keep_versions: int | None = None
    size_budget: int | None = None
    keep_latest: bool = True


class GcParams(_Model):
    """``symphony/pit/gc``: collect garbage; with ``retention``/``tiers`` apply them first."""

    dry_run: bool = False
    grace: float | None = None
    retention: RetentionParams | None = None
    tiers: bool = False


class GcResult(_Model):
    report: dict[str, Any]  # CycleReport.to_json(): counts and bytes, deleted artifacts


class FsckParams(_Model):
    verify: bool = False


class FsckResult(_Model):
    ok: bool
    errors: list[dict[str, Any]]
    collectable: list[dict[str, Any]]
    checked: dict[str, int]


@dataclass
class _OpenUpload:
    upload: Upload
    owner: str
    touched: float
    lock: threading.Lock = field(default_factory=threading.Lock)


class ArtifactService:
    """The store behind the API: one instance per daemon, shared by all connections.

    ``owner`` (any string: the connection id) ties uploads to the client sending them, so
    `abandon` can drop them when it goes; `expire` drops uploads idle for too long.
    """

    def __init__(self, store: ArtifactStore, *, max_message: int = MAX_MESSAGE) -> None:
        self.store = store
        self.max_message = max_message
        self._uploads: dict[str, _OpenUpload] = {}
        self._lock = threading.Lock()

    # -- artifacts ---------------------------------------------------------------------------

    def put(self, params: PutParams, *, owner: str = "") -> PutResultModel:
        if (params.content is None) == (params.upload is None):
            raise InvalidArgument("give either content or upload")
        kwargs: dict[str, Any] = {
            "name": params.name,
            "kind": params.kind,
            "parent": None if params.no_parent else (params.parent if params.parent else AUTO),
            "producer": params.producer,
            "quality": params.quality,
            "outcome": params.outcome,
            "tags": params.tags,
            "meta": params.meta,
            "relations": params.relations,
            "pinned": params.pinned,
        }
        if params.content is not None:
            if len(params.content) > self.max_message:
                raise InvalidArgument(f"content over {self.max_message} bytes: send it in parts")
            result = self.store.put(params.content, **kwargs)
        else:
            assert params.upload is not None
            entry = self._take(params.upload, owner)
            with entry.lock:
                result = entry.upload.commit(**kwargs)
        return PutResultModel.model_validate(result.to_json())

    def put_part(self, params: PutPartParams, *, owner: str = "") -> PutPartResult:
        if len(params.data) > self.max_message:
            raise InvalidArgument(f"a part is at most {self.max_message} bytes")
        if params.upload is None:
            upload_id = secrets.token_hex(16)
            entry = _OpenUpload(self.store.upload(), owner, time.monotonic())
            with self._lock:
                self._uploads[upload_id] = entry
        else:
            upload_id = params.upload
            entry = self._find(upload_id, owner)
        with entry.lock:
            entry.upload.write(params.data)
            entry.touched = time.monotonic()
            return PutPartResult(upload=upload_id, received=entry.upload.size)

    def put_abort(self, params: PutAbortParams, *, owner: str = "") -> None:
        entry = self._take(params.upload, owner)
        with entry.lock:
            entry.upload.abort()

    def abandon(self, owner: str) -> int:
        """Abort every upload of ``owner`` (its connection closed); how many there were."""
        with self._lock:
            ids = [i for i, e in self._uploads.items() if e.owner == owner]
            entries = [self._uploads.pop(i) for i in ids]
        for entry in entries:
            with entry.lock:
                entry.upload.abort()
        return len(entries)

    def expire(self, max_idle: float) -> int:
        """Abort uploads idle for more than ``max_idle`` seconds; how many there were."""
        cutoff = time.monotonic() - max_idle
        with self._lock:
            ids = [i for i, e in self._uploads.items() if e.touched < cutoff]
            entries = [self._uploads.pop(i) for i in ids]
        for entry in entries:
            with entry.lock:
                entry.upload.abort()
        return len(entries)

    def _find(self, upload_id: str, owner: str) -> _OpenUpload:
        with self._lock:
            entry = self._uploads.get(upload_id)
        if entry is None or entry.owner != owner:
            raise NotFound(upload_id, "upload")
        return entry

    def _take(self, upload_id: str, owner: str) -> _OpenUpload:
        with self._lock:
            entry = self._uploads.get(upload_id)
            if entry is None or entry.owner != owner:
                raise NotFound(upload_id, "upload")
            del self._uploads[upload_id]
        return entry

    def get(self, params: GetParams) -> GetResult:
        """A piece of content. Resolve once: pass the ``contentId`` of the first answer as
        ``ref`` for the next pieces, so a new version of a name cannot change them midway."""
        length = min(params.length, self.max_message)
        content_id, size = self._content(params.ref)
        data = self.store.read(content_id, params.offset, length)
        return GetResult(
            content_id=content_id,
            size=size,
            offset=params.offset,
            data=data,
            eof=params.offset + len(data) >= size,
        )

    def _content(self, ref: Ref) -> tuple[str, int]:
        with self.store._read() as conn:
            _, cid, size = self.store._resolve_blob(conn, ref)
        return "sha256:" + cid.hex(), size

    def stat(self, params: RefParams) -> StatResult:
        info = self.store.stat(params.ref)
        return StatResult(
            artifact=ArtifactModel.of(info),
            protection=list(self.store.protection(info.id)),
            relations=[
                RelationModel.model_validate(r.to_json()) for r in self.store.relations(info.id)
            ],
        )

    def list(self, params: ListParams) -> ListResult:
        infos = self.store.list_artifacts(
            name_prefix=params.name_prefix,
            kind=params.kind,
            tag=params.tag,
            producer=params.producer,
            heads_only=params.heads_only,
            limit=params.limit,
            before_id=params.before_id,
        )
        return ListResult(
            artifacts=[ArtifactModel.of(i) for i in infos],
            next_before_id=infos[-1].id if len(infos) == params.limit else None,
        )

    def versions(self, params: VersionsParams) -> VersionsResult:
        return VersionsResult(
            versions=[ArtifactModel.of(i) for i in self.store.versions(params.name)]
        )

    def search(self, params: SearchParams) -> SearchResult:
        hits = self.store.search(
            params.query,
            kind=params.kind,
            limit=params.limit,
            all_versions=params.all_versions,
            raw=params.raw,
        )
        return SearchResult(hits=[SearchHitModel.model_validate(h.to_json()) for h in hits])

    def pin(self, params: RefParams) -> ArtifactModel:
        return ArtifactModel.of(self.store.pin(params.ref))

    def unpin(self, params: RefParams) -> ArtifactModel:
        return ArtifactModel.of(self.store.unpin(params.ref))

    def delete(self, params: DeleteParams) -> ArtifactModel:
        return ArtifactModel.of(self.store.delete(params.ref, force=params.force))

    # -- maintenance -----------------------------------------------------------------------

    def gc(self, params: GcParams) -> GcResult:
        from symphony.pit._stale import DEFAULT_GRACE, RetentionPolicy, StaleManager, TierPolicy

        retention = RetentionPolicy(**params.retention.model_dump()) if params.retention else None
        manager = StaleManager(
            self.store,
            retention=retention,
            tiers=TierPolicy() if params.tiers else None,
            gc_grace=DEFAULT_GRACE if params.grace is None else params.grace,
        )
        if (retention is not None and retention.active) or params.tiers:
            report = manager.run(dry_run=params.dry_run)
        else:
            report = manager.gc(dry_run=params.dry_run)
        return GcResult(report=report.to_json())

    def fsck(self, params: FsckParams) -> FsckResult:
        from symphony.pit._fsck import fsck

        return FsckResult.model_validate(fsck(self.store, verify=params.verify).to_json())
