"""The connections of this process, by scope (an owner, an organization), and their queues.

Delivering never waits: each connection has a bounded queue that its own task drains onto the
socket. A connection whose queue is full (a client that stopped reading) is ended and closed by
its task, rather than holding up every other connection or growing without bound. The hub also
ends the connections of a user who lost access (removed, deactivated), and every connection
when this process's events were interrupted.
"""

import asyncio
from collections.abc import Iterable

from fastapi import status

PROJECT = "project:all"
"""The scope of the whole project's events (`scope_key("project", "all")`)."""


class Subscription:
    """One connection's place in the hub: the messages waiting to be sent to it, and whether the
    hub has ended it (with the close code and reason to send)."""

    def __init__(self, scope: str, max_pending: int, user_id: str | None = None) -> None:
        self.scope = scope
        self.user_id = user_id
        self.queue: asyncio.Queue[str] = asyncio.Queue(max_pending)
        self.ended = asyncio.Event()
        self.close_code = status.WS_1000_NORMAL_CLOSURE
        self.close_reason = ""

    def offer(self, message: str) -> bool:
        """Queue `message` without waiting; a full queue ends the connection (False)."""
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.end(status.WS_1008_POLICY_VIOLATION, "too slow: events could not be delivered")
            return False
        return True

    def end(self, code: int, reason: str) -> None:
        """Have the connection closed with `code` (the first reason given wins)."""
        if not self.ended.is_set():
            self.close_code, self.close_reason = code, reason
            self.ended.set()


class Hub:
    """Connections by scope. One per process; fed by `Events` or by the Redis relay."""

    def __init__(self, *, max_pending: int = 256) -> None:
        self.max_pending = max_pending
        self._scopes: dict[str, set[Subscription]] = {}

    def __len__(self) -> int:
        return sum(len(subscriptions) for subscriptions in self._scopes.values())

    def subscribe(self, scope: str, user_id: str | None = None) -> Subscription:
        subscription = Subscription(scope, self.max_pending, user_id)
        self._scopes.setdefault(scope, set()).add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscriptions = self._scopes.get(subscription.scope)
        if subscriptions is None:
            return
        subscriptions.discard(subscription)
        if not subscriptions:
            del self._scopes[subscription.scope]

    def deliver(self, scope: str, message: str) -> int:
        """Queue `message` for every connection of `scope`; the number of connections reached.

        An event of the whole project (rows that every user may read: a resource of scope
        `global`) reaches every connection, whichever owner or organization it follows.
        """
        if scope == PROJECT:
            chosen: Iterable[set[Subscription]] = self._scopes.values()
        else:
            chosen = [self._scopes.get(scope, set())]
        return sum(
            subscription.offer(message)
            for subscriptions in chosen
            for subscription in subscriptions
        )

    def revoke(self, user_id: str, scope: str | None = None) -> None:
        """End the connections of `user_id` (in `scope`, else in every scope)."""
        scopes = self._scopes.values() if scope is None else [self._scopes.get(scope, set())]
        for subscriptions in scopes:
            for subscription in subscriptions:
                if subscription.user_id == user_id:
                    subscription.end(status.WS_1008_POLICY_VIOLATION, "access revoked")

    def interrupt(self) -> int:
        """End every connection: events may have been lost (the Redis subscription was), so each
        client reconnects, authenticates again and re-reads what it shows. How many."""
        ended = 0
        for subscriptions in self._scopes.values():
            for subscription in subscriptions:
                subscription.end(status.WS_1013_TRY_AGAIN_LATER, "events were interrupted")
                ended += 1
        return ended
