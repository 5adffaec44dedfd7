"""The LSP base protocol's framing: header part, blank line, body. No I/O.

Spec: https://microsoft.github.io/language-server-protocol/specifications/lsp/3.17/specification/#baseProtocol

    Content-Length: 52\\r\\n
    Content-Type: application/vscode-jsonrpc; charset=utf-8\\r\\n
    \\r\\n
    {"jsonrpc":"2.0","id":1,"method":"symphony/ping"}

Theory of operation (h11's shape): ``receive_data`` only appends to a buffer; ``next_frame`` cuts
the next complete frame out of it, or says ``NEED_DATA``. Nothing here reads a socket, so the same
object works under asyncio, in a blocking client and in tests that split a stream at every byte.

What we are strict about, and why: ``Content-Length`` is the only thing that tells us where a
message ends, so a header part without a valid one (or with two different ones, or with a line we
cannot parse) is a ``RemoteProtocolError``, and it *sticks*: after it, any byte could be the start
of anything, the stream cannot be resynchronised, and the only honest move is to answer once and
close. What we tolerate, because LSP or HTTP habits allow it: header names in any case, spaces
around values, unknown headers (ignored), ``charset=utf8`` for ``utf-8`` (the spec asks for this),
``application/json`` for the JSON default.

Some faults leave the stream in sync because the length was readable: a body over the size limit
(we skip exactly that many bytes without buffering them) or a ``Content-Type`` we cannot decode.
These come out as a ``BadFrame`` carrying the ``RpcError`` to answer with; the connection goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from symphony.protocol._codec import Codec
from symphony.protocol._exceptions import (
    MessageTooLarge,
    ParseError,
    RemoteProtocolError,
    RpcError,
)

__all__ = [
    "CLOSED",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "MAX_HEADER_SIZE",
    "NEED_DATA",
    "BadFrame",
    "Closed",
    "Frame",
    "Framer",
    "NeedData",
    "frame",
]

#: Bodies above this many bytes are refused (and skipped). Large enough for a 50 MB document sent
#: in one ``symphony/buffer/open``, even after JSON escaping grows it a little.
DEFAULT_MAX_MESSAGE_SIZE: Final = 64 * 1024 * 1024
#: A header part longer than this without its blank line is garbage, not a slow client.
MAX_HEADER_SIZE: Final = 8 * 1024

_TERMINATOR: Final = b"\r\n\r\n"
_JSON_MEDIA_TYPES: Final = frozenset({"application/vscode-jsonrpc", "application/json"})
_MSGPACK_MEDIA_TYPES: Final = frozenset({"application/msgpack", "application/x-msgpack"})
_UTF8_CHARSETS: Final = frozenset({"utf-8", "utf8"})
# Compacting the buffer copies what is left; do it only once the consumed prefix is large, so
# a stream of small messages costs O(1) amortised per byte.
_COMPACT_AT: Final = 64 * 1024


class NeedData:
    """Sentinel type: the buffer does not hold a whole frame yet; call ``receive_data``."""

    _instance: NeedData | None = None

    def __new__(cls) -> NeedData:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NEED_DATA"


class Closed:
    """Sentinel type: the peer closed the stream cleanly, between two messages."""

    _instance: Closed | None = None

    def __new__(cls) -> Closed:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "CLOSED"


NEED_DATA: Final = NeedData()
CLOSED: Final = Closed()


@dataclass(slots=True)
class Frame:
    """One message body, cut out of the stream, and the codec its ``Content-Type`` names."""

    body: bytes | bytearray
    codec: Codec


@dataclass(slots=True)
class BadFrame:
    """A frame whose length was readable but whose body cannot be used.

    The stream is still in sync: answer ``error`` (with ``id: null``, since the body was not read)
    and keep reading. ``codec`` is the codec to answer in.
    """

    error: RpcError
    codec: Codec


def frame(body: bytes, codec: Codec = Codec.JSON) -> bytes:
    """The bytes on the wire for one body: its header part, then the body itself."""
    if codec is Codec.JSON:
        # The JSON default needs no Content-Type (the spec's default); saying nothing keeps
        # every message 60 bytes shorter and matches what LSP clients send.
        return b"Content-Length: %d\r\n\r\n%b" % (len(body), body)
    return b"Content-Length: %d\r\nContent-Type: %b\r\n\r\n%b" % (
        len(body),
        codec.content_type.encode("ascii"),
        body,
    )


class Framer:
    """Cuts LSP base-protocol frames out of a byte stream. Sans-IO.

    Invariants:
      - ``_buf[_pos:]`` holds the bytes received and not yet consumed.
      - ``_body_length`` is not None exactly when a header part was parsed and its body is awaited.
      - ``_skip`` > 0 only while discarding the body of an oversized frame; those bytes are never
        buffered.
      - once ``_error`` is set, every ``next_frame`` raises it again (the stream is lost).
    """

    def __init__(self, *, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        if max_message_size < 1:
            raise ValueError(f"max_message_size must be positive, not {max_message_size}")
        self.max_message_size = max_message_size
        self._buf = bytearray()
        self._pos = 0
        self._body_length: int | None = None
        self._codec = Codec.JSON
        self._skip = 0
        self._pending_error: RpcError | None = None
        self._eof = False
        self._error: RemoteProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received and not yet returned in a frame."""
        return len(self._buf) - self._pos

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Add bytes from the peer. ``b""`` means the peer closed its end (EOF)."""
        if not data:
            self._eof = True
            return
        if self._eof:
            raise RuntimeError("receive_data after EOF")
        if self._skip:
            if len(data) <= self._skip:
                self._skip -= len(data)
                return
            data = memoryview(data)[self._skip :]
            self._skip = 0
        self._buf += data

    def next_frame(self) -> Frame | BadFrame | NeedData | Closed:
        """The next complete frame, or NEED_DATA, or CLOSED after a clean EOF.

        Raises ``RemoteProtocolError`` (again and again) once the framing is broken.
        """
        if self._error is not None:
            raise self._error
        try:
            return self._next_frame()
        except RemoteProtocolError as exc:
            self._error = exc
            raise

    def _next_frame(self) -> Frame | BadFrame | NeedData | Closed:
        if self._body_length is None:
            end = self._buf.find(_TERMINATOR, self._pos)
            if end < 0:
                if self.buffered > MAX_HEADER_SIZE:
                    raise RemoteProtocolError(
                        f"no end of header part within {MAX_HEADER_SIZE} bytes: "
                        "expected 'Content-Length: N\\r\\n\\r\\n' before each message"
                    )
                return self._at_eof()
            if end - self._pos > MAX_HEADER_SIZE:
                raise RemoteProtocolError(f"header part longer than {MAX_HEADER_SIZE} bytes")
            length, codec, codec_error = _parse_headers(self._buf[self._pos : end])
            self._pos = end + len(_TERMINATOR)
            if length > self.max_message_size:
                # The length is known, so the stream stays in sync: drop that many bytes as they
                # come instead of buffering them, and answer with an error now.
                available = self.buffered
                if available >= length:
                    self._pos += length
                else:
                    self._skip = length - available
                    self._pos = len(self._buf)
                self._compact()
                return BadFrame(MessageTooLarge(size=length, limit=self.max_message_size), codec)
            self._body_length = length
            self._codec = codec
            # An unusable Content-Type is answered once its body has been consumed.
            self._pending_error = codec_error
        length = self._body_length
        if self.buffered < length:
            return self._at_eof()
        start = self._pos
        body = self._buf[start : start + length]  # one copy; decoders take a bytearray
        self._pos = start + length
        self._body_length = None
        self._compact()
        if self._pending_error is not None:
            error, self._pending_error = self._pending_error, None
            return BadFrame(error, Codec.JSON)
        return Frame(body, self._codec)

    def _at_eof(self) -> NeedData | Closed:
        if not self._eof:
            return NEED_DATA
        if self.buffered == 0 and self._body_length is None and self._skip == 0:
            return CLOSED
        if self._body_length is not None or self._skip:
            expected = self._body_length if self._body_length is not None else self._skip
            raise RemoteProtocolError(
                f"connection closed in the middle of a message body "
                f"({self.buffered} of {expected} bytes received)"
            )
        raise RemoteProtocolError(
            f"connection closed in the middle of a header part ({self.buffered} bytes received)"
        )

    def _compact(self) -> None:
        if self._pos == len(self._buf):
            self._buf.clear()
            self._pos = 0
        elif self._pos >= _COMPACT_AT:
            del self._buf[: self._pos]
            self._pos = 0


_FAST_PREFIX: Final = b"Content-Length: "
_FAST_PREFIX_LEN: Final = len(_FAST_PREFIX)


def _parse_headers(raw: bytes | bytearray) -> tuple[int, Codec, RpcError | None]:
    """Content-Length, the codec, and an error to answer with if the Content-Type is unusable."""
    # Fast path: almost every message carries exactly one header, spelled exactly so.
    if raw.startswith(_FAST_PREFIX):
        digits = raw[_FAST_PREFIX_LEN:]
        if digits.isdigit() and len(digits) < 20:
            return int(digits), Codec.JSON, None
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise RemoteProtocolError(
            "header part is not ASCII: expected 'Content-Length: N\\r\\n\\r\\n' before each message"
        ) from None
    if not text:
        raise RemoteProtocolError("missing Content-Length header (empty header part)")
    length: int | None = None
    content_type: str | None = None
    for line in text.split("\r\n"):
        name, sep, value = line.partition(":")
        if not sep or not _is_token(name):
            raise RemoteProtocolError(
                f"malformed header line {line[:80]!r}: expected 'Name: value' "
                "(is a message body missing its Content-Length header?)"
            )
        name = name.lower()
        value = value.strip()
        if name == "content-length":
            if not value.isdigit() or not value.isascii():
                raise RemoteProtocolError(f"invalid Content-Length {value[:40]!r}: not a number")
            parsed = int(value)
            if length is not None and parsed != length:
                raise RemoteProtocolError(f"conflicting Content-Length headers: {length}, {parsed}")
            length = parsed
        elif name == "content-type":
            content_type = value
    if length is None:
        raise RemoteProtocolError("missing Content-Length header")
    if content_type is None:
        return length, Codec.JSON, None
    codec, error = _parse_content_type(content_type)
    return length, codec, error


_TOKEN_CHARS: Final = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def _is_token(name: str) -> bool:
    """An HTTP field name (RFC 9110 token), which LSP header names are."""
    return bool(name) and all(ch in _TOKEN_CHARS for ch in name)


def _parse_content_type(value: str) -> tuple[Codec, RpcError | None]:
    media_type, *parameters = (part.strip() for part in value.split(";"))
    media_type = media_type.lower()
    charset = None
    for parameter in parameters:
        key, _, val = parameter.partition("=")
        if key.strip().lower() == "charset":
            charset = val.strip().strip('"').lower()
    if media_type in _MSGPACK_MEDIA_TYPES:
        return Codec.MSGPACK, None
    if media_type in _JSON_MEDIA_TYPES:
        if charset is None or charset in _UTF8_CHARSETS:
            return Codec.JSON, None
        return Codec.JSON, ParseError(f"unsupported charset {charset!r}: only utf-8 is supported")
    return Codec.JSON, ParseError(
        f"unsupported Content-Type {value!r}: use application/vscode-jsonrpc "
        "(JSON, the default) or application/msgpack"
    )
