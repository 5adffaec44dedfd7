"""Fixtures of the end-to-end tests: a private runtime directory, a workspace, Neovim."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_helpers import Nvim


@pytest.fixture
def runtime_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private ``$XDG_RUNTIME_DIR`` for this test and every process it starts.

    Short, under /tmp: a Unix socket path must fit in 108 bytes, which pytest's tmp_path
    does not promise."""
    path = Path(tempfile.mkdtemp(prefix="sy-e2e-", dir="/tmp"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(path))
    monkeypatch.delenv("SYMPHONY_TOKEN", raising=False)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "workspace"
    path.mkdir()
    return path


@pytest.fixture
def nvim(tmp_path: Path, workspace: Path, runtime_dir: Path) -> Iterator[Nvim]:
    """Neovim, embedded and headless, in the workspace; killed after the test if still running."""
    process = Nvim(cwd=workspace, home=tmp_path / "nvim-home", env=dict(os.environ))
    yield process
    process.kill()
