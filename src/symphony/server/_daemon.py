"""The daemon: listeners, connections, the event bus, shared services; startup and shutdown.

``serve(options)`` is the whole program behind ``symphony serve``: configure logging, run a
``Daemon`` until it stops, return the exit status. ``Daemon.run`` owns one ``TaskGroup`` with a
task per connection (every listener hands accepted clients to ``Daemon.spawn``), so when it
returns, no connection task is left behind.

Stopping (SIGTERM, SIGINT, ``Daemon.stop``, or the end of the stdio connection of an
editor-spawned daemon): close the listeners (no new clients), give running requests
``Limits.shutdown_grace`` seconds, flush and close every connection, remove the discovery file
and the Unix socket, return the exit status. A second signal cuts the grace period short.

For an editor-spawned ``--stdio`` daemon the stdio connection *is* the daemon's reason to live:
when it ends (``exit``, or the editor closing the pipe) the daemon stops, with LSP's exit status
(0 if ``shutdown`` came first, 1 otherwise). Other clients it accepted meanwhile are closed too.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import symphony
from symphony.protocol import PositionEncoding
from symphony.server._connection import Connection, Limits
from symphony.server._events import EventBus, SharedNotification
from symphony.server._exceptions import AlreadyRunning, ConfigError
from symphony.server._logging import LogFormat, configure_logging, get_logger
from symphony.server._routes import RouteTable
from symphony.server._services import Services
from symphony.server._transports import Transport, open_stdio

if TYPE_CHECKING:
    from symphony.server._listeners import Listener

__all__ = ["Daemon", "ServeOptions", "serve"]


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """How to run the daemon. Every field has the CLI flag of the same name.

    ``unix=""`` means the default socket path of the workspace (in the runtime directory).
    ``token`` is generated when not given. ``runtime_dir`` overrides where the discovery file and
    the default socket go (tests use it; normally ``$XDG_RUNTIME_DIR/symphony``).
    """

    stdio: bool = False
    tcp: str | None = None
    unix: str | None = None
    ws: str | None = None
    workspace: str = "."
    log_file: str | None = None
    log_level: str = "info"
    log_format: LogFormat = "json"
    allow_remote: bool = False
    allowed_origins: tuple[str, ...] = ()
    token: str | None = None
    runtime_dir: str | None = None
    limits: Limits = field(default_factory=Limits)

    @property
    def listens(self) -> bool:
        """Whether the daemon listens on a socket (and so publishes a discovery file)."""
        return self.tcp is not None or self.unix is not None or self.ws is not None


class Daemon:
    """One Symphony daemon: what every connection shares, and their lifetimes.

    Attributes for handlers: ``bus`` (the event bus), ``services`` (shared state by type, see
    ``Services``), ``connections`` (open ones), ``buffer_count`` (set by whoever provides the
    buffer store; ``symphony/info`` reports it), ``started_at``, ``token``, ``addresses``.
    Services with background work run it through ``start_service`` and end it when
    ``until_stopping`` returns.

    Invariant: ``connections`` holds exactly the connections whose ``run`` has started and not
    finished.
    """

    def __init__(self, options: ServeOptions | None = None, *, routes: RouteTable | None = None):
        self.options = options or ServeOptions()
        if routes is None:
            from symphony.handlers import ROUTES

            routes = ROUTES
        self.routes = routes
        self.limits = self.options.limits
        self.log = get_logger("symphony.server")
        self.bus = EventBus()
        self.services = Services()
        self.token = self.options.token or secrets.token_urlsafe(32)
        self.workspace = os.path.realpath(self.options.workspace)
        self.started_at = time.time()
        self._started = time.monotonic()
        self.connections: set[Connection] = set()
        self.buffer_count: Callable[[], int] = lambda: 0
        self.addresses: dict[str, str] = {}
        self.exit_status = 0
        self._client_ids = itertools.count(1)
        self._tg: asyncio.TaskGroup | None = None
        self._stopping: asyncio.Event | None = None
        self._stop_requests = 0
        self._listeners: list[Listener] = []
        self._discovery_file: Path | None = None

    # -- what handlers use -----------------------------------------------------------------------

    @property
    def uptime(self) -> float:
        """Seconds since the daemon started."""
        return time.monotonic() - self._started

    def broadcast(
        self,
        connections: Iterable[Connection],
        method: str,
        params_for: Callable[[PositionEncoding], Any],
        *,
        droppable: bool = True,
    ) -> int:
        """Send one notification to many connections, encoding it once per position encoding
        (``params_for(encoding)`` is called at most once per encoding in use) and once per wire
        variant. Returns how many connections it was queued for."""
        notes: dict[PositionEncoding, SharedNotification] = {}
        sent = 0
        for connection in connections:
            encoding = connection.session.position_encoding
            note = notes.get(encoding)
            if note is None:
                note = notes[encoding] = SharedNotification(method, params_for(encoding))
            sent += connection.send_shared(note, droppable=droppable)
        return sent

    def start_service(self, run: Callable[[], Coroutine[Any, Any, None]]) -> bool:
        """Run a shared service's background work as a task of the daemon's ``TaskGroup``.

        For what a service does between requests (the buffer store watches files and sends
        ``workspace/applyEdit`` to editors): owned by the daemon, so nothing outlives it.
        ``run()`` must end on its own soon after ``until_stopping()`` returns, and must not
        raise (an exception would stop the daemon). Returns False, starting nothing, when the
        daemon is not running (tests that call ``serve`` directly): the service then works
        without its background tasks.
        """
        if self._tg is None:
            return False
        self._tg.create_task(run())
        return True

    async def until_stopping(self) -> None:
        """Return once the daemon begins to stop (at once if it is not running)."""
        if self._stopping is not None:
            await self._stopping.wait()

    def stop(self, exit_status: int = 0) -> None:
        """Ask the daemon to stop gracefully (idempotent; a second call shortens the grace)."""
        self._stop_requests += 1
        if self._stop_requests == 1:
            self.exit_status = exit_status
            self.log.info("stopping", exit_status=exit_status)
        else:
            for connection in list(self.connections):
                connection.close("daemon stopping now", grace=0.0)
        if self._stopping is not None:
            self._stopping.set()

    # -- connections --------------------------------------------------------------------------------

    def spawn(self, transport: Transport) -> asyncio.Task[None]:
        """Serve a new client in the daemon's task group (listeners call this)."""
        if self._tg is None:
            transport.abort()
            raise RuntimeError("the daemon is not running")
        return self._tg.create_task(self.serve(transport))

    async def serve(self, transport: Transport) -> None:
        """Serve one client until its connection ends (tests call this with a memory transport)."""
        connection = Connection(self, transport, client_id=f"c{next(self._client_ids)}")
        await connection.run()

    def _connection_opened(self, connection: Connection) -> None:
        self.connections.add(connection)
        if self._stopping is not None and self._stopping.is_set():
            connection.close("daemon stopping", grace=0.0)
        self.bus.publish(
            "connection/opened",
            {"clientId": connection.session.client_id, "transport": connection.transport.kind},
        )

    def _connection_closed(self, connection: Connection) -> None:
        self.connections.discard(connection)
        session = connection.session
        self.bus.publish(
            "connection/closed",
            {"clientId": session.client_id, "reason": connection.close_reason},
        )
        if session.transport == "stdio":
            # The editor that spawned us is gone or said exit: so are we.
            self.stop(session.lifecycle.exit_status)

    # -- the daemon's life --------------------------------------------------------------------------

    async def run(self) -> int:
        """Start listeners (and stdio), serve until stopped, shut down; returns the exit status.

        Raises ``ConfigError``/``AlreadyRunning``/``OSError`` if it cannot start.
        """
        options = self.options
        if not options.stdio and not options.listens:
            raise ConfigError("nothing to serve: give --stdio, --tcp, --unix and/or --ws")
        loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="symphony-worker")
        loop.set_default_executor(executor)
        signals = self._install_signal_handlers(loop)
        if self._stop_requests:
            self._stopping.set()
        try:
            await self._run_group()
        except BaseExceptionGroup as group:
            # A startup failure is one error in the group: raise it as itself, so that callers
            # (serve, tests) see ConfigError or OSError rather than a group.
            if len(group.exceptions) == 1 and isinstance(group.exceptions[0], Exception):
                raise group.exceptions[0] from None
            raise
        finally:
            self._tg = None
            for sig in signals:
                loop.remove_signal_handler(sig)
            executor.shutdown(wait=False, cancel_futures=True)
            self._cleanup_files()
        self.log.info("stopped", exit_status=self.exit_status)
        return self.exit_status

    async def _run_group(self) -> None:
        options = self.options
        assert self._stopping is not None
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            try:
                if options.listens:
                    await self._start_listeners()
                if options.stdio:
                    transport = await open_stdio()
                    self.addresses["stdio"] = "stdio"
                    tg.create_task(self.serve(transport))
                self.log.info(
                    "ready",
                    pid=os.getpid(),
                    workspace=self.workspace,
                    addresses=self.addresses,
                    discovery=str(self._discovery_file) if self._discovery_file else None,
                )
                await self._stopping.wait()
            finally:
                await self._shut_down()

    async def _start_listeners(self) -> None:
        # Imported here: an editor-spawned --stdio daemon never listens, and its startup must be
        # fast (initialize answered within 400 ms of spawn).
        from symphony.server._discovery import (
            DiscoveryInfo,
            default_unix_path,
            discovery_path,
            read_discovery,
            runtime_dir,
            write_discovery,
        )
        from symphony.server._listeners import parse_address, start_tcp, start_unix, start_ws

        options = self.options
        directory = Path(options.runtime_dir) if options.runtime_dir else runtime_dir()
        running = read_discovery(self.workspace, directory=directory)
        if running is not None and running.pid != os.getpid():
            raise AlreadyRunning(
                running.pid, str(discovery_path(self.workspace, directory=directory))
            )
        if options.unix is not None:
            path = (
                Path(options.unix)
                if options.unix
                else default_unix_path(self.workspace, directory=directory)
            )
            self._listeners.append(await start_unix(self.spawn, path))
        if options.tcp is not None:
            host, port = parse_address(options.tcp)
            self._listeners.append(
                await start_tcp(self.spawn, host, port, allow_remote=options.allow_remote)
            )
        if options.ws is not None:
            host, port = parse_address(options.ws)
            self._listeners.append(
                await start_ws(
                    self.spawn,
                    host,
                    port,
                    token=self.token,
                    allow_remote=options.allow_remote,
                    allowed_origins=options.allowed_origins,
                    max_message_size=self.limits.max_message_size,
                )
            )
        for listener in self._listeners:
            self.addresses[listener.kind] = listener.address
        self._discovery_file = discovery_path(self.workspace, directory=directory)
        write_discovery(
            self._discovery_file,
            DiscoveryInfo(
                pid=os.getpid(),
                workspace=self.workspace,
                version=symphony.__version__,
                started_at=self.started_at,
                token=self.token,
                addresses=dict(self.addresses),
            ),
        )

    async def _shut_down(self) -> None:
        for listener in self._listeners:
            listener.close()
        for connection in list(self.connections):
            connection.close("daemon stopping")
        for listener in self._listeners:
            try:
                async with asyncio.timeout(self.limits.shutdown_grace + 1.0):
                    await listener.wait_closed()
            except TimeoutError:
                self.log.warning("listener did not close in time", kind=listener.kind)

    def _cleanup_files(self) -> None:
        if self._discovery_file is not None:
            from symphony.server._discovery import remove_discovery

            remove_discovery(self._discovery_file, os.getpid())
        for listener in self._listeners:
            if listener.path is not None:
                listener.path.unlink(missing_ok=True)

    def _install_signal_handlers(self, loop: asyncio.AbstractEventLoop) -> list[int]:
        installed: list[int] = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self._on_signal, sig)
            except (NotImplementedError, RuntimeError, ValueError):
                continue  # not the main thread (tests run daemons in-process too)
            installed.append(sig)
        return installed

    def _on_signal(self, sig: int) -> None:
        self.log.info("signal received", signal=signal.Signals(sig).name)
        self.stop(0)


def serve(options: ServeOptions) -> int:
    """Run a daemon until it stops; returns the process exit status (what the CLI exits with).

    0: stopped cleanly (or stdio client did shutdown then exit); 1: stdio client exited without
    shutdown, or the daemon could not start; 2: the options cannot work.
    """
    try:
        configure_logging(options.log_level, options.log_format, options.log_file)
    except (ValueError, OSError) as exc:
        print(f"symphony serve: {exc}", file=sys.stderr)
        return 2
    log = get_logger("symphony.server")
    try:
        return asyncio.run(Daemon(options).run())
    except ConfigError as exc:
        log.error("cannot start", error=str(exc))
        print(f"symphony serve: {exc}", file=sys.stderr)
        return 2
    except (AlreadyRunning, OSError) as exc:
        log.error("cannot start", error=str(exc))
        print(f"symphony serve: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
