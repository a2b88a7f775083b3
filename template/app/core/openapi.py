"""The OpenAPI document tells the whole truth: every status an operation answers, as problem+json.

FastAPI documents the success and its own 422 (as `application/json`, with a schema we never
send). Every error the app answers is an RFC 9457 problem (`app.core.errors.problem`), so:
- routers name the statuses their rules produce (403, 404, 409) with `problem_responses(...)`;
- `document_problems(app)` adds what every operation of a kind can answer: 422 (validation, with
  each field), 503 with `Retry-After` (the database can't serve now), 401 with `WWW-Authenticate`
  where credentials are required, 400 and 413 where a body is read. All share the `Problem` schema.
"""

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from app.core.errors import PROBLEM_JSON

PROBLEM_REF = "#/components/schemas/Problem"
VALIDATION_PROBLEM_REF = "#/components/schemas/ValidationProblem"


class Problem(BaseModel):
    """An RFC 9457 problem details object."""

    type: str = Field(description="A URI reference naming the problem type")
    title: str
    status: int = Field(ge=100, le=599)
    detail: str
    instance: str | None = Field(description="The path the problem occurred on")
    request_id: str | None = Field(description="Quote it when reporting the problem")


class FieldError(BaseModel):
    field: str = Field(description="Where: body.name, query.q, path, header.x-api-key, ...")
    message: str
    type: str


class ValidationProblem(Problem):
    errors: list[FieldError]


HEADERS: dict[int, dict[str, Any]] = {
    HTTPStatus.UNAUTHORIZED: {
        "WWW-Authenticate": {
            "description": "The scheme to authenticate with",
            "schema": {"type": "string"},
        }
    },
    HTTPStatus.SERVICE_UNAVAILABLE: {
        "Retry-After": {
            "description": "Seconds to wait before retrying",
            "schema": {"type": "string"},
        }
    },
    HTTPStatus.TOO_MANY_REQUESTS: {
        "Retry-After": {
            "description": "Seconds to wait before retrying",
            "schema": {"type": "string"},
        }
    },
}


def problem_response(status: int) -> dict[str, Any]:
    """The OpenAPI response object of a problem with `status`."""
    ref = VALIDATION_PROBLEM_REF if status == HTTPStatus.UNPROCESSABLE_ENTITY else PROBLEM_REF
    response: dict[str, Any] = {
        "description": HTTPStatus(status).phrase,
        "content": {PROBLEM_JSON: {"schema": {"$ref": ref}}},
    }
    if status in HEADERS:
        response["headers"] = HEADERS[status]
    return response


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: the problems its rules can answer (schema filled in later)."""
    return {status: {"description": HTTPStatus(status).phrase} for status in statuses}


def _statuses_every_operation_can_answer(operation: dict[str, Any]) -> set[int]:
    statuses: set[int] = {HTTPStatus.UNPROCESSABLE_ENTITY, HTTPStatus.SERVICE_UNAVAILABLE}
    if operation.get("security"):
        statuses.add(HTTPStatus.UNAUTHORIZED)
    if "requestBody" in operation:
        statuses |= {HTTPStatus.BAD_REQUEST, HTTPStatus.REQUEST_ENTITY_TOO_LARGE}
    return statuses


def _document(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    for status in _statuses_every_operation_can_answer(operation):
        responses.setdefault(str(status), {})
    for code, response in responses.items():
        if code.isdigit() and int(code) >= HTTPStatus.BAD_REQUEST:
            responses[code] = problem_response(int(code)) | {
                "description": response.get("description") or HTTPStatus(int(code)).phrase
            }


def build_openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is not None:
        return app.openapi_schema
    document = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            _document(operation)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for model in (Problem, FieldError, ValidationProblem):
        schemas[model.__name__] = model.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
    schemas["ValidationProblem"].pop("$defs", None)
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    app.openapi_schema = document
    return document


def document_problems(app: FastAPI) -> None:
    """Serve the document built by `build_openapi` as the app's OpenAPI schema."""

    def openapi() -> dict[str, Any]:
        return build_openapi(app)

    app.openapi = openapi  # type: ignore[method-assign]
