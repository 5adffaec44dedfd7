"""Encryption at rest (AES-256-GCM) and the chunk codecs (raw, zstd, sealed).

Theory of operation
-------------------
Each stored chunk is encoded on its own, so any chunk can be read without its neighbours:
optionally zstd-compressed (warm and cold tiers), then optionally sealed with AES-256-GCM. A
sealed record is ``0x01 | nonce (12 bytes, random) | ciphertext | tag (16 bytes)``, and its
associated data binds it to the chunk's SHA-256 and codec, so a record moved under another
chunk's name, or a codec byte flipped in the database, fails authentication like any tampering.
Authentication failures are `TamperedData`; decryption never returns unauthenticated bytes.

Random 96-bit nonces are safe for about 2^32 records per key (NIST SP 800-38D, 8.3), far more
chunks than a workspace store holds. The key itself never touches the store: the store keeps a
random salt and ``HMAC-SHA256(key, "symphony-pit key check" | salt)``, so opening it with the
wrong key fails at once with `WrongKey` instead of later, chunk by chunk, as `TamperedData`.

What encryption does not hide: the SQLite metadata (names, kinds, tags, sizes) and the SHA-256
content ids, which let someone holding a candidate file confirm that the store contains it.
Content is not put in the full-text index of an encrypted store, since the index is plaintext.

``cryptography`` and ``zstandard`` are imported on first use: the command line starts faster.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from symphony.pit._exceptions import InvalidKey, TamperedData

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "CODEC_RAW",
    "CODEC_SEALED",
    "CODEC_ZSTD",
    "KEY_ENV",
    "KEY_FILE_ENV",
    "KEY_SIZE",
    "Sealer",
    "decode_chunk",
    "encode_chunk",
    "load_key",
    "parse_key",
    "write_key_file",
]

KEY_SIZE: Final = 32
KEY_ENV: Final = "SYMPHONY_PIT_KEY"
KEY_FILE_ENV: Final = "SYMPHONY_PIT_KEY_FILE"

# Codec flags, stored per chunk. Compression happens before sealing (ciphertext does not shrink).
CODEC_RAW: Final = 0
CODEC_ZSTD: Final = 1
CODEC_SEALED: Final = 2

_RECORD_VERSION: Final = b"\x01"
_NONCE_SIZE: Final = 12
_TAG_SIZE: Final = 16
_AAD_PREFIX: Final = b"symphony-pit chunk v1\x00"
_KEY_CHECK_LABEL: Final = b"symphony-pit key check\x00"


def parse_key(material: bytes | str) -> bytes:
    """A 32-byte key from raw bytes, 64 hex digits, or base64 (surrounding whitespace ignored)."""
    if isinstance(material, bytes) and len(material) == KEY_SIZE:
        return material
    try:
        text = material.decode("ascii") if isinstance(material, bytes) else material
    except UnicodeDecodeError:
        raise InvalidKey(
            f"a key is {KEY_SIZE} bytes, 64 hex digits or base64 of 32 bytes"
        ) from None
    text = text.strip()
    if len(text) == 2 * KEY_SIZE:
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_SIZE:
        raise InvalidKey(f"a key is {KEY_SIZE} bytes, 64 hex digits or base64 of 32 bytes")
    return key


def load_key(
    *,
    key: bytes | str | None = None,
    key_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> bytes | None:
    """The store key, or None: ``key``, else ``key_file``, else the environment.

    The environment is ``SYMPHONY_PIT_KEY`` (hex or base64), else ``SYMPHONY_PIT_KEY_FILE``.
    """
    if key is not None:
        return parse_key(key)
    if key_file is not None:
        return parse_key(Path(key_file).read_bytes())
    env = os.environ if environ is None else environ
    if env.get(KEY_ENV):
        return parse_key(env[KEY_ENV])
    if env.get(KEY_FILE_ENV):
        return parse_key(Path(env[KEY_FILE_ENV]).read_bytes())
    return None


def write_key_file(path: str | os.PathLike[str]) -> bytes:
    """Create ``path`` (mode 0600, must not exist) holding a new random key in hex; return it."""
    key = secrets.token_bytes(KEY_SIZE)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, key.hex().encode("ascii") + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    return key


class Sealer:
    """AES-256-GCM sealing of chunk records under one key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_SIZE:
            raise InvalidKey(f"a key is {KEY_SIZE} bytes, got {len(key)}")
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._key = key
        self._aead: AESGCM = AESGCM(key)

    def key_check(self, salt: bytes) -> bytes:
        """The value a store keeps to recognise this key without storing it."""
        return hmac.new(self._key, _KEY_CHECK_LABEL + salt, hashlib.sha256).digest()

    def matches(self, salt: bytes, check: bytes) -> bool:
        return hmac.compare_digest(self.key_check(salt), check)

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = secrets.token_bytes(_NONCE_SIZE)
        return _RECORD_VERSION + nonce + self._aead.encrypt(nonce, plaintext, aad)

    def open(self, record: bytes, aad: bytes, label: str) -> bytes:
        """Authenticate and decrypt ``record``; `TamperedData` names ``label`` if it fails."""
        from cryptography.exceptions import InvalidTag

        if len(record) < 1 + _NONCE_SIZE + _TAG_SIZE or record[:1] != _RECORD_VERSION:
            raise TamperedData(f"chunk {label}: not a sealed record (damaged)", chunk=label)
        nonce = record[1 : 1 + _NONCE_SIZE]
        try:
            return self._aead.decrypt(nonce, record[1 + _NONCE_SIZE :], aad)
        except InvalidTag:
            raise TamperedData(
                f"chunk {label}: authentication failed; the stored bytes were modified, "
                f"truncated, or written under another key",
                chunk=label,
            ) from None


def _aad(chunk_hash: bytes, codec: int) -> bytes:
    return _AAD_PREFIX + chunk_hash + bytes([codec])


_zstd_compressors: dict[int, Any] = {}


def _compress(data: bytes | memoryview, level: int) -> bytes:
    compressor = _zstd_compressors.get(level)
    if compressor is None:
        import zstandard

        compressor = zstandard.ZstdCompressor(level=level, write_checksum=True)
        _zstd_compressors[level] = compressor
    out: bytes = compressor.compress(data)
    return out


def _decompress(data: bytes, size: int, label: str) -> bytes:
    import zstandard

    try:
        out: bytes = zstandard.ZstdDecompressor().decompress(data, max_output_size=size)
    except zstandard.ZstdError as exc:
        raise TamperedData(f"chunk {label}: damaged compressed data ({exc})", chunk=label) from None
    return out


def encode_chunk(
    data: bytes | memoryview,
    chunk_hash: bytes,
    *,
    compress_level: int | None,
    sealer: Sealer | None,
) -> tuple[int, bytes]:
    """``(codec, stored bytes)`` for a chunk: zstd if ``compress_level``, then sealed if keyed.

    Compression is kept only when it saves at least 1/16 of the size; incompressible chunks stay
    raw, which keeps reads of random or already-compressed data free of a decompression pass.
    """
    codec = CODEC_RAW
    stored: bytes | memoryview = data
    if compress_level is not None:
        packed = _compress(data, compress_level)
        if len(packed) <= len(data) - len(data) // 16:
            codec, stored = CODEC_ZSTD, packed
    if sealer is not None:
        codec |= CODEC_SEALED
        stored = sealer.seal(bytes(stored), _aad(chunk_hash, codec))
    return codec, bytes(stored)


def decode_chunk(
    stored: bytes, codec: int, chunk_hash: bytes, size: int, sealer: Sealer | None
) -> bytes:
    """The plaintext of a stored chunk. Raises `TamperedData` when it cannot be authenticated."""
    label = chunk_hash.hex()
    data = stored
    if codec & CODEC_SEALED:
        if sealer is None:
            from symphony.pit._exceptions import KeyRequired

            raise KeyRequired(f"chunk {label} is encrypted; open the store with its key")
        data = sealer.open(data, _aad(chunk_hash, codec), label)
    if codec & CODEC_ZSTD:
        data = _decompress(data, size, label)
    if len(data) != size:
        raise TamperedData(
            f"chunk {label}: {len(data)} bytes stored where {size} were written", chunk=label
        )
    return data
