"""The admin's views of the resources: one module per resource (rendered with it by `backforge
add resource`), each with a module-level `VIEWS`, found by scanning this package in module-name
order like app/routers: adding a resource edits no shared file.

sqladmin lists, searches and shows rows itself (reads); every change goes through the resource's
service, so the admin keeps the API's rules, cache invalidation, events and audit rows.
"""

import importlib
import logging
import pkgutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any, ClassVar, Protocol

from asgi_correlation_id import correlation_id
from pydantic import BaseModel, ValidationError
from sqladmin import ModelView
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.datastructures import State
from starlette.requests import Request

from app.admin.auth import signed_in_admin
from app.core.errors import DomainError
from app.core.scope import Actor, Scope

logger = logging.getLogger(__name__)


class RowService(Protocol):
    async def update(self, row_id: uuid.UUID, data: Any) -> Any: ...

    async def delete(self, row_id: uuid.UUID) -> None: ...


class AdminError(Exception):
    """A change refused: sqladmin shows its text on the page (never an internal detail)."""


class AdminView(ModelView):
    """What every view of the admin shares. Exports are off: they would bypass the API's
    redaction and entitlements."""

    can_export = False
    page_size = 25
    state: ClassVar[State]
    """The application's state (inside /admin, `request.app` is sqladmin's own app)."""


class ReadOnlyView(AdminView):
    can_create = False
    can_edit = False
    can_delete = False


def scope_of_row(row: object, admin_id: uuid.UUID) -> Scope:
    """The scope a row belongs to, acted on by the signed-in superuser."""
    organization_id = getattr(row, "organization_id", None)
    if isinstance(organization_id, uuid.UUID):
        return Scope.organization(organization_id, user_id=admin_id)
    actor = Actor("user", admin_id)
    owner_id = getattr(row, "owner_id", None)
    if isinstance(owner_id, uuid.UUID):
        return replace(Scope.owner(owner_id), actor=actor)
    return Scope.everyone(actor=actor)


class ServiceModelView(AdminView):
    """A resource's rows, changed through its service. Rows are created by their owners
    through the API (the admin has no owner or organization to give a new one)."""

    can_create = False
    update_schema: ClassVar[type[BaseModel]]

    def build_service(self, request: Request, session: AsyncSession, scope: Scope) -> RowService:
        raise NotImplementedError

    async def insert_model(self, request: Request, data: dict[str, Any]) -> Any:
        raise AdminError("rows are created through the API")

    async def update_model(self, request: Request, pk: str, data: dict[str, Any]) -> Any:
        async with self._service(request, pk) as (service, row_id):
            return await service.update(row_id, self.update_schema.model_validate(data))

    async def delete_model(self, request: Request, pk: Any) -> None:
        async with self._service(request, str(pk)) as (service, row_id):
            await service.delete(row_id)

    @asynccontextmanager
    async def _service(
        self, request: Request, pk: str
    ) -> AsyncIterator[tuple[RowService, uuid.UUID]]:
        admin = signed_in_admin(request)
        state = self.state
        try:
            row_id = uuid.UUID(pk)
            async with state.session_gate, state.session_factory() as session:
                row = await session.get(self.model, row_id)
                if row is None:
                    raise AdminError("this row no longer exists")
                yield self.build_service(request, session, scope_of_row(row, admin.id)), row_id
        except AdminError:
            raise
        except ValidationError as exc:
            problems = (f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise AdminError("; ".join(problems)) from exc
        except DomainError as exc:
            raise AdminError(exc.detail) from exc
        except Exception as exc:
            logger.exception("admin change failed")
            raise AdminError(f"could not save (request id {correlation_id.get()})") from exc


def discover_views() -> list[type[AdminView]]:
    """The `VIEWS` of every module of this package, by module name."""
    found: list[type[AdminView]] = []
    for name in sorted(module.name for module in pkgutil.iter_modules(__path__)):
        module = importlib.import_module(f"{__name__}.{name}")
        found.extend(getattr(module, "VIEWS", []))
    return found
