"""JSON-RPC 2.0 message parsing and encoding, errors and their codes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from symphony.protocol import (
    Batch,
    BufferNotFound,
    Codec,
    ErrorResponse,
    InternalError,
    Invalid,
    InvalidParams,
    InvalidRequest,
    LocalProtocolError,
    MessageTooLarge,
    Notification,
    ParseError,
    Request,
    Response,
    RevisionConflict,
    RpcError,
    StreamConnection,
    UnknownRevision,
    decode_message,
    encode_message,
    parse_message,
)


def invalid(obj: Any) -> Invalid:
    result = parse_message(obj)
    assert isinstance(result, Invalid), result
    return result


def test_the_four_kinds_of_message_parse() -> None:
    assert parse_message({"jsonrpc": "2.0", "id": 1, "method": "m", "params": {"a": 1}}) == (
        Request(1, "m", {"a": 1})
    )
    assert parse_message({"jsonrpc": "2.0", "id": "x", "method": "m"}) == Request("x", "m")
    assert parse_message({"jsonrpc": "2.0", "method": "n", "params": [1]}) == Notification("n", [1])
    assert parse_message({"jsonrpc": "2.0", "id": 3, "result": None}) == Response(3, None)
    assert parse_message(
        {"jsonrpc": "2.0", "id": None, "error": {"code": -1, "message": "m", "data": [1]}}
    ) == ErrorResponse(None, -1, "m", [1])


@pytest.mark.parametrize(
    ("obj", "id_", "says"),
    [
        ({"id": 1, "method": "m"}, 1, '"jsonrpc" must be "2.0"'),
        ({"jsonrpc": "1.0", "id": 1, "method": "m"}, 1, '"jsonrpc" must be "2.0"'),
        ({"jsonrpc": "2.0", "id": 1, "method": 5}, 1, '"method" must be a string'),
        ({"jsonrpc": "2.0", "id": 1, "method": "m", "params": "x"}, 1, '"params" must be'),
        ({"jsonrpc": "2.0", "id": True, "method": "m"}, None, '"id" must be an integer or'),
        ({"jsonrpc": "2.0", "id": 1.5, "method": "m"}, None, '"id" must be an integer or'),
        ({"jsonrpc": "2.0", "id": None, "method": "m"}, None, '"id" must be an integer or'),
        ({"jsonrpc": "2.0"}, None, 'needs "method"'),
        ({"jsonrpc": "2.0", "id": 2, "result": 1, "error": {}}, 2, "exactly one of"),
        ({"jsonrpc": "2.0", "id": 2, "error": {"code": "x", "message": "m"}}, 2, "exactly one"),
    ],
)
def test_invalid_requests_say_why_and_keep_the_id_when_it_is_readable(
    obj: Any, id_: Any, says: str
) -> None:
    result = invalid(obj)
    assert isinstance(result.error, InvalidRequest)
    assert result.error.code == -32600
    assert says in result.error.message
    assert result.id == id_
    reply = result.reply()
    assert reply.id == id_
    assert reply.code == -32600


@pytest.mark.parametrize("obj", [5, "x", None, True, 1.5])
def test_a_message_must_be_an_object(obj: Any) -> None:
    result = invalid(obj)
    assert "must be an object" in result.error.message
    assert result.id is None


def test_batches_follow_the_spec() -> None:
    empty = invalid([])
    assert isinstance(empty.error, InvalidRequest)
    assert "empty batch" in empty.error.message
    batch = parse_message([{"jsonrpc": "2.0", "id": 1, "method": "a"}, 7])
    assert isinstance(batch, Batch)
    assert batch.items[0] == Request(1, "a")
    assert isinstance(batch.items[1], Invalid)
    with pytest.raises(TypeError, match="cannot be sent"):
        batch.to_wire()


def test_bodies_that_are_not_json_are_parse_errors_never_exceptions() -> None:
    for body in (b"{", b"\xff\xfe", b"", b"nul", b"[" * 100_000):
        result = decode_message(body)
        assert isinstance(result, Invalid)
        assert isinstance(result.error, ParseError)
        assert result.error.code == -32700
    garbage_msgpack = decode_message(b"\xc1", Codec.MSGPACK)
    assert isinstance(garbage_msgpack, Invalid)
    assert isinstance(garbage_msgpack.error, ParseError)


def test_msgpack_round_trip_and_text_rejected_as_msgpack() -> None:
    message = Request(1, "symphony/ping", {"data": b"raw bytes stay bytes"})
    assert decode_message(encode_message(message, Codec.MSGPACK), Codec.MSGPACK) == message
    assert isinstance(decode_message("{}", Codec.MSGPACK), Invalid)


def test_json_encoding_is_compact_utf8_and_survives_lone_surrogates() -> None:
    body = encode_message(Response(1, {"text": "é"}))
    assert body == '{"jsonrpc":"2.0","id":1,"result":{"text":"é"}}'.encode()
    lone = encode_message(Response(1, "\ud800"))  # legal in JSON (\ud800), not in UTF-8
    assert json.loads(lone)["result"] == "\ud800"


def test_what_is_not_json_cannot_be_sent() -> None:
    with pytest.raises(LocalProtocolError, match="cannot encode as JSON"):
        encode_message(Response(1, float("nan")))
    with pytest.raises(LocalProtocolError, match="cannot encode as JSON"):
        encode_message(Response(1, object()))
    with pytest.raises(LocalProtocolError, match="cannot encode as msgpack"):
        encode_message(Response(1, object()), Codec.MSGPACK)


def test_a_list_of_replies_is_sent_as_a_batch() -> None:
    conn = StreamConnection()
    data = conn.send([Response(1, 2), ErrorResponse(None, -32600, "bad")])
    conn.receive_data(data)
    received = conn.next_message()
    assert isinstance(received.message, Batch)  # type: ignore[union-attr]
    assert received.message.items == [Response(1, 2), ErrorResponse(None, -32600, "bad")]  # type: ignore[union-attr]


def test_error_codes_map_back_to_their_classes() -> None:
    conflict = ErrorResponse(5, -32901, "conflict", {"currentRevision": 12}).exception()
    assert isinstance(conflict, RevisionConflict)
    assert conflict.current_revision == 12
    assert isinstance(RpcError.from_error(-32900, "gone"), BufferNotFound)
    unknown = RpcError.from_error(-31999, "custom", {"x": 1})
    assert type(unknown) is RpcError
    assert (unknown.code, unknown.message, unknown.data) == (-31999, "custom", {"x": 1})


def test_errors_carry_their_documented_data() -> None:
    assert InternalError(log_id="abc").to_error_object() == {
        "code": -32603,
        "message": "internal error",
        "data": {"logId": "abc"},
    }
    assert InternalError(log_id="abc").log_id == "abc"
    assert RevisionConflict(current_revision=3).data == {"currentRevision": 3}
    assert UnknownRevision(revision=9, current_revision=3).current_revision == 3
    assert MessageTooLarge(size=10, limit=5).data == {"size": 10, "limit": 5}
    details = [{"type": "missing", "loc": ["uri"], "msg": "Field required"}]
    assert InvalidParams("bad", details).to_error_object()["data"] == details


def test_every_error_code_is_distinct() -> None:
    from symphony.protocol import _exceptions

    codes: dict[int, str] = {}
    for name in _exceptions.__all__:
        cls = getattr(_exceptions, name)
        if isinstance(cls, type) and issubclass(cls, RpcError) and cls is not RpcError:
            assert cls.CODE not in codes, f"{name} and {codes.get(cls.CODE)} share {cls.CODE}"
            codes[cls.CODE] = name
    symphony_range = [c for c, n in codes.items() if n not in ("SymphonyError",) and c <= -32900]
    assert all(-32999 <= c <= -32900 for c in symphony_range)
