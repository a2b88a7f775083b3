"""Request ids and `Server-Timing`, in one pure ASGI layer that wraps every other.

The id comes from `X-Request-ID` when it parses as a UUID (32 hex digits, dashes optional: what
nginx's `$request_id` and OpenTelemetry trace ids look like); anything else is replaced by a new
one, so that nothing a client makes up reaches the logs. It is set in asgi-correlation-id's
`correlation_id` context variable, which log lines and problem bodies read, and sent back on
every response together with `Server-Timing: app;dur=<ms>` (how long the app took to start its
answer). One layer instead of two: each layer costs every request its own call and closure.
"""

import time
import uuid

from asgi_correlation_id import correlation_id
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "X-Request-ID"
_HEADER_KEY = REQUEST_ID_HEADER.lower().encode("latin-1")


def valid_request_id(value: str) -> bool:
    """True for an id worth keeping: one that parses as a UUID."""
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def request_id_of(scope: Scope) -> str:
    """The request's id: its valid `X-Request-ID`, else a new one."""
    for key, value in scope["headers"]:
        if key == _HEADER_KEY:
            incoming: str = value.decode("latin-1")
            if valid_request_id(incoming):
                return incoming
            break
    return uuid.uuid4().hex


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        correlation_id.set(request_id)
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        id_header = (_HEADER_KEY, request_id.encode("latin-1"))
        start = time.perf_counter()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                elapsed_ms = (time.perf_counter() - start) * 1000
                timing = (b"server-timing", f"app;dur={elapsed_ms:.2f}".encode("latin-1"))
                message["headers"] = [*message.get("headers", ()), id_header, timing]
            await send(message)

        await self.app(scope, receive, send_with_headers)
