"""Rope benchmark: Symphony's Rope, ropey-py (Rust Ropey) and plain str, side by side, one run.

    python bench/rope.py                 # 1, 10 and 100 MB documents
    python bench/rope.py --sizes 1 10    # a quicker run

Documents are code-like lines with some non-ASCII (a comment with accents every 20th line, CJK
every 97th), so the text is held as a 2-byte-per-code-point str, as real source often is.
Per size and structure: build time from a str, memory of the structure, 2,000 random
single-character inserts then 2,000 deletes, 2,000 random ``line(i)``, 2,000 ``offset_at`` in
UTF-16. Each operation is timed alone (perf_counter_ns): p50 and p99 in microseconds.

Notes on fairness:
- ropey-py exposes no UTF-16 conversion, so its ``offset_at`` column is ``line_to_char + col``
  (UTF-32 columns): a lower bound for what UTF-16 would cost it.
- ``str`` edits copy the whole text; at 10 and 100 MB only a sample of edits runs (printed),
  since 2,000 of them would take minutes. Its ``line(i)`` is a scan for the i-th break, which is
  what a str without a line index must do; also sampled.
- Memory: the Rope by walking its nodes (exact); ropey-py by the process RSS growth during its
  build (it allocates outside Python); str by sys.getsizeof.
"""

from __future__ import annotations

import argparse
import gc
import platform
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from symphony.editor_core import _rope
from symphony.editor_core._rope import Rope

try:
    import ropey_py
except ImportError:  # pragma: no cover - the dev extra installs it
    ropey_py = None

OPS = 2_000
WORDS = ["def", "return", "self", "value", "for", "in", "if", "else", "import", "x", "count"]


def make_document(megabytes: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    target = megabytes * 1_000_000
    lines = []
    size = 0
    i = 0
    while size < target:
        line = "    " * (i % 4) + " ".join(rng.choice(WORDS) for _ in range(8))
        if i % 20 == 0:
            line += "  # café: ünïcödé"
        if i % 97 == 0:
            line += "  # 日本語"
        lines.append(line)
        size += len(line) + 1
        i += 1
    return "\n".join(lines)


@dataclass
class Row:
    name: str
    build_s: float = float("nan")
    memory_mb: float = float("nan")
    timings: dict[str, list[float]] = field(default_factory=dict)


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def time_each(ops: Sequence[Callable[[], object]]) -> list[float]:
    out = []
    clock = time.perf_counter_ns
    for op in ops:
        t0 = clock()
        op()
        out.append((clock() - t0) / 1000)
    return out


def rope_memory(rope: Rope) -> int:
    total = 0
    stack = [rope._root]
    while stack:
        node = stack.pop()
        total += sys.getsizeof(node)
        if node.height == 0:
            total += sys.getsizeof(node.text)
        else:
            total += sys.getsizeof(node.children)
            for ends in (node._ends_chars, node._ends_lines, node._ends_utf8, node._ends_utf16):
                if ends is not None:
                    total += sys.getsizeof(ends) + 28 * len(ends)
            stack.extend(node.children)
    return total


def rss() -> int:
    gc.collect()
    return int(psutil.Process().memory_info().rss)


def bench_symphony(text: str, rng: random.Random) -> Row:
    row = Row("symphony.Rope")
    t0 = time.perf_counter()
    rope = Rope(text)
    row.build_s = time.perf_counter() - t0
    row.memory_mb = rope_memory(rope) / 1e6
    n = len(text)
    state = [rope]

    def ins(p: int) -> Callable[[], object]:
        return lambda: state.__setitem__(0, state[0].insert(p, "x"))

    def dele(p: int) -> Callable[[], object]:
        return lambda: state.__setitem__(0, state[0].delete(p, p + 1))

    row.timings["insert"] = time_each([ins(rng.randrange(n)) for _ in range(OPS)])
    row.timings["delete"] = time_each([dele(rng.randrange(n)) for _ in range(OPS)])
    rope = state[0]
    lines = rope.line_count
    picks = [rng.randrange(lines) for _ in range(OPS)]
    row.timings["line"] = time_each([(lambda i=i: rope.line(i)) for i in picks])
    row.timings["offset_at16"] = time_each(
        [(lambda i=i: rope.offset_at(i, 12, "utf-16")) for i in picks]
    )
    return row


def bench_ropey(text: str, rng: random.Random) -> Row | None:
    if ropey_py is None:
        return None
    row = Row("ropey-py")
    before = rss()
    t0 = time.perf_counter()
    rope = ropey_py.Rope(text)
    row.build_s = time.perf_counter() - t0
    row.memory_mb = (rss() - before) / 1e6
    n = len(text)
    inserts = [rng.randrange(n) for _ in range(OPS)]
    deletes = [rng.randrange(n) for _ in range(OPS)]
    row.timings["insert"] = time_each([(lambda p=p: rope.insert(p, "x")) for p in inserts])
    row.timings["delete"] = time_each([(lambda p=p: rope.remove(p, p + 1)) for p in deletes])
    lines = rope.len_lines()
    picks = [rng.randrange(lines) for _ in range(OPS)]
    row.timings["line"] = time_each([(lambda i=i: rope.line(i)) for i in picks])
    row.timings["offset_at16"] = time_each([(lambda i=i: rope.line_to_char(i) + 12) for i in picks])
    return row


def bench_str(text: str, rng: random.Random, megabytes: int, size: int) -> Row:
    row = Row("str")
    row.build_s = 0.0
    # Measured by the caller before anything touched the text: handing a str to ropey-py makes
    # CPython cache its UTF-8 copy inside the str, which getsizeof would then count too.
    row.memory_mb = size / 1e6
    sample = OPS if megabytes <= 1 else max(20, OPS // (megabytes * 2))
    state = [text]
    n = len(text)

    def ins(p: int) -> Callable[[], object]:
        return lambda: state.__setitem__(0, state[0][:p] + "x" + state[0][p:])

    def dele(p: int) -> Callable[[], object]:
        return lambda: state.__setitem__(0, state[0][:p] + state[0][p + 1 :])

    row.timings["insert"] = time_each([ins(rng.randrange(n)) for _ in range(sample)])
    row.timings["delete"] = time_each([dele(rng.randrange(n)) for _ in range(sample)])
    current = state[0]
    lines = current.count("\n") + 1

    def line(i: int) -> str:
        pos = 0
        for _ in range(i):
            pos = current.index("\n", pos) + 1
        end = current.find("\n", pos)
        return current[pos : end if end >= 0 else len(current)]

    picks = [rng.randrange(lines) for _ in range(max(20, sample // 10))]
    row.timings["line"] = time_each([(lambda i=i: line(i)) for i in picks])
    return row


def report(megabytes: int, rows: list[Row]) -> dict[str, float]:
    print(f"\n== {megabytes} MB document ==")
    header = f"{'structure':15} {'build s':>8} {'mem MB':>8}"
    ops = ["insert", "delete", "line", "offset_at16"]
    for op in ops:
        header += f" {op + ' p50':>16} {'p99':>9}"
    print(header)
    for row in rows:
        line = f"{row.name:15} {row.build_s:8.3f} {row.memory_mb:8.1f}"
        for op in ops:
            values = row.timings.get(op, [])
            line += f" {percentile(values, 0.5):16.2f} {percentile(values, 0.99):9.2f}"
        print(line)
    by_name = {row.name: row for row in rows}
    ours = by_name["symphony.Rope"]
    ratios: dict[str, float] = {}

    def p50(row: Row, op: str) -> float:
        return percentile(row.timings[op], 0.5)

    edit = (p50(ours, "insert") + p50(ours, "delete")) / 2
    text_row = by_name["str"]
    ratios["edit vs str (x faster)"] = (
        (p50(text_row, "insert") + p50(text_row, "delete")) / 2
    ) / edit
    ratios["memory / str size"] = ours.memory_mb / text_row.memory_mb
    if "ropey-py" in by_name:
        ropey = by_name["ropey-py"]
        ratios["edit / ropey-py"] = edit / ((p50(ropey, "insert") + p50(ropey, "delete")) / 2)
        ratios["line / ropey-py"] = p50(ours, "line") / p50(ropey, "line")
        ratios["build / ropey-py"] = ours.build_s / ropey.build_s
        ratios["offset_at16 / ropey-py(utf-32)"] = p50(ours, "offset_at16") / p50(
            ropey, "offset_at16"
        )
    ratios["line vs str scan (x faster)"] = p50(text_row, "line") / p50(ours, "line")
    for name, value in ratios.items():
        print(f"  {name:34} {value:10.2f}")
    return ratios


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 100], metavar="MB")
    args = parser.parse_args(argv)
    print(f"python {platform.python_version()} on {platform.machine()}, {psutil.cpu_count()} cpus")
    print(
        f"Rope constants: MIN_LEAF={_rope.MIN_LEAF} MAX_LEAF={_rope.MAX_LEAF} "
        f"BUILD_LEAF={_rope.BUILD_LEAF} MAX_CHILDREN={_rope.MAX_CHILDREN}"
    )
    if ropey_py is None:
        print("ropey-py is not installed: its columns are missing (pip install ropey-py)")
    verdicts = []
    for megabytes in args.sizes:
        text = make_document(megabytes)
        size = sys.getsizeof(text)
        rows = []
        for bench in (bench_symphony, bench_ropey):
            row = bench(text, random.Random(megabytes))
            if row is not None:
                rows.append(row)
            gc.collect()
        rows.append(bench_str(text, random.Random(megabytes), megabytes, size))
        ratios = report(megabytes, rows)
        if megabytes == 100:
            verdicts = [
                ("edit within 10x of ropey-py", ratios.get("edit / ropey-py", 0) <= 10),
                ("line within 10x of ropey-py", ratios.get("line / ropey-py", 0) <= 10),
                ("edit >= 1000x faster than str", ratios["edit vs str (x faster)"] >= 1000),
                ("build within 2x of ropey-py", ratios.get("build / ropey-py", 0) <= 2),
                ("memory <= 1.5x str", ratios["memory / str size"] <= 1.5),
            ]
        del text, rows
        gc.collect()
    if verdicts:
        print("\nAcceptance at 100 MB:")
        for name, ok in verdicts:
            print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
