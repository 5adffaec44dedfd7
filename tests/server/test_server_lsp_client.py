"""A stock LSP client (pytest-lsp, on pygls and lsprotocol) drives the real daemon over stdio."""

from __future__ import annotations

import sys
import warnings
from collections.abc import AsyncIterator

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, LspSpecificationWarning


@pytest_lsp.fixture(
    config=ClientServerConfig(
        server_command=[
            sys.executable,
            "-m",
            "symphony.server",
            "--stdio",
            "--log-level",
            "warning",
        ]
    ),
)
async def client(lsp_client: LanguageClient) -> AsyncIterator[None]:
    params = types.InitializeParams(
        capabilities=types.ClientCapabilities(
            general=types.GeneralClientCapabilities(
                position_encodings=[
                    types.PositionEncodingKind.Utf8,
                    types.PositionEncodingKind.Utf16,
                ]
            )
        ),
        client_info=types.ClientInfo(name="pytest-lsp"),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", LspSpecificationWarning)
        result = await lsp_client.initialize_session(params)
    assert result.capabilities.position_encoding == types.PositionEncodingKind.Utf8
    assert result.server_info is not None
    assert result.server_info.name == "symphony"
    yield
    await lsp_client.shutdown_session()  # shutdown, exit, and wait for the process
    server = lsp_client._server  # pygls keeps the subprocess here
    assert server is not None
    assert server.returncode == 0


async def test_a_stock_lsp_client_runs_a_whole_session(client: LanguageClient) -> None:
    pong = await client.protocol.send_request_async("symphony/ping", {"data": [1, "two"]})
    assert pong.data == [1, "two"]
    info = await client.protocol.send_request_async("symphony/info", {})
    assert info.positionEncoding == "utf-8"
    assert info.connections == 1


async def test_errors_reach_a_stock_client_as_json_rpc_errors(client: LanguageClient) -> None:
    from pygls.exceptions import JsonRpcInvalidParams, JsonRpcMethodNotFound

    with pytest.raises(JsonRpcMethodNotFound):
        await client.protocol.send_request_async("symphony/nope", {})
    with pytest.raises(JsonRpcInvalidParams):
        await client.protocol.send_request_async("symphony/subscribe", {"topics": 1})
