"""Item queries. Repositories hold the SQL; they take a session and return models."""

import uuid
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import ColumnElement, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models.item import Item
from app.schemas.item import ItemSort

_ORDER: dict[str, ColumnElement[Any]] = {
    "name": col(Item.name).asc(),
    "-name": col(Item.name).desc(),
    "created_at": col(Item.created_at).asc(),
    "-created_at": col(Item.created_at).desc(),
}


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class ItemRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def _filters(self, q: str | None) -> list[ColumnElement[bool]]:
        filters: list[ColumnElement[bool]] = []
        if q:
            filters.append(col(Item.name).ilike(f"%{_escape_like(q)}%", escape="\\"))
        return filters

    async def get(self, item_id: uuid.UUID) -> Item | None:
        return await self.session.get(Item, item_id)

    async def list(
        self, *, limit: int, offset: int, sort: ItemSort, q: str | None = None
    ) -> tuple[list[Item], int]:
        filters = self._filters(q)
        query = (
            select(Item)
            .where(*filters)
            .order_by(_ORDER[sort], col(Item.id).asc())
            .limit(limit)
            .offset(offset)
        )
        items = list((await self.session.exec(query)).all())
        count_query = select(func.count()).select_from(Item).where(*filters)
        total = (await self.session.exec(count_query)).one()
        return items, total

    async def stream(self, *, sort: ItemSort, q: str | None = None) -> AsyncIterator[Item]:
        query = select(Item).where(*self._filters(q)).order_by(_ORDER[sort], col(Item.id).asc())
        result = await self.session.stream_scalars(query.execution_options(yield_per=500))
        async for item in result:
            yield item

    async def add(self, item: Item) -> Item:
        self.session.add(item)
        await self.session.flush()
        return item

    async def delete(self, item: Item) -> None:
        await self.session.delete(item)
        await self.session.flush()
