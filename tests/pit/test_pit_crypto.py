"""Encryption at rest: round trips, keys, and tampering that must fail loudly."""

from __future__ import annotations

import base64
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from symphony.pit import (
    EncryptionMismatch,
    InvalidKey,
    KeyRequired,
    TamperedData,
    WrongKey,
)
from symphony.pit.artifacts import ArtifactStore, fsck, load_key, parse_key, write_key_file

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ArtifactStore]:
    with ArtifactStore.open(tmp_path / "vault", key=KEY) as opened:
        yield opened


def all_bytes_on_disk(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def test_round_trips_and_nothing_readable_on_disk(store: ArtifactStore) -> None:
    small = b"TOP-SECRET small artifact " * 10
    large = b"TOP-SECRET large artifact " * 40_000
    assert store.encrypted
    assert store.get(store.put(small, name="small").content_id) == small
    assert store.get(store.put(large, name="large").content_id, verify=True) == large
    store.checkpoint()
    assert b"TOP-SECRET" not in all_bytes_on_disk(store.root)
    assert fsck(store, verify=True).ok


def test_deduplication_works_under_encryption(store: ArtifactStore) -> None:
    data = random.Random(1).randbytes(500_000)
    store.put(data, name="a")
    again = store.put(data + b"!", name="b")
    assert again.new_chunks <= 2


def test_keys_are_checked_when_opening(tmp_path: Path, store: ArtifactStore) -> None:
    store.put(b"x", name="x")
    with pytest.raises(KeyRequired):
        ArtifactStore.open(store.root, use_environment=False)
    with pytest.raises(WrongKey):
        ArtifactStore.open(store.root, key=OTHER_KEY)
    ArtifactStore.open(tmp_path / "plain-then-key", use_environment=False).close()
    with pytest.raises(EncryptionMismatch):
        ArtifactStore.open(tmp_path / "plain-then-key", key=KEY)
    with ArtifactStore.open(store.root, key=KEY.hex()) as again:
        assert again.get("x") == b"x"


def test_a_flipped_byte_in_an_inline_chunk_is_detected(store: ArtifactStore) -> None:
    cid = store.put(b"inline secret " * 50, name="inline").content_id
    with sqlite3.connect(store.layout.db_path) as db:
        (data,) = db.execute("SELECT data FROM chunks").fetchone()
        tampered = bytearray(data)
        tampered[len(tampered) // 2] ^= 0x01
        db.execute("UPDATE chunks SET data = ?", (bytes(tampered),))
    with pytest.raises(TamperedData, match="authentication failed"):
        store.get(cid)
    report = fsck(store, verify=True)
    assert [p.code for p in report.errors] == ["unreadable"]


def test_a_flipped_byte_in_a_pack_is_detected(store: ArtifactStore) -> None:
    data = random.Random(2).randbytes(1_200_000)
    store.put(data, name="packed")
    (pack,) = list(store.layout.iter_pack_files("objects"))
    raw = bytearray(pack.read_bytes())
    raw[len(raw) // 2] ^= 0x80
    pack.write_bytes(bytes(raw))
    with pytest.raises(TamperedData):
        store.get("packed")
    with pytest.raises(TamperedData):
        b"".join(store.iter_content("packed"))


def test_records_swapped_between_chunks_are_detected(store: ArtifactStore) -> None:
    # Each record is bound to its chunk's hash: moving a valid record elsewhere fails too.
    store.put(b"first secret", name="one")
    store.put(b"second secret", name="two")
    with sqlite3.connect(store.layout.db_path) as db:
        rows = db.execute("SELECT id, data, stored_size FROM chunks ORDER BY id").fetchall()
        (id1, _, _), (_, data2, n2) = rows
        db.execute("UPDATE chunks SET data = ?, stored_size = ? WHERE id = ?", (data2, n2, id1))
    with pytest.raises(TamperedData):
        store.get("one")
    assert store.get("two") == b"second secret"


def test_a_store_opened_with_the_wrong_key_file_fails_before_reading(tmp_path: Path) -> None:
    key_file = tmp_path / "k"
    write_key_file(key_file)
    assert key_file.stat().st_mode & 0o777 == 0o600
    with pytest.raises(FileExistsError):
        write_key_file(key_file)
    with ArtifactStore.open(tmp_path / "s", key_file=key_file) as s:
        s.put(b"data", name="d")
    other = tmp_path / "other"
    write_key_file(other)
    with pytest.raises(WrongKey):
        ArtifactStore.open(tmp_path / "s", key_file=other)


def test_key_material_formats() -> None:
    assert parse_key(KEY) == KEY
    assert parse_key(KEY.hex()) == KEY
    assert parse_key(KEY.hex().upper() + "\n") == KEY
    assert parse_key(base64.b64encode(KEY).decode()) == KEY
    assert parse_key(base64.b64encode(KEY)) == KEY
    for bad in (b"short", "zz" * 32, base64.b64encode(b"x" * 31).decode(), b"\xff" * 40):
        with pytest.raises(InvalidKey):
            parse_key(bad)


def test_keys_from_the_environment(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(OTHER_KEY.hex())
    assert load_key(environ={"SYMPHONY_PIT_KEY": KEY.hex()}) == KEY
    assert load_key(environ={"SYMPHONY_PIT_KEY_FILE": str(key_file)}) == OTHER_KEY
    assert load_key(environ={}) is None
    # An explicit key wins over the environment.
    assert load_key(key=OTHER_KEY, environ={"SYMPHONY_PIT_KEY": KEY.hex()}) == OTHER_KEY
