"""Every limited operation documents its 429 (problem+json, Retry-After, RateLimit fields)."""

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI

from app.core.openapi import problem_response

RATE_LIMIT_HEADERS: dict[str, Any] = {
    "RateLimit-Policy": {
        "description": 'The limit that applies: `"name";q=<quota>;w=<window seconds>`',
        "schema": {"type": "string"},
    },
    "RateLimit": {
        "description": 'What is left: `"name";r=<remaining>;t=<seconds until reset>`',
        "schema": {"type": "string"},
    },
}


def document_rate_limits(app: FastAPI, prefix: str, exempt: frozenset[str] = frozenset()) -> None:
    """Wrap the app's OpenAPI builder: operations under `prefix` (but `exempt`) answer 429 too."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        document = build()
        status = str(HTTPStatus.TOO_MANY_REQUESTS.value)
        for path, path_item in document.get("paths", {}).items():
            if not path.startswith(prefix) or path in exempt:
                continue
            for operation in path_item.values():
                responses = operation.setdefault("responses", {})
                # An operation's own 429 (such as a rule's pause) may come from the limiter too.
                response = responses.get(status) or problem_response(HTTPStatus.TOO_MANY_REQUESTS)
                response["headers"] = {**response.get("headers", {}), **RATE_LIMIT_HEADERS}
                responses[status] = response
        return document

    app.openapi = openapi  # type: ignore[method-assign]
