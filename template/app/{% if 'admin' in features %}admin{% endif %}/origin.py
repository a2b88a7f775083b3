"""Cross-site requests refused under /admin: a form posted from another site never reaches it.

The session cookie is `SameSite=Strict` already; this is the second lock (sqladmin has no CSRF
token). Every method but GET, HEAD and OPTIONS needs an `Origin` header (else a `Referer`) naming
this request's own origin: browsers send one on every form post and fetch, same-site ones too.
"""

from http import HTTPStatus
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.errors import problem

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]` of `url`, lowercased; None when it has none (`null`, a path)."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


class SameOriginMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        own = f"{scope['scheme']}://{headers.get('host', '')}".lower()
        claimed = headers.get("origin") or headers.get("referer")
        if claimed is None or origin_of(claimed) != own:
            response = problem(
                HTTPStatus.FORBIDDEN,
                detail="cross-site request refused: its Origin is not this site",
                instance=scope["path"],
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
