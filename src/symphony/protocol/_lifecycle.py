"""The LSP session lifecycle, as one transition table. Everything that moves a session between
states lives in this file (h11's ``_state.py`` rule).

Spec: https://microsoft.github.io/language-server-protocol/specifications/lsp/3.17/specification/#lifeCycleMessages

    UNINITIALIZED --initialize--> INITIALIZING --result sent--> INITIALIZED --shutdown--> SHUTDOWN
          ^                            |                                                     |
          +------ initialize failed ---+                 exit (from any state) --> EXITED <--+

Each session (one per connection) has its own ``Lifecycle``. The server asks it about every
incoming call, in arrival order, *before* dispatching, and does what the returned ``Rule`` says:

  - DISPATCH: run the handler;
  - REJECT:   answer the request with ``rule.error()`` (requests only);
  - DROP:     ignore it (notifications, which are never answered).

In words: before ``initialize`` succeeds, requests get -32002 ServerNotInitialized and
notifications are dropped, except ``exit``. ``initialize`` twice is -32600. After ``shutdown``,
requests get -32600 InvalidRequest "server is shutting down" (LSP's rule) and only ``exit`` and
``$/cancelRequest`` notifications still count. ``exit`` is accepted in every state but EXITED; it
ends the connection (the server stops reading), with exit status 0 after ``shutdown``, 1 without.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from symphony.protocol._exceptions import InvalidRequest, RpcError, ServerNotInitialized

__all__ = [
    "DEFAULT_POSITION_ENCODING",
    "POSITION_ENCODINGS",
    "Kind",
    "Lifecycle",
    "PositionEncoding",
    "Rule",
    "State",
    "Verdict",
    "negotiate_position_encoding",
]

PositionEncoding: TypeAlias = Literal["utf-8", "utf-16", "utf-32"]
#: Supported encodings (LSP's ``PositionEncodingKind``), in our order of preference.
POSITION_ENCODINGS: Final[tuple[PositionEncoding, ...]] = ("utf-16", "utf-8", "utf-32")
#: What LSP mandates when the client states no preference (every client supports it).
DEFAULT_POSITION_ENCODING: Final[PositionEncoding] = "utf-16"


class State(enum.Enum):
    UNINITIALIZED = "uninitialized"
    INITIALIZING = "initializing"
    INITIALIZED = "initialized"
    SHUTDOWN = "shutdown"
    EXITED = "exited"


class Kind(enum.Enum):
    REQUEST = "request"
    NOTIFICATION = "notification"


class Verdict(enum.Enum):
    DISPATCH = "dispatch"
    REJECT = "reject"
    DROP = "drop"


@dataclass(frozen=True, slots=True)
class Rule:
    """What to do with one call in one state, and the state to move to when it is dispatched."""

    verdict: Verdict
    next_state: State | None = None
    error_type: type[RpcError] | None = None
    error_message: str | None = None

    def error(self) -> RpcError:
        """The error to answer a REJECTed request with."""
        if self.error_type is None:
            raise ValueError(f"a {self.verdict.value} rule has no error")
        return self.error_type(self.error_message)


_ANY: Final = "*"
_S = State
_REQ = Kind.REQUEST
_NOTE = Kind.NOTIFICATION


def _dispatch(next_state: State | None = None) -> Rule:
    return Rule(Verdict.DISPATCH, next_state)


def _reject(error_type: type[RpcError], message: str | None = None) -> Rule:
    return Rule(Verdict.REJECT, error_type=error_type, error_message=message)


_DROP: Final = Rule(Verdict.DROP)

# The transition table. Keys: (state, kind, method or "*"); an exact method wins over "*".
_TABLE: Final[dict[tuple[State, Kind, str], Rule]] = {
    # -- before initialize ------------------------------------------------------------------------
    (_S.UNINITIALIZED, _REQ, "initialize"): _dispatch(_S.INITIALIZING),
    (_S.UNINITIALIZED, _REQ, _ANY): _reject(ServerNotInitialized),
    (_S.UNINITIALIZED, _NOTE, "exit"): _dispatch(_S.EXITED),
    (_S.UNINITIALIZED, _NOTE, _ANY): _DROP,
    # -- while initialize runs (a well-behaved client sends nothing until it has the result) -----
    (_S.INITIALIZING, _REQ, _ANY): _reject(
        ServerNotInitialized, "server not initialized: initialize is still running"
    ),
    (_S.INITIALIZING, _NOTE, "exit"): _dispatch(_S.EXITED),
    (_S.INITIALIZING, _NOTE, _ANY): _DROP,
    # -- the working state -------------------------------------------------------------------------
    (_S.INITIALIZED, _REQ, "initialize"): _reject(InvalidRequest, "already initialized"),
    (_S.INITIALIZED, _REQ, "shutdown"): _dispatch(_S.SHUTDOWN),
    (_S.INITIALIZED, _REQ, _ANY): _dispatch(),
    (_S.INITIALIZED, _NOTE, "exit"): _dispatch(_S.EXITED),
    (_S.INITIALIZED, _NOTE, _ANY): _dispatch(),
    # -- after shutdown: only exit (and cancelling what still runs) --------------------------------
    (_S.SHUTDOWN, _REQ, _ANY): _reject(InvalidRequest, "server is shutting down"),
    (_S.SHUTDOWN, _NOTE, "exit"): _dispatch(_S.EXITED),
    (_S.SHUTDOWN, _NOTE, "$/cancelRequest"): _dispatch(),
    (_S.SHUTDOWN, _NOTE, _ANY): _DROP,
    # -- exited: the connection is closing and reads nothing more ----------------------------------
    (_S.EXITED, _REQ, _ANY): _DROP,
    (_S.EXITED, _NOTE, _ANY): _DROP,
}

# Transitions that are not triggered by a received call but by the outcome of ``initialize``.
_INITIALIZE_OUTCOME: Final[dict[tuple[State, bool], State]] = {
    (_S.INITIALIZING, True): _S.INITIALIZED,
    (_S.INITIALIZING, False): _S.UNINITIALIZED,
}


def _compile() -> dict[State, tuple[dict[str, Rule], Rule, dict[str, Rule], Rule]]:
    """The table per state: (request rules by method, default; notification rules, default).

    Looked up on every message, so by plain strings: hashing an Enum key runs Python code.
    """
    compiled = {}
    for state in State:
        tables: dict[Kind, dict[str, Rule]] = {Kind.REQUEST: {}, Kind.NOTIFICATION: {}}
        for (row_state, kind, method), rule in _TABLE.items():
            if row_state is state:
                tables[kind][method] = rule
        requests, notes = tables[Kind.REQUEST], tables[Kind.NOTIFICATION]
        compiled[state] = (requests, requests.pop(_ANY), notes, notes.pop(_ANY))
    return compiled


_COMPILED: Final = _compile()


class Lifecycle:
    """One session's lifecycle state. Sans-IO: it decides, the server acts.

    Invariants:
      - ``state`` changes only through ``receive`` and ``initialize_finished``, as ``_TABLE`` and
        ``_INITIALIZE_OUTCOME`` say; ``_rules`` is always ``_COMPILED[state]``.
      - ``shutdown_received`` is True once a ``shutdown`` request was dispatched, and stays True.
    """

    __slots__ = ("_rules", "_state", "shutdown_received")

    def __init__(self) -> None:
        self._state = State.UNINITIALIZED
        self._rules = _COMPILED[self._state]
        self.shutdown_received = False

    @property
    def state(self) -> State:
        return self._state

    def _move(self, state: State) -> None:
        self._state = state
        self._rules = _COMPILED[state]

    def receive(self, kind: Kind, method: str) -> Rule:
        """The rule for one incoming call; moves to the rule's next state if it dispatches."""
        requests, request_default, notes, note_default = self._rules
        if kind is Kind.REQUEST:
            rule = requests.get(method) or request_default
        else:
            rule = notes.get(method) or note_default
        if rule.next_state is not None:
            if rule.next_state is State.SHUTDOWN:
                self.shutdown_received = True
            self._move(rule.next_state)
        return rule

    def initialize_finished(self, succeeded: bool) -> None:
        """Record the outcome of ``initialize``: its result was sent, or it failed."""
        next_state = _INITIALIZE_OUTCOME.get((self._state, succeeded))
        if next_state is not None:
            self._move(next_state)

    @property
    def exit_status(self) -> int:
        """What a process that this session owns should exit with (LSP: 0 after shutdown)."""
        return 0 if self.shutdown_received else 1

    def __repr__(self) -> str:
        return f"Lifecycle({self._state.value})"


def negotiate_position_encoding(offered: Sequence[str] | None) -> PositionEncoding:
    """The first encoding in the client's ``general.positionEncodings`` that we support.

    Spec: https://microsoft.github.io/language-server-protocol/specifications/lsp/3.17/specification/#positionEncodingKind
    No list, or no supported entry in it, means UTF-16, which every client must support.
    """
    for encoding in offered or ():
        if encoding in POSITION_ENCODINGS:
            return _AS_ENCODING[encoding]
    return DEFAULT_POSITION_ENCODING


_AS_ENCODING: Final[dict[str, PositionEncoding]] = {e: e for e in POSITION_ENCODINGS}
