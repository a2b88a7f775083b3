"""The default limit on the API: every request under the prefix counts for its client.

With `api_keys` (multi_tenant), a request with `X-API-Key` counts for the key's organization
once any process has verified the key (`RateLimits.key_verified`): known in this process, or
named by the key's marker in Redis, which the limiter reads in the hit's own round trip.

The counters (`app.state.rate_limits`) open with the process, in the lifespan. Pure ASGI,
inside the request-id layer: a 429 carries the request id, every allowed response
carries the `RateLimit` fields. Paths outside the prefix (/health, /ready, /docs) are never limited.
A WebSocket handshake under the prefix counts as a request too: a refused one is answered with
the same 429 (or, on a server without ASGI's denial responses, closed with 1008 before it opens).
`policy_of` may choose another policy for a client (with billing: its plan's).
"""

from collections.abc import Awaitable, Callable
from http import HTTPStatus

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import problem
from app.ratelimit.clients import Network, UserOfToken, identity
from app.ratelimit.limiter import Policy, RateLimits

WEB = frozenset({"http", "websocket"})
DENIAL = "websocket.http.response"  # the ASGI extension for answering a handshake with HTTP

PolicyOf = Callable[[Scope, str, Policy], Awaitable[Policy]]
"""(the request, its client, the default policy) -> the policy its hit counts under."""


class RateLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        policy: Policy,
        prefix: str,
        trusted: tuple[Network, ...],
        user_of: UserOfToken | None,
        api_keys: bool = False,
        exempt: frozenset[str] = frozenset(),
        policy_of: PolicyOf | None = None,
    ) -> None:
        self.app = app
        self.policy = policy
        self.prefix = prefix
        self.trusted = trusted
        self.user_of = user_of
        self.api_keys = api_keys
        # Paths never counted: a caller that retries on its own schedule (a webhook sender).
        self.exempt = exempt
        self.policy_of = policy_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] not in WEB or not path.startswith(self.prefix) or path in self.exempt:
            await self.app(scope, receive, send)
            return
        limits: RateLimits = scope["app"].state.rate_limits
        keys = limits.keys if self.api_keys else None
        client = identity(scope, self.trusted, self.user_of, keys)
        marker = None
        if keys is not None and limits.shared and not client.startswith("org:"):
            api_key = Headers(scope=scope).get("x-api-key")
            marker = keys.marker(api_key) if api_key else None
        policy = self.policy
        if self.policy_of is not None:
            policy = await self.policy_of(scope, client, policy)
        decision = await limits.hit(policy, client, marker=marker)
        if decision is None:
            await self.app(scope, receive, send)
            return
        if not decision.allowed:
            detail = f"Too many requests; retry in {max(1, decision.reset_seconds)} s."
            if scope["type"] == "websocket" and DENIAL not in scope.get("extensions", {}):
                await send({"type": "websocket.close", "code": 1008, "reason": detail})
                return
            response = problem(
                HTTPStatus.TOO_MANY_REQUESTS,
                detail=detail,
                instance=path,
                headers=decision.headers(),
            )
            await response(scope, receive, send)  # a WebSocket's: as its handshake's answer
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        fields = decision.headers()

        async def send_with_fields(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in fields.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_fields)
