"""One client connection: reading, dispatching, answering, writing. httpcore's role around h11.

Theory of operation
-------------------
``Connection.run`` owns one ``asyncio.TaskGroup`` holding everything the connection does:

- the **reader** task loops: get bytes from the transport, feed the sans-IO ``StreamConnection``
  (or, on a WebSocket, decode one frame), and dispatch each message *in arrival order*. The
  lifecycle gate (``Lifecycle.receive``) and params validation happen right there, so a request
  before ``initialize`` or with bad params is answered without a task. A route declared
  ``inline`` (its handler never awaits: ping, and every operation on the synchronous editor
  core) runs to completion right there too: no task, no extra loop iteration, and requests
  apply in exactly the order they were sent. Any other request gets its own **handler task**,
  so a slow handler never holds up the next message. A notification's handler is awaited in
  the reader (``textDocument/didChange`` must apply in order; such handlers are quick by
  contract).
- a **handler task** runs ``handler(ctx, params)`` and turns its outcome into a response:
  a result, the ``RpcError`` it raised, -32800 if ``$/cancelRequest`` cancelled it, or -32603
  with a log id for any other exception (logged with its traceback under the same id).
  Exceptions never escape a handler: a failing handler never ends its connection, and a
  connection never ends the daemon.
- the **writer** task drains the connection's outbox to the transport, joining queued frames into
  one write when several are waiting (pipelined requests cost one syscall per batch). A reply
  produced when nothing else is in flight and no more input is buffered (a sequential client)
  skips the outbox and is written at once: one loop iteration less per round trip.

Backpressure and slow readers
-----------------------------
Nothing is buffered without bound. In-flight requests are capped (``Limits.max_inflight``): past
that, the reader stops reading and the kernel pushes back on the client. Replies are never
dropped; if what is queued for a client (our outbox plus the transport's buffer) would exceed
``Limits.max_write_buffer``, the client is not reading and is disconnected. Droppable messages
(events, ``didChange`` broadcasts) get a smaller budget (``event_buffer`` bytes,
``max_queued_events`` messages); beyond it they are dropped and counted, and the client gets
``symphony/eventsDropped {count}`` before the next one that fits (or as soon as its outbox
drains).

Closing
-------
A connection ends when the peer closes its end (EOF), sends ``exit``, breaks the framing
(answered with -32700 first), reads too slowly, does not authenticate in time, or the daemon
stops. Requests still running get a grace period (``Limits.shutdown_grace``; none after
``exit``, for a slow reader, or once writing to the peer failed; after EOF they get it, since a
half-closed peer may still read its answers), queued replies are flushed, then the transport is
closed (aborted if the peer will not take what is left).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Final

from pydantic import BaseModel

from symphony.protocol import (
    CLOSED,
    DEFAULT_MAX_MESSAGE_SIZE,
    NEED_DATA,
    Batch,
    Codec,
    ErrorResponse,
    Id,
    Incoming,
    InternalError,
    Invalid,
    InvalidParams,
    InvalidRequest,
    Kind,
    LocalProtocolError,
    Message,
    MessageTooLarge,
    MethodNotFound,
    Notification,
    NotificationSpec,
    ParseError,
    Received,
    RemoteProtocolError,
    Request,
    RequestCancelled,
    RequestSpec,
    Response,
    RpcError,
    State,
    StreamConnection,
    Verdict,
    decode_message,
    encode_message,
    frame,
)
from symphony.server._context import RequestContext
from symphony.server._events import Event, SharedNotification, Subscription
from symphony.server._exceptions import RouteError, TransportClosed
from symphony.server._session import Session

if TYPE_CHECKING:
    from symphony.server._daemon import Daemon
    from symphony.server._routes import Route
    from symphony.server._transports import Transport

__all__ = ["Connection", "Limits"]

_EVENTS_DROPPED: Final = "symphony/eventsDropped"


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-connection bounds. Every buffer a client can fill is bounded by one of these."""

    #: Largest message accepted (bytes of body). Larger ones are refused with -32904.
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    #: Replies queued for a client that does not read, before it is disconnected.
    max_write_buffer: int = 2 * DEFAULT_MAX_MESSAGE_SIZE
    #: Bytes queued for a client above which droppable messages (events) are dropped.
    event_buffer: int = 4 * 1024 * 1024
    #: Droppable messages queued for a client above which more are dropped.
    max_queued_events: int = 1024
    #: Requests running at once for one client; beyond it the reader waits.
    max_inflight: int = 2048
    #: Seconds that running requests get to finish when the connection or the daemon closes.
    shutdown_grace: float = 5.0
    #: Seconds a client on a transport that needs the token (TCP, WebSocket) has to complete
    #: ``initialize`` with it; after that it is disconnected (no idle unauthenticated sockets).
    auth_timeout: float = 30.0


class Connection:
    """One client, from accept to close: its session, its tasks, its outbox.

    Invariants:
      - ``_queued`` is the byte total of ``_outbox``; ``_queued_events`` the number of
        droppable items in it.
      - every request id in ``_inflight`` has exactly one running task, and holds one
        ``_slots`` permit until that task is done.
      - after ``_writes_closed`` nothing is added to the outbox.
    """

    def __init__(self, daemon: Daemon, transport: Transport, *, client_id: str) -> None:
        self.daemon = daemon
        self.transport = transport
        self.session = Session(client_id, transport.kind, authenticated=transport.trusted)
        self.log = daemon.log.bind(client_id=client_id, transport=transport.kind)
        self.limits: Limits = daemon.limits
        self.opened_at = time.monotonic()
        self.close_reason: str | None = None
        self._routes = daemon.routes
        self._framed = transport.framed
        self._outbox: deque[tuple[bytes, bool, bool]] = deque()
        self._queued = 0
        self._queued_events = 0
        self._dropped = 0
        self._writes_closed = False
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._done = asyncio.Event()
        self._grace = 0.0
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._inflight: dict[Id, asyncio.Task[Any]] = {}
        self._cancelled: set[Id] = set()
        self._slots = asyncio.Semaphore(self.limits.max_inflight)
        self._subscription: Subscription | None = None
        self._client_requests: dict[Id, asyncio.Future[Any]] = {}
        self._next_client_request = 0
        self._stream: StreamConnection | None = None
        self._hurry: asyncio.Future[None] | None = None

    # -- the connection's life -------------------------------------------------------------------

    async def run(self) -> None:
        """Serve this client until the connection ends. Never raises (except cancellation)."""
        self.daemon._connection_opened(self)
        self.log.info("connection opened", peer=self.transport.peer)
        flushed = False
        deadline = None
        if not self.session.authenticated:
            deadline = asyncio.get_running_loop().call_later(
                self.limits.auth_timeout, self._auth_deadline
            )
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                writer = tg.create_task(self._write_loop())
                reader = tg.create_task(self._read_loop())
                await self._done.wait()
                reader.cancel()
                await self._settle_requests()
                flushed = await self._flush()
                writer.cancel()
        except Exception:
            # Only a bug can get here (every task catches its own errors); log it and close.
            self.log.exception("connection failed")
        finally:
            if deadline is not None:
                deadline.cancel()
            self._tg = None
            self._writes_closed = True
            if self._subscription is not None:
                self._subscription.close()
            for future in self._client_requests.values():
                if not future.done():
                    future.set_exception(TransportClosed("the connection closed"))
            if flushed:
                self.transport.close()
            else:
                self.transport.abort()
            try:
                # close() flushes what the transport still holds; a peer that does not read
                # would keep the socket open forever, so it gets a deadline, then an abort.
                async with asyncio.timeout(max(self._grace, 1.0)):
                    await self.transport.wait_closed()
            except Exception:
                self.transport.abort()
            self.log.info("connection closed", reason=self.close_reason)
            self.daemon._connection_closed(self)

    def _auth_deadline(self) -> None:
        if not self.session.authenticated:
            self.log.warning(
                "no authenticated initialize in time", seconds=self.limits.auth_timeout
            )
            self._finish("not authenticated in time", 0.0)

    def close(self, reason: str = "closed by the daemon", *, grace: float | None = None) -> None:
        """End the connection: running requests get ``grace`` seconds, replies are flushed."""
        self._finish(reason, self.limits.shutdown_grace if grace is None else grace)

    @property
    def closing(self) -> bool:
        return self._done.is_set()

    def _finish(self, reason: str, grace: float) -> None:
        if self.close_reason is None:
            self.close_reason = reason
            self._grace = grace
        elif grace < self._grace:
            # Closing again, in more of a hurry (a second SIGINT, the peer went away).
            self._grace = grace
            if self._hurry is not None and not self._hurry.done():
                self._hurry.set_result(None)
        self._done.set()

    async def _settle_requests(self) -> None:
        """Give running requests the grace period (cut short by a hurried ``_finish``), then
        cancel what is left."""
        pending = set(self._tasks)
        if pending and self._grace > 0:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self._grace
            self._hurry = hurry = loop.create_future()
            while pending and not hurry.done():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                done, _ = await asyncio.wait(
                    [*pending, hurry], timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
                pending -= done
        for task in pending:
            task.cancel()

    async def _flush(self) -> bool:
        """Let the writer empty the outbox (bounded wait); True if it did."""
        if self._writes_closed:
            return False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(self._grace, 1.0)):
                while self._outbox:
                    self._idle.clear()
                    await self._idle.wait()
        self._writes_closed = True
        return not self._outbox

    # -- reading -----------------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        try:
            if self._framed:
                await self._read_stream()
            else:
                await self._read_frames()
        except Exception:
            self.log.exception("reader failed")
            self._finish("internal error in the reader", 0.0)
        finally:
            # However the reader stops, the connection must not wait for it forever.
            if not self._done.is_set():
                self._finish("the reader stopped", self.limits.shutdown_grace)

    async def _read_stream(self) -> None:
        stream = self._stream = StreamConnection(max_message_size=self.limits.max_message_size)
        receive = self.transport.receive
        dispatch = self._dispatch
        while True:
            try:
                event = stream.next_message()
            except RemoteProtocolError as exc:
                # The stream cannot be resynchronised: answer once, then close (h11's rule).
                self.log.warning("framing error, closing the connection", error=str(exc))
                self._send(ErrorResponse.from_exception(None, ParseError(str(exc))), Codec.JSON)
                self._finish(f"framing error: {exc}", self.limits.shutdown_grace)
                return
            if event is NEED_DATA:
                data = await receive()
                stream.receive_data(data if isinstance(data, bytes) else b"")
                continue
            if event is CLOSED:
                self._finish("peer closed the connection", self.limits.shutdown_grace)
                return
            assert isinstance(event, Received)
            message = event.message
            if type(message) is Request:
                # The common case without a coroutine per message (inline routes never await).
                needs_task = self._request_now(message, event.codec)
                if needs_task is not None:
                    await self._spawn(message, *needs_task, event.codec)
            else:
                await dispatch(message, event.codec)
            if self._done.is_set():
                return

    async def _read_frames(self) -> None:
        receive = self.transport.receive
        limit = self.limits.max_message_size
        while True:
            data = await receive()
            if data is None:
                self._finish("peer closed the connection", self.limits.shutdown_grace)
                return
            codec = Codec.JSON if isinstance(data, str) else Codec.MSGPACK
            if len(data) > limit:
                self._send(Invalid(MessageTooLarge(size=len(data), limit=limit)).reply(), codec)
                continue
            await self._dispatch(decode_message(data, codec), codec)
            if self._done.is_set():
                return

    async def _dispatch(self, message: Incoming, codec: Codec) -> None:
        if isinstance(message, Request):
            await self._on_request(message, codec)
        elif isinstance(message, Notification):
            await self._on_notification(message)
        elif isinstance(message, Batch):
            await self._on_batch(message, codec)
        elif isinstance(message, Invalid):
            self._send(message.reply(), codec)
        else:
            self._on_reply(message)

    # -- requests ---------------------------------------------------------------------------------

    def _prepare(
        self, request: Request, codec: Codec
    ) -> tuple[Route, BaseModel] | ErrorResponse | None:
        """The lifecycle gate, routing and params validation; in arrival order, in the reader."""
        lifecycle = self.session.lifecycle
        rule = lifecycle.receive(Kind.REQUEST, request.method)
        if rule.verdict is not Verdict.DISPATCH:
            if rule.verdict is Verdict.REJECT:
                return ErrorResponse.from_exception(request.id, rule.error())
            return None
        if request.method == "initialize":
            # What the daemon sends unprompted (events, notifications) uses the client's codec.
            self.session.codec = codec
        if request.id in self._inflight:
            return ErrorResponse.from_exception(
                request.id, InvalidRequest(f"request id {request.id!r} is already in flight")
            )
        route = self._routes.get(request.method)
        if route is None or route.kind is not Kind.REQUEST:
            self._initialize_failed(request)
            return ErrorResponse.from_exception(
                request.id, MethodNotFound(f"method not found: {request.method}")
            )
        try:
            params = route.parse_params(request.params)
        except InvalidParams as exc:
            self._initialize_failed(request)
            return ErrorResponse.from_exception(request.id, exc)
        return route, params

    def _initialize_failed(self, request: Request) -> None:
        if request.method == "initialize":
            self.session.lifecycle.initialize_finished(False)

    async def _on_request(self, request: Request, codec: Codec) -> None:
        needs_task = self._request_now(request, codec)
        if needs_task is not None:
            await self._spawn(request, *needs_task, codec)

    def _request_now(self, request: Request, codec: Codec) -> tuple[Route, BaseModel] | None:
        """Everything about a request that happens right away, in the reader: the lifecycle
        gate, routing, validation, and the whole of an inline route. Returns the route and
        params when the request needs a task of its own."""
        prepared = self._prepare(request, codec)
        if prepared is None:
            return None
        if isinstance(prepared, ErrorResponse):
            self._send(prepared, codec)
            return None
        route, params = prepared
        if not route.inline:
            return prepared
        reply = self._execute_inline(request, route, params)
        # Write now if nothing else will be written this turn (a sequential client);
        # otherwise the writer joins this reply with the others into one write.
        immediate = not self._inflight and not self._more_input()
        self._send(reply, codec, immediate=immediate)
        return None

    async def _spawn(self, request: Request, route: Route, params: BaseModel, codec: Codec) -> None:
        await self._slots.acquire()  # past max_inflight, the reader waits here
        assert self._tg is not None
        task = self._tg.create_task(self._respond(request, route, params, codec))
        self._track(task, request, codec, standalone=True)

    def _more_input(self) -> bool:
        """Whether more received bytes wait to be parsed (pipelined requests)."""
        return self._stream is not None and self._stream.buffered > 0

    def _track(
        self, task: asyncio.Task[Any], request: Request, codec: Codec, *, standalone: bool
    ) -> None:
        self._inflight[request.id] = task
        self._tasks.add(task)
        task.add_done_callback(partial(self._request_done, request, codec, standalone))

    def _request_done(
        self, request: Request, codec: Codec, standalone: bool, task: asyncio.Task[Any]
    ) -> None:
        self._tasks.discard(task)
        if self._inflight.get(request.id) is task:
            del self._inflight[request.id]
        cancelled_by_client = request.id in self._cancelled
        self._cancelled.discard(request.id)
        self._slots.release()
        if task.cancelled() and cancelled_by_client and standalone:
            # Cancelled before its handler ever ran: the task had no chance to answer.
            self._send(self._cancelled_reply(request), codec)

    def _cancelled_reply(self, request: Request) -> ErrorResponse:
        return ErrorResponse.from_exception(
            request.id, RequestCancelled(f"request {request.id!r} ({request.method}) was cancelled")
        )

    async def _respond(
        self, request: Request, route: Route, params: BaseModel, codec: Codec
    ) -> None:
        reply = await self._execute(request, route, params)
        # The only request in flight: nothing else will be written this turn, so write now
        # instead of waking the writer (one loop iteration less per sequential round trip).
        # With several in flight, replies wait for the writer, which joins them into one write.
        self._send(reply, codec, immediate=len(self._inflight) <= 1)

    async def _execute(
        self, request: Request, route: Route, params: BaseModel
    ) -> Response | ErrorResponse:
        """Run one handler and turn whatever happens into the reply. Raises only cancellation
        that the client did not ask for (the connection is closing)."""
        started = time.perf_counter() if self.session.trace != "off" else 0.0
        reply: Response | ErrorResponse
        try:
            result = await route.handler(RequestContext(self, request.method, request.id), params)
            reply = self._ok(request, route, result)
        except RpcError as exc:
            reply = ErrorResponse.from_exception(request.id, exc)
        except asyncio.CancelledError:
            if request.id not in self._cancelled:
                raise
            reply = self._cancelled_reply(request)
        except Exception as exc:
            reply = self._internal_error(request, exc)
        return self._finish_reply(request, reply, started)

    def _execute_inline(
        self, request: Request, route: Route, params: BaseModel
    ) -> Response | ErrorResponse:
        """Run an ``inline`` route's handler to completion right here, in the reader: no task,
        no loop iteration. Its coroutine must finish without suspending; one that awaits is
        stopped at that await and answered -32603 (it is a routing bug, logged as such)."""
        started = time.perf_counter() if self.session.trace != "off" else 0.0
        reply: Response | ErrorResponse
        coro = route.handler(RequestContext(self, request.method, request.id), params)
        try:
            coro.send(None)
        except StopIteration as done:
            reply = self._ok(request, route, done.value)
        except RpcError as exc:
            reply = ErrorResponse.from_exception(request.id, exc)
        except (Exception, asyncio.CancelledError) as exc:
            # Nothing can cancel code that runs without awaiting: a CancelledError here was
            # raised by the handler itself, a bug like any other.
            reply = self._internal_error(request, exc)
        else:
            coro.close()
            reply = self._internal_error(
                request,
                RouteError(
                    f"{route.method} is routed inline=True but its handler awaited; "
                    "route it without inline, or remove the await"
                ),
            )
        return self._finish_reply(request, reply, started)

    def _ok(self, request: Request, route: Route, result: Any) -> Response | ErrorResponse:
        try:
            return Response(request.id, route.dump_result(result))
        except Exception as exc:
            return self._internal_error(request, exc)

    def _finish_reply(
        self, request: Request, reply: Response | ErrorResponse, started: float
    ) -> Response | ErrorResponse:
        if request.method == "initialize":
            self.session.lifecycle.initialize_finished(type(reply) is Response)
        if started:
            self._trace(request, reply, time.perf_counter() - started)
        return reply

    def _internal_error(self, request: Request | Notification, exc: BaseException) -> ErrorResponse:
        log_id = secrets.token_hex(6)
        self.log.error(
            "handler failed",
            method=request.method,
            request_id=getattr(request, "id", None),
            log_id=log_id,
            exc_info=exc,
        )
        error = InternalError(
            f"internal error in {request.method} (log id {log_id})", log_id=log_id
        )
        return ErrorResponse.from_exception(getattr(request, "id", None), error)

    def cancel(self, request_id: Id) -> bool:
        """Cancel a request in flight (``$/cancelRequest``); it answers -32800. False if none."""
        task = self._inflight.get(request_id)
        if task is None or task.done():
            return False
        self._cancelled.add(request_id)
        task.cancel()
        return True

    # -- notifications and batches ----------------------------------------------------------------

    async def _on_notification(self, note: Notification) -> None:
        rule = self.session.lifecycle.receive(Kind.NOTIFICATION, note.method)
        if rule.verdict is not Verdict.DISPATCH:
            self.log.debug("notification dropped", method=note.method, state=self.session.state)
            return
        try:
            route = self._routes.get(note.method)
            if route is None or route.kind is not Kind.NOTIFICATION:
                # LSP: notifications may be ignored; "$/" ones are optional by definition.
                self.log.debug("unhandled notification", method=note.method)
                return
            try:
                params = route.parse_params(note.params)
            except InvalidParams as exc:
                self.log.warning(
                    "notification with invalid params ignored",
                    method=note.method,
                    error=exc.message,
                )
                return
            try:
                await route.handler(RequestContext(self, note.method, None), params)
            except Exception as exc:
                self._internal_error(note, exc)
            except asyncio.CancelledError as exc:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # the reader itself is being cancelled: the connection is closing
                self._internal_error(note, exc)  # raised by the handler: a bug, not a close
        finally:
            if self.session.lifecycle.state is State.EXITED:
                # exit: stop reading; nothing still running is awaited by the client.
                self._finish("exit", 0.0)

    async def _on_batch(self, batch: Batch, codec: Codec) -> None:
        replies: list[Message] = []
        work: list[tuple[Request, Route, BaseModel]] = []
        for item in batch.items:
            if isinstance(item, Request):
                prepared = self._prepare(item, codec)
                if isinstance(prepared, ErrorResponse):
                    replies.append(prepared)
                elif prepared is not None:
                    route, params = prepared
                    if route.inline:
                        replies.append(self._execute_inline(item, route, params))
                    else:
                        work.append((item, route, params))
            elif isinstance(item, Notification):
                await self._on_notification(item)
            elif isinstance(item, Invalid):
                replies.append(item.reply())
            else:
                self._on_reply(item)
        if not work:
            if replies:  # an all-notification batch gets no reply at all (JSON-RPC 2.0 §6)
                self._send(replies, codec)
            return
        assert self._tg is not None
        task = self._tg.create_task(self._respond_batch(work, replies, codec))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _respond_batch(
        self, work: list[tuple[Request, Route, BaseModel]], replies: list[Message], codec: Codec
    ) -> None:
        tasks: list[tuple[Request, asyncio.Task[Response | ErrorResponse]]] = []
        async with asyncio.TaskGroup() as tg:
            for request, route, params in work:
                await self._slots.acquire()
                task = tg.create_task(self._execute(request, route, params))
                self._track(task, request, codec, standalone=False)
                tasks.append((request, task))
        for request, task in tasks:
            replies.append(self._cancelled_reply(request) if task.cancelled() else task.result())
        self._send(replies, codec)

    # -- replies to our own requests ----------------------------------------------------------------

    def _on_reply(self, message: Response | ErrorResponse) -> None:
        future = self._client_requests.pop(message.id, None) if message.id is not None else None
        if future is None or future.done():
            self.log.debug("reply to no request of ours", id=message.id)
            return
        if isinstance(message, ErrorResponse):
            future.set_exception(message.exception())
        else:
            future.set_result(message.result)

    async def request(self, spec: RequestSpec[Any, Any], params: BaseModel) -> Any:
        """Send a request to the client and wait for its result (the raw JSON value).

        Raises the ``RpcError`` the client answered with, or ``TransportClosed`` if the
        connection ends first. Wrap it in ``asyncio.timeout`` to bound the wait.
        """
        self._next_client_request += 1
        request_id = f"s{self._next_client_request}"
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._client_requests[request_id] = future
        self._send(
            Request(request_id, spec.method, params.model_dump(exclude_none=True)),
            self.session.codec,
        )
        try:
            return await future
        finally:
            self._client_requests.pop(request_id, None)

    # -- writing -------------------------------------------------------------------------------------

    def notify(self, spec: NotificationSpec[Any], params: BaseModel) -> None:
        """Send a notification to this client, never dropped (unlike ``send_shared``)."""
        self._send(
            Notification(spec.method, params.model_dump(exclude_none=True)), self.session.codec
        )

    def send_shared(self, note: SharedNotification, *, droppable: bool = True) -> bool:
        """Write a notification encoded once for many connections. Returns False if dropped."""
        codec = self.session.codec
        return self._enqueue(note.wire(codec, self._framed), codec is Codec.JSON, droppable)

    def deliver_event(self, event: Event) -> None:
        """The event bus's ``deliver`` for this connection (droppable, never blocks)."""
        self.send_shared(event.notification, droppable=True)

    def subscribe(self, patterns: Iterable[str]) -> list[str]:
        """Add topic patterns; returns every pattern now subscribed. ValueError if invalid."""
        if self._subscription is None:
            self._subscription = self.daemon.bus.subscribe(patterns, self.deliver_event)
        else:
            self._subscription.add(patterns)
        self.session.topics = list(self._subscription.patterns)
        return self.session.topics

    def unsubscribe(self, patterns: Iterable[str]) -> list[str]:
        """Remove topic patterns; returns every pattern still subscribed."""
        if self._subscription is not None:
            self._subscription.remove(patterns)
            self.session.topics = list(self._subscription.patterns)
        return self.session.topics

    def _send(
        self, message: Message | list[Message], codec: Codec, *, immediate: bool = False
    ) -> None:
        if isinstance(message, list):
            # A batch reply: encode item by item, so one unencodable result costs only itself.
            body = (
                b"[" + b",".join(self._encode_one(item, codec) for item in message) + b"]"
                if codec is Codec.JSON
                else self._encode_list(message, codec)
            )
        else:
            body = self._encode_one(message, codec)
        data = frame(body, codec) if self._framed else body
        self._enqueue(data, codec is Codec.JSON, False, immediate)

    def _encode_one(self, message: Message, codec: Codec) -> bytes:
        try:
            return encode_message(message, codec)
        except LocalProtocolError as exc:
            # A reply we cannot encode (a handler returned something that is not JSON) becomes
            # -32603; anything else we send is our own code's bug, for the caller to see.
            if isinstance(message, Response | ErrorResponse):
                fallback = self._internal_error(Request(message.id or 0, "(reply)"), exc)
                fallback.id = message.id
                return encode_message(fallback, codec)
            raise

    def _encode_list(self, messages: list[Message], codec: Codec) -> bytes:
        try:
            return encode_message(messages, codec)
        except LocalProtocolError:
            # msgpack has no cheap way to join encoded items: find the culprits and retry.
            fixed: list[Message] = []
            for message in messages:
                try:
                    encode_message(message, codec)
                    fixed.append(message)
                except LocalProtocolError as exc:
                    reply_id = getattr(message, "id", None)
                    fallback = self._internal_error(Request(reply_id or 0, "(reply)"), exc)
                    fallback.id = reply_id
                    fixed.append(fallback)
            return encode_message(fixed, codec)

    def _enqueue(self, data: bytes, text: bool, droppable: bool, immediate: bool = False) -> bool:
        if self._writes_closed:
            return False
        pending = self._queued + self.transport.write_buffer_size()
        if droppable:
            limits = self.limits
            if (
                self._queued_events >= limits.max_queued_events
                or pending + len(data) > limits.event_buffer
            ):
                self._dropped += 1
                return False
            self._report_drops()
        elif pending and pending + len(data) > self.limits.max_write_buffer:
            # (A single reply larger than the limit may go out when nothing else waits: the
            # limit is about a client that does not read, not about large answers.)
            self._abort(f"slow reader: {pending + len(data)} bytes would be waiting for it")
            return False
        if immediate and not self._outbox and self.transport.write_nowait(data, text=text):
            return True  # the pipe was idle: written now, no hop through the writer task
        self._outbox.append((data, text, droppable))
        self._queued += len(data)
        if droppable:
            self._queued_events += 1
        self._wake.set()
        return True

    def _report_drops(self) -> None:
        if self._dropped:
            count, self._dropped = self._dropped, 0
            self.log.warning("events dropped for a slow client", count=count)
            note = SharedNotification(_EVENTS_DROPPED, {"count": count})
            data = note.wire(self.session.codec, self._framed)
            self._outbox.append((data, self.session.codec is Codec.JSON, False))
            self._queued += len(data)

    def _abort(self, reason: str) -> None:
        self.log.warning("disconnecting client", reason=reason)
        self._writes_closed = True
        self._outbox.clear()
        self._queued = self._queued_events = 0
        self.transport.abort()
        self._finish(reason, 0.0)

    async def _write_loop(self) -> None:
        outbox = self._outbox
        send = self.transport.send
        try:
            while True:
                if not outbox:
                    if self._dropped and self.transport.write_buffer_size() == 0:
                        self._report_drops()
                        continue
                    self._idle.set()
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                if self._framed and len(outbox) > 1:
                    data = b"".join([item[0] for item in outbox])
                    outbox.clear()
                    self._queued = self._queued_events = 0
                    await send(data)
                else:
                    data, text, droppable = outbox.popleft()
                    self._queued -= len(data)
                    if droppable:
                        self._queued_events -= 1
                    await send(data, text=text)
        except TransportClosed as exc:
            self.log.info("peer stopped reading", error=str(exc))
            self._writes_closed = True
            outbox.clear()
            self._idle.set()
            self._finish("peer went away", 0.0)
        except Exception:
            self.log.exception("writer failed")
            self._writes_closed = True
            self._idle.set()
            self._finish("internal error in the writer", 0.0)
        finally:
            if not self._done.is_set():
                self._writes_closed = True
                self._idle.set()
                self._finish("the writer stopped", 0.0)

    # -- tracing -----------------------------------------------------------------------------------

    def _trace(self, request: Request, reply: Response | ErrorResponse, seconds: float) -> None:
        outcome = f"error {reply.code}" if isinstance(reply, ErrorResponse) else "ok"
        params: dict[str, Any] = {
            "message": f"{request.method} ({request.id}): {outcome} in {seconds * 1000:.2f} ms"
        }
        if self.session.trace == "verbose":
            params["verbose"] = encode_message(request, Codec.JSON).decode("utf-8", "replace")
        self._send(Notification("$/logTrace", params), self.session.codec)
