"""The typed service surface: wire shapes (camelCase, base64) and streamed put/get."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from symphony.pit import InvalidArgument, NotFound, ProtectedArtifact
from symphony.pit.artifacts import ArtifactStore
from symphony.pit.service import (
    ArtifactService,
    DeleteParams,
    FsckParams,
    GcParams,
    GetParams,
    ListParams,
    PutAbortParams,
    PutParams,
    PutPartParams,
    RefParams,
    SearchParams,
    VersionsParams,
)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ArtifactService]:
    with ArtifactStore.open(tmp_path / "pit") as store:
        yield ArtifactService(store, max_message=64 * 1024)


def test_put_and_get_over_the_wire_shapes(service: ArtifactService) -> None:
    request = json.dumps(
        {"name": "hello.py", "kind": "code", "content": "cHJpbnQoJ2hpJykK", "tags": ["py"]}
    )
    params = PutParams.model_validate_json(request)
    result = service.put(params)
    wire = json.loads(result.model_dump_json(by_alias=True))
    assert wire["artifact"]["ref"] == "hello.py@1"
    assert wire["artifact"]["contentId"].startswith("sha256:")
    assert wire["newChunks"] == 1
    got = service.get(GetParams.model_validate_json('{"ref": "hello.py"}'))
    assert json.loads(got.model_dump_json(by_alias=True)) == {
        "contentId": wire["artifact"]["contentId"],
        "size": 12,
        "offset": 0,
        "data": "cHJpbnQoJ2hpJykK",
        "eof": True,
    }


def test_unknown_fields_are_rejected() -> None:
    with pytest.raises(ValidationError):
        PutParams.model_validate({"name": "x", "content": b"x", "colour": "blue"})


def test_large_content_streams_in_parts_both_ways(service: ArtifactService) -> None:
    data = random.Random(1).randbytes(300_000)
    with pytest.raises(InvalidArgument):
        service.put(PutParams(name="big", content=data))
    upload = None
    for start in range(0, len(data), 64 * 1024):
        part = service.put_part(
            PutPartParams(data=data[start : start + 64 * 1024], upload=upload), owner="conn-1"
        )
        upload = part.upload
    assert part.received == len(data)
    with pytest.raises(NotFound):  # another connection cannot commit it
        service.put(PutParams(name="big", upload=upload), owner="conn-2")
    result = service.put(PutParams(name="big", upload=upload), owner="conn-1")
    assert result.artifact.size == len(data)
    pieces = []
    ref: str | int = "big"
    offset = 0
    while True:
        got = service.get(GetParams(ref=ref, offset=offset))
        pieces.append(got.data)
        assert len(got.data) <= 64 * 1024
        ref, offset = got.content_id, offset + len(got.data)
        if got.eof:
            break
    assert b"".join(pieces) == data


def test_abandoned_and_aborted_uploads_leave_nothing(service: ArtifactService) -> None:
    a = service.put_part(PutPartParams(data=b"a" * 60_000), owner="c1").upload
    service.put_part(PutPartParams(data=b"b" * 60_000), owner="c1")
    service.put_part(PutPartParams(data=b"c" * 60_000), owner="c2")
    service.put_abort(PutAbortParams(upload=a), owner="c1")
    assert service.abandon("c1") == 1
    assert service.expire(max_idle=0) == 1
    with pytest.raises(NotFound):
        service.put(PutParams(name="gone", upload=a), owner="c1")
    assert service.store.stats().artifacts == 0


def test_metadata_methods(service: ArtifactService) -> None:
    for i in range(3):
        service.put(PutParams(name="n", content=f"version {i} zebra".encode()))
    assert [v.version for v in service.versions(VersionsParams(name="n")).versions] == [1, 2, 3]
    page = service.list(ListParams(limit=2))
    assert [a.ref for a in page.artifacts] == ["n@3", "n@2"]
    rest = service.list(ListParams(limit=2, before_id=page.next_before_id))
    assert [a.ref for a in rest.artifacts] == ["n@1"]
    assert rest.next_before_id is None
    hits = service.search(SearchParams(query="zebra")).hits
    assert [h.artifact.ref for h in hits] == ["n@3"]
    assert service.pin(RefParams(ref="n@1")).pinned
    stat = service.stat(RefParams(ref="n@1"))
    assert stat.protection == ["pinned"]
    with pytest.raises(ProtectedArtifact):
        service.delete(DeleteParams(ref="n@1"))
    assert not service.unpin(RefParams(ref="n@1")).pinned
    assert service.delete(DeleteParams(ref="n@1")).ref == "n@1"
    dry = service.gc(GcParams.model_validate({"dryRun": True, "grace": 0}))
    assert dry.report["blobsCollected"] == 1
    report = service.gc(GcParams(grace=0))
    assert report.report["chunksCollected"] == 1
    assert service.fsck(FsckParams(verify=True)).ok
