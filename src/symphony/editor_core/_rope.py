"""A persistent rope: a balanced B-tree of text chunks with cached metrics.

Theory of operation
-------------------
The text lives in leaves, each a Python ``str`` of at most ``MAX_LEAF`` code points. Internal
nodes hold up to ``MAX_CHILDREN`` children, and every leaf sits at the same depth (a B-tree, as in
xi-rope and Ropey). Every node caches a summary of its subtree: code points, UTF-8 bytes, UTF-16
code units and line breaks. Summaries form a monoid under addition, so a parent's summary is the
sum of its children's, and finding "the leaf holding code point N" or "the start of line L" is a
walk from the root that bisects each node's prefix sums of one metric.

Nodes are never mutated after they are built (the lazily computed prefix sums are a cache of
immutable data). An edit copies the path from the root to the leaf it touches and shares every
other node with the old rope, so an edit costs O(log n) and a snapshot is free: keep the old
``Rope``. Small edits inside one leaf take a fast path that copies only that path; everything
else (edits across leaves, leaves that overflow or underflow, inserts of long text) goes through
``_prefix``/``_suffix``/``_concat``, the split-and-join algorithm of xi-rope's ``Node::concat``.

Line breaks are ``\\n``, ``\\r\\n`` and ``\\r`` (LSP 3.17). ``\\r\\n`` is one break: leaves are never
split between ``\\r`` and ``\\n``, which is what keeps line counts additive across leaves.

Positions: offsets are code points (what ``len(str)`` counts). ``offset_at``/``position_at``
convert to and from LSP ``(line, character)`` in UTF-8, UTF-16 or UTF-32 units; this is the one
place in Symphony where position encodings are converted.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from itertools import accumulate, pairwise
from operator import attrgetter
from typing import Final, Literal

__all__ = ["ENCODINGS", "Encoding", "Rope"]

Encoding = Literal["utf-8", "utf-16", "utf-32"]
ENCODINGS: Final[tuple[Encoding, ...]] = ("utf-8", "utf-16", "utf-32")

# Tuning constants. Leaves between MIN_LEAF and MAX_LEAF code points keep line lookups short
# (a leaf holds a few dozen lines of code) while a 100 MB text has only ~5 * 10^4 leaves: the
# build's cost is per leaf, an edit's barely depends on the leaf size (measured: 1 K and 2 K
# leaves, 8 to 48 children, edits within noise of each other; 2 K builds ~40% faster).
# Building packs leaves to BUILD_LEAF so that typing into a fresh rope rarely splits one.
# Tests shrink these (they are read at call time) to exercise deep trees on small texts.
MIN_LEAF = 1024
MAX_LEAF = 4096
BUILD_LEAF = 2048
MIN_CHILDREN = 8
MAX_CHILDREN = 32

_BREAK = re.compile(r"\r\n|\r|\n")


class _Node:
    """A node of the tree: a leaf (``height == 0``, ``text`` set) or a branch (``children``).

    Invariants:
        - every leaf of a tree is at the same depth: ``child.height == node.height - 1``;
        - a branch has 1 to ``MAX_CHILDREN`` children; a leaf has at most ``MAX_LEAF`` code
          points and is empty only when it is the whole (empty) text;
        - ``chars``, ``utf8``, ``utf16``, ``lines`` equal the sums over the subtree's text;
        - no two adjacent leaves split a ``\\r\\n`` pair (so ``lines`` sums across leaves);
        - a node is never mutated once built; ``_ends_*`` only cache prefix sums.
    """

    __slots__ = (
        "_ends_chars",
        "_ends_lines",
        "_ends_utf8",
        "_ends_utf16",
        "_lens",
        "chars",
        "children",
        "height",
        "lines",
        "text",
        "utf8",
        "utf16",
    )

    height: int
    text: str
    children: tuple[_Node, ...]
    chars: int
    utf8: int
    utf16: int
    lines: int
    _lens: list[int]  # the children's code-point counts; never mutated once set
    _ends_chars: list[int] | None
    _ends_lines: list[int] | None
    _ends_utf8: list[int] | None
    _ends_utf16: list[int] | None

    def ends(self, metric: str) -> list[int]:
        """Prefix sums of ``metric`` over the children: ``ends[i]`` counts children ``0..i``.

        Computed on first use and cached. Branches carry ``chars`` and ``lines`` from the
        start (built with them, or shifted from the parent's by an edit); ``utf8`` and
        ``utf16`` wait until a position conversion needs them.
        """
        slot = "_ends_" + metric
        cached: list[int] | None = getattr(self, slot)
        if cached is None:
            cached = list(accumulate(map(_GETTERS[metric], self.children)))
            setattr(self, slot, cached)
        return cached

    def ends_chars(self) -> list[int]:
        """``ends("chars")``, for the hot walks: summed from ``_lens``, not from the children."""
        cached = self._ends_chars
        if cached is None:
            cached = self._ends_chars = list(accumulate(self._lens))
        return cached

    def ends_lines(self) -> list[int]:
        """``ends("lines")``, for the hot walks."""
        cached = self._ends_lines
        if cached is None:
            cached = self._ends_lines = list(accumulate(map(_LINES, self.children)))
        return cached


_GETTERS = {name: attrgetter(name) for name in ("chars", "lines", "utf8", "utf16")}
_CHARS = _GETTERS["chars"]
_LINES = _GETTERS["lines"]


_NO_ENDS: Final[list[int]] = []  # shared by all leaves, never mutated


def _leaf(text: str) -> _Node:
    node = _Node.__new__(_Node)
    node.height = 0
    node.text = text
    node.children = ()
    chars = len(text)
    node.chars = chars
    if text.isascii():
        node.utf8 = node.utf16 = chars
    else:
        # A lone surrogate (possible in text that came through JSON) still has a width in every
        # encoding, 3 UTF-8 bytes and 1 UTF-16 unit, as editors count it.
        node.utf8 = _utf8_len(text)
        node.utf16 = _utf16_len(text)
    node.lines = _breaks(text)
    node._ends_chars = node._ends_lines = node._lens = _NO_ENDS
    node._ends_utf8 = node._ends_utf16 = None
    return node


def _edited_leaf(old: _Node, new: str, start: int, end: int, inserted: str) -> _Node:
    """The leaf ``new`` = ``old.text`` with ``start..end`` replaced by ``inserted``.

    Its summary is ``old``'s plus what changed in a window one code point wider than the edit
    on each side. Theory: write old = A + W + B and new = A + W' + B with the window W (W') the
    edit plus its neighbours. The breaks of a concatenation are the sum of the parts' minus one
    per seam that splits a ``\\r\\n``; W and W' start and end with the same code points (the
    neighbours), so the seam terms cancel and only W and W' need counting. O(edit), not O(leaf).
    """
    text = old.text
    lo = start - 1 if start else 0
    hi = end + 1 if end < len(text) else end
    removed = text[lo:hi]
    added = new[lo : hi + len(inserted) - (end - start)]
    node = _Node.__new__(_Node)
    node.height = 0
    node.text = new
    node.children = ()
    node.chars = len(new)
    if removed.isascii() and added.isascii():
        delta = len(added) - len(removed)
        node.utf8 = old.utf8 + delta
        node.utf16 = old.utf16 + delta
    else:
        node.utf8 = old.utf8 + _utf8_len(added) - _utf8_len(removed)
        node.utf16 = old.utf16 + _utf16_len(added) - _utf16_len(removed)
    node.lines = old.lines + _breaks(added) - _breaks(removed)
    node._ends_chars = node._ends_lines = node._lens = _NO_ENDS
    node._ends_utf8 = node._ends_utf16 = None
    return node


def _utf8_len(text: str) -> int:
    if text.isascii():
        return len(text)
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:  # lone surrogates; the strict encoder is the fast one
        return len(text.encode("utf-8", "surrogatepass"))


def _utf16_len(text: str) -> int:
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) >> 1


def _breaks(text: str) -> int:
    count = text.count("\n")
    if "\r" in text:
        count += text.count("\r") - text.count("\r\n")
    return count


def _branch(children: Sequence[_Node]) -> _Node:
    node = _Node.__new__(_Node)
    node.height = children[0].height + 1
    node.text = ""
    node.children = tuple(children)
    # Prefix sums of the two metrics every lookup walks are built eagerly: computing them on
    # first use would touch every child of a cold node in the middle of a request.
    lens = node._lens = list(map(_CHARS, children))
    ends_chars = node._ends_chars = list(accumulate(lens))
    ends_lines = node._ends_lines = list(accumulate(map(_LINES, children)))
    node.chars = ends_chars[-1]
    node.lines = ends_lines[-1]
    node.utf8 = sum(c.utf8 for c in children)
    node.utf16 = sum(c.utf16 for c in children)
    node._ends_utf8 = node._ends_utf16 = None
    return node


def _with_child(parent: _Node, index: int, child: _Node, old: _Node) -> _Node:
    """A copy of ``parent`` whose child ``index`` (formerly ``old``) is ``child``."""
    node = _Node.__new__(_Node)
    node.height = parent.height
    node.text = ""
    children = parent.children
    listed = list(children)  # faster than slicing and concatenating tuples
    listed[index] = child
    node.children = tuple(listed)
    # An edit changes one child's counts. Shifting the prefix sums of every later child costs
    # an int allocation each (measured: the largest part of an edit on 100 MB), so the copy
    # keeps the children's lengths, with one replaced, and sums them only if it is walked
    # again; a metric the edit did not change (lines, typing on one line) shares the parent's
    # sums. Lists in nodes are never mutated once set.
    lens = parent._lens.copy()
    lens[index] = child.chars
    node._lens = lens
    node.chars = parent.chars + child.chars - old.chars
    node._ends_chars = None
    delta = child.lines - old.lines
    node.lines = parent.lines + delta
    node._ends_lines = None if delta else parent._ends_lines
    delta = child.utf8 - old.utf8
    node.utf8 = parent.utf8 + delta
    node._ends_utf8 = None if delta else parent._ends_utf8
    delta = child.utf16 - old.utf16
    node.utf16 = parent.utf16 + delta
    node._ends_utf16 = None if delta else parent._ends_utf16
    return node


# --- building -------------------------------------------------------------------------------


def _safe_cut(text: str, cut: int) -> int:
    """``cut``, moved one code point right if it would split a ``\\r\\n`` pair."""
    if 0 < cut < len(text) and text[cut - 1] == "\r" and text[cut] == "\n":
        return cut + 1
    return cut


def _build(text: str) -> _Node:
    """A balanced tree holding ``text``, leaves packed to about ``BUILD_LEAF``."""
    n = len(text)
    if n <= MAX_LEAF:
        return _leaf(text)
    leaves = []
    start = 0
    step = BUILD_LEAF
    while start < n:
        end = start + step
        # A short tail folds into this leaf (step + MIN_LEAF <= MAX_LEAF).
        end = n if n - end < MIN_LEAF else _safe_cut(text, end)
        leaves.append(_leaf(text[start:end]))
        start = end
    return _from_nodes(leaves)


def _from_nodes(nodes: list[_Node]) -> _Node:
    """Stack levels of branches over same-height ``nodes`` until one root remains."""
    while len(nodes) > 1:
        count = len(nodes)
        groups = -(-count // MAX_CHILDREN)
        size, extra = divmod(count, groups)  # even groups: each between MIN and MAX children
        parents = []
        start = 0
        for g in range(groups):
            end = start + size + (1 if g < extra else 0)
            parents.append(_branch(nodes[start:end]))
            start = end
        nodes = parents
    return nodes[0]


# --- split and join (xi-rope's concat) --------------------------------------------------------


def _is_ok_child(node: _Node) -> bool:
    if node.height == 0:
        return node.chars >= MIN_LEAF
    return len(node.children) >= MIN_CHILDREN


def _merge_nodes(left: Sequence[_Node], right: Sequence[_Node]) -> _Node:
    children = [*left, *right]
    if len(children) <= MAX_CHILDREN:
        return _branch(children)
    half = len(children) // 2
    return _branch([_branch(children[:half]), _branch(children[half:])])


def _merge_leaves(a: _Node, b: _Node) -> _Node:
    if _is_ok_child(a) and _is_ok_child(b):
        return _branch([a, b])
    text = a.text + b.text
    if len(text) <= MAX_LEAF:
        return _leaf(text)
    # One side is short, so len(text) < MAX_LEAF + MIN_LEAF and both halves fit.
    cut = _safe_cut(text, len(text) // 2)
    return _branch([_leaf(text[:cut]), _leaf(text[cut:])])


def _concat(a: _Node, b: _Node) -> _Node:
    """The tree of ``a``'s text followed by ``b``'s; its height is max(heights) or one more.

    The caller guarantees the seam does not split a ``\\r\\n`` pair.
    """
    ha, hb = a.height, b.height
    if ha < hb:
        right = b.children
        if ha == hb - 1 and _is_ok_child(a):
            return _merge_nodes([a], right)
        joined = _concat(a, right[0])
        if joined.height == hb - 1:
            return _merge_nodes([joined], right[1:])
        return _merge_nodes(joined.children, right[1:])
    if ha > hb:
        left = a.children
        if hb == ha - 1 and _is_ok_child(b):
            return _merge_nodes(left, [b])
        joined = _concat(left[-1], b)
        if joined.height == ha - 1:
            return _merge_nodes(left[:-1], [joined])
        return _merge_nodes(left[:-1], joined.children)
    if _is_ok_child(a) and _is_ok_child(b):
        return _branch([a, b])
    if ha == 0:
        return _merge_leaves(a, b)
    return _merge_nodes(a.children, b.children)


def _join(a: _Node | None, b: _Node | None) -> _Node | None:
    if a is None or a.chars == 0:
        return b
    if b is None or b.chars == 0:
        return a
    return _concat(a, b)


def _prefix(node: _Node, offset: int) -> _Node | None:
    """The tree of ``node``'s first ``offset`` code points (None when empty)."""
    if offset <= 0:
        return None
    if offset >= node.chars:
        return node
    if node.height == 0:
        return _leaf(node.text[:offset])
    ends = node.ends_chars()
    i = bisect_left(ends, offset)
    child = node.children[i]
    head = _branch(node.children[:i]) if i else None
    return _join(head, _prefix(child, offset - (ends[i] - child.chars)))


def _suffix(node: _Node, offset: int) -> _Node | None:
    """The tree of ``node``'s text from code point ``offset`` on (None when empty)."""
    if offset <= 0:
        return node
    if offset >= node.chars:
        return None
    if node.height == 0:
        return _leaf(node.text[offset:])
    ends = node.ends_chars()
    i = bisect_right(ends, offset)
    child = node.children[i]
    rest = node.children[i + 1 :]
    tail = _branch(rest) if rest else None
    return _join(_suffix(child, offset - (ends[i] - child.chars)), tail)


def _normalize(node: _Node | None) -> _Node:
    """Drop single-child roots, so the height reflects the text, not its history."""
    if node is None:
        return _EMPTY
    while node.height and len(node.children) == 1:
        node = node.children[0]
    return node


_EMPTY: Final = _leaf("")


# --- metrics within one leaf ----------------------------------------------------------------


def _units_to_chars(text: str, units: int, encoding: Encoding) -> int:
    """Code points in ``text`` whose encoding fits in ``units``; rounds down inside a character."""
    if encoding == "utf-32" or text.isascii():
        return min(units, len(text))
    codec = "utf-8" if encoding == "utf-8" else "utf-16-le"
    width = 1 if encoding == "utf-8" else 2
    try:
        data = text.encode(codec)
    except UnicodeEncodeError:  # lone surrogates: rare, so a plain scan is fine
        return _scan_units(text, units, encoding)
    head = data[: units * width]
    try:
        return len(head.decode(codec))
    except UnicodeDecodeError as exc:  # cut inside a character: keep what precedes it
        return len(head[: exc.start].decode(codec))


def _scan_units(text: str, units: int, encoding: Encoding) -> int:
    used = 0
    for index, ch in enumerate(text):
        used += _char_width(ch, encoding)
        if used > units:
            return index
    return len(text)


def _char_width(ch: str, encoding: Encoding) -> int:
    cp = ord(ch)
    if encoding == "utf-16":
        return 2 if cp > 0xFFFF else 1
    if encoding == "utf-8":
        return 1 if cp < 0x80 else 2 if cp < 0x800 else 3 if cp < 0x10000 else 4
    return 1


def _chars_to_units(text: str, chars: int, encoding: Encoding) -> int:
    if encoding == "utf-32" or text.isascii():
        return chars
    head = text[:chars]
    if encoding == "utf-8":
        return len(head.encode("utf-8", "surrogatepass"))
    return len(head.encode("utf-16-le", "surrogatepass")) >> 1


def _breaks_before(text: str, k: int) -> int:
    """Line breaks that end at or before code point ``k`` of ``text``."""
    count = text.count("\n", 0, k)
    if text.find("\r", 0, k) >= 0:
        count += text.count("\r", 0, k) - text.count("\r\n", 0, k)
        if text[k - 1] == "\r" and text[k : k + 1] == "\n":
            count -= 1  # k sits inside a \r\n pair: that break has not ended yet
    return count


def _after_break(text: str, n: int) -> int:
    """The offset just after the ``n``-th line break (n >= 1) of ``text``."""
    if "\r" not in text:
        pos = -1
        find = text.index
        for _ in range(n):
            pos = find("\n", pos + 1)
        return pos + 1
    matches = _BREAK.finditer(text)
    match = None
    for _ in range(n):
        match = next(matches)
    assert match is not None
    return match.end()


_METRIC_OF: Final[dict[str, str]] = {"utf-8": "utf8", "utf-16": "utf16", "utf-32": "chars"}


def _check_encoding(encoding: str) -> Encoding:
    if encoding not in _METRIC_OF:
        raise ValueError(f"unknown position encoding {encoding!r}; use one of {ENCODINGS}")
    return encoding  # type: ignore[return-value]


# --- the public rope ------------------------------------------------------------------------


class Rope:
    """An immutable text of code points, cheap to edit, slice and convert positions in.

    Every edit returns a new ``Rope`` sharing structure with this one; a ``Rope`` never changes,
    so holding one is a free snapshot that readers can use while edits continue elsewhere.

    Offsets are code points, ``0 <= offset <= len(rope)``; offsets out of range raise
    ``IndexError`` naming the valid range. Lines follow LSP: breaks are ``\\n``, ``\\r\\n`` and
    ``\\r``; ``""`` has one line and ``"a\\n"`` two.
    """

    __slots__ = ("_root",)

    _root: _Node

    def __init__(self, text: str = "") -> None:
        if not isinstance(text, str):
            raise TypeError(f"Rope text must be str, not {type(text).__name__}")
        self._root = _build(text)

    @classmethod
    def _from_root(cls, root: _Node) -> Rope:
        rope = cls.__new__(cls)
        rope._root = root
        return rope

    # -- the str-like surface

    def __len__(self) -> int:
        return self._root.chars

    def __str__(self) -> str:
        if self._root.height == 0:
            return self._root.text
        return "".join(self.chunks())

    def __repr__(self) -> str:
        root = self._root
        if root.chars <= 40:
            return f"Rope({str(self)!r})"
        return f"Rope(<{root.chars} code points, {root.lines + 1} lines>)"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Rope):
            return NotImplemented
        if self._root is other._root:
            return True
        a, b = self._root, other._root
        if (a.chars, a.utf8, a.utf16, a.lines) != (b.chars, b.utf8, b.utf16, b.lines):
            return False
        return _same_text(self.chunks(), other.chunks())

    __hash__ = None  # type: ignore[assignment]  # equal by content; hashing 100 MB is no key

    @property
    def utf8_len(self) -> int:
        """Length of the text in UTF-8 bytes."""
        return self._root.utf8

    @property
    def utf16_len(self) -> int:
        """Length of the text in UTF-16 code units."""
        return self._root.utf16

    @property
    def line_count(self) -> int:
        """Number of lines: line breaks plus one."""
        return self._root.lines + 1

    # -- edits

    def insert(self, offset: int, text: str) -> Rope:
        """A new rope with ``text`` inserted before code point ``offset``."""
        return self.replace(offset, offset, text)

    def delete(self, start: int, end: int) -> Rope:
        """A new rope without code points ``start`` to ``end`` (end exclusive)."""
        return self.replace(start, end, "")

    def replace(self, start: int, end: int, text: str) -> Rope:
        """A new rope with code points ``start`` to ``end`` replaced by ``text``."""
        if not 0 <= start <= end <= self._root.chars:
            self._check_range(start, end)
        if start == end and not text:
            return self
        if len(text) <= MAX_LEAF:
            fast = self._replace_in_leaf(start, end, text)
            if fast is not None:
                rope = Rope.__new__(Rope)
                rope._root = fast
                return rope
        return Rope._from_root(self._replace_general(start, end, text))

    def _replace_in_leaf(self, start: int, end: int, text: str) -> _Node | None:
        """The fast path: an edit inside one leaf that keeps it within bounds, or None.

        The hottest code in Symphony (every keystroke): kept to few bytecodes on purpose.
        """
        node = self._root
        path: list[tuple[_Node, int]] = []
        local_start = start
        span = end - start
        # An insertion at a seam appends to the left leaf; a deletion starts in the right one.
        find = bisect_right if span else bisect_left
        while node.height:
            ends = node._ends_chars
            if ends is None:
                ends = node.ends_chars()
            i = find(ends, local_start)
            if i == len(ends) or span > ends[i] - local_start:
                return None  # past the end, or the range crosses into the next child
            child = node.children[i]
            path.append((node, i))
            local_start -= ends[i] - child.chars
            node = child
        old = node.text
        local_end = local_start + (end - start)
        new = old[:local_start] + text + old[local_end:]
        size = len(new)
        if size > MAX_LEAF or (size < MIN_LEAF and size < len(old) and path) or not new:
            return None
        # Keep \r\n pairs inside one leaf: if the edit changed a leaf edge into \n... or ...\r,
        # the neighbour may hold the other half; the general path joins them.
        if path and (
            (local_start == 0 and new[0] == "\n") or (local_end == len(old) and new[-1] == "\r")
        ):
            return None
        fresh = _edited_leaf(node, new, local_start, local_end, text)
        for parent, i in reversed(path):
            fresh = _with_child(parent, i, fresh, parent.children[i])
        return fresh

    def _replace_general(self, start: int, end: int, text: str) -> _Node:
        root = self._root
        # Widen the edit so that neither seam splits a \r\n pair.
        if start > 0 and self._char(start - 1) == "\r":
            first = text[:1] or (self._char(end) if end < root.chars else "")
            if first == "\n":
                start -= 1
                text = "\r" + text
        if end < root.chars and self._char(end) == "\n":
            last = text[-1:] or (self._char(start - 1) if start > 0 else "")
            if last == "\r":
                end += 1
                text = text + "\n"
        middle = _build(text) if text else None
        joined = _join(_join(_prefix(root, start), middle), _suffix(root, end))
        return _normalize(joined)

    # -- reading

    def slice(self, start: int, end: int) -> str:
        """The text of code points ``start`` to ``end`` (end exclusive)."""
        self._check_range(start, end)
        if start == end:
            return ""
        node = self._root
        while node.height:  # descend while one child holds the whole range
            ends = node.ends_chars()
            i = bisect_right(ends, start)
            child = node.children[i]
            before = ends[i] - child.chars
            if end > ends[i]:
                break
            start -= before
            end -= before
            node = child
        if node.height == 0:
            return node.text[start:end]
        out: list[str] = []
        _collect(node, start, end, out)
        return "".join(out)

    def chunks(self) -> Iterator[str]:
        """The text as its leaves' strings, in order, lazily."""
        stack = [self._root]
        while stack:
            node = stack.pop()
            if node.height == 0:
                if node.text:
                    yield node.text
            else:
                stack.extend(reversed(node.children))

    def lines(self) -> Iterator[str]:
        """Every line without its break, lazily; yields ``line_count`` strings."""
        carry = ""
        pending_cr = False  # the last chunk ended in \r: a following \n belongs to it
        for chunk in self.chunks():
            pos = 0
            if pending_cr and chunk.startswith("\n"):
                pos = 1
            pending_cr = False
            for match in _BREAK.finditer(chunk, pos):
                yield carry + chunk[pos : match.start()]
                carry = ""
                pos = match.end()
            carry += chunk[pos:]
            if chunk.endswith("\r"):
                pending_cr = True
        yield carry

    def line(self, index: int) -> str:
        """Line ``index`` (0-based) without its line break."""
        count = self._root.lines + 1
        if not 0 <= index < count:
            raise IndexError(f"line {index} out of range: valid lines are 0..{count - 1}")
        leaf, leaf_start, local = self._leaf_of_line(index)
        text = leaf.text
        if "\r" not in text:
            stop = text.find("\n", local)
            if stop >= 0:
                return text[local:stop]
        else:
            match = _BREAK.search(text, local)
            if match is not None:
                return text[local : match.start()]
        start = leaf_start + local
        if index + 1 == count:
            return self.slice(start, self._root.chars)
        stop = self.line_start(index + 1)
        line = self.slice(start, stop)
        return line[:-2] if line.endswith("\r\n") else line[:-1]

    def line_start(self, index: int) -> int:
        """The offset of the first code point of line ``index``; past the end, the text's end."""
        if index <= 0:
            return 0
        if index > self._root.lines:
            return self._root.chars
        _, leaf_start, local = self._leaf_of_line(index)
        return leaf_start + local

    def line_end(self, index: int) -> int:
        """The offset where line ``index``'s content ends (before its break)."""
        if index >= self._root.lines:
            return self._root.chars
        following = self.line_start(index + 1)
        return following - (2 if self.slice(max(0, following - 2), following) == "\r\n" else 1)

    def _leaf_of_line(self, index: int) -> tuple[_Node, int, int]:
        """(leaf, offset of the leaf, offset in the leaf) of the start of line ``index``."""
        node = self._root
        base = 0
        remaining = index
        while node.height:
            ends = node.ends_lines()
            # The child where the `remaining`-th break ends; line 0 starts in the first child.
            i = bisect_left(ends, remaining) if remaining else 0
            child = node.children[i]
            remaining -= ends[i] - child.lines
            base += node.ends_chars()[i] - child.chars
            node = child
        # When the break ends its leaf, `local == len(text)`: the same offset as the next
        # leaf's start, which is all the callers need.
        local = _after_break(node.text, remaining) if remaining else 0
        return node, base, local

    def _char(self, offset: int) -> str:
        node = self._root
        while node.height:
            ends = node.ends_chars()
            i = bisect_right(ends, offset)
            child = node.children[i]
            offset -= ends[i] - child.chars
            node = child
        return node.text[offset]

    # -- positions

    def position_at(self, offset: int, encoding: str = "utf-16") -> tuple[int, int]:
        """The LSP ``(line, character)`` of code point ``offset``, character in ``encoding``."""
        enc = _check_encoding(encoding)
        root = self._root
        if not 0 <= offset <= root.chars:
            raise IndexError(f"offset {offset} out of range: valid offsets are 0..{root.chars}")
        line = self._measure_before(offset, "lines")
        start = self.line_start(line)
        if enc == "utf-32" or _is_one_unit(root, enc):
            return line, offset - start
        metric = _METRIC_OF[enc]
        return line, self._measure_before(offset, metric) - self._measure_before(start, metric)

    def offset_at(self, line: int, character: int, encoding: str = "utf-16") -> int:
        """The code-point offset of LSP position ``(line, character)``.

        A character past its line's end clamps to the line end, a line past the last to the end
        of the text; a position inside a multi-unit character rounds down to its start.
        """
        enc = _check_encoding(encoding)
        if line < 0 or character < 0:
            raise IndexError(f"position ({line}, {character}) out of range: both must be >= 0")
        root = self._root
        if line > root.lines:
            return root.chars
        start = self.line_start(line)
        end = self.line_end(line)
        if enc == "utf-32" or _is_one_unit(root, enc):
            return min(start + character, end)
        metric = _METRIC_OF[enc]
        target = self._measure_before(start, metric) + character
        return min(self._offset_of_units(target, metric, enc), end)

    def _measure_before(self, offset: int, metric: str) -> int:
        """How much of ``metric`` lies before code point ``offset``."""
        node = self._root
        total = 0
        while node.height:
            ends = node.ends_chars()
            i = bisect_left(ends, offset)
            if i == len(ends):
                return total + node.ends(metric)[-1]
            child = node.children[i]
            before = ends[i] - child.chars
            if i:
                total += node.ends(metric)[i - 1]
            offset -= before
            node = child
        text = node.text
        if metric == "lines":
            return total + _breaks_before(text, offset)
        if metric == "chars":
            return total + offset
        return total + _chars_to_units(text, offset, "utf-8" if metric == "utf8" else "utf-16")

    def _offset_of_units(self, units: int, metric: str, encoding: Encoding) -> int:
        """The offset of the last code point boundary at or before ``units`` of ``metric``."""
        node = self._root
        if units >= getattr(node, metric):
            return node.chars
        base = 0
        while node.height:
            ends = node.ends(metric)
            i = bisect_right(ends, units)
            child = node.children[i]
            units -= ends[i] - getattr(child, metric)
            base += node.ends_chars()[i] - child.chars
            node = child
        return base + _units_to_chars(node.text, units, encoding)

    # -- checks

    def _check_range(self, start: int, end: int) -> None:
        size = self._root.chars
        if not 0 <= start <= end <= size:
            raise IndexError(f"range {start}..{end} out of range: need 0 <= start <= end <= {size}")

    def _check_invariants(self) -> None:
        """Assert the tree's invariants (for tests); raises AssertionError on a violation."""
        root = self._root
        leaves: list[_Node] = []
        _check_node(root, root, leaves)
        for left, right in pairwise(leaves):
            assert not (left.text.endswith("\r") and right.text.startswith("\n")), "split CRLF"
        if root.chars:
            assert all(leaf.text for leaf in leaves), "empty leaf in a non-empty rope"


def _is_one_unit(root: _Node, encoding: Encoding) -> bool:
    """True when every code point of the text is one unit of ``encoding``."""
    return (root.utf8 if encoding == "utf-8" else root.utf16) == root.chars


def _collect(node: _Node, start: int, end: int, out: list[str]) -> None:
    """Append the pieces of ``node``'s text ``start..end`` to ``out``: O(log n + pieces)."""
    while node.height:
        ends = node.ends_chars()
        first = bisect_right(ends, start)
        last = bisect_left(ends, end, first)
        children = node.children
        if first == last:  # one child holds the whole range: go down
            child = children[first]
            before = ends[first] - child.chars
            start -= before
            end -= before
            node = child
            continue
        child = children[first]
        _collect(child, start - (ends[first] - child.chars), child.chars, out)
        for middle in children[first + 1 : last]:
            _extend_leaves(middle, out)
        child = children[last]
        _collect(child, 0, end - (ends[last] - child.chars), out)
        return
    out.append(node.text[start:end])


def _extend_leaves(node: _Node, out: list[str]) -> None:
    if node.height == 0:
        out.append(node.text)
        return
    for child in node.children:
        _extend_leaves(child, out)


def _same_text(a: Iterator[str], b: Iterator[str]) -> bool:
    """Compare two chunk streams of equal total length without joining them."""
    buf_a = buf_b = ""
    for chunk in a:
        buf_a += chunk
        while len(buf_b) < len(buf_a):
            nxt = next(b, None)
            if nxt is None:
                return False
            buf_b += nxt
        n = len(buf_a)
        if buf_a != buf_b[:n]:
            return False
        buf_a, buf_b = "", buf_b[n:]
    return buf_b == "" and next(b, None) is None


def _check_node(node: _Node, root: _Node, leaves: list[_Node]) -> None:
    if node.height == 0:
        text = node.text
        assert len(text) <= MAX_LEAF or node is root, "leaf over MAX_LEAF"
        expect = _leaf(text)
        assert (node.chars, node.utf8, node.utf16, node.lines) == (
            expect.chars,
            expect.utf8,
            expect.utf16,
            expect.lines,
        ), "leaf summary does not match its text"
        leaves.append(node)
        return
    assert 1 <= len(node.children) <= MAX_CHILDREN, "branch child count out of bounds"
    for child in node.children:
        assert child.height == node.height - 1, "unbalanced: leaves at different depths"
        _check_node(child, root, leaves)
    for name in ("chars", "utf8", "utf16", "lines"):
        assert getattr(node, name) == sum(getattr(c, name) for c in node.children), name
