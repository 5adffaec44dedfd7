"""``symphony/artifact/*`` and ``symphony/pit/*``: the Pit's artifact store, served by the daemon.

Theory of operation
-------------------
**The specs live here, not in ``symphony.protocol``.** Their params and results are the Pit's
own pydantic models (``symphony.pit.service``), and importing those loads the store (sqlite3,
the stale manager, the fsck) and, through pydantic's plugin loader, ``socket``: the protocol
room is sans-IO and a test holds it to importing no ``socket``. So the catalogue entries of
these methods sit beside their handlers; ``PIT_METHODS`` lists them (for a schema generator
that wants them; ``docs/pit.md`` documents them).

**One store per daemon, opened on first use.** ``PitRuntime`` is a daemon service (in
``ctx.daemon.services``). The first Pit request opens ``<workspace>/.symphony/pit``, the folder
the command line uses, with the key from the environment (``SYMPHONY_PIT_KEY`` or
``SYMPHONY_PIT_KEY_FILE``) as the command line takes it: ``symphony artifact put`` and the daemon
share one store, which SQLite's WAL and the store's locking make safe across processes. If
whoever wires the daemon provided an ``ArtifactService`` already, that one is used (and not
closed here). Opening blocks, so it runs in a worker thread under an asyncio lock: concurrent
first requests open the store once.

**Handlers are thin.** The route validates params (-32602 with pydantic's details); each handler
calls one ``ArtifactService`` method through ``to_thread`` (SQLite and fsync block) and maps
the Pit's exceptions to protocol errors here, at the boundary (``rpc_error``):

========================================  ==============================================
``symphony.pit``                          protocol
========================================  ==============================================
``InvalidArgument``, ``InvalidQuery``     ``InvalidParams`` -32602
``NotFound``, ``AmbiguousRef``            ``ArtifactNotFound`` -32910 ``{ref, what...}``
``ProtectedArtifact``                     ``ArtifactProtected`` -32911 ``{ref, reasons}``
``PutConflict``                           ``PutConflict`` -32912 (send the put again)
``EncryptionError`` and subclasses        ``EncryptionKeyError`` -32913
``IntegrityError``, ``StoreFormatError``  ``DamagedData`` -32914 ``{chunk}``
========================================  ==============================================

Anything else (an ``OSError`` of a full disk...) is a -32603 with a log id, like any handler.

**Bytes on the wire.** Content travels in pieces of at most ``MAX_MESSAGE`` (1 MiB): ``putPart``
then ``put {upload}`` to write, ``get {ref, offset}`` repeatedly to read. Params accept base64
(standard or URL-safe, padding optional) in JSON and raw bytes in msgpack. Results carry
standard base64 to a JSON client and raw bytes to a msgpack one: the route serializes results
in Python mode whatever the codec, so the handler picks by the codec the client chose at
``initialize`` (``Session.codec``). A client that initialized with msgpack must send ``get`` in
msgpack too (a JSON reply cannot hold raw bytes: it would answer -32603).

**Background work.** When the store opens, ``PitRuntime.maintain`` starts as a task of the
daemon's ``TaskGroup`` (``Daemon.start_service``). It sleeps until woken or a tick passes, then
in one worker-thread call: aborts the uploads of connections that closed (it listens to the bus's
``connection/closed``; uploads belong to the connection that started them) and those idle for
``UPLOAD_IDLE`` seconds, brings the search index up to date after puts (``index_pending``, in
steps), and runs the stale manager's garbage collection in bounded slices every
``CYCLE_INTERVAL`` (no retention policy is applied in the background: that deletes artifacts,
so it is only done on request, ``symphony/pit/gc {retention}``). ``gc`` and ``fsck`` requests
and the background work take turns on one lock (``PitRuntime.exclusive`` says why). Without a
running daemon (tests that drive ``Daemon.serve`` directly) none of this runs and the store is
not closed by the daemon.

**Closing.** When the daemon stops, ``maintain`` waits until every connection is closed, then
until no store call is running in a worker thread (a cancelled handler stops waiting for its
thread, the thread runs on: ``_CallGate`` counts them and refuses new ones), aborts the uploads
left, checkpoints the WAL and closes the store.

**Cost.** The route table needs the params models when it is built, so importing this module
imports ``symphony.pit.service``, which imports the whole Pit (store, stale manager, fsck) and
builds its models: ~150-200 ms of every daemon's start-up, measured on a shared 2-core machine.
Splitting the Pit's wire models from its store (and a lazy ``symphony.pit``) would leave only
the models on that path; the store itself is only opened on the first request.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Final, ParamSpec, TypeVar

from pydantic import field_serializer

from symphony.pit import (
    AmbiguousRef,
    ArtifactStore,
    EncryptionError,
    IntegrityError,
    InvalidArgument,
    MissingData,
    NotFound,
    PitError,
    ProtectedArtifact,
    StoreFormatError,
    TamperedData,
    default_store_path,
)
from symphony.pit import PutConflict as PitPutConflict
from symphony.pit.service import (
    ArtifactModel,
    ArtifactService,
    DeleteParams,
    FsckParams,
    FsckResult,
    GcParams,
    GcResult,
    GetParams,
    GetResult,
    ListParams,
    ListResult,
    PutAbortParams,
    PutParams,
    PutPartParams,
    PutPartResult,
    PutResultModel,
    RefParams,
    SearchParams,
    SearchResult,
    StatResult,
    VersionsParams,
    VersionsResult,
)
from symphony.protocol import Codec, InternalError, InvalidParams, RequestSpec, RpcError
from symphony.protocol._exceptions import (
    ArtifactNotFound,
    ArtifactProtected,
    DamagedData,
    EncryptionKeyError,
    PutConflict,
)
from symphony.server import RequestContext, get_logger, to_thread

if TYPE_CHECKING:
    from symphony.pit.stale import StaleManager
    from symphony.server import Daemon, Event, Subscription

__all__ = [
    "ARTIFACT_DELETE",
    "ARTIFACT_GET",
    "ARTIFACT_LIST",
    "ARTIFACT_PIN",
    "ARTIFACT_PUT",
    "ARTIFACT_PUT_ABORT",
    "ARTIFACT_PUT_PART",
    "ARTIFACT_SEARCH",
    "ARTIFACT_STAT",
    "ARTIFACT_UNPIN",
    "ARTIFACT_VERSIONS",
    "CYCLE_INTERVAL",
    "PIT_FSCK",
    "PIT_GC",
    "PIT_METHODS",
    "UPLOAD_IDLE",
    "PitRuntime",
    "delete",
    "fsck",
    "gc",
    "get",
    "list_artifacts",
    "pin",
    "put",
    "put_abort",
    "put_part",
    "rpc_error",
    "search",
    "stat",
    "unpin",
    "versions",
]

P = ParamSpec("P")
T = TypeVar("T")
_NULL: Final = type(None)

#: Seconds an upload may stay idle before the daemon aborts it.
UPLOAD_IDLE: Final = 600.0
#: Seconds between two garbage-collection cycles of the background work (the first one runs
#: ``FIRST_CYCLE_AFTER`` seconds after the store opens).
CYCLE_INTERVAL: Final = 600.0
FIRST_CYCLE_AFTER: Final = 60.0
#: Seconds between two wake-ups of the background work when nothing wakes it earlier.
TICK: Final = 60.0
#: Work units per garbage-collection slice (see ``StaleManager.run_slice``), and the pause
#: between two slices of a running cycle, so the worker threads go to requests in between.
SLICE_UNITS: Final = 256
SLICE_PAUSE: Final = 0.05
#: Text bytes indexed per step of the background catch-up after puts.
INDEX_STEP_BYTES: Final = 4 * 1024 * 1024
#: Seconds ``close`` waits for store calls still running in worker threads before giving up
#: (the store is then left open for the process's exit to close).
CLOSE_WAIT: Final = 30.0

# -- the catalogue -------------------------------------------------------------------------------

ARTIFACT_PUT: Final = RequestSpec(
    "symphony/artifact/put",
    PutParams,
    PutResultModel,
    "Store a new version of a name: content (at most 1 MiB, base64 in JSON) or an upload.",
)
ARTIFACT_PUT_PART: Final = RequestSpec(
    "symphony/artifact/putPart",
    PutPartParams,
    PutPartResult,
    "Send one piece (at most 1 MiB) of a large content; no upload starts a new one.",
)
ARTIFACT_PUT_ABORT: Final = RequestSpec(
    "symphony/artifact/putAbort", PutAbortParams, _NULL, "Drop an unfinished upload."
)
ARTIFACT_GET: Final = RequestSpec(
    "symphony/artifact/get",
    GetParams,
    GetResult,
    "At most 1 MiB of content from offset; ask again with the contentId until eof.",
)
ARTIFACT_STAT: Final = RequestSpec(
    "symphony/artifact/stat",
    RefParams,
    StatResult,
    "One artifact's metadata, why it is protected, and its relations.",
)
ARTIFACT_LIST: Final = RequestSpec(
    "symphony/artifact/list",
    ListParams,
    ListResult,
    "Artifacts, newest first, filtered; page with nextBeforeId.",
)
ARTIFACT_SEARCH: Final = RequestSpec(
    "symphony/artifact/search",
    SearchParams,
    SearchResult,
    "Full-text search over content (latest versions) and metadata.",
)
ARTIFACT_VERSIONS: Final = RequestSpec(
    "symphony/artifact/versions",
    VersionsParams,
    VersionsResult,
    "Every version of a name, oldest first, with parent links.",
)
ARTIFACT_PIN: Final = RequestSpec(
    "symphony/artifact/pin", RefParams, ArtifactModel, "Protect an artifact from deletion."
)
ARTIFACT_UNPIN: Final = RequestSpec(
    "symphony/artifact/unpin", RefParams, ArtifactModel, "Remove an artifact's pin."
)
ARTIFACT_DELETE: Final = RequestSpec(
    "symphony/artifact/delete",
    DeleteParams,
    ArtifactModel,
    "Delete one version (a protected one only with force); returns it as it was.",
)
PIT_GC: Final = RequestSpec(
    "symphony/pit/gc",
    GcParams,
    GcResult,
    "Collect garbage, after retention and tiers if given; dryRun only reports.",
)
PIT_FSCK: Final = RequestSpec(
    "symphony/pit/fsck",
    FsckParams,
    FsckResult,
    "Check the store's consistency (verify: every hash too); ok is false on errors.",
)

#: The Pit's methods, by name, in the order ``docs/pit.md`` lists them.
PIT_METHODS: Final[dict[str, RequestSpec[Any, Any]]] = {
    spec.method: spec
    for spec in (
        ARTIFACT_PUT,
        ARTIFACT_PUT_PART,
        ARTIFACT_PUT_ABORT,
        ARTIFACT_GET,
        ARTIFACT_STAT,
        ARTIFACT_LIST,
        ARTIFACT_SEARCH,
        ARTIFACT_VERSIONS,
        ARTIFACT_PIN,
        ARTIFACT_UNPIN,
        ARTIFACT_DELETE,
        PIT_GC,
        PIT_FSCK,
    )
}

# -- the handlers --------------------------------------------------------------------------------


async def put(ctx: RequestContext, params: PutParams) -> PutResultModel:
    """Store ``content``, or commit the ``upload`` this connection sent with ``putPart``."""
    runtime, service = await _open(ctx)
    result = await runtime.call(service.put, params, owner=ctx.session.client_id)
    runtime.index_soon()
    return result


async def put_part(ctx: RequestContext, params: PutPartParams) -> PutPartResult:
    """Add one piece to an upload (a new one without ``upload``); chunked as it arrives."""
    runtime, service = await _open(ctx)
    return await runtime.call(service.put_part, params, owner=ctx.session.client_id)


async def put_abort(ctx: RequestContext, params: PutAbortParams) -> None:
    """Drop an upload of this connection."""
    runtime, service = await _open(ctx)
    await runtime.call(service.put_abort, params, owner=ctx.session.client_id)


async def get(ctx: RequestContext, params: GetParams) -> GetResult:
    """At most 1 MiB of content from ``offset`` (see the module docstring for the bytes)."""
    runtime, service = await _open(ctx)
    result = await runtime.call(service.get, params)
    if ctx.session.codec is Codec.MSGPACK:
        return result
    return _Base64GetResult.model_construct(**dict(result))


async def stat(ctx: RequestContext, params: RefParams) -> StatResult:
    runtime, service = await _open(ctx)
    return await runtime.call(service.stat, params)


async def list_artifacts(ctx: RequestContext, params: ListParams) -> ListResult:
    runtime, service = await _open(ctx)
    return await runtime.call(service.list, params)


async def search(ctx: RequestContext, params: SearchParams) -> SearchResult:
    runtime, service = await _open(ctx)
    return await runtime.call(service.search, params)


async def versions(ctx: RequestContext, params: VersionsParams) -> VersionsResult:
    runtime, service = await _open(ctx)
    return await runtime.call(service.versions, params)


async def pin(ctx: RequestContext, params: RefParams) -> ArtifactModel:
    runtime, service = await _open(ctx)
    return await runtime.call(service.pin, params)


async def unpin(ctx: RequestContext, params: RefParams) -> ArtifactModel:
    runtime, service = await _open(ctx)
    return await runtime.call(service.unpin, params)


async def delete(ctx: RequestContext, params: DeleteParams) -> ArtifactModel:
    runtime, service = await _open(ctx)
    return await runtime.call(service.delete, params)


async def gc(ctx: RequestContext, params: GcParams) -> GcResult:
    """Collect garbage now (taking turns with the background slices)."""
    runtime, service = await _open(ctx)
    return await runtime.call(runtime.exclusive, service.gc, params)


async def fsck(ctx: RequestContext, params: FsckParams) -> FsckResult:
    """Check the store (taking turns with the background work, which writes)."""
    runtime, service = await _open(ctx)
    return await runtime.call(runtime.exclusive, service.fsck, params)


async def _open(ctx: RequestContext) -> tuple[PitRuntime, ArtifactService]:
    """The daemon's Pit runtime (created on first use) and its service (opened on first use)."""
    services = ctx.daemon.services
    runtime = services.find(PitRuntime)
    if runtime is None:
        # No await between find and provide: two first requests cannot both create one.
        runtime = PitRuntime(ctx.daemon)
        services.provide(PitRuntime, runtime)
    return runtime, await runtime.service()


class _Base64GetResult(GetResult):
    """``GetResult`` for a JSON client: ``data`` as standard base64 (RFC 4648 section 4)."""

    @field_serializer("data")
    def _data(self, data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")


# -- errors at the boundary ------------------------------------------------------------------------


def rpc_error(exc: PitError) -> RpcError | None:
    """The protocol error for a Pit error (table in the module docstring); None for the Pit's
    own failures that are nobody's fault but ours (answered -32603 with a log id)."""
    if isinstance(exc, InvalidArgument):
        return InvalidParams(str(exc))
    if isinstance(exc, NotFound):
        what = exc.what
        message = str(exc)
        if what == "upload":
            message += (
                " (an upload belongs to the connection that started it, and is dropped when "
                f"that connection closes or after {UPLOAD_IDLE:.0f} s idle)"
            )
        return ArtifactNotFound(message, ref=exc.ref, what=what)
    if isinstance(exc, AmbiguousRef):
        return ArtifactNotFound(str(exc), ref=exc.ref, what="content", candidates=exc.candidates)
    if isinstance(exc, ProtectedArtifact):
        return ArtifactProtected(str(exc), ref=exc.ref, reasons=list(exc.reasons))
    if isinstance(exc, PitPutConflict):
        return PutConflict(str(exc))
    if isinstance(exc, EncryptionError):
        return EncryptionKeyError(str(exc))
    if isinstance(exc, TamperedData | MissingData):
        return DamagedData(str(exc), chunk=exc.chunk)
    if isinstance(exc, IntegrityError | StoreFormatError):
        return DamagedData(str(exc))
    return None


# -- the runtime -----------------------------------------------------------------------------------


class _GateClosed(Exception):
    """The store is closing: no new call may start."""


class _CallGate:
    """Counts the store calls running in worker threads, so the store closes only when none
    runs (a cancelled handler stops waiting for its thread, but the thread runs to the end).

    Invariant: ``_running`` is the number of ``enter`` blocks being executed; once ``_closed``
    is set no block starts.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._running = 0
        self._closed = False

    @contextlib.contextmanager
    def enter(self) -> Iterator[None]:
        with self._cond:
            if self._closed:
                raise _GateClosed
            self._running += 1
        try:
            yield
        finally:
            with self._cond:
                self._running -= 1
                self._cond.notify_all()

    def close(self, timeout: float) -> bool:
        """Refuse new calls; wait up to ``timeout`` s for running ones. Whether none runs."""
        with self._cond:
            self._closed = True
            return self._cond.wait_for(lambda: self._running == 0, timeout)


class PitRuntime:
    """The daemon's Pit: the store and its ``ArtifactService`` (opened on first use), their
    background work, and their closing when the daemon stops (see the module docstring).

    Invariants: ``_service`` is None until the store is open, then never changes; ``_stale`` is
    set with it; ``_owned`` says whether this runtime opened the store (and so closes it).
    """

    def __init__(self, daemon: Daemon) -> None:
        self._daemon = daemon
        self._open_lock = asyncio.Lock()
        self._service: ArtifactService | None = None
        self._stale: StaleManager | None = None
        self._owned = False
        self._gate = _CallGate()
        # gc and fsck requests and the background work take turns (see ``exclusive``).
        self._exclusive = threading.Lock()
        self._wake = asyncio.Event()
        self._connections_changed = asyncio.Event()
        self._closed_owners: set[str] = set()
        self._index_wanted = False
        self._stopping = False
        self._subscription: Subscription | None = None
        self.log = get_logger("symphony.handlers.artifact")

    # -- what handlers use ---------------------------------------------------------------------

    async def service(self) -> ArtifactService:
        """The service, opening the workspace's store on first use (once, however many ask)."""
        service = self._service
        if service is None:
            async with self._open_lock:
                # Another request may have opened it while this one waited for the lock.
                service = self._service or await self._open()
        return service

    async def call(self, func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``func(*args, **kwargs)`` in a worker thread, Pit errors mapped to protocol errors."""

        def work() -> T:
            with self._gate.enter():
                return func(*args, **kwargs)

        try:
            return await to_thread(work)
        except PitError as exc:
            mapped = rpc_error(exc)
            if mapped is None:
                raise
            raise mapped from exc
        except _GateClosed:
            raise InternalError("the daemon is stopping: its Pit store is closed") from None

    def exclusive(self, func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``func(*args, **kwargs)`` while the background work does not run (in a worker
        thread). For ``gc`` (one collector at a time) and ``fsck``: its search-index check
        needs SQLite's write lock inside its read transaction, and reports "database is
        locked" as damage if another connection writes meanwhile (the background indexing
        after puts would, every time)."""
        with self._exclusive:
            return func(*args, **kwargs)

    def index_soon(self) -> None:
        """Ask the background work to bring the search index up to date (after a put)."""
        self._index_wanted = True
        self._wake.set()

    # -- opening -------------------------------------------------------------------------------

    async def _open(self) -> ArtifactService:
        daemon = self._daemon
        provided = daemon.services.find(ArtifactService)
        if provided is not None:
            service = provided
        else:
            path = default_store_path(daemon.workspace)
            try:
                store = await to_thread(ArtifactStore.open, path)
            except PitError as exc:
                mapped = rpc_error(exc)
                if mapped is None:
                    raise
                raise mapped from exc
            service = ArtifactService(store)
            daemon.services.provide(ArtifactService, service)
            self._owned = True
            self.log.info("pit store opened", path=str(path), encrypted=store.encrypted)
        from symphony.pit.stale import StaleManager

        self._stale = StaleManager(service.store)
        self._service = service
        try:
            started = daemon.start_service(self.maintain)
        except RuntimeError:  # the daemon's TaskGroup has finished: it is stopping
            started = False
        if started:
            self._subscription = daemon.bus.subscribe(["connection/closed"], self._on_closed)
        return service

    def _on_closed(self, event: Event) -> None:
        # Called by the bus on the event loop's thread; must not block.
        data = event.data if isinstance(event.data, dict) else {}
        client_id = data.get("clientId")
        if isinstance(client_id, str):
            self._closed_owners.add(client_id)
        self._connections_changed.set()
        self._wake.set()

    # -- background work -------------------------------------------------------------------------

    async def maintain(self) -> None:
        """The background work, until the daemon stops; then close the store. Never raises
        (an exception here would stop the daemon): failures are logged."""
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._watch_stopping())
                await self._background()
        except Exception:
            self.log.exception("pit background work stopped")
        try:
            await self._close()
        except Exception:
            self.log.exception("pit store did not close cleanly")
        finally:
            if self._subscription is not None:
                self._subscription.close()
                self._subscription = None

    async def _watch_stopping(self) -> None:
        await self._daemon.until_stopping()
        self._stopping = True
        self._wake.set()

    async def _background(self) -> None:
        loop = asyncio.get_running_loop()
        next_cycle = loop.time() + FIRST_CYCLE_AFTER
        cycling = False
        while True:
            if cycling or self._index_wanted:
                delay = SLICE_PAUSE
            else:
                delay = min(TICK, max(0.0, next_cycle - loop.time()))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            if self._stopping:
                return
            # Cleared before looking at the flags: a wake-up during the work is not lost.
            self._wake.clear()
            owners, self._closed_owners = self._closed_owners, set()
            index = self._index_wanted
            self._index_wanted = False
            run_slice = cycling or loop.time() >= next_cycle
            try:
                more, cycle_done = await self.call(self._housekeeping, owners, index, run_slice)
            except Exception:
                self.log.exception("pit background work failed")
                more, cycle_done = False, run_slice
            self._index_wanted = self._index_wanted or more
            if run_slice:
                cycling = not cycle_done
                if cycle_done:
                    next_cycle = loop.time() + CYCLE_INTERVAL

    def _housekeeping(self, owners: set[str], index: bool, run_slice: bool) -> tuple[bool, bool]:
        """One round of background work, in a worker thread: (more to index, cycle done)."""
        with self._exclusive:
            return self._housekeeping_round(owners, index, run_slice)

    def _housekeeping_round(
        self, owners: set[str], index: bool, run_slice: bool
    ) -> tuple[bool, bool]:
        service = self._service
        stale = self._stale
        assert service is not None
        assert stale is not None
        for owner in owners:
            dropped = service.abandon(owner)
            if dropped:
                self.log.info("pit uploads abandoned", client_id=owner, uploads=dropped)
        expired = service.expire(UPLOAD_IDLE)
        if expired:
            self.log.info("pit uploads expired", uploads=expired, idle=UPLOAD_IDLE)
        more = False
        if index:
            more = service.store.index_pending(max_bytes=INDEX_STEP_BYTES) > 0
        cycle_done = False
        if run_slice:
            cycle_done = stale.run_slice(SLICE_UNITS).cycle_done
        return more, cycle_done

    # -- closing -----------------------------------------------------------------------------------

    async def _close(self) -> None:
        daemon = self._daemon
        loop = asyncio.get_running_loop()
        deadline = loop.time() + daemon.limits.shutdown_grace + CLOSE_WAIT
        while daemon.connections and loop.time() < deadline:
            self._connections_changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(deadline - loop.time()):
                    await self._connections_changed.wait()
        await to_thread(self._close_store)

    def _close_store(self) -> None:
        service = self._service
        assert service is not None
        started = time.monotonic()
        if not self._gate.close(CLOSE_WAIT):
            self.log.warning("pit store left open: calls still running", waited=CLOSE_WAIT)
            return
        try:
            aborted = service.expire(0.0)
            if self._owned:
                service.store.checkpoint()
                service.store.close()
        except Exception:
            self.log.exception("pit store did not close cleanly")
            return
        self.log.info(
            "pit store closed",
            uploads_aborted=aborted,
            owned=self._owned,
            waited=round(time.monotonic() - started, 3),
        )
