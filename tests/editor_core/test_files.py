"""Tests of ``symphony.editor_core.files`` on real files in a temporary directory.

Every test reads back the bytes on disk: "kept byte-exact" is checked against the file, not
against what the module believes it wrote.
"""

from __future__ import annotations

import ast
import codecs
import dataclasses
import hashlib
import itertools
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import symphony.editor_core.files as files_module
from symphony.editor_core._exceptions import FileConflict, FileDecodeError, FileError
from symphony.editor_core.files import (
    RACY_WINDOW_NS,
    DiskState,
    FileStamp,
    check,
    load,
    save,
    stamp,
)

# Text that stresses line endings (lone \r, \r\n, \n) and every UTF-8/UTF-16 width, plus
# arbitrary Unicode (hypothesis' text() never produces lone surrogates, which no UTF can hold).
_pieces = st.sampled_from(["a", "\n", "\r", "\r\n", "é", "日", "😀", "\U0010ffff", "\ufeff", " "])
texts = st.one_of(st.lists(_pieces, max_size=40).map("".join), st.text(max_size=40))

# (encoding passed to save, bom, codec that encodes the body, BOM bytes, detected without a name)
_UNICODE_FORMATS = [
    ("utf-8", False, "utf-8", b"", True),
    ("utf-8", True, "utf-8", codecs.BOM_UTF8, True),
    ("utf-16-le", True, "utf-16-le", codecs.BOM_UTF16_LE, True),
    ("utf-16-be", True, "utf-16-be", codecs.BOM_UTF16_BE, True),
    ("utf-32-le", True, "utf-32-le", codecs.BOM_UTF32_LE, True),
    ("utf-32-be", True, "utf-32-be", codecs.BOM_UTF32_BE, True),
    ("utf-16-le", False, "utf-16-le", b"", False),
    ("utf-16-be", False, "utf-16-be", b"", False),
]


def _also_utf32(text: str) -> str | None:
    """What a BOM'd UTF-16 LE file of ``text`` reads as in UTF-32 LE, if that decodes."""
    if not text.startswith("\x00"):
        return None
    try:
        return text.encode("utf-16-le")[2:].decode("utf-32-le")
    except UnicodeDecodeError:
        return None


def _temp_files(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.iterdir() if p.name.endswith(".symphony-tmp"))


# -- round trips --------------------------------------------------------------------------------


@given(
    fmt=st.sampled_from(_UNICODE_FORMATS),
    text=texts,
    cuts=st.none() | st.lists(st.integers(min_value=0, max_value=40), max_size=6),
)
def test_save_then_load_round_trips_any_text(
    tmp_path_factory: pytest.TempPathFactory,
    fmt: tuple[str, bool, str, bytes, bool],
    text: str,
    cuts: list[int] | None,
) -> None:
    encoding, bom, codec, mark, detected = fmt
    path = tmp_path_factory.mktemp("roundtrip") / "f.txt"
    if cuts is None:
        written = save(path, text, encoding=encoding, bom=bom)
    else:
        # The same text as chunks (as a rope hands them out), cut anywhere, even inside "\r\n".
        bounds = [0, *sorted(min(cut, len(text)) for cut in cuts), len(text)]
        chunks = [text[start:end] for start, end in itertools.pairwise(bounds)]
        written = save(path, iter(chunks), encoding=encoding, bom=bom)
    data = mark + text.encode(codec)
    assert path.read_bytes() == data
    assert (written.sha256, written.size) == (hashlib.sha256(data).hexdigest(), len(data))
    loaded = load(path) if detected else load(path, encoding)
    if not bom and text.startswith("\ufeff"):
        # Without a BOM, a leading U+FEFF reads back as one (documented on `save`).
        assert (loaded.text, loaded.encoding, loaded.bom) == (text[1:], codec, True)
    elif codec == "utf-16-le" and bom and (as_utf32 := _also_utf32(text)) is not None:
        # FF FE 00 00 is a UTF-32 LE BOM too; detection prefers it (documented on `load`).
        assert (loaded.text, loaded.encoding, loaded.bom) == (as_utf32, "utf-32-le", True)
    else:
        assert (loaded.text, loaded.encoding, loaded.bom) == (text, codec, bom)
    assert loaded.stamp == written == stamp(path)


def test_chunks_larger_than_a_batch_are_saved_whole(tmp_path: Path) -> None:
    chunks = ["x" * 4000 + "é\r\n"] * 600  # over two batches of 1 Mi code points
    path = tmp_path / "big.txt"
    written = save(path, chunks)
    data = "".join(chunks).encode()
    assert path.read_bytes() == data
    assert written.sha256 == hashlib.sha256(data).hexdigest()
    assert written.size == len(data)


# -- line endings and BOMs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"a\r\nb\r\n", b"a\nb\r\nc\rd\n\r", b"no final newline", b"", b"\r", b"\r\n\r\n"],
)
def test_line_endings_and_missing_final_newline_are_kept_byte_exact(
    tmp_path: Path, data: bytes
) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(data)
    loaded = load(path)
    assert loaded.text == data.decode()
    save(path, loaded.text, encoding=loaded.encoding, bom=loaded.bom)
    assert path.read_bytes() == data


def test_utf8_bom_is_stripped_remembered_and_written_back(tmp_path: Path) -> None:
    path = tmp_path / "bom.txt"
    data = codecs.BOM_UTF8 + "héllo\r\n".encode()
    path.write_bytes(data)
    loaded = load(path)
    assert (loaded.text, loaded.encoding, loaded.bom) == ("héllo\r\n", "utf-8", True)
    # An explicit UTF-8 strips the BOM as well; it is never text the user wants to see.
    explicit = load(path, "UTF8")
    assert (explicit.text, explicit.encoding, explicit.bom) == ("héllo\r\n", "utf-8", True)
    save(path, loaded.text, encoding=loaded.encoding, bom=loaded.bom)
    assert path.read_bytes() == data
    save(path, loaded.text, encoding="utf-8-sig")
    assert path.read_bytes() == data


def test_only_the_first_bom_is_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(codecs.BOM_UTF8 * 2 + b"x")
    loaded = load(path)
    assert (loaded.text, loaded.bom) == ("\ufeffx", True)


@pytest.mark.parametrize(
    ("mark", "codec"),
    [
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
        (codecs.BOM_UTF32_LE, "utf-32-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be"),
    ],
)
def test_utf16_and_utf32_are_recognised_by_their_bom(
    tmp_path: Path, mark: bytes, codec: str
) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(mark + "a😀\r\n".encode(codec))
    loaded = load(path)
    assert (loaded.text, loaded.encoding, loaded.bom) == ("a😀\r\n", codec, True)
    # The byte-order-detecting codec names agree with detection.
    generic = load(path, codec[:6])
    assert (generic.text, generic.encoding, generic.bom) == ("a😀\r\n", codec, True)


def test_ff_fe_00_00_is_utf32_unless_only_utf16_decodes(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(codecs.BOM_UTF32_LE + "a".encode("utf-32-le"))
    assert (load(path).text, load(path).encoding) == ("a", "utf-32-le")
    path.write_bytes(codecs.BOM_UTF16_LE + "\x00ab".encode("utf-16-le"))
    assert (load(path).text, load(path).encoding) == ("\x00ab", "utf-16-le")
    # Neither: the UTF-32 error is reported.
    path.write_bytes(codecs.BOM_UTF32_LE + b"a\x00\x00")
    with pytest.raises(FileDecodeError) as info:
        load(path)
    assert (info.value.encoding, info.value.byte_offset) == ("utf-32-le", 4)


def test_utf16_without_a_bom_is_little_endian(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes("ab".encode("utf-16-le"))
    loaded = load(path, "utf-16")
    assert (loaded.text, loaded.encoding, loaded.bom) == ("ab", "utf-16-le", False)


def test_generic_utf16_saves_little_endian_with_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    save(path, "ab", encoding="utf-16")
    assert path.read_bytes() == codecs.BOM_UTF16_LE + "ab".encode("utf-16-le")


# -- decoding errors and other encodings -------------------------------------------------------


def test_latin1_file_without_an_encoding_names_the_bad_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("line one\ncafé au lait\n".encode("latin-1"))
    with pytest.raises(FileDecodeError) as info:
        load(path)
    error = info.value
    offset = len(b"line one\ncaf")
    assert error.byte_offset == offset
    assert error.encoding == "utf-8"
    assert error.path == str(path)
    assert error.reason == "invalid continuation byte"
    assert f"byte offset {offset}" in str(error)
    assert isinstance(error, UnicodeError)


def test_decode_offset_counts_the_bom(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(codecs.BOM_UTF8 + b"ab\xff")
    with pytest.raises(FileDecodeError) as info:
        load(path)
    assert info.value.byte_offset == 5


def test_truncated_sequence_at_the_end_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(b"ab" + "€".encode()[:2])
    with pytest.raises(FileDecodeError) as info:
        load(path)
    assert (info.value.byte_offset, info.value.reason) == (2, "unexpected end of data")


def test_odd_length_utf16_is_reported_after_the_bom(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(codecs.BOM_UTF16_LE + b"a\x00b")
    with pytest.raises(FileDecodeError) as info:
        load(path)
    assert (info.value.encoding, info.value.byte_offset) == ("utf-16-le", 4)


def test_unpaired_surrogate_in_utf16_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(codecs.BOM_UTF16_BE + b"\x00a\xd8\x00\x00b")
    with pytest.raises(FileDecodeError) as info:
        load(path)
    assert info.value.byte_offset == 4


def test_explicit_latin1_and_cp1252_decode(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    data = b"caf\xe9 \x80\r\n"
    path.write_bytes(data)
    latin1 = load(path, "latin-1")
    assert (latin1.text, latin1.encoding, latin1.bom) == ("café \x80\r\n", "iso8859-1", False)
    cp1252 = load(path, "cp1252")
    assert (cp1252.text, cp1252.encoding) == ("café €\r\n", "cp1252")
    save(path, cp1252.text, encoding=cp1252.encoding)
    assert path.read_bytes() == data


def test_non_unicode_encodings_have_no_bom(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(codecs.BOM_UTF8 + b"x")
    loaded = load(path, "latin-1")
    assert (loaded.text, loaded.bom) == ("ï»¿x", False)
    with pytest.raises(FileError, match="no byte order mark"):
        save(path, "x", encoding="latin-1", bom=True)
    assert path.read_bytes() == codecs.BOM_UTF8 + b"x"


@pytest.mark.parametrize("encoding", ["no-such-encoding", "rot13", "base64"])
def test_unknown_or_non_text_encoding_is_a_clear_error(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(b"x")
    with pytest.raises(FileError, match=encoding):
        load(path, encoding)
    with pytest.raises(FileError, match=encoding):
        save(path, "y", encoding=encoding)
    assert path.read_bytes() == b"x"
    assert _temp_files(tmp_path) == []


# -- what is not a readable file ----------------------------------------------------------------


def test_missing_file_and_directory_raise_the_os_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing.txt"
    with pytest.raises(FileNotFoundError) as info:
        load(missing)
    assert info.value.filename == str(missing)
    with pytest.raises(IsADirectoryError) as dir_info:
        load(tmp_path)
    assert dir_info.value.filename == str(tmp_path)
    with pytest.raises(IsADirectoryError):
        save(tmp_path, "x")
    with pytest.raises(FileNotFoundError):
        stamp(missing)


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(FileError, match="not a regular file"):
        load(fifo)
    with pytest.raises(FileError, match="not a regular file"):
        save(fifo, "x")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert _temp_files(tmp_path) == []


# -- atomic save --------------------------------------------------------------------------------


def test_save_keeps_the_mode_of_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "script.sh"
    path.write_bytes(b"#!/bin/sh\n")
    for mode in (0o755, 0o640, 0o600):
        os.chmod(path, mode)
        save(path, "#!/bin/sh\necho hi\n")
        assert stat.S_IMODE(os.stat(path).st_mode) == mode
    assert path.read_bytes() == b"#!/bin/sh\necho hi\n"


def test_new_file_gets_the_default_mode(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    path = tmp_path / "new.txt"
    save(path, "x")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask


def test_save_replaces_the_file_atomically(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(b"old")
    old_inode = os.stat(path).st_ino
    with open(path, "rb") as reader:
        save(path, "new")
        # A reader that opened the old file keeps reading the whole old file.
        assert reader.read() == b"old"
    assert path.read_bytes() == b"new"
    assert os.stat(path).st_ino != old_inode
    assert _temp_files(tmp_path) == []


def test_save_writes_through_a_symlink_and_keeps_it(tmp_path: Path) -> None:
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    target = real_dir / "target.txt"
    target.write_bytes(b"old")
    os.chmod(target, 0o604)
    link = tmp_path / "link.txt"
    link.symlink_to(os.path.join("real", "target.txt"))
    loaded = load(link)
    assert loaded.text == "old"
    written = save(link, "new", expected=loaded.stamp)
    assert link.is_symlink()
    assert os.readlink(link) == os.path.join("real", "target.txt")
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o604
    assert written == stamp(target)
    # The temporary file lived beside the target, not beside the link.
    assert _temp_files(tmp_path) == _temp_files(real_dir) == []


def test_save_through_a_dangling_symlink_creates_its_target(tmp_path: Path) -> None:
    link = tmp_path / "link.txt"
    link.symlink_to("target.txt")
    save(link, "x")
    assert link.is_symlink()
    assert (tmp_path / "target.txt").read_bytes() == b"x"


def test_unencodable_character_names_offset_and_encoding_and_writes_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(b"original")
    before = os.stat(path)
    with pytest.raises(FileError) as info:
        save(path, "caf\xe9 \u20ac", encoding="latin-1")
    assert "character offset 5" in str(info.value)
    assert "iso8859-1" in str(info.value)
    assert "'€'" in str(info.value)
    assert path.read_bytes() == b"original"
    assert os.stat(path).st_ino == before.st_ino
    assert _temp_files(tmp_path) == []


def test_unencodable_character_offset_counts_across_chunks(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    with pytest.raises(FileError, match="character offset 4 "):
        save(path, iter(["ab", "c\r", "\u20ac"]), encoding="ascii")
    assert not path.exists()
    assert _temp_files(tmp_path) == []


def test_lone_surrogate_cannot_be_saved_as_utf8(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    with pytest.raises(FileError, match="character offset 1 in utf-8"):
        save(path, "a\ud800b")
    assert not path.exists()


def test_temp_file_is_removed_when_the_text_source_fails(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(b"original")

    def chunks() -> Iterator[str]:
        yield "x" * (2 << 20)  # big enough to have reached the temporary file
        raise RuntimeError("source broke")

    with pytest.raises(RuntimeError, match="source broke"):
        save(path, chunks())
    assert path.read_bytes() == b"original"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]


def test_save_into_a_missing_directory_raises_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        save(tmp_path / "no" / "f.txt", "x")
    assert list(tmp_path.iterdir()) == []


# -- stamps, conflicts and external changes -----------------------------------------------------


def test_stamp_describes_the_bytes_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    data = b"stamp me\r\n" * 1000
    path.write_bytes(data)
    s = stamp(path)
    info = os.stat(path)
    assert s.sha256 == hashlib.sha256(data).hexdigest()
    assert (s.size, s.mtime_ns, s.ctime_ns, s.ino) == (
        len(data),
        info.st_mtime_ns,
        info.st_ctime_ns,
        info.st_ino,
    )
    assert load(path).stamp == s


def test_save_refuses_to_overwrite_a_file_modified_since_it_was_read(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(b"version 1")
    loaded = load(path)
    path.write_bytes(b"version 2, by someone else")
    with pytest.raises(FileConflict) as info:
        save(path, "my edit", expected=loaded.stamp)
    assert info.value.path == str(path)
    assert "modified" in str(info.value)
    assert path.read_bytes() == b"version 2, by someone else"
    assert _temp_files(tmp_path) == []
    # The caller decides to overwrite.
    save(path, "my edit")
    assert path.read_bytes() == b"my edit"


def test_save_refuses_to_recreate_a_file_deleted_since_it_was_read(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(b"x")
    loaded = load(path)
    path.unlink()
    with pytest.raises(FileConflict, match="deleted"):
        save(path, "y", expected=loaded.stamp)
    assert not path.exists()


def test_save_with_a_matching_or_touched_stamp_succeeds(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(b"x")
    first = save(path, "one", expected=load(path).stamp)
    second = save(path, "two", expected=first)
    os.utime(path, ns=(10**18, 10**18))  # metadata changes, content does not
    save(path, "three", expected=second)
    assert path.read_bytes() == b"three"


def test_check_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    written = save(path, "same")
    result = check(path, written)
    assert result.state is DiskState.UNCHANGED
    assert result.stamp == written


def test_check_touched_returns_the_new_stamp(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    written = save(path, "same")
    os.utime(path, ns=(10**18, 10**18))
    result = check(path, written)
    assert result.state is DiskState.TOUCHED
    assert result.stamp is not None
    assert result.stamp.mtime_ns == 10**18
    assert (result.stamp.sha256, result.stamp.size) == (written.sha256, written.size)
    assert check(path, result.stamp).state is DiskState.UNCHANGED


def test_check_touched_by_chmod_and_by_an_identical_atomic_save(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    written = save(path, "same")
    os.chmod(path, 0o600)
    chmodded = check(path, written)
    assert chmodded.state is DiskState.TOUCHED
    assert chmodded.stamp is not None
    resaved = save(path, "same")  # a new inode with the same bytes
    assert check(path, chmodded.stamp).state is DiskState.TOUCHED
    assert check(path, resaved).state is DiskState.UNCHANGED


def test_check_modified_with_the_same_size_and_mtime(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(b"aaaa")
    before = stamp(path)
    with open(path, "r+b") as f:  # in place: same inode, same size
        f.write(b"bbbb")
    os.utime(path, ns=(before.mtime_ns, before.mtime_ns))
    result = check(path, before)
    assert result.state is DiskState.MODIFIED
    assert result.stamp is not None
    assert result.stamp.sha256 == hashlib.sha256(b"bbbb").hexdigest()
    assert result.stamp.size == before.size


def test_check_modified_by_a_write_right_after_the_stamp(tmp_path: Path) -> None:
    # Where timestamps are coarse (a kernel tick, 1 s on HFS+), a change written at once after
    # the stamp lands in the same tick and every piece of metadata is equal: only the racy-stamp
    # rule can see it. Where they are fine-grained, the metadata already differs.
    path = tmp_path / "f.txt"
    path.write_bytes(b"aaaa")
    before = stamp(path)
    with open(path, "r+b") as f:
        f.write(b"bbbb")
    assert check(path, before).state is DiskState.MODIFIED


def test_a_racy_stamp_is_verified_by_content_and_a_trusted_one_is_not(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(b"bbbb")
    info = os.stat(path)
    old_hash = hashlib.sha256(b"aaaa").hexdigest()

    def seen(taken_ns: int) -> FileStamp:
        # What a stamp of "aaaa" would look like had "bbbb" been written in the same tick.
        return FileStamp(
            mtime_ns=info.st_mtime_ns,
            size=4,
            sha256=old_hash,
            ctime_ns=info.st_ctime_ns,
            ino=info.st_ino,
            dev=info.st_dev,
            taken_ns=taken_ns,
        )

    racy = seen(info.st_mtime_ns + RACY_WINDOW_NS - 1)
    assert racy.racy
    assert check(path, racy).state is DiskState.MODIFIED
    # Beyond the window, equal metadata is trusted without reading the file: that is the point
    # of the cheap path, and why a stamp must not be trusted inside the window.
    trusted = seen(info.st_mtime_ns + RACY_WINDOW_NS)
    assert not trusted.racy
    assert check(path, trusted).state is DiskState.UNCHANGED
    # A stamp taken before a mtime in the future (clock skew) is racy too.
    assert seen(info.st_mtime_ns - 1).racy


def test_check_refreshes_a_racy_stamp(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(b"x")
    long_ago = os.stat(path).st_mtime_ns - 3 * RACY_WINDOW_NS
    os.utime(path, ns=(long_ago, long_ago))
    current = stamp(path)
    assert not current.racy
    racy = dataclasses.replace(current, taken_ns=current.mtime_ns)
    assert racy.racy
    result = check(path, racy)
    assert result.state is DiskState.UNCHANGED
    assert result.stamp == current
    assert result.stamp is not None
    assert not result.stamp.racy


def test_check_deleted(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    written = save(path, "x")
    path.unlink()
    result = check(path, written)
    assert (result.state, result.stamp) == (DiskState.DELETED, None)
    # A parent directory replaced by a file is "deleted" too.
    path.parent.joinpath("d").write_bytes(b"")
    assert check(path.parent / "d" / "f.txt", written).state is DiskState.DELETED


def test_reload_recipe_from_the_module_docstring(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(b"v1\r\n")
    loaded = load(path)
    path.write_bytes(b"v2\r\n")
    result = check(path, loaded.stamp)
    assert result.state is DiskState.MODIFIED
    reloaded = load(path)
    assert reloaded.text == "v2\r\n"
    assert reloaded.stamp == result.stamp
    assert check(path, reloaded.stamp).state is DiskState.UNCHANGED


# -- purity -------------------------------------------------------------------------------------


def test_files_imports_only_the_standard_library_and_the_editor_core() -> None:
    source = Path(files_module.__file__).read_text(encoding="utf-8")
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            imported.add(node.module)
    outside = {
        name
        for name in imported
        if name.split(".")[0] not in sys.stdlib_module_names
        and not name.startswith("symphony.editor_core")
    }
    assert outside == set()
    assert "asyncio" not in {name.split(".")[0] for name in imported}
