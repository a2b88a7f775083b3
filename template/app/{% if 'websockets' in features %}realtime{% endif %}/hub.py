"""The connections of this process, by scope (an owner, an organization), and their queues.

Delivering never waits: each connection has a bounded queue that its own task drains onto the
socket. A connection whose queue is full (a client that stopped reading) is marked as overflowed
and closed by its task, rather than holding up every other connection or growing without bound.
"""

import asyncio


class Subscription:
    """One connection's place in the hub: the messages waiting to be sent to it."""

    def __init__(self, scope: str, max_pending: int) -> None:
        self.scope = scope
        self.queue: asyncio.Queue[str] = asyncio.Queue(max_pending)
        self.overflowed = asyncio.Event()


class Hub:
    """Connections by scope. One per process; fed by `Events` or by the Redis relay."""

    def __init__(self, *, max_pending: int = 256) -> None:
        self.max_pending = max_pending
        self._scopes: dict[str, set[Subscription]] = {}

    def __len__(self) -> int:
        return sum(len(subscriptions) for subscriptions in self._scopes.values())

    def subscribe(self, scope: str) -> Subscription:
        subscription = Subscription(scope, self.max_pending)
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
        """Queue `message` for every connection of `scope`; the number of connections reached."""
        reached = 0
        for subscription in self._scopes.get(scope, ()):
            try:
                subscription.queue.put_nowait(message)
            except asyncio.QueueFull:
                subscription.overflowed.set()
            else:
                reached += 1
        return reached
