"""The floor: a minimal hand-written Starlette app that does the rendered app's work, no more.

`backforge bench` runs it beside the rendered app, on the same database, with the same secret,
and compares the two. Per request it does what the rendered app must do and nothing else:

- `GET /health`: a small JSON document, no I/O;
- item endpoints: verify the HS256 access token with PyJWT (same secret, same required claims),
  load the user by id and check `is_active` (and, for multi-tenant projects, the caller's
  membership in the `X-Organization-ID` organization), run the same query -- an item by id and
  owner; a page of 20 items by `created_at` descending then `id`, plus the total count; an
  insert -- and answer the same JSON shape.

It runs inside the rendered project's environment (starlette, asyncpg, pyjwt, uvicorn)::

    PYTHONPATH=benchmarks <project>/.venv/bin/python -m uvicorn floor:app --loop uvloop

Settings come from the environment, with the rendered app's names: `DATABASE_URL` (plain
`postgresql://`), `SECRET_KEY`, `DB_POOL_SIZE`, `DB_MAX_OVERFLOW`, `ENVIRONMENT`; `FLOOR_AUTH` is
`jwt` (items belong to their owner), `tenant` (items belong to an organization) or `none`.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

ALGORITHM = "HS256"
ACCESS_TOKEN_TYPE = "access"  # noqa: S105 - a claim value, not a secret
NAME_MAX_LENGTH = 120
DESCRIPTION_MAX_LENGTH = 1000
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
VERSION = "0.1.0"

AUTH = os.environ.get("FLOOR_AUTH", "jwt")
if AUTH not in {"jwt", "tenant", "none"}:
    raise RuntimeError(f"FLOOR_AUTH must be jwt, tenant or none, not {AUTH!r}")
if AUTH != "none":
    import jwt  # projects without auth do not install PyJWT
SECRET = os.environ.get("SECRET_KEY", "")
ENVIRONMENT = os.environ.get("ENVIRONMENT", "production")
POOL_SIZE = int(os.environ.get("DB_POOL_SIZE", "10"))
MAX_OVERFLOW = int(os.environ.get("DB_MAX_OVERFLOW", "10"))

ITEM_COLUMNS = {
    "jwt": "id, name, description, owner_id, created_at, updated_at",
    "tenant": "id, name, description, organization_id, owner_id, created_at, updated_at",
    "none": "id, name, description, created_at, updated_at",
}[AUTH]
SCOPE = {"jwt": "owner_id", "tenant": "organization_id", "none": ""}[AUTH]
WHERE_SCOPE = f"WHERE {SCOPE} = $1" if SCOPE else ""
ARGS = 1 if SCOPE else 0

SELECT_USER = (
    "SELECT id, email, hashed_password, full_name, role, is_active, created_at, updated_at "
    "FROM users WHERE id = $1"
)
SELECT_MEMBERSHIP = (
    "SELECT o.id, o.name, o.created_at, m.id, m.role FROM organizations o "
    "JOIN memberships m ON m.organization_id = o.id WHERE o.id = $1 AND m.user_id = $2"
)
SELECT_ITEM = (
    f"SELECT {ITEM_COLUMNS} FROM items WHERE id = $1 AND {SCOPE} = $2"  # noqa: S608
    if SCOPE
    else f"SELECT {ITEM_COLUMNS} FROM items WHERE id = $1"  # noqa: S608
)
LIST_ITEMS = (
    f"SELECT {ITEM_COLUMNS} FROM items {WHERE_SCOPE} "  # noqa: S608
    f"ORDER BY created_at DESC, id ASC LIMIT ${ARGS + 1} OFFSET ${ARGS + 2}"
)
COUNT_ITEMS = f"SELECT count(*) FROM items {WHERE_SCOPE}"  # noqa: S608
INSERT_ITEM = {
    "jwt": "INSERT INTO items (id, name, description, owner_id, created_at, updated_at) "
    "VALUES ($1, $2, $3, $4, $5, $6)",
    "tenant": "INSERT INTO items "
    "(id, name, description, organization_id, owner_id, created_at, updated_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7)",
    "none": "INSERT INTO items (id, name, description, created_at, updated_at) "
    "VALUES ($1, $2, $3, $4, $5)",
}[AUTH]


class Problem(Exception):
    """An error answer: RFC 9457 problem details, like the rendered app's."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail


def json_response(body: Any, status: int = 200, media_type: str = "application/json") -> Response:
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(content, status_code=status, media_type=media_type)


def problem_response(request: Request, error: Problem) -> Response:
    body = {
        "type": "about:blank",
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
        "instance": request.url.path,
    }
    response = json_response(body, error.status, "application/problem+json")
    if error.status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def unauthorized(detail: str = "Invalid or expired token") -> Problem:
    return Problem(401, "Unauthorized", detail)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def item_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "description": row["description"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }


def pool_of(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.pool
    return pool


def token_subject(request: Request) -> uuid.UUID:
    """The user id of a valid bearer access token (the rendered app's exact checks)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise unauthorized("Not authenticated")
    try:
        claims = jwt.decode(
            token,
            SECRET,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "iat", "sub", "type"]},
        )
    except jwt.PyJWTError as exc:
        raise unauthorized() from exc
    if claims.get("type") != ACCESS_TOKEN_TYPE:
        raise unauthorized()
    try:
        return uuid.UUID(str(claims["sub"]))
    except ValueError as exc:
        raise unauthorized() from exc


async def scope_of(request: Request, connection: asyncpg.Connection) -> tuple[Any, ...]:
    """The query arguments that confine a request to its caller: () / (owner,) / (org,)."""
    if AUTH == "none":
        return ()
    user_id = token_subject(request)
    user = await connection.fetchrow(SELECT_USER, user_id)
    if user is None or not user["is_active"]:
        raise unauthorized()
    if AUTH == "jwt":
        return (user_id,)
    try:
        organization_id = uuid.UUID(request.headers.get("x-organization-id", ""))
    except ValueError as exc:
        detail = "the X-Organization-ID header is required"
        raise Problem(422, "Unprocessable Entity", detail) from exc
    if await connection.fetchrow(SELECT_MEMBERSHIP, organization_id, user_id) is None:
        raise Problem(404, "Not Found", f"organization {organization_id} was not found")
    return (organization_id, user_id)


async def health(request: Request) -> Response:
    return json_response({"status": "ok", "version": VERSION, "environment": ENVIRONMENT})


async def get_item(request: Request) -> Response:
    try:
        item_id = uuid.UUID(request.path_params["item_id"])
    except ValueError:
        return problem_response(request, Problem(422, "Validation error", "item_id: not a UUID"))
    try:
        async with pool_of(request).acquire() as connection:
            scope = await scope_of(request, connection)
            row = await connection.fetchrow(SELECT_ITEM, item_id, *scope[:1])
    except Problem as error:
        return problem_response(request, error)
    if row is None:
        return problem_response(request, Problem(404, "Not Found", f"item {item_id} was not found"))
    return json_response(item_json(row))


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Problem(422, "Validation error", f"{name}: not an integer") from None
    if not low <= value <= high:
        raise Problem(422, "Validation error", f"{name}: out of range")
    return value


async def list_items(request: Request) -> Response:
    try:
        limit = _int_param(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        offset = _int_param(request, "offset", 0, 0, 2_147_483_647)
        async with pool_of(request).acquire() as connection:
            scope = await scope_of(request, connection)
            rows = await connection.fetch(LIST_ITEMS, *scope[:1], limit, offset)
            total = await connection.fetchval(COUNT_ITEMS, *scope[:1])
    except Problem as error:
        return problem_response(request, error)
    page = [item_json(row) for row in rows]
    return json_response({"items": page, "total": total, "limit": limit, "offset": offset})


def _item_input(body: object) -> tuple[str, str | None]:
    """ItemCreate's rules: only name and description; stripped; name 1-120, description <= 1000."""
    if not isinstance(body, dict) or set(body) - {"name", "description"}:
        raise Problem(422, "Validation error", "expected an object with name and description")
    name, description = body.get("name"), body.get("description")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= NAME_MAX_LENGTH:
        raise Problem(422, "Validation error", "name: 1 to 120 characters")
    if description is not None:
        if not isinstance(description, str) or len(description.strip()) > DESCRIPTION_MAX_LENGTH:
            raise Problem(422, "Validation error", "description: at most 1000 characters")
        description = description.strip()
    return name.strip(), description


async def create_item(request: Request) -> Response:
    try:
        try:
            payload = json.loads(await request.body())
        except ValueError:
            raise Problem(422, "Validation error", "the body is not JSON") from None
        name, description = _item_input(payload)
        now = datetime.now(UTC)
        item = {
            "id": uuid.uuid4(),
            "name": name,
            "description": description,
            "created_at": now,
            "updated_at": now,
        }
        async with pool_of(request).acquire() as connection:
            scope = await scope_of(request, connection)
            await connection.execute(INSERT_ITEM, item["id"], name, description, *scope, now, now)
    except Problem as error:
        return problem_response(request, error)
    return json_response(item_json(item), 201)


async def items(request: Request) -> Response:
    if request.method == "POST":
        return await create_item(request)
    return await list_items(request)


def asyncpg_dsn(url: str) -> str:
    """asyncpg takes `postgresql://`; accept SQLAlchemy's `postgresql+asyncpg://` too."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+', 1)[0]}{sep}{rest}"


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    app.state.pool = await asyncpg.create_pool(
        asyncpg_dsn(os.environ["DATABASE_URL"]),
        min_size=POOL_SIZE,
        max_size=POOL_SIZE + MAX_OVERFLOW,
    )
    try:
        yield
    finally:
        await app.state.pool.close()


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/api/v1/items", items, methods=["GET", "POST"]),
        Route("/api/v1/items/{item_id}", get_item),
    ],
    lifespan=lifespan,
)
