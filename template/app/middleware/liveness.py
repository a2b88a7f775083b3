"""Liveness (`GET /health`) answered before routing, from bytes built once at startup.

Load balancers and orchestrators poll it all day, and its answer never changes while the process
lives, so it skips routing, dependency injection and serialization. It sits inside the request-id,
timing and CORS layers, so its responses carry the same headers as every other.
"""

import json
from http import HTTPStatus

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import problem

LIVENESS_PATH = "/health"
ALLOWED_METHODS = ("GET", "HEAD")


def liveness_body(*, version: str, environment: str) -> bytes:
    document = {"status": "ok", "version": version, "environment": environment}
    return json.dumps(document, separators=(",", ":")).encode()


class LivenessMiddleware:
    def __init__(self, app: ASGIApp, *, body: bytes, path: str = LIVENESS_PATH) -> None:
        self.app = app
        self.path = path
        self.body = body
        self.headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]

    def _is_liveness(self, scope: Scope) -> bool:
        path: str = scope["path"]
        return path == self.path or path == scope.get("root_path", "") + self.path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._is_liveness(scope):
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        if method not in ALLOWED_METHODS:
            response = problem(
                HTTPStatus.METHOD_NOT_ALLOWED,
                detail=f"{method} is not allowed on {self.path}",
                instance=self.path,
                headers={"Allow": ", ".join(ALLOWED_METHODS)},
            )
            await response(scope, receive, send)
            return
        # Fresh messages each time: the layers outside append their headers to them.
        start: Message = {"type": "http.response.start", "status": 200, "headers": [*self.headers]}
        await send(start)
        await send({"type": "http.response.body", "body": self.body if method == "GET" else b""})
