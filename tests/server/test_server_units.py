"""The server's small parts on their own: event bus, routes, discovery files, addresses."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from symphony.handlers import ROUTES
from symphony.protocol import (
    PING,
    InvalidParams,
    Notification,
    PingParams,
    PingResult,
    RequestSpec,
    StreamConnection,
)
from symphony.server import (
    ConfigError,
    DiscoveryInfo,
    Event,
    EventBus,
    EventsDropped,
    RequestContext,
    RouteError,
    RouteTable,
    Services,
    SharedNotification,
    default_unix_path,
    discovery_path,
    parse_address,
    read_discovery,
    remove_discovery,
    route,
    runtime_dir,
    to_thread,
    topic_matches,
    validate_pattern,
    write_discovery,
)
from symphony.server._listeners import handshake_token, is_allowed_origin, is_loopback_host

# -- event bus ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "topic", "matches"),
    [
        ("buffer/*", "buffer/didSave", True),
        ("buffer/*", "buffer/a/b", False),
        ("buffer/*", "buffer", False),
        ("extension/**", "extension", True),
        ("extension/**", "extension/acme/progress/1", True),
        ("extension/**", "extensions/x", False),
        ("**", "anything/at/all", True),
        ("a/**/z", "a/z", True),
        ("a/**/z", "a/b/c/z", True),
        ("a/**/z", "a/b/c/y", False),
        ("*/opened", "connection/opened", True),
        ("connection/opened", "connection/opened", True),
        ("connection/opened", "connection/closed", False),
    ],
)
def test_topic_patterns(pattern: str, topic: str, matches: bool) -> None:
    assert topic_matches(validate_pattern(pattern), tuple(topic.split("/"))) is matches


@pytest.mark.parametrize("pattern", ["a//b", "", "a/b*", "*x", "a/**x"])
def test_invalid_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(ValueError, match="invalid topic pattern"):
        validate_pattern(pattern)


segments = st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=5)


@given(segments, segments)
def test_double_star_matches_exactly_the_topics_with_that_prefix(
    prefix: list[str], rest: list[str]
) -> None:
    pattern = validate_pattern("/".join([*prefix, "**"]))
    assert topic_matches(pattern, tuple(prefix + rest))
    assert topic_matches(pattern, tuple(prefix))
    assert not topic_matches(pattern, (*prefix[:-1], "zzz", *rest))


def test_publish_reaches_matching_subscribers_only_and_follows_changes() -> None:
    bus = EventBus()
    got: dict[str, list[str]] = {"a": [], "b": []}
    sub_a = bus.subscribe(["buffer/*"], lambda e: got["a"].append(e.topic))
    bus.subscribe(["extension/**"], lambda e: got["b"].append(e.topic))
    assert bus.publish("buffer/didSave", {"uri": "x"}) == 1
    assert bus.publish("extension/x/y") == 1
    assert bus.publish("other") == 0
    sub_a.add(["other"])  # the per-topic cache must notice
    assert bus.publish("other") == 1
    sub_a.remove(["buffer/*"])
    assert bus.publish("buffer/didSave") == 0
    sub_a.close()
    assert bus.publish("other") == 0
    assert got == {"a": ["buffer/didSave", "other"], "b": ["extension/x/y"]}
    with pytest.raises(ValueError, match="invalid topic"):
        bus.publish("buffer/*")


async def test_an_event_queue_is_bounded_and_reports_losses_where_they_happened() -> None:
    bus = EventBus()
    queue = bus.queue(["t/*"], maxsize=3)
    for i in range(5):
        bus.publish("t/x", i)  # 3 fit, 2 are lost
    assert len(queue) == 3
    assert queue.dropped == 2
    first = await queue.get()
    assert isinstance(first, Event)
    assert first.data == 0
    bus.publish("t/x", 5)  # fits now; the loss is reported just before it
    items = [await queue.get() for _ in range(4)]
    assert [i.data if isinstance(i, Event) else i for i in items] == [1, 2, EventsDropped(2), 5]
    queue.close()
    assert bus.publish("t/x", 6) == 0
    assert [item async for item in queue] == []


async def test_an_event_queue_consumer_waits_for_events() -> None:
    bus = EventBus()
    queue = bus.queue(["t"])
    async with asyncio.TaskGroup() as tg:
        waiting = tg.create_task(queue.get())
        await asyncio.sleep(0)
        bus.publish("t", "hello")
    result = waiting.result()
    assert isinstance(result, Event)
    assert result.data == "hello"


def test_a_shared_notification_is_encoded_once_per_variant() -> None:
    from symphony.protocol import Codec

    note = SharedNotification("symphony/event", {"topic": "t", "data": [1]})
    framed = note.wire(Codec.JSON, True)
    assert note.wire(Codec.JSON, True) is framed
    assert framed == StreamConnection().send(Notification("symphony/event", note.params))
    bare = note.wire(Codec.JSON, False)
    assert framed.endswith(bare)
    assert note.wire(Codec.MSGPACK, True) == StreamConnection().send(
        Notification("symphony/event", note.params), Codec.MSGPACK
    )


# -- routes -------------------------------------------------------------------------------------


async def _ok(ctx: RequestContext, params: PingParams) -> PingResult:
    return PingResult()


def test_route_checks_the_handler_shape_when_registered() -> None:
    def not_async(ctx: RequestContext, params: PingParams) -> PingResult:
        return PingResult()

    async def one_arg(ctx: RequestContext) -> PingResult:
        return PingResult()

    with pytest.raises(RouteError, match="must be an `async def`"):
        route(PING, not_async)  # type: ignore[arg-type]
    with pytest.raises(RouteError, match=r"takes exactly \(ctx, params\)"):
        route(PING, one_arg)  # type: ignore[arg-type]
    server_side = RequestSpec("client/x", PingParams, PingResult, "", direction="server")
    with pytest.raises(RouteError, match="sent by the server"):
        route(server_side, _ok)
    with pytest.raises(RouteError, match="routed twice"):
        RouteTable([route(PING, _ok), route(PING, _ok)])


def test_route_table_extends_and_replaces() -> None:
    extra = RequestSpec("test/extra", PingParams, PingResult, "")
    table = ROUTES.with_routes(route(extra, _ok))
    assert "test/extra" in table
    assert "test/extra" not in ROUTES
    replaced = ROUTES.with_routes(route(PING, _ok), replace=True)
    assert replaced["symphony/ping"].handler is _ok
    assert len(replaced) == len(ROUTES)


def test_params_are_validated_with_details() -> None:
    ping = ROUTES["symphony/ping"]
    assert ping.parse_params(None) == PingParams()
    with pytest.raises(InvalidParams) as caught:
        ping.parse_params({"x": 1, "y": 2, "z": 3, "w": 4})
    assert "and 1 more" in caught.value.message
    assert len(caught.value.data) == 4


async def test_to_thread_runs_blocking_work_off_the_loop() -> None:
    import threading

    loop_thread = threading.get_ident()
    worker = await to_thread(threading.get_ident)
    assert worker != loop_thread


def test_services_are_typed_and_say_what_is_missing() -> None:
    services = Services()
    bus = EventBus()
    services.provide(EventBus, bus)
    assert services.get(EventBus) is bus
    assert EventBus in services
    assert services.find(Services) is None
    with pytest.raises(LookupError, match="no Services service"):
        services.get(Services)
    with pytest.raises(TypeError, match="is not a Services"):
        services.provide(Services, bus)  # type: ignore[arg-type]


# -- discovery ------------------------------------------------------------------------------------


def test_runtime_dir_is_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    directory = runtime_dir()
    assert directory == tmp_path / "symphony"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    directory.chmod(0o755)
    assert stat.S_IMODE(runtime_dir().stat().st_mode) == 0o700  # tightened again


def test_runtime_dir_refuses_something_that_is_not_our_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    (tmp_path / "symphony").write_text("not a directory")
    with pytest.raises(PermissionError, match="not a directory owned by this user"):
        runtime_dir()


def test_runtime_dir_falls_back_to_tmp_with_the_uid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    assert runtime_dir() == tmp_path / f"symphony-{os.getuid()}"


def test_discovery_file_round_trip_mode_and_staleness(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    path = discovery_path(workspace, directory=tmp_path)
    assert path.parent == tmp_path
    assert default_unix_path(workspace, directory=tmp_path).suffix == ".sock"
    mine = DiscoveryInfo(os.getpid(), str(workspace), "0.1.0", 1.0, "tok", {"unix": "/x.sock"})
    write_discovery(path, mine)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_discovery(workspace, directory=tmp_path) == mine
    assert json.loads(path.read_text())["addresses"] == {"unix": "/x.sock"}

    remove_discovery(path, os.getpid() + 1)  # not ours: kept
    assert path.exists()
    remove_discovery(path, os.getpid())
    assert not path.exists()

    dead = DiscoveryInfo(2**22 + 12345, str(workspace), "0.1.0", 1.0, "tok")
    write_discovery(path, dead)
    assert read_discovery(workspace, directory=tmp_path) is None  # its daemon is gone
    path.write_text("{broken")
    assert read_discovery(workspace, directory=tmp_path) is None


# -- addresses ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:7420", ("127.0.0.1", 7420)),
        (":7420", ("127.0.0.1", 7420)),
        ("7420", ("127.0.0.1", 7420)),
        ("localhost:0", ("localhost", 0)),
        ("[::1]:9", ("::1", 9)),
    ],
)
def test_addresses_parse(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["host:port", "1.2.3.4:70000", "x:"])
def test_bad_addresses_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError, match="address"):
        parse_address(text)


def test_loopback_detection() -> None:
    assert is_loopback_host("127.0.0.1")
    assert is_loopback_host("::1")
    assert is_loopback_host("localhost")
    assert not is_loopback_host("0.0.0.0")
    assert not is_loopback_host("192.0.2.1")


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (None, True),
        ("http://localhost:3000", True),
        ("http://127.0.0.1:8080", True),
        ("http://[::1]", True),
        ("https://evil.example", False),
        ("https://app.example", True),
        ("null", False),
    ],
)
def test_websocket_origins(origin: str | None, allowed: bool) -> None:
    assert is_allowed_origin(origin, ["https://app.example"]) is allowed


def test_websocket_handshake_tokens() -> None:
    from websockets.datastructures import Headers
    from websockets.http11 import Request

    def request(path: str = "/", **headers: str) -> Request:
        return Request(path, Headers(**headers))

    assert handshake_token(request("/?token=abc")) == "abc"
    assert handshake_token(request(Authorization="Bearer xyz")) == "xyz"
    assert (
        handshake_token(request(**{"Sec-WebSocket-Protocol": "symphony, symphony.token.t1"}))
        == "t1"
    )
    assert handshake_token(request()) is None


# -- the serve command -----------------------------------------------------------------------------


def test_serve_registers_as_a_subcommand_with_the_issue_flags() -> None:
    import argparse

    from symphony.clients import _cli_serve

    parser = argparse.ArgumentParser(prog="symphony")
    _cli_serve.register(parser.add_subparsers())
    args = parser.parse_args(
        [
            "serve",
            "--stdio",
            "--tcp",
            ":7420",
            "--unix",
            "--ws",
            "127.0.0.1:7421",
            "--log-file",
            "x.log",
            "--log-level",
            "debug",
            "--log-format",
            "console",
            "--allow-remote",
            "--workspace",
            "/w",
        ]
    )
    assert args.func is _cli_serve.run
    assert (args.stdio, args.tcp, args.unix, args.ws) == (True, ":7420", "", "127.0.0.1:7421")
    assert (args.log_file, args.log_level, args.log_format) == ("x.log", "debug", "console")
    assert args.allow_remote
    assert parser.parse_args(["serve", "--unix", "/tmp/s.sock"]).unix == "/tmp/s.sock"
    assert parser.parse_args(["serve"]).unix is None


def test_logging_goes_to_a_file_as_json_lines(tmp_path: Path) -> None:
    import structlog

    from symphony.server import configure_logging, get_logger

    log_file = tmp_path / "daemon.log"
    stream = configure_logging("info", "json", str(log_file))
    try:
        log = get_logger("symphony.test")
        log.debug("hidden")
        log.info("shown", answer=42)
        stream.flush()
        lines = [json.loads(line) for line in log_file.read_text().splitlines()]
        assert [(e["event"], e["answer"], e["level"]) for e in lines] == [("shown", 42, "info")]
        assert lines[0]["logger"] == "symphony.test"
    finally:
        stream.close()
        structlog.reset_defaults()
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging("loud")
