"""JSON-RPC 2.0 messages: plain slotted classes, parsed from and turned into wire objects.

Spec: https://www.jsonrpc.org/specification, with LSP's narrowing (ids are integers or strings).

The envelope is on every message's path, so it is parsed by hand with ``type(x) is ...`` checks
rather than by pydantic or cattrs: that costs well under a microsecond, where a validating model
costs several. Params stay the raw JSON value here; the server validates them with the method's
pydantic model, which is where -32602 and its details come from.

Parsing never raises for a bad message: it returns ``Invalid`` with the ``RpcError`` to answer and
the request's id when one could be read (``None`` otherwise, which goes out as ``"id": null``).
A batch (a JSON array) becomes ``Batch``, whose items are parsed one by one; an empty array is a
single ``Invalid`` (the spec's "invalid request" for ``[]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias

from symphony.protocol._codec import Codec, decode_body, encode_body
from symphony.protocol._exceptions import InvalidRequest, ParseError, RpcError

__all__ = [
    "Batch",
    "ErrorResponse",
    "Id",
    "Incoming",
    "Invalid",
    "Message",
    "Notification",
    "Outgoing",
    "Params",
    "Request",
    "Response",
    "decode_message",
    "encode_message",
    "parse_message",
]

Id: TypeAlias = int | str
#: JSON-RPC params: a structured value (object or array), or absent (``None``).
Params: TypeAlias = dict[str, Any] | list[Any] | None


@dataclass(slots=True)
class Request:
    """A call that expects a response with the same ``id``."""

    id: Id
    method: str
    params: Params = None

    def to_wire(self) -> dict[str, Any]:
        obj: dict[str, Any] = {"jsonrpc": "2.0", "id": self.id, "method": self.method}
        if self.params is not None:
            obj["params"] = self.params
        return obj


@dataclass(slots=True)
class Notification:
    """A call without ``id``: never answered, not even with an error."""

    method: str
    params: Params = None

    def to_wire(self) -> dict[str, Any]:
        obj: dict[str, Any] = {"jsonrpc": "2.0", "method": self.method}
        if self.params is not None:
            obj["params"] = self.params
        return obj


@dataclass(slots=True)
class Response:
    """A successful reply. ``result`` may be ``None`` (sent as ``"result": null``)."""

    id: Id
    result: Any = None

    def to_wire(self) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": self.id, "result": self.result}


@dataclass(slots=True)
class ErrorResponse:
    """A failed reply. ``id`` is ``None`` when the request's id could not be read."""

    id: Id | None
    code: int
    message: str
    data: Any = None

    @classmethod
    def from_exception(cls, id: Id | None, error: RpcError) -> ErrorResponse:
        return cls(id, error.code, error.message, error.data)

    def exception(self) -> RpcError:
        """The matching ``RpcError`` subclass, ready to raise (what a client does with it)."""
        return RpcError.from_error(self.code, self.message, self.data)

    def to_wire(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return {"jsonrpc": "2.0", "id": self.id, "error": error}


@dataclass(slots=True, eq=False)
class Invalid:
    """Something received that is not a valid message: answer ``ErrorResponse(id, error)``."""

    error: RpcError
    id: Id | None = None

    def reply(self) -> ErrorResponse:
        return ErrorResponse.from_exception(self.id, self.error)


Message: TypeAlias = Request | Notification | Response | ErrorResponse


@dataclass(slots=True)
class Batch:
    """A JSON-RPC batch: an array of messages, each parsed on its own (some may be ``Invalid``).

    Invariants: ``items`` is never empty (``[]`` parses to ``Invalid``).
    """

    items: list[Message | Invalid]

    def to_wire(self) -> list[Any]:
        wire: list[Any] = []
        for item in self.items:
            if isinstance(item, Invalid):
                raise TypeError("an Invalid message cannot be sent; send item.reply()")
            wire.append(item.to_wire())
        return wire


#: What can come out of the parser.
Incoming: TypeAlias = Message | Batch | Invalid
#: What can be sent.
Outgoing: TypeAlias = Message | Batch


def parse_message(obj: Any) -> Incoming:
    """Classify a decoded JSON value as a message, a batch, or ``Invalid``. Never raises."""
    if type(obj) is dict:
        return _parse_one(obj)
    if type(obj) is list:
        if not obj:
            return Invalid(InvalidRequest("empty batch: a batch array needs at least one message"))
        return Batch(
            [_parse_one(item) if type(item) is dict else _not_object(item) for item in obj]
        )
    return _not_object(obj)


def decode_message(body: bytes | bytearray | str, codec: Codec = Codec.JSON) -> Incoming:
    """Decode and classify one body (one framed message, or one WebSocket frame). Never raises."""
    try:
        obj = decode_body(body, codec)
    except ParseError as exc:
        return Invalid(exc)
    return parse_message(obj)


def encode_message(message: Outgoing | list[Message], codec: Codec = Codec.JSON) -> bytes:
    """The body bytes of a message or batch (a list of messages is sent as a batch)."""
    if isinstance(message, list):
        return encode_body([item.to_wire() for item in message], codec)
    return encode_body(message.to_wire(), codec)


def _not_object(obj: Any) -> Invalid:
    return Invalid(InvalidRequest(f"a JSON-RPC message must be an object, not {_json_type(obj)}"))


def _valid_id(value: Any) -> bool:
    # bool is an int subclass; true/false are not ids.
    kind = type(value)
    return kind is int or kind is str


def _parse_one(obj: dict[str, Any]) -> Message | Invalid:
    raw_id = obj.get("id")
    id_: Id | None = raw_id if _valid_id(raw_id) else None
    if obj.get("jsonrpc") != "2.0":
        return Invalid(InvalidRequest('"jsonrpc" must be "2.0"'), id_)
    method = obj.get("method")
    if method is not None:
        if type(method) is not str:
            return Invalid(InvalidRequest('"method" must be a string'), id_)
        params = obj.get("params")
        if params is not None and type(params) is not dict and type(params) is not list:
            return Invalid(InvalidRequest('"params" must be an object or an array'), id_)
        if "id" not in obj:
            return Notification(method, params)
        if id_ is None:
            return Invalid(InvalidRequest('"id" must be an integer or a string'))
        return Request(id_, method, params)
    if "id" not in obj:
        return Invalid(InvalidRequest('a message needs "method" (a call) or "id" (a reply)'))
    has_result = "result" in obj
    error = obj.get("error")
    if has_result and error is None:
        if id_ is None:
            return Invalid(InvalidRequest('"id" of a response must be an integer or a string'))
        return Response(id_, obj["result"])
    if not has_result and type(error) is dict:
        code = error.get("code")
        message = error.get("message")
        if type(code) is int and type(message) is str and (raw_id is None or id_ is not None):
            return ErrorResponse(id_, code, message, error.get("data"))
    return Invalid(
        InvalidRequest('a response needs exactly one of "result" or "error" {code, message}'), id_
    )


def _json_type(obj: Any) -> str:
    if obj is None:
        return "null"
    if isinstance(obj, bool):
        return "a boolean"
    if isinstance(obj, (int, float)):
        return "a number"
    if isinstance(obj, str):
        return "a string"
    if isinstance(obj, list):
        return "an array"
    return type(obj).__name__
