"""The artifact store: round trips, deduplication, chunk sharing, lineage, refs, metadata."""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from symphony.pit import (
    AmbiguousRef,
    InvalidArgument,
    NotFound,
    ProtectedArtifact,
)
from symphony.pit.artifacts import (
    INLINE_MAX,
    WHOLE_MAX,
    ArtifactStore,
    default_store_path,
    format_cid,
    fsck,
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ArtifactStore]:
    with ArtifactStore.open(tmp_path / "pit") as opened:
        yield opened


def cid_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def pack_files(store: ArtifactStore) -> list[Path]:
    return list(store.layout.iter_pack_files("objects"))


SIZES = [0, 1, 1000, WHOLE_MAX, WHOLE_MAX + 1, INLINE_MAX + 50_000, 3_000_000]


@pytest.mark.parametrize("size", SIZES)
def test_put_then_get_returns_the_same_bytes(store: ArtifactStore, size: int) -> None:
    data = random.Random(size).randbytes(size)
    result = store.put(data, name=f"blob-{size}")
    assert result.content_id == cid_of(data)
    assert result.artifact.size == size
    assert store.get(result.content_id) == data
    assert store.get(f"blob-{size}") == data
    assert store.get(f"blob-{size}@1", verify=True) == data
    assert store.get(result.artifact.id) == data
    assert b"".join(store.iter_content(result.content_id, verify=True)) == data
    assert fsck(store, verify=True).ok


def test_small_content_is_inline_and_large_content_goes_to_one_pack(store: ArtifactStore) -> None:
    store.put(os.urandom(100_000), name="small")
    assert pack_files(store) == []
    store.put(os.urandom(2_000_000), name="large")
    assert len(pack_files(store)) == 1
    stats = store.stats()
    assert stats.packs == 1
    assert stats.inline_bytes == 100_000


def test_identical_content_is_stored_once(store: ArtifactStore) -> None:
    data = os.urandom(1_500_000)
    first = store.put(data, name="a")
    before = store.stats()
    second = store.put(data, name="b")
    after = store.stats()
    assert second.deduplicated
    assert not first.deduplicated
    assert second.new_chunks == 0
    assert second.stored_bytes == 0
    assert first.content_id == second.content_id
    assert after.stored_bytes == before.stored_bytes
    assert after.blobs == before.blobs
    assert after.artifacts == before.artifacts + 1
    assert store.get("b") == data


def test_near_identical_versions_share_chunks(store: ArtifactStore) -> None:
    data = bytearray(random.Random(5).randbytes(1_000_000))
    original = bytes(data)
    first = store.put(original, name="doc")
    data[500_000:500_010] = b"0123456789"
    second = store.put(bytes(data), name="doc")
    assert 1 <= second.new_chunks <= 2
    assert second.stored_bytes < 3 * 64 * 1024
    assert second.chunks == first.chunks or abs(second.chunks - first.chunks) <= 1
    stats = store.stats()
    assert stats.logical_bytes == 2_000_000
    assert stats.stored_bytes < 1_200_000
    assert store.get("doc@1") == original
    assert store.get("doc") == bytes(data)


def test_a_chunk_shared_by_two_contents_survives_deleting_one(store: ArtifactStore) -> None:
    base = random.Random(9).randbytes(800_000)
    store.put(base, name="one")
    store.put(base + b"tail", name="two")
    store.delete("one")
    from symphony.pit.stale import StaleManager

    StaleManager(store, gc_grace=0).gc()
    assert store.get("two") == base + b"tail"
    assert fsck(store, verify=True).ok


def test_streamed_put_matches_in_memory_put(store: ArtifactStore, tmp_path: Path) -> None:
    data = random.Random(2).randbytes(700_000)
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    with source.open("rb") as file:
        from_file = store.put(file, name="from-file")
    from_pieces = store.put((data[i : i + 9999] for i in range(0, len(data), 9999)), name="pieces")
    in_memory = store.put(data, name="memory")
    assert from_file.content_id == from_pieces.content_id == in_memory.content_id
    assert from_pieces.deduplicated
    assert in_memory.deduplicated
    assert from_file.chunks == in_memory.chunks


def test_small_streamed_content_is_one_chunk_like_an_in_memory_put(store: ArtifactStore) -> None:
    upload = store.upload()
    for piece in (b"a" * 50_000, b"b" * 50_000):
        upload.write(piece)
    result = upload.commit(name="held-back")
    assert result.chunks == 1
    assert store.put(b"a" * 50_000 + b"b" * 50_000, name="again").deduplicated


def test_an_aborted_upload_leaves_nothing_behind(store: ArtifactStore) -> None:
    with store.upload() as upload:
        upload.write(os.urandom(3_000_000))
    assert pack_files(store) == []
    assert list(store.layout.iter_tmp_files()) == []
    assert store.stats().chunks == 0
    with pytest.raises(InvalidArgument):
        upload.write(b"more")


def test_read_returns_byte_ranges(store: ArtifactStore) -> None:
    data = random.Random(11).randbytes(900_000)
    store.put(data, name="ranged")
    rng = random.Random(12)
    for _ in range(40):
        offset = rng.randrange(0, len(data) + 10)
        length = rng.randrange(0, 200_000)
        assert store.read("ranged", offset, length) == data[offset : offset + length]
    with pytest.raises(InvalidArgument):
        store.read("ranged", -1, 5)


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArtifactStore]:
    # Durability against power cuts is not what this test is about: skip the fsyncs.
    path = tmp_path_factory.mktemp("shared") / "pit"
    with ArtifactStore.open(path, durability="process") as opened:
        yield opened


_names = itertools.count()
_stored: set[str] = set()  # content ids put into shared_store so far


@given(st.binary(max_size=5000), st.binary(max_size=5000))
def test_content_ids_are_sha256_and_put_is_idempotent(
    shared_store: ArtifactStore, a: bytes, b: bytes
) -> None:
    name = f"x{next(_names)}"
    a_existed = cid_of(a) in _stored
    ra = shared_store.put(a, name=name)
    _stored.add(ra.content_id)
    b_existed = cid_of(b) in _stored
    rb = shared_store.put(b, name=name)
    _stored.add(rb.content_id)
    assert ra.content_id == cid_of(a)
    assert rb.content_id == cid_of(b)
    assert shared_store.get(ra.content_id) == a
    assert shared_store.get(rb.content_id) == b
    assert shared_store.get(name) == b
    assert shared_store.get(f"{name}@1") == a
    assert ra.deduplicated == a_existed
    assert rb.deduplicated == b_existed
    assert [v.version for v in shared_store.versions(name)] == [1, 2]


def test_versions_link_to_their_parents(store: ArtifactStore) -> None:
    v1 = store.put(b"one", name="notes.md").artifact
    v2 = store.put(b"two", name="notes.md").artifact
    v3 = store.put(b"three", name="notes.md").artifact
    assert (v1.version, v2.version, v3.version) == (1, 2, 3)
    assert v1.parent_id is None
    assert v2.parent_id == v1.id
    assert v3.parent_id == v2.id
    assert [a.ref for a in store.lineage("notes.md")] == ["notes.md@3", "notes.md@2", "notes.md@1"]
    assert [a.version for a in store.versions("notes.md")] == [1, 2, 3]
    assert store.stat("notes.md").id == v3.id


def test_explicit_parent_and_no_parent(store: ArtifactStore) -> None:
    code = store.put(b"def f(): pass\n", name="f.py", kind="code").artifact
    suggestion = store.put(
        b"def f(): return 1\n", name="suggestion/1", kind="suggestion", parent="f.py"
    ).artifact
    orphan = store.put(b"x", name="f.py", parent=None).artifact
    assert suggestion.parent_id == code.id
    assert orphan.parent_id is None
    assert [a.id for a in store.lineage("suggestion/1")] == [suggestion.id, code.id]


def test_deleting_a_version_reparents_its_children_and_never_reuses_numbers(
    store: ArtifactStore,
) -> None:
    v1 = store.put(b"1", name="n").artifact
    store.put(b"2", name="n")
    v3 = store.put(b"3", name="n").artifact
    store.delete("n@2")
    assert store.stat("n@3").parent_id == v1.id
    store.delete("n@3")
    assert store.stat("n").id == v1.id
    v4 = store.put(b"4", name="n").artifact
    assert v4.version == 4
    assert v4.parent_id == v1.id
    with pytest.raises(NotFound):
        store.stat("n@3")
    assert v3.id not in [a.id for a in store.versions("n")]
    assert fsck(store).ok


def test_metadata_tags_relations_pins(store: ArtifactStore) -> None:
    code = store.put(
        b"x = 1\n",
        name="x.py",
        kind="code",
        producer="extension:formatter",
        quality=0.5,
        tags=["python", "draft", "python"],
        meta={"lines": 1, "lang": "python"},
    ).artifact
    assert code.tags == ("draft", "python")
    assert code.meta == {"lang": "python", "lines": 1}
    assert code.producer == "extension:formatter"
    assert code.quality == 0.5
    diff = store.put(b"+x = 2\n", name="x.diff", kind="diff", relations=[("diff-of", "x.py")])
    assert [(r.source_id, r.relation, r.target_id) for r in store.relations("x.py")] == [
        (diff.artifact.id, "diff-of", code.id)
    ]
    store.relate("x.py", "reviewed-by", "x.diff")
    assert len(store.relations("x.py")) == 2
    assert store.unrelate("x.py", "reviewed-by", "x.diff")
    assert store.tag("x.py", "final").tags == ("draft", "final", "python")
    assert store.untag("x.py", "draft").tags == ("final", "python")
    assert store.pin("x.py").pinned
    assert store.set_quality("x.py", 0.9).quality == 0.9
    assert not store.unpin("x.py").pinned
    assert [a.name for a in store.list_artifacts(tag="final")] == ["x.py"]
    assert [a.name for a in store.list_artifacts(kind="diff")] == ["x.diff"]
    assert [a.name for a in store.list_artifacts(producer="extension:formatter")] == ["x.py"]
    assert [a.name for a in store.list_artifacts(name_prefix="x.")] == ["x.diff", "x.py"]


def test_list_pages_newest_first(store: ArtifactStore) -> None:
    for i in range(25):
        store.put(str(i).encode(), name=f"item-{i:02d}")
    seen: list[str] = []
    before = None
    while page := store.list_artifacts(limit=10, before_id=before):
        seen += [a.name for a in page]
        before = page[-1].id
    assert seen == [f"item-{i:02d}" for i in reversed(range(25))]


def test_protected_artifacts_need_force(store: ArtifactStore) -> None:
    store.put(b"keep", name="pinned", pinned=True)
    store.put(b"yes", name="s/1", kind="suggestion", outcome="accepted")
    store.put(b"great", name="q", quality=0.95)
    held = store.put(b"held", name="held").artifact
    store.live.hold("workflow-7", [held.id])
    for ref, reason in [
        ("pinned", "pinned"),
        ("s/1", "accepted-suggestion"),
        ("q", "quality"),
        ("held", "live"),
    ]:
        with pytest.raises(ProtectedArtifact) as info:
            store.delete(ref)
        assert reason in info.value.reasons
    store.live.release("workflow-7")
    store.delete("held")
    store.delete("pinned", force=True)
    with pytest.raises(NotFound):
        store.get("pinned")


def test_refs(store: ArtifactStore) -> None:
    data = b"some content"
    result = store.put(data, name="thing")
    digest = hashlib.sha256(data).hexdigest()
    for ref in (
        digest,
        "sha256:" + digest,
        "sha256:" + digest[:8],
        digest[:10],
        "thing",
        "thing@1",
    ):
        assert store.get(ref) == data, ref
    assert store.stat(result.content_id).name == "thing"
    with pytest.raises(NotFound):
        store.get("sha256:" + "0" * 64)
    with pytest.raises(NotFound):
        store.get("nothing")
    with pytest.raises(NotFound):
        store.get("thing@2")
    with pytest.raises(InvalidArgument):
        store.get("thing@0")
    with pytest.raises(InvalidArgument):
        store.get("sha256:xyz")


def test_a_short_prefix_shared_by_two_contents_is_ambiguous(store: ArtifactStore) -> None:
    by_prefix: dict[str, bytes] = {}
    for i in itertools.count():
        data = str(i).encode()
        prefix = hashlib.sha256(data).hexdigest()[:4]
        if prefix in by_prefix:
            store.put(by_prefix[prefix], name="first")
            store.put(data, name="second")
            break
        by_prefix[prefix] = data
    with pytest.raises(AmbiguousRef):
        store.get("sha256:" + prefix)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": ""},
        {"name": "a@b"},
        {"name": " padded"},
        {"name": "line\nbreak"},
        {"name": "sha256:abc"},
        {"name": "a" * 64},
        {"name": "ok", "kind": "Code"},
        {"name": "ok", "tags": ["has space"]},
        {"name": "ok", "tags": "notalist"},
        {"name": "ok", "quality": 1.5},
        {"name": "ok", "quality": float("nan")},
        {"name": "ok", "outcome": "maybe"},
        {"name": "ok", "meta": {"x": object()}},
        {"name": "ok", "relations": [("Bad Rel", "x")]},
    ],
)
def test_invalid_arguments_are_rejected_before_anything_is_stored(
    store: ArtifactStore, kwargs: dict[str, object]
) -> None:
    with pytest.raises(InvalidArgument):
        store.put(b"data", **kwargs)  # type: ignore[arg-type]
    assert store.stats().artifacts == 0


def test_reopening_sees_everything(tmp_path: Path) -> None:
    path = default_store_path(tmp_path)
    assert path == tmp_path / ".symphony" / "pit"
    with ArtifactStore.open(path) as first:
        cid = first.put(b"persisted", name="p").content_id
    with ArtifactStore.open(path, create=False) as second:
        assert second.get(cid) == b"persisted"
    from symphony.pit import StoreFormatError

    with pytest.raises(StoreFormatError):
        ArtifactStore.open(tmp_path / "nowhere", create=False)


def test_threads_put_and_get_concurrently(store: ArtifactStore) -> None:
    errors: list[BaseException] = []
    results: dict[str, bytes] = {}
    lock = threading.Lock()
    start = threading.Barrier(6)

    def worker(n: int) -> None:
        try:
            rng = random.Random(n)
            start.wait(timeout=30)
            for i in range(15):
                size = rng.choice([100, 20_000, 300_000])
                data = rng.randbytes(size)
                cid = store.put(data, name=f"w{n}/f{i % 3}").content_id
                assert store.get(cid) == data
                with lock:
                    results[cid] = data
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert len(results) == 90
    for cid, data in results.items():
        assert store.get(cid) == data
    assert [a.version for a in store.versions("w0/f0")] == [1, 2, 3, 4, 5]
    assert fsck(store, verify=True).ok


def test_separate_processes_share_a_store(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "shared"
    ArtifactStore.open(path).close()
    script = (
        "import random, sys\n"
        "from symphony.pit.artifacts import ArtifactStore\n"
        "n = int(sys.argv[2])\n"
        "with ArtifactStore.open(sys.argv[1]) as s:\n"
        "    for i in range(20):\n"
        "        data = random.Random(n * 100 + i).randbytes(random.Random(i).choice([50, 9000, 400000]))\n"
        "        print(s.put(data, name='shared').content_id, flush=True)\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(path), str(n)], stdout=subprocess.PIPE, text=True
        )
        for n in range(3)
    ]
    outputs = [proc.communicate(timeout=120)[0].split() for proc in procs]
    assert all(proc.returncode == 0 for proc in procs)
    with ArtifactStore.open(path) as s:
        for n, cids in enumerate(outputs):
            for i, cid in enumerate(cids):
                size = random.Random(i).choice([50, 9000, 400000])
                assert s.get(cid) == random.Random(n * 100 + i).randbytes(size)
        assert [a.version for a in s.versions("shared")] == list(range(1, 61))
        assert fsck(s, verify=True).ok


def test_format_cid() -> None:
    assert format_cid(b"\x00" * 32) == "sha256:" + "00" * 32
