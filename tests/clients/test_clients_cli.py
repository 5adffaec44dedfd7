"""The client commands end to end: real `symphony` processes against real daemons."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from clients_helpers import CLI, TIMEOUT, DaemonProcess, run_cli, wait_pid_gone

from symphony.server._discovery import discovery_path, pid_alive, read_discovery


def test_status_without_a_daemon_exits_1(workspace: Path) -> None:
    human = run_cli("status", "--workspace", str(workspace))
    assert human.returncode == 1
    assert "no daemon is running" in human.stdout
    scripted = run_cli("status", "--workspace", str(workspace), "--json")
    assert scripted.returncode == 1
    assert json.loads(scripted.stdout) == {"running": False, "workspace": str(workspace)}


def test_status_describes_the_running_daemon(shared_daemon: DaemonProcess) -> None:
    workspace = str(shared_daemon.workspace)
    scripted = run_cli("status", "--workspace", workspace, "--json")
    assert scripted.returncode == 0, scripted.stderr
    status = json.loads(scripted.stdout)
    assert status["running"] is True
    assert status["pid"] == shared_daemon.pid
    assert set(status["addresses"]) == {"unix", "tcp", "ws"}
    assert status["uptime"] > 0
    assert status["rss"] > 0
    assert "token" not in status  # the token is a secret; status does not print it
    human = run_cli("status", "--workspace", workspace)
    assert human.returncode == 0, human.stderr
    assert f"pid          {shared_daemon.pid}" in human.stdout
    assert status["addresses"]["unix"] in human.stdout


def test_stop_stops_the_daemon_gracefully(
    start_daemon: Callable[..., DaemonProcess], workspace: Path
) -> None:
    daemon = start_daemon("--unix")
    daemon.wait_ready()
    stopped = run_cli("stop", "--workspace", str(workspace), "--json")
    assert stopped.returncode == 0, stopped.stderr
    assert json.loads(stopped.stdout) == {
        "stopped": True,
        "forced": False,
        "pid": daemon.pid,
        "workspace": str(workspace),
    }
    # Gone by the time stop returned; it exited 0 (SIGTERM is its graceful stop) and cleaned up.
    assert daemon.proc.wait(TIMEOUT) == 0
    assert not discovery_path(workspace).exists()
    assert any(entry.get("event") == "signal received" for entry in daemon.logs)
    again = run_cli("stop", "--workspace", str(workspace))
    assert again.returncode == 3
    assert "no daemon is running" in again.stderr


def test_stop_refuses_to_signal_a_process_that_is_not_a_daemon(workspace: Path) -> None:
    # A stale discovery file naming a live process that is not ours to stop.
    from symphony.server._discovery import DiscoveryInfo, runtime_dir, write_discovery

    bystander = subprocess.Popen(["sleep", "60"])
    try:
        runtime_dir()
        write_discovery(
            discovery_path(workspace),
            DiscoveryInfo(
                pid=bystander.pid,
                workspace=str(workspace),
                version="0",
                started_at=0.0,
                token="t",
                addresses={"unix": "/nonexistent.sock"},
            ),
        )
        refused = run_cli("stop", "--workspace", str(workspace))
        assert refused.returncode == 1
        assert "does not look like a Symphony daemon" in refused.stderr
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait(TIMEOUT)


def test_call_prints_the_result_as_json(shared_daemon: DaemonProcess) -> None:
    workspace = str(shared_daemon.workspace)
    params = '{"data": {"ünï": [1, 2.5, null]}}'
    pretty = run_cli("call", "symphony/ping", params, "--workspace", workspace)
    assert pretty.returncode == 0, pretty.stderr
    assert json.loads(pretty.stdout) == {"data": {"ünï": [1, 2.5, None]}}
    compact = run_cli("call", "symphony/info", "--workspace", workspace, "--json")
    assert compact.returncode == 0, compact.stderr
    assert compact.stdout.count("\n") == 1
    assert json.loads(compact.stdout)["pid"] == shared_daemon.pid
    from_stdin = run_cli(
        "call", "symphony/ping", "-", "--workspace", workspace, input='{"data": 3}'
    )
    assert json.loads(from_stdin.stdout) == {"data": 3}


def test_call_over_tcp_and_websocket_uses_the_discovered_token(
    shared_daemon: DaemonProcess,
) -> None:
    workspace = str(shared_daemon.workspace)
    found = read_discovery(workspace)
    assert found is not None
    for option, address in (("--tcp", found.addresses["tcp"]), ("--ws", found.addresses["ws"])):
        result = run_cli(
            "call", "symphony/ping", '{"data": 1}', option, address, "--workspace", workspace
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == {"data": 1}
    wrong = run_cli("call", "symphony/ping", "--tcp", found.addresses["tcp"], "--token", "nope")
    assert wrong.returncode == 4
    assert "-32903" in wrong.stderr


def test_call_errors_have_their_exit_status(shared_daemon: DaemonProcess) -> None:
    running = str(shared_daemon.workspace)
    unknown = run_cli("call", "symphony/nope", "--workspace", running)
    assert unknown.returncode == 4
    assert unknown.stderr.startswith("symphony call: error -32601")
    bad_params = run_cli("call", "symphony/ping", '{"typo": 1}', "--workspace", running)
    assert bad_params.returncode == 4
    assert "-32602" in bad_params.stderr
    assert "typo" in bad_params.stderr
    not_json = run_cli("call", "symphony/ping", "{oops", "--workspace", running)
    assert not_json.returncode == 2
    assert "not JSON" in not_json.stderr


def test_call_without_a_daemon_exits_3_or_5(workspace: Path) -> None:
    # No daemon: 3, and none is started without --start; nothing at an explicit address: 5.
    nobody = run_cli("call", "symphony/ping", "--workspace", str(workspace))
    assert nobody.returncode == 3
    assert read_discovery(workspace) is None
    refused = run_cli("call", "symphony/ping", "--unix", str(workspace / "none.sock"))
    assert refused.returncode == 5


def test_call_with_start_starts_a_daemon(workspace: Path) -> None:
    started = run_cli("call", "symphony/info", "--start", "--workspace", str(workspace), "--json")
    assert started.returncode == 0, started.stderr
    pid = json.loads(started.stdout)["pid"]
    found = read_discovery(workspace)
    assert found is not None
    assert found.pid == pid
    assert pid_alive(pid)
    stopped = run_cli("stop", "--workspace", str(workspace))
    assert stopped.returncode == 0, stopped.stderr
    assert wait_pid_gone(pid)


def test_usage_errors_exit_2_before_connecting(workspace: Path) -> None:
    # No daemon runs: a usage error must still be a usage error (2), not "no daemon" (3).
    for args in (
        ["edit", "file:///x", "--at", "1"],  # argparse: not a position
        ["edit", "file:///x", "--at", "1:2", "--delete-to", "0:0"],  # checked before connecting
        ["open"],  # neither FILE nor --text
    ):
        result = run_cli(*args, "--workspace", str(workspace))
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.strip(), args
    assert read_discovery(workspace) is None


def test_edit_needs_a_running_daemon_and_does_not_start_one(workspace: Path) -> None:
    result = run_cli(
        "edit", "file:///x", "--at", "0:0", "--insert", "a", "--workspace", str(workspace)
    )
    assert result.returncode == 3, result.stderr
    assert read_discovery(workspace) is None


def test_watch_streams_events_as_json_lines_until_interrupted(
    shared_daemon: DaemonProcess,
) -> None:
    workspace = str(shared_daemon.workspace)
    watch = subprocess.Popen(
        [*CLI, "watch", "connection/*", "--workspace", workspace, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Whatever happens, the watcher does not outlive the test (a hung readline ends too).
    watchdog = threading.Timer(TIMEOUT, watch.kill)
    watchdog.start()
    try:
        assert watch.stdout is not None
        assert watch.stderr is not None
        assert watch.stderr.readline().startswith("watching connection/*")  # subscribed
        call = run_cli("call", "symphony/ping", "--workspace", workspace)
        assert call.returncode == 0, call.stderr
        # The call was a client connecting: its opened, initialized, closed events, in order
        # (events of other clients may interleave: they are told apart by clientId).
        by_client: dict[str, list[str]] = {}
        while True:
            line = watch.stdout.readline()
            assert line, f"watch ended early: {watch.stderr.read()}"
            event = json.loads(line)
            assert set(event) == {"topic", "data"}
            topics = by_client.setdefault(event["data"]["clientId"], [])
            topics.append(event["topic"])
            if topics[-1] == "connection/closed" and topics[0] == "connection/opened":
                break
        assert topics == ["connection/opened", "connection/initialized", "connection/closed"]
        watch.send_signal(signal.SIGINT)
        assert watch.wait(TIMEOUT) == 0
    finally:
        watchdog.cancel()
        watch.kill()
        watch.wait(TIMEOUT)
        for pipe in (watch.stdout, watch.stderr):
            if pipe is not None:
                pipe.close()


def test_open_cat_edit_end_to_end(workspace: Path) -> None:
    path = workspace / "doc.txt"
    path.write_bytes("première ligne\nsans fin de ligne 😀".encode())
    # open starts a daemon (none runs), which keeps the buffer for the next commands.
    opened = run_cli("open", str(path), "--workspace", str(workspace), "--json")
    assert opened.returncode == 0, opened.stderr
    result = json.loads(opened.stdout)
    uri = result["uri"]
    assert (result["revision"], result["lineCount"], result["dirty"]) == (0, 2, False)
    assert read_discovery(workspace) is not None

    def cat() -> bytes:
        shown = subprocess.run(
            [*CLI, "cat", uri, "--workspace", str(workspace)],
            capture_output=True,
            timeout=TIMEOUT,
            check=False,
        )
        assert shown.returncode == 0, shown.stderr
        return shown.stdout

    assert cat() == path.read_bytes()  # exactly: no newline added
    # Positions count code points: 19 is after the emoji (UTF-16 would say 20).
    edited = run_cli(
        "edit", str(path), "--at", "1:19", "--insert", "!", "--workspace", str(workspace)
    )
    assert edited.returncode == 0, edited.stderr
    assert edited.stdout.strip() == f"{uri}  revision 1"
    replaced = run_cli(
        "edit", uri, "--at", "0:0", "--delete-to", "0:8", "--insert", "Première",
        "--base-revision", "0", "--workspace", str(workspace), "--json",
    )  # fmt: skip
    assert replaced.returncode == 0, replaced.stderr
    assert json.loads(replaced.stdout) == {"uri": uri, "revision": 2}
    assert cat().decode() == "Première ligne\nsans fin de ligne 😀!"
    conflict = run_cli(
        "edit", uri, "--at", "0:3", "--delete-to", "0:5", "--base-revision", "0",
        "--workspace", str(workspace),
    )  # fmt: skip
    assert conflict.returncode == 4
    assert "-32901" in conflict.stderr
    assert '"currentRevision": 2' in conflict.stderr
