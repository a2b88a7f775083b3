"""CORS for requests that come with an `Origin`; the others skip the CORS layer's work.

Starlette's `CORSMiddleware` parses every request's headers and wraps its response, and for a
request without an `Origin` (servers, mobile apps, load balancers, curl) all it does is add
`Vary: Origin`, so that a shared cache never hands that answer to a browser's cross-origin
request. Here that header is appended directly; requests with an `Origin` (browsers) get the
whole middleware: preflights, `Access-Control-Allow-Origin` for the configured origins.
"""

from collections.abc import Sequence

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

VARY_ORIGIN = (b"vary", b"Origin")


def has_origin(scope: Scope) -> bool:
    return any(name == b"origin" for name, _ in scope["headers"])


class CorsIfOriginMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        allow_origins: Sequence[str],
        allow_credentials: bool,
        expose_headers: Sequence[str] = (),
    ) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=allow_origins,
            allow_credentials=allow_credentials,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=expose_headers,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or has_origin(scope):
            await self.cors(scope, receive, send)
            return

        async def send_vary(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), VARY_ORIGIN]
            await send(message)

        await self.app(scope, receive, send_vary)
