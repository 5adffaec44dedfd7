"""The store's files: its folder layout, and pack files written so a crash never shows half of one.

Layout (``root`` is the store folder, ``.symphony/pit`` of a workspace by default)::

    root/
      pit.db, pit.db-wal, pit.db-shm   SQLite: all metadata, and chunks small enough to inline
      objects/00 .. objects/ff/        pack files of the hot and warm tiers: <32 hex>.pack
      archive/00 .. archive/ff/        pack files of the cold tier (the archive may live elsewhere)
                                       (a fan-out folder is created when its first pack is)
      tmp/                             packs being written; anything here is garbage after a crash

A pack file is ``b"SYMPACK1"`` followed by chunk records (raw, zstd or sealed bytes); the
database says which chunk sits at which offset. A pack is written once under ``tmp/`` (or the
archive's ``tmp/``), flushed with ``fsync``, renamed to its final name, and the directory is
fsynced: after a crash a pack is either whole under its final name or absent from it. Only then
does the transaction that references it commit, so no committed metadata ever points at a pack
that is not durable (the durability argument is in ``docs/pit.md``). A pack renamed but never
referenced (the writer died before its commit) is an orphan that ``fsck`` reports and ``gc``
removes once it is older than the grace period.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, Final, Literal

__all__ = [
    "PACK_HEADER",
    "Area",
    "Layout",
    "PackWriter",
    "fsync_dir",
    "read_ranges",
]

PACK_HEADER: Final = b"SYMPACK1"
PACK_SUFFIX: Final = ".pack"
TMP_SUFFIX: Final = ".tmp"
_WRITE_BUFFER: Final = 1 << 20
_FAN_OUT: Final = frozenset(f"{i:02x}" for i in range(256))

Area = Literal["objects", "archive"]


def fsync_dir(path: Path) -> None:
    """Make the entries of directory ``path`` (new names, renames) durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Layout:
    """Paths of one store's files.

    Invariants: pack files live in ``<area>/<first two hex digits of name>/<name>.pack``; temp
    files live in the ``tmp`` folder next to the area they will be renamed into (same file
    system, so the rename is atomic).
    """

    def __init__(self, root: Path, archive: Path | None = None, *, durable: bool = True) -> None:
        self.root = root
        # Whether files and folders are fsynced (see ArtifactStore.open's ``durability``).
        self.durable = durable
        self.db_path = root / "pit.db"
        self.objects = root / "objects"
        self.archive = archive if archive is not None else root / "archive"
        self.tmp = root / "tmp"
        # An archive elsewhere may be another file system: its temp files live inside it.
        self._archive_tmp = self.tmp if archive is None else archive / "tmp"

    def area_dir(self, area: Area) -> Path:
        return self.objects if area == "objects" else self.archive

    def tmp_dir(self, area: Area) -> Path:
        return self.tmp if area == "objects" else self._archive_tmp

    def pack_path(self, area: Area, name: str) -> Path:
        return self.area_dir(area) / name[:2] / (name + PACK_SUFFIX)

    def ensure(self) -> None:
        """Create the store's folders if missing and make them durable.

        The 256 fan-out folders of each area are created when a pack first needs one
        (`PackWriter.finish`), which keeps opening a new store cheap.
        """
        created = False
        for folder in (self.root, self.objects, self.archive, self.tmp, self._archive_tmp):
            if not folder.is_dir():
                folder.mkdir(parents=True, exist_ok=True)
                created = True
        if created:
            for folder in {self.root, self.root.parent, self.archive.parent}:
                self.sync_dir(folder)

    def sync_dir(self, path: Path) -> None:
        """`fsync_dir` when the store is durable."""
        if self.durable:
            fsync_dir(path)

    def iter_pack_files(self, area: Area) -> Iterator[Path]:
        for sub in self.fan_out_dirs(area):
            with contextlib.suppress(FileNotFoundError):
                for entry in os.scandir(sub):
                    if entry.name.endswith(PACK_SUFFIX):
                        yield Path(entry.path)

    def fan_out_dirs(self, area: Area) -> list[Path]:
        """The fan-out folders of ``area`` that exist, in order."""
        base = self.area_dir(area)
        try:
            names = sorted(n for n in os.listdir(base) if len(n) == 2 and n in _FAN_OUT)
        except FileNotFoundError:
            return []
        return [base / name for name in names]

    def iter_tmp_files(self) -> Iterator[Path]:
        seen: set[Path] = set()
        areas: tuple[Area, ...] = ("objects", "archive")
        for area in areas:
            tmp = self.tmp_dir(area)
            if tmp in seen:
                continue
            seen.add(tmp)
            with contextlib.suppress(FileNotFoundError):
                for entry in os.scandir(tmp):
                    if entry.is_file():
                        yield Path(entry.path)


class PackWriter:
    """Writes one pack file: `append` records, then `finish` (durable) or `discard`.

    Invariant: until `finish` returns, the pack exists only under ``tmp/``; after, it exists
    whole under its final name.
    """

    def __init__(self, layout: Layout, area: Area = "objects") -> None:
        self.layout = layout
        self.area: Area = area
        self.name = secrets.token_hex(16)
        self._tmp = layout.tmp_dir(area) / (self.name + TMP_SUFFIX)
        self._file: BinaryIO | None = open(self._tmp, "xb", buffering=_WRITE_BUFFER)  # noqa: SIM115
        self._file.write(PACK_HEADER)
        self.size = len(PACK_HEADER)

    @property
    def path(self) -> Path:
        return self.layout.pack_path(self.area, self.name)

    def append(self, record: bytes) -> int:
        """Append one stored chunk record; return its offset in the pack."""
        assert self._file is not None, "pack already finished"
        offset = self.size
        self._file.write(record)
        self.size += len(record)
        return offset

    def finish(self) -> Path:
        """Flush, fsync, rename into place and fsync the directory; return the final path."""
        assert self._file is not None, "pack already finished"
        file, self._file = self._file, None
        try:
            file.flush()
            if self.layout.durable:
                os.fsync(file.fileno())
        finally:
            file.close()
        final = self.path
        try:
            final.parent.mkdir()
        except FileExistsError:
            pass
        else:
            self.layout.sync_dir(final.parent.parent)  # the new fan-out folder's entry
        os.rename(self._tmp, final)
        self.layout.sync_dir(final.parent)
        return final

    def discard(self) -> None:
        """Drop the pack: close and remove the temp file (or the final file if finished)."""
        if self._file is not None:
            self._file.close()
            self._file = None
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._tmp)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


def read_ranges(path: Path, ranges: Iterable[tuple[int, int]]) -> list[bytes]:
    """The bytes at ``(offset, length)`` ranges of a file, read with one open.

    Adjacent ranges (a blob written by one put sits contiguously in its pack) are read with one
    ``pread`` and split, so reading a 10 MB blob costs a few syscalls, not one per chunk.
    Raises ``FileNotFoundError`` if the file is gone, ``EOFError`` if it is too short.
    """
    wanted = list(ranges)
    out: list[bytes] = []
    fd = os.open(path, os.O_RDONLY)
    try:
        i = 0
        while i < len(wanted):
            start, length = wanted[i]
            j = i + 1
            end = start + length
            while j < len(wanted) and wanted[j][0] == end:
                end += wanted[j][1]
                j += 1
            data = os.pread(fd, end - start, start)
            if len(data) != end - start:
                raise EOFError(f"{path}: {len(data)} bytes at offset {start}, wanted {end - start}")
            if j == i + 1:
                out.append(data)
            else:
                view = memoryview(data)
                pos = 0
                for _, part in wanted[i:j]:
                    out.append(bytes(view[pos : pos + part]))
                    pos += part
            i = j
    finally:
        os.close(fd)
    return out
