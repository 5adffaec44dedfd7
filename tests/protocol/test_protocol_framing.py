"""The LSP base-protocol framer: strict where it matters, tolerant where LSP allows, no I/O."""

from __future__ import annotations

import pytest

from symphony.protocol import (
    CLOSED,
    NEED_DATA,
    BadFrame,
    Codec,
    Frame,
    Framer,
    MessageTooLarge,
    ParseError,
    RemoteProtocolError,
    frame,
)


def frames_of(data: bytes, *, max_message_size: int = 1 << 20) -> list[object]:
    framer = Framer(max_message_size=max_message_size)
    framer.receive_data(data)
    framer.receive_data(b"")
    out: list[object] = []
    while (event := framer.next_frame()) is not CLOSED:
        out.append(event)
    return out


def test_a_frame_round_trips_and_the_json_default_has_no_content_type() -> None:
    data = frame(b'{"a":1}')
    assert data == b'Content-Length: 7\r\n\r\n{"a":1}'
    assert frames_of(data) == [Frame(b'{"a":1}', Codec.JSON)]


def test_msgpack_frames_say_so_and_come_back_as_msgpack() -> None:
    data = frame(b"\x80", Codec.MSGPACK)
    assert b"Content-Type: application/msgpack\r\n" in data
    assert frames_of(data) == [Frame(b"\x80", Codec.MSGPACK)]


def test_need_data_until_the_whole_frame_is_there() -> None:
    data = frame(b'{"x":[1,2,3]}')
    framer = Framer()
    for byte in data[:-1]:
        framer.receive_data(bytes([byte]))
        assert framer.next_frame() is NEED_DATA
    framer.receive_data(data[-1:])
    assert framer.next_frame() == Frame(b'{"x":[1,2,3]}', Codec.JSON)
    assert framer.next_frame() is NEED_DATA


@pytest.mark.parametrize(
    "header",
    [
        b"content-length: 2\r\n\r\n",
        b"CONTENT-LENGTH:2\r\n\r\n",
        b"Content-Length:   2   \r\n\r\n",
        b"Content-Length: 2\r\nX-Unknown: whatever\r\n\r\n",
        b"Content-Length: 2\r\nContent-Type: application/vscode-jsonrpc; charset=utf8\r\n\r\n",
        b"Content-Type: application/vscode-jsonrpc; charset=UTF-8\r\nContent-Length: 2\r\n\r\n",
        b"Content-Length: 2\r\nContent-Type: application/json\r\n\r\n",
        b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n",
        b"Content-Length: 002\r\n\r\n",
    ],
)
def test_what_lsp_allows_is_tolerated(header: bytes) -> None:
    assert frames_of(header + b"{}") == [Frame(b"{}", Codec.JSON)]


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b'{"jsonrpc":"2.0"}\r\n\r\n', "malformed header line"),
        (b"Content-Type: application/json\r\n\r\n{}", "missing Content-Length"),
        (b"\r\n\r\n{}", "missing Content-Length"),
        (b"Content-Length: abc\r\n\r\n{}", "invalid Content-Length 'abc'"),
        (b"Content-Length: -2\r\n\r\n{}", "invalid Content-Length '-2'"),
        (b"Content-Length: 1.5\r\n\r\n{}", "invalid Content-Length"),
        (b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", "conflicting Content-Length"),
        (b"Content-Length : 2\r\n\r\n{}", "malformed header line"),
        (b"Content-L\xe9ngth: 2\r\n\r\n{}", "not ASCII"),
    ],
)
def test_framing_faults_are_remote_errors_that_say_what_is_wrong(data: bytes, says: str) -> None:
    framer = Framer()
    framer.receive_data(data)
    with pytest.raises(RemoteProtocolError, match=says):
        framer.next_frame()


def test_a_framing_error_sticks() -> None:
    framer = Framer()
    framer.receive_data(b"garbage without headers\r\n\r\n")
    with pytest.raises(RemoteProtocolError) as first:
        framer.next_frame()
    framer.receive_data(frame(b"{}"))  # even a good frame cannot resynchronise the stream
    with pytest.raises(RemoteProtocolError) as second:
        framer.next_frame()
    assert second.value is first.value


def test_an_endless_header_is_refused_instead_of_buffered_forever() -> None:
    framer = Framer()
    framer.receive_data(b"X" * 10_000)
    with pytest.raises(RemoteProtocolError, match="no end of header part"):
        framer.next_frame()


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"Content-Length: 10\r\n\r\n{}", r"middle of a message body \(2 of 10 bytes"),
        (b"Content-Len", "middle of a header part"),
    ],
)
def test_eof_inside_a_message_is_an_error(data: bytes, says: str) -> None:
    with pytest.raises(RemoteProtocolError, match=says):
        frames_of(data)


def test_eof_between_messages_is_a_clean_close() -> None:
    framer = Framer()
    framer.receive_data(frame(b"{}"))
    framer.receive_data(b"")
    assert framer.next_frame() == Frame(b"{}", Codec.JSON)
    assert framer.next_frame() is CLOSED
    assert framer.next_frame() is CLOSED
    with pytest.raises(RuntimeError, match="after EOF"):
        framer.receive_data(b"more")


def test_an_oversized_message_is_skipped_and_the_stream_stays_in_sync() -> None:
    big = b"x" * 5000
    framer = Framer(max_message_size=1000)
    data = frame(big) + frame(b'{"after":1}')
    # Feed in small chunks, so the skipped body arrives over many calls.
    events: list[object] = []
    for i in range(0, len(data), 333):
        framer.receive_data(data[i : i + 333])
        while (event := framer.next_frame()) is not NEED_DATA:
            events.append(event)
    assert len(events) == 2
    bad = events[0]
    assert isinstance(bad, BadFrame)
    assert isinstance(bad.error, MessageTooLarge)
    assert bad.error.data == {"size": 5000, "limit": 1000}
    assert "5000 bytes exceeds the limit of 1000" in bad.error.message
    assert events[1] == Frame(b'{"after":1}', Codec.JSON)
    assert framer.buffered == 0


def test_an_oversized_message_already_buffered_is_skipped_too() -> None:
    events = frames_of(frame(b"y" * 50) + frame(b"{}"), max_message_size=10)
    assert isinstance(events[0], BadFrame)
    assert events[1] == Frame(b"{}", Codec.JSON)


@pytest.mark.parametrize(
    ("content_type", "says"),
    [
        (b"text/plain", "unsupported Content-Type 'text/plain'"),
        (b"application/vscode-jsonrpc; charset=latin-1", "unsupported charset 'latin-1'"),
    ],
)
def test_an_unusable_content_type_is_answered_and_the_stream_goes_on(
    content_type: bytes, says: str
) -> None:
    data = b"Content-Length: 2\r\nContent-Type: " + content_type + b"\r\n\r\n{}" + frame(b"[1]")
    events = frames_of(data)
    bad = events[0]
    assert isinstance(bad, BadFrame)
    assert isinstance(bad.error, ParseError)
    assert says in bad.error.message
    assert events[1] == Frame(b"[1]", Codec.JSON)


def test_a_body_in_the_same_chunk_as_many_others_is_cut_exactly() -> None:
    bodies = [b'{"i":%d}' % i for i in range(1000)]
    events = frames_of(b"".join(frame(b) for b in bodies))
    assert events == [Frame(b, Codec.JSON) for b in bodies]


def test_max_message_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Framer(max_message_size=0)
