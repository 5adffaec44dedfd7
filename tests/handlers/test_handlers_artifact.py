"""``symphony/artifact/*`` and ``symphony/pit/*`` served by a real daemon process.

One daemon (a subprocess listening on a Unix socket, its workspace in a temporary folder) serves
most tests, each on names of its own; tests that damage the store, need another key, apply
retention to the whole store or stop the daemon start their own (over stdio, through the
Python client's ``spawn``, or on a socket). Requests go through ``SymphonyClient``: JSON by
default, so ``data`` arrives as the base64 string the wire carries; msgpack where said.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from symphony.clients._client import SymphonyClient
from symphony.handlers.artifact import PIT_METHODS
from symphony.pit import ArtifactStore, default_store_path
from symphony.protocol import Codec, InvalidParams, RpcError
from symphony.protocol._exceptions import (
    ArtifactNotFound,
    ArtifactProtected,
    DamagedData,
    EncryptionKeyError,
    PutConflict,
)

TIMEOUT = 60.0  # per request and per wait: generous for shared CI machines; a hang still fails
MIB = 1024 * 1024


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def cid(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYMPHONY_")}
    env.update(extra)
    return env


class DaemonProcess:
    """``python -m symphony.server --unix SOCK --workspace WS``; JSON log lines from stderr
    are collected by a thread, and ``wait_log`` waits for one on a condition (no polling)."""

    def __init__(self, workspace: Path, runtime: Path, *, env: dict[str, str] | None = None):
        self.workspace = workspace
        self.socket = runtime / "pit.sock"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "symphony.server",
                "--unix",
                str(self.socket),
                "--workspace",
                str(workspace),
                "--log-format",
                "json",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**(env or clean_env()), "XDG_RUNTIME_DIR": str(runtime)},
        )
        self.logs: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.wait_log("ready")

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            with self._changed:
                with contextlib.suppress(ValueError):
                    entry = json.loads(raw)
                    if isinstance(entry, dict):
                        self.logs.append(entry)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def find_log(self, event: str, **fields: Any) -> dict[str, Any] | None:
        for entry in self.logs:
            if entry.get("event") == event and all(entry.get(k) == v for k, v in fields.items()):
                return entry
        return None

    def wait_log(self, event: str, **fields: Any) -> dict[str, Any]:
        with self._changed:
            self._changed.wait_for(
                lambda: self.find_log(event, **fields) is not None or not self._reader.is_alive(),
                TIMEOUT,
            )
            found = self.find_log(event, **fields)
        assert found is not None, f"no {event!r} {fields} in the daemon's log: {self.logs[-20:]}"
        return found

    def client(self, **options: Any) -> SymphonyClient:
        return SymphonyClient.unix(str(self.socket), timeout=TIMEOUT, **options)

    def stop(self) -> int:
        """SIGTERM, then the exit status (the daemon stops gracefully on it)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        status = self.proc.wait(TIMEOUT)
        self._reader.join(TIMEOUT)
        return status

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(TIMEOUT)


@contextlib.contextmanager
def running_daemon(workspace: Path, **kw: Any) -> Iterator[DaemonProcess]:
    # The runtime folder (socket, discovery file) is short: a socket path fits in 108 bytes.
    runtime = Path(tempfile.mkdtemp(prefix="sy-pit-", dir="/tmp"))
    daemon = DaemonProcess(workspace, runtime, **kw)
    try:
        yield daemon
    finally:
        daemon.kill()
        shutil.rmtree(runtime, ignore_errors=True)


@pytest.fixture(scope="module")
def pit_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    with running_daemon(tmp_path_factory.mktemp("pit-workspace")) as process:
        yield process
        assert process.stop() == 0


@pytest.fixture
async def client(pit_daemon: DaemonProcess) -> AsyncIterator[SymphonyClient]:
    async with pit_daemon.client() as connected:
        yield connected


async def put(client: SymphonyClient, name: str, data: bytes, **params: Any) -> dict[str, Any]:
    result: dict[str, Any] = await client.request(
        "symphony/artifact/put", {"name": name, "content": b64(data), **params}
    )
    return result


async def read_all(client: SymphonyClient, ref: str | int) -> tuple[bytes, list[int]]:
    """The whole content, read piece by piece as a client must; and the size of each piece."""
    first = await client.request("symphony/artifact/get", {"ref": ref})
    pieces = [base64.b64decode(first["data"], validate=True)]
    content_id, offset, eof = first["contentId"], len(pieces[0]), first["eof"]
    while not eof:
        answer = await client.request(
            "symphony/artifact/get", {"ref": content_id, "offset": offset}
        )
        assert answer["offset"] == offset
        pieces.append(base64.b64decode(answer["data"], validate=True))
        offset += len(pieces[-1])
        eof = answer["eof"]
    return b"".join(pieces), [len(p) for p in pieces]


# -- the round trip ----------------------------------------------------------------------------


async def test_initialize_lists_every_pit_method(client: SymphonyClient) -> None:
    assert client.initialize_result_raw is not None
    listed = client.initialize_result_raw["capabilities"]["experimental"]["symphony"]["methods"]
    assert set(PIT_METHODS) <= set(listed)
    assert {
        "symphony/artifact/put",
        "symphony/artifact/putPart",
        "symphony/artifact/putAbort",
        "symphony/artifact/get",
        "symphony/artifact/stat",
        "symphony/artifact/list",
        "symphony/artifact/search",
        "symphony/artifact/versions",
        "symphony/artifact/pin",
        "symphony/artifact/unpin",
        "symphony/artifact/delete",
        "symphony/pit/gc",
        "symphony/pit/fsck",
    } == set(PIT_METHODS)


async def test_put_get_round_trip_is_byte_exact_with_base64_on_the_wire(
    client: SymphonyClient,
) -> None:
    data = bytes(range(256)) + random.Random(1).randbytes(5000) + b"\x00\xff\r\n"
    stored = await put(client, "roundtrip/bin", data, kind="data", producer="client:test")
    artifact = stored["artifact"]
    assert artifact["ref"] == "roundtrip/bin@1"
    assert artifact["contentId"] == cid(data)
    assert artifact["size"] == len(data)
    assert artifact["kind"] == "data"
    assert artifact["producer"] == "client:test"
    assert stored["deduplicated"] is False

    got = await client.request("symphony/artifact/get", {"ref": "roundtrip/bin"})
    assert isinstance(got["data"], str)  # base64 text in JSON, standard alphabet
    assert base64.b64decode(got["data"], validate=True) == data
    assert (got["contentId"], got["size"], got["offset"], got["eof"]) == (
        cid(data),
        len(data),
        0,
        True,
    )
    window = await client.request(
        "symphony/artifact/get", {"ref": cid(data), "offset": 250, "length": 10}
    )
    assert base64.b64decode(window["data"]) == data[250:260]
    assert window["eof"] is False

    # The same bytes again (URL-safe base64, no padding, is accepted too): deduplicated.
    again = await client.request(
        "symphony/artifact/put",
        {"name": "roundtrip/bin", "content": base64.urlsafe_b64encode(data).decode().rstrip("=")},
    )
    assert again["artifact"]["version"] == 2
    assert again["artifact"]["contentId"] == cid(data)
    assert again["deduplicated"] is True
    assert again["newChunks"] == 0


async def test_a_msgpack_client_sends_and_receives_raw_bytes(pit_daemon: DaemonProcess) -> None:
    data = random.Random(2).randbytes(3000)
    async with pit_daemon.client(codec=Codec.MSGPACK) as client:
        stored = await client.request(
            "symphony/artifact/put", {"name": "roundtrip/msgpack", "content": data}
        )
        assert stored["artifact"]["contentId"] == cid(data)
        got = await client.request("symphony/artifact/get", {"ref": "roundtrip/msgpack"})
    assert isinstance(got["data"], bytes)
    assert got["data"] == data


async def test_a_large_artifact_is_streamed_in_parts(client: SymphonyClient) -> None:
    data = random.Random(3).randbytes(3 * MIB + 12345)
    upload = None
    for start in range(0, len(data), MIB):
        params: dict[str, Any] = {"data": b64(data[start : start + MIB])}
        if upload is not None:
            params["upload"] = upload
        part = await client.request("symphony/artifact/putPart", params)
        upload = part["upload"]
        assert part["received"] == min(start + MIB, len(data))
    stored = await client.request(
        "symphony/artifact/put", {"name": "big/blob", "upload": upload, "kind": "data"}
    )
    assert stored["artifact"]["size"] == len(data)
    assert stored["artifact"]["contentId"] == cid(data)
    assert stored["chunks"] > 1  # content-defined chunks, not one blob

    content, pieces = await read_all(client, "big/blob")
    assert content == data
    assert pieces == [MIB, MIB, MIB, 12345]

    # The upload was committed: it is gone.
    with pytest.raises(ArtifactNotFound) as gone:
        await client.request("symphony/artifact/put", {"name": "big/again", "upload": upload})
    assert gone.value.data["what"] == "upload"


async def test_no_message_carries_more_than_one_mebibyte_of_content(
    client: SymphonyClient,
) -> None:
    too_big = b64(bytes(MIB + 1))
    with pytest.raises(InvalidParams, match="send it in parts"):
        await client.request("symphony/artifact/put", {"name": "big/x", "content": too_big})
    with pytest.raises(InvalidParams, match="at most"):
        await client.request("symphony/artifact/putPart", {"data": too_big})
    with pytest.raises(ArtifactNotFound):
        await client.request("symphony/artifact/get", {"ref": "big/x"})


async def test_uploads_belong_to_their_connection_and_end_with_it(
    pit_daemon: DaemonProcess, client: SymphonyClient
) -> None:
    async with pit_daemon.client() as owner:
        owner_id = (await owner.request("symphony/info"))["clientId"]
        part = await owner.request("symphony/artifact/putPart", {"data": b64(b"first piece")})
        upload = part["upload"]
        # Another connection can neither commit nor abort it.
        with pytest.raises(ArtifactNotFound, match="belongs to the connection") as other:
            await client.request("symphony/artifact/put", {"name": "up/x", "upload": upload})
        assert other.value.data == {"ref": upload, "what": "upload"}
        with pytest.raises(ArtifactNotFound):
            await client.request("symphony/artifact/putAbort", {"upload": upload})
        # Its owner aborts a second one explicitly; that one is gone too.
        second = (await owner.request("symphony/artifact/putPart", {"data": b64(b"x")}))["upload"]
        assert await owner.request("symphony/artifact/putAbort", {"upload": second}) is None
        with pytest.raises(ArtifactNotFound):
            await owner.request("symphony/artifact/put", {"name": "up/x", "upload": second})
    # The owner's connection closed with one upload open: the daemon drops it.
    entry = pit_daemon.wait_log("pit uploads abandoned", client_id=owner_id)
    assert entry["uploads"] == 1


async def test_concurrent_clients_put_to_one_name_without_losing_a_version(
    pit_daemon: DaemonProcess,
) -> None:
    async def writer(n: int) -> list[int]:
        async with pit_daemon.client() as client:
            versions = []
            for i in range(8):
                stored = await put(client, "busy/log", b"writer %d line %d\n" % (n, i))
                versions.append(stored["artifact"]["version"])
            return versions

    async with asyncio.TaskGroup() as tg:
        runs = [tg.create_task(writer(n)) for n in range(4)]
    numbers = sorted(v for run in runs for v in run.result())
    assert numbers == list(range(1, 33))  # each put got its own version, none was lost
    async with pit_daemon.client() as client:
        history = (await client.request("symphony/artifact/versions", {"name": "busy/log"}))[
            "versions"
        ]
        contents = {
            base64.b64decode(
                (await client.request("symphony/artifact/get", {"ref": v["ref"]}))["data"]
            )
            for v in history
        }
    assert contents == {b"writer %d line %d\n" % (n, i) for n in range(4) for i in range(8)}


# -- metadata: stat, list, search, versions --------------------------------------------------------


async def test_versions_stat_list_and_search(client: SymphonyClient) -> None:
    name = "notes/lineage"
    texts = [
        b"first draft of the plan\n",
        b"second draft of the plan\n",
        b"final plan: ship the zebracorn feature\n",
    ]
    ids = []
    for i, text in enumerate(texts):
        stored = await put(client, name, text, kind="document", tags=["plan", f"v{i + 1}"])
        ids.append(stored["artifact"]["id"])
    derived = await put(
        client,
        "notes/summary",
        b"summary of the plan",
        kind="document",
        relations=[["derived-from", f"{name}@1"]],
    )

    history = (await client.request("symphony/artifact/versions", {"name": name}))["versions"]
    assert [v["version"] for v in history] == [1, 2, 3]
    assert [v["id"] for v in history] == ids
    assert "parentId" not in history[0]  # null fields are left out of results
    assert [v["parentId"] for v in history[1:]] == ids[:2]
    assert history[2]["tags"] == ["plan", "v3"]

    stat = await client.request("symphony/artifact/stat", {"ref": derived["artifact"]["ref"]})
    assert stat["artifact"]["name"] == "notes/summary"
    assert stat["protection"] == []
    assert stat["relations"] == [
        {"sourceId": derived["artifact"]["id"], "relation": "derived-from", "targetId": ids[0]}
    ]
    by_id = await client.request("symphony/artifact/stat", {"ref": ids[1]})
    assert by_id["artifact"]["ref"] == f"{name}@2"

    listed = await client.request("symphony/artifact/list", {"namePrefix": name})
    assert [a["id"] for a in listed["artifacts"]] == ids[::-1]  # newest first
    assert "nextBeforeId" not in listed
    heads = await client.request(
        "symphony/artifact/list", {"namePrefix": "notes/", "headsOnly": True}
    )
    assert {a["ref"] for a in heads["artifacts"]} == {f"{name}@3", "notes/summary@1"}
    page = await client.request("symphony/artifact/list", {"namePrefix": name, "limit": 2})
    assert [a["id"] for a in page["artifacts"]] == [ids[2], ids[1]]
    rest = await client.request(
        "symphony/artifact/list", {"namePrefix": name, "limit": 2, "beforeId": page["nextBeforeId"]}
    )
    assert [a["id"] for a in rest["artifacts"]] == [ids[0]]
    tagged = await client.request("symphony/artifact/list", {"tag": "v2"})
    assert [a["id"] for a in tagged["artifacts"]] == [ids[1]]

    found = await client.request("symphony/artifact/search", {"query": "zebracorn"})
    assert [hit["artifact"]["ref"] for hit in found["hits"]] == [f"{name}@3"]
    assert found["hits"][0]["matched"] == "content"
    assert "zebracorn" in found["hits"][0]["snippet"]
    # Content is indexed for each name's latest version only, metadata (tags here) for all.
    assert (await client.request("symphony/artifact/search", {"query": "draft"}))["hits"] == []
    by_tag = await client.request(
        "symphony/artifact/search", {"query": "v2", "allVersions": True, "kind": "document"}
    )
    assert [(h["artifact"]["ref"], h["matched"]) for h in by_tag["hits"]] == [
        (f"{name}@2", "metadata")
    ]
    none = await client.request("symphony/artifact/search", {"query": "zebracorn", "kind": "log"})
    assert none["hits"] == []
    with pytest.raises(InvalidParams):
        await client.request("symphony/artifact/search", {"query": 'NEAR("', "raw": True})


# -- protection, deletion, gc, fsck ---------------------------------------------------------------


async def test_a_pinned_artifact_survives_gc_and_refuses_deletion(tmp_path: Path) -> None:
    # Retention applies to the whole store: this test has a daemon (over stdio) of its own.
    log = (tmp_path / "daemon.log").open("wb")
    async with SymphonyClient.spawn(
        workspace=str(tmp_path), env=clean_env(), stderr=log.fileno(), timeout=TIMEOUT
    ) as client:
        refs = [(await put(client, "keep/me", b"v%d" % i))["artifact"]["ref"] for i in (1, 2, 3)]
        pinned = await client.request("symphony/artifact/pin", {"ref": "keep/me@1"})
        assert pinned["pinned"] is True

        policy = {"retention": {"keepVersions": 1}, "grace": 0}
        dry = await client.request("symphony/pit/gc", {**policy, "dryRun": True})
        assert dry["report"]["dryRun"] is True
        assert [d["ref"] for d in dry["report"]["deletedArtifacts"]] == ["keep/me@2"]
        assert dry["report"]["keptProtected"] == 1
        versions = (await client.request("symphony/artifact/versions", {"name": "keep/me"}))[
            "versions"
        ]
        assert [v["ref"] for v in versions] == refs  # a dry run changes nothing

        done = await client.request("symphony/pit/gc", policy)
        assert [d["ref"] for d in done["report"]["deletedArtifacts"]] == ["keep/me@2"]
        assert done["report"]["blobsCollected"] == 1
        versions = (await client.request("symphony/artifact/versions", {"name": "keep/me"}))[
            "versions"
        ]
        assert [v["ref"] for v in versions] == ["keep/me@1", "keep/me@3"]

        with pytest.raises(ArtifactProtected, match="force") as refused:
            await client.request("symphony/artifact/delete", {"ref": "keep/me@1"})
        assert refused.value.code == -32911
        assert refused.value.data == {"ref": "keep/me@1", "reasons": ["pinned"]}
        assert refused.value.reasons == ["pinned"]

        unpinned = await client.request("symphony/artifact/unpin", {"ref": "keep/me@1"})
        assert unpinned["pinned"] is False
        deleted = await client.request("symphony/artifact/delete", {"ref": "keep/me@1"})
        assert deleted["ref"] == "keep/me@1"
        accepted = await put(client, "keep/sugg", b"x", kind="suggestion", outcome="accepted")
        forced = await client.request(
            "symphony/artifact/delete", {"ref": accepted["artifact"]["ref"], "force": True}
        )
        assert forced["outcome"] == "accepted"

        report = await client.request("symphony/pit/fsck", {"verify": True})
        assert report["errors"] == []
        assert report["ok"] is True
    log.close()


async def test_fsck_reports_the_store_consistent(client: SymphonyClient) -> None:
    await put(client, "fsck/a", b"alpha")
    await put(client, "fsck/a", b"beta")
    report = await client.request("symphony/pit/fsck", {})
    assert report["errors"] == []
    assert report["ok"] is True
    assert report["checked"]["artifacts"] >= 2
    verified = await client.request("symphony/pit/fsck", {"verify": True})
    assert verified["ok"] is True


async def test_unknown_refs_answer_not_found_with_a_clear_message(client: SymphonyClient) -> None:
    with pytest.raises(ArtifactNotFound) as name:
        await client.request("symphony/artifact/get", {"ref": "no/such-name"})
    assert name.value.code == -32910
    assert name.value.message == "no artifact matches 'no/such-name'"
    assert name.value.data == {"ref": "no/such-name", "what": "artifact"}
    assert name.value.ref == "no/such-name"
    missing = "sha256:" + "0" * 64
    cases: list[tuple[str, dict[str, Any]]] = [
        ("symphony/artifact/get", {"ref": missing}),
        ("symphony/artifact/stat", {"ref": 987654321}),
        ("symphony/artifact/versions", {"name": "no/such-name"}),
        ("symphony/artifact/pin", {"ref": "no/such-name@4"}),
        ("symphony/artifact/delete", {"ref": "no/such-name"}),
    ]
    for method, params in cases:
        with pytest.raises(ArtifactNotFound, match=r"no .* matches"):
            await client.request(method, params)


async def test_bad_params_answer_invalid_params(client: SymphonyClient) -> None:
    cases: list[tuple[str, Any]] = [
        ("symphony/artifact/put", {"content": b64(b"x")}),  # no name
        ("symphony/artifact/put", {"name": "p/x", "content": b64(b"x"), "colour": "red"}),
        ("symphony/artifact/put", {"name": "p/x", "content": "not base64!"}),
        ("symphony/artifact/put", {"name": "p/x"}),  # neither content nor upload
        ("symphony/artifact/put", {"name": "p/x", "content": b64(b"x"), "upload": "u"}),
        ("symphony/artifact/put", {"name": "p/x", "content": b64(b"x"), "kind": "Not A Kind"}),
        ("symphony/artifact/put", {"name": "p/x", "content": b64(b"x"), "quality": 7}),
        ("symphony/artifact/put", {"name": "bad@name", "content": b64(b"x")}),
        ("symphony/artifact/get", {"ref": "p/x", "offset": -1}),
        ("symphony/artifact/list", {"limit": 0}),
        ("symphony/artifact/stat", ["p/x"]),  # by position
        ("symphony/pit/gc", {"grace": -5}),
    ]
    for method, params in cases:
        with pytest.raises(InvalidParams) as refused:
            await client.request(method, params)
        assert refused.value.code == -32602, (method, params)
    with pytest.raises(InvalidParams) as detailed:
        await client.request("symphony/artifact/put", {"content": b64(b"x")})
    assert [error["loc"] for error in detailed.value.data] == [["name"]]
    # Nothing was stored under any of those names.
    assert (await client.request("symphony/artifact/list", {"namePrefix": "p/"}))["artifacts"] == []


# -- one store for the command line and the daemon ---------------------------------------------------


def symphony_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "symphony", *args],
        cwd=cwd,
        capture_output=True,
        timeout=TIMEOUT,
        env=clean_env(),
        check=False,
    )


async def test_the_cli_and_the_daemon_share_one_store(
    pit_daemon: DaemonProcess, client: SymphonyClient, tmp_path: Path
) -> None:
    data = random.Random(4).randbytes(200_000) + b"\n"
    source = tmp_path / "model-output.bin"
    source.write_bytes(data)
    done = symphony_cli(
        pit_daemon.workspace, "artifact", "put", str(source), "--name", "cli/output"
    )
    assert done.returncode == 0, done.stderr
    content_id = done.stdout.decode().strip().splitlines()[-1]
    assert content_id == cid(data)

    content, _ = await read_all(client, "cli/output")
    assert content == data
    stat = await client.request("symphony/artifact/stat", {"ref": content_id})
    assert stat["artifact"]["name"] == "cli/output"

    back = random.Random(5).randbytes(70_000)
    stored = await put(client, "cli/from-daemon", back)
    fetched = symphony_cli(pit_daemon.workspace, "artifact", "get", stored["artifact"]["ref"])
    assert fetched.returncode == 0, fetched.stderr
    assert fetched.stdout == back


# -- keys, damage, stopping ------------------------------------------------------------------------


async def test_a_store_whose_key_the_daemon_lacks_answers_the_key_error(tmp_path: Path) -> None:
    with ArtifactStore.open(default_store_path(tmp_path), key=os.urandom(32)) as store:
        store.put(b"secret", name="s/x")
    log = (tmp_path / "daemon.log").open("wb")
    async with SymphonyClient.spawn(
        workspace=str(tmp_path), env=clean_env(), stderr=log.fileno(), timeout=TIMEOUT
    ) as client:
        for _ in range(2):  # the daemon tries to open the store again on each request
            with pytest.raises(EncryptionKeyError, match="is encrypted: give its key") as refused:
                await client.request("symphony/artifact/get", {"ref": "s/x"})
            assert refused.value.code == -32913
        assert await client.request("symphony/ping") == {}  # the rest of the daemon works
    log.close()


async def test_tampered_bytes_answer_damaged_data_never_content(tmp_path: Path) -> None:
    key = os.urandom(32)
    data = random.Random(6).randbytes(400_000)  # over the inline limit: stored in a pack file
    with ArtifactStore.open(default_store_path(tmp_path), key=key) as store:
        store.put(b"small secret", name="d/small")
        stored = store.put(data, name="d/big")
    assert stored.content_id == cid(data)

    log = (tmp_path / "daemon.log").open("wb")
    async with SymphonyClient.spawn(
        workspace=str(tmp_path),
        env=clean_env(SYMPHONY_PIT_KEY=key.hex()),  # the daemon takes the key from here
        stderr=log.fileno(),
        timeout=TIMEOUT,
    ) as client:
        content, _ = await read_all(client, "d/big")
        assert content == data
        (pack,) = (default_store_path(tmp_path) / "objects").glob("*/*.pack")
        raw = bytearray(pack.read_bytes())
        raw[len(raw) // 2] ^= 0x01  # one bit, in the middle of a sealed chunk record
        pack.write_bytes(bytes(raw))

        with pytest.raises(DamagedData) as damaged:
            await client.request("symphony/artifact/get", {"ref": "d/big"})
        assert damaged.value.code == -32914
        assert damaged.value.chunk is not None
        # Other content still reads; fsck names the damage.
        small = await client.request("symphony/artifact/get", {"ref": "d/small"})
        assert base64.b64decode(small["data"]) == b"small secret"
        report = await client.request("symphony/pit/fsck", {"verify": True})
        assert report["ok"] is False
        assert report["errors"]
    log.close()


async def test_stopping_the_daemon_aborts_uploads_and_closes_the_store(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    with running_daemon(workspace) as daemon:
        store_dir = default_store_path(workspace)
        async with daemon.client() as client:
            await put(client, "stop/x", b"kept")
            unfinished = random.Random(7).randbytes(600_000)  # enough to start a pack file
            await client.request("symphony/artifact/putPart", {"data": b64(unfinished)})
            assert list((store_dir / "tmp").iterdir())  # the upload's pack, being written
            assert daemon.stop() == 0  # SIGTERM while this client is still connected
        closed = daemon.wait_log("pit store closed")
    assert closed["uploads_aborted"] == 1
    assert closed["owned"] is True
    wal = store_dir / "pit.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0  # checkpointed on the way out
    with ArtifactStore.open(store_dir) as store:
        assert store.get("stop/x") == b"kept"
        assert not list((store_dir / "tmp").iterdir())  # the upload's bytes are gone


# -- the error classes ---------------------------------------------------------------------------


def test_every_pit_code_comes_back_as_its_class() -> None:
    classes = {
        -32910: ArtifactNotFound,
        -32911: ArtifactProtected,
        -32912: PutConflict,
        -32913: EncryptionKeyError,
        -32914: DamagedData,
    }
    for code, cls in classes.items():
        error = RpcError.from_error(code, "m", {"ref": "r", "reasons": ["pinned"], "chunk": "c"})
        assert type(error) is cls
        assert error.to_error_object()["code"] == code
    assert ArtifactNotFound(ref="x@2").data == {"ref": "x@2", "what": "artifact"}
    assert ArtifactNotFound(ref="ab", what="content", candidates=["sha256:ab1"]).data == {
        "ref": "ab",
        "what": "content",
        "candidates": ["sha256:ab1"],
    }
    assert ArtifactProtected(ref="a", reasons=["live"]).reasons == ["live"]
    assert DamagedData(chunk="sha256:00").chunk == "sha256:00"
    assert DamagedData().message == "stored data is damaged (run `symphony pit fsck`)"
