"""Errors of the protocol layer, and the JSON-RPC error codes Symphony answers with.

Hierarchy::

    ProtocolError                  anything symphony.protocol raises on purpose
    ├── LocalProtocolError         *we* tried to send something the protocol forbids (our bug)
    ├── RemoteProtocolError        the peer's bytes break the framing; the byte stream cannot be
    │                              resynchronised, so the error sticks (see StreamConnection)
    └── RpcError                   an error that travels in an error response: CODE, message, data
        ├── ParseError             -32700  the body is not valid JSON / msgpack
        ├── InvalidRequest         -32600  valid JSON that is not a JSON-RPC 2.0 request; also a
        │                                  request after ``shutdown`` (LSP says InvalidRequest)
        ├── MethodNotFound         -32601  no handler for this method
        ├── InvalidParams          -32602  data: pydantic's error details [{type, loc, msg}]
        ├── InternalError          -32603  a handler failed; data: {logId} (also in the daemon log)
        ├── ServerNotInitialized   -32002  a request before ``initialize`` succeeded
        ├── RequestCancelled       -32800  ``$/cancelRequest`` cancelled it
        └── SymphonyError                  Symphony's own range, -32900 to -32999:
            ├── BufferNotFound     -32900  no open buffer has this URI
            ├── RevisionConflict   -32901  an edit overlaps a change made since its base revision;
            │                              data: {currentRevision}
            ├── PermissionDenied   -32902  the client may not do this (extension permissions, files)
            ├── Unauthorized       -32903  a TCP/WebSocket client without the daemon's token
            ├── MessageTooLarge    -32904  a message over the size limit; data: {size, limit}
            ├── InvalidEdit        -32905  edits that overlap, are out of order or out of range
            ├── UnknownRevision    -32906  a revision the buffer never had or no longer keeps;
            │                              data: {revision, currentRevision}
            ├── FileError          -32907  a file could not be read, decoded or written;
            │                              data: {path}
            ├── FileConflict       -32908  the file on disk changed since it was loaded or saved;
            │                              data: {path}
            │   the Pit (symphony/artifact/*, symphony/pit/*):
            ├── ArtifactNotFound   -32910  no artifact, content or upload matches a ref (or a
            │                              content-id prefix matches several);
            │                              data: {ref, what[, candidates]}
            ├── ArtifactProtected  -32911  delete refused: pinned, accepted suggestion, high
            │                              quality, held by a live workflow; data: {ref, reasons}
            ├── PutConflict        -32912  a put raced a garbage collection; send it again
            ├── EncryptionKeyError -32913  the daemon's key and the store do not go together
            │                              (missing, wrong, malformed, or for a plain store)
            └── DamagedData        -32914  stored data fails its checks or is missing, or the
                                           store is unreadable (run `symphony pit fsck`);
                                           data: {chunk} when one chunk is to blame

The -32700..-32600 codes are JSON-RPC 2.0's (https://www.jsonrpc.org/specification#error_object),
-32002 and -32800 are LSP's (https://microsoft.github.io/language-server-protocol/specifications/
lsp/3.17/specification/#errorCodes). Symphony's range sits below LSP's reserved block
(-32899..-32800), so no future LSP code can collide with it.

``RpcError.from_error(code, message, data)`` turns an error object received on the wire back into
the matching class (clients use it to raise ``RevisionConflict`` rather than a generic error); an
unknown code gives a plain ``RpcError`` that keeps the code.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

_T = TypeVar("_T")

__all__ = [
    "BufferNotFound",
    "FileConflict",
    "FileError",
    "InternalError",
    "InvalidEdit",
    "InvalidParams",
    "InvalidRequest",
    "LocalProtocolError",
    "MessageTooLarge",
    "MethodNotFound",
    "ParseError",
    "PermissionDenied",
    "ProtocolError",
    "RemoteProtocolError",
    "RequestCancelled",
    "RevisionConflict",
    "RpcError",
    "ServerNotInitialized",
    "SymphonyError",
    "Unauthorized",
    "UnknownRevision",
]


class ProtocolError(Exception):
    """Base class of every error ``symphony.protocol`` raises on purpose."""


class LocalProtocolError(ProtocolError):
    """We were about to send something the protocol forbids: a bug on this side of the wire."""


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes that break the framing (no ``Content-Length``, an endless header...).

    A byte stream cannot be resynchronised after this: a ``StreamConnection`` that raised it raises
    it again on every later call, and the server answers -32700 once and closes the connection.
    """


_BY_CODE: dict[int, type[RpcError]] = {}


class RpcError(ProtocolError):
    """An error that travels in a JSON-RPC error response.

    Subclasses set ``CODE`` (one class per code) and ``DEFAULT_MESSAGE``. ``data`` is any
    JSON-compatible value, or ``None`` for no ``data`` member.
    """

    CODE: ClassVar[int] = -32603
    DEFAULT_MESSAGE: ClassVar[str] = "error"

    def __init__(self, message: str | None = None, data: Any = None, *, code: int | None = None):
        self.message = message if message is not None else self.DEFAULT_MESSAGE
        self.data = data
        self.code = code if code is not None else self.CODE
        super().__init__(self.message)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "CODE" in cls.__dict__:
            if cls.CODE in _BY_CODE:
                raise TypeError(f"{cls.__name__}: code {cls.CODE} is already {_BY_CODE[cls.CODE]}")
            _BY_CODE[cls.CODE] = cls

    def to_error_object(self) -> dict[str, Any]:
        """The ``error`` member of a response: ``{code, message[, data]}``."""
        obj: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            obj["data"] = self.data
        return obj

    @staticmethod
    def from_error(code: int, message: str, data: Any = None) -> RpcError:
        """The exception for an error object received on the wire (the class matching ``code``)."""
        cls = _BY_CODE.get(code)
        if cls is None:
            return RpcError(message, data, code=code)
        return cls(message, data)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code}, message={self.message!r}, data={self.data!r})"
        )


class ParseError(RpcError):
    CODE = -32700
    DEFAULT_MESSAGE = "parse error"


class InvalidRequest(RpcError):
    CODE = -32600
    DEFAULT_MESSAGE = "invalid request"


class MethodNotFound(RpcError):
    CODE = -32601
    DEFAULT_MESSAGE = "method not found"


class InvalidParams(RpcError):
    """Params that do not validate. ``data`` is a list of ``{type, loc, msg}`` (pydantic's)."""

    CODE = -32602
    DEFAULT_MESSAGE = "invalid params"


class InternalError(RpcError):
    """A handler failed. ``data`` is ``{logId}``: grep the daemon log for it to find the traceback."""

    CODE = -32603
    DEFAULT_MESSAGE = "internal error"

    def __init__(
        self, message: str | None = None, data: Any = None, *, log_id: str | None = None
    ) -> None:
        if log_id is not None:
            data = {"logId": log_id}
        super().__init__(message, data)

    @property
    def log_id(self) -> str | None:
        return _data_field(self.data, "logId", str)


class ServerNotInitialized(RpcError):
    CODE = -32002
    DEFAULT_MESSAGE = "server not initialized: send initialize first"


class RequestCancelled(RpcError):
    CODE = -32800
    DEFAULT_MESSAGE = "request cancelled"


class SymphonyError(RpcError):
    """Base of Symphony's own error range (-32900 to -32999)."""

    CODE = -32999
    DEFAULT_MESSAGE = "symphony error"


class BufferNotFound(SymphonyError):
    CODE = -32900
    DEFAULT_MESSAGE = "no open buffer has this URI"


class RevisionConflict(SymphonyError):
    """``data`` is ``{currentRevision}``: re-read the buffer at that revision and retry."""

    CODE = -32901
    DEFAULT_MESSAGE = "the edit overlaps a change made since its base revision"

    def __init__(
        self, message: str | None = None, data: Any = None, *, current_revision: int | None = None
    ) -> None:
        if current_revision is not None:
            data = {"currentRevision": current_revision}
        super().__init__(message, data)

    @property
    def current_revision(self) -> int | None:
        return _data_field(self.data, "currentRevision", int)


class PermissionDenied(SymphonyError):
    CODE = -32902
    DEFAULT_MESSAGE = "permission denied"


class Unauthorized(SymphonyError):
    CODE = -32903
    DEFAULT_MESSAGE = (
        "unauthorized: send the daemon's token as initializationOptions.token "
        "(it is in the workspace's discovery file)"
    )


class MessageTooLarge(SymphonyError):
    """``data`` is ``{size, limit}`` in bytes."""

    CODE = -32904
    DEFAULT_MESSAGE = "message too large"

    def __init__(
        self,
        message: str | None = None,
        data: Any = None,
        *,
        size: int | None = None,
        limit: int | None = None,
    ) -> None:
        if size is not None and limit is not None:
            data = {"size": size, "limit": limit}
            if message is None:
                message = f"message of {size} bytes exceeds the limit of {limit} bytes"
        super().__init__(message, data)


class InvalidEdit(SymphonyError):
    CODE = -32905
    DEFAULT_MESSAGE = "invalid edit"


class UnknownRevision(SymphonyError):
    """``data`` is ``{revision, currentRevision}``."""

    CODE = -32906
    DEFAULT_MESSAGE = "unknown revision"

    def __init__(
        self,
        message: str | None = None,
        data: Any = None,
        *,
        revision: int | None = None,
        current_revision: int | None = None,
    ) -> None:
        if revision is not None and current_revision is not None:
            data = {"revision": revision, "currentRevision": current_revision}
        super().__init__(message, data)

    @property
    def current_revision(self) -> int | None:
        return _data_field(self.data, "currentRevision", int)


class FileError(SymphonyError):
    """``data`` is ``{path}``."""

    CODE = -32907
    DEFAULT_MESSAGE = "file error"

    def __init__(
        self, message: str | None = None, data: Any = None, *, path: str | None = None
    ) -> None:
        if path is not None:
            data = {"path": path}
        super().__init__(message, data)


class FileConflict(SymphonyError):
    """``data`` is ``{path}``."""

    CODE = -32908
    DEFAULT_MESSAGE = "the file changed on disk"

    def __init__(
        self, message: str | None = None, data: Any = None, *, path: str | None = None
    ) -> None:
        if path is not None:
            data = {"path": path}
        super().__init__(message, data)


def _data_field(data: Any, key: str, kind: type[_T]) -> _T | None:
    if isinstance(data, dict):
        value = data.get(key)
        if isinstance(value, kind) and not isinstance(value, bool):
            return value
    return None


# -- the Pit (symphony/artifact/*, symphony/pit/*) ------------------------------------------------
# The handlers (symphony.handlers.artifact) map the Pit's exceptions to these at their boundary.

__all__ += [
    "ArtifactNotFound",
    "ArtifactProtected",
    "DamagedData",
    "EncryptionKeyError",
    "PutConflict",
]


class ArtifactNotFound(SymphonyError):
    """No artifact, content or upload matches a ref, or a content-id prefix matches several.

    ``data`` is ``{ref, what}`` (``what``: ``artifact``, ``content`` or ``upload``), plus
    ``candidates`` (some of the matching content ids) for an ambiguous prefix.
    """

    CODE = -32910
    DEFAULT_MESSAGE = "no artifact matches this ref"

    def __init__(
        self,
        message: str | None = None,
        data: Any = None,
        *,
        ref: str | None = None,
        what: str = "artifact",
        candidates: list[str] | None = None,
    ) -> None:
        if ref is not None:
            data = {"ref": ref, "what": what}
            if candidates is not None:
                data["candidates"] = candidates
        super().__init__(message, data)

    @property
    def ref(self) -> str | None:
        return _data_field(self.data, "ref", str)


class ArtifactProtected(SymphonyError):
    """Delete refused because the artifact is protected. ``data`` is ``{ref, reasons}``
    (``pinned``, ``accepted-suggestion``, ``quality``, ``live``); ``force`` overrides."""

    CODE = -32911
    DEFAULT_MESSAGE = "the artifact is protected; delete it with force"

    def __init__(
        self,
        message: str | None = None,
        data: Any = None,
        *,
        ref: str | None = None,
        reasons: list[str] | None = None,
    ) -> None:
        if ref is not None and reasons is not None:
            data = {"ref": ref, "reasons": reasons}
        super().__init__(message, data)

    @property
    def reasons(self) -> list[str]:
        found = _data_field(self.data, "reasons", list)
        return [str(reason) for reason in found] if found is not None else []


class PutConflict(SymphonyError):
    """A put raced a garbage collection that removed chunks it meant to share: send it again
    (only a put lasting longer than the collector's grace period, an hour by default)."""

    CODE = -32912
    DEFAULT_MESSAGE = "the put raced a garbage collection; send it again"


class EncryptionKeyError(SymphonyError):
    """The store is encrypted and the daemon has no key or the wrong one, the key is malformed,
    or a key was given for a store created without encryption. The daemon takes the key from
    ``SYMPHONY_PIT_KEY`` or ``SYMPHONY_PIT_KEY_FILE`` when it starts."""

    CODE = -32913
    DEFAULT_MESSAGE = "the encryption key does not go with the store"


class DamagedData(SymphonyError):
    """Stored bytes fail their authentication or hash check, or are missing (never returned as
    content), or the store itself is unreadable. ``data`` is ``{chunk}`` when one chunk is to
    blame. ``symphony pit fsck`` reports the damage."""

    CODE = -32914
    DEFAULT_MESSAGE = "stored data is damaged (run `symphony pit fsck`)"

    def __init__(
        self, message: str | None = None, data: Any = None, *, chunk: str | None = None
    ) -> None:
        if chunk is not None:
            data = {"chunk": chunk}
        super().__init__(message, data)

    @property
    def chunk(self) -> str | None:
        return _data_field(self.data, "chunk", str)
