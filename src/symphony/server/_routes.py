"""Routes: method name -> (spec with its params model, handler, kind). What the dispatcher reads.

A handler is a plain coroutine function ``async def name(ctx: RequestContext, params: P) -> R``,
and ``route(spec, handler)`` is typed so that mypy checks the handler against the spec's params
and result models. ``RouteTable`` also checks at registration (pluggy's discipline): a handler
that is not a coroutine function, takes the wrong number of arguments, or a method registered
twice is a ``RouteError`` naming the method and the handler, raised when the table is built,
not when a client first calls it.

Params are validated here, once, before the handler runs: missing params count as ``{}``,
positional (array) params are refused, and a pydantic ``ValidationError`` becomes
``InvalidParams`` whose data is the list of ``{type, loc, msg}`` (no input values echoed back:
they may be megabytes).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, overload

from pydantic import BaseModel, ValidationError

from symphony.protocol import InvalidParams, Kind, NotificationSpec, Params, RequestSpec
from symphony.server._exceptions import RouteError

if TYPE_CHECKING:
    from symphony.server._context import RequestContext

__all__ = ["Handler", "Route", "RouteTable", "route"]

P = TypeVar("P", bound=BaseModel)
R = TypeVar("R", bound=BaseModel | None)
Handler = Callable[["RequestContext", Any], Coroutine[Any, Any, Any]]


@dataclass(frozen=True, slots=True)
class Route:
    """One method the daemon serves. Build it with ``route(spec, handler)``."""

    method: str
    kind: Kind
    params_model: type[BaseModel]
    handler: Handler
    spec: RequestSpec[Any, Any] | NotificationSpec[Any]
    inline: bool = False

    def parse_params(self, params: Params) -> BaseModel:
        """The validated params model, or ``InvalidParams`` with pydantic's details."""
        if params is None:
            params = {}
        elif type(params) is list:
            raise InvalidParams(
                f"invalid params for {self.method}: params must be an object (by name), "
                "not an array"
            )
        try:
            # The validator itself (model_validate's wrapper costs as much again on small params).
            model: BaseModel = self.params_model.__pydantic_validator__.validate_python(params)
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_context=False, include_input=False)
            raise InvalidParams(_summary(self.method, errors), errors) from None
        return model

    def dump_result(self, result: Any) -> Any:
        """The JSON-compatible wire value of a handler's result."""
        if isinstance(result, BaseModel):
            # The serializer itself: model_dump's wrapper costs three times the work here.
            return result.__pydantic_serializer__.to_python(
                result, exclude_none=True, by_alias=True
            )
        return result


@overload
def route(
    spec: RequestSpec[P, R],
    handler: Callable[[RequestContext, P], Awaitable[R]],
    *,
    inline: bool = False,
) -> Route: ...
@overload
def route(
    spec: NotificationSpec[P],
    handler: Callable[[RequestContext, P], Awaitable[None]],
    *,
    inline: bool = False,
) -> Route: ...
def route(spec: Any, handler: Any, *, inline: bool = False) -> Route:
    """Pair a method spec with its handler, checking the handler's shape now.

    ``inline=True`` declares that the handler never awaits (it only computes, like every
    operation on the synchronous editor core). The connection then runs it in its reader, in
    arrival order, without a task: the fastest path, and requests apply exactly in the order
    they were sent. A handler that awaits must not be inline (the dispatcher stops it at its
    first await and answers -32603, naming the route).
    """
    label = f"{spec.method!r} -> {getattr(handler, '__qualname__', handler)!r}"
    if spec.direction != "client":
        raise RouteError(f"{label}: {spec.method} is sent by the server, it cannot be routed")
    if not inspect.iscoroutinefunction(handler):
        raise RouteError(f"{label}: a handler must be an `async def` function")
    try:
        inspect.signature(handler).bind(None, None)
    except TypeError:
        raise RouteError(
            f"{label}: a handler takes exactly (ctx, params), got {inspect.signature(handler)}"
        ) from None
    kind = Kind.REQUEST if isinstance(spec, RequestSpec) else Kind.NOTIFICATION
    return Route(spec.method, kind, spec.params, handler, spec, inline)


class RouteTable(Mapping[str, Route]):
    """The daemon's dispatch table. Immutable; ``with_routes`` makes an extended copy."""

    def __init__(self, routes: Iterable[Route]) -> None:
        table: dict[str, Route] = {}
        for entry in routes:
            if entry.method in table:
                raise RouteError(
                    f"{entry.method!r} is routed twice: to "
                    f"{table[entry.method].handler.__qualname__} and {entry.handler.__qualname__}"
                )
            table[entry.method] = entry
        self._table = table

    def with_routes(self, *routes: Route, replace: bool = False) -> RouteTable:
        """A new table with more routes (``replace=True`` lets them override existing ones)."""
        if replace:
            names = {r.method for r in routes}
            return RouteTable(
                [*(r for r in self._table.values() if r.method not in names), *routes]
            )
        return RouteTable([*self._table.values(), *routes])

    def __getitem__(self, method: str) -> Route:
        return self._table[method]

    def get(self, method: str, default: Any = None) -> Any:  # faster than Mapping.get
        return self._table.get(method, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)


def _summary(method: str, errors: list[Any]) -> str:
    parts = []
    for error in errors[:3]:
        where = ".".join(str(part) for part in error.get("loc", ())) or "params"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return f"invalid params for {method}: " + "; ".join(parts) + more
