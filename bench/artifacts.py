"""Benchmark of the Pit's artifact store, side by side with plain files and git.

    ./dev bench artifacts [--quick]

1. put/get latency (p50, p99) for 1 KB, 100 KB and 10 MB of random bytes, each size measured
   interleaved (one put of each contender in turn, so load on the machine hits all alike):
   - pit: ``ArtifactStore.put`` (default durability: fsync'd) / ``ArtifactStore.get``;
   - file: write a new file + fsync / read it back;
   - git: ``git hash-object -w`` / ``git cat-file``, each a long-running ``--stdin-paths`` /
     ``--batch`` process (no process start-up in the numbers), with ``core.fsync=loose-object``
     so git's objects are as durable as the others.
2. storage of 100 versions of a 1 MB source file with small edits (3 line edits per version),
   against the naive total, and git's loose objects and packed repository for reference.
3. the chunker's throughput on source code and random bytes, and the byte-by-byte Gear loop
   it replaces.

Acceptance (issue 5): 100 KB put p50 < 5 ms and get p50 < 2 ms, each within 2x of the plain
file on the same run; 100 versions take at most 10% of the naive size.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import random
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from symphony.pit._chunking import chunk_bounds
from symphony.pit.artifacts import ArtifactStore

KB = 1000
MB = 1000 * 1000


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Git:
    """A bare repository with long-running hash-object and cat-file processes."""

    def __init__(self, path: Path) -> None:
        subprocess.run(["git", "init", "-q", "--bare", str(path)], check=True)
        for key, value in (("core.fsync", "loose-object"), ("core.fsyncMethod", "fsync")):
            subprocess.run(["git", "-C", str(path), "config", key, value], check=True)
        self.path = path
        self.writer = subprocess.Popen(
            ["git", "-C", str(path), "hash-object", "-w", "--stdin-paths"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.reader = subprocess.Popen(
            ["git", "-C", str(path), "cat-file", "--batch"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def put(self, file: Path) -> str:
        assert self.writer.stdin is not None
        assert self.writer.stdout is not None
        self.writer.stdin.write(str(file).encode() + b"\n")
        self.writer.stdin.flush()
        return self.writer.stdout.readline().strip().decode()

    def get(self, sha: str) -> bytes:
        assert self.reader.stdin is not None
        assert self.reader.stdout is not None
        self.reader.stdin.write(sha.encode() + b"\n")
        self.reader.stdin.flush()
        header = self.reader.stdout.readline().split()
        size = int(header[2])
        data = self.reader.stdout.read(size)
        self.reader.stdout.read(1)
        return data

    def close(self) -> None:
        for proc in (self.writer, self.reader):
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait()


def latency(root: Path, size: int, count: int) -> dict[str, dict[str, list[float]]]:
    rng = random.Random(size)
    payloads = [rng.randbytes(size) for _ in range(count)]
    files_dir = root / f"files-{size}"
    files_dir.mkdir()
    inputs = root / f"inputs-{size}"  # git hash-object reads files: written before, not timed
    inputs.mkdir()
    for i, data in enumerate(payloads):
        (inputs / str(i)).write_bytes(data)
    git = Git(root / f"git-{size}.git")
    times: dict[str, dict[str, list[float]]] = {
        name: {"put": [], "get": []} for name in ("pit", "file", "git")
    }
    clock = time.perf_counter
    with ArtifactStore.open(root / f"pit-{size}") as store:
        cids: list[str] = []
        shas: list[str] = []
        for i, data in enumerate(payloads):
            start = clock()
            cids.append(store.put(data, name=f"bench-{size}").content_id)
            times["pit"]["put"].append(clock() - start)

            start = clock()
            fd = os.open(files_dir / str(i), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, data)
            os.fsync(fd)
            os.close(fd)
            times["file"]["put"].append(clock() - start)

            start = clock()
            shas.append(git.put(inputs / str(i)))
            times["git"]["put"].append(clock() - start)
        for i, data in enumerate(payloads):
            start = clock()
            got = store.get(cids[i])
            times["pit"]["get"].append(clock() - start)
            assert got == data

            start = clock()
            with open(files_dir / str(i), "rb") as file:
                got = file.read()
            times["file"]["get"].append(clock() - start)
            assert got == data

            start = clock()
            got = git.get(shas[i])
            times["git"]["get"].append(clock() - start)
            assert got == data
    git.close()
    return times


def source_file(size: int) -> list[bytes]:
    """Lines of real Python source (the standard library), about ``size`` bytes."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    lines: list[bytes] = []
    total = 0
    for path in sorted(stdlib.glob("*.py")):
        for line in path.read_bytes().split(b"\n"):
            lines.append(line)
            total += len(line) + 1
            if total >= size:
                return lines
    return lines


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def versions(root: Path, count: int) -> dict[str, int]:
    rng = random.Random(100)
    lines = source_file(MB)
    naive = 0
    git_dir = root / "versions.git"
    subprocess.run(["git", "init", "-q", "--bare", str(git_dir)], check=True)
    shas: list[str] = []
    with ArtifactStore.open(root / "versions") as store:
        for version in range(count):
            data = b"\n".join(lines)
            naive += len(data)
            store.put(data, name="module.py", kind="code")
            shas.append(
                subprocess.run(
                    ["git", "-C", str(git_dir), "hash-object", "-w", "--stdin"],
                    input=data,
                    check=True,
                    capture_output=True,
                )
                .stdout.decode()
                .strip()
            )
            for _ in range(3):
                i = rng.randrange(len(lines))
                op = rng.randrange(3)
                if op == 0:
                    lines[i] = lines[i] + f"  # edited in version {version}".encode()
                elif op == 1:
                    lines.insert(i, f"    value = compute({rng.randrange(10**6)})".encode())
                else:
                    del lines[i]
        stats = store.stats()
        store.checkpoint()
    git_loose = du(git_dir / "objects")
    # The blobs are unreachable (no commit refers to them), so `git gc` would leave them loose:
    # pack them explicitly, with deltas, as `git gc --aggressive` would.
    subprocess.run(
        [
            "git",
            "-C",
            str(git_dir),
            "pack-objects",
            "-q",
            "--window=250",
            "--depth=50",
            str(git_dir / "objects" / "pack" / "pack"),
        ],
        input="\n".join(shas).encode(),
        check=True,
        capture_output=True,
    )
    subprocess.run(["git", "-C", str(git_dir), "prune-packed"], check=True)
    git_packed = du(git_dir / "objects")
    return {
        "naive": naive,
        "pit on disk": du(root / "versions"),
        "pit chunk bytes": stats.stored_bytes,
        "git loose": git_loose,
        "git packed": git_packed,
    }


def chunking() -> dict[str, float]:
    source = b"\n".join(source_file(10 * MB))
    random_bytes = random.Random(7).randbytes(10 * MB)

    def rate(data: bytes, fn: Callable[[bytes], object]) -> float:
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            fn(data)
            best = min(best, time.perf_counter() - start)
        return len(data) / MB / best

    gear_table = [
        int.from_bytes(hashlib.sha256(bytes([b])).digest()[:8], "little") for b in range(256)
    ]

    def gear(data: bytes) -> int:
        h = 0
        cuts = 0
        for b in data:
            h = ((h << 1) + gear_table[b]) & 0xFFFFFFFFFFFFFFFF
            if not h & 0x1FFF:
                cuts += 1
        return cuts

    return {
        "source MB/s": rate(source, chunk_bounds),
        "random MB/s": rate(random_bytes, chunk_bounds),
        "gear loop MB/s": rate(source[: 1 * MB], gear),
        "sha256 MB/s": rate(random_bytes, lambda d: hashlib.sha256(d).digest()),
        "source avg chunk KiB": len(source) / len(chunk_bounds(source)) / 1024,
        "random avg chunk KiB": len(random_bytes) / len(chunk_bounds(random_bytes)) / 1024,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    args = parser.parse_args()
    counts = {KB: 300, 100 * KB: 300, 10 * MB: 20}
    if args.quick:
        counts = {KB: 60, 100 * KB: 60, 10 * MB: 5}
    print(f"# bench/artifacts.py  {time.strftime('%Y-%m-%d %H:%M')}")
    print(
        f"# {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{subprocess.run(['git', '--version'], capture_output=True, text=True).stdout.strip()}"
    )
    root = Path(tempfile.mkdtemp(prefix="pit-bench-"))
    try:
        print("\n## put/get latency (ms), interleaved; ratio = pit / file")
        print(
            f"{'size':>7} {'op':>4} | {'pit p50':>8} {'p99':>8} | {'file p50':>8} {'p99':>8} | "
            f"{'git p50':>8} {'p99':>8} | {'pit/file':>8} {'pit/git':>8}"
        )
        for size, count in counts.items():
            times = latency(root, size, count)
            for op in ("put", "get"):
                row = {name: times[name][op] for name in times}
                p50 = {name: percentile(row[name], 0.5) * 1e3 for name in row}
                p99 = {name: percentile(row[name], 0.99) * 1e3 for name in row}
                label = f"{size // MB} MB" if size >= MB else f"{size // KB} KB"
                print(
                    f"{label:>7} {op:>4} | {p50['pit']:8.3f} {p99['pit']:8.3f} | "
                    f"{p50['file']:8.3f} {p99['file']:8.3f} | {p50['git']:8.3f} {p99['git']:8.3f} | "
                    f"{p50['pit'] / p50['file']:8.2f} {p50['pit'] / p50['git']:8.2f}"
                )
        print("\n## 100 versions of a 1 MB source file, 3 line edits per version")
        sizes = versions(root, 100)
        naive = sizes["naive"]
        for key, value in sizes.items():
            print(f"{key:>16}: {value / MB:9.2f} MB  {100 * value / naive:6.2f}% of naive")
        print("  (pit on disk: the whole store folder after a WAL checkpoint: chunks, metadata,")
        print("   indexes; git packed: zlib plus deltas, the reference for what deltas buy)")
        print("\n## chunking (best of 3)")
        for key, value in chunking().items():
            print(f"{key:>22}: {value:9.1f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
