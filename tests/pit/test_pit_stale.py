"""The stale manager: retention never deletes what is protected; tiers; garbage collection."""

from __future__ import annotations

import itertools
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from symphony.pit import InvalidArgument, PutConflict
from symphony.pit.artifacts import ArtifactStore, fsck
from symphony.pit.stale import (
    ArtifactFacts,
    RetentionPolicy,
    StaleManager,
    TierPolicy,
    plan_retention,
    protection_reasons,
)

DAY = 86400.0
NOW = 1_800_000_000.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ArtifactStore]:
    with ArtifactStore.open(tmp_path / "pit") as opened:
        yield opened


# -- the pure planner ------------------------------------------------------------------------

facts_strategy = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d"]),  # name
        st.sampled_from(["code", "suggestion", "log"]),  # kind
        st.floats(0, 100 * DAY),  # age
        st.booleans(),  # pinned
        st.one_of(st.none(), st.floats(0, 1)),  # quality
        st.sampled_from([None, "pending", "accepted", "rejected"]),  # outcome
        st.integers(0, 5),  # blob (content shared between artifacts)
    ),
    max_size=40,
)
policy_strategy = st.builds(
    RetentionPolicy,
    max_age=st.one_of(st.none(), st.floats(0, 100 * DAY)),
    keep_versions=st.one_of(st.none(), st.integers(1, 4)),
    size_budget=st.one_of(st.none(), st.integers(0, 50_000)),
    keep_latest=st.booleans(),
)


def _facts(
    rows: list[tuple[str, str, float, bool, float | None, str | None, int]],
) -> list[ArtifactFacts]:
    versions: dict[str, int] = {}
    out = []
    for i, (name, kind, age, pinned, quality, outcome, blob) in enumerate(rows, start=1):
        versions[name] = versions.get(name, 0) + 1
        out.append(
            ArtifactFacts(i, name, versions[name], kind, NOW - age, pinned, quality, outcome, blob)
        )
    return out


@given(
    facts_strategy,
    policy_strategy,
    st.one_of(st.none(), st.floats(0, 1)),
    st.frozensets(st.integers(1, 40)),
)
def test_retention_never_plans_to_delete_a_protected_artifact(
    rows: list[tuple[str, str, float, bool, float | None, str | None, int]],
    policy: RetentionPolicy,
    threshold: float | None,
    live: frozenset[int],
) -> None:
    artifacts = _facts(rows)
    blob_chunks = {blob: [blob * 10 + k for k in range(blob + 1)] for blob in range(6)}
    chunk_sizes = {
        chunk: 1000 * (chunk % 7 + 1) for chunks in blob_chunks.values() for chunk in chunks
    }
    plan = plan_retention(
        artifacts,
        policy,
        now=NOW,
        quality_threshold=threshold,
        live=live,
        blob_chunks=blob_chunks,
        chunk_sizes=chunk_sizes,
    )
    by_id = {a.id: a for a in artifacts}
    latest = {a.name: max(b.version for b in artifacts if b.name == a.name) for a in artifacts}
    deleted = [d.artifact_id for d in plan.deletions]
    assert len(deleted) == len(set(deleted))
    for artifact_id in deleted:
        a = by_id[artifact_id]
        reasons = protection_reasons(
            artifact_id=a.id,
            kind=a.kind,
            pinned=a.pinned,
            quality=a.quality,
            outcome=a.outcome,
            quality_threshold=threshold,
            live=live,
        )
        assert reasons == ()
        assert not a.pinned
        assert not (a.kind == "suggestion" and a.outcome == "accepted")
        assert a.id not in live
        if policy.keep_latest:
            assert a.version != latest[a.name]
    for deletion in plan.deletions:
        a = by_id[deletion.artifact_id]
        if deletion.reason == "age":
            assert policy.max_age is not None
            assert a.created_at < NOW - policy.max_age
        elif deletion.reason == "versions":
            assert policy.keep_versions is not None
            newer = [b for b in artifacts if b.name == a.name and b.version > a.version]
            assert len(newer) >= policy.keep_versions
    if policy.size_budget is None:
        assert all(d.reason != "budget" for d in plan.deletions)
    assert plan.projected_bytes <= plan.stored_bytes


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArtifactStore]:
    # Durability against power cuts is not what this test is about: skip the fsyncs.
    path = tmp_path_factory.mktemp("stale") / "pit"
    with ArtifactStore.open(path, durability="process") as opened:
        yield opened


_examples = itertools.count()


@given(
    st.lists(
        st.tuples(st.sampled_from(["x", "y"]), st.booleans(), st.booleans(), st.booleans()),
        min_size=1,
        max_size=8,
    ),
    st.integers(1, 3),
)
def test_the_stale_manager_never_deletes_protected_artifacts_from_a_real_store(
    shared_store: ArtifactStore, specs: list[tuple[str, bool, bool, bool]], keep: int
) -> None:
    # One store for all examples (opening one costs more than an example); each example
    # works under its own names and removes them at the end, so the store stays small.
    store = shared_store
    example = next(_examples)
    owner = f"run-{example}"
    protected: dict[str, bytes] = {}
    for i, (name, pinned, accepted, hold) in enumerate(specs):
        data = f"{example} {name} {i}".encode()
        info = store.put(
            data,
            name=f"e{example}-{name}",
            kind="suggestion" if accepted else "code",
            outcome="accepted" if accepted else None,
            pinned=pinned,
            created_at=NOW - (len(specs) - i) * DAY,
        ).artifact
        if hold:
            store.live.hold(owner, [info.id])
        if pinned or accepted or hold:
            protected[info.ref] = data
    manager = StaleManager(
        store,
        retention=RetentionPolicy(max_age=0.5 * DAY, keep_versions=keep, size_budget=0),
        gc_grace=0,
        clock=lambda: NOW,
    )
    manager.run()
    for ref, data in protected.items():
        assert store.get(ref) == data
    store.live.release(owner)
    for info in store.list_artifacts(name_prefix=f"e{example}-"):
        store.delete(info.id, force=True)


# -- retention on a store ------------------------------------------------------------------


def test_keep_versions_and_max_age(store: ArtifactStore) -> None:
    for i in range(6):
        store.put(f"v{i}".encode(), name="n", created_at=NOW - (10 - i) * DAY)
    store.put(b"young", name="m", created_at=NOW - 1 * DAY)
    store.put(b"old", name="old", created_at=NOW - 50 * DAY)
    manager = StaleManager(
        store, retention=RetentionPolicy(keep_versions=3, max_age=30 * DAY), clock=lambda: NOW
    )
    plan = manager.plan_retention()
    assert [(d.ref, d.reason) for d in plan.deletions] == [
        ("n@1", "versions"),
        ("n@2", "versions"),
        ("n@3", "versions"),
    ]
    report = manager.run()
    assert [d.ref for d in report.deleted_artifacts] == ["n@1", "n@2", "n@3"]
    assert [a.version for a in store.versions("n")] == [4, 5, 6]
    # "old" is past max_age but it is the latest version of its name: kept.
    assert store.get("old") == b"old"


def test_size_budget_deletes_oldest_first_until_it_fits(store: ArtifactStore) -> None:
    for i in range(5):
        store.put(random.Random(i).randbytes(10_000), name=f"f{i}", created_at=NOW - (10 - i) * DAY)
        store.put(b"newer", name=f"f{i}", created_at=NOW)
    manager = StaleManager(
        store, retention=RetentionPolicy(size_budget=30_005), clock=lambda: NOW, gc_grace=0
    )
    plan = manager.plan_retention()
    assert plan.stored_bytes == 50_000 + len(b"newer")  # "newer" is one shared content
    assert [d.ref for d in plan.deletions] == ["f0@1", "f1@1"]
    assert plan.projected_bytes == 30_005
    manager.run()
    assert store.stats().stored_bytes == 30_005


def test_protection_is_rechecked_when_deleting(store: ArtifactStore) -> None:
    for i in range(3):
        store.put(f"{i}".encode(), name="n")
    manager = StaleManager(store, retention=RetentionPolicy(keep_versions=1))
    manager.run_slice(max_units=1)  # plans: n@1 and n@2 go
    store.pin("n@1")  # ... but a pin arrives before the deletions run
    while not manager.run_slice(max_units=1).cycle_done:
        pass
    assert [a.version for a in store.versions("n")] == [1, 3]


def test_live_references_protect_until_released(store: ArtifactStore) -> None:
    ids = [store.put(f"{i}".encode(), name="w").artifact.id for i in range(3)]
    store.live.add_provider(lambda: [ids[0]])
    store.live.hold("run-9", [ids[1]])
    manager = StaleManager(store, retention=RetentionPolicy(keep_versions=1))
    assert manager.run().deleted_artifacts == []
    store.live.release("run-9")
    assert [d.ref for d in manager.run().deleted_artifacts] == ["w@2"]


def test_policy_validation() -> None:
    with pytest.raises(InvalidArgument):
        RetentionPolicy(keep_versions=0)
    with pytest.raises(InvalidArgument):
        RetentionPolicy(max_age=-1)
    with pytest.raises(InvalidArgument):
        TierPolicy(warm_level=30)


# -- tiers ------------------------------------------------------------------------------------


def _text(n: int) -> bytes:
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]
    rng = random.Random(n)
    return " ".join(rng.choice(words) for _ in range(n)).encode()


def test_tiers_compress_archive_and_stay_readable(tmp_path: Path) -> None:
    archive = tmp_path / "elsewhere"
    with ArtifactStore.open(tmp_path / "pit", archive_dir=archive) as store:
        hot = _text(20_000)
        warm = _text(30_000)
        cold = _text(200_000)  # chunked, in a pack
        store.put(hot, name="hot", created_at=NOW)
        store.put(warm, name="warm", created_at=NOW - 10 * DAY)
        store.put(cold, name="cold", created_at=NOW - 40 * DAY)
        before = store.stats().stored_bytes
        manager = StaleManager(store, tiers=TierPolicy(), gc_grace=0, clock=lambda: NOW)
        report = manager.run()
        assert report.tier_changes == 2
        assert {a.name: a.tier for a in store.list_artifacts()} == {
            "hot": "hot",
            "warm": "warm",
            "cold": "cold",
        }
        assert store.get("hot") == hot
        assert store.get("warm", verify=True) == warm
        assert store.get("cold", verify=True) == cold
        assert store.stats().stored_bytes < before / 2  # text compresses well
        assert list(archive.rglob("*.pack"))  # cold chunks moved to the archive folder
        assert fsck(store, verify=True).ok
        # A policy with no tiers brings everything back to hot, raw.
        StaleManager(store, tiers=TierPolicy(warm_after=None, cold_after=None), gc_grace=0).run()
        assert {a.tier for a in store.list_artifacts()} == {"hot"}
        assert store.get("cold", verify=True) == cold
        assert store.stats().stored_bytes == before
        assert fsck(store, verify=True).ok


def test_cold_tier_without_archive_stays_in_place(store: ArtifactStore) -> None:
    data = _text(50_000)
    store.put(data, name="c", created_at=NOW - 100 * DAY)
    StaleManager(store, tiers=TierPolicy(archive=False), clock=lambda: NOW).run()
    assert store.stat("c").tier == "cold"
    assert not list(store.layout.iter_pack_files("archive"))
    assert store.get("c", verify=True) == data


# -- garbage collection ------------------------------------------------------------------------


def test_gc_frees_exactly_what_nothing_uses(store: ArtifactStore) -> None:
    shared = random.Random(1).randbytes(600_000)
    store.put(shared + b"one", name="a")
    store.put(shared + b"two", name="b")
    store.put(b"small only in c", name="c")
    before = store.stats()
    store.delete("a")
    store.delete("c")
    report = StaleManager(store, gc_grace=0).gc()
    after = store.stats()
    assert report.blobs_collected == 2
    assert after.blobs == 1
    assert store.get("b", verify=True) == shared + b"two"
    # Only the chunks unique to "a" (its tail) and "c" went.
    assert 0 < before.stored_bytes - after.stored_bytes < 100_000
    assert report.chunks_collected == before.chunks - after.chunks
    report = fsck(store, verify=True)
    assert report.ok
    assert not report.collectable


def test_gc_waits_out_the_grace_period(store: ArtifactStore) -> None:
    store.put(b"to be deleted", name="x")
    store.delete("x")
    clock = [NOW]
    manager = StaleManager(store, gc_grace=3600, clock=lambda: clock[0])
    first = manager.gc()
    assert first.blobs_collected == 1
    assert first.chunks_marked == 1
    assert first.chunks_collected == 0
    clock[0] += 1800
    assert manager.gc().chunks_waiting == 1
    clock[0] += 1801
    assert manager.gc().chunks_collected == 1
    assert store.stats().chunks == 0


def test_a_chunk_put_again_during_the_grace_period_is_kept(store: ArtifactStore) -> None:
    store.put(b"comes back", name="x")
    store.delete("x")
    clock = [NOW]
    manager = StaleManager(store, gc_grace=60, clock=lambda: clock[0])
    manager.gc()  # marks the chunk
    store.put(b"comes back", name="y")
    clock[0] += 120
    assert manager.gc().chunks_collected == 0
    assert store.get("y") == b"comes back"


def test_dry_run_changes_nothing(store: ArtifactStore) -> None:
    for i in range(4):
        store.put(random.Random(i).randbytes(300_000), name="n", created_at=NOW - i)
    store.delete("n@1")
    (store.layout.tmp / "stray.tmp").write_bytes(b"left by a crash")
    os.utime(store.layout.tmp / "stray.tmp", (NOW - 7200, NOW - 7200))
    manager = StaleManager(
        store, retention=RetentionPolicy(keep_versions=1), gc_grace=0, clock=lambda: NOW
    )
    before = store.stats()
    report = manager.run(dry_run=True)
    assert [d.ref for d in report.deleted_artifacts] == ["n@2", "n@3"]
    assert report.blobs_collected == 1
    assert report.chunks_collected > 0
    assert report.files_deleted == 1
    assert store.stats() == before
    assert (store.layout.tmp / "stray.tmp").exists()
    real = manager.run()
    assert [d.ref for d in real.deleted_artifacts] == ["n@2", "n@3"]
    assert not (store.layout.tmp / "stray.tmp").exists()


def test_orphan_packs_go_only_after_the_grace_period(store: ArtifactStore) -> None:
    store.put(random.Random(5).randbytes(500_000), name="keep")
    orphan = store.layout.objects / "ab" / ("ab" + "0" * 30 + ".pack")
    orphan.parent.mkdir(exist_ok=True)
    orphan.write_bytes(b"SYMPACK1 written by a put that died before its commit")
    report = fsck(store)
    assert report.ok
    assert [p.code for p in report.collectable] == ["orphan-pack"]
    clock = [time.time()]
    manager = StaleManager(store, gc_grace=3600, clock=lambda: clock[0])
    manager.gc()
    assert orphan.exists()
    clock[0] += 7200
    manager.gc()
    assert not orphan.exists()
    assert store.get("keep") == random.Random(5).randbytes(500_000)


def test_sparse_packs_are_compacted(store: ArtifactStore) -> None:
    blobs = [random.Random(i).randbytes(100_000) for i in range(6)]
    upload = store.upload()
    for data in blobs:
        upload.write(data)
    whole = b"".join(blobs)
    store.put(whole, name="whole")
    store.put(whole[:150_000] + b"x", name="part")
    upload.abort()
    store.delete("whole")
    report = StaleManager(store, gc_grace=0).gc()
    assert report.packs_compacted + report.packs_deleted >= 1
    assert store.get("part", verify=True) == whole[:150_000] + b"x"
    stats = store.stats()
    assert stats.pack_bytes <= 2 * stats.stored_bytes
    assert fsck(store, verify=True).ok


def test_slices_are_bounded_and_reach_the_same_result(tmp_path: Path) -> None:
    results = []
    for max_units in (3, 10_000):
        with ArtifactStore.open(tmp_path / f"s{max_units}") as store:
            for i in range(30):
                store.put(
                    random.Random(i).randbytes(5_000 + i), name=f"n{i % 3}", created_at=NOW - i
                )
            manager = StaleManager(
                store, retention=RetentionPolicy(keep_versions=2), gc_grace=0, clock=lambda: NOW
            )
            slices = 0
            while True:
                step = manager.run_slice(max_units=max_units)
                slices += 1
                assert step.units <= max_units + 1
                if step.cycle_done:
                    break
            results.append(
                (
                    slices,
                    sorted(a.ref for a in store.list_artifacts(limit=1000)),
                    store.stats().chunks,
                )
            )
    (small_slices, refs_small, chunks_small), (big_slices, refs_big, chunks_big) = results
    assert small_slices > big_slices
    assert refs_small == refs_big
    assert chunks_small == chunks_big == 6


def test_a_put_that_outlives_the_grace_period_is_told_to_retry(store: ArtifactStore) -> None:
    base = random.Random(3).randbytes(500_000)
    store.put(base, name="old")
    upload = store.upload()
    upload.write(base)  # step 1 finds every chunk present, referenced, and relies on them
    store.delete("old")
    StaleManager(store, gc_grace=0).gc()  # a zero grace period: the chunks go at once
    with pytest.raises(PutConflict):
        upload.commit(name="new")
    assert store.put(base, name="new").artifact.ref == "new@1"  # a retry succeeds
    assert store.get("new") == base
