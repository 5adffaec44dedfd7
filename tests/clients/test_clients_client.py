"""The asyncio SymphonyClient against real daemons: every transport, errors, timeouts,
cancellation, notifications, a connection lost mid-request, reconnecting after a restart."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Literal

import pytest
from clients_helpers import TIMEOUT, DaemonProcess

from symphony.clients._client import Backoff, SymphonyClient
from symphony.clients._transport import (
    Channel,
    ConnectError,
    ConnectionLost,
    Connector,
    DaemonNotFound,
    RequestTimeout,
    StreamChannel,
)
from symphony.handlers import ROUTES
from symphony.protocol import (
    BufferNotFound,
    Codec,
    InvalidParams,
    MessageTooLarge,
    MethodNotFound,
    Notification,
    PingParams,
    PingResult,
    Position,
    Range,
    RequestSpec,
    RevisionConflict,
    RpcError,
    ServerNotInitialized,
    TextChange,
    Unauthorized,
)
from symphony.server import Daemon, RequestContext, StreamTransport, route


def _real(path: Path) -> str:
    return os.path.realpath(path)


# -- every transport ---------------------------------------------------------------------------


async def test_a_spawned_stdio_daemon_answers_and_exits_cleanly(workspace: Path) -> None:
    client = SymphonyClient.spawn(workspace=str(workspace), stderr=subprocess.DEVNULL)
    async with client:
        assert (await client.ping({"nested": ["é", 1, None]})).data == {"nested": ["é", 1, None]}
        info = await client.info()
        # We offered UTF-32 first (a Python str index is a code point) and got it.
        assert client.position_encoding == "utf-32"
        assert info.position_encoding == "utf-32"
        server_info = client.initialize_result().server_info
        assert server_info is not None
        assert server_info.name == "symphony"
        process = client.process
        assert process is not None
        assert info.pid == process.pid
    # Leaving the block sent shutdown then exit: LSP's clean exit status.
    assert process.returncode == 0


async def test_a_spawned_daemon_that_cannot_start_is_a_connect_error(workspace: Path) -> None:
    client = SymphonyClient.spawn(
        "--max-message-size", "0", workspace=str(workspace), stderr=subprocess.DEVNULL
    )
    with pytest.raises(ConnectError, match="exited with status 2 before answering initialize"):
        async with client:
            pass


@pytest.mark.parametrize(
    ("transport", "codec"),
    [
        ("unix", Codec.JSON),
        ("tcp", Codec.JSON),
        ("ws", Codec.JSON),
        ("unix", Codec.MSGPACK),
        ("ws", Codec.MSGPACK),
    ],
)
async def test_every_socket_transport_reaches_the_daemon(
    shared_daemon: DaemonProcess, transport: str, codec: Codec
) -> None:
    from symphony.server._discovery import read_discovery

    daemon = shared_daemon
    found = read_discovery(daemon.workspace)
    assert found is not None
    address = found.addresses[transport]
    client = {
        "unix": lambda: SymphonyClient.unix(address, codec=codec),
        "tcp": lambda: SymphonyClient.tcp(address, token=found.token, codec=codec),
        "ws": lambda: SymphonyClient.ws(address, token=found.token, codec=codec),
    }[transport]()
    async with client:
        # msgpack carries bytes, which JSON cannot: an echo of bytes proves both directions.
        data: Any = b"\x00\xffbin" if codec is Codec.MSGPACK else ["ünï", {"k": 1.5}]
        assert (await client.ping(data)).data == data
        info = await client.info()
        assert info.pid == daemon.pid
        assert info.connections >= 1


async def test_connect_workspace_finds_the_daemon_by_its_discovery_file(
    shared_daemon: DaemonProcess,
) -> None:
    workspace = str(shared_daemon.workspace)
    prefers: tuple[Literal["unix", "tcp", "ws"], ...] = ("unix", "tcp", "ws")
    for prefer in prefers:
        async with SymphonyClient.connect_workspace(workspace, prefer=prefer) as client:
            assert (await client.info()).pid == shared_daemon.pid


async def test_connect_workspace_falls_back_to_tcp_with_the_discovered_token(
    start_daemon: Callable[..., DaemonProcess], workspace: Path
) -> None:
    daemon = start_daemon("--tcp", "127.0.0.1:0")
    daemon.wait_ready()
    async with SymphonyClient.connect_workspace(str(workspace)) as client:
        assert client.connector.kind == "tcp"
        assert (await client.info()).pid == daemon.pid
    with pytest.raises(ConnectError, match="does not listen on unix"):
        async with SymphonyClient.connect_workspace(str(workspace), prefer="unix"):
            pass


async def test_connect_workspace_without_a_daemon_raises_daemon_not_found(
    workspace: Path,
) -> None:
    with pytest.raises(DaemonNotFound) as caught:
        async with SymphonyClient.connect_workspace(str(workspace)):
            pass
    assert caught.value.workspace == _real(workspace)


async def test_connect_workspace_can_start_a_daemon(workspace: Path) -> None:
    from symphony.server._discovery import read_discovery

    async with SymphonyClient.connect_workspace(str(workspace), start=True) as client:
        info = await client.info()
    found = read_discovery(workspace)
    assert found is not None
    assert found.pid == info.pid  # it outlives the client; the fixture stops it


async def test_a_tcp_client_with_a_wrong_token_is_refused(shared_daemon: DaemonProcess) -> None:
    from symphony.server._discovery import read_discovery

    found = read_discovery(shared_daemon.workspace)
    assert found is not None
    with pytest.raises(Unauthorized):
        async with SymphonyClient.tcp(found.addresses["tcp"], token="not-the-token"):
            pass
    # A wrong token in the WebSocket handshake is refused before any message.
    with pytest.raises(ConnectError, match="401"):
        async with SymphonyClient.ws(found.addresses["ws"], token="not-the-token"):
            pass


async def test_nothing_listening_is_a_connect_error(runtime_dir: Path) -> None:
    with pytest.raises(ConnectError, match="cannot connect"):
        async with SymphonyClient.unix(str(runtime_dir / "nobody.sock")):
            pass


# -- errors, timeouts, cancellation ---------------------------------------------------------------


async def test_daemon_errors_are_raised_as_the_protocol_classes(
    shared_daemon: DaemonProcess,
) -> None:
    async with SymphonyClient.unix(shared_daemon.wait_ready()["unix"]) as client:
        with pytest.raises(MethodNotFound):
            await client.request("symphony/noSuchMethod", {})
        with pytest.raises(InvalidParams) as caught:
            await client.request("symphony/ping", {"data": 1, "typo": 2})
        assert any("typo" in str(error.get("loc")) for error in caught.value.data)
        # A failed request leaves the connection fine.
        assert (await client.ping(7)).data == 7


async def test_a_client_can_do_the_handshake_itself(shared_daemon: DaemonProcess) -> None:
    unix = shared_daemon.wait_ready()["unix"]
    async with SymphonyClient.unix(unix, initialize=False, position_encodings=["utf-8"]) as client:
        with pytest.raises(ServerNotInitialized):
            await client.ping()
        result = await client.initialize()
        assert result.capabilities.position_encoding == "utf-8"
        assert client.position_encoding == "utf-8"
        assert (await client.ping(1)).data == 1


async def test_a_message_over_the_limit_is_refused_before_it_is_sent(
    shared_daemon: DaemonProcess,
) -> None:
    unix = shared_daemon.wait_ready()["unix"]
    async with SymphonyClient.unix(unix, max_message_size=1000) as client:
        with pytest.raises(MessageTooLarge):
            await client.ping("x" * 2000)
        assert (await client.ping("small")).data == "small"


async def test_a_request_times_out_and_the_client_goes_on(daemon: DaemonProcess) -> None:
    async with SymphonyClient.unix(daemon.wait_ready()["unix"]) as client:
        os.kill(daemon.pid, signal.SIGSTOP)  # the daemon cannot answer anything now
        try:
            with pytest.raises(RequestTimeout) as caught:
                await client.request("symphony/ping", {}, timeout=0.2)
            assert caught.value.method == "symphony/ping"
            assert isinstance(caught.value, TimeoutError)
        finally:
            os.kill(daemon.pid, signal.SIGCONT)
        # The late reply (or -32800) to the timed-out request is ignored; the next one works.
        assert (await client.ping("after", timeout=TIMEOUT)).data == "after"


async def test_requests_in_flight_fail_with_connection_lost_when_the_daemon_dies(
    daemon: DaemonProcess,
) -> None:
    async with SymphonyClient.unix(daemon.wait_ready()["unix"]) as client:
        os.kill(daemon.pid, signal.SIGSTOP)
        in_flight = [asyncio.create_task(client.ping(i)) for i in range(3)]
        await asyncio.sleep(0)  # let them send (they cannot be answered)
        daemon.kill()
        async with asyncio.timeout(TIMEOUT):
            results = await asyncio.gather(*in_flight, return_exceptions=True)
        assert all(isinstance(r, ConnectionLost) for r in results), results
        assert "symphony/ping" in str(results[0])
        assert not client.connected
        # No reconnect policy: the client has stopped, and says so at once.
        with pytest.raises(ConnectionLost):
            await client.ping()


class _PairConnector(Connector):
    """One end of a socketpair, the other served by an in-process ``Daemon``: for the tests that
    need a daemon with extra methods (a slow one, one that asks the client a question)."""

    kind = "unix"

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    async def open(self) -> Channel:
        reader, writer = await asyncio.open_unix_connection(sock=self._sock)
        return StreamChannel(reader, writer, kind="unix", peer="socketpair")

    def describe(self) -> str:
        return "socketpair"


SLOW = RequestSpec("test/slow", PingParams, PingResult, "Sleep until cancelled.")
ASK = RequestSpec("test/ask", PingParams, PingResult, "Ask the client test/question.")
QUESTION = RequestSpec(
    "test/question", PingParams, PingResult, "The daemon asks the client.", direction="server"
)


@contextlib.asynccontextmanager
async def in_process_daemon(
    handlers_seen: dict[str, asyncio.Event],
) -> AsyncIterator[SymphonyClient]:
    """A client connected to an in-process daemon whose route table has SLOW and ASK too."""

    async def slow(ctx: RequestContext, params: PingParams) -> PingResult:
        handlers_seen["slow started"].set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            handlers_seen["slow cancelled"].set()
            raise
        return PingResult(data=None)

    async def ask(ctx: RequestContext, params: PingParams) -> PingResult:
        try:
            answer = await ctx.connection.request(QUESTION, PingParams(data=params.data))
        except RpcError as exc:
            return PingResult(data={"error": exc.code})
        return PingResult(data={"answer": answer})

    routes = ROUTES.with_routes(route(SLOW, slow), route(ASK, ask))
    daemon = Daemon(routes=routes)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    async with asyncio.TaskGroup() as tg:
        reader, writer = await asyncio.open_unix_connection(sock=theirs)
        served = tg.create_task(
            daemon.serve(StreamTransport(reader, writer, kind="unix", trusted=True, peer="pair"))
        )
        async with SymphonyClient(_PairConnector(ours)) as client:
            yield client
        async with asyncio.timeout(TIMEOUT):
            await served


def _events(*names: str) -> dict[str, asyncio.Event]:
    return {name: asyncio.Event() for name in names}


async def test_cancelling_the_awaiting_task_cancels_the_request_in_the_daemon() -> None:
    seen = _events("slow started", "slow cancelled")
    async with in_process_daemon(seen) as client:
        task = asyncio.create_task(client.request(SLOW.method, {}))
        async with asyncio.timeout(TIMEOUT):
            await seen["slow started"].wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # $/cancelRequest reached the daemon, which cancelled the handler.
        async with asyncio.timeout(TIMEOUT):
            await seen["slow cancelled"].wait()
        assert (await client.ping(1)).data == 1


async def test_a_timeout_cancels_the_request_in_the_daemon_too() -> None:
    seen = _events("slow started", "slow cancelled")
    async with in_process_daemon(seen) as client:
        with pytest.raises(RequestTimeout):
            await client.request(SLOW.method, {}, timeout=0.3)
        async with asyncio.timeout(TIMEOUT):
            await seen["slow cancelled"].wait()


async def test_the_client_answers_the_daemons_requests() -> None:
    async with in_process_daemon(_events()) as client:
        # No handler yet: the daemon gets -32601 from us.
        unhandled = await client.request(ASK.method, {"data": 1})
        assert unhandled == {"data": {"error": MethodNotFound.CODE}}

        async def question(params: Any) -> Any:
            return {"data": params["data"] * 2}

        client.on_request(QUESTION.method, question)
        answered = await client.request(ASK.method, {"data": 21})
        assert answered == {"data": {"answer": {"data": 42}}}


# -- notifications ---------------------------------------------------------------------------------


async def test_events_reach_streams_and_callbacks_in_order(shared_daemon: DaemonProcess) -> None:
    unix = shared_daemon.wait_ready()["unix"]
    seen: list[Notification] = []
    async with SymphonyClient.unix(unix) as watcher:
        watcher.on_notification("symphony/event", seen.append)
        async with watcher.notifications("symphony/event") as events:
            assert (await watcher.subscribe("connection/*")).topics == ["connection/*"]
            async with SymphonyClient.unix(unix, client_name="other") as other:
                other_id = (await other.info()).client_id
            topics: list[str] = []
            async with asyncio.timeout(TIMEOUT):
                while len(topics) < 3:
                    note = await events.get()
                    assert note.params is not None
                    assert isinstance(note.params, dict)
                    if note.params["data"].get("clientId") == other_id:
                        topics.append(note.params["topic"])
            assert topics == ["connection/opened", "connection/initialized", "connection/closed"]
        # The callback saw the same notifications, in the same order.
        params = [n.params for n in seen if isinstance(n.params, dict)]
        assert [p["topic"] for p in params if p["data"].get("clientId") == other_id] == topics


async def test_a_stream_ends_when_the_client_stops(shared_daemon: DaemonProcess) -> None:
    async with SymphonyClient.unix(shared_daemon.wait_ready()["unix"]) as client:
        stream = client.notifications()
    received = [note async for note in stream]
    assert received == []
    with pytest.raises(ConnectionLost):
        await stream.get()


# -- reconnecting ------------------------------------------------------------------------------------


async def test_reconnects_after_the_daemon_restarts_and_restores_subscriptions(
    start_daemon: Callable[..., DaemonProcess], workspace: Path
) -> None:
    first = start_daemon("--unix")
    first.wait_ready()
    reconnected = asyncio.Event()
    lost: list[str] = []
    noticed = asyncio.Event()
    client = SymphonyClient.connect_workspace(
        str(workspace), reconnect=Backoff(initial=0.01, maximum=0.2, give_up_after=TIMEOUT)
    )
    client.on_reconnect(lambda _: reconnected.set())

    def disconnected(_: SymphonyClient, reason: str) -> None:
        lost.append(reason)
        noticed.set()

    client.on_disconnect(disconnected)
    async with client:
        assert (await client.info()).pid == first.pid
        await client.subscribe("connection/opened")
        async with client.notifications("symphony/event") as events:
            assert first.terminate() == 0
            async with asyncio.timeout(TIMEOUT):
                await noticed.wait()
            assert lost == ["the daemon closed the connection"]
            assert not client.connected
            # Asked while the daemon is down: waits for the reconnect instead of failing.
            pending = asyncio.create_task(client.info(timeout=TIMEOUT))
            second = start_daemon("--unix")
            second.wait_ready()
            async with asyncio.timeout(TIMEOUT):
                await reconnected.wait()
            assert (await pending).pid == second.pid
            assert client.reconnects == 1
            # The subscription was restored on the new daemon: another client's arrival shows.
            async with SymphonyClient.connect_workspace(str(workspace)) as other:
                other_id = (await other.info()).client_id
            async with asyncio.timeout(TIMEOUT):
                while True:
                    note = await events.get()
                    assert isinstance(note.params, dict)
                    if note.params["data"]["clientId"] == other_id:
                        break
            assert note.params["topic"] == "connection/opened"


async def test_the_client_gives_up_reconnecting_per_its_policy(
    start_daemon: Callable[..., DaemonProcess], workspace: Path
) -> None:
    daemon = start_daemon("--unix")
    daemon.wait_ready()
    policy = Backoff(initial=0.01, maximum=0.02, max_attempts=3, give_up_after=None)
    noticed = asyncio.Event()
    client = SymphonyClient.connect_workspace(str(workspace), reconnect=policy)
    client.on_disconnect(lambda *_: noticed.set())
    async with client:
        await client.ping()
        daemon.terminate()
        async with asyncio.timeout(TIMEOUT):
            await noticed.wait()
        # This request waits while the client retries, and fails when it gives up.
        with pytest.raises(ConnectionLost, match="gave up reconnecting"):
            async with asyncio.timeout(TIMEOUT):
                await client.ping()


def test_backoff_is_exponential_with_full_jitter() -> None:
    import random

    policy = Backoff(initial=0.1, maximum=1.0, multiplier=2.0)
    rng = random.Random(7)
    for attempt in range(10):
        cap = min(1.0, 0.1 * 2**attempt)
        delays = [policy.delay(attempt, rng) for _ in range(200)]
        assert all(0.0 <= d <= cap for d in delays)
        # Full jitter spreads over the whole interval, not around its top.
        assert min(delays) < cap / 4
        assert max(delays) > cap * 3 / 4


# -- the synchronous wrapper -----------------------------------------------------------------------


def test_the_sync_client_keeps_one_connection_and_queues_notifications(
    shared_daemon: DaemonProcess,
) -> None:
    from symphony.clients._sync import connect

    workspace = str(shared_daemon.workspace)
    with connect(workspace) as client:
        first = client.info()
        assert first.pid == shared_daemon.pid
        assert client.ping({"x": [1]}).data == {"x": [1]}
        # One connection for the wrapper's whole life, not one per call.
        assert client.info().client_id == first.client_id
        with client.notifications("symphony/event") as events:
            client.subscribe("connection/opened")
            with connect(workspace) as other:
                other_id = other.info().client_id
            while True:
                note = events.next(timeout=TIMEOUT)
                assert isinstance(note.params, dict)
                if note.params["data"]["clientId"] == other_id:
                    break
            assert note.params["topic"] == "connection/opened"
        with pytest.raises(MethodNotFound):
            client.request("symphony/nope")
    # Closed: calls fail clearly, and the stream has ended.
    with pytest.raises(ConnectionLost):
        client.ping()
    with pytest.raises(ConnectionLost):
        events.next(timeout=0)


def test_the_sync_client_reports_a_failed_connect(runtime_dir: Path) -> None:
    from symphony.clients._sync import connect

    with pytest.raises(DaemonNotFound):
        connect(str(runtime_dir))
    with pytest.raises(ConnectError):
        connect(unix=str(runtime_dir / "nobody.sock"))


# -- the buffer API, end to end -------------------------------------------------------------------


def _write(path: Path, text: str) -> None:
    path.write_bytes(text.encode("utf-8"))


def _read(path: Path) -> str:
    return path.read_bytes().decode("utf-8")


def _change(start: tuple[int, int], end: tuple[int, int], text: str) -> TextChange:
    return TextChange(
        range=Range(
            start=Position(line=start[0], character=start[1]),
            end=Position(line=end[0], character=end[1]),
        ),
        text=text,
    )


async def test_the_buffer_helpers_against_the_daemon(shared_daemon: DaemonProcess) -> None:
    unix = shared_daemon.wait_ready()["unix"]
    path = shared_daemon.workspace / "notes.txt"
    _write(path, "hello\nwörld 😀\n")
    async with (
        SymphonyClient.unix(unix, client_name="writer") as writer,  # UTF-32: code points
        SymphonyClient.unix(unix, position_encodings=["utf-16"]) as watcher,
    ):
        opened = await writer.open(str(path))
        uri = opened.uri
        assert (opened.revision, opened.line_count, opened.dirty) == (0, 3, False)
        assert (await writer.get_text(uri)).text == "hello\nwörld 😀\n"
        await watcher.subscribe_buffer(uri)
        async with watcher.notifications("symphony/buffer/didChange") as changes:
            # After the emoji: code point 7 for the writer, UTF-16 unit 8 for the watcher.
            first = await writer.edit(uri, [_change((1, 7), (1, 7), "!")], base_revision=0)
            note = await asyncio.wait_for(changes.get(), TIMEOUT)
            assert isinstance(note.params, dict)
            assert note.params["revision"] == first.revision
            assert note.params["changes"][0]["range"]["start"] == {"line": 1, "character": 8}
            assert note.params["origin"]["clientId"] == (await writer.info()).client_id
        # An edit made against revision 0 that does not overlap is rebased...
        second = await writer.edit(uri, [_change((0, 0), (0, 1), "J")], base_revision=0)
        assert (await writer.get_text(uri)).text == "Jello\nwörld 😀!\n"
        # ...and one that overlaps a later change is refused with the current revision.
        with pytest.raises(RevisionConflict) as conflict:
            await writer.edit(uri, [_change((1, 6), (2, 0), "")], base_revision=0)
        assert conflict.value.current_revision == second.revision
        part = await writer.get_text(
            uri, Range(start=Position(line=1, character=0), end=Position(line=1, character=5))
        )
        assert part.text == "wörld"
        await writer.undo(uri)
        assert (await writer.get_text(uri)).text == "hello\nwörld 😀!\n"
        await writer.redo(uri)
        assert (await writer.get_text(uri)).text == "Jello\nwörld 😀!\n"
        listed = {b.uri: b for b in (await writer.list_buffers()).buffers}
        assert listed[uri].dirty
        saved = await writer.save(uri)
        assert saved.path == str(path)
        assert _read(path) == "Jello\nwörld 😀!\n"
        listed = {b.uri: b for b in (await writer.list_buffers()).buffers}
        assert not listed[uri].dirty
        await writer.close_buffer(uri)
        with pytest.raises(BufferNotFound):
            await writer.get_text(uri)


async def test_an_untitled_buffer_from_text(shared_daemon: DaemonProcess) -> None:
    async with SymphonyClient.unix(shared_daemon.wait_ready()["unix"]) as client:
        opened = await client.open(text="scratch ✓", language_id="markdown")
        assert opened.uri.startswith("untitled:")
        assert opened.language_id == "markdown"
        assert (await client.get_text(opened.uri)).text == "scratch ✓"
        await client.edit(opened.uri, [_change((0, 9), (0, 9), "!")], base_revision=opened.revision)
        # Unsaved changes nobody else holds are not dropped by accident.
        with pytest.raises(RpcError):
            await client.close_buffer(opened.uri)
        await client.close_buffer(opened.uri, discard=True)
        with pytest.raises(BufferNotFound):
            await client.get_text(opened.uri)
