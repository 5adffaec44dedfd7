"""`symphony demo`: a short tour of the editor core, for a first look with no daemon running."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``demo`` command."""
    parser = subparsers.add_parser(
        "demo", help="a short tour of the editor core (rope, buffer, undo, positions, files)"
    )
    parser.add_argument(
        "--megabytes", type=int, default=10, help="size of the generated document (default 10)"
    )
    parser.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    from symphony.editor_core import Rope, files
    from symphony.editor_core.buffer import Buffer, TextEdit

    line = "    total = compute(value)  # café 😀\r\n"
    text = line * max(1, args.megabytes * 1_000_000 // len(line))
    started = time.perf_counter()
    rope = Rope(text)
    built = time.perf_counter() - started
    print(f"Rope of {len(rope):,} code points, {rope.line_count:,} lines, built in {built:.3f} s")
    print(f"  UTF-8 {rope.utf8_len:,} bytes, UTF-16 {rope.utf16_len:,} units")
    middle = rope.line_count // 2
    offset = rope.offset_at(middle, 31, "utf-16")
    print(f"  line {middle} col 31 (UTF-16) is offset {offset:,}: {rope.line(middle)!r}")
    print(
        f"  back to a position: utf-16 {rope.position_at(offset)}, utf-8 "
        f"{rope.position_at(offset, 'utf-8')}, utf-32 {rope.position_at(offset, 'utf-32')}"
    )

    buffer = Buffer(rope)
    started = time.perf_counter()
    for i, ch in enumerate("hello"):
        buffer.apply([TextEdit(offset + i, offset + i, ch)], origin="demo")
    typed = (time.perf_counter() - started) / 5
    print(
        f"Buffer: typed 'hello' at offset {offset:,} ({typed * 1e6:.0f} µs a keystroke); "
        f"revision {buffer.revision}, dirty={buffer.dirty}"
    )
    record = buffer.changes_since(buffer.revision - 1)[0]
    print(f"  last change for an LSP client: {record.content_changes('utf-16')}")
    buffer.undo()
    print(
        f"  one undo removes the whole typing group: revision {buffer.revision}, "
        f"dirty={buffer.dirty}, line endings {buffer.line_ending.value}"
    )

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "demo.py"
        stamp = files.save(path, buffer.rope.chunks())
        loaded = files.load(path)
        same = loaded.text == str(buffer.rope)
        print(f"files: saved atomically and read back {stamp.size:,} bytes, identical={same}")
    print("Run `./dev test` for the test suite and `./dev bench rope` for the benchmark.")
    return 0
