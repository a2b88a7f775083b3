"""Refuse input no handler should see: oversized bodies (413) and unstorable text (422).

Pure ASGI, in front of routing and parsing:
- A body over `max_body_bytes` is refused before it is parsed: at once when `Content-Length`
  says so, else as soon as the streamed (chunked) body passes the limit, so memory never grows
  with the size of a refused body. The 413 is sent at once; then the rest of the body is read
  and dropped (at most `DRAIN_BYTES`, for at most `DRAIN_SECONDS`) before the connection
  closes: closed while the body still arrives, the socket answers the client's data with a
  reset, which can throw away the 413 the client had not read yet (a client that writes the
  whole body before it reads saw "connection reset").
- A NUL character (`%00`) in the path, in the query string or in a header is a 422 naming where
  it was: no database column can store it (PostgreSQL refuses it outright). Body fields are
  checked by the request schemas (`app.schemas.common.InputModel`).
"""

import asyncio
from http import HTTPStatus
from urllib.parse import parse_qsl

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import problem

NUL = "\x00"
NO_BODY_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})
DRAIN_BYTES = 32 * 1024 * 1024
DRAIN_SECONDS = 3.0


class RequestBodyTooLargeError(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            detail=f"the request body is larger than {limit} bytes",
        )


def unstorable_inputs(scope: Scope) -> list[dict[str, str]]:
    """Where the request's path, query parameters and headers carry a NUL character."""
    errors: list[dict[str, str]] = []
    if NUL in scope["path"] or b"%00" in scope.get("raw_path", b""):
        errors.append(_error("path"))
    query: bytes = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if NUL in name or NUL in value:
                errors.append(_error(f"query.{name.replace(NUL, '')}"))
    for name, value in scope["headers"]:
        if b"\x00" in value:
            errors.append(_error(f"header.{name.decode('latin-1')}"))
    return errors


def _error(field: str) -> dict[str, str]:
    return {
        "field": field,
        "message": "contains a NUL character, which cannot be stored",
        "type": "string_unstorable",
    }


class InputGuardMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        errors = unstorable_inputs(scope)
        if errors:
            response = problem(
                HTTPStatus.UNPROCESSABLE_ENTITY,
                title="Validation error",
                detail="The request is not valid; see `errors` for each field.",
                instance=scope["path"].replace(NUL, ""),
                errors=errors,
            )
            await response(scope, receive, send)
            return
        declared = self._declared_length(scope)
        if declared is not None and declared <= self.max_body_bytes:
            await self.app(scope, receive, send)  # the server delivers no more than declared
            return
        if declared is None and scope["method"] in NO_BODY_METHODS:
            await self.app(scope, receive, send)
            return
        if declared is not None:
            await self._refuse(scope, receive, send, RequestBodyTooLargeError(self.max_body_bytes))
            return
        await self._limited(scope, receive, send)

    @staticmethod
    def _declared_length(scope: Scope) -> int | None:
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    return int(value)
                except ValueError:
                    return None
        return None

    async def _limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise RequestBodyTooLargeError(self.max_body_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except RequestBodyTooLargeError as exc:
            if started:
                raise
            await self._refuse(scope, receive, send, exc)

    @staticmethod
    async def _refuse(
        scope: Scope, receive: Receive, send: Send, exc: RequestBodyTooLargeError
    ) -> None:
        response = problem(
            exc.status_code,
            detail=exc.detail,
            instance=scope["path"],
            headers={"Connection": "close"},
        )
        # The whole answer goes out now; it ends (and the server closes) after the drain.
        await send(
            {
                "type": "http.response.start",
                "status": exc.status_code,
                "headers": response.raw_headers,
            }
        )
        await send({"type": "http.response.body", "body": response.body, "more_body": True})
        await _drain(receive)
        await send({"type": "http.response.body", "body": b""})


async def _drain(receive: Receive) -> None:
    """Read and drop the rest of the request body: up to `DRAIN_BYTES`, for `DRAIN_SECONDS`."""
    dropped = 0
    try:
        async with asyncio.timeout(DRAIN_SECONDS):
            while dropped <= DRAIN_BYTES:
                message = await receive()
                if message["type"] != "http.request" or not message.get("more_body", False):
                    return
                dropped += len(message.get("body", b""))
    except TimeoutError:
        return
