"""Property tests: messages -> bytes -> (split anywhere) -> parser -> the same messages; and
garbage never makes the parser raise anything but the protocol's own framing error."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from symphony.protocol import (
    CLOSED,
    NEED_DATA,
    Batch,
    Codec,
    ErrorResponse,
    Invalid,
    Message,
    Notification,
    Received,
    RemoteProtocolError,
    Request,
    Response,
    StreamConnection,
    decode_message,
    encode_message,
    frame,
)

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | INT64
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=6,
)
ids = INT64 | st.text(max_size=10)
methods = st.text(max_size=30)
params = (
    st.none()
    | st.dictionaries(st.text(max_size=8), json_values, max_size=4)
    | st.lists(json_values, max_size=4)
)
messages: st.SearchStrategy[Message] = st.one_of(
    st.builds(Request, ids, methods, params),
    st.builds(Notification, methods, params),
    st.builds(Response, ids, json_values),
    st.builds(ErrorResponse, st.none() | ids, INT64, st.text(max_size=20), json_values),
)
payloads = messages | st.lists(messages, min_size=1, max_size=3).map(Batch)
codecs = st.sampled_from([Codec.JSON, Codec.MSGPACK])


def feed(conn: StreamConnection, data: bytes, cuts: list[int]) -> list[Received]:
    """Feed ``data`` to ``conn`` cut at ``cuts``, then EOF; collect everything parsed."""
    out: list[Received] = []
    bounds = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    for start, end in itertools.pairwise(bounds):
        if start == end:
            continue  # b"" would mean EOF
        conn.receive_data(data[start:end])
        while (event := conn.next_message()) is not NEED_DATA:
            assert isinstance(event, Received)
            out.append(event)
    conn.receive_data(b"")
    while (event := conn.next_message()) is not CLOSED:
        assert isinstance(event, Received)
        out.append(event)
    return out


@given(
    st.lists(st.tuples(payloads, codecs), min_size=1, max_size=4),
    st.lists(st.integers(0, 10**6), max_size=6),
)
def test_messages_survive_framing_and_any_chunking(
    sent: list[tuple[Message | Batch, Codec]], cuts: list[int]
) -> None:
    sender = StreamConnection()
    data = b"".join(sender.send(message, codec) for message, codec in sent)
    received = feed(StreamConnection(), data, cuts)
    assert [(r.message, r.codec) for r in received] == sent


@given(payloads, codecs)
def test_one_message_per_frame_round_trips_without_framing(
    message: Message | Batch, codec: Codec
) -> None:
    assert decode_message(encode_message(message, codec), codec) == message


@given(st.binary(max_size=300), st.lists(st.integers(0, 10**6), max_size=8))
def test_garbage_bytes_raise_only_remote_protocol_error(data: bytes, cuts: list[int]) -> None:
    conn = StreamConnection(max_message_size=64)
    try:
        received = feed(conn, data, cuts)
    except RemoteProtocolError:
        return
    for event in received:
        assert isinstance(event, Received)


@given(st.binary(max_size=200), codecs)
def test_a_garbage_body_in_a_good_frame_is_answered_not_raised(body: bytes, codec: Codec) -> None:
    conn = StreamConnection()
    conn.receive_data(frame(body, codec) + frame(b'{"jsonrpc":"2.0","method":"after"}'))
    first = conn.next_message()
    second = conn.next_message()
    assert isinstance(first, Received)
    if isinstance(first.message, Invalid):
        assert first.message.error.code in (-32700, -32600)
    assert isinstance(second, Received)
    assert second.message == Notification("after")


@given(json_values)
def test_any_decoded_json_value_classifies_without_raising(value: Any) -> None:
    from symphony.protocol import parse_message

    parse_message(value)
    parse_message({"jsonrpc": "2.0", "id": value, "method": "m", "params": value})
    parse_message({"jsonrpc": "2.0", "id": value, "error": value})
