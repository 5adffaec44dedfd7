"""Message bodies: JSON (the LSP default) or msgpack, chosen per message by its Content-Type.

A message whose ``Content-Type`` is ``application/msgpack`` has a msgpack body, and its reply uses
the same codec (so a msgpack client never sees JSON). WebSocket maps the codec to the frame type:
text frames carry JSON, binary frames carry msgpack.

The standard library's ``json`` is the JSON codec: it is what every Python has, and no faster
JSON package is a dependency of Symphony. Both directions skip the per-call set-up of the public
API (``JSONEncoder.encode`` builds a new C encoder on every call; ``decode`` runs two regexes):
that set-up costs more than the work on a typical small message.
msgpack is imported on first use: a JSON-only session (every LSP editor) never pays for it.
"""

from __future__ import annotations

import enum
import json
from typing import Any, Final

from symphony.protocol._exceptions import LocalProtocolError, ParseError

__all__ = ["Codec", "decode_body", "encode_body"]


class Codec(enum.Enum):
    """How a message body is encoded. The value is the ``Content-Type`` we send with it."""

    JSON = "application/vscode-jsonrpc; charset=utf-8"
    MSGPACK = "application/msgpack"

    @property
    def content_type(self) -> str:
        return self.value


# ensure_ascii=False keeps non-ASCII text compact (one UTF-8 sequence instead of a \\u escape);
# allow_nan=False because NaN and Infinity are not JSON and a peer's parser may reject them.
_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
# The fallback for strings holding lone surrogates (valid in a JSON \\u escape, not in UTF-8).
_ASCII_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def _not_json(obj: Any) -> Any:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


# The C encoder, built once: JSONEncoder.encode builds a new one on every call, which costs more
# than encoding a small message. No circular-reference markers: a cycle ends in RecursionError.
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
_C_ENCODE: Final = (
    _c_make_encoder(
        None, _not_json, json.encoder.encode_basestring, None, ":", ",", False, False, False
    )
    if _c_make_encoder is not None
    else None
)
_DECODER: Final = json.JSONDecoder()
_raw_decode: Final = _DECODER.raw_decode


def _encode_json(obj: Any) -> str:
    if _C_ENCODE is None:
        return _ENCODER.encode(obj)
    return "".join(_C_ENCODE(obj, 0))


def _decode_json(text: str) -> Any:
    # raw_decode skips decode()'s two whitespace regex matches; what it refuses (leading
    # whitespace, trailing data) goes through decode() for the exact behaviour and message.
    try:
        obj, end = _raw_decode(text)
    except ValueError:
        return _DECODER.decode(text)
    if end != len(text) and text[end:].strip():
        return _DECODER.decode(text)
    return obj


_msgpack: Any = None


def _load_msgpack() -> Any:
    global _msgpack
    if _msgpack is None:
        import msgpack

        _msgpack = msgpack
    return _msgpack


def decode_body(body: bytes | bytearray | str, codec: Codec) -> Any:
    """The Python value of a message body. Raises ``ParseError`` for anything undecodable."""
    if codec is Codec.JSON:
        try:
            return _decode_json(body if isinstance(body, str) else body.decode("utf-8"))
        except RecursionError:
            raise ParseError("JSON nested too deeply") from None
        except (ValueError, TypeError) as exc:  # JSONDecodeError and UnicodeDecodeError
            raise ParseError(f"invalid JSON: {exc}") from None
    msgpack = _load_msgpack()
    if isinstance(body, str):
        raise ParseError("a msgpack body must be bytes (a binary WebSocket frame)")
    try:
        return msgpack.unpackb(body, raw=False)
    except RecursionError:
        raise ParseError("msgpack nested too deeply") from None
    except Exception as exc:  # msgpack raises ValueError subclasses, TypeError, StackError...
        raise ParseError(f"invalid msgpack: {type(exc).__name__}: {exc}") from None


def encode_body(obj: Any, codec: Codec) -> bytes:
    """The body bytes for a JSON-compatible value. Raises ``LocalProtocolError`` if it is not."""
    if codec is Codec.JSON:
        try:
            return _encode_json(obj).encode("utf-8")
        except UnicodeEncodeError:
            return _ASCII_ENCODER.encode(obj).encode("ascii")
        except (TypeError, ValueError, RecursionError) as exc:
            raise LocalProtocolError(f"cannot encode as JSON: {exc}") from exc
    msgpack = _load_msgpack()
    try:
        data: bytes = msgpack.packb(obj, use_bin_type=True)
    except (TypeError, ValueError, OverflowError, RecursionError, UnicodeEncodeError) as exc:
        raise LocalProtocolError(f"cannot encode as msgpack: {exc}") from exc
    return data
