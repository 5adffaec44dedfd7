"""The in-process event bus, and notifications encoded once for many receivers.

Topics are ``/``-separated segments (``buffer/didSave``, ``extension/acme.fmt/progress``).
Patterns match them segment by segment: ``*`` matches exactly one segment, ``**`` any number of
segments (zero included: ``extension/**`` matches ``extension`` too), anything else itself.

Theory of operation. ``publish`` is synchronous and never waits: it finds the matching
subscribers (cached per topic) and hands each the same ``Event`` through its ``deliver``
callable, which must not block either. Every subscriber has a bounded queue of its own: a
connection's outgoing event budget (see ``Connection.send_shared``) or an ``EventQueue`` for
in-process consumers. A subscriber whose queue is full loses the event and counts it; before the
next event it does receive, it is told how many it missed (``symphony/eventsDropped`` on the
wire, an ``EventsDropped`` item in an ``EventQueue``). So a slow subscriber costs the publisher
O(1) and never delays the others.

Encoding once: an ``Event`` carries one ``SharedNotification`` (``symphony/event``), which
encodes its bytes at most once per wire variant (codec x framing), however many connections it
is written to.

Call ``publish`` from the event loop's thread (handlers do; a worker thread uses
``loop.call_soon_threadsafe``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from symphony.protocol import Codec, encode_body, frame

__all__ = [
    "Event",
    "EventBus",
    "EventQueue",
    "EventsDropped",
    "SharedNotification",
    "Subscription",
    "topic_matches",
    "validate_pattern",
    "validate_topic",
]

#: Distinct topics whose subscriber lists are cached; the cache is cleared when it grows past this.
_CACHE_LIMIT: Final = 4096


class SharedNotification:
    """A notification encoded at most once per wire variant, then shared by every receiver.

    Invariant: ``_wire[(codec, framed)]`` is exactly the bytes ``frame``/``encode_body`` give for
    ``{"jsonrpc": "2.0", "method": method, "params": params}`` in that variant.
    """

    __slots__ = ("_wire", "method", "params")

    def __init__(self, method: str, params: Any) -> None:
        self.method = method
        self.params = params
        self._wire: dict[tuple[Codec, bool], bytes] = {}

    def wire(self, codec: Codec, framed: bool) -> bytes:
        """The bytes to write for this notification on a transport of that kind."""
        key = (codec, framed)
        data = self._wire.get(key)
        if data is None:
            body = self._wire.get((codec, False))
            if body is None:
                body = encode_body(
                    {"jsonrpc": "2.0", "method": self.method, "params": self.params}, codec
                )
                self._wire[(codec, False)] = body
            data = frame(body, codec) if framed else body
            self._wire[key] = data
        return data


class Event:
    """One published event: ``topic`` and its JSON-compatible ``data``."""

    __slots__ = ("_notification", "data", "topic")

    def __init__(self, topic: str, data: Any) -> None:
        self.topic = topic
        self.data = data
        self._notification: SharedNotification | None = None

    @property
    def notification(self) -> SharedNotification:
        """This event as a ``symphony/event`` notification, encoded once for all connections."""
        if self._notification is None:
            self._notification = SharedNotification(
                "symphony/event", {"topic": self.topic, "data": self.data}
            )
        return self._notification

    def __repr__(self) -> str:
        return f"Event({self.topic!r}, {self.data!r})"


@dataclass(frozen=True, slots=True)
class EventsDropped:
    """In an ``EventQueue``: ``count`` events were lost here because the consumer was slow."""

    count: int


def validate_topic(topic: str) -> tuple[str, ...]:
    """The segments of a topic to publish; wildcards and empty segments are refused."""
    segments = tuple(topic.split("/"))
    for segment in segments:
        if not segment or segment in ("*", "**"):
            raise ValueError(
                f"invalid topic {topic!r}: segments must be non-empty and not wildcards"
            )
    return segments


def validate_pattern(pattern: str) -> tuple[str, ...]:
    """The segments of a subscription pattern; ``*``/``**`` must be whole segments."""
    segments = tuple(pattern.split("/"))
    for segment in segments:
        if not segment:
            raise ValueError(f"invalid topic pattern {pattern!r}: empty segment")
        if ("*" in segment) and segment not in ("*", "**"):
            raise ValueError(
                f"invalid topic pattern {pattern!r}: '*' and '**' must be whole segments"
            )
    return segments


def topic_matches(pattern: tuple[str, ...], topic: tuple[str, ...]) -> bool:
    """Whether a pattern's segments match a topic's segments."""
    if not pattern:
        return not topic
    head = pattern[0]
    if head == "**":
        rest = pattern[1:]
        return any(topic_matches(rest, topic[i:]) for i in range(len(topic) + 1))
    if not topic:
        return False
    if head != "*" and head != topic[0]:
        return False
    return topic_matches(pattern[1:], topic[1:])


class Subscription:
    """A subscriber's patterns on one bus. Change them with ``add``/``remove``; ``close`` ends it.

    Invariant: ``patterns`` has no duplicates and keeps the order patterns were added in.
    """

    def __init__(self, bus: EventBus, deliver: Callable[[Event], None]) -> None:
        self._bus = bus
        self.deliver = deliver
        self.patterns: list[str] = []
        self._compiled: list[tuple[str, ...]] = []

    def add(self, patterns: Iterable[str]) -> None:
        """Subscribe to more patterns (``ValueError`` for an invalid one; nothing is added then)."""
        new = [(p, validate_pattern(p)) for p in patterns]
        for pattern, compiled in new:
            if pattern not in self.patterns:
                self.patterns.append(pattern)
                self._compiled.append(compiled)
        self._bus._changed()

    def remove(self, patterns: Iterable[str]) -> None:
        """Drop these patterns (unknown ones are ignored)."""
        gone = set(patterns)
        kept = [(p, c) for p, c in zip(self.patterns, self._compiled, strict=True) if p not in gone]
        self.patterns = [p for p, _ in kept]
        self._compiled = [c for _, c in kept]
        self._bus._changed()

    def matches(self, topic: tuple[str, ...]) -> bool:
        return any(topic_matches(pattern, topic) for pattern in self._compiled)

    def close(self) -> None:
        self._bus._remove(self)


class EventBus:
    """Publish/subscribe with wildcard topics; never blocks the publisher (see module docstring)."""

    def __init__(self) -> None:
        self._subscriptions: list[Subscription] = []
        self._cache: dict[str, tuple[Subscription, ...]] = {}
        self.published = 0

    def subscribe(self, patterns: Iterable[str], deliver: Callable[[Event], None]) -> Subscription:
        """A subscription calling ``deliver(event)`` (which must not block) for each match."""
        subscription = Subscription(self, deliver)
        subscription.add(patterns)
        self._subscriptions.append(subscription)
        self._changed()
        return subscription

    def queue(self, patterns: Iterable[str], *, maxsize: int = 1024) -> EventQueue:
        """An ``EventQueue`` subscribed to ``patterns``, for consumers inside the daemon."""
        events = EventQueue(maxsize)
        events.subscription = self.subscribe(patterns, events.deliver)
        return events

    def publish(self, topic: str, data: Any = None) -> int:
        """Deliver an event to every matching subscriber; returns how many there were."""
        subscribers = self._cache.get(topic)
        if subscribers is None:
            segments = validate_topic(topic)
            subscribers = tuple(s for s in self._subscriptions if s.matches(segments))
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[topic] = subscribers
        if subscribers:
            event = Event(topic, data)
            for subscription in subscribers:
                subscription.deliver(event)
        self.published += 1
        return len(subscribers)

    @property
    def subscription_count(self) -> int:
        return len(self._subscriptions)

    def _changed(self) -> None:
        self._cache.clear()

    def _remove(self, subscription: Subscription) -> None:
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)
            self._changed()


class EventQueue:
    """A bounded queue of events for an in-process consumer: ``async for item in queue``.

    Items are ``Event``s, and an ``EventsDropped(count)`` wherever events were lost because the
    queue was full: it comes right before the first event delivered after the loss, so the
    consumer learns of the gap exactly where it happened.

    Invariants: at most ``maxsize`` events are queued (plus at most one ``EventsDropped``);
    ``_dropped`` counts losses not yet reported.
    """

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be positive, not {maxsize}")
        self.maxsize = maxsize
        self.subscription: Subscription | None = None
        self._items: deque[Event | EventsDropped] = deque()
        self._events = 0
        self._dropped = 0
        self._ready = asyncio.Event()
        self._closed = False

    def deliver(self, event: Event) -> None:
        if self._closed:
            return
        if self._events >= self.maxsize:
            self._dropped += 1
            return
        if self._dropped:
            self._items.append(EventsDropped(self._dropped))
            self._dropped = 0
        self._items.append(event)
        self._events += 1
        self._ready.set()

    async def get(self) -> Event | EventsDropped:
        """The next item; waits for one. Raises ``EOFError`` once closed and empty."""
        while not self._items:
            if self._closed:
                if self._dropped:
                    count, self._dropped = self._dropped, 0
                    return EventsDropped(count)
                raise EOFError("event queue closed")
            self._ready.clear()
            await self._ready.wait()
        item = self._items.popleft()
        if isinstance(item, Event):
            self._events -= 1
        return item

    def get_nowait(self) -> Event | EventsDropped | None:
        """The next item if there is one (``None`` otherwise)."""
        if not self._items:
            return None
        item = self._items.popleft()
        if isinstance(item, Event):
            self._events -= 1
        return item

    @property
    def dropped(self) -> int:
        """Events lost and not yet reported."""
        return self._dropped

    def __len__(self) -> int:
        return self._events

    def close(self) -> None:
        """Unsubscribe; queued items can still be read."""
        self._closed = True
        if self.subscription is not None:
            self.subscription.close()
        self._ready.set()

    def __aiter__(self) -> EventQueue:
        return self

    async def __anext__(self) -> Event | EventsDropped:
        try:
            return await self.get()
        except EOFError:
            raise StopAsyncIteration from None
