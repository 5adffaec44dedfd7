"""The real daemon process over real pipes and sockets: stdio, TCP, Unix socket, WebSocket.

Every test here spawns ``python -m symphony.server`` (the same options as ``symphony serve``)
and talks to it with raw blocking clients built on ``symphony.protocol``; nothing is mocked.
"""

from __future__ import annotations

import json
import os
import random
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server_helpers import TIMEOUT, BlockingClient, DaemonProcess, daemon_process
from websockets.exceptions import ConnectionClosedOK, InvalidStatus
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect

from symphony.protocol import (
    Codec,
    ErrorResponse,
    Notification,
    Request,
    Response,
    StreamConnection,
    decode_message,
    encode_message,
)
from symphony.server import DiscoveryInfo, discovery_path

# -- stdio ---------------------------------------------------------------------------------------


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    runtime = tmp_path / "run"
    runtime.mkdir()
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    return runtime, workspace


def stdio_daemon(dirs: tuple[Path, Path], *args: str) -> DaemonProcess:
    runtime, workspace = dirs
    return DaemonProcess(["--stdio", *args], runtime_dir=runtime, workspace=workspace, stdio=True)


def test_stdio_session_with_bad_input_then_a_clean_exit(dirs: tuple[Path, Path]) -> None:
    daemon = stdio_daemon(dirs)
    try:
        client = daemon.stdio_client()
        early = client.call("symphony/ping")
        assert isinstance(early, ErrorResponse)
        assert early.code == -32002

        result = client.initialize(
            capabilities={"general": {"positionEncodings": ["utf-8"]}},
            clientInfo={"name": "stdio-test"},
        )
        assert result["capabilities"]["positionEncoding"] == "utf-8"

        unknown = client.call("symphony/unknown")
        assert isinstance(unknown, ErrorResponse)
        assert unknown.code == -32601
        wrong = client.call("symphony/subscribe", {"topics": 5})
        assert isinstance(wrong, ErrorResponse)
        assert wrong.code == -32602
        assert wrong.data[0]["loc"] == ["topics"]

        client.send_bytes(b"Content-Length: 9\r\n\r\n{invalid}")
        invalid = client.next()
        assert isinstance(invalid, ErrorResponse)
        assert (invalid.id, invalid.code) == (None, -32700)

        info = client.result("symphony/info")
        assert info["pid"] == daemon.proc.pid
        assert info["connections"] == 1
        assert info["rss"] > 1_000_000

        assert client.result("shutdown") is None
        client.send(Notification("exit"))
        assert daemon.wait() == 0
        assert not any(dirs[0].iterdir())  # stdio only: no discovery file, no socket
    finally:
        daemon.kill()


def test_a_stdio_daemon_can_listen_too_and_its_editor_ends_it(dirs: tuple[Path, Path]) -> None:
    daemon = stdio_daemon(dirs, "--unix")
    try:
        addresses = daemon.wait_ready()
        editor = daemon.stdio_client()
        editor.initialize()
        other = BlockingClient.unix(addresses["unix"])
        other.initialize()
        assert other.result("symphony/info")["connections"] == 2
        assert editor.result("shutdown") is None
        editor.send(Notification("exit"))
        assert daemon.wait() == 0
        assert other.closed_by_peer()  # the daemon went with its editor
        other.close()
        assert not os.path.exists(addresses["unix"])
        assert not any(p.suffix == ".json" for p in dirs[0].rglob("*"))
    finally:
        daemon.kill()


def test_stdio_exit_without_shutdown_is_status_1(dirs: tuple[Path, Path]) -> None:
    daemon = stdio_daemon(dirs)
    try:
        client = daemon.stdio_client()
        client.initialize()
        client.send(Notification("exit"))
        assert daemon.wait() == 1
    finally:
        daemon.kill()


def test_stdio_logs_to_a_file_and_never_to_stdout(dirs: tuple[Path, Path]) -> None:
    log_file = dirs[1] / "daemon.log"
    daemon = stdio_daemon(dirs, "--log-file", str(log_file), "--log-level", "debug")
    try:
        client = daemon.stdio_client()
        client.initialize()
        assert client.result("shutdown") is None
        client.send(Notification("exit"))
        assert daemon.wait() == 0
        assert client.next() is None  # nothing but protocol ever came on stdout
    finally:
        daemon.kill()
    events = [json.loads(line)["event"] for line in log_file.read_text().splitlines()]
    assert events[0] == "ready"
    assert events[-1] == "stopped"
    assert not [line for line in daemon.stderr_lines if line.startswith("{")]


def test_stdio_eof_after_a_request_still_gets_the_answer(dirs: tuple[Path, Path]) -> None:
    daemon = stdio_daemon(dirs)
    try:
        client = daemon.stdio_client()
        client.send(Request(1, "initialize", {"capabilities": {}}))
        assert daemon.proc.stdin is not None
        daemon.proc.stdin.close()  # like `printf '...' | symphony serve --stdio`
        reply = client.next()
        assert isinstance(reply, Response)
        assert reply.id == 1
        assert daemon.wait() == 1
    finally:
        daemon.kill()


def test_stdio_garbage_is_answered_then_the_daemon_exits(dirs: tuple[Path, Path]) -> None:
    daemon = stdio_daemon(dirs)
    try:
        client = daemon.stdio_client()
        client.initialize()
        # More than a header part may hold (8 KiB) without its blank line: unframeable.
        client.send_bytes(random.Random(7).randbytes(20_000))
        error = client.next()
        assert isinstance(error, ErrorResponse)
        assert error.code == -32700
        assert client.next() is None  # the stream cannot be resynchronised: closed
        assert daemon.wait() == 1
    finally:
        daemon.kill()


def test_stdio_message_over_the_limit_is_refused_and_the_session_goes_on(
    dirs: tuple[Path, Path],
) -> None:
    daemon = stdio_daemon(dirs, "--max-message-size", "100000")
    try:
        client = daemon.stdio_client()
        client.initialize()
        request = Request(99, "symphony/ping", {"data": "z" * 200_000})
        client.send(request)
        too_big = client.next()
        # The daemon skipped the body without reading its id, so the error has id null.
        assert isinstance(too_big, ErrorResponse)
        assert (too_big.id, too_big.code) == (None, -32904)
        assert too_big.data == {"size": len(encode_message(request)), "limit": 100000}
        assert client.result("symphony/ping", {"data": "next"}) == {"data": "next"}
    finally:
        daemon.kill()


def test_pipelined_requests_are_all_answered_in_one_go(dirs: tuple[Path, Path]) -> None:
    daemon = stdio_daemon(dirs)
    try:
        client = daemon.stdio_client()
        client.initialize()
        stream = StreamConnection()
        client.send_bytes(
            b"".join(stream.send(Request(i, "symphony/ping", {"data": i})) for i in range(500))
        )
        for i in range(500):
            assert client.reply(i) == Response(i, {"data": i})
    finally:
        daemon.kill()


# -- one daemon on TCP, a Unix socket and WebSocket at once ---------------------------------------


class Sockets:
    def __init__(self, daemon: DaemonProcess, addresses: dict[str, str], discovery: Path):
        self.daemon = daemon
        self.addresses = addresses
        self.discovery_file = discovery
        self.info = DiscoveryInfo.from_json(json.loads(discovery.read_text()))

    @property
    def token(self) -> str:
        return self.info.token

    def tcp(self) -> BlockingClient:
        return BlockingClient.tcp(self.addresses["tcp"])

    def unix(self) -> BlockingClient:
        return BlockingClient.unix(self.addresses["unix"])

    def ws(self, query: str = "", **kwargs: Any) -> ClientConnection:
        return ws_connect(self.addresses["ws"] + query, open_timeout=TIMEOUT, **kwargs)


@pytest.fixture(scope="module")
def sockets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sockets]:
    root = tmp_path_factory.mktemp("sockets")
    runtime, workspace = root / "run", root / "workspace"
    runtime.mkdir()
    workspace.mkdir()
    args = ["--tcp", "127.0.0.1:0", "--unix", "--ws", "127.0.0.1:0"]
    with daemon_process(args, runtime_dir=runtime, workspace=workspace) as daemon:
        addresses = daemon.wait_ready()
        entry = daemon.wait_log("ready")
        yield Sockets(daemon, addresses, Path(entry["discovery"]))


def ws_call(ws: ClientConnection, request: Request, codec: Codec = Codec.JSON) -> Any:
    body = encode_message(request, codec)
    ws.send(body.decode() if codec is Codec.JSON else body)
    while True:
        raw = ws.recv(timeout=TIMEOUT)
        message = decode_message(raw, Codec.JSON if isinstance(raw, str) else Codec.MSGPACK)
        if isinstance(message, Response | ErrorResponse) and message.id == request.id:
            return message


def test_discovery_file_and_socket_are_private(sockets: Sockets) -> None:
    info = sockets.info
    assert info.pid == sockets.daemon.proc.pid
    assert info.addresses == sockets.addresses
    assert len(info.token) >= 32
    assert stat.S_IMODE(sockets.discovery_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(sockets.discovery_file.parent.stat().st_mode) == 0o700
    unix_socket = Path(sockets.addresses["unix"])
    assert stat.S_ISSOCK(unix_socket.stat().st_mode)
    assert stat.S_IMODE(unix_socket.stat().st_mode) == 0o600
    assert discovery_path(info.workspace, directory=sockets.discovery_file.parent) == (
        sockets.discovery_file
    )


def test_tcp_needs_the_token(sockets: Sockets) -> None:
    stranger = sockets.tcp()
    try:
        refused = stranger.call("initialize", {"capabilities": {}})
        assert isinstance(refused, ErrorResponse)
        assert refused.code == -32903
        assert stranger.closed_by_peer()
    finally:
        stranger.close()
    member = sockets.tcp()
    try:
        member.initialize(initializationOptions={"token": sockets.token})
        assert member.result("symphony/ping", {"data": "tcp"}) == {"data": "tcp"}
    finally:
        member.close()


def test_unix_socket_clients_are_trusted(sockets: Sockets) -> None:
    client = sockets.unix()
    try:
        client.initialize()
        assert client.result("symphony/ping", {"data": "unix"}) == {"data": "unix"}
        reply = client.call("symphony/ping", {"data": b"\x01"}, codec=Codec.MSGPACK)
        assert isinstance(reply, Response)
        assert reply.result == {"data": b"\x01"}
    finally:
        client.close()


def test_websocket_token_in_the_handshake_or_in_initialize(sockets: Sockets) -> None:
    with sockets.ws(f"?token={sockets.token}") as ws:
        result = ws_call(ws, Request(1, "initialize", {"capabilities": {}}))
        assert isinstance(result, Response)
        assert ws_call(ws, Request(2, "symphony/ping", {"data": "ws"})).result == {"data": "ws"}
        binary = ws_call(ws, Request(3, "symphony/ping", {"data": b"\x02"}), Codec.MSGPACK)
        assert binary.result == {"data": b"\x02"}
    with sockets.ws(subprotocols=["symphony", f"symphony.token.{sockets.token}"]) as ws:
        assert ws.subprotocol == "symphony"
        assert isinstance(ws_call(ws, Request(1, "initialize", {"capabilities": {}})), Response)
    with sockets.ws() as ws:
        refused = ws_call(ws, Request(1, "initialize", {"capabilities": {}}))
        assert isinstance(refused, ErrorResponse)
        assert refused.code == -32903
        with pytest.raises(ConnectionClosedOK):  # then a clean close handshake
            ws.recv(timeout=TIMEOUT)
        assert ws.close_code == 1000
    with sockets.ws() as ws:
        options = {"capabilities": {}, "initializationOptions": {"token": sockets.token}}
        assert isinstance(ws_call(ws, Request(1, "initialize", options)), Response)


def test_websocket_refuses_wrong_tokens_and_foreign_origins(sockets: Sockets) -> None:
    with pytest.raises(InvalidStatus) as wrong:
        sockets.ws("?token=nope")
    assert wrong.value.response.status_code == 401
    with pytest.raises(InvalidStatus) as foreign:
        sockets.ws(origin="https://evil.example")
    assert foreign.value.response.status_code == 403
    with sockets.ws(origin="http://localhost:5173") as ws:  # a local dev page is fine
        assert ws.protocol.state.name == "OPEN"


def test_bad_clients_never_disturb_the_others(sockets: Sockets) -> None:
    good = sockets.unix()
    good.initialize()
    try:
        # Random bytes: -32700, then that connection (only) is closed.
        noisy = sockets.tcp()
        noisy.send_bytes(random.Random(3).randbytes(20_000))
        error = noisy.next()
        assert isinstance(error, ErrorResponse)
        assert error.code == -32700
        assert noisy.closed_by_peer()
        noisy.close()

        # A Content-Length too small: the body is cut short (-32700 for it), and the rest can
        # never become a message: at EOF it is half a header (-32700 again, then closed).
        liar = sockets.unix()
        body = encode_message(Request(1, "symphony/ping"))
        liar.send_bytes(b"Content-Length: 10\r\n\r\n" + body)
        first = liar.next()
        assert isinstance(first, ErrorResponse)
        assert first.code == -32700
        liar.close_write()
        second = liar.next()
        assert isinstance(second, ErrorResponse)
        assert second.code == -32700
        assert "middle of a header part" in second.message
        assert liar.closed_by_peer()
        liar.close()

        # A client that vanishes with a large request in flight.
        leaver = sockets.unix()
        leaver.initialize()
        leaver.send(Request(1, "symphony/ping", {"data": "v" * 5_000_000}))
        leaver.close()

        assert good.result("symphony/ping", {"data": "still here"}) == {"data": "still here"}
        assert sockets.daemon.proc.poll() is None
    finally:
        good.close()


def test_a_50_mb_message_is_handled(sockets: Sockets) -> None:
    client = sockets.unix()
    try:
        client.initialize()
        payload = "0123456789" * 5_000_000
        started = time.perf_counter()
        assert client.result("symphony/ping", {"data": payload}) == {"data": payload}
        elapsed = time.perf_counter() - started
        assert client.result("symphony/ping", {"data": 1}) == {"data": 1}
        assert elapsed < 60
    finally:
        client.close()


def test_clients_on_every_transport_at_once_see_each_other(sockets: Sockets) -> None:
    watcher = sockets.unix()
    watcher.initialize()
    try:
        watcher.result("symphony/subscribe", {"topics": ["connection/*"]})
        tcp = sockets.tcp()
        tcp.initialize(initializationOptions={"token": sockets.token})
        with sockets.ws(f"?token={sockets.token}") as ws:
            ws_call(ws, Request(1, "initialize", {"capabilities": {}}))
            ws.send(encode_message(Notification("initialized", {})).decode())
            info = ws_call(ws, Request(2, "symphony/info"))
            assert info.result["connections"] >= 3
            tcp_info = tcp.result("symphony/info")
            assert tcp_info["clientId"] != info.result["clientId"]
        tcp.close()
        topics = []
        while len(topics) < 6:
            note = watcher.next()
            assert isinstance(note, Notification)
            assert note.method == "symphony/event"
            topics.append(note.params["topic"])  # type: ignore[index]
        assert topics.count("connection/opened") == 2
        assert topics.count("connection/initialized") == 2
        assert topics.count("connection/closed") == 2
    finally:
        watcher.close()


def test_a_second_daemon_for_the_same_workspace_refuses(sockets: Sockets, tmp_path: Path) -> None:
    runtime = sockets.discovery_file.parent.parent
    workspace = Path(sockets.info.workspace)
    with daemon_process(
        ["--unix", str(tmp_path / "other.sock")], runtime_dir=runtime, workspace=workspace
    ) as second:
        assert second.wait() == 1
        assert any(f"pid {sockets.info.pid}" in line for line in second.stderr_lines)


def test_sigterm_stops_gracefully_and_cleans_up(dirs: tuple[Path, Path]) -> None:
    runtime, workspace = dirs
    with daemon_process(
        ["--unix", "--ws", "127.0.0.1:0"], runtime_dir=runtime, workspace=workspace
    ) as daemon:
        addresses = daemon.wait_ready()
        client = BlockingClient.unix(addresses["unix"])
        client.initialize()
        discovery = Path(daemon.wait_log("ready")["discovery"])
        assert discovery.exists()
        with ws_connect(addresses["ws"], open_timeout=TIMEOUT) as ws:
            assert daemon.terminate() == 0
            assert client.closed_by_peer()
            with pytest.raises(ConnectionClosedOK):
                ws.recv(timeout=TIMEOUT)
            assert ws.close_code == 1000  # closed by its connection, not dropped by the listener
        assert not discovery.exists()
        assert not os.path.exists(addresses["unix"])
        daemon.wait_log("stopped", exit_status=0)


def test_non_loopback_addresses_need_allow_remote(dirs: tuple[Path, Path]) -> None:
    runtime, workspace = dirs
    with daemon_process(["--tcp", "0.0.0.0:0"], runtime_dir=runtime, workspace=workspace) as daemon:
        assert daemon.wait() == 2
        assert any("--allow-remote" in line for line in daemon.stderr_lines)
    with daemon_process(
        ["--tcp", "0.0.0.0:0", "--allow-remote"], runtime_dir=runtime, workspace=workspace
    ) as daemon:
        addresses = daemon.wait_ready()
        port = int(addresses["tcp"].rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT):
            pass
        assert daemon.terminate() == 0


def test_nothing_to_serve_is_a_usage_error(dirs: tuple[Path, Path]) -> None:
    runtime, workspace = dirs
    with daemon_process([], runtime_dir=runtime, workspace=workspace) as daemon:
        assert daemon.wait() == 2
        assert any("nothing to serve" in line for line in daemon.stderr_lines)


# -- startup ---------------------------------------------------------------------------------------

#: Heavy imports that must stay off the path of an editor-spawned `--stdio` daemon (the issue:
#: answer initialize within 400 ms of spawn; lsprotocol.types alone costs ~340 ms).
HEAVY = ("lsprotocol", "pygls", "attrs", "cattrs", "websockets", "psutil", "msgpack")


def test_stdio_startup_imports_nothing_heavy(dirs: tuple[Path, Path]) -> None:
    daemon = DaemonProcess(
        ["--stdio"],
        runtime_dir=dirs[0],
        workspace=dirs[1],
        stdio=True,
        python_flags=("-X", "importtime"),
    )
    try:
        client = daemon.stdio_client()
        client.initialize()
        assert client.result("symphony/ping") == {}
        assert client.result("shutdown") is None
        client.send(Notification("exit"))
        assert daemon.wait() == 0
    finally:
        daemon.kill()
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in daemon.stderr_lines
        if line.startswith("import time:") and "|" in line
    }
    # -X importtime reports modules loaded by import statements (not importlib.import_module,
    # whose modules show only through what they import in turn: lsprotocol would bring attrs).
    assert "symphony.handlers._registry" in imported  # the measurement did see our modules
    assert not {m for m in imported if m.split(".")[0] in HEAVY}


def test_cold_spawn_to_initialize_result(dirs: tuple[Path, Path]) -> None:
    """Measured and reported; the bound here is loose (CI machines are shared), the issue's
    400 ms is checked by bench/rpc.py on a quiet machine."""
    timings = []
    for _ in range(3):
        daemon = stdio_daemon(dirs, "--log-level", "warning")
        try:
            daemon.stdio_client().initialize()
            timings.append(time.perf_counter() - daemon.spawned_at)
        finally:
            daemon.kill()
    best = min(timings)
    print(f"cold spawn -> initialize result: best {best * 1000:.0f} ms of {len(timings)}")
    assert best < 3.0


def test_stdio_from_a_regular_file_is_a_usage_error(tmp_path: Path) -> None:
    script = tmp_path / "in.txt"
    script.write_bytes(b"Content-Length: 2\r\n\r\n{}")
    with script.open("rb") as stdin:
        done = subprocess.run(
            [sys.executable, "-m", "symphony.server", "--stdio", "--log-format", "json"],
            stdin=stdin,
            capture_output=True,
            timeout=60,
        )
    assert done.returncode == 2
    assert done.stdout == b""
    assert b"needs stdin to be a pipe" in done.stderr
