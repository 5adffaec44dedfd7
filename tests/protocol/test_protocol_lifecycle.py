"""The LSP session lifecycle table, and position encoding negotiation."""

from __future__ import annotations

import pytest

from symphony.protocol import (
    InvalidRequest,
    Kind,
    Lifecycle,
    ServerNotInitialized,
    State,
    Verdict,
    negotiate_position_encoding,
)

REQ, NOTE = Kind.REQUEST, Kind.NOTIFICATION


def at(state: State) -> Lifecycle:
    """A lifecycle driven into ``state`` the way a client would drive it."""
    lifecycle = Lifecycle()
    steps = {
        State.UNINITIALIZED: [],
        State.INITIALIZING: [(REQ, "initialize")],
        State.INITIALIZED: [(REQ, "initialize"), "ok"],
        State.SHUTDOWN: [(REQ, "initialize"), "ok", (REQ, "shutdown")],
        State.EXITED: [(NOTE, "exit")],
    }[state]
    for step in steps:
        if step == "ok":
            lifecycle.initialize_finished(True)
        else:
            kind, method = step
            assert lifecycle.receive(kind, method).verdict is Verdict.DISPATCH
    assert lifecycle.state is state
    return lifecycle


@pytest.mark.parametrize(
    ("state", "kind", "method", "verdict", "error", "next_state"),
    [
        (State.UNINITIALIZED, REQ, "initialize", Verdict.DISPATCH, None, State.INITIALIZING),
        (State.UNINITIALIZED, REQ, "symphony/ping", Verdict.REJECT, ServerNotInitialized, None),
        (State.UNINITIALIZED, REQ, "shutdown", Verdict.REJECT, ServerNotInitialized, None),
        (State.UNINITIALIZED, NOTE, "initialized", Verdict.DROP, None, None),
        (State.UNINITIALIZED, NOTE, "exit", Verdict.DISPATCH, None, State.EXITED),
        (State.INITIALIZING, REQ, "symphony/ping", Verdict.REJECT, ServerNotInitialized, None),
        (State.INITIALIZING, REQ, "initialize", Verdict.REJECT, ServerNotInitialized, None),
        (State.INITIALIZING, NOTE, "textDocument/didOpen", Verdict.DROP, None, None),
        (State.INITIALIZING, NOTE, "exit", Verdict.DISPATCH, None, State.EXITED),
        (State.INITIALIZED, REQ, "symphony/ping", Verdict.DISPATCH, None, None),
        (State.INITIALIZED, REQ, "initialize", Verdict.REJECT, InvalidRequest, None),
        (State.INITIALIZED, REQ, "shutdown", Verdict.DISPATCH, None, State.SHUTDOWN),
        (State.INITIALIZED, NOTE, "initialized", Verdict.DISPATCH, None, None),
        (State.INITIALIZED, NOTE, "exit", Verdict.DISPATCH, None, State.EXITED),
        (State.SHUTDOWN, REQ, "symphony/ping", Verdict.REJECT, InvalidRequest, None),
        (State.SHUTDOWN, REQ, "shutdown", Verdict.REJECT, InvalidRequest, None),
        (State.SHUTDOWN, NOTE, "$/cancelRequest", Verdict.DISPATCH, None, None),
        (State.SHUTDOWN, NOTE, "textDocument/didChange", Verdict.DROP, None, None),
        (State.SHUTDOWN, NOTE, "exit", Verdict.DISPATCH, None, State.EXITED),
        (State.EXITED, REQ, "symphony/ping", Verdict.DROP, None, None),
        (State.EXITED, NOTE, "exit", Verdict.DROP, None, None),
    ],
)
def test_transition_table(
    state: State,
    kind: Kind,
    method: str,
    verdict: Verdict,
    error: type[Exception] | None,
    next_state: State | None,
) -> None:
    lifecycle = at(state)
    rule = lifecycle.receive(kind, method)
    assert rule.verdict is verdict
    if error is not None:
        assert isinstance(rule.error(), error)
    assert lifecycle.state is (next_state or state)


def test_after_shutdown_requests_are_told_the_server_is_shutting_down() -> None:
    error = at(State.SHUTDOWN).receive(REQ, "symphony/info").error()
    assert error.code == -32600
    assert error.message == "server is shutting down"


def test_before_initialize_requests_get_32002() -> None:
    assert at(State.UNINITIALIZED).receive(REQ, "x").error().code == -32002


def test_a_failed_initialize_can_be_retried() -> None:
    lifecycle = at(State.INITIALIZING)
    lifecycle.initialize_finished(False)
    assert lifecycle.state is State.UNINITIALIZED
    assert lifecycle.receive(REQ, "initialize").verdict is Verdict.DISPATCH


def test_exit_status_follows_lsp() -> None:
    without = at(State.INITIALIZED)
    without.receive(NOTE, "exit")
    assert without.exit_status == 1
    after = at(State.SHUTDOWN)
    after.receive(NOTE, "exit")
    assert after.exit_status == 0


def test_a_reject_rule_has_an_error_and_the_others_do_not() -> None:
    with pytest.raises(ValueError, match="has no error"):
        at(State.INITIALIZED).receive(REQ, "x").error()


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        (None, "utf-16"),
        ([], "utf-16"),
        (["utf-8"], "utf-8"),
        (["utf-32", "utf-8"], "utf-32"),
        (["latin-1", "utf-8", "utf-16"], "utf-8"),
        (["ebcdic"], "utf-16"),
    ],
)
def test_position_encoding_is_the_clients_first_supported_choice(
    offered: list[str] | None, chosen: str
) -> None:
    assert negotiate_position_encoding(offered) == chosen
