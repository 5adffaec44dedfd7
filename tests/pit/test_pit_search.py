"""Full-text search: content of latest versions, metadata of every version, queries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from symphony.pit import InvalidArgument, InvalidQuery
from symphony.pit.artifacts import ArtifactStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ArtifactStore]:
    with ArtifactStore.open(tmp_path / "pit") as opened:
        yield opened


def refs(hits: list) -> list[str]:  # type: ignore[type-arg]
    return sorted(hit.artifact.ref for hit in hits)


def test_content_of_the_latest_version_is_found(store: ArtifactStore) -> None:
    store.put(b"def compute_total(items):\n    return sum(items)\n", name="calc.py", kind="code")
    store.put(b"The quick brown fox jumps over the lazy dog.\n", name="readme.md")
    hits = store.search("compute_total")
    assert refs(hits) == ["calc.py@1"]
    assert hits[0].matched == "content"
    assert "[compute_total]" in hits[0].snippet
    assert refs(store.search("quick fox")) == ["readme.md@1"]
    assert refs(store.search("qui*")) == ["readme.md@1"]
    assert store.search("fox compute_total") == []


def test_only_the_latest_version_content_is_indexed(store: ArtifactStore) -> None:
    store.put(b"old wording: banana\n", name="doc.txt")
    store.put(b"new wording: cherry\n", name="doc.txt")
    assert refs(store.search("cherry")) == ["doc.txt@2"]
    assert store.search("banana") == []
    store.delete("doc.txt@2")
    # doc.txt@1 is the latest again: its content comes back into the index.
    assert refs(store.search("banana")) == ["doc.txt@1"]
    assert store.search("cherry") == []


def test_metadata_of_every_version_is_found(store: ArtifactStore) -> None:
    store.put(b"\x00binary", name="model.bin", kind="checkpoint", producer="workflow:train/step3")
    store.put(b"\x00binary2", name="model.bin", kind="checkpoint", tags=["nightly"])
    store.put(b"x", name="other", meta={"experiment": "zebra-run", "epochs": 12})
    assert refs(store.search("train")) == ["model.bin@1"]
    assert refs(store.search("nightly")) == ["model.bin@2"]
    assert refs(store.search("zebra")) == ["other@1"]
    # Both versions match the name; by default only the newest matching one is returned.
    assert refs(store.search("model")) == ["model.bin@2"]
    assert refs(store.search("model", all_versions=True)) == ["model.bin@1", "model.bin@2"]
    assert [h.matched for h in store.search("zebra")] == ["metadata"]


def test_tags_added_later_are_searchable(store: ArtifactStore) -> None:
    store.put(b"content", name="a")
    assert store.search("important") == []
    store.tag("a", "important")
    assert refs(store.search("important")) == ["a@1"]
    store.untag("a", "important")
    assert store.search("important") == []


def test_kind_filter_and_limit(store: ArtifactStore) -> None:
    for i in range(5):
        store.put(f"shared word {i}".encode(), name=f"log/{i}", kind="log")
    store.put(b"shared word code", name="code.py", kind="code")
    assert len(store.search("shared")) == 6
    assert refs(store.search("shared", kind="code")) == ["code.py@1"]
    assert len(store.search("shared", limit=2)) == 2


def test_binary_content_is_not_indexed_but_its_metadata_is(store: ArtifactStore) -> None:
    store.put(b"findme\x00\xff\xfe", name="blob-findme-name")
    hits = store.search("findme")
    assert [h.matched for h in hits] == ["metadata"]


def test_raw_queries_and_their_errors(store: ArtifactStore) -> None:
    store.put(b"alpha beta gamma", name="greek")
    store.put(b"alpha delta", name="greek2")
    assert refs(store.search('"alpha beta"', raw=True)) == ["greek@1"]
    assert refs(store.search("beta OR delta", raw=True)) == ["greek2@1", "greek@1"]
    assert refs(store.search("alpha NOT delta", raw=True)) == ["greek@1"]
    with pytest.raises(InvalidQuery):
        store.search('"unbalanced', raw=True)
    with pytest.raises(InvalidArgument):
        store.search("   ")
    # Without raw, FTS5 syntax characters are just text.
    assert store.search('"unbalanced') == []


def test_large_text_is_indexed_up_to_a_limit(store: ArtifactStore) -> None:
    body = ("lorem ipsum dolor sit amet " * 40_000).encode()  # ~1 MB of text, chunked
    store.put(body + b"uniqueendword", name="big.txt")
    assert refs(store.search("dolor")) == ["big.txt@1"]
    assert refs(store.search("uniqueendword")) == ["big.txt@1"]
    assert store.index_pending() == 0  # search already brought the index up to date


def test_encrypted_stores_never_index_content(tmp_path: Path) -> None:
    with ArtifactStore.open(tmp_path / "enc", key=b"k" * 32) as store:
        store.put(b"secret plan words", name="plan.txt", tags=["visible"])
        assert store.search("secret") == []
        assert refs(store.search("visible")) == ["plan.txt@1"]
