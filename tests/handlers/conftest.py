"""Fixtures of the buffer and text-sync tests: one real daemon shared by a module's tests."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from handlers_helpers import Daemon, daemon_process


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """A real daemon listening on a Unix socket, TCP and WebSocket (a runtime dir under /tmp:
    a Unix socket path must fit in 108 bytes)."""
    runtime = Path(tempfile.mkdtemp(prefix="sy-h-", dir="/tmp"))
    workspace = tmp_path_factory.mktemp("buffers") / "workspace"
    workspace.mkdir()
    args = ["--unix", "--tcp", "127.0.0.1:0", "--ws", "127.0.0.1:0"]
    try:
        with daemon_process(args, workspace=workspace, runtime_dir=runtime) as process:
            addresses, token = process.ready()
            yield Daemon(process, workspace, addresses, token)
            assert process.errors() == []
    finally:
        shutil.rmtree(runtime, ignore_errors=True)
