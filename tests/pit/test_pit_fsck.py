"""fsck: a healthy store is ok; damage is an error; crash leftovers are only collectable."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from symphony.pit import MissingData
from symphony.pit.artifacts import ArtifactStore, fsck


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ArtifactStore]:
    with ArtifactStore.open(tmp_path / "pit") as opened:
        opened.put(b"small one", name="small")
        opened.put(random.Random(1).randbytes(900_000), name="large")
        opened.put(b"another", name="small")
        yield opened


def codes(problems: list) -> list[str]:  # type: ignore[type-arg]
    return sorted(p.code for p in problems)


def raw_db(store: ArtifactStore) -> sqlite3.Connection:
    # Damage the database behind the store's back, as a disk error or a hand edit would.
    conn = sqlite3.connect(store.layout.db_path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys = OFF")
    return conn


def test_a_healthy_store_is_ok(store: ArtifactStore) -> None:
    report = fsck(store, verify=True)
    assert report.ok
    assert report.errors == []
    assert report.collectable == []
    assert report.checked["artifacts"] == 3
    assert report.checked["verified"] == 3


def test_leftovers_of_a_crash_are_collectable_not_errors(store: ArtifactStore) -> None:
    (store.layout.tmp / "deadbeef.tmp").write_bytes(b"half a pack")
    orphan = store.layout.objects / "cd" / ("cd" * 16 + ".pack")
    orphan.parent.mkdir(exist_ok=True)
    orphan.write_bytes(b"SYMPACK1 never committed")
    store.delete("small@1")
    report = fsck(store)
    assert report.ok
    assert codes(report.collectable) == ["orphan-pack", "temp-file", "unreferenced-content"]


def test_a_missing_pack_is_an_error(store: ArtifactStore) -> None:
    (pack,) = list(store.layout.iter_pack_files("objects"))
    pack.unlink()
    report = fsck(store)
    assert not report.ok
    assert codes(report.errors) == ["missing-pack"]
    with pytest.raises(MissingData):
        store.get("large")


def test_a_truncated_pack_is_an_error(store: ArtifactStore) -> None:
    (pack,) = list(store.layout.iter_pack_files("objects"))
    with pack.open("r+b") as file:
        file.truncate(pack.stat().st_size // 2)
    assert codes(fsck(store).errors) == ["pack-short", "pack-size"]
    with pytest.raises(MissingData):
        store.get("large")


def test_flipped_bytes_are_found_by_verify(store: ArtifactStore) -> None:
    (pack,) = list(store.layout.iter_pack_files("objects"))
    with pack.open("r+b") as file:
        file.seek(500_000)
        byte = file.read(1)
        file.seek(500_000)
        file.write(bytes([byte[0] ^ 0xFF]))
    assert fsck(store).ok  # sizes and references are intact ...
    report = fsck(store, verify=True)  # ... but the bytes are not
    assert codes(report.errors) == ["chunk-hash", "content-hash"]


def test_dangling_metadata_is_an_error(store: ArtifactStore) -> None:
    with raw_db(store) as conn:
        conn.execute("DELETE FROM chunks WHERE id = (SELECT max(id) FROM chunks)")
    report = fsck(store)
    assert "dangling-reference" in codes(report.errors)
    assert "missing-chunk" in codes(report.errors)


def test_a_wrong_head_is_an_error(store: ArtifactStore) -> None:
    with raw_db(store) as conn:
        conn.execute("UPDATE names SET head = (SELECT min(id) FROM artifacts) WHERE name = 'small'")
    assert codes(fsck(store).errors) == ["name-head"]
