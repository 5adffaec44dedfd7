"""Fixtures of the client tests: an isolated runtime directory, a workspace, real daemons."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from clients_helpers import DaemonProcess, LspPipe, spawn_attach, stop_workspace_daemon


@pytest.fixture
def runtime_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private ``$XDG_RUNTIME_DIR`` for this test (for us and every process we start).

    Short, under /tmp: a Unix socket path must fit in 108 bytes, which pytest's tmp_path
    does not promise."""
    path = Path(tempfile.mkdtemp(prefix="sy-", dir="/tmp"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(path))
    monkeypatch.delenv("SYMPHONY_TOKEN", raising=False)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def workspace(tmp_path: Path, runtime_dir: Path) -> Iterator[Path]:
    """A workspace directory; any daemon left running for it is stopped afterwards."""
    path = tmp_path / "workspace"
    path.mkdir()
    yield path
    stop_workspace_daemon(path)


@pytest.fixture
def start_daemon(workspace: Path) -> Iterator[Callable[..., DaemonProcess]]:
    """``start_daemon(*serve_args)``: a real daemon for ``workspace``, killed afterwards."""
    started: list[DaemonProcess] = []

    def start(*args: str) -> DaemonProcess:
        daemon = DaemonProcess(args, workspace=workspace)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.kill()


@pytest.fixture
def daemon(start_daemon: Callable[..., DaemonProcess]) -> DaemonProcess:
    """A ready daemon listening on the default Unix socket, TCP and WebSocket."""
    process = start_daemon("--unix", "--tcp", "127.0.0.1:0", "--ws", "127.0.0.1:0")
    process.wait_ready()
    return process


@pytest.fixture(scope="module")
def shared_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    """One daemon (Unix socket, TCP, WebSocket) for the tests of a module that only talk to it:
    starting a daemon per test would cost most of the suite's time. Its runtime directory is
    ``$XDG_RUNTIME_DIR`` for the whole module; ``shared_daemon.workspace`` is its workspace."""
    with pytest.MonkeyPatch.context() as patch:
        directory = Path(tempfile.mkdtemp(prefix="sy-", dir="/tmp"))
        patch.setenv("XDG_RUNTIME_DIR", str(directory))
        patch.delenv("SYMPHONY_TOKEN", raising=False)
        workspace = tmp_path_factory.mktemp("shared") / "workspace"
        workspace.mkdir()
        process = DaemonProcess(
            ["--unix", "--tcp", "127.0.0.1:0", "--ws", "127.0.0.1:0"], workspace=workspace
        )
        try:
            process.wait_ready()
            yield process
        finally:
            process.kill()
            shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def attach(workspace: Path) -> Iterator[Callable[..., LspPipe]]:
    """``attach(*args)``: a `symphony attach` process for ``workspace``, as an editor spawns it
    (its stdio is the LSP conversation); killed and its pipes closed afterwards."""
    pipes: list[LspPipe] = []

    def start(*args: str) -> LspPipe:
        pipe = LspPipe(spawn_attach(workspace, *args))
        pipes.append(pipe)
        return pipe

    yield start
    for pipe in pipes:
        pipe.close()
