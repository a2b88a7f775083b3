"""Whether a row that a resource refers to (a `ref` field) exists where the caller works.

A referenced row counts only in the caller's scope: another organization's (or another owner's)
row is "not found", like a row that does not exist. A user counts in an organization scope when
they are a member of it. Written for every resource: the table is named, not imported.
"""

import uuid

from sqlalchemy import ColumnElement, exists, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.scope import Scope
from app.db.session import connection_of
from app.models import metadata


def _in_scope(table_name: str, scope: Scope) -> list[ColumnElement[bool]]:
    table = metadata.tables[table_name]
    if scope.id is None:
        return []
    if scope.kind == "organization" and "organization_id" in table.c:
        return [table.c.organization_id == scope.id]
    if scope.kind == "owner" and "owner_id" in table.c:
        return [table.c.owner_id == scope.id]
    if scope.kind == "organization" and table_name == "users":
        members = metadata.tables["memberships"]
        member = (members.c.user_id == table.c.id) & (members.c.organization_id == scope.id)
        return [exists().where(member)]
    return []


async def exists_in_scope(
    session: AsyncSession, table_name: str, row_id: uuid.UUID, scope: Scope
) -> bool:
    table = metadata.tables[table_name]
    statement = select(table.c.id).where(table.c.id == row_id, *_in_scope(table_name, scope))
    connection = await connection_of(session)
    return (await connection.execute(statement)).first() is not None
