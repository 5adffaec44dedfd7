"""The store's plain data: artifact records, results, refs, and the rules their fields follow.

Everything here is immutable data with no I/O, so the future JSON-RPC handlers can return it as
is: every record has ``to_json()`` giving the wire shape (camelCase keys, content ids as
``"sha256:<hex>"``), documented in ``docs/pit.md``.

Refs
----
A *ref* names what to read. In order of precedence:

- ``sha256:HEX`` (4 to 64 hex digits): the content with that id, or the only one it prefixes;
- 64 hex digits: a content id;
- ``NAME@N``: version ``N`` of ``NAME``;
- ``NAME``: the latest version of ``NAME``; if no artifact has that name and ``NAME`` is 7 or
  more hex digits, the content it prefixes (as git does with abbreviated ids);
- an ``int``: the artifact with that id (the API's stable handle).

Names may not contain ``@`` or control characters, nor look like a content id, so these
readings never overlap.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeAlias

from symphony.pit._exceptions import InvalidArgument

__all__ = [
    "AUTO",
    "KINDS",
    "OUTCOMES",
    "TIERS",
    "ArtifactInfo",
    "ArtifactRef",
    "Auto",
    "ContentRef",
    "IdRef",
    "NameRef",
    "Outcome",
    "PutResult",
    "Ref",
    "Relation",
    "SearchHit",
    "StoreStats",
    "Tier",
    "format_cid",
    "normalize_tags",
    "parse_cid",
    "parse_ref",
    "validate_kind",
    "validate_meta",
    "validate_name",
    "validate_outcome",
    "validate_producer",
    "validate_quality",
    "validate_relation",
    "validate_tag",
]

# Kinds the rest of Symphony produces. Other lowercase kinds are accepted: extensions add theirs.
KINDS: Final = (
    "code",
    "diff",
    "suggestion",
    "model-output",
    "workflow-result",
    "checkpoint",
    "log",
    "document",
    "data",
    "file",
)
Outcome = Literal["pending", "accepted", "rejected"]
OUTCOMES: Final[tuple[Outcome, ...]] = ("pending", "accepted", "rejected")
Tier = Literal["hot", "warm", "cold"]
TIERS: Final[tuple[Tier, ...]] = ("hot", "warm", "cold")

CID_PREFIX: Final = "sha256:"
MAX_NAME: Final = 1024
MAX_META_BYTES: Final = 64 * 1024

_KIND_RE: Final = re.compile(r"[a-z][a-z0-9-]{0,63}")
_REL_RE: Final = re.compile(r"[a-z][a-z0-9-]{0,63}")
_TAG_RE: Final = re.compile(r"[^\s,\x00-\x1f\x7f]{1,128}")
_HEX_RE: Final = re.compile(r"[0-9a-f]+")
_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f]")


class Auto:
    """Type of `AUTO`: "choose for me" (the parent of a new version is the previous one)."""

    _instance: Auto | None = None

    def __new__(cls) -> Auto:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "AUTO"


AUTO: Final = Auto()


def format_cid(digest: bytes) -> str:
    """The wire form of a content id: ``sha256:`` and 64 lowercase hex digits."""
    return CID_PREFIX + digest.hex()


def parse_cid(text: str) -> bytes:
    """The 32-byte digest of a full content id (with or without the ``sha256:`` prefix)."""
    hexpart = text[len(CID_PREFIX) :] if text.startswith(CID_PREFIX) else text
    if len(hexpart) != 64 or not _HEX_RE.fullmatch(hexpart):
        raise InvalidArgument(f"not a content id: {text!r} (want sha256: and 64 hex digits)")
    return bytes.fromhex(hexpart)


@dataclass(frozen=True, slots=True)
class ContentRef:
    """A ref to content by id: ``prefix`` is lowercase hex, complete when it has 64 digits."""

    prefix: str
    fallback_name: str | None = None  # a bare hex string that may also be a name

    @property
    def complete(self) -> bool:
        return len(self.prefix) == 64


@dataclass(frozen=True, slots=True)
class NameRef:
    """A ref to an artifact by name, and version (None: the latest)."""

    name: str
    version: int | None = None


@dataclass(frozen=True, slots=True)
class IdRef:
    """A ref to an artifact by its id."""

    id: int


Ref: TypeAlias = "ContentRef | NameRef | IdRef"
ArtifactRef: TypeAlias = "str | int"


def parse_ref(ref: ArtifactRef) -> Ref:
    """Parse a ref (see the module docstring). Raises `InvalidArgument` if it is malformed."""
    if isinstance(ref, bool):
        raise InvalidArgument(f"not a ref: {ref!r}")
    if isinstance(ref, int):
        if ref <= 0:
            raise InvalidArgument(f"artifact ids are positive, got {ref}")
        return IdRef(ref)
    if not isinstance(ref, str) or not ref:
        raise InvalidArgument(f"not a ref: {ref!r}")
    if ref.startswith(CID_PREFIX):
        hexpart = ref[len(CID_PREFIX) :].lower()
        if not 4 <= len(hexpart) <= 64 or not _HEX_RE.fullmatch(hexpart):
            raise InvalidArgument(f"not a content id or prefix: {ref!r}")
        return ContentRef(hexpart)
    if len(ref) == 64 and _HEX_RE.fullmatch(ref.lower()):
        return ContentRef(ref.lower())
    name, sep, version = ref.rpartition("@")
    if sep:
        if not version.isdigit() or not version.isascii() or int(version) <= 0:
            raise InvalidArgument(f"bad version in {ref!r}: want NAME@N with N >= 1")
        return NameRef(validate_name(name), int(version))
    validate_name(ref)
    if len(ref) >= 7 and _HEX_RE.fullmatch(ref.lower()):
        return ContentRef(ref.lower(), fallback_name=ref)
    return NameRef(ref)


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidArgument("an artifact name is a non-empty string")
    if len(name) > MAX_NAME:
        raise InvalidArgument(f"artifact names are at most {MAX_NAME} characters")
    if "@" in name or _CONTROL_RE.search(name) or name != name.strip():
        raise InvalidArgument(
            f"bad artifact name {name!r}: no '@', control characters, or surrounding spaces"
        )
    if name.startswith(CID_PREFIX) or (len(name) == 64 and _HEX_RE.fullmatch(name.lower())):
        raise InvalidArgument(f"artifact name {name!r} would read as a content id")
    return name


def validate_kind(kind: str) -> str:
    if not isinstance(kind, str) or not _KIND_RE.fullmatch(kind):
        raise InvalidArgument(f"bad kind {kind!r}: lowercase letters, digits and '-', e.g. 'code'")
    return kind


def validate_tag(tag: str) -> str:
    if not isinstance(tag, str) or not _TAG_RE.fullmatch(tag):
        raise InvalidArgument(f"bad tag {tag!r}: 1-128 characters, no spaces, commas or controls")
    return tag


def validate_relation(rel: str) -> str:
    if not isinstance(rel, str) or not _REL_RE.fullmatch(rel):
        raise InvalidArgument(f"bad relation {rel!r}: lowercase letters, digits and '-'")
    return rel


def validate_producer(producer: str | None) -> str | None:
    if producer is None:
        return None
    if not isinstance(producer, str) or not producer or len(producer) > 256:
        raise InvalidArgument("a producer is a string of 1-256 characters")
    if _CONTROL_RE.search(producer):
        raise InvalidArgument(f"bad producer {producer!r}: control characters")
    return producer


def validate_quality(quality: float | None) -> float | None:
    if quality is None:
        return None
    if isinstance(quality, bool) or not isinstance(quality, int | float):
        raise InvalidArgument(f"a quality score is a number in [0, 1], got {quality!r}")
    value = float(quality)
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise InvalidArgument(f"a quality score is a number in [0, 1], got {quality!r}")
    return value


def validate_outcome(outcome: str | None) -> Outcome | None:
    if outcome is None:
        return None
    for known in OUTCOMES:
        if outcome == known:
            return known
    raise InvalidArgument(f"bad outcome {outcome!r}: one of {', '.join(OUTCOMES)}")


def validate_meta(meta: Mapping[str, Any] | None) -> str | None:
    """The canonical JSON text of ``meta`` (a JSON object), or None when there is none."""
    if meta is None or not meta:
        return None
    if not isinstance(meta, Mapping) or not all(isinstance(k, str) for k in meta):
        raise InvalidArgument("meta is a JSON object with string keys")
    try:
        text = json.dumps(meta, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"meta is not JSON: {exc}") from None
    if len(text.encode("utf-8")) > MAX_META_BYTES:
        raise InvalidArgument(f"meta is at most {MAX_META_BYTES} bytes of JSON")
    return text


@dataclass(frozen=True, slots=True)
class ArtifactInfo:
    """One version of a named artifact, as stored.

    ``ref`` (``NAME@VERSION``) and ``id`` both name it for good: versions are never renumbered.
    ``parent_id`` links it to the version it was derived from (by default the previous
    version of the same name); ``tier`` is where its content sits (hot, warm or cold).
    """

    id: int
    name: str
    version: int
    content_id: str
    size: int
    kind: str
    parent_id: int | None
    producer: str | None
    quality: float | None
    outcome: Outcome | None
    pinned: bool
    tags: tuple[str, ...]
    meta: dict[str, Any] = field(hash=False, compare=True)
    created_at: float = 0.0
    tier: Tier = "hot"

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ref": self.ref,
            "name": self.name,
            "version": self.version,
            "contentId": self.content_id,
            "size": self.size,
            "kind": self.kind,
            "parentId": self.parent_id,
            "producer": self.producer,
            "quality": self.quality,
            "outcome": self.outcome,
            "pinned": self.pinned,
            "tags": list(self.tags),
            "meta": self.meta,
            "createdAt": self.created_at,
            "tier": self.tier,
        }


@dataclass(frozen=True, slots=True)
class PutResult:
    """What a put stored: the new artifact version and how much was actually written.

    ``deduplicated`` is true when the whole content was already in the store; ``new_chunks``
    and ``stored_bytes`` count only chunks this put added (after compression and sealing).
    """

    artifact: ArtifactInfo
    chunks: int
    new_chunks: int
    stored_bytes: int
    deduplicated: bool

    @property
    def content_id(self) -> str:
        return self.artifact.content_id

    def to_json(self) -> dict[str, Any]:
        return {
            "artifact": self.artifact.to_json(),
            "chunks": self.chunks,
            "newChunks": self.new_chunks,
            "storedBytes": self.stored_bytes,
            "deduplicated": self.deduplicated,
        }


@dataclass(frozen=True, slots=True)
class Relation:
    """A typed edge between two artifacts, e.g. ``(suggestion) --derived-from--> (code)``."""

    source_id: int
    relation: str
    target_id: int

    def to_json(self) -> dict[str, Any]:
        return {"sourceId": self.source_id, "relation": self.relation, "targetId": self.target_id}


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A search result: the artifact, its rank (lower is better, bm25), where it matched."""

    artifact: ArtifactInfo
    rank: float
    matched: Literal["content", "metadata"]
    snippet: str

    def to_json(self) -> dict[str, Any]:
        return {
            "artifact": self.artifact.to_json(),
            "rank": self.rank,
            "matched": self.matched,
            "snippet": self.snippet,
        }


@dataclass(frozen=True, slots=True)
class StoreStats:
    """Counts and sizes: ``logical_bytes`` sums artifact sizes, ``stored_bytes`` what is kept."""

    artifacts: int
    names: int
    blobs: int
    chunks: int
    packs: int
    logical_bytes: int
    content_bytes: int
    stored_bytes: int
    inline_bytes: int
    pack_bytes: int
    database_bytes: int
    encrypted: bool
    tiers: Mapping[str, int] = field(hash=False, default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "artifacts": self.artifacts,
            "names": self.names,
            "blobs": self.blobs,
            "chunks": self.chunks,
            "packs": self.packs,
            "logicalBytes": self.logical_bytes,
            "contentBytes": self.content_bytes,
            "storedBytes": self.stored_bytes,
            "inlineBytes": self.inline_bytes,
            "packBytes": self.pack_bytes,
            "databaseBytes": self.database_bytes,
            "encrypted": self.encrypted,
            "tiers": dict(self.tiers),
        }


def normalize_tags(tags: Sequence[str]) -> tuple[str, ...]:
    """Validated, deduplicated, sorted tags."""
    if isinstance(tags, str):
        raise InvalidArgument("tags is a list of strings, not one string")
    return tuple(sorted({validate_tag(tag) for tag in tags}))
