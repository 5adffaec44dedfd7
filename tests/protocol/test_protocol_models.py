"""Params and result models, the method catalogue, the generated schema, and the protocol's
promise to do no I/O."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

import symphony.protocol as protocol
from symphony.protocol import (
    METHODS,
    BufferEditParams,
    BufferOpenParams,
    InitializeParams,
    NotificationSpec,
    PingParams,
    RequestSpec,
)
from symphony.protocol.schema import build_schema

REPO = Path(__file__).resolve().parents[2]
PROTOCOL_SRC = REPO / "src" / "symphony" / "protocol"

#: The method names the daemon issue fixes.
ISSUE_METHODS = {
    "symphony/buffer/open",
    "symphony/buffer/getText",
    "symphony/buffer/edit",
    "symphony/buffer/undo",
    "symphony/buffer/redo",
    "symphony/buffer/save",
    "symphony/buffer/close",
    "symphony/buffer/list",
    "symphony/buffer/subscribe",
    "symphony/buffer/unsubscribe",
    "symphony/buffer/didChange",
    "symphony/buffer/didChangeOnDisk",
    "symphony/subscribe",
    "symphony/event",
    "symphony/eventsDropped",
    "symphony/ping",
    "symphony/info",
    "initialize",
    "initialized",
    "shutdown",
    "exit",
    "$/cancelRequest",
    "$/setTrace",
}


def test_the_catalogue_has_every_method_the_issue_names() -> None:
    assert set(METHODS) >= ISSUE_METHODS
    for name, spec in METHODS.items():
        assert spec.method == name
        assert issubclass(spec.params, BaseModel)
        assert isinstance(spec, RequestSpec | NotificationSpec)


def test_wire_names_are_camel_case_and_both_spellings_validate() -> None:
    wire = {
        "uri": "file:///a",
        "baseRevision": 3,
        "edits": [
            {
                "range": {"start": {"line": 0, "character": 1}, "end": {"line": 0, "character": 2}},
                "text": "x",
            }
        ],
    }
    by_alias = BufferEditParams.model_validate(wire)
    by_name = BufferEditParams.model_validate(
        {"uri": "file:///a", "base_revision": 3, "edits": wire["edits"]}
    )
    assert by_alias.base_revision == by_name.base_revision == 3
    assert by_alias.model_dump(exclude_none=True) == wire


def test_symphony_params_refuse_unknown_fields_naming_them() -> None:
    with pytest.raises(ValidationError) as caught:
        BufferEditParams.model_validate({"uri": "u", "baseRevison": 1, "edits": []})
    errors = caught.value.errors()
    assert {e["type"] for e in errors} == {"missing", "extra_forbidden"}
    assert ("baseRevison",) in [e["loc"] for e in errors]


def test_lsp_params_ignore_unknown_fields_and_read_what_symphony_needs() -> None:
    params = InitializeParams.model_validate(
        {
            "processId": 1,
            "capabilities": {"general": {"positionEncodings": ["utf-8", 7]}, "x": {}},
            "initializationOptions": {"token": "t", "other": 1},
            "someFutureField": True,
        }
    )
    assert params.token == "t"
    assert params.position_encodings == ["utf-8"]
    assert InitializeParams.model_validate({"initializationOptions": "str"}).token is None
    assert InitializeParams.model_validate({}).position_encodings is None


def test_buffer_open_needs_something_to_open() -> None:
    with pytest.raises(ValidationError, match="at least one of uri, path or text"):
        BufferOpenParams.model_validate({"languageId": "python"})
    assert BufferOpenParams.model_validate({"text": ""}).text == ""


def test_positions_are_not_negative() -> None:
    with pytest.raises(ValidationError):
        BufferEditParams.model_validate(
            {
                "uri": "u",
                "baseRevision": 0,
                "edits": [
                    {
                        "range": {
                            "start": {"line": -1, "character": 0},
                            "end": {"line": 0, "character": 0},
                        },
                        "text": "",
                    }
                ],
            }
        )


def test_ping_echoes_any_json() -> None:
    assert PingParams.model_validate({"data": {"a": [1, None]}}).data == {"a": [1, None]}


def test_the_committed_schema_is_what_the_command_generates() -> None:
    committed = REPO / "docs" / "protocol.schema.json"
    generated = subprocess.run(
        [sys.executable, "-m", "symphony.protocol.schema"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert json.loads(generated) == build_schema()
    assert committed.read_text() == generated, (
        "docs/protocol.schema.json is stale: run "
        "`python -m symphony.protocol.schema > docs/protocol.schema.json`"
    )


def test_the_schema_describes_every_method_and_error() -> None:
    schema = build_schema()
    assert set(schema["methods"]) == set(METHODS)
    edit = schema["methods"]["symphony/buffer/edit"]
    assert edit["kind"] == "request"
    assert edit["params"] == {"$ref": "#/$defs/BufferEditParams"}
    assert "baseRevision" in schema["$defs"]["BufferEditParams"]["properties"]
    assert schema["methods"]["symphony/buffer/didChange"]["direction"] == "serverToClient"
    assert schema["errors"]["-32901"]["name"] == "RevisionConflict"
    assert schema["errors"]["-32603"]["name"] == "InternalError"


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(PROTOCOL_SRC.glob("*.py")), ids=lambda p: p.name)
def test_protocol_sources_import_no_io(path: Path) -> None:
    forbidden = {"asyncio", "socket", "selectors", "symphony.server"}
    imported = _imported_modules(path)
    assert not {m for m in imported if m in forbidden or m.startswith("symphony.server.")}


def test_importing_the_whole_protocol_loads_no_io_modules() -> None:
    code = (
        "import sys, symphony.protocol as p, symphony.protocol.schema\n"
        "p.METHODS; p.Position\n"
        "bad = [m for m in ('asyncio', 'socket', 'symphony.server') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == ""


def test_framing_alone_does_not_load_pydantic() -> None:
    code = (
        "import sys, symphony.protocol as p\n"
        "p.StreamConnection().send(p.Request(1, 'm'))\n"
        "print('pydantic' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "False"


def test_lazy_exports_resolve_and_unknown_names_fail() -> None:
    for name in protocol.__all__:
        assert getattr(protocol, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        protocol.Nope  # noqa: B018


PROTOCOL = {
    "BUFFER_CLOSE", "BUFFER_DID_CHANGE", "BUFFER_DID_CHANGE_ON_DISK", "BUFFER_EDIT",
    "BUFFER_GET_TEXT", "BUFFER_LIST", "BUFFER_OPEN", "BUFFER_REDO", "BUFFER_SAVE",
    "BUFFER_SUBSCRIBE", "BUFFER_UNDO", "BUFFER_UNSUBSCRIBE", "BadFrame", "Batch",
    "BufferCloseParams", "BufferDidChangeOnDiskParams", "BufferDidChangeParams",
    "BufferEditParams", "BufferGetTextParams", "BufferGetTextResult", "BufferListParams",
    "BufferListResult", "BufferNotFound", "BufferOpenParams", "BufferOpenResult",
    "BufferRedoParams", "BufferSaveParams", "BufferSaveResult", "BufferSubscribeParams",
    "BufferSummary", "BufferUndoParams", "BufferUnsubscribeParams", "CANCEL_REQUEST", "CLOSED",
    "CancelParams", "ChangeOrigin", "ClientInfo", "Closed", "Codec", "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_POSITION_ENCODING", "DID_CHANGE", "DID_CLOSE", "DID_OPEN", "DID_SAVE",
    "DidChangeTextDocumentParams", "DidCloseTextDocumentParams", "DidOpenTextDocumentParams",
    "DidSaveTextDocumentParams", "EVENT", "EVENTS_DROPPED", "EXIT", "ErrorResponse",
    "EventParams", "EventsDroppedParams", "ExitParams", "FileConflict", "FileError", "Frame",
    "Framer", "INFO", "INITIALIZE", "INITIALIZED", "Id", "Incoming", "InfoParams", "InfoResult",
    "InitializeParams", "InitializeResult", "InitializedParams", "InternalError", "Invalid",
    "InvalidEdit", "InvalidParams", "InvalidRequest", "Kind", "LOG_TRACE", "Lifecycle",
    "LocalProtocolError", "LogTraceParams", "METHODS", "Message", "MessageTooLarge",
    "MethodNotFound", "MethodSpec", "NEED_DATA", "NeedData", "Notification", "NotificationSpec",
    "Outgoing", "PING", "POSITION_ENCODINGS", "Params", "ParamsModel", "ParseError",
    "PermissionDenied", "PingParams", "PingResult", "Position", "PositionEncoding",
    "ProtocolError", "Range", "Received", "RemoteProtocolError", "Request", "RequestCancelled",
    "RequestSpec", "Response", "RevisionConflict", "RevisionResult", "RpcError", "Rule",
    "SET_TRACE", "SHUTDOWN", "SUBSCRIBE", "ServerCapabilities", "ServerInfo",
    "ServerNotInitialized", "SetTraceParams", "ShutdownParams", "State", "StreamConnection",
    "SubscribeParams", "SubscribeResult", "SymphonyCapabilities", "SymphonyError", "TextChange",
    "TextDocumentContentChangeEvent", "TextDocumentIdentifier", "TextDocumentItem",
    "TextDocumentSyncOptions", "TraceValue", "UNSUBSCRIBE", "Unauthorized", "UnknownRevision",
    "UnsubscribeParams", "Verdict", "VersionedTextDocumentIdentifier", "WireModel",
    "WorkspaceFolder", "decode_body", "decode_message", "encode_body", "encode_message",
    "frame", "negotiate_position_encoding", "parse_message",
}  # fmt: skip


def test_protocol_exports_are_locked() -> None:
    assert set(protocol.__all__) == PROTOCOL
    assert len(protocol.__all__) == len(PROTOCOL)  # no duplicates
