"""One JSON-RPC byte stream, sans-IO: framing plus message parsing. h11's ``Connection`` shape.

    conn = StreamConnection()
    conn.receive_data(chunk)              # only buffers
    while True:
        event = conn.next_message()       # Received(...), NEED_DATA or CLOSED
        if event is NEED_DATA: break      # read more bytes, then call receive_data
        ...
    sock.sendall(conn.send(Response(1, None)))

``next_message`` raises ``RemoteProtocolError`` when the framing breaks, and keeps raising it
(see ``Framer``); a bad *body* in a good frame is not a framing fault and comes out as a
``Received`` holding ``Invalid``. Used by the server, the Python client and the tests alike.

A WebSocket carries one message per frame and needs no framer: use ``decode_message`` and
``encode_message`` directly.
"""

from __future__ import annotations

from dataclasses import dataclass

from symphony.protocol._codec import Codec
from symphony.protocol._framing import (
    CLOSED,
    DEFAULT_MAX_MESSAGE_SIZE,
    NEED_DATA,
    BadFrame,
    Closed,
    Framer,
    NeedData,
    frame,
)
from symphony.protocol._messages import (
    Incoming,
    Invalid,
    Message,
    Outgoing,
    decode_message,
    encode_message,
)

__all__ = ["Received", "StreamConnection"]


@dataclass(slots=True, eq=False)
class Received:
    """One thing read from the stream, and the codec it came in (reply in the same one)."""

    message: Incoming
    codec: Codec


class StreamConnection:
    """Framing and parsing for one LSP base-protocol byte stream, in both directions. No I/O."""

    def __init__(self, *, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        self._framer = Framer(max_message_size=max_message_size)

    @property
    def max_message_size(self) -> int:
        return self._framer.max_message_size

    @property
    def buffered(self) -> int:
        """Bytes received and not yet returned as messages (more pipelined input waiting)."""
        return self._framer.buffered

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Add bytes read from the peer; ``b""`` means EOF. Never parses (that is next_message)."""
        self._framer.receive_data(data)

    def next_message(self) -> Received | NeedData | Closed:
        """The next message (or batch, or ``Invalid``), NEED_DATA, or CLOSED after a clean EOF."""
        result = self._framer.next_frame()
        if result is NEED_DATA or result is CLOSED:
            return result
        if isinstance(result, BadFrame):
            return Received(Invalid(result.error), result.codec)
        assert not isinstance(result, (NeedData, Closed))
        return Received(decode_message(result.body, result.codec), result.codec)

    def send(self, message: Outgoing | list[Message], codec: Codec = Codec.JSON) -> bytes:
        """The bytes to write for a message, a ``Batch`` or a list of replies (a batch reply)."""
        return frame(encode_message(message, codec), codec)
