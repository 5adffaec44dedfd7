"""Where a workspace's daemon can be found: the runtime directory and the discovery file.

One daemon serves one workspace. While it listens on a socket it keeps a small JSON file in the
user's runtime directory, named after a hash of the workspace's real path::

    $XDG_RUNTIME_DIR/symphony/<16 hex>.json      (or /tmp/symphony-<uid>/ without XDG)
    {"pid": 4242, "workspace": "/home/me/proj", "version": "0.1.0", "startedAt": 1.7e9,
     "addresses": {"unix": "/run/user/1000/symphony/<16 hex>.sock", "tcp": "127.0.0.1:7420",
                   "ws": "ws://127.0.0.1:7421/"},
     "token": "..."}

The directory is 0700 and the file 0600 (it holds the token that TCP and WebSocket clients must
present), created with those modes rather than chmod-ed after, and written atomically (temp file
then rename) so a reader never sees half a file. The daemon removes it on exit; a file whose pid
is no longer alive is stale and ignored (``read_discovery`` returns None).

``symphony status``, ``stop`` and ``attach`` use this module; it imports nothing heavy so
that ``attach`` stays fast.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DiscoveryInfo",
    "default_unix_path",
    "discovery_path",
    "pid_alive",
    "read_discovery",
    "remove_discovery",
    "runtime_dir",
    "workspace_key",
    "write_discovery",
]


@dataclass(frozen=True, slots=True)
class DiscoveryInfo:
    """What the discovery file says about a running daemon."""

    pid: int
    workspace: str
    version: str
    started_at: float
    token: str
    addresses: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "workspace": self.workspace,
            "version": self.version,
            "startedAt": self.started_at,
            "addresses": dict(self.addresses),
            "token": self.token,
        }

    @classmethod
    def from_json(cls, obj: Any) -> DiscoveryInfo:
        """Parse a discovery file's content; ``ValueError`` if it is not one."""
        if not isinstance(obj, dict):
            raise ValueError("a discovery file holds a JSON object")
        try:
            addresses = obj.get("addresses", {})
            info = cls(
                pid=int(obj["pid"]),
                workspace=str(obj["workspace"]),
                version=str(obj["version"]),
                started_at=float(obj["startedAt"]),
                token=str(obj["token"]),
                addresses={str(k): str(v) for k, v in addresses.items()},
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"not a Symphony discovery file: {exc}") from exc
        return info


def runtime_dir(*, create: bool = True) -> Path:
    """The per-user directory for sockets and discovery files (0700, owned by us).

    ``$XDG_RUNTIME_DIR/symphony`` when XDG_RUNTIME_DIR names a directory, else
    ``$TMPDIR/symphony-<uid>``. A directory owned by someone else is refused (``PermissionError``):
    another user could read our token or plant a socket there.
    """
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isdir(xdg):
        path = Path(xdg) / "symphony"
    else:
        path = Path(tempfile.gettempdir()) / f"symphony-{os.getuid()}"
    if create:
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=0o700, parents=False)
    if path.exists():
        info = path.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            raise PermissionError(
                f"{path} is not a directory owned by this user; refusing to use it"
            )
        if stat.S_IMODE(info.st_mode) & 0o077:
            path.chmod(0o700)
    return path


def workspace_key(workspace: str | os.PathLike[str]) -> str:
    """A short stable name for a workspace: the hash of its real path."""
    real = os.path.realpath(os.fspath(workspace))
    return hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def discovery_path(workspace: str | os.PathLike[str], *, directory: Path | None = None) -> Path:
    """The discovery file of a workspace's daemon."""
    return (directory or runtime_dir()) / f"{workspace_key(workspace)}.json"


def default_unix_path(workspace: str | os.PathLike[str], *, directory: Path | None = None) -> Path:
    """The Unix socket a workspace's daemon listens on by default."""
    return (directory or runtime_dir()) / f"{workspace_key(workspace)}.sock"


def write_discovery(path: Path, info: DiscoveryInfo) -> None:
    """Write the discovery file atomically, mode 0600 from creation."""
    data = json.dumps(info.to_json(), indent=2).encode("utf-8")
    fd, tmp = tempfile.mkstemp(prefix=".discovery-", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates the file 0600 already; say so for readers of this code.
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_discovery(
    workspace: str | os.PathLike[str], *, directory: Path | None = None
) -> DiscoveryInfo | None:
    """The running daemon of this workspace, or None (no file, unreadable, or its pid is dead)."""
    path = discovery_path(workspace, directory=directory)
    try:
        info = DiscoveryInfo.from_json(json.loads(path.read_bytes()))
    except (OSError, ValueError):
        return None
    return info if pid_alive(info.pid) else None


def remove_discovery(path: Path, pid: int) -> None:
    """Remove the discovery file if it is still ours (another daemon may have replaced it)."""
    try:
        info = DiscoveryInfo.from_json(json.loads(path.read_bytes()))
    except (OSError, ValueError):
        return
    if info.pid == pid:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (a zombie counts as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            # Field 3 is the state; Z is a zombie (exited, not yet reaped).
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True
