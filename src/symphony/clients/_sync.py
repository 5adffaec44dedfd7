"""A synchronous client for scripts: ``symphony.clients.connect()``.

    from symphony.clients import connect

    with connect("~/proj") as symphony:
        buf = symphony.open("README.md")
        print(symphony.get_text(buf.uri).text)

Design: the wrapper owns one asyncio event loop running in a background thread, and one
``SymphonyClient`` living in it for as long as the wrapper is open. Each method hands a coroutine
to that loop (``run_coroutine_threadsafe``) and blocks on its result.

Why not ``asyncio.run`` per call: a connection belongs to the loop that opened it, so a fresh loop
per call would mean a fresh connection (and handshake) per call, and notifications arriving
between calls would have nowhere to go. With the loop in a thread, the connection persists, the
reader keeps draining the socket while the script does something else (the daemon never sees a
client that stopped reading), notifications queue up for ``notifications()``, and reconnecting
works as in the async client. The thread is a daemon thread, so a script that forgets ``close()``
still exits; ``close()`` (or leaving ``with``) closes the connection cleanly and joins it.

Every exception is the async client's: the daemon's ``RpcError`` subclasses, ``ConnectionLost``,
``RequestTimeout``... Ctrl-C while a call waits cancels the request in the daemon too.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import queue
import threading
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from symphony.clients._client import _DEFAULT, DEFAULT_STREAM_SIZE, SymphonyClient, _Default
from symphony.clients._transport import ConnectionLost
from symphony.protocol import Notification, Params

if TYPE_CHECKING:
    from typing import Self

    from pydantic import BaseModel

    from symphony.protocol import (
        BufferGetTextResult,
        BufferListResult,
        BufferOpenResult,
        BufferSaveResult,
        InfoResult,
        PingResult,
        Range,
        RequestSpec,
        RevisionResult,
        SubscribeResult,
        TextChange,
    )

__all__ = ["SyncClient", "SyncNotifications", "connect"]

T = TypeVar("T")


def connect(
    workspace: str = ".",
    *,
    unix: str | None = None,
    tcp: str | None = None,
    ws: str | None = None,
    token: str | None = None,
    start: bool = False,
    prefer: Literal["unix", "tcp", "ws"] | None = None,
    **options: Any,
) -> SyncClient:
    """A connected ``SyncClient``.

    By default it finds the daemon of ``workspace`` through its discovery file (``start=True``
    starts one in the background if none runs, as ``symphony attach`` does). ``unix``, ``tcp``
    (``HOST:PORT``) or ``ws`` (``ws://HOST:PORT/``) connect to an explicit address instead
    (``token`` for TCP and WebSocket). ``options`` go to ``SymphonyClient`` (``timeout``,
    ``reconnect``, ``codec``, ``position_encodings``...).
    """
    client: SymphonyClient
    if unix is not None:
        client = SymphonyClient.unix(unix, token=token, **options)
    elif tcp is not None:
        client = SymphonyClient.tcp(tcp, token=token, **options)
    elif ws is not None:
        client = SymphonyClient.ws(ws, token=token, **options)
    else:
        client = SymphonyClient.connect_workspace(
            workspace, prefer=prefer, start=start, token=token, **options
        )
    return SyncClient(client)


class SyncNotifications:
    """Notifications for a synchronous consumer: ``next(timeout)`` or iterate (blocking).

    At most ``maxsize`` are held for a consumer that falls behind; more are dropped and counted
    in ``dropped``. Iteration ends once the client is closed.
    """

    _END: Any = object()

    def __init__(self, methods: frozenset[str] | None, maxsize: int) -> None:
        self._methods = methods
        self._queue: queue.Queue[Any] = queue.Queue(maxsize)
        self._closed = False
        self._remove: Callable[[], None] | None = None
        #: Notifications dropped because the consumer did not keep up.
        self.dropped = 0

    def _offer(self, note: Notification) -> None:  # in the loop thread
        if self._methods is not None and note.method not in self._methods:
            return
        try:
            self._queue.put_nowait(note)
        except queue.Full:
            self.dropped += 1

    def _end(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._remove is not None:
            self._remove()
        # The end marker must get through even to a full queue: make room for it.
        while True:
            try:
                self._queue.put_nowait(self._END)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def next(self, timeout: float | None = None) -> Notification:
        """The next notification. Raises ``TimeoutError`` after ``timeout`` seconds, and
        ``ConnectionLost`` once the stream or its client is closed."""
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no notification within {timeout:g} s") from None
        if item is self._END:
            self._queue.put_nowait(self._END)  # stay ended for the next caller
            raise ConnectionLost("the client was closed: no more notifications")
        note: Notification = item
        return note

    def __iter__(self) -> Iterator[Notification]:
        while True:
            try:
                yield self.next()
            except ConnectionLost:
                return

    def close(self) -> None:
        """Stop receiving (what is queued can still be read)."""
        self._end()

    def __enter__(self) -> SyncNotifications:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class SyncClient:
    """A blocking facade over a ``SymphonyClient`` running in its own thread (see the module
    docstring). Connects on construction; use it as ``with`` or call ``close()``.

    Methods mirror the async client's and return the same pydantic result models.
    """

    def __init__(self, client: SymphonyClient) -> None:
        self.client = client
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="symphony-client-loop", daemon=True
        )
        self._streams: set[SyncNotifications] = set()
        self._closed = False
        self._thread.start()
        self._stop: asyncio.Event | None = None
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._lifetime = asyncio.run_coroutine_threadsafe(self._live(ready), self._loop)
        try:
            # Whatever ends the lifetime early (a failed connect) also resolves ``ready``.
            ready.result()
        except BaseException:
            self._shut_loop()
            raise

    async def _live(self, ready: concurrent.futures.Future[None]) -> None:
        """The client's whole life, as one task: ``async with`` needs enter and exit in the
        same task."""
        self._stop = asyncio.Event()
        try:
            async with self.client:
                ready.set_result(None)
                await self._stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
                return
            raise
        finally:
            for stream in list(self._streams):
                stream._end()

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coroutine.close()
            raise ConnectionLost("the client is closed")
        if threading.current_thread() is self._thread:
            coroutine.close()
            raise RuntimeError(
                "a SyncClient method was called from its own loop thread (a notification "
                "callback?): that would deadlock; use the async client there"
            )
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result()
        except BaseException:
            # Ctrl-C (or any interruption) while waiting: cancel the request, in the daemon too.
            future.cancel()
            raise

    def close(self) -> None:
        """Close the connection (a spawned daemon is shut down) and stop the thread."""
        if self._closed:
            return
        self._closed = True
        stop = self._stop
        if stop is not None:
            self._loop.call_soon_threadsafe(stop.set)
        try:
            self._lifetime.result()
        finally:
            self._shut_loop()

    def _shut_loop(self) -> None:
        self._closed = True
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- generic -----------------------------------------------------------------------------------

    @property
    def position_encoding(self) -> str:
        """The position encoding negotiated for this connection."""
        return self.client.position_encoding

    def request(
        self, method: str, params: Params = None, *, timeout: float | _Default | None = _DEFAULT
    ) -> Any:
        """A raw request; its result (JSON value). See ``SymphonyClient.request`` (``timeout``
        defaults to the client's)."""
        return self._run(self.client.request(method, params, timeout=timeout))

    def notify(self, method: str, params: Params = None) -> None:
        """A raw notification."""
        self._run(self.client.notify(method, params))

    def call(
        self, spec: RequestSpec[Any, Any], params: BaseModel | Mapping[str, Any] | None = None
    ) -> Any:
        """A request by protocol spec, result validated into its model."""
        return self._run(self.client.call(spec, params))

    def on_notification(
        self, method: str | None, callback: Callable[[Notification], None]
    ) -> Callable[[], None]:
        """Call ``callback(notification)`` **in the client's thread** for each notification
        named ``method`` (None: all). It must not block nor call this client's methods."""
        removers: list[Callable[[], None]] = []
        # Registered in the loop thread, before any request made after this call is sent.
        self._loop.call_soon_threadsafe(
            lambda: removers.append(self.client.on_notification(method, callback))
        )

        def unregister() -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to remove
                self._loop.call_soon_threadsafe(lambda: [remove() for remove in removers])

        return unregister

    def notifications(self, *methods: str, maxsize: int = DEFAULT_STREAM_SIZE) -> SyncNotifications:
        """Notifications named ``methods`` (none given: all), queued for this thread."""
        stream = SyncNotifications(frozenset(methods) if methods else None, maxsize)
        stream._remove = self.on_notification(None, stream._offer)
        self._streams.add(stream)
        return stream

    # -- typed helpers --------------------------------------------------------------------------------

    def ping(self, data: Any = None) -> PingResult:
        return self._run(self.client.ping(data))

    def info(self) -> InfoResult:
        return self._run(self.client.info())

    def open(
        self,
        path: str | None = None,
        *,
        uri: str | None = None,
        text: str | None = None,
        language_id: str | None = None,
    ) -> BufferOpenResult:
        return self._run(self.client.open(path, uri=uri, text=text, language_id=language_id))

    def get_text(
        self, uri: str, range: Range | Mapping[str, Any] | None = None
    ) -> BufferGetTextResult:
        return self._run(self.client.get_text(uri, range))

    def edit(
        self, uri: str, edits: Iterable[TextChange | Mapping[str, Any]], *, base_revision: int
    ) -> RevisionResult:
        return self._run(self.client.edit(uri, list(edits), base_revision=base_revision))

    def undo(self, uri: str) -> RevisionResult:
        return self._run(self.client.undo(uri))

    def redo(self, uri: str) -> RevisionResult:
        return self._run(self.client.redo(uri))

    def save(
        self, uri: str, path: str | None = None, *, overwrite: bool = False
    ) -> BufferSaveResult:
        return self._run(self.client.save(uri, path, overwrite=overwrite))

    def close_buffer(self, uri: str, *, discard: bool = False) -> None:
        self._run(self.client.close_buffer(uri, discard=discard))

    def list_buffers(self) -> BufferListResult:
        return self._run(self.client.list_buffers())

    def subscribe_buffer(self, uri: str) -> None:
        self._run(self.client.subscribe_buffer(uri))

    def unsubscribe_buffer(self, uri: str) -> None:
        self._run(self.client.unsubscribe_buffer(uri))

    def subscribe(self, *topics: str) -> SubscribeResult:
        return self._run(self.client.subscribe(*topics))

    def unsubscribe(self, *topics: str) -> SubscribeResult:
        return self._run(self.client.unsubscribe(*topics))
