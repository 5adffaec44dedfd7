"""Content-defined chunking: boundary invariants, streaming equivalence, shift resistance."""

from __future__ import annotations

import random
import sysconfig
from collections import Counter
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from symphony.pit._chunking import (
    _SYMBOLS,
    MAX_CHUNK,
    MIN_CHUNK,
    Chunker,
    chunk_bounds,
    iter_chunks,
)


def _check_bounds(data: bytes, bounds: list[int]) -> None:
    if not data:
        assert bounds == []
        return
    assert bounds[-1] == len(data)
    sizes = [end - start for start, end in zip([0, *bounds], bounds, strict=False)]
    assert all(size > 0 for size in sizes)
    assert all(size <= MAX_CHUNK for size in sizes)
    assert all(size >= MIN_CHUNK for size in sizes[:-1])


def test_symbol_table_is_balanced() -> None:
    # Every symbol has exactly 8 byte values: uniform data sees every symbol equally often.
    assert len(_SYMBOLS) == 256
    assert Counter(_SYMBOLS) == {symbol: 8 for symbol in range(32)}


@given(st.binary(max_size=300_000))
def test_bounds_invariants_on_arbitrary_bytes(data: bytes) -> None:
    _check_bounds(data, chunk_bounds(data))


@given(st.integers(0, 2**32 - 1), st.integers(0, 600_000))
def test_bounds_invariants_on_random_and_repetitive_data(seed: int, size: int) -> None:
    rng = random.Random(seed)
    random_data = rng.randbytes(size)
    _check_bounds(random_data, chunk_bounds(random_data))
    # Long runs of one byte never hit an anchor: every chunk is cut at MAX_CHUNK.
    run = b"a" * size
    bounds = chunk_bounds(run)
    _check_bounds(run, bounds)
    assert all(end % MAX_CHUNK == 0 for end in bounds[:-1])


@given(
    st.integers(0, 2**32 - 1),
    st.integers(0, 400_000),
    st.lists(st.integers(1, 150_000), min_size=1, max_size=12),
)
def test_streaming_equals_one_shot(seed: int, size: int, pieces: list[int]) -> None:
    data = random.Random(seed).randbytes(size)
    chunker = Chunker()
    out: list[bytes] = []
    position = 0
    for piece in pieces:
        out += chunker.feed(data[position : position + piece])
        position += piece
    out += chunker.feed(data[position:])
    out += chunker.finish()
    assert b"".join(out) == data
    assert [len(c) for c in out] == [
        end - start
        for start, end in zip([0, *chunk_bounds(data)], chunk_bounds(data), strict=False)
    ]


def test_iter_chunks_are_views_of_the_data() -> None:
    data = random.Random(1).randbytes(200_000)
    chunks = list(iter_chunks(data))
    assert b"".join(chunks) == data
    assert len(chunks) == len(chunk_bounds(data))


def _source_text() -> bytes:
    """About 1.5 MB of real Python source: the standard library's larger modules."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    names = ["argparse.py", "typing.py", "inspect.py", "ast.py", "pathlib.py", "subprocess.py"]
    names += ["tarfile.py", "zipfile.py", "enum.py", "dataclasses.py", "pydoc.py", "doctest.py"]
    return b"".join((stdlib / name).read_bytes() for name in names)


def test_an_insertion_changes_only_nearby_chunks() -> None:
    before = _source_text()
    middle = len(before) // 2
    after = before[:middle] + b"\n    inserted = 'a new line'\n" + before[middle:]
    chunks_before = {bytes(c) for c in iter_chunks(before)}
    chunks_after = [bytes(c) for c in iter_chunks(after)]
    new = [c for c in chunks_after if c not in chunks_before]
    # The edit touches one chunk, occasionally two when it moves a boundary.
    assert 1 <= len(new) <= 3
    assert sum(len(c) for c in new) <= 3 * MAX_CHUNK


def test_average_chunk_size_is_a_few_kib() -> None:
    for data in (random.Random(3).randbytes(4_000_000), _source_text()):
        average = len(data) / len(chunk_bounds(data))
        assert 3 * 1024 <= average <= 16 * 1024, average
