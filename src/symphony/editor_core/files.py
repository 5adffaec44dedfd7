"""Loading, saving and watching the files behind buffers: the editor core's one touch of the disk.

Theory of operation
-------------------
A buffer is born from :func:`load`, which returns the text *exactly* as decoded (line endings are
never translated: LF, CRLF, lone CR and mixtures stay as they are, so saving an unedited buffer
reproduces the file byte for byte), the encoding and BOM it was read with, and a
:class:`FileStamp` of the very bytes that were decoded. The buffer keeps that stamp; it is the
buffer's claim about which version of the file it holds.

When the file may have changed under the buffer (a watcher event, focus, a periodic poll), the
buffer calls :func:`check` with its stamp and acts on the :class:`DiskState`::

    result = files.check(path, buffer.stamp)
    UNCHANGED, TOUCHED -> buffer.stamp = result.stamp     # same content; keep the fresher stamp
    MODIFIED           -> if the buffer is clean: loaded = files.load(path, chosen_encoding)
                          and replace the buffer's text and stamp with ``loaded``'s (reload);
                          if it has unsaved edits: keep the user's text and report a conflict
    DELETED            -> keep the text; report that the file is gone (the buffer is now dirty)

``chosen_encoding`` is the encoding the user asked for, or ``None`` if it was detected, so a
reload detects afresh. The reload takes its own stamp: if the file changed again between
``check`` and ``load``, the buffer still holds text and stamp of one and the same version.

Saving goes through :func:`save` with the buffer's stamp as ``expected``: if the file on disk
holds other content than the stamp says, or was deleted or moved away, ``save`` raises
:class:`FileConflict` and writes nothing; the caller asks the user and may save again with
``expected=None`` to overwrite. ``save`` returns the stamp of what it wrote, which becomes the
buffer's new stamp. (Between the check and the rename there is an unavoidable window in which
another writer can still slip in; POSIX offers no compare-and-swap on file contents.)

Change detection and the "racy" stamp
-------------------------------------
Comparing metadata is cheap and hashing is not, so :func:`check` first compares ``os.stat``
against the stamp: modification time, size, status-change time and inode. Any difference means
"hash and compare" (a ``touch`` or ``chmod`` changes metadata but not content: that is
``TOUCHED``; another editor's atomic save changes the inode). Equal metadata is trusted, except
for a *racy* stamp, the problem git describes in ``Documentation/technical/racy-git.txt``: file
systems store times with a granularity (a kernel tick of a few ms on Linux, 1 s on HFS+, 2 s on
FAT, whatever the server's clock says on NFS). If the file was written within one granule of the
moment we read it, a second write in that same granule leaves mtime, ctime and (for an equal-size
in-place write) everything else unchanged, and metadata alone would report "unchanged" forever.
So a stamp remembers when it was taken (``taken_ns``, read from the clock *before* the file was
read) and counts as racy while ``taken_ns - mtime_ns < RACY_WINDOW_NS``; a racy stamp is always
verified by hashing. ``check`` then returns a fresh stamp, which stops being racy once the file's
mtime is more than the window in the past: store ``result.stamp`` every time.

Atomic saves
------------
``save`` encodes into a temporary file in the target's directory (same file system, so the rename
is atomic), flushes and ``fsync``\\s it, gives it the old file's mode (and, best effort, owner and
group; a new file gets ``0o666 & ~umask`` like any ordinary create), ``os.replace``\\s it over the
target and ``fsync``\\s the directory so that the rename itself survives a crash. A reader sees
either the whole old file or the whole new one. On any failure before the rename the temporary
file is removed and the original is untouched. A symlink is written *through*: the target file is
replaced and the link kept. Known limits, as with every rename-based save: a hard link to the old
file keeps the old content, extended attributes and ACLs are not copied, and the directory must
be writable. POSIX only (``fsync`` of a directory, renaming a file that is still open).

Errors
------
Invalid bytes raise :class:`FileDecodeError` with the offset *in the file* (counting the BOM) of
the first bad byte: never silent replacement. An unknown encoding, a character the encoding
cannot hold, or a path that is not a regular file raise :class:`FileError`. Operating-system
errors (missing file, a directory, no permission) propagate as the usual ``OSError`` subclasses
(``FileNotFoundError``, ``IsADirectoryError``, ``PermissionError``) with the path in
``filename``; only :func:`check` turns a missing file into ``DELETED``.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import hashlib
import io
import os
import secrets
import stat as stat_module
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from symphony.editor_core._exceptions import FileConflict, FileDecodeError, FileError

__all__ = [
    "RACY_WINDOW_NS",
    "DiskCheck",
    "DiskState",
    "FileStamp",
    "LoadedFile",
    "check",
    "load",
    "save",
    "stamp",
]

StrPath = str | os.PathLike[str]

# A stamp whose file was modified less than this long before the stamp was taken cannot be
# trusted on metadata alone (see "racy" in the module docstring). 2 s covers FAT's 2-second
# timestamps, HFS+'s 1 s and any kernel tick; only files saved in the last two seconds pay a hash.
RACY_WINDOW_NS: Final = 2_000_000_000

# How much text `save` joins before encoding it, when it is given chunks (a rope's leaves are a
# few KiB): big enough that per-call overhead vanishes, small enough to keep memory flat.
_SAVE_BATCH_CHARS: Final = 1 << 20

# Byte order marks, longest first: the UTF-32 LE BOM (FF FE 00 00) begins with the UTF-16 LE one
# (FF FE), so a file starting FF FE 00 00 is read as UTF-32 LE, as Python's json module does
# (`_decode` falls back to UTF-16 LE when only that decodes).
_BOMS: Final[tuple[tuple[bytes, str], ...]] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_BOM_OF: Final[dict[str, bytes]] = {name: bom for bom, name in _BOMS}


@dataclass(frozen=True)
class FileStamp:
    """What a file on disk looked like when it was read or written.

    ``sha256`` (hex) and ``size`` describe the bytes; ``mtime_ns``, ``ctime_ns``, ``ino`` and
    ``dev`` are the metadata :func:`check` compares before deciding to hash. ``taken_ns`` is the
    wall-clock time (``time.time_ns()``) just *before* the bytes were read; it takes no part in
    equality.

    Invariants:
        - ``sha256`` is the SHA-256 of exactly ``size`` bytes, the bytes of one read or write;
        - the metadata was read from the same open file as those bytes, no earlier than
          ``taken_ns``.
    """

    mtime_ns: int
    size: int
    sha256: str
    ctime_ns: int
    ino: int
    dev: int
    taken_ns: int = field(compare=False)

    @property
    def racy(self) -> bool:
        """True if the file was modified too shortly before the stamp to trust its metadata."""
        return self.taken_ns - self.mtime_ns < RACY_WINDOW_NS


@dataclass(frozen=True)
class LoadedFile:
    """A decoded file: what a buffer needs to start, reload, and later save the same way.

    ``save(path, loaded.text, encoding=loaded.encoding, bom=loaded.bom)`` writes the same bytes.

    Invariants:
        - ``text`` is the file's content decoded with ``encoding`` after a BOM (if ``bom``) was
          removed; line endings are exactly as in the file;
        - ``encoding`` is a canonical Python codec name (``"utf-8"``, ``"utf-16-le"``,
          ``"iso8859-1"``, ...), never the byte-order-detecting ``"utf-16"``/``"utf-32"``;
        - ``stamp`` describes the very bytes ``text`` was decoded from.
    """

    text: str = field(repr=False)
    encoding: str
    bom: bool
    stamp: FileStamp


class DiskState(StrEnum):
    """How the file on disk compares with a stamp (see :func:`check`)."""

    UNCHANGED = "unchanged"
    """Same content, and the metadata says so too."""
    TOUCHED = "touched"
    """Same content, different metadata (``touch``, ``chmod``, another editor's identical save)."""
    MODIFIED = "modified"
    """Different content."""
    DELETED = "deleted"
    """No file at the path any more (deleted, moved away, or a dangling symlink)."""


@dataclass(frozen=True)
class DiskCheck:
    """The result of :func:`check`.

    Invariants:
        - ``stamp`` is ``None`` exactly when ``state`` is ``DELETED``;
        - otherwise it describes the file as it is now; for ``UNCHANGED`` and ``TOUCHED`` it has
          the same ``sha256`` and ``size`` as the stamp that was checked.
    """

    state: DiskState
    stamp: FileStamp | None


def load(path: StrPath, encoding: str | None = None) -> LoadedFile:
    """Read and decode the file at ``path`` (symlinks followed).

    With ``encoding=None``: a UTF-8, UTF-16 or UTF-32 byte order mark selects that encoding,
    otherwise the file is UTF-8. With an explicit encoding, any Python text codec name works
    (``"latin-1"``, ``"cp1252"``, ``"shift_jis"``, ...); for a Unicode encoding a leading BOM of
    that encoding is removed and reported in ``bom``, and ``"utf-16"``/``"utf-32"`` take their
    byte order from the BOM (little-endian without one). ``FF FE 00 00`` starts both a UTF-32 LE
    BOM and a UTF-16 LE BOM followed by U+0000; detection reads UTF-32 LE unless only UTF-16 LE
    decodes (pass the encoding to decide).

    Raises:
        FileDecodeError: the bytes are not valid in the encoding; ``byte_offset`` counts the BOM.
        FileError: unknown or non-text encoding, or the path is not a regular file (a FIFO
            would block, a device never ends).
        OSError: ``FileNotFoundError``, ``IsADirectoryError``, ``PermissionError``, ... as raised
            by the operating system, with ``filename`` set to the path.
    """
    name = os.fspath(path)
    codec = None if encoding is None else _text_codec(name, encoding)
    taken = time.time_ns()
    with _open_regular(name) as f:
        info = os.fstat(f.fileno())
        data = f.read()
    file_stamp = _make_stamp(info, len(data), hashlib.sha256(data).hexdigest(), taken)
    text, codec, bom = _decode(name, data, codec)
    return LoadedFile(text=text, encoding=codec, bom=bom, stamp=file_stamp)


def save(
    path: StrPath,
    text: str | Iterable[str],
    *,
    encoding: str = "utf-8",
    bom: bool = False,
    expected: FileStamp | None = None,
) -> FileStamp:
    """Atomically replace the file at ``path`` with ``text`` encoded in ``encoding``.

    ``text`` is a ``str`` or an iterable of ``str`` chunks (e.g. ``rope.chunks()``), written as
    is: line endings are not translated. ``bom`` prefixes the encoding's byte order mark (only
    Unicode encodings have one; ``"utf-8-sig"`` implies it, and ``"utf-16"``/``"utf-32"`` always
    write one, little-endian). A text that itself begins with U+FEFF, saved without a BOM, is
    indistinguishable from a BOM and reads back with ``bom=True`` and without it. If ``path`` is
    a symlink its target is replaced and the link kept.

    If ``expected`` is given, the file must still hold the content that stamp describes (metadata
    may differ): if it was modified or deleted since, :class:`FileConflict` is raised and nothing
    is written. Pass ``expected=None`` to overwrite regardless.

    Returns the stamp of the bytes written, for the buffer to keep.

    Raises:
        FileConflict: the file no longer matches ``expected``.
        FileError: unknown or non-text encoding, a BOM asked of an encoding without one, a
            character the encoding cannot hold (the message names its offset in code points), or
            the target exists and is not a regular file.
        OSError: as raised by the operating system (e.g. ``PermissionError`` when the directory
            is not writable, ``IsADirectoryError``).
    """
    name = os.fspath(path)
    codec, bom_bytes = _save_codec(name, encoding, bom)
    target = os.path.realpath(name)
    directory = os.path.dirname(target)
    if expected is not None:
        _require_expected(name, target, expected)
    try:
        old: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        old = None
    if old is not None:
        _require_regular(target, old)

    taken = time.time_ns()
    # A new file is created like any other (the kernel applies the umask and default ACLs); a
    # replacement starts private and gets the old file's mode just before the rename.
    fd, tmp = _create_temp(directory, os.path.basename(target), 0o666 if old is None else 0o600)
    renamed = False
    try:
        with os.fdopen(fd, "wb") as f:
            digest = hashlib.sha256(bom_bytes)
            f.write(bom_bytes)
            size = len(bom_bytes)
            for piece in _encode(name, codec, text):
                digest.update(piece)
                f.write(piece)
                size += len(piece)
            f.flush()
            if old is not None:
                _copy_mode(f.fileno(), old)
            os.fsync(f.fileno())
            os.replace(tmp, target)
            renamed = True
            # fstat of the file we wrote, not stat of the path: if another writer replaced the
            # path a moment after us, our stamp must not describe their file.
            info = os.fstat(f.fileno())
    except BaseException:
        if not renamed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        raise
    _fsync_directory(directory)
    return _make_stamp(info, size, digest.hexdigest(), taken)


def stamp(path: StrPath) -> FileStamp:
    """Stamp the file at ``path`` as it is now (symlinks followed), hashing it in a stream.

    Raises:
        FileError: the path is not a regular file.
        OSError: as raised by the operating system (``FileNotFoundError``, ...).
    """
    name = os.fspath(path)
    taken = time.time_ns()
    with _open_regular(name) as f:
        info = os.fstat(f.fileno())
        # file_digest reads in fixed-size blocks into one reused buffer: a 100 MB file is
        # hashed without ever being in memory.
        digest = hashlib.file_digest(f, "sha256")
        size = f.tell()
    return _make_stamp(info, size, digest.hexdigest(), taken)


def check(path: StrPath, since: FileStamp) -> DiskCheck:
    """Compare the file at ``path`` with the stamp ``since``; see :class:`DiskState`.

    Metadata first; the content is hashed only when the metadata differs or ``since`` is racy.

    Raises:
        FileError: the path is not a regular file.
        OSError: other than the file being missing (that is ``DELETED``), as raised by the
            operating system (``PermissionError``, ...).
    """
    name = os.fspath(path)
    try:
        info = os.stat(name)
    except (FileNotFoundError, NotADirectoryError):
        return DiskCheck(DiskState.DELETED, None)
    if _same_metadata(info, since) and not since.racy:
        return DiskCheck(DiskState.UNCHANGED, since)
    try:
        now = stamp(name)
    except (FileNotFoundError, NotADirectoryError):
        return DiskCheck(DiskState.DELETED, None)
    if now.sha256 != since.sha256 or now.size != since.size:
        return DiskCheck(DiskState.MODIFIED, now)
    if now == since:
        return DiskCheck(DiskState.UNCHANGED, now)
    return DiskCheck(DiskState.TOUCHED, now)


# -- reading ----------------------------------------------------------------------------------


def _open_regular(path: str) -> io.BufferedReader:
    """Open ``path`` for reading, refusing anything but a regular file (or a directory's error).

    ``O_NONBLOCK`` keeps ``open`` from waiting for a writer when the path is a FIFO; it has no
    effect on regular files.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NONBLOCK", 0))
    try:
        _require_regular(path, os.fstat(fd))
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def _require_regular(path: str, info: os.stat_result) -> None:
    if stat_module.S_ISDIR(info.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    if not stat_module.S_ISREG(info.st_mode):
        raise FileError(f"{path}: not a regular file")


def _make_stamp(info: os.stat_result, size: int, sha256: str, taken_ns: int) -> FileStamp:
    return FileStamp(
        mtime_ns=info.st_mtime_ns,
        size=size,
        sha256=sha256,
        ctime_ns=info.st_ctime_ns,
        ino=info.st_ino,
        dev=info.st_dev,
        taken_ns=taken_ns,
    )


def _same_metadata(info: os.stat_result, since: FileStamp) -> bool:
    return (
        info.st_mtime_ns == since.mtime_ns
        and info.st_size == since.size
        and info.st_ctime_ns == since.ctime_ns
        and info.st_ino == since.ino
        and info.st_dev == since.dev
    )


def _text_codec(path: str, encoding: str) -> str:
    """The canonical codec name for ``encoding``, or ``FileError`` if it is not a text codec."""
    try:
        info = codecs.lookup(encoding)
    except LookupError as exc:
        raise FileError(f"{path}: unknown encoding {encoding!r}") from exc
    # Codecs such as "base64" or "rot13" exist but do not map bytes to text.
    if not getattr(info, "_is_text_encoding", True):
        raise FileError(f"{path}: {encoding!r} is not a text encoding")
    return info.name


def _decode(path: str, data: bytes, encoding: str | None) -> tuple[str, str, bool]:
    """Decode ``data``; return ``(text, codec, bom)`` with the codec actually used.

    ``encoding`` is a canonical codec name, or ``None`` to detect it from a BOM.
    """
    bom = b""
    codec = encoding
    if codec is None:
        codec = "utf-8"
        for mark, name in _BOMS:
            if data.startswith(mark):
                codec, bom = name, mark
                break
    else:
        if codec == "utf-8-sig":
            codec = "utf-8"
        if codec in ("utf-16", "utf-32"):
            codec += "-be" if data.startswith(_BOM_OF[codec + "-be"]) else "-le"
        mark = _BOM_OF.get(codec, b"")
        if mark and data.startswith(mark):
            bom = mark
    try:
        return _decode_after(path, data, codec, bom), codec, bool(bom)
    except FileDecodeError:
        if encoding is not None or codec != "utf-32-le":
            raise
        # Detection took FF FE 00 00 for a UTF-32 BOM, but it may be a UTF-16 BOM followed by
        # U+0000. If only UTF-16 decodes, that is what the file is.
        try:
            text = _decode_after(path, data, "utf-16-le", codecs.BOM_UTF16_LE)
        except FileDecodeError:
            pass
        else:
            return text, "utf-16-le", True
        raise


def _decode_after(path: str, data: bytes, codec: str, bom: bytes) -> str:
    try:
        # A memoryview slice drops the BOM without copying a 100 MB file.
        return str(memoryview(data)[len(bom) :] if bom else data, codec)
    except UnicodeDecodeError as exc:
        raise FileDecodeError(path, codec, exc.start + len(bom), exc.reason) from exc
    except (UnicodeError, ValueError) as exc:
        raise FileError(f"{path}: cannot decode with {codec!r}: {exc}") from exc


# -- writing ----------------------------------------------------------------------------------


def _save_codec(path: str, encoding: str, bom: bool) -> tuple[str, bytes]:
    """The codec to encode with and the BOM bytes to write first."""
    codec = _text_codec(path, encoding)
    if codec == "utf-8-sig":
        codec, bom = "utf-8", True
    elif codec in ("utf-16", "utf-32"):
        # These codecs write a BOM and then the host's byte order; be explicit instead.
        codec, bom = codec + "-le", True
    if not bom:
        return codec, b""
    if codec not in _BOM_OF:
        raise FileError(f"{path}: {codec} has no byte order mark")
    return codec, _BOM_OF[codec]


def _encode(path: str, codec: str, text: str | Iterable[str]) -> Iterator[bytes]:
    """Encode ``text`` (a str or chunks), batching small chunks; errors name the code point."""
    encoder = codecs.getincrementalencoder(codec)("strict")
    batches = [text] if isinstance(text, str) else _batched(text)
    offset = 0
    for batch in batches:
        try:
            yield encoder.encode(batch)
        except UnicodeEncodeError as exc:
            bad = exc.object[exc.start]
            raise FileError(
                f"{path}: cannot encode {bad!r} (U+{ord(bad):04X}) at character offset "
                f"{offset + exc.start} in {codec}; nothing was written"
            ) from exc
        offset += len(batch)
    tail = encoder.encode("", True)
    if tail:
        yield tail


def _batched(chunks: Iterable[str]) -> Iterator[str]:
    pending: list[str] = []
    count = 0
    for chunk in chunks:
        pending.append(chunk)
        count += len(chunk)
        if count >= _SAVE_BATCH_CHARS:
            yield "".join(pending)
            pending, count = [], 0
    if pending:
        yield "".join(pending)


def _create_temp(directory: str, base: str, mode: int) -> tuple[int, str]:
    """Create a new, exclusive temporary file next to the target; return ``(fd, path)``."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    while True:
        # Hidden, recognisable, and short enough for NAME_MAX whatever the target's name.
        tmp = os.path.join(directory, f".{base[:100]}.{secrets.token_hex(6)}.symphony-tmp")
        try:
            return os.open(tmp, flags, mode), tmp
        except FileExistsError:
            continue


def _copy_mode(fd: int, old: os.stat_result) -> None:
    """Give the new file the old one's owner (best effort) and permission bits."""
    new = os.fstat(fd)
    if (old.st_uid, old.st_gid) != (new.st_uid, new.st_gid):
        # Only root may give a file away; anyone may pick a group they belong to. Failing here
        # leaves the new file ours, which is all a rename-based save can do.
        try:
            os.fchown(fd, old.st_uid, old.st_gid)
        except PermissionError:
            with contextlib.suppress(PermissionError):
                os.fchown(fd, -1, old.st_gid)
    # After chown, which clears set-user-ID and set-group-ID bits.
    os.fchmod(fd, stat_module.S_IMODE(old.st_mode))


def _fsync_directory(directory: str) -> None:
    """Make the rename durable. Some file systems cannot sync a directory; they say EINVAL."""
    fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def _require_expected(path: str, target: str, expected: FileStamp) -> None:
    result = check(target, expected)
    if result.state is DiskState.DELETED:
        raise FileConflict(path, "was deleted or moved away since it was read; not saved")
    if result.state is DiskState.MODIFIED:
        raise FileConflict(path, "was modified on disk since it was read; not saved")
