"""RPC benchmark: the Symphony daemon side by side with Neovim, one run.

    ./dev bench rpc                 # the full run (about a minute on 2 cores)
    ./dev bench rpc --quick         # fewer requests: a smoke run of every measure
    ./dev bench rpc --json out.json # also write the numbers as JSON

Both servers are driven by the same style of client: plain blocking ``os.read``/``os.write`` on
pipes or a socket, no asyncio, no pynvim, every request encoded before its timer starts and
every reply decoded (msgpack's C unpacker for Neovim, ``json.loads`` plus a Content-Length
scan for Symphony). Neovim is ``nvim --embed --headless --clean -n`` speaking msgpack-rpc on
its stdio; Symphony is ``symphony serve --stdio`` (LSP framing on its stdio) and, for the
socket rows, ``symphony serve --unix``.

1. **Round trip** (sequential, 5,000 requests, p50/p99): a one-character insert at a random
   position of a 100,000-line buffer, ``nvim_buf_set_text`` vs ``symphony/buffer/edit`` (each
   edit based on the revision the previous one returned), and a trivial request for reference
   (``nvim_get_current_buf`` vs ``symphony/ping``). Both servers get the same positions; at
   the end their buffers must hold the same text (checked).
2. **Pipelined throughput**: the same edits (and pings), 1,000 requests kept in flight (the
   client writes ahead as replies come back), requests per second. The client's own decoding
   of the reply stream is timed afterwards and printed, so a client-bound number would show.
3. **Spawn to first answer**: a cold ``symphony serve --stdio`` answering ``initialize``;
   ``symphony attach`` (a new process each time) answering ``initialize`` through a warm
   daemon; Neovim answering ``nvim_get_api_info``. Median of several spawns, worst shown.
4. **didChange fan-out** (Symphony only): 10 clients on the Unix socket subscribe to a buffer
   (with utf-16, utf-8 and utf-32 position encodings), an 11th edits it; per edit and
   subscriber, the time from writing the edit to that subscriber's socket delivering its
   ``symphony/buffer/didChange``. The subscribers are read by one thread polling all eleven
   sockets and each read is timestamped before its bytes are decoded.

Acceptance (issue 3): p50 round trip at most 4x Neovim's; pipelined throughput at least 1/6 of
Neovim's (judged for edits and for pings: the issue's Neovim figure, ~250k req/s, is a trivial
request's); cold initialize within 400 ms (median of the spawns); attach within 100 ms; fan-out
p99 under 10 ms. Rows judged against them print PASS or FAIL, and the exit status is 1 if any
failed. Until the
daemon serves ``symphony/buffer/edit``, the edit rows are replaced by the ping rows, labelled
so, and the fan-out row is skipped with a note.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import random
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import msgpack

LINES = 100_000
SEQUENTIAL = 5_000
PIPELINED = 50_000
WINDOW = 1_000
SPAWNS = 5
#: Turns the servers take in each round-trip measure (see ``run_round_trips``).
ROUNDS = 5
SUBSCRIBERS = 10
FANOUT_EDITS = 300
#: Seconds any one phase may take before the bench gives up on a server that stopped answering.
PHASE_TIMEOUT = 120
READ_SIZE = 1 << 20
SEED = 3

ENCODINGS = ("utf-16", "utf-8", "utf-32")


# -- wire formats --------------------------------------------------------------------------------


class LspDecoder:
    """LSP base protocol: ``Content-Length`` headers, JSON bodies. ``feed`` returns whole messages."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[Any]:
        buffer = self._buffer + data if self._buffer else data
        messages: list[Any] = []
        pos = 0
        while True:
            header_end = buffer.find(b"\r\n\r\n", pos)
            if header_end < 0:
                break
            length = -1
            for line in buffer[pos:header_end].split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length < 0:
                raise ValueError(f"no Content-Length in {buffer[pos:header_end]!r}")
            start = header_end + 4
            end = start + length
            if end > len(buffer):
                break
            messages.append(json.loads(buffer[start:end]))
            pos = end
        self._buffer = buffer[pos:]
        return messages


def lsp_frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def lsp_request(request_id: int, method: str, params: Any) -> bytes:
    return lsp_frame({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})


def lsp_notification(method: str, params: Any) -> bytes:
    return lsp_frame({"jsonrpc": "2.0", "method": method, "params": params})


class MsgpackDecoder:
    """msgpack-rpc: a stream of msgpack arrays, no framing."""

    def __init__(self) -> None:
        self._unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)

    def feed(self, data: bytes) -> list[Any]:
        self._unpacker.feed(data)
        return list(self._unpacker)


def nvim_request(request_id: int, method: str, args: list[Any]) -> bytes:
    return msgpack.packb([0, request_id, method, args])  # type: ignore[no-any-return]


# -- the raw blocking client ----------------------------------------------------------------------


class Channel:
    """One peer over a pair of file descriptors (a child's pipes, or a socket used for both).

    Reads and writes are plain blocking system calls; a stuck server is caught by ``deadline``
    (SIGALRM), not by a timeout on every read, so the sequential loop pays for exactly one
    ``write`` and one ``read`` per round trip on both sides.
    """

    def __init__(self, rfd: int, wfd: int, decoder: LspDecoder | MsgpackDecoder, keep: Any = None):
        self.rfd = rfd
        self.wfd = wfd
        self.decoder = decoder
        self.pending: deque[Any] = deque()
        self._keep = keep  # the socket object, so it is not closed under us

    @classmethod
    def unix(cls, path: str) -> Channel:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        return cls(sock.fileno(), sock.fileno(), LspDecoder(), keep=sock)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.wfd, view) :]

    def next(self) -> Any:
        while not self.pending:
            data = os.read(self.rfd, READ_SIZE)
            if not data:
                raise ConnectionError("the server closed the connection")
            self.pending.extend(self.decoder.feed(data))
        return self.pending.popleft()

    def close(self) -> None:
        if self._keep is not None:
            self._keep.close()


class LspPeer:
    """A Symphony connection: requests by id, notifications kept for whoever asks."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.notifications: deque[dict[str, Any]] = deque()
        self._next_id = 1

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def reply(self, request_id: int) -> dict[str, Any]:
        while True:
            message = self.channel.next()
            if "method" in message:
                self.notifications.append(message)
            elif message.get("id") == request_id:
                return message  # type: ignore[no-any-return]
            else:
                raise RuntimeError(f"unexpected reply while waiting for {request_id}: {message}")

    def call(self, method: str, params: Any = None) -> Any:
        request_id = self.new_id()
        self.channel.write(lsp_request(request_id, method, params))
        reply = self.reply(request_id)
        if "error" in reply:
            raise RuntimeError(f"{method} failed: {reply['error']}")
        return reply.get("result")

    def notify(self, method: str, params: Any = None) -> None:
        self.channel.write(lsp_notification(method, params))

    def initialize(self, encoding: str = "utf-16") -> dict[str, Any]:
        result = self.call(
            "initialize",
            {
                "processId": os.getpid(),
                "clientInfo": {"name": "bench/rpc.py"},
                "capabilities": {"general": {"positionEncodings": [encoding]}},
            },
        )
        self.notify("initialized", {})
        return result  # type: ignore[no-any-return]

    def shutdown(self) -> None:
        self.call("shutdown")
        self.notify("exit")


class NvimPeer:
    """A Neovim connection over msgpack-rpc."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self._next_id = 0

    def call(self, method: str, *args: Any) -> Any:
        self._next_id += 1
        self.channel.write(nvim_request(self._next_id, method, list(args)))
        while True:
            message = self.channel.next()
            if message[0] == 1 and message[1] == self._next_id:
                if message[2] is not None:
                    raise RuntimeError(f"{method} failed: {message[2]}")
                return message[3]


@contextlib.contextmanager
def deadline(seconds: int, what: str) -> Iterator[None]:
    """Fail the bench (instead of hanging) if ``what`` takes longer than ``seconds``."""

    def expired(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"{what}: no progress within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# -- server processes -----------------------------------------------------------------------------


class Server:
    """A child process whose stderr is kept (its tail explains a failure) and watched for the
    daemon's ``ready`` log line."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], *, stdio: bool) -> None:
        self.argv = list(argv)
        self.spawned_ns = time.perf_counter_ns()
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE if stdio else subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdio else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
        )
        self.stderr_tail: deque[str] = deque(maxlen=40)
        self.ready = threading.Event()
        self.addresses: dict[str, str] = {}
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()

    def channel(self, decoder: LspDecoder | MsgpackDecoder) -> Channel:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        return Channel(self.proc.stdout.fileno(), self.proc.stdin.fileno(), decoder)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.stderr_tail.append(line)
            if not self.ready.is_set() and '"ready"' in line:
                with contextlib.suppress(ValueError):
                    entry = json.loads(line)
                    if entry.get("event") == "ready":
                        self.addresses = dict(entry.get("addresses") or {})
                        self.ready.set()
        self.ready.set()  # the process ended: whoever waits must look at it

    def wait_ready(self, timeout: float = 30.0) -> dict[str, str]:
        if not self.ready.wait(timeout) or not self.addresses:
            raise RuntimeError(f"{self.argv[0]} did not become ready:\n{self.tail()}")
        return self.addresses

    def tail(self) -> str:
        return "\n".join(self.stderr_tail)

    def stop(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._reader.join(10)


@dataclass
class Setup:
    symphony: str
    nvim: str
    env: dict[str, str]
    workspace: Path
    runtime_dir: Path

    def serve(self, *args: str, stdio: bool) -> Server:
        argv = [self.symphony, "serve", "--workspace", str(self.workspace), "--log-format", "json"]
        return Server([*argv, *args], self.env, stdio=stdio)

    def nvim_server(self) -> Server:
        return Server([self.nvim, "--embed", "--headless", "--clean", "-n"], self.env, stdio=True)


def find_symphony() -> str:
    beside = Path(sys.executable).with_name("symphony")
    if beside.exists():
        return str(beside)
    found = shutil.which("symphony")
    if found is None:
        raise SystemExit("bench/rpc.py: no `symphony` command (run it with ./dev bench rpc)")
    return found


# -- workloads ------------------------------------------------------------------------------------


def make_lines(count: int, rng: random.Random) -> list[str]:
    words = ["def", "return", "self", "value", "for", "in", "if", "else", "import", "x", "count"]
    return [
        "    " * (i % 4) + " ".join(rng.choice(words) for _ in range(rng.randrange(2, 10)))
        for i in range(count)
    ]


def edit_positions(lines: list[str], count: int, rng: random.Random) -> list[tuple[int, int]]:
    """Random (line, column) insert points. Only insertions follow, so columns stay valid; the
    lines are ASCII, so a column is the same in bytes (Neovim) and UTF-16 units (Symphony)."""
    positions = []
    for _ in range(count):
        line = rng.randrange(len(lines))
        positions.append((line, rng.randrange(len(lines[line]) + 1)))
    return positions


def nvim_edit_frames(positions: list[tuple[int, int]], first_id: int) -> list[bytes]:
    return [
        nvim_request(first_id + i, "nvim_buf_set_text", [0, line, col, line, col, ["x"]])
        for i, (line, col) in enumerate(positions)
    ]


def symphony_edit_frames(
    uri: str, positions: list[tuple[int, int]], first_id: int, revision: int
) -> list[bytes]:
    """Edit k is based on ``revision + k``: the revision edit k-1 produces (one client edits
    alone, so the daemon's revisions advance by exactly one per edit; each reply is checked)."""
    frames = []
    for i, (line, col) in enumerate(positions):
        point = {"line": line, "character": col}
        params = {
            "uri": uri,
            "baseRevision": revision + i,
            "edits": [{"range": {"start": point, "end": point}, "text": "x"}],
        }
        frames.append(lsp_request(first_id + i, "symphony/buffer/edit", params))
    return frames


def nvim_trivial_frames(count: int, first_id: int) -> list[bytes]:
    return [nvim_request(first_id + i, "nvim_get_current_buf", []) for i in range(count)]


def symphony_trivial_frames(count: int, first_id: int) -> list[bytes]:
    return [lsp_request(first_id + i, "symphony/ping", {}) for i in range(count)]


def check_nvim_reply(message: Any) -> bool:
    return bool(message[0] == 1 and message[2] is None)


def check_lsp_reply(message: Any) -> bool:
    return "result" in message


def sequential(channel: Channel, frames: list[bytes], ok: Callable[[Any], bool]) -> list[int]:
    """Round-trip times in ns, one request at a time."""
    times = []
    clock = time.perf_counter_ns
    write = channel.write
    read = channel.next
    for frame in frames:
        start = clock()
        write(frame)
        reply = read()
        times.append(clock() - start)
        if not ok(reply):
            raise RuntimeError(f"request failed: {reply}")
    return times


@dataclass
class Throughput:
    requests: int
    seconds: float
    failed: int
    decode_seconds: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def pipelined(
    channel: Channel,
    frames: list[bytes],
    ok: Callable[[Any], bool],
    new_decoder: Callable[[], LspDecoder | MsgpackDecoder],
    window: int = WINDOW,
) -> Throughput:
    """Keep ``window`` requests in flight: write ahead whenever fewer are outstanding, read
    replies as they come. Writes are non-blocking (a server busy writing replies to us must
    never wait on our write), reads happen when poll says there is something to read."""
    assert not channel.pending
    total = len(frames)
    rfd, wfd = channel.rfd, channel.wfd
    os.set_blocking(wfd, False)
    poller = select.poll()
    chunks: list[bytes] = []
    sent = received = failed = 0
    out = memoryview(b"")
    decoder = channel.decoder
    start = time.perf_counter()
    try:
        while received < total:
            if not out and sent < total and sent - received < window:
                upto = min(total, received + window)
                out = memoryview(b"".join(frames[sent:upto]))
                sent = upto
            masks: dict[int, int] = {rfd: select.POLLIN}
            if out:
                masks[wfd] = masks.get(wfd, 0) | select.POLLOUT
            for fd, mask in masks.items():
                poller.register(fd, mask)
            events = poller.poll()
            for fd in masks:
                poller.unregister(fd)
            for fd, event in events:
                if fd == wfd and event & select.POLLOUT and out:
                    with contextlib.suppress(BlockingIOError):
                        out = out[os.write(wfd, out) :]
                if fd == rfd and event & (select.POLLIN | select.POLLHUP | select.POLLERR):
                    data = os.read(rfd, READ_SIZE)
                    if not data:
                        raise ConnectionError("the server closed the connection mid-run")
                    chunks.append(data)
                    for reply in decoder.feed(data):
                        received += 1
                        if not ok(reply):
                            failed += 1
        seconds = time.perf_counter() - start
    finally:
        os.set_blocking(wfd, True)
    # What the client alone spends decoding that reply stream: if it were near ``seconds``,
    # the client, not the server, would be what this row measures.
    fresh = new_decoder()
    decode_start = time.perf_counter()
    for chunk in chunks:
        fresh.feed(chunk)
    return Throughput(total, seconds, failed, time.perf_counter() - decode_start)


def percentile(times_ns: list[int], fraction: float) -> float:
    """The ``fraction`` quantile in microseconds (nearest rank)."""
    ordered = sorted(times_ns)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index] / 1000


# -- the measures ---------------------------------------------------------------------------------


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Row:
    name: str
    unit: str
    nvim: float | None
    stdio: float | None
    unix: float | None
    target: str = ""
    verdict: str = ""


def open_symphony_buffer(peer: LspPeer, text: str) -> tuple[str, int]:
    result = peer.call("symphony/buffer/open", {"text": text, "languageId": "python"})
    return result["uri"], result["revision"]


def symphony_text(peer: LspPeer, uri: str) -> str:
    return peer.call("symphony/buffer/getText", {"uri": uri})["text"]  # type: ignore[no-any-return]


@dataclass
class Contender:
    """One server in the round-trip runs, with every request it will be sent, by measure."""

    name: str
    server: Server
    channel: Channel
    ok: Callable[[Any], bool]
    new_decoder: Callable[[], LspDecoder | MsgpackDecoder]
    frames: dict[str, list[bytes]]
    final_text: Callable[[], str]
    finish: Callable[[], None]


def chunks(frames: list[bytes], rounds: int) -> list[list[bytes]]:
    size = -(-len(frames) // rounds)
    return [frames[i : i + size] for i in range(0, len(frames), size)]


def start_nvim(setup: Setup, lines: list[str], seq: Any, pipe: Any) -> Contender:
    server = setup.nvim_server()
    peer = NvimPeer(server.channel(MsgpackDecoder()))
    peer.call("nvim_buf_set_lines", 0, 0, -1, True, lines)
    base = 1_000_000
    frames = {
        "trivial": nvim_trivial_frames(len(seq), base),
        "edit": nvim_edit_frames(seq, 2 * base),
        "pipe_edit": nvim_edit_frames(pipe, 3 * base),
        "pipe_trivial": nvim_trivial_frames(len(pipe), 4 * base),
    }
    return Contender(
        "nvim",
        server,
        peer.channel,
        check_nvim_reply,
        MsgpackDecoder,
        frames,
        lambda: "\n".join(peer.call("nvim_buf_get_lines", 0, 0, -1, True)),
        lambda: None,
    )


def start_symphony(
    setup: Setup, transport: str, text: str, seq: Any, pipe: Any, has_edit: bool
) -> Contender:
    if transport == "stdio":
        server = setup.serve("--stdio", stdio=True)
        channel = server.channel(LspDecoder())
    else:
        socket_path = str(setup.runtime_dir / "bench.sock")
        server = setup.serve("--unix", socket_path, stdio=False)
        server.wait_ready()
        channel = Channel.unix(socket_path)
    lsp = LspPeer(channel)
    lsp.initialize()
    base = 1_000_000
    frames = {
        "trivial": symphony_trivial_frames(len(seq), base),
        "pipe_trivial": symphony_trivial_frames(len(pipe), 4 * base),
    }
    uri = ""
    if has_edit:
        uri, revision = open_symphony_buffer(lsp, text)
        frames["edit"] = symphony_edit_frames(uri, seq, 2 * base, revision)
        frames["pipe_edit"] = symphony_edit_frames(uri, pipe, 3 * base, revision + len(seq))
    return Contender(
        transport,
        server,
        channel,
        check_lsp_reply,
        LspDecoder,
        frames,
        lambda: symphony_text(lsp, uri),
        lsp.shutdown,
    )


def run_round_trips(
    setup: Setup, args: argparse.Namespace, results: Results, has_edit: bool
) -> dict[str, Any]:
    """Sequential and pipelined runs against Neovim, Symphony on stdio and on its Unix socket.

    The three servers run side by side and take turns: each measure is cut into ``rounds``
    chunks, and every round gives each server one chunk (in a rotating order), so load on the
    machine from anything else falls on all three alike."""
    rng = random.Random(SEED)
    lines = make_lines(args.lines, rng)
    seq = edit_positions(lines, args.sequential, rng)
    pipe = edit_positions(lines, args.pipelined, rng)
    contenders: list[Contender] = []
    try:
        with deadline(PHASE_TIMEOUT, "starting the servers"):
            contenders.append(start_nvim(setup, lines, seq, pipe))
            for transport in ("stdio", "unix"):
                contenders.append(
                    start_symphony(setup, transport, "\n".join(lines), seq, pipe, has_edit)
                )
        measures = ["trivial", "pipe_trivial"]
        if has_edit:
            measures += ["edit", "pipe_edit"]
        out: dict[str, dict[str, Any]] = {c.name: {} for c in contenders}
        for measure in measures:
            split = {c.name: chunks(c.frames[measure], args.rounds) for c in contenders}
            for round_ in range(args.rounds):
                turn = contenders[round_ % 3 :] + contenders[: round_ % 3]
                for c in turn:
                    frames = split[c.name][round_]
                    with deadline(PHASE_TIMEOUT, f"{c.name}: {measure}"):
                        if measure.startswith("pipe"):
                            run = pipelined(c.channel, frames, c.ok, c.new_decoder)
                            out[c.name][measure] = merge(out[c.name].get(measure), run)
                        else:
                            times = sequential(c.channel, frames, c.ok)
                            out[c.name].setdefault(measure, []).extend(times)
        if has_edit:
            with deadline(PHASE_TIMEOUT, "reading the final texts"):
                texts = {c.name: c.final_text() for c in contenders}
            if len(set(texts.values())) != 1:
                raise RuntimeError("Neovim and Symphony applied the same edits; texts differ")
            results.notes.append(
                "after the edits Neovim's and both Symphony daemons' buffers hold the same text"
            )
        for c in contenders[1:]:
            with deadline(30, f"{c.name}: shutdown"):
                c.finish()
        return out
    except Exception:
        for c in contenders[1:]:
            print(f"symphony ({c.name}) stderr:\n{c.server.tail()}", file=sys.stderr)
        raise
    finally:
        for c in contenders:
            c.channel.close()
            c.server.stop()


def merge(total: Throughput | None, run: Throughput) -> Throughput:
    if total is None:
        return run
    return Throughput(
        total.requests + run.requests,
        total.seconds + run.seconds,
        total.failed + run.failed,
        total.decode_seconds + run.decode_seconds,
    )


def first_lsp_answer(server: Server) -> float:
    """Write ``initialize`` right after spawning; ms from spawn to its reply."""
    channel = server.channel(LspDecoder())
    lsp = LspPeer(channel)
    lsp.initialize()
    elapsed = (time.perf_counter_ns() - server.spawned_ns) / 1e6
    lsp.shutdown()
    return elapsed


def run_spawns(setup: Setup, args: argparse.Namespace, results: Results) -> dict[str, Any]:
    out: dict[str, Any] = {"serve": [], "attach": [], "nvim": []}
    with deadline(PHASE_TIMEOUT, "spawn timings"):
        for _ in range(args.spawns):
            server = Server(
                [setup.nvim, "--embed", "--headless", "--clean", "-n"], setup.env, stdio=True
            )
            try:
                NvimPeer(server.channel(MsgpackDecoder())).call("nvim_get_api_info")
                out["nvim"].append((time.perf_counter_ns() - server.spawned_ns) / 1e6)
            finally:
                server.stop()
            server = setup.serve("--stdio", stdio=True)
            try:
                out["serve"].append(first_lsp_answer(server))
                if server.proc.wait(10) != 0:
                    raise RuntimeError(f"serve --stdio exited badly:\n{server.tail()}")
            finally:
                server.stop()

        attach = attach_command(setup, results)
        if attach is None:
            out["attach"] = None
            return out
        daemon = setup.serve("--unix", stdio=False)
        try:
            daemon.wait_ready()
            for _ in range(args.spawns):
                bridge = Server(
                    [*attach, "--workspace", str(setup.workspace), "--no-start"],
                    setup.env,
                    stdio=True,
                )
                try:
                    out["attach"].append(first_lsp_answer(bridge))
                finally:
                    bridge.stop()
        finally:
            daemon.stop()
    return out


def attach_command(setup: Setup, results: Results) -> list[str] | None:
    """``symphony attach``, or None (with a note) if this ``symphony`` has no such command."""
    command = [setup.symphony, "attach"]
    probe = subprocess.run([*command, "--help"], capture_output=True, env=setup.env, check=False)
    if probe.returncode != 0:
        results.notes.append("`symphony attach` is not available: attach row skipped")
        return None
    return command


def run_fanout(setup: Setup, args: argparse.Namespace, results: Results) -> dict[str, Any]:
    """One editor, ``SUBSCRIBERS`` subscribers, all on the Unix socket of one daemon."""
    socket_path = str(setup.runtime_dir / "fanout.sock")
    daemon = setup.serve("--unix", socket_path, stdio=False)
    peers: list[LspPeer] = []
    try:
        daemon.wait_ready()
        rng = random.Random(SEED + 1)
        lines = make_lines(1_000, rng)
        positions = edit_positions(lines, args.fanout_edits, rng)
        with deadline(PHASE_TIMEOUT, "fan-out"):
            editor = LspPeer(Channel.unix(socket_path))
            peers.append(editor)
            editor.initialize()
            uri, revision = open_symphony_buffer(editor, "\n".join(lines))
            subscribers = []
            for i in range(args.subscribers):
                peer = LspPeer(Channel.unix(socket_path))
                peers.append(peer)
                peer.initialize(ENCODINGS[i % len(ENCODINGS)])
                peer.call("symphony/buffer/subscribe", {"uri": uri})
                subscribers.append(peer)
            frames = symphony_edit_frames(uri, positions, 10_000_000, revision)
            latencies, dropped = fanout_loop(editor, subscribers, frames, revision)
        return {"latencies": latencies, "dropped": dropped}
    except Exception:
        print(f"symphony (fan-out) stderr:\n{daemon.tail()}", file=sys.stderr)
        raise
    finally:
        for peer in peers:
            peer.channel.close()
        daemon.stop()


def fanout_loop(
    editor: LspPeer, subscribers: list[LspPeer], frames: list[bytes], revision: int
) -> tuple[list[int], int]:
    by_fd = {peer.channel.rfd: peer for peer in subscribers}
    poller = select.poll()
    for fd in by_fd:
        poller.register(fd, select.POLLIN)
    poller.register(editor.channel.rfd, select.POLLIN)
    # Anything a subscriber already holds (nothing is expected) is not part of a measurement.
    for peer in subscribers:
        peer.notifications.clear()
    latencies: list[int] = []
    dropped = 0
    clock = time.perf_counter_ns
    for k, frame in enumerate(frames):
        expected = revision + k + 1
        waiting = set(by_fd)
        replied = False
        start = clock()
        editor.channel.write(frame)
        while waiting or not replied:
            for fd, _event in poller.poll(30_000) or _stalled(expected):
                arrived = clock()
                data = os.read(fd, READ_SIZE)
                if not data:
                    raise ConnectionError("a connection closed during the fan-out run")
                if fd == editor.channel.rfd:
                    for message in editor.channel.decoder.feed(data):
                        if "method" in message:
                            continue
                        if "result" not in message:
                            raise RuntimeError(f"edit failed: {message}")
                        if message["result"]["revision"] != expected:
                            raise RuntimeError(f"edit made revision {message['result']}")
                        replied = True
                    continue
                for message in by_fd[fd].channel.decoder.feed(data):
                    method = message.get("method")
                    if method == "symphony/eventsDropped":
                        dropped += message["params"]["count"]
                    elif (
                        method == "symphony/buffer/didChange"
                        and message["params"]["revision"] == expected
                    ):
                        latencies.append(arrived - start)
                        waiting.discard(fd)
    return latencies, dropped


def _stalled(revision: int) -> list[tuple[int, int]]:
    raise TimeoutError(f"fan-out: revision {revision} not delivered within 30 s")


# -- report ---------------------------------------------------------------------------------------


def judge(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def build_rows(
    round_trips: dict[str, Any],
    spawns: dict[str, Any],
    fanout: dict[str, Any] | None,
    has_edit: bool,
    results: Results,
) -> None:
    nvim, stdio, unix = round_trips["nvim"], round_trips["stdio"], round_trips["unix"]
    rows = results.rows

    def latency_rows(key: str, label: str, judged: bool) -> None:
        p50 = Row(
            f"{label} p50",
            "µs",
            percentile(nvim[key], 0.5),
            percentile(stdio[key], 0.5),
            percentile(unix[key], 0.5),
        )
        if judged:
            assert p50.nvim is not None
            assert p50.stdio is not None
            p50.target = "≤ 4x Neovim"
            p50.verdict = judge(p50.stdio <= 4 * p50.nvim)
        rows.append(p50)
        rows.append(
            Row(
                f"{label} p99",
                "µs",
                percentile(nvim[key], 0.99),
                percentile(stdio[key], 0.99),
                percentile(unix[key], 0.99),
            )
        )

    def rate_row(key: str, label: str, judged: bool) -> None:
        row = Row(label, "req/s", nvim[key].rate, stdio[key].rate, unix[key].rate)
        if judged:
            assert row.nvim is not None
            assert row.stdio is not None
            row.target = "≥ 1/6 Neovim"
            row.verdict = judge(row.stdio * 6 >= row.nvim)
        rows.append(row)
        for name, run in (("Neovim", nvim[key]), ("stdio", stdio[key]), ("unix", unix[key])):
            if run.failed:
                results.notes.append(f"{label}, {name}: {run.failed} requests answered an error")
            share = run.decode_seconds / run.seconds
            results.notes.append(
                f"{label}, {name}: the client spent {run.decode_seconds * 1000:.0f} ms "
                f"({share:.0%} of the run) decoding replies"
            )

    if has_edit:
        latency_rows("edit", "round trip, 1-char edit", judged=True)
        latency_rows("trivial", "round trip, ping / get_current_buf", judged=False)
        rate_row("pipe_edit", f"pipelined 1-char edits, {WINDOW} in flight", judged=True)
        # Judged too: the Neovim figure (~250k req/s) is that of a trivial request.
        rate_row("pipe_trivial", f"pipelined pings, {WINDOW} in flight", judged=True)
    else:
        results.notes.append(
            "the daemon does not serve symphony/buffer/edit yet: round trip and throughput are "
            "judged on symphony/ping vs nvim_get_current_buf"
        )
        latency_rows("trivial", "round trip, PING (no buffer API yet)", judged=True)
        rate_row("pipe_trivial", f"pipelined PINGS, {WINDOW} in flight", judged=True)

    serve = statistics.median(spawns["serve"])
    nvim_spawn = statistics.median(spawns["nvim"])
    rows.append(
        Row(
            "spawn → first answer, median",
            "ms",
            nvim_spawn,
            serve,
            None,
            "serve ≤ 400 ms",
            judge(serve <= 400),
        )
    )
    rows.append(
        Row("spawn → first answer, worst", "ms", max(spawns["nvim"]), max(spawns["serve"]), None)
    )
    if spawns["attach"] is not None:
        attach = statistics.median(spawns["attach"])
        rows.append(
            Row(
                "attach (warm daemon) → initialize, median",
                "ms",
                None,
                None,
                attach,
                "≤ 100 ms",
                judge(attach <= 100),
            )
        )
        rows.append(
            Row("attach (warm daemon) → initialize, worst", "ms", None, None, max(spawns["attach"]))
        )
    if fanout is not None:
        p99 = percentile(fanout["latencies"], 0.99)
        rows.append(
            Row(
                f"didChange fan-out to {SUBSCRIBERS} p50",
                "µs",
                None,
                None,
                percentile(fanout["latencies"], 0.5),
            )
        )
        rows.append(
            Row(
                f"didChange fan-out to {SUBSCRIBERS} p99",
                "µs",
                None,
                None,
                p99,
                "< 10 ms",
                judge(p99 < 10_000),
            )
        )
        if fanout["dropped"]:
            results.notes.append(f"fan-out: {fanout['dropped']} didChange events were dropped")


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def ratio(row: Row) -> str:
    if row.nvim is None or row.stdio is None or row.nvim == 0:
        return "-"
    return f"{row.stdio / row.nvim:.2f}x"


def print_table(results: Results, header: str) -> None:
    columns = ["measure", "unit", "Neovim", "Symphony stdio", "Symphony unix", "stdio/Neovim"]
    columns += ["target", "result"]
    table = [columns]
    for row in results.rows:
        table.append(
            [
                row.name,
                row.unit,
                fmt(row.nvim),
                fmt(row.stdio),
                fmt(row.unix),
                ratio(row),
                row.target,
                row.verdict,
            ]
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    print(header)
    print()
    for n, line in enumerate(table):
        cells = [
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
            for i, cell in enumerate(line)
        ]
        print("  ".join(cells).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
    if results.notes:
        print()
        for note in results.notes:
            print(f"note: {note}")


def describe_machine(nvim_version: str, symphony_version: str) -> str:
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"bench/rpc.py, {now}\n"
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs ({cpu}), "
        f"load average {load}\n"
        f"Python {platform.python_version()}, {nvim_version}, symphony {symphony_version}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests (a smoke run)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    args.lines = LINES
    args.sequential = 500 if args.quick else SEQUENTIAL
    args.pipelined = 5_000 if args.quick else PIPELINED
    args.spawns = 2 if args.quick else SPAWNS
    args.rounds = ROUNDS
    args.subscribers = SUBSCRIBERS
    args.fanout_edits = 50 if args.quick else FANOUT_EDITS

    nvim_path = shutil.which("nvim")
    if nvim_path is None:
        raise SystemExit("bench/rpc.py: no `nvim` on PATH (apt-get install neovim)")
    runtime_dir = Path(tempfile.mkdtemp(prefix="sy-bench-", dir="/tmp"))
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime_dir)}
    env.pop("SYMPHONY_TOKEN", None)
    workspace = runtime_dir / "workspace"
    workspace.mkdir()
    setup = Setup(find_symphony(), nvim_path, env, workspace, runtime_dir)
    results = Results()
    try:
        probe = setup.serve("--stdio", stdio=True)
        try:
            lsp = LspPeer(probe.channel(LspDecoder()))
            with deadline(30, "probing the daemon"):
                init = lsp.initialize()
                lsp.shutdown()
        finally:
            probe.stop()
        methods = init["capabilities"].get("experimental", {}).get("symphony", {}).get("methods")
        has_edit = "symphony/buffer/edit" in (methods or [])
        symphony_version = init.get("serverInfo", {}).get("version", "?")
        nvim_version = subprocess.run(
            [nvim_path, "--version"], capture_output=True, text=True, check=True
        ).stdout.splitlines()[0]

        round_trips = run_round_trips(setup, args, results, has_edit)
        spawns = run_spawns(setup, args, results)
        fanout = None
        if has_edit:
            fanout = run_fanout(setup, args, results)
        else:
            results.notes.append("fan-out skipped: the daemon has no buffer API yet")
    finally:
        shutil.rmtree(runtime_dir, ignore_errors=True)

    build_rows(round_trips, spawns, fanout, has_edit, results)
    print_table(results, describe_machine(nvim_version, symphony_version))
    if args.json:
        payload = {
            "machine": describe_machine(nvim_version, symphony_version),
            "rows": [row.__dict__ for row in results.rows],
            "notes": results.notes,
        }
        Path(args.json).write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    return 1 if any(row.verdict == "FAIL" for row in results.rows) else 0


if __name__ == "__main__":
    sys.exit(main())
