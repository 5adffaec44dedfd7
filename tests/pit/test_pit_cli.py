"""`symphony artifact ...` and `symphony pit ...`.

The byte-exactness of ``put``/``get``, stdin and the key from the environment are checked
through real subprocesses; the other commands run in-process (same parser, same code, real
store on disk) to keep the suite fast, since each subprocess pays an interpreter start-up.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from symphony.clients import _cli, _cli_pit

# Until `symphony.clients._cli_pit` is registered in `symphony`'s command list, run its own
# parser (the same `register` function builds both).
if "symphony.clients._cli_pit" in _cli._COMMAND_MODULES:
    COMMAND = [sys.executable, "-m", "symphony"]
else:
    COMMAND = [
        sys.executable,
        "-c",
        "import sys; from symphony.clients._cli_pit import main; sys.exit(main(sys.argv[1:]))",
    ]


def run(
    cwd: Path, *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*COMMAND, *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return tmp_path


class _Result:
    def __init__(self, returncode: int, stdout: bytes, stderr: bytes) -> None:
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


@pytest.fixture
def cli(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> Callable[..., _Result]:
    """Run the commands in this process, in ``workspace``, capturing bytes."""
    monkeypatch.chdir(workspace)

    def call(*args: str) -> _Result:
        try:
            status = _cli_pit.main(list(args))
        except SystemExit as exc:  # argparse rejects the command line
            status = exc.code if isinstance(exc.code, int) else 2
        out, err = capsysbinary.readouterr()
        return _Result(status, out, err)

    return call


def test_put_prints_the_content_id_last_and_get_writes_the_exact_bytes(
    workspace: Path, cli: Callable[..., _Result]
) -> None:
    # Every byte value, CRLF and a NUL: nothing may be translated on the way out.
    data = bytes(range(256)) * 3 + b"\r\n\x00\r" + random.Random(1).randbytes(400_000)
    (workspace / "data.bin").write_bytes(data)
    put = run(workspace, "artifact", "put", "data.bin")
    assert put.returncode == 0, put.stderr
    cid = put.stdout.decode().splitlines()[-1]
    assert cid.startswith("sha256:")
    assert (workspace / ".symphony" / "pit" / "pit.db").exists()
    got = run(workspace, "artifact", "get", cid)
    assert got.returncode == 0, got.stderr
    assert got.stdout == data
    for ref in ("data.bin", "data.bin@1", cid[:20]):
        assert cli("artifact", "get", ref).stdout == data
    out = workspace / "copy.bin"
    assert cli("artifact", "get", cid, "-o", str(out), "--verify").returncode == 0
    assert out.read_bytes() == data


def test_put_from_stdin_needs_a_name(workspace: Path) -> None:
    assert run(workspace, "artifact", "put", "-", stdin=b"x").returncode == 2
    put = run(workspace, "artifact", "put", "-", "--name", "piped", stdin=b"from stdin")
    assert put.returncode == 0
    assert run(workspace, "artifact", "get", "piped").stdout == b"from stdin"


def test_ls_log_search_stat_pin_rm(workspace: Path, cli: Callable[..., _Result]) -> None:
    (workspace / "notes.md").write_text("alpha beta gamma\n")
    assert cli("artifact", "put", "notes.md", "--tag", "docs").returncode == 0
    (workspace / "notes.md").write_text("alpha beta delta\n")
    put = cli("artifact", "put", "notes.md", "--producer", "client:cli", "--json")
    assert json.loads(put.stdout)["artifact"]["ref"] == "notes.md@2"

    ls = cli("artifact", "ls", "--json")
    assert [a["ref"] for a in json.loads(ls.stdout)] == ["notes.md@2"]
    ls_all = cli("artifact", "ls", "--all")
    assert "notes.md@1" in ls_all.stdout.decode()
    assert "notes.md@2" in ls_all.stdout.decode()

    log = json.loads(cli("artifact", "log", "notes.md", "--json").stdout)
    assert [v["version"] for v in log] == [2, 1]
    assert log[0]["parentId"] == log[1]["id"]

    hits = json.loads(cli("artifact", "search", "delta", "--json").stdout)
    assert [h["artifact"]["ref"] for h in hits] == ["notes.md@2"]
    assert cli("artifact", "search", "nonexistentword").returncode == 1

    stat = json.loads(cli("artifact", "stat", "notes.md@1", "--json").stdout)
    assert stat["tags"] == ["docs"]
    assert stat["protection"] == []

    assert cli("artifact", "pin", "notes.md@1").returncode == 0
    refused = cli("artifact", "rm", "notes.md@1")
    assert refused.returncode == 1
    assert b"protected" in refused.stderr
    assert cli("artifact", "unpin", "notes.md@1").returncode == 0
    assert cli("artifact", "rm", "notes.md@1").returncode == 0
    assert cli("artifact", "get", "notes.md@1").returncode == 1


def test_gc_dry_run_then_gc_then_fsck(workspace: Path, cli: Callable[..., _Result]) -> None:
    for i in range(5):
        (workspace / "f.txt").write_text(f"version {i}\n" * 1000)
        assert cli("artifact", "put", "f.txt").returncode == 0
    dry = json.loads(cli("pit", "gc", "--dry-run", "--keep-versions", "2", "--json").stdout)
    assert [d["ref"] for d in dry["deletedArtifacts"]] == ["f.txt@1", "f.txt@2", "f.txt@3"]
    assert len(json.loads(cli("artifact", "ls", "--all", "--json").stdout)) == 5
    gc = cli("pit", "gc", "--keep-versions", "2", "--grace", "0", "--json")
    assert gc.returncode == 0
    assert json.loads(gc.stdout)["chunksCollected"] == 3
    refs = [a["ref"] for a in json.loads(cli("artifact", "ls", "--all", "--json").stdout)]
    assert refs == ["f.txt@5", "f.txt@4"]
    fsck = cli("pit", "fsck", "--verify")
    assert fsck.returncode == 0
    assert fsck.stdout.decode().startswith("ok")


def test_fsck_fails_on_a_damaged_store(workspace: Path, cli: Callable[..., _Result]) -> None:
    (workspace / "big.bin").write_bytes(random.Random(3).randbytes(1_000_000))
    assert cli("artifact", "put", "big.bin").returncode == 0
    packs = list((workspace / ".symphony" / "pit" / "objects").glob("*/*.pack"))
    assert len(packs) == 1
    packs[0].unlink()
    fsck = cli("pit", "fsck")
    assert fsck.returncode == 1
    assert b"missing-pack" in fsck.stdout
    assert cli("artifact", "get", "big.bin").returncode == 4


def test_encrypted_store_with_a_key_file(workspace: Path, cli: Callable[..., _Result]) -> None:
    key = workspace / "pit.key"
    assert cli("pit", "keygen", str(key)).returncode == 0
    assert key.stat().st_mode & 0o777 == 0o600
    assert cli("pit", "keygen", str(key)).returncode == 2  # never overwrites a key
    secret = b"the secret recipe " * 100
    (workspace / "secret.txt").write_bytes(secret)
    store = ["--store", str(workspace / "vault")]
    assert cli("artifact", "put", "secret.txt", *store, "--key-file", str(key)).returncode == 0
    assert cli("artifact", "get", "secret.txt", *store, "--key-file", str(key)).stdout == secret
    missing = cli("artifact", "get", "secret.txt", *store)
    assert missing.returncode == 3
    assert b"encrypted" in missing.stderr
    other = workspace / "other.key"
    assert cli("pit", "keygen", str(other)).returncode == 0
    wrong = cli("artifact", "get", "secret.txt", *store, "--key-file", str(other))
    assert wrong.returncode == 3
    env_key = {"SYMPHONY_PIT_KEY": key.read_text().strip()}
    assert run(workspace, "artifact", "get", "secret.txt", *store, env=env_key).stdout == secret


def test_bad_usage_exits_2(workspace: Path, cli: Callable[..., _Result]) -> None:
    (workspace / "x").write_bytes(b"x")
    assert cli("artifact", "put", "x", "--quality", "2").returncode == 2
    assert cli("artifact", "put", "x", "--meta", "{not json").returncode == 2
    assert cli("pit", "gc", "--max-age", "soon").returncode == 2
