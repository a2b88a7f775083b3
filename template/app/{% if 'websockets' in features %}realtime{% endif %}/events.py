"""Publishing item events, and relaying them from Redis to this process's connections.

Services publish after their transaction has committed. With Redis, an event goes to one pub/sub
channel and every process's relay (one subscriber task per process) hands it to the connections
of its scope in that process; without Redis it goes straight to this process's hub, which only
reaches clients connected to the same process.

Events are best-effort: Redis down or slow (one short timeout), the event is dropped, a warning is
logged at most once per interval and Redis is left alone for a second; the write stays done.
"""

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

from app.core.redis import REDIS_ERRORS, RedisClient
from app.realtime.hub import Hub

logger = logging.getLogger(__name__)

CHANNEL = "realtime:events"
WARN_EVERY_SECONDS = 60.0
BACK_OFF_SECONDS = 1.0
RECONNECT_SECONDS = 1.0


def channel_of(redis: RedisClient) -> str:
    """The channel of this project's events. Pub/sub channels belong to the whole Redis server,
    not to a database, so the name carries REDIS_URL's database: projects that share a server,
    each with a database of its own (for their keys), never hear each other's events."""
    return f"{CHANNEL}:{redis.database}"


def scope_key(kind: str, value: object) -> str:
    """The name of the connections that share events: `owner:<id>`, `organization:<id>`, …"""
    return f"{kind}:{value}"


def encode(event_type: str, data: Mapping[str, Any]) -> str:
    return json.dumps({"type": event_type, "data": data}, separators=(",", ":"))


class Events:
    """The process's publisher: services call `scoped(...).publish(...)` after a commit."""

    def __init__(self, hub: Hub, redis: RedisClient | None, *, channel: str | None = None) -> None:
        self.hub = hub
        self.redis = redis
        self.channel = channel or (CHANNEL if redis is None else channel_of(redis))
        self._skip_until = 0.0
        self._warned_at = -WARN_EVERY_SECONDS

    def scoped(self, kind: str, value: object) -> "ScopedEvents":
        return ScopedEvents(self, scope_key(kind, value))

    async def publish(self, scope: str, event_type: str, data: Mapping[str, Any]) -> None:
        message = encode(event_type, data)
        if self.redis is None:
            self.hub.deliver(scope, message)
            return
        await self._send(self.redis, {"scope": scope, "message": message}, f"a {event_type} event")

    async def revoke(self, user_id: object, scope: str | None = None) -> None:
        """End the connections of a user who lost access (in `scope`, else everywhere), in every
        process. Call it after the commit, like `publish`."""
        if self.redis is None:
            self.hub.revoke(str(user_id), scope)
            return
        await self._send(self.redis, {"scope": scope, "revoke": str(user_id)}, "a revocation")

    async def _send(self, redis: RedisClient, envelope: Mapping[str, Any], what: str) -> None:
        if time.monotonic() < self._skip_until:
            return
        try:
            await redis.publish(self.channel, json.dumps(envelope, separators=(",", ":")))
        except REDIS_ERRORS as exc:
            now = time.monotonic()
            self._skip_until = now + BACK_OFF_SECONDS
            if now - self._warned_at >= WARN_EVERY_SECONDS:
                self._warned_at = now
                logger.warning("publishing %s failed, dropped: %r", what, exc)


class ScopedEvents:
    """The events of one scope: every connection of that owner (organization) receives them."""

    def __init__(self, events: Events, scope: str) -> None:
        self.events = events
        self.scope = scope

    async def publish(self, event_type: str, data: Mapping[str, Any]) -> None:
        await self.events.publish(self.scope, event_type, data)


class RedisRelay:
    """One subscriber per process: Redis messages on the channel go to this process's hub.

    It reconnects on its own (every `RECONNECT_SECONDS`) after Redis goes away; `subscribed`
    is the readiness check: a process that cannot receive events is not ready. Once subscribed
    again it ends every connection of the process (1013): their clients missed the events and
    revocations of the outage, so they reconnect, authenticate again and re-read.
    """

    def __init__(self, redis: RedisClient, hub: Hub, *, channel: str | None = None) -> None:
        self.redis = redis
        self.hub = hub
        self.channel = channel or channel_of(redis)
        self.connected = asyncio.Event()
        self._lost = False
        self._warned_at = -WARN_EVERY_SECONDS

    async def subscribed(self) -> None:
        if not self.connected.is_set():
            raise ConnectionError(f"not subscribed to {self.channel}")

    async def run(self) -> None:
        while True:
            try:
                messages = self.redis.messages(self.channel, on_subscribed=self._on_subscribed)
                async for raw in messages:
                    self.relay(raw)
            except REDIS_ERRORS as exc:
                self.connected.clear()
                self._lost = True
                now = time.monotonic()
                if now - self._warned_at >= WARN_EVERY_SECONDS:
                    self._warned_at = now
                    logger.warning("realtime subscription lost, reconnecting: %r", exc)
                await asyncio.sleep(RECONNECT_SECONDS)

    def _on_subscribed(self) -> None:
        if self._lost:
            self._lost = False
            ended = self.hub.interrupt()
            logger.warning("realtime subscription back; %d connection(s) told to reconnect", ended)
        self.connected.set()

    def relay(self, raw: bytes) -> None:
        """Hand an envelope to the hub: an event for a scope's connections, or a revocation."""
        try:
            envelope = json.loads(raw)
            scope = envelope["scope"]
            revoked, message = envelope.get("revoke"), envelope.get("message")
        except (ValueError, KeyError, TypeError, AttributeError):
            revoked = message = scope = None
        if isinstance(revoked, str) and (scope is None or isinstance(scope, str)):
            self.hub.revoke(revoked, scope)
        elif isinstance(scope, str) and isinstance(message, str):
            self.hub.deliver(scope, message)
        else:
            logger.warning("ignored a malformed message on %s", self.channel)
