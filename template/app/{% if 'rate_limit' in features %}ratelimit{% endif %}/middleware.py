"""The default limit on the API: every request under the prefix counts for its client.

The counters (`app.state.rate_limits`) open with the process, in the lifespan. Pure ASGI,
inside the request-id layer: a 429 carries the request id, every allowed response
carries the `RateLimit` fields. Paths outside the prefix (/health, /ready, /docs) are never limited.
"""

from http import HTTPStatus

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import problem
from app.ratelimit.clients import Network, UserOfToken, VerifiedKeys, identity
from app.ratelimit.limiter import Policy, RateLimits


class RateLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        policy: Policy,
        prefix: str,
        trusted: tuple[Network, ...],
        user_of: UserOfToken | None,
        keys: VerifiedKeys | None = None,
    ) -> None:
        self.app = app
        self.policy = policy
        self.prefix = prefix
        self.trusted = trusted
        self.user_of = user_of
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        client = identity(scope, self.trusted, self.user_of, self.keys)
        limits: RateLimits = scope["app"].state.rate_limits
        decision = await limits.hit(self.policy, client)
        if decision is None:
            await self.app(scope, receive, send)
            return
        if not decision.allowed:
            response = problem(
                HTTPStatus.TOO_MANY_REQUESTS,
                detail=f"Too many requests; retry in {max(1, decision.reset_seconds)} s.",
                instance=path,
                headers=decision.headers(),
            )
            await response(scope, receive, send)
            return
        fields = decision.headers()

        async def send_with_fields(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in fields.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_fields)
