"""One connection in memory: lifecycle, dispatch, errors at the edge, concurrency, cancellation,
batches, codecs, authentication, backpressure. Real daemon and handlers; only the pipe is fake."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from server_helpers import MemoryClient, connect
from structlog.testing import capture_logs

from symphony.handlers import ROUTES
from symphony.protocol import (
    Batch,
    Codec,
    ErrorResponse,
    Notification,
    NotificationSpec,
    ParamsModel,
    PingParams,
    PingResult,
    Request,
    RequestSpec,
    Response,
    encode_message,
)
from symphony.server import Daemon, Limits, RequestContext, RouteTable, ServeOptions, route

TOKEN = "s3cret-token"


class GateParams(ParamsModel):
    key: str


class Gates:
    """Events the tests open to let blocked handlers go on, and a record of what ran."""

    def __init__(self) -> None:
        self.events: dict[str, asyncio.Event] = {}
        self.started: list[str] = []
        self.cancelled: list[str] = []
        self.notes: list[str] = []

    def __getitem__(self, key: str) -> asyncio.Event:
        return self.events.setdefault(key, asyncio.Event())

    async def reached(self, key: str) -> None:
        """Wait until a handler has marked ``key`` (started:K, note:K)."""
        async with asyncio.timeout(10):
            await self[key].wait()


GATES = Gates()


async def wait_gate(ctx: RequestContext, params: GateParams) -> PingResult:
    GATES.started.append(params.key)
    GATES[f"started:{params.key}"].set()
    try:
        await GATES[params.key].wait()
    except asyncio.CancelledError:
        GATES.cancelled.append(params.key)
        raise
    return PingResult(data=params.key)


async def boom(ctx: RequestContext, params: PingParams) -> PingResult:
    raise RuntimeError("the handler broke")


async def not_json(ctx: RequestContext, params: PingParams) -> PingResult:
    return PingResult(data=float("nan"))


async def record(ctx: RequestContext, params: GateParams) -> None:
    GATES.notes.append(params.key)
    GATES[f"note:{params.key}"].set()


async def ask_client(ctx: RequestContext, params: PingParams) -> PingResult:
    answer = await ctx.connection.request(CLIENT_ECHO, params)
    return PingResult(data=answer)


async def publish(ctx: RequestContext, params: PingParams) -> PingResult:
    count = 0
    for i in range(params.data["count"]):
        count = ctx.daemon.bus.publish(params.data["topic"], {"i": i, "pad": "x" * 200})
        await asyncio.sleep(0)  # a publisher that lets the loop run, as real ones do
    return PingResult(data=count)


async def text_sync(ctx: RequestContext, params: GateParams) -> None:
    GATES.notes.append(ctx.method)


WAIT = RequestSpec("test/wait", GateParams, PingResult, "block until the gate opens")
BOOM = RequestSpec("test/boom", PingParams, PingResult, "raise")
NOT_JSON = RequestSpec("test/notJson", PingParams, PingResult, "return NaN")
RECORD = NotificationSpec("test/record", GateParams, "record a note")
ASK = RequestSpec("test/ask", PingParams, PingResult, "ask the client, return its answer")
CLIENT_ECHO = RequestSpec("client/echo", PingParams, PingResult, "a client method", "server")
PUBLISH = RequestSpec("test/publish", PingParams, PingResult, "publish events")

TEST_ROUTES = ROUTES.with_routes(
    route(WAIT, wait_gate),
    route(BOOM, boom),
    route(NOT_JSON, not_json),
    route(RECORD, record),
    route(ASK, ask_client),
    route(PUBLISH, publish),
)


def make_daemon(**limits: Any) -> Daemon:
    options = ServeOptions(token=TOKEN, limits=Limits(shutdown_grace=0.5, **limits))
    return Daemon(options, routes=TEST_ROUTES)


@pytest.fixture
async def client() -> AsyncIterator[MemoryClient]:
    global GATES
    GATES = Gates()
    async with connect(make_daemon()) as c:
        await c.initialize()
        yield c


async def test_initialize_negotiates_the_encoding_and_advertises_what_is_routed() -> None:
    async with connect(make_daemon()) as c:
        result = await c.initialize(
            capabilities={"general": {"positionEncodings": ["utf-32", "utf-16"]}},
            clientInfo={"name": "tester", "version": "1"},
        )
        caps = result["capabilities"]
        assert caps["positionEncoding"] == "utf-32"
        # The daemon's table routes didOpen/didChange (incremental)/didClose/didSave.
        assert caps["textDocumentSync"]["openClose"] is True
        assert caps["textDocumentSync"]["change"] == 2
        # Every routed symphony/* method is listed, and nothing that is not routed.
        routed = sorted(method for method in TEST_ROUTES if method.startswith("symphony/"))
        assert caps["experimental"]["symphony"]["methods"] == routed
        assert "symphony/buffer/edit" in routed
        assert result["serverInfo"]["name"] == "symphony"
        info = await c.result("symphony/info")
        assert info["positionEncoding"] == "utf-32"
        assert info["clientId"].startswith("c")


async def test_text_sync_is_advertised_once_its_handlers_are_routed() -> None:
    sync_specs = [
        NotificationSpec(f"textDocument/{name}", GateParams, "")
        for name in ("didOpen", "didChange", "didClose")
    ]
    without_sync = RouteTable(
        [r for r in TEST_ROUTES.values() if not r.method.startswith("textDocument/")]
    )
    async with connect(Daemon(ServeOptions(), routes=without_sync)) as c:
        caps = (await c.initialize())["capabilities"]
        assert "textDocumentSync" not in caps  # nothing routed, nothing advertised
    routes = without_sync.with_routes(*(route(spec, text_sync) for spec in sync_specs))
    async with connect(Daemon(ServeOptions(), routes=routes)) as c:
        caps = (await c.initialize())["capabilities"]
        assert caps["textDocumentSync"] == {"openClose": True, "change": 2}


async def test_before_initialize_requests_get_32002_and_notifications_are_dropped() -> None:
    global GATES
    GATES = Gates()
    async with connect(make_daemon()) as c:
        c.send(Notification("test/record", {"key": "early"}))
        reply = await c.call("symphony/ping")
        assert isinstance(reply, ErrorResponse)
        assert reply.code == -32002
        await c.initialize()
        c.send(Notification("test/record", {"key": "late"}))
        assert (await c.result("symphony/ping", {"data": 1})) == {"data": 1}
        assert GATES.notes == ["late"]


async def test_exit_before_initialize_closes_the_connection() -> None:
    async with connect(make_daemon()) as c:
        c.send(Notification("exit"))
        assert await c.closed()


async def test_unknown_methods_and_bad_params_are_answered_precisely(client: MemoryClient) -> None:
    unknown = await client.call("symphony/nope")
    assert isinstance(unknown, ErrorResponse)
    assert (unknown.code, unknown.message) == (-32601, "method not found: symphony/nope")

    bad = await client.call("symphony/subscribe", {"topics": "buffer/*"})
    assert isinstance(bad, ErrorResponse)
    assert bad.code == -32602
    assert bad.data == [
        {"type": "list_type", "loc": ["topics"], "msg": "Input should be a valid list"}
    ]
    assert "topics" in bad.message

    extra = await client.call("symphony/ping", {"dta": 1})
    assert isinstance(extra, ErrorResponse)
    assert extra.data[0]["type"] == "extra_forbidden"

    positional = await client.call("symphony/ping", [1])
    assert isinstance(positional, ErrorResponse)
    assert positional.code == -32602
    assert "not an array" in positional.message

    assert (await client.result("symphony/ping")) == {}  # still serving


async def test_a_slow_handler_does_not_block_the_next_message(client: MemoryClient) -> None:
    client.send(Request("slow", "test/wait", {"key": "a"}))
    assert (await client.result("symphony/ping", {"data": "fast"})) == {"data": "fast"}
    assert GATES.started == ["a"]
    GATES["a"].set()
    reply = (await client.reply("slow")).message
    assert reply == Response("slow", {"data": "a"})


async def test_cancel_request_answers_32800(client: MemoryClient) -> None:
    client.send(Request(7, "test/wait", {"key": "c"}))
    assert (await client.result("symphony/ping")) == {}  # the handler has started by now
    client.send(Notification("$/cancelRequest", {"id": 7}))
    reply = (await client.reply(7)).message
    assert isinstance(reply, ErrorResponse)
    assert reply.code == -32800
    assert GATES.cancelled == ["c"]
    client.send(Notification("$/cancelRequest", {"id": 12345}))  # unknown: ignored
    assert (await client.result("symphony/ping", {"data": 2})) == {"data": 2}


async def test_cancel_before_the_handler_ever_ran_still_answers(client: MemoryClient) -> None:
    # One write: the reader dispatches both before the handler task gets its first turn.
    client.send_raw(
        client.stream.send(Request(8, "test/wait", {"key": "never"}))
        + client.stream.send(Notification("$/cancelRequest", {"id": 8}))
    )
    reply = (await client.reply(8)).message
    assert isinstance(reply, ErrorResponse)
    assert reply.code == -32800
    assert "never" not in GATES.started


async def test_a_failing_handler_is_32603_with_a_log_id_and_the_connection_lives(
    client: MemoryClient,
) -> None:
    with capture_logs() as logs:
        reply = await client.call("test/boom")
    assert isinstance(reply, ErrorResponse)
    assert reply.code == -32603
    log_id = reply.data["logId"]
    assert log_id in reply.message
    failures = [entry for entry in logs if entry.get("log_id") == log_id]
    assert failures
    assert failures[0]["event"] == "handler failed"
    assert failures[0]["method"] == "test/boom"
    assert (await client.result("symphony/ping", {"data": 3})) == {"data": 3}


async def test_a_result_that_is_not_json_is_32603(client: MemoryClient) -> None:
    reply = await client.call("test/notJson")
    assert isinstance(reply, ErrorResponse)
    assert reply.code == -32603
    assert (await client.result("symphony/ping")) == {}


async def test_batches_are_answered_per_the_spec(client: MemoryClient) -> None:
    client.send(
        [
            Request(1, "symphony/ping", {"data": "a"}),
            Notification("test/record", {"key": "in-batch"}),
            Request(2, "symphony/nope"),
        ]
    )
    event = await client.next()
    assert event is not None
    assert isinstance(event.message, Batch)
    by_id = {m.id: m for m in event.message.items}  # type: ignore[union-attr]
    assert by_id[1] == Response(1, {"data": "a"})
    assert isinstance(by_id[2], ErrorResponse)
    assert by_id[2].code == -32601
    assert GATES.notes == ["in-batch"]

    # All notifications: no reply at all; the next thing we get is the ping's reply.
    client.send(
        [Notification("test/record", {"key": "x"}), Notification("test/record", {"key": "y"})]
    )
    assert (await client.result("symphony/ping", {"data": "after"})) == {"data": "after"}

    client.send_raw(b"Content-Length: 2\r\n\r\n[]")
    empty = await client.next()
    assert empty is not None
    assert isinstance(empty.message, ErrorResponse)
    assert (empty.message.id, empty.message.code) == (None, -32600)


async def test_invalid_json_is_32700_and_the_stream_goes_on(client: MemoryClient) -> None:
    client.send_raw(b"Content-Length: 5\r\n\r\n{nope")
    event = await client.next()
    assert event is not None
    assert isinstance(event.message, ErrorResponse)
    assert (event.message.id, event.message.code) == (None, -32700)
    assert (await client.result("symphony/ping")) == {}


async def test_a_framing_error_is_answered_then_the_connection_closes(client: MemoryClient) -> None:
    client.send_raw(b"this is not a header\r\n\r\n")
    event = await client.next()
    assert event is not None
    assert isinstance(event.message, ErrorResponse)
    assert event.message.code == -32700
    assert "malformed header line" in event.message.message
    assert await client.closed()


async def test_an_oversized_message_is_refused_and_the_connection_goes_on() -> None:
    async with connect(make_daemon(max_message_size=1000)) as c:
        await c.initialize()
        request = Request(1, "symphony/ping", {"data": "x" * 5000})
        c.send(request)
        event = await c.next()
        assert event is not None
        assert isinstance(event.message, ErrorResponse)
        assert event.message.code == -32904
        size = len(encode_message(request))
        assert event.message.data == {"size": size, "limit": 1000}
        assert (await c.result("symphony/ping", {"data": "small"})) == {"data": "small"}


async def test_msgpack_requests_get_msgpack_replies(client: MemoryClient) -> None:
    client.send(Request("mp", "symphony/ping", {"data": b"\x00bytes"}), Codec.MSGPACK)
    event = await client.reply("mp")
    assert event.codec is Codec.MSGPACK
    assert event.message == Response("mp", {"data": b"\x00bytes"})


async def test_shutdown_then_requests_are_refused_and_exit_closes(client: MemoryClient) -> None:
    assert (await client.result("shutdown")) is None
    refused = await client.call("symphony/ping")
    assert isinstance(refused, ErrorResponse)
    assert (refused.code, refused.message) == (-32600, "server is shutting down")
    client.send(Notification("exit"))
    assert await client.closed()


async def test_untrusted_transports_need_the_token() -> None:
    async with connect(make_daemon(), trusted=False) as c:
        reply = await c.call("initialize", {"capabilities": {}})
        assert isinstance(reply, ErrorResponse)
        assert reply.code == -32903
        assert "initializationOptions.token" in reply.message
        assert await c.closed()
    async with connect(make_daemon(), trusted=False) as c:
        reply = await c.call("initialize", {"initializationOptions": {"token": "wrong"}})
        assert isinstance(reply, ErrorResponse)
        assert reply.code == -32903
    async with connect(make_daemon(), trusted=False) as c:
        await c.initialize(initializationOptions={"token": TOKEN})
        assert (await c.result("symphony/ping", {"data": 1})) == {"data": 1}


async def test_initialize_twice_is_invalid(client: MemoryClient) -> None:
    again = await client.call("initialize", {"capabilities": {}})
    assert isinstance(again, ErrorResponse)
    assert (again.code, again.message) == (-32600, "already initialized")


async def test_duplicate_ids_in_flight_are_refused(client: MemoryClient) -> None:
    client.send(Request(5, "test/wait", {"key": "d"}))
    client.send(Request(5, "symphony/ping"))
    dup = (await client.reply(5)).message
    assert isinstance(dup, ErrorResponse)
    assert "already in flight" in dup.message
    GATES["d"].set()
    assert (await client.reply(5)).message == Response(5, {"data": "d"})


async def test_the_daemon_can_ask_the_client(client: MemoryClient) -> None:
    client.send(Request(1, "test/ask", {"data": "q"}))
    event = await client.next()
    assert event is not None
    asked = event.message
    assert isinstance(asked, Request)
    assert (asked.method, asked.params) == ("client/echo", {"data": "q"})
    client.send(Response(asked.id, {"answer": 42}))
    assert (await client.reply(1)).message == Response(1, {"data": {"answer": 42}})


async def test_trace_sends_log_trace_after_each_request(client: MemoryClient) -> None:
    client.send(Notification("$/setTrace", {"value": "verbose"}))
    await client.result("symphony/ping")
    trace = await client.notification("$/logTrace")
    assert trace.params["message"].startswith("symphony/ping (")  # type: ignore[index]
    assert '"method":"symphony/ping"' in trace.params["verbose"]  # type: ignore[index]


async def test_in_flight_requests_are_capped() -> None:
    global GATES
    GATES = Gates()
    async with connect(make_daemon(max_inflight=2)) as c:
        await c.initialize()
        for key in "abc":
            c.send(Request(key, "test/wait", {"key": key}))
        c.send(Notification("test/record", {"key": "after"}))
        await GATES.reached("started:a")
        await GATES.reached("started:b")
        # Two slots, both taken: the reader waits before "c", so it has not read "after" either.
        assert GATES.started == ["a", "b"]
        assert GATES.notes == []
        GATES["a"].set()
        assert (await c.reply("a")).message == Response("a", {"data": "a"})
        await GATES.reached("note:after")
        assert GATES.started == ["a", "b", "c"]
        GATES["b"].set()
        GATES["c"].set()
        await c.reply("b")
        await c.reply("c")


async def test_a_client_vanishing_mid_request_cancels_its_work_not_the_daemon() -> None:
    global GATES
    GATES = Gates()
    daemon = make_daemon()
    async with connect(daemon) as other:
        await other.initialize()
        async with connect(daemon) as leaving:
            await leaving.initialize()
            leaving.send(Request(1, "test/wait", {"key": "orphan"}))
            assert (await leaving.result("symphony/ping")) == {}
            leaving.peer.close()
        assert GATES.cancelled == ["orphan"]  # after the grace period, nobody to answer
        assert (await other.result("symphony/ping", {"data": "alive"})) == {"data": "alive"}
        assert len(daemon.connections) == 1


async def test_events_reach_subscribers_with_wildcards() -> None:
    daemon = make_daemon()
    async with connect(daemon) as watcher:
        await watcher.initialize()
        assert (await watcher.result("symphony/subscribe", {"topics": ["connection/*"]})) == {
            "topics": ["connection/*"]
        }
        async with connect(daemon) as newcomer:
            await newcomer.initialize()
            opened = await watcher.notification("symphony/event")
            assert opened.params["topic"] == "connection/opened"  # type: ignore[index]
            ready = await watcher.notification("symphony/event")
            assert ready.params["topic"] == "connection/initialized"  # type: ignore[index]
        closed = await watcher.notification("symphony/event")
        assert closed.params["topic"] == "connection/closed"  # type: ignore[index]
        bad = await watcher.call("symphony/subscribe", {"topics": ["a/b*"]})
        assert isinstance(bad, ErrorResponse)
        assert bad.code == -32602
        assert (await watcher.result("symphony/unsubscribe", {"topics": ["connection/*"]})) == {
            "topics": []
        }


async def test_a_slow_subscriber_loses_events_counts_them_and_never_blocks_others() -> None:
    daemon = make_daemon(max_queued_events=50)
    async with (
        connect(daemon, high_water=4096) as slow,
        connect(daemon) as fast,
        connect(daemon) as publisher,
    ):
        for c in (slow, fast, publisher):
            await c.initialize()
        await slow.result("symphony/subscribe", {"topics": ["load/**"]})
        await fast.result("symphony/subscribe", {"topics": ["load/*"]})

        async def read_all(client: MemoryClient, count: int) -> list[int]:
            seen = []
            while len(seen) < count:
                note = await client.notification("symphony/event")
                seen.append(note.params["data"]["i"])  # type: ignore[index]
            return seen

        async with asyncio.TaskGroup() as tg:
            fast_events = tg.create_task(read_all(fast, 300))
            # 300 events while `slow` reads nothing: its budget fills, the rest are counted.
            delivered = await publisher.result(
                "test/publish", {"data": {"topic": "load/x", "count": 300}}
            )
        assert delivered == {"data": 2}
        assert fast_events.result() == list(range(300))  # the slow one never held it up

        seen: list[int] = []
        dropped = 0
        while len(seen) + dropped < 300:
            event = await slow.next()
            assert event is not None
            message = event.message
            assert isinstance(message, Notification)
            if message.method == "symphony/eventsDropped":
                dropped += message.params["count"]  # type: ignore[index]
            else:
                seen.append(message.params["data"]["i"])  # type: ignore[index]
        assert dropped > 0
        assert seen == sorted(seen)  # what arrives, arrives in order
        assert len(seen) + dropped == 300
        assert (await slow.result("symphony/ping", {"data": "ok"})) == {"data": "ok"}


async def test_a_client_that_never_reads_replies_is_disconnected() -> None:
    daemon = make_daemon(max_write_buffer=32 * 1024)
    async with connect(daemon, high_water=1024) as hog, connect(daemon) as polite:
        await hog.initialize()
        await polite.initialize()
        big = "y" * 4000
        for i in range(40):
            hog.send(Request(i, "symphony/ping", {"data": big}))
        assert (await polite.result("symphony/ping", {"data": 1})) == {"data": 1}
        assert await hog.closed()
        assert (await polite.result("symphony/ping", {"data": 2})) == {"data": 2}


async def test_websocket_style_transport_one_message_per_frame() -> None:
    async with connect(make_daemon(), framed=False) as c:
        await c.initialize()
        assert (await c.result("symphony/ping", {"data": "text"})) == {"data": "text"}
        reply = await c.call("symphony/ping", {"data": b"bin"}, codec=Codec.MSGPACK)
        assert reply == Response(reply.id, {"data": b"bin"})  # type: ignore[arg-type]
        c.send_raw("{not json")
        event = await c.next()
        assert event is not None
        assert isinstance(event.message, ErrorResponse)
        assert event.message.code == -32700


async def test_an_inline_handler_that_awaits_is_stopped_and_named() -> None:
    async def awaits(ctx: RequestContext, params: PingParams) -> PingResult:
        await asyncio.sleep(0)
        return PingResult(data="unreachable")

    spec = RequestSpec("test/awaits", PingParams, PingResult, "an inline handler that awaits")
    routes = TEST_ROUTES.with_routes(route(spec, awaits, inline=True))
    async with connect(Daemon(ServeOptions(), routes=routes)) as c:
        await c.initialize()
        with capture_logs() as logs:
            reply = await c.call("test/awaits")
        assert isinstance(reply, ErrorResponse)
        assert reply.code == -32603
        failure = next(e for e in logs if e.get("log_id") == reply.data["logId"])
        assert "routed inline=True but its handler awaited" in str(failure["exc_info"])
        assert (await c.result("symphony/ping", {"data": 1})) == {"data": 1}


async def test_broadcast_encodes_once_per_encoding_and_reaches_each_client_in_its_own() -> None:
    daemon = make_daemon()
    async with connect(daemon) as a, connect(daemon) as b, connect(daemon) as c:
        await a.initialize(capabilities={"general": {"positionEncodings": ["utf-8"]}})
        await b.initialize()
        await c.initialize(capabilities={"general": {"positionEncodings": ["utf-8"]}})
        asked: list[str] = []

        def params_for(encoding: str) -> dict[str, Any]:
            asked.append(encoding)
            return {"encoding": encoding}

        sent = daemon.broadcast(daemon.connections, "test/didSomething", params_for)
        assert sent == 3
        assert sorted(asked) == ["utf-16", "utf-8"]  # once per encoding, not per client
        for client, encoding in ((a, "utf-8"), (b, "utf-16"), (c, "utf-8")):
            note = await client.notification("test/didSomething")
            assert note.params == {"encoding": encoding}


async def test_closing_a_connection_lets_running_requests_finish_within_the_grace() -> None:
    global GATES
    GATES = Gates()
    daemon = make_daemon()
    async with connect(daemon) as c:
        await c.initialize()
        c.send(Request("late", "test/wait", {"key": "g"}))
        await GATES.reached("started:g")
        (connection,) = daemon.connections
        connection.close("daemon stopping", grace=10.0)
        GATES["g"].set()
        assert (await c.reply("late")).message == Response("late", {"data": "g"})
        assert await c.closed()
        assert connection.close_reason == "daemon stopping"


async def test_an_unauthenticated_client_that_idles_is_disconnected() -> None:
    async with connect(make_daemon(auth_timeout=0.2), trusted=False) as idle:
        assert await idle.closed()
    daemon = make_daemon()
    async with connect(daemon, trusted=False) as prompt:
        await prompt.initialize(initializationOptions={"token": TOKEN})
        (connection,) = daemon.connections
        connection._auth_deadline()  # the timer firing after authentication changes nothing
        assert (await prompt.result("symphony/ping", {"data": 1})) == {"data": 1}


async def test_closing_again_in_a_hurry_cuts_the_grace_short() -> None:
    global GATES
    GATES = Gates()
    daemon = make_daemon()
    async with connect(daemon) as c:
        await c.initialize()
        c.send(Request("stuck", "test/wait", {"key": "h"}))
        await GATES.reached("started:h")
        (connection,) = daemon.connections
        connection.close("daemon stopping", grace=60.0)
        connection.close("daemon stopping now", grace=0.0)  # a second SIGINT
        assert await c.closed()  # well before 60 s (the client helper gives up after 10)
        assert GATES.cancelled == ["h"]
        assert connection.close_reason == "daemon stopping"


async def test_a_msgpack_client_gets_its_events_in_msgpack() -> None:
    daemon = make_daemon()
    async with connect(daemon) as c, connect(daemon) as other:
        c.send(Request(1, "initialize", {"capabilities": {}}), Codec.MSGPACK)
        assert (await c.reply(1)).codec is Codec.MSGPACK
        c.send(Request(2, "symphony/subscribe", {"topics": ["connection/*"]}), Codec.MSGPACK)
        await c.reply(2)
        await other.initialize()
        event = await c.next()
        assert event is not None
        assert event.codec is Codec.MSGPACK
        assert isinstance(event.message, Notification)
        assert event.message.params["topic"] == "connection/initialized"  # type: ignore[index]


async def test_one_reply_larger_than_the_write_limit_still_goes_to_a_reading_client() -> None:
    async with connect(make_daemon(max_write_buffer=1000), high_water=1 << 20) as c:
        await c.initialize()
        big = "b" * 50_000
        assert (await c.result("symphony/ping", {"data": big})) == {"data": big}
        assert (await c.result("symphony/ping", {"data": big})) == {"data": big}


async def test_an_inline_handler_raising_cancelled_error_is_just_a_failure() -> None:
    async def cancels(ctx: RequestContext, params: PingParams) -> PingResult:
        raise asyncio.CancelledError

    spec = RequestSpec("test/cancels", PingParams, PingResult, "raises CancelledError")
    routes = TEST_ROUTES.with_routes(route(spec, cancels, inline=True))
    async with connect(Daemon(ServeOptions(), routes=routes)) as c:
        await c.initialize()
        reply = await c.call("test/cancels")
        assert isinstance(reply, ErrorResponse)
        assert reply.code == -32603
        assert (await c.result("symphony/ping", {"data": 2})) == {"data": 2}
