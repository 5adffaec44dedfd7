"""The asyncio Python client of the Symphony daemon.

    async with SymphonyClient.connect_workspace("~/proj") as client:
        opened = await client.open("src/app.py")
        await client.edit(opened.uri, [{"range": ..., "text": "x"}], base_revision=opened.revision)
        print((await client.get_text(opened.uri)).text)

Theory of operation
-------------------
A client owns one ``asyncio.TaskGroup`` (entered by ``async with``, left by it), and everything
it runs lives there, so leaving the block leaves no task behind:

- the **supervisor** task opens a channel through the ``Connector``, starts that channel's
  reader, performs the LSP handshake (``initialize`` with ``general.positionEncodings`` and the
  token in ``initializationOptions.token``, then ``initialized``), marks the client ready, and
  waits for the reader to end. When a socket connection drops and a ``Backoff`` policy was
  given, it reconnects (exponential backoff with full jitter), handshakes again and restores
  the subscriptions this client made (``symphony/subscribe`` topics and
  ``symphony/buffer/subscribe`` URIs); otherwise the client stops.
- one **reader** task per connection feeds the bytes to the sans-IO ``StreamConnection`` (or
  decodes one WebSocket frame) and dispatches each message *synchronously*: a reply resolves
  its request's future, a notification goes to the registered callbacks and streams in arrival
  order. It never awaits a callback, so a slow consumer cannot stall replies.
- short tasks send what must be sent from a context that cannot await: ``$/cancelRequest`` for
  a request whose caller was cancelled, replies to the daemon's requests to us.

Requests are correlated by integer ids. A request whose awaiting task is cancelled (or whose
``timeout`` expires, raising ``RequestTimeout``) sends ``$/cancelRequest``. When a connection
ends, every request sent on it fails at once with ``ConnectionLost``: nothing hangs. Requests
made while a reconnect is under way wait for it (bounded by their timeout); once the client
has given up or is closed they fail with ``ConnectionLost``.

Cost: the request path builds the JSON by hand (``symphony.protocol``'s slotted messages) and
never touches pydantic; only the typed helpers (``open``, ``edit``...) validate their result into
the protocol's pydantic models, imported on first use.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import sys
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar, cast

import symphony
from symphony.clients._transport import (
    DEFAULT_SERVE_COMMAND,
    Channel,
    ClientError,
    ConnectError,
    ConnectionLost,
    Connector,
    RequestTimeout,
    StdioChannel,
    StdioConnector,
    TcpConnector,
    UnixConnector,
    WebSocketConnector,
    WorkspaceConnector,
    parse_tcp_address,
)
from symphony.protocol import (
    CLOSED,
    DEFAULT_MAX_MESSAGE_SIZE,
    NEED_DATA,
    Batch,
    BufferNotFound,
    Codec,
    ErrorResponse,
    Id,
    Incoming,
    InternalError,
    Invalid,
    Message,
    MessageTooLarge,
    MethodNotFound,
    Notification,
    Params,
    RemoteProtocolError,
    Request,
    Response,
    RpcError,
    StreamConnection,
    decode_message,
    encode_message,
    frame,
)

if TYPE_CHECKING:
    from typing import Self

    from pydantic import BaseModel

    from symphony.protocol import (
        BufferGetTextResult,
        BufferListResult,
        BufferOpenResult,
        BufferSaveResult,
        InfoResult,
        InitializeResult,
        PingResult,
        Range,
        RequestSpec,
        RevisionResult,
        SubscribeResult,
        TextChange,
    )

__all__ = [
    "DEFAULT_POSITION_ENCODINGS",
    "Backoff",
    "NotificationCallback",
    "NotificationStream",
    "RequestHandler",
    "SymphonyClient",
]

P = TypeVar("P")
R = TypeVar("R")

#: What the client offers in ``general.positionEncodings``, preferred first. UTF-32 counts code
#: points, which is what a Python ``str`` index is: positions from the daemon slice Python
#: strings directly. Pass ``position_encodings=("utf-16",)`` to see what an editor sees.
DEFAULT_POSITION_ENCODINGS: Final = ("utf-32", "utf-16")
#: Notifications a ``NotificationStream`` holds for a consumer that does not keep up; more are
#: dropped and counted (``stream.dropped``), never buffered without bound.
DEFAULT_STREAM_SIZE: Final = 10_000

NotificationCallback = Callable[[Notification], None]
RequestHandler = Callable[[Params], Awaitable[Any]]


class _Default:
    """Sentinel: "use the client's default timeout"."""


_DEFAULT: Final = _Default()

# Requests whose success changes what the client must restore after a reconnect.
_SUBSCRIBE_TOPICS: Final = frozenset({"symphony/subscribe", "symphony/unsubscribe"})
_BUFFER_SUBSCRIPTION: Final = frozenset(
    {"symphony/buffer/subscribe", "symphony/buffer/unsubscribe", "symphony/buffer/close"}
)

_logger: Any = None


def _log() -> Any:
    """The client's structlog logger, to stderr (stdout may be a command's output)."""
    global _logger
    if _logger is None:
        import structlog

        _logger = structlog.wrap_logger(
            structlog.PrintLogger(file=sys.stderr), logger_name="symphony.clients"
        )
    return _logger


@dataclass(frozen=True, slots=True)
class Backoff:
    """When to retry a lost connection: exponential backoff with full jitter.

    Attempt ``n`` (0 for the first retry) waits a uniformly random time in
    ``[0, min(maximum, initial * multiplier**n)]`` ("full jitter": many clients of one restarted
    daemon spread out instead of reconnecting in lockstep). The client gives up after
    ``max_attempts`` failed attempts in a row or ``give_up_after`` seconds without a
    connection, whichever comes first (``None``: never).
    """

    initial: float = 0.05
    maximum: float = 5.0
    multiplier: float = 2.0
    max_attempts: int | None = None
    give_up_after: float | None = 60.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        cap = min(self.maximum, self.initial * self.multiplier ** min(attempt, 64))
        return (rng or random).uniform(0.0, cap)


@dataclass(slots=True)
class _Pending:
    future: asyncio.Future[Any]
    method: str
    generation: int


class NotificationStream:
    """Notifications as an async iterator, e.g. ``symphony/event`` for a ``watch``.

        async with client.notifications("symphony/event") as events:
            async for note in events:
                print(note.params)

    The stream is registered when it is created (so nothing sent after a subscribe request is
    missed) and holds at most ``maxsize`` notifications for a consumer that falls behind; more
    are dropped and counted in ``dropped``. Iteration ends when the client stops.
    """

    def __init__(
        self, client: SymphonyClient, methods: frozenset[str] | None, maxsize: int
    ) -> None:
        self._client = client
        self._methods = methods
        self._maxsize = maxsize
        self._queue: deque[Notification] = deque()
        self._wakeup = asyncio.Event()
        self._closed = False
        #: Notifications dropped because the consumer did not keep up.
        self.dropped = 0

    def _offer(self, note: Notification) -> None:
        if self._methods is not None and note.method not in self._methods:
            return
        if len(self._queue) >= self._maxsize:
            self.dropped += 1
            return
        self._queue.append(note)
        self._wakeup.set()

    def _end(self) -> None:
        self._closed = True
        self._wakeup.set()

    async def get(self) -> Notification:
        """The next notification. Raises ``ConnectionLost`` once the client has stopped."""
        while not self._queue:
            if self._closed:
                raise ConnectionLost("the client stopped: no more notifications")
            self._wakeup.clear()
            await self._wakeup.wait()
        return self._queue.popleft()

    def __aiter__(self) -> NotificationStream:
        return self

    async def __anext__(self) -> Notification:
        try:
            return await self.get()
        except ConnectionLost:
            raise StopAsyncIteration from None

    def close(self) -> None:
        """Stop receiving (what is queued can still be read)."""
        self._client._streams.discard(self)
        self._end()

    async def __aenter__(self) -> NotificationStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()


class SymphonyClient:
    """An asyncio client of one Symphony daemon. Use it as ``async with``.

    Construct it with a connector (``SymphonyClient.spawn``, ``.tcp``, ``.unix``, ``.ws``,
    ``.connect_workspace``, or any ``Connector``). Options:

    - ``codec``: ``Codec.JSON`` (default) or ``Codec.MSGPACK`` (``Content-Type:
      application/msgpack``, answered in msgpack; binary frames on a WebSocket).
    - ``position_encodings``: offered in ``general.positionEncodings`` (default: UTF-32, then
      UTF-16); the negotiated one is ``client.position_encoding``.
    - ``token``: sent as ``initializationOptions.token`` (default: the connector's token).
    - ``initialize``: perform the LSP handshake on connect (default). With False, call
      ``initialize()`` yourself (and again after each reconnect: see ``on_reconnect``).
    - ``reconnect``: a ``Backoff`` (or True for the default one) to reconnect socket
      transports after the connection drops; None (default) stops the client instead.
    - ``timeout``: default seconds per request (None: no limit); each call can override it.
    - ``max_message_size``: messages above this are refused before they are sent (the daemon's
      limit defaults to the same 64 MiB, and its refusal could not name the request).
    """

    def __init__(
        self,
        connector: Connector,
        *,
        codec: Codec = Codec.JSON,
        client_name: str = "symphony-python",
        client_version: str | None = symphony.__version__,
        position_encodings: Sequence[str] = DEFAULT_POSITION_ENCODINGS,
        initialization_options: Mapping[str, Any] | None = None,
        token: str | None = None,
        initialize: bool = True,
        reconnect: Backoff | bool | None = None,
        timeout: float | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        self.connector = connector
        self.codec = codec
        self.client_name = client_name
        self.client_version = client_version
        self.position_encodings = tuple(position_encodings)
        self.initialization_options = dict(initialization_options or {})
        self.token = token
        self.timeout = timeout
        self.max_message_size = max_message_size
        if reconnect is True:
            reconnect = Backoff()
        self.reconnect: Backoff | None = reconnect or None
        self._auto_initialize = initialize
        #: The raw ``initialize`` result of the current connection (None before the handshake).
        self.initialize_result_raw: dict[str, Any] | None = None
        #: The position encoding the daemon chose for this connection.
        self.position_encoding: str = "utf-16"
        #: How many times the client reconnected.
        self.reconnects = 0

        self._ids = itertools.count(1)
        self._pending: dict[Id, _Pending] = {}
        self._callbacks: dict[str | None, list[NotificationCallback]] = {}
        self._request_handlers: dict[str, RequestHandler] = {}
        self._reconnect_callbacks: list[Callable[[SymphonyClient], Any]] = []
        self._disconnect_callbacks: list[Callable[[SymphonyClient, str], Any]] = []
        self._streams: set[NotificationStream] = set()
        # What to restore after a reconnect (what the daemon said we are subscribed to).
        self._topics: list[str] = []
        self._buffer_subscriptions: dict[str, None] = {}

        # Invariants: ``_ready`` implies ``_channel is not None`` and ``_live == _generation``;
        # ``_live`` is the generation whose reader is running (None between connections), so a
        # request registered while ``_live`` is its generation is failed by that reader's end;
        # ``_stopped``, once set, stays set.
        self._tg: asyncio.TaskGroup | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._channel: Channel | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._generation = 0
        self._live: int | None = None
        self._ready = False
        self._stopped: ClientError | None = None
        self._closing = False
        self._state = asyncio.Condition()

    # -- constructors -------------------------------------------------------------------------

    @classmethod
    def spawn(
        cls,
        *args: str,
        workspace: str | None = None,
        argv: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        stderr: int | None = None,
        **options: Any,
    ) -> SymphonyClient:
        """Start a daemon of our own and speak to it over its stdin/stdout.

        Runs ``python -m symphony.server --stdio [--workspace W] ARGS...`` (the same program and
        options as ``symphony serve``), or exactly ``argv`` if given. The daemon lives as long
        as the client: leaving ``async with`` sends ``shutdown`` and ``exit`` and waits for it.
        ``stderr`` (a file descriptor, or ``subprocess.DEVNULL``) receives its log.
        """
        if argv is None:
            argv = [*DEFAULT_SERVE_COMMAND, "--stdio"]
            if workspace is not None:
                argv += ["--workspace", workspace]
            argv += args
        elif args or workspace is not None:
            raise TypeError("give either argv, or args and workspace")
        return cls(StdioConnector(tuple(argv), env=env, cwd=cwd, stderr=stderr), **options)

    @classmethod
    def tcp(cls, address: str, *, token: str | None = None, **options: Any) -> SymphonyClient:
        """Connect over TCP to ``HOST:PORT``; TCP clients must present the daemon's token."""
        host, port = parse_tcp_address(address)
        return cls(TcpConnector(host, port, token=token), **options)

    @classmethod
    def unix(cls, path: str, **options: Any) -> SymphonyClient:
        """Connect over a Unix socket (no token needed: the socket is 0600)."""
        return cls(UnixConnector(path), **options)

    @classmethod
    def ws(
        cls, url: str, *, token: str | None = None, origin: str | None = None, **options: Any
    ) -> SymphonyClient:
        """Connect over WebSocket (``ws://HOST:PORT/``); the token goes in the handshake."""
        return cls(WebSocketConnector(url, token=token, origin=origin), **options)

    @classmethod
    def connect_workspace(
        cls,
        workspace: str = ".",
        *,
        prefer: Literal["unix", "tcp", "ws"] | None = None,
        start: bool = False,
        start_timeout: float = 15.0,
        **options: Any,
    ) -> SymphonyClient:
        """Connect to the daemon of a workspace, found through its discovery file.

        ``prefer`` picks the address (default: the Unix socket if the daemon listens on one,
        else TCP, else WebSocket). With ``start``, a daemon is
        started in the background when none runs (as ``symphony attach`` does); otherwise
        entering the client raises ``DaemonNotFound``. The discovery file is read again on
        every (re)connect, so a restarted daemon is found with its new token.
        """
        connector = WorkspaceConnector(
            workspace, prefer=prefer, start=start, start_timeout=start_timeout
        )
        return cls(connector, **options)

    # -- lifetime --------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Connect (and handshake). Prefer ``async with``: ``aclose`` must then be awaited by
        the same task. Raises ``ConnectError``, ``DaemonNotFound``, or the daemon's
        ``RpcError`` for a refused ``initialize`` (``Unauthorized``...)."""
        if self._tg is not None or self._closing:
            raise RuntimeError("a SymphonyClient can be started only once")
        tg = asyncio.TaskGroup()
        await tg.__aenter__()
        self._tg = tg
        first: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._supervisor = tg.create_task(self._supervise(first), name="symphony-client")
        try:
            await first
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Close the connection and wait for every task of the client. Idempotent.

        A spawned (stdio) daemon is asked to ``shutdown`` and ``exit`` first, so it exits 0.
        """
        if self._closing:
            return
        self._closing = True
        tg = self._tg
        if tg is None:
            return
        channel = self._channel
        # (``timeout`` is a parameter, not left to the caller's ``asyncio.timeout``, because an
        # expired request must also be cancelled in the daemon: see ``_call``.)
        if channel is not None and self._ready and isinstance(channel, StdioChannel):
            try:
                await self.request("shutdown", timeout=5.0)
                await self.notify("exit")
            except (ClientError, RpcError) as exc:
                _log().warning("the daemon did not shut down cleanly", error=str(exc))
            channel.end_of_input()
        await self._stop(ConnectionLost("the client was closed"))
        if channel is not None:
            channel.close()
            await channel.wait_closed()
        if self._supervisor is not None:
            self._supervisor.cancel()
        try:
            await tg.__aexit__(None, None, None)
        finally:
            self._tg = None
            self._fail_pending(None, ConnectionLost("the client was closed"))

    @property
    def closed(self) -> bool:
        """Whether ``aclose`` was called."""
        return self._closing

    @property
    def connected(self) -> bool:
        """Whether requests can be sent right now (connected and, unless disabled,
        initialized)."""
        return self._ready

    @property
    def process(self) -> asyncio.subprocess.Process | None:
        """The spawned daemon process of a stdio client (None for socket clients); after
        ``aclose`` its ``returncode`` is the daemon's exit status."""
        return self._process

    # -- requests and notifications ------------------------------------------------------------

    async def request(
        self,
        method: str,
        params: Params = None,
        *,
        timeout: float | _Default | None = _DEFAULT,  # noqa: ASYNC109 - see below
    ) -> Any:
        """Send a request and return its result (the raw JSON value).

        Raises the daemon's error as the matching ``RpcError`` subclass (``RevisionConflict``
        with ``current_revision``, ``BufferNotFound``...), ``RequestTimeout`` after ``timeout``
        seconds (the request is then cancelled with ``$/cancelRequest``), ``ConnectionLost``
        if the connection ends first. Cancelling the awaiting task cancels the request too.
        """
        limit = self.timeout if isinstance(timeout, _Default) else timeout
        try:
            async with asyncio.timeout(limit) as scope:
                channel, generation = await self._connection()
                result = await self._call(channel, generation, method, params)
        except TimeoutError:
            if scope.expired():
                assert limit is not None
                raise RequestTimeout(method, limit) from None
            raise
        if method in _SUBSCRIBE_TOPICS or method in _BUFFER_SUBSCRIPTION:
            self._track_subscription(method, params, result)
        return result

    async def notify(self, method: str, params: Params = None) -> None:
        """Send a notification (no reply). Raises ``ConnectionLost`` if not connected."""
        channel, _ = await self._connection()
        await self._send(channel, Notification(method, params))

    async def call(
        self,
        spec: RequestSpec[Any, Any],
        params: BaseModel | Mapping[str, Any] | None = None,
        *,
        timeout: float | _Default | None = _DEFAULT,  # noqa: ASYNC109 - as request()
    ) -> Any:
        """A request described by a protocol spec (``symphony.protocol.BUFFER_OPEN``...):
        ``params`` may be the spec's pydantic model; the result is validated into the spec's
        result model (None for methods whose result is ``null``)."""
        from pydantic import BaseModel

        wire: Params
        if isinstance(params, BaseModel):
            wire = params.model_dump(by_alias=True, exclude_none=True)
        else:
            wire = dict(params) if params is not None else None
        result = await self.request(spec.method, wire, timeout=timeout)
        if spec.result is type(None):
            return None
        return spec.result.model_validate(result)

    def on_notification(
        self, method: str | None, callback: NotificationCallback
    ) -> Callable[[], None]:
        """Call ``callback(notification)`` for each notification named ``method`` (None: all).

        Callbacks run in the reader, in arrival order, and must not block (use
        ``notifications()`` to consume them from a task). An exception is logged and
        ignored. Returns a function that unregisters the callback.
        """
        self._callbacks.setdefault(method, []).append(callback)

        def remove() -> None:
            callbacks = self._callbacks.get(method, [])
            if callback in callbacks:
                callbacks.remove(callback)

        return remove

    def notifications(
        self, *methods: str, maxsize: int = DEFAULT_STREAM_SIZE
    ) -> NotificationStream:
        """A ``NotificationStream`` of the notifications named ``methods`` (none given: all)."""
        stream = NotificationStream(self, frozenset(methods) if methods else None, maxsize)
        if self._stopped is not None:
            stream._end()
        else:
            self._streams.add(stream)
        return stream

    def on_request(self, method: str, handler: RequestHandler) -> None:
        """Answer the daemon's requests named ``method`` with ``await handler(params)``.

        The handler's ``RpcError`` becomes an error reply; anything else it raises, -32603.
        Requests without a handler are answered -32601.
        """
        self._request_handlers[method] = handler

    def on_reconnect(self, callback: Callable[[SymphonyClient], Any]) -> None:
        """Call ``callback(client)`` after each successful reconnect (subscriptions are restored
        already; buffers of a daemon that restarted are gone: reopen what you need).
        A coroutine function is awaited in a task of the client."""
        self._reconnect_callbacks.append(callback)

    def on_disconnect(self, callback: Callable[[SymphonyClient, str], Any]) -> None:
        """Call ``callback(client, reason)`` when a connection ends, before any reconnect
        (requests sent on it have failed with ``ConnectionLost``; new ones wait for the
        reconnect). A coroutine function is awaited in a task of the client."""
        self._disconnect_callbacks.append(callback)

    # -- the LSP handshake -----------------------------------------------------------------------

    def initialize_params(self) -> dict[str, Any]:
        """The ``initialize`` params this client sends."""
        import os

        options = dict(self.initialization_options)
        token = self.token if self.token is not None else self.connector.token
        if token is not None:
            options["token"] = token
        client_info: dict[str, Any] = {"name": self.client_name}
        if self.client_version is not None:
            client_info["version"] = self.client_version
        params: dict[str, Any] = {
            "processId": os.getpid(),
            "clientInfo": client_info,
            "capabilities": {"general": {"positionEncodings": list(self.position_encodings)}},
        }
        if options:
            params["initializationOptions"] = options
        return params

    async def initialize(self) -> InitializeResult:
        """Perform the LSP handshake (``initialize``, then ``initialized``) yourself: only for a
        client made with ``initialize=False``. Returns the daemon's ``InitializeResult``."""
        channel, generation = await self._connection()
        await self._handshake(channel, generation)
        return self.initialize_result()

    def initialize_result(self) -> InitializeResult:
        """The daemon's ``initialize`` result, as the protocol's model."""
        from symphony.protocol import InitializeResult

        if self.initialize_result_raw is None:
            raise ConnectionLost("not initialized")
        return InitializeResult.model_validate(self.initialize_result_raw)

    async def _handshake(self, channel: Channel, generation: int) -> None:
        result = await self._call(channel, generation, "initialize", self.initialize_params())
        if not isinstance(result, dict):
            raise ConnectError(f"initialize answered {result!r}, not an InitializeResult")
        self.initialize_result_raw = result
        capabilities = result.get("capabilities")
        encoding = capabilities.get("positionEncoding") if isinstance(capabilities, dict) else None
        self.position_encoding = encoding if isinstance(encoding, str) else "utf-16"
        await self._send(channel, Notification("initialized", {}))

    async def _restore_subscriptions(self, channel: Channel, generation: int) -> None:
        if self._topics:
            result = await self._call(
                channel, generation, "symphony/subscribe", {"topics": list(self._topics)}
            )
            self._topics = list(result.get("topics", self._topics))
        for uri in list(self._buffer_subscriptions):
            try:
                await self._call(channel, generation, "symphony/buffer/subscribe", {"uri": uri})
            except BufferNotFound:
                # The daemon restarted and the buffer is not open there: nothing to follow.
                _log().warning("buffer subscription not restored: buffer not open", uri=uri)
                self._buffer_subscriptions.pop(uri, None)

    def _track_subscription(self, method: str, params: Params, result: Any) -> None:
        if method in _SUBSCRIBE_TOPICS:
            if isinstance(result, dict) and isinstance(result.get("topics"), list):
                self._topics = [t for t in result["topics"] if isinstance(t, str)]
            return
        uri = params.get("uri") if isinstance(params, dict) else None
        if not isinstance(uri, str):
            return
        if method == "symphony/buffer/subscribe":
            self._buffer_subscriptions[uri] = None
        else:
            self._buffer_subscriptions.pop(uri, None)

    # -- typed helpers for the symphony/* API --------------------------------------------------

    async def ping(self, data: Any = None, **kw: Any) -> PingResult:
        """``symphony/ping``: ``data`` comes back."""
        from symphony.protocol import PingResult

        params = {"data": data} if data is not None else {}
        return PingResult.model_validate(await self.request("symphony/ping", params, **kw))

    async def info(self, **kw: Any) -> InfoResult:
        """``symphony/info``: version, pid, uptime, connections, buffers, RSS; our client id."""
        from symphony.protocol import InfoResult

        return InfoResult.model_validate(await self.request("symphony/info", {}, **kw))

    async def open(
        self,
        path: str | None = None,
        *,
        uri: str | None = None,
        text: str | None = None,
        language_id: str | None = None,
        **kw: Any,
    ) -> BufferOpenResult:
        """``symphony/buffer/open``: a file (``path``, made absolute here, since the daemon's
        working directory is not ours), a URI, or ``text`` alone for an untitled buffer."""
        from symphony.protocol import BufferOpenResult

        params = open_params(path, uri=uri, text=text, language_id=language_id)
        result = await self.request("symphony/buffer/open", params, **kw)
        return BufferOpenResult.model_validate(result)

    async def get_text(
        self, uri: str, range: Range | Mapping[str, Any] | None = None, **kw: Any
    ) -> BufferGetTextResult:
        """``symphony/buffer/getText``: the text (or a range of it) and its revision."""
        from symphony.protocol import BufferGetTextResult

        result = await self.request("symphony/buffer/getText", get_text_params(uri, range), **kw)
        return BufferGetTextResult.model_validate(result)

    async def edit(
        self,
        uri: str,
        edits: Iterable[TextChange | Mapping[str, Any]],
        *,
        base_revision: int,
        **kw: Any,
    ) -> RevisionResult:
        """``symphony/buffer/edit``: apply ``edits`` (made against ``base_revision``, in this
        connection's position encoding) atomically. Raises ``RevisionConflict`` (see its
        ``current_revision``) if one overlaps a change made since."""
        from symphony.protocol import RevisionResult

        params = edit_params(uri, edits, base_revision=base_revision)
        result = await self.request("symphony/buffer/edit", params, **kw)
        return RevisionResult.model_validate(result)

    async def undo(self, uri: str, **kw: Any) -> RevisionResult:
        """``symphony/buffer/undo``."""
        from symphony.protocol import RevisionResult

        result = await self.request("symphony/buffer/undo", {"uri": uri}, **kw)
        return RevisionResult.model_validate(result)

    async def redo(self, uri: str, **kw: Any) -> RevisionResult:
        """``symphony/buffer/redo``."""
        from symphony.protocol import RevisionResult

        result = await self.request("symphony/buffer/redo", {"uri": uri}, **kw)
        return RevisionResult.model_validate(result)

    async def save(
        self, uri: str, path: str | None = None, *, overwrite: bool = False, **kw: Any
    ) -> BufferSaveResult:
        """``symphony/buffer/save``: write the buffer to its file (or ``path``), atomically.
        ``FileConflict`` if the file changed on disk since it was read, unless ``overwrite``."""
        from symphony.protocol import BufferSaveResult

        params = save_params(uri, path, overwrite=overwrite)
        result = await self.request("symphony/buffer/save", params, **kw)
        return BufferSaveResult.model_validate(result)

    async def close_buffer(self, uri: str, *, discard: bool = False, **kw: Any) -> None:
        """``symphony/buffer/close``; unsaved changes nobody else holds need ``discard``.
        (Named so that it cannot be mistaken for closing the client, which is ``aclose``.)"""
        await self.request("symphony/buffer/close", close_params(uri, discard=discard), **kw)

    async def list_buffers(self, **kw: Any) -> BufferListResult:
        """``symphony/buffer/list``: every open buffer."""
        from symphony.protocol import BufferListResult

        result = await self.request("symphony/buffer/list", {}, **kw)
        return BufferListResult.model_validate(result)

    async def subscribe_buffer(self, uri: str, **kw: Any) -> None:
        """``symphony/buffer/subscribe``: receive ``symphony/buffer/didChange`` for ``uri``
        (restored after a reconnect)."""
        await self.request("symphony/buffer/subscribe", {"uri": uri}, **kw)

    async def unsubscribe_buffer(self, uri: str, **kw: Any) -> None:
        """``symphony/buffer/unsubscribe``."""
        await self.request("symphony/buffer/unsubscribe", {"uri": uri}, **kw)

    async def subscribe(self, *topics: str, **kw: Any) -> SubscribeResult:
        """``symphony/subscribe``: receive ``symphony/event`` for topics matching these patterns
        (``*`` one segment, ``**`` any); restored after a reconnect."""
        from symphony.protocol import SubscribeResult

        result = await self.request("symphony/subscribe", {"topics": list(topics)}, **kw)
        return SubscribeResult.model_validate(result)

    async def unsubscribe(self, *topics: str, **kw: Any) -> SubscribeResult:
        """``symphony/unsubscribe``."""
        from symphony.protocol import SubscribeResult

        result = await self.request("symphony/unsubscribe", {"topics": list(topics)}, **kw)
        return SubscribeResult.model_validate(result)

    # -- internals: connection state -------------------------------------------------------------

    async def _connection(self) -> tuple[Channel, int]:
        """The ready channel and its generation; waits while a reconnect is under way."""
        channel = self._channel
        if self._ready and channel is not None:
            return channel, self._generation
        if self._tg is None and self._stopped is None:
            raise RuntimeError("the client is not started: use `async with client:`")
        async with self._state:
            await self._state.wait_for(lambda: self._ready or self._stopped is not None)
            if self._stopped is not None:
                raise ConnectionLost(str(self._stopped)) from self._stopped
            assert self._channel is not None
            return self._channel, self._generation

    async def _set_ready(self, ready: bool) -> None:
        async with self._state:
            self._ready = ready
            self._state.notify_all()

    async def _stop(self, reason: ClientError) -> None:
        """The client will not (re)connect any more: wake everyone who waits."""
        async with self._state:
            self._ready = False
            if self._stopped is None:
                self._stopped = reason
            self._state.notify_all()
        for stream in list(self._streams):
            stream._end()
        self._streams.clear()

    def _fail_pending(self, generation: int | None, error: ClientError) -> None:
        """Fail the requests sent on connection ``generation`` (None: all) with ``error``."""
        for pending in list(self._pending.values()):
            if (generation is None or pending.generation == generation) and (
                not pending.future.done()
            ):
                pending.future.set_exception(type(error)(f"{pending.method}: {error}"))

    # -- internals: the supervisor ---------------------------------------------------------------

    async def _supervise(self, first: asyncio.Future[None]) -> None:
        """Connect, handshake, serve until the connection ends; reconnect per ``reconnect``.
        Never raises: whatever ends it is recorded with ``_stop``."""
        try:
            await self._supervise_loop(first)
        except asyncio.CancelledError:
            if not first.done():
                first.set_exception(ConnectionLost("the client was closed while connecting"))
            await self._stop(ConnectionLost("the client was closed"))
            raise
        except Exception as exc:  # a bug: never let it cancel the task that owns the client
            _log().exception("client supervisor failed")
            error = ConnectionLost(f"the client failed: {type(exc).__name__}: {exc}")
            if not first.done():
                first.set_exception(error)
            await self._stop(error)

    async def _supervise_loop(self, first: asyncio.Future[None]) -> None:
        loop = asyncio.get_running_loop()
        policy = self.reconnect if self.connector.reconnectable else None
        attempt = 0
        down_since: float | None = None
        last_error: BaseException | None = None
        while not self._closing:
            if down_since is not None:
                # Reconnecting: give up per the policy, else wait the jittered delay.
                assert policy is not None
                waited = loop.time() - down_since
                if (policy.max_attempts is not None and attempt >= policy.max_attempts) or (
                    policy.give_up_after is not None and waited >= policy.give_up_after
                ):
                    await self._stop(
                        ConnectionLost(
                            f"gave up reconnecting to {self.connector.describe()} after "
                            f"{attempt} attempts in {waited:.1f} s: {last_error}"
                        )
                    )
                    return
                await asyncio.sleep(policy.delay(attempt))
                attempt += 1
            try:
                channel = await self.connector.open()
            except ClientError as exc:
                if not first.done():
                    first.set_exception(exc)
                    await self._stop(ConnectionLost(str(exc)))
                    return
                last_error = exc
                continue
            self._generation += 1
            generation = self._live = self._generation
            self._channel = channel
            if isinstance(channel, StdioChannel):
                self._process = channel.process
            assert self._tg is not None
            reader = self._tg.create_task(self._read(channel, generation), name="symphony-reader")
            try:
                if self._auto_initialize:
                    await self._handshake(channel, generation)
                    if first.done():
                        await self._restore_subscriptions(channel, generation)
            except (ClientError, RpcError) as exc:
                error: ClientError | RpcError = exc
                channel.close()
                await channel.wait_closed()
                await reader
                self._channel = None
                if isinstance(channel, StdioChannel) and channel.process.returncode is not None:
                    # A spawned daemon that died: its exit status says more than a closed pipe.
                    error = ConnectError(
                        f"the daemon ({self.connector.describe()}) exited with status "
                        f"{channel.process.returncode} before answering initialize"
                    )
                if not first.done():
                    first.set_exception(error)
                    await self._stop(ConnectionLost(f"handshake failed: {error}"))
                    return
                if isinstance(error, RpcError) or policy is None:
                    # The daemon refused us (Unauthorized...): retrying will not help.
                    await self._stop(
                        ConnectionLost(f"reconnected, but the handshake failed: {error}")
                    )
                    return
                last_error = error
                continue
            attempt = 0
            down_since = None
            if self._live == generation:
                await self._set_ready(True)
            if not first.done():
                first.set_result(None)
            else:
                self.reconnects += 1
                _log().info("reconnected", to=self.connector.describe(), count=self.reconnects)
                self._run_callbacks(self._reconnect_callbacks, "on_reconnect")
            reason = await reader
            await self._set_ready(False)
            self._channel = None
            channel.close()
            await channel.wait_closed()
            if self.closed:
                return
            self._run_callbacks(self._disconnect_callbacks, "on_disconnect", reason)
            if policy is None:
                await self._stop(
                    ConnectionLost(f"the connection to {self.connector.describe()} ended: {reason}")
                )
                return
            _log().warning(
                "connection lost, reconnecting", to=self.connector.describe(), reason=reason
            )
            down_since = loop.time()
            last_error = ConnectionLost(reason)

    def _run_callbacks(
        self, callbacks: Sequence[Callable[..., Any]], what: str, *args: Any
    ) -> None:
        for callback in callbacks:
            try:
                outcome = callback(self, *args)
                if asyncio.iscoroutine(outcome):
                    assert self._tg is not None
                    self._tg.create_task(self._quietly(outcome, f"{what} callback"))
            except Exception:
                _log().exception(f"{what} callback failed")

    @staticmethod
    async def _quietly(work: Awaitable[Any], what: str) -> None:
        try:
            await work
        except Exception:
            _log().exception(f"{what} failed")

    # -- internals: sending and receiving ----------------------------------------------------------

    async def _call(self, channel: Channel, generation: int, method: str, params: Params) -> Any:
        """One request on one connection; its reply or error. Cancelling it sends
        ``$/cancelRequest`` (the daemon then answers -32800, which nobody waits for)."""
        if self._live != generation:
            raise ConnectionLost(f"{method}: the connection was lost")
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        # From here the reader of ``generation`` owns the outcome: a reply, or its end.
        self._pending[request_id] = _Pending(future, method, generation)
        try:
            await self._send(channel, Request(request_id, method, params))
            return await future
        except asyncio.CancelledError:
            # Cancelling the task cancelled the future it awaited: a future that holds a reply
            # was answered; one that is cancelled (or still pending) was not.
            answered = future.done() and not future.cancelled()
            if not answered and self._live == generation and self._tg is not None:
                note = Notification("$/cancelRequest", {"id": request_id})
                with contextlib.suppress(RuntimeError):  # the task group is already closing
                    self._tg.create_task(
                        self._quietly(self._send(channel, note), "$/cancelRequest")
                    )
            raise
        finally:
            del self._pending[request_id]

    async def _send(self, channel: Channel, message: Message) -> None:
        codec = self.codec
        body = encode_message(message, codec)
        if len(body) > self.max_message_size:
            raise MessageTooLarge(size=len(body), limit=self.max_message_size)
        if channel.framed:
            await channel.send(frame(body, codec))
        else:
            await channel.send(body, text=codec is Codec.JSON)

    async def _read(self, channel: Channel, generation: int) -> str:
        """Read and dispatch until the connection ends; returns why it ended. When it ends,
        every request sent on this connection fails with ``ConnectionLost`` at once."""
        reason = "the client was closed"
        try:
            if channel.framed:
                reason = await self._read_stream(channel)
            else:
                while (data := await channel.receive()) is not None:
                    codec = Codec.JSON if isinstance(data, str) else Codec.MSGPACK
                    self._dispatch(decode_message(data, codec), codec, channel)
                reason = "the daemon closed the connection"
        except Exception as exc:  # a bug in dispatching: end this connection, not the client
            _log().exception("client reader failed")
            reason = f"the reader failed: {type(exc).__name__}: {exc}"
        finally:
            if self._live == generation:
                self._live = None
                self._ready = False  # no new request may pick this connection
            self._fail_pending(generation, ConnectionLost(f"connection lost: {reason}"))
        return reason

    async def _read_stream(self, channel: Channel) -> str:
        stream = StreamConnection(max_message_size=self.max_message_size)
        dispatch = self._dispatch
        receive = channel.receive
        while True:
            try:
                event = stream.next_message()
            except RemoteProtocolError as exc:
                return f"the daemon broke the framing: {exc}"
            if event is NEED_DATA:
                data = await receive()
                if data is None:
                    stream.receive_data(b"")
                else:
                    stream.receive_data(data if isinstance(data, bytes) else data.encode())
                continue
            if event is CLOSED:
                return "the daemon closed the connection"
            dispatch(event.message, event.codec, channel)  # type: ignore[union-attr]

    def _dispatch(self, message: Incoming, codec: Codec, channel: Channel) -> None:
        kind = type(message)
        if kind is Response or kind is ErrorResponse:
            reply = cast(Response | ErrorResponse, message)
            pending = self._pending.get(reply.id) if reply.id is not None else None
            if pending is None:
                if isinstance(reply, ErrorResponse) and reply.id is None:
                    _log().warning(
                        "the daemon could not read a message of ours",
                        code=reply.code,
                        error=reply.message,
                    )
                return  # a late reply to a cancelled or timed-out request
            if pending.future.done():
                return
            if kind is Response:
                pending.future.set_result(cast(Response, reply).result)
            else:
                pending.future.set_exception(cast(ErrorResponse, reply).exception())
        elif kind is Notification:
            self._deliver(cast(Notification, message))
        elif kind is Request:
            self._answer(cast(Request, message), codec, channel)
        elif kind is Batch:
            for item in cast(Batch, message).items:
                self._dispatch(item, codec, channel)
        else:
            invalid = cast(Invalid, message)
            _log().warning("invalid message from the daemon", error=invalid.error.message)

    def _deliver(self, note: Notification) -> None:
        for key in (note.method, None):
            for callback in self._callbacks.get(key, ()):
                try:
                    callback(note)
                except Exception:
                    _log().exception("notification callback failed", method=note.method)
        for stream in self._streams:
            stream._offer(note)

    def _answer(self, request: Request, codec: Codec, channel: Channel) -> None:
        """The daemon asks us something: answer it in a task (the reader never awaits)."""
        assert self._tg is not None
        self._tg.create_task(self._quietly(self._respond(request, channel), "reply to the daemon"))

    async def _respond(self, request: Request, channel: Channel) -> None:
        handler = self._request_handlers.get(request.method)
        reply: Response | ErrorResponse
        if handler is None:
            error: RpcError = MethodNotFound(f"the client does not handle {request.method}")
            reply = ErrorResponse.from_exception(request.id, error)
        else:
            try:
                reply = Response(request.id, await handler(request.params))
            except RpcError as exc:
                reply = ErrorResponse.from_exception(request.id, exc)
            except Exception as exc:
                _log().exception("request handler failed", method=request.method)
                reply = ErrorResponse.from_exception(
                    request.id, InternalError(f"{type(exc).__name__}: {exc}")
                )
        await self._send(channel, reply)


# -- params of the symphony/buffer/* helpers ------------------------------------------------------
# Plain functions, so that a test can hold each against the protocol's params model.


def open_params(
    path: str | None = None,
    *,
    uri: str | None = None,
    text: str | None = None,
    language_id: str | None = None,
) -> dict[str, Any]:
    """``symphony/buffer/open`` params (``path`` made absolute: the daemon's working directory
    is not ours)."""
    params: dict[str, Any] = {}
    if path is not None:
        params["path"] = _absolute(path)
    if uri is not None:
        params["uri"] = uri
    if text is not None:
        params["text"] = text
    if language_id is not None:
        params["languageId"] = language_id
    return params


def get_text_params(uri: str, range: Any = None) -> dict[str, Any]:
    """``symphony/buffer/getText`` params; ``range`` a ``Range`` model or its wire dict."""
    params: dict[str, Any] = {"uri": uri}
    if range is not None:
        params["range"] = _wire(range)
    return params


def edit_params(uri: str, edits: Iterable[Any], *, base_revision: int) -> dict[str, Any]:
    """``symphony/buffer/edit`` params; each edit a ``TextChange`` model or its wire dict."""
    return {"uri": uri, "baseRevision": base_revision, "edits": [_wire(e) for e in edits]}


def save_params(uri: str, path: str | None = None, *, overwrite: bool = False) -> dict[str, Any]:
    """``symphony/buffer/save`` params (flags sent only when set: the defaults are the
    daemon's)."""
    params: dict[str, Any] = {"uri": uri}
    if path is not None:
        params["path"] = _absolute(path)
    if overwrite:
        params["overwrite"] = True
    return params


def close_params(uri: str, *, discard: bool = False) -> dict[str, Any]:
    """``symphony/buffer/close`` params."""
    params: dict[str, Any] = {"uri": uri}
    if discard:
        params["discard"] = True
    return params


def _wire(value: Any) -> Any:
    """A pydantic model's wire form (camelCase, no nulls); anything else as it is."""
    dump = getattr(value, "model_dump", None)
    if dump is not None:
        return dump(by_alias=True, exclude_none=True)
    return dict(value) if isinstance(value, Mapping) else value


def _absolute(path: str) -> str:
    """An absolute path: the daemon's working directory is not ours."""
    import os

    return os.path.abspath(os.path.expanduser(path))
