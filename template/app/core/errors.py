"""Domain errors and their RFC 9457 problem-details rendering."""

import logging
import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from asgi_correlation_id import correlation_id
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.convertors import CONVERTOR_TYPES
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.db.availability import is_unavailable

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
UUID_SEGMENT = CONVERTOR_TYPES["uuid"].regex


class DomainError(Exception):
    """A broken business rule. Services raise these; the HTTP layer maps them to statuses."""

    status = HTTPStatus.BAD_REQUEST

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFoundError(DomainError):
    status = HTTPStatus.NOT_FOUND

    def __init__(self, resource: str, key: object) -> None:
        super().__init__(f"{resource} {key} was not found")


class ConflictError(DomainError):
    status = HTTPStatus.CONFLICT


class PermissionDeniedError(DomainError):
    status = HTTPStatus.FORBIDDEN


class AuthenticationError(DomainError):
    status = HTTPStatus.UNAUTHORIZED


class ServiceUnavailableError(DomainError):
    """A dependency (the database) can't serve the request now; the client may retry."""

    status = HTTPStatus.SERVICE_UNAVAILABLE
    retry_after_seconds = 1


class DatabaseUnavailableError(ServiceUnavailableError):
    def __init__(self) -> None:
        super().__init__("the database is unavailable; retry shortly")


class TooManyExportsError(ServiceUnavailableError):
    """Every export slot of this process is streaming (`EXPORT_CONCURRENCY`)."""

    retry_after_seconds = 5

    def __init__(self, limit: int) -> None:
        super().__init__(f"{limit} exports are streaming, as many as this server runs; retry later")


class InvalidInputError(DomainError):
    """Well-formed input that breaks a rule (for example a weak password) in `field`."""

    status = HTTPStatus.UNPROCESSABLE_ENTITY

    def __init__(self, detail: str, *, field: str) -> None:
        super().__init__(detail)
        self.field = field


def problem(
    status: int,
    *,
    detail: str | None = None,
    instance: str | None = None,
    title: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """Build an `application/problem+json` response."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail or HTTPStatus(status).description,
        "instance": instance,
        "request_id": correlation_id.get(),
        **extra,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101
    if exc.status_code == HTTPStatus.BAD_REQUEST and isinstance(exc.__cause__, UnicodeDecodeError):
        # FastAPI's 400 for a JSON body that is not UTF-8: like any other invalid body, a 422.
        error = {"field": "body", "message": "the body is not valid UTF-8", "type": "json_invalid"}
        return _validation_problem(request, [error])
    detail = exc.detail if isinstance(exc.detail, str) else None
    headers = exc.headers
    if exc.status_code == HTTPStatus.METHOD_NOT_ALLOWED:
        headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(request))}
    return problem(exc.status_code, detail=detail, instance=request.url.path, headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    """The methods the OpenAPI document lists for this path (Starlette names only those of the
    first route that matches it, so `GET` alone where `POST` is served too)."""
    methods: set[str] = set()
    path = request.url.path
    for template, operations in request.app.openapi().get("paths", {}).items():
        if re.fullmatch(_path_pattern(template, operations), path):
            methods |= {method.upper() for method in operations}
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


def _path_pattern(template: str, operations: dict[str, Any]) -> str:
    """A regular expression of the paths `template` serves: a `format: uuid` parameter matches
    a UUID only, as the route's `uuid` convertor does (`/items/export.csv` is no item's path)."""
    uuids = {
        parameter["name"]
        for operation in operations.values()
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "path" and parameter["schema"].get("format") == "uuid"
    }

    def segment(match: re.Match[str]) -> str:
        return UUID_SEGMENT if match[1] in uuids else "[^/]+"

    return re.sub(r"\\{([^/]+?)\\}", segment, re.escape(template))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101
    errors = [
        {
            "field": ".".join(str(part) for part in error["loc"]),
            "message": error["msg"],
            "type": error["type"],
        }
        for error in exc.errors()
    ]
    return _validation_problem(request, errors)


def _validation_problem(request: Request, errors: list[dict[str, str]]) -> JSONResponse:
    return problem(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        title="Validation error",
        detail="The request is not valid; see `errors` for each field.",
        instance=request.url.path,
        errors=errors,
    )


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)  # noqa: S101
    headers: dict[str, str] = {}
    if exc.status == HTTPStatus.UNAUTHORIZED:
        headers["WWW-Authenticate"] = "Bearer"
    retry_after = getattr(exc, "retry_after_seconds", None)  # a 503, or a 429 of a domain rule
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    extra: dict[str, Any] = {}
    if isinstance(exc, InvalidInputError):
        extra["errors"] = [{"field": exc.field, "message": exc.detail, "type": "value_error"}]
    return problem(
        exc.status, detail=exc.detail, instance=request.url.path, headers=headers, **extra
    )


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """The database can't serve now: 503 with Retry-After. Anything else stays a bug (500)."""
    if not is_unavailable(exc):
        raise exc
    logger.warning("database unavailable on %s: %r", request.url.path, exc)
    return await _domain_error(request, DatabaseUnavailableError())


def register_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(SQLAlchemyError, _database_error)
    app.add_exception_handler(OSError, _database_error)


class UnhandledErrorMiddleware:
    """Answer any unhandled exception with a 500 problem that carries only the request id.

    Pure ASGI, inside the request-id middleware so that the response and the log line carry the id.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            logger.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if started:
                raise
            response = problem(
                HTTPStatus.INTERNAL_SERVER_ERROR,
                detail="An unexpected error occurred. Quote the request id when reporting it.",
                instance=scope["path"],
            )
            await response(scope, receive, send)
