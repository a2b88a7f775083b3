"""Gzip for clients that ask for it; everyone else skips the compression layer entirely."""

from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.errors import PROBLEM_JSON


def accepts_gzip(scope: Scope) -> bool:
    return any(name == b"accept-encoding" and b"gzip" in value for name, value in scope["headers"])


class GzipIfAcceptedMiddleware:
    """Starlette's `GZipMiddleware`, entered only by requests whose `Accept-Encoding` has gzip.

    The plain middleware wraps every response, compressed or not, and that wrapping cost a tenth
    of a `/health` request. Identity responses now go out without `Vary: Accept-Encoding`; the
    compressed ones still carry it, so a shared cache never hands gzip to a client that can't
    read it. Problems are never compressed: they are small, and the 413 of the input guard
    streams (its end waits for the refused body to be dropped), which gzip would hold back.
    """

    def __init__(self, app: ASGIApp, minimum_size: int = 1024) -> None:
        self.app = app
        self.gzip = GZipMiddleware(
            app,
            minimum_size=minimum_size,
            exclude_content_types=(*DEFAULT_EXCLUDED_CONTENT_TYPES, PROBLEM_JSON),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and accepts_gzip(scope):
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)
