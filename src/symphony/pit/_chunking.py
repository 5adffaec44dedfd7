"""Content-defined chunking, fast in pure Python.

Theory of operation
-------------------
Content-defined chunking (CDC) cuts a byte stream where the *content* says so, not at fixed
offsets, so an edit moves only the cut points next to it and two near-identical versions of a
file share every chunk away from the edit. The textbook way (a Gear or Rabin hash rolled over
every byte, as FastCDC does) costs one interpreter step per byte: ~290 ms per MB in CPython,
slower than writing the bytes to disk. So the decision is split in two stages, each run by C code
over the whole buffer, and Python only walks the accepted candidates (a few hundred per MB):

1. **Anchor.** ``bytes.translate`` maps every byte to one of 32 symbols (``_SYMBOLS``) and
   ``bytes.split`` finds every occurrence of the two-symbol anchor ``_ANCHOR``. Each symbol has
   exactly 8 byte values, so on uniform data an anchor starts at a position with probability
   1/1024; the byte values were dealt to symbols by their frequency in source code, JSON and
   Markdown, so text sees close to the same rate (the anchor was chosen as the one whose rate is
   most even across those corpora).
2. **Hash.** An anchor ending at ``e`` is accepted when ``crc32(data[e - 50 : e])`` has its two
   low bits zero (``_MASK``). An anchor alone is bursty on text: it follows particular words, so
   matches come in clumps and leave long gaps, which makes big chunks and poor sharing. Hashing
   the 48 bytes of context before it spreads the accepted anchors out like a rolling hash would.
   ``map``/``compress`` over slices keep this stage in C as well.

Chunks then follow the usual rule: a chunk ends at the first accepted anchor at least
``MIN_CHUNK`` bytes after its start, or after ``MAX_CHUNK`` bytes if none comes. Whether a
position is an accepted anchor depends only on the 50 bytes before it, never on where the chunk
began, so boundaries re-synchronise right after an edit.

Measured on the build machine (2 cores, shared): byte-by-byte Gear ~290 ms per MB; this chunker
~4-5 ms per MB on Python source and on random bytes; average chunk 6-9 KiB on source code and
Markdown, ~6 KiB on random bytes, larger on repetitive JSON. ``docs/pit.md`` has the table of
the variants measured (one-stage anchors, 16- and 8-symbol alphabets, per-line CRCs).

The parameters are part of the store format: a different table, anchor, window or mask cuts
differently, so new versions would stop sharing chunks with old ones (never a correctness
problem, only a deduplication one). ``CHUNKER_ID`` names them and each store records it.
"""

from __future__ import annotations

import zlib
from bisect import bisect_left
from collections.abc import Iterator
from itertools import accumulate, compress, repeat
from operator import add, and_, not_, sub
from typing import Final

__all__ = [
    "CHUNKER_ID",
    "MAX_CHUNK",
    "MIN_CHUNK",
    "WINDOW",
    "Chunker",
    "chunk_bounds",
    "iter_chunks",
]

# Tuning constants (part of the store format; see the module docstring).
MIN_CHUNK: Final = 2 * 1024
MAX_CHUNK: Final = 64 * 1024
WINDOW: Final = 50  # bytes (ending with the anchor) that the acceptance hash covers
_MASK: Final = 0x03  # accept 1 anchor in 4: one candidate cut per ~4 KiB on uniform data

CHUNKER_ID: Final = "sym32-crc50-v1/2k-64k"

# Byte value -> symbol 0..31. Each symbol has exactly 8 byte values (uniform data sees every
# symbol with probability 1/32); byte values were ranked by frequency in a corpus of Python, C,
# JSON and Markdown and dealt to symbols in snake order, so text sees them roughly evenly too.
_SYMBOLS: Final = bytes.fromhex(
    "1b1c1d1e1f1f1e1d1c11091b1a191817161514131211100f0e0d0c0b0a090807"
    "00150d0d0b191f131e1d091412161c12190a0105070f0a13020e14020d03041f"
    "1b1b060f07190817031b1a0c16051a111f1c18101d0001100800180b160c1d11"
    "17081e0a0c010f151a0309040b13050410120706020e1c0e181f061517141806"
    "1e051a01040303020202010c030000011102030d1e040d0e050a040514060601"
    "0707080f0c090910111912060b081314051504001008090a0f0b070c130e1516"
    "0d0e171c0a0f101117121300141516171b1218191a1b1c161d1e1f1f1e1d1c1b"
    "1a191d1818170b16191514131211101a0f0e0d0c0b0a09080706050403020100"
)
_TABLE: Final = bytes.maketrans(bytes(range(256)), _SYMBOLS)
# Two different symbols: occurrences never overlap, which is what lets `bytes.split` find all.
_ANCHOR: Final = b"\x0b\x0e"
_ANCHOR_LEN: Final = len(_ANCHOR)


def _accepted_ends(data: bytes, lo: int) -> list[int]:
    """End offsets (into ``data``) of the accepted anchors that start at or after ``lo``.

    An anchor is accepted by ``data[end - WINDOW : end]`` alone (or ``data[:end]`` in the first
    ``WINDOW`` bytes): that is what makes the set a property of the content, the same whichever
    buffer it is computed from, provided the buffer holds those bytes.
    """
    parts = data[lo:].translate(_TABLE).split(_ANCHOR)
    if len(parts) == 1:
        return []
    # The k-th anchor ends at lo + sum(len(parts[j]) + 2 for j <= k); the last part has none.
    ends = list(accumulate(map(add, map(len, parts), repeat(_ANCHOR_LEN)), initial=lo))[1:-1]
    first_full = bisect_left(ends, WINDOW)
    head = [end for end in ends[:first_full] if not zlib.crc32(data[:end]) & _MASK]
    tail = ends[first_full:]
    windows = map(data.__getitem__, map(slice, map(sub, tail, repeat(WINDOW)), tail))
    accepted = compress(tail, map(not_, map(and_, map(zlib.crc32, windows), repeat(_MASK))))
    return head + list(accepted)


def _next_cut(cuts: list[int], start: int, available: int, final: bool) -> int | None:
    """Where the chunk starting at ``start`` ends, or None while more data could change it.

    ``cuts`` are the sorted accepted anchor ends among the first ``available`` bytes.
    """
    i = bisect_left(cuts, start + MIN_CHUNK)
    if i < len(cuts) and cuts[i] - start <= MAX_CHUNK:
        return cuts[i]
    if available - start >= MAX_CHUNK:
        return start + MAX_CHUNK
    if final and available > start:
        return available
    return None


def chunk_bounds(data: bytes) -> list[int]:
    """End offsets of the chunks of ``data`` (the last is ``len(data)``; none if it is empty).

    Invariants:
        - offsets are strictly increasing and the last equals ``len(data)``;
        - every chunk has at most ``MAX_CHUNK`` bytes, and at least ``MIN_CHUNK`` but the last;
        - the result equals what `Chunker` produces for the same bytes fed in any pieces.
    """
    n = len(data)
    cuts = _accepted_ends(data, 0)
    bounds: list[int] = []
    start = 0
    while (end := _next_cut(cuts, start, n, final=True)) is not None:
        bounds.append(end)
        start = end
    return bounds


def iter_chunks(data: bytes) -> Iterator[memoryview]:
    """The chunks of ``data``, as zero-copy views."""
    view = memoryview(data)
    start = 0
    for end in chunk_bounds(data):
        yield view[start:end]
        start = end


class Chunker:
    """Streaming form of `chunk_bounds`: feed bytes in any pieces, get the same chunks.

    It keeps the undecided tail (at most ``MAX_CHUNK`` bytes plus what the last `feed` brought)
    and the ``WINDOW`` bytes before it, which the acceptance hash of later anchors reads.

    Invariants:
        - ``_buf`` holds the bytes from absolute offset ``_base``, and ``_base == 0`` or
          ``_base <= _start - WINDOW``: the hash context of every anchor that can still end a
          chunk is in the buffer;
        - ``_cuts`` holds every accepted anchor end in ``(_start, _base + len(_buf)]``.
    """

    def __init__(self) -> None:
        self._buf = b""
        self._base = 0
        self._start = 0
        self._cuts: list[int] = []

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Add bytes; return the chunks now complete (possibly none)."""
        if not data:
            return []
        scanned = self._base + len(self._buf)
        self._buf += bytes(data)
        return self._drain(scanned, final=False)

    def finish(self) -> list[bytes]:
        """End of input: return the remaining chunks (the last may be short)."""
        chunks = self._drain(self._base + len(self._buf), final=True)
        self._buf = b""
        self._base = self._start
        return chunks

    def _drain(self, scanned: int, final: bool) -> list[bytes]:
        # Rescan from one byte back: an anchor may straddle the old end of the buffer. Anchors
        # ending at or before `scanned` were found by an earlier call.
        lo = max(scanned - (_ANCHOR_LEN - 1), self._base)
        self._cuts.extend(
            end + self._base
            for end in _accepted_ends(self._buf, lo - self._base)
            if end + self._base > scanned
        )
        available = self._base + len(self._buf)
        chunks: list[bytes] = []
        while (end := _next_cut(self._cuts, self._start, available, final)) is not None:
            chunks.append(self._buf[self._start - self._base : end - self._base])
            self._start = end
        del self._cuts[: bisect_left(self._cuts, self._start + 1)]
        keep_from = max(self._base, self._start - WINDOW)
        if keep_from > self._base:
            self._buf = self._buf[keep_from - self._base :]
            self._base = keep_from
        return chunks
