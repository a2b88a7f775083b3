"""Item rules. Services raise domain errors and import nothing from FastAPI."""

import uuid
from collections.abc import AsyncIterator

from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.errors import NotFoundError
from app.db.types import utcnow
from app.models.item import Item
from app.repositories.item import ItemRepository
from app.schemas.item import ItemCreate, ItemSort, ItemUpdate


class ItemService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.items = ItemRepository(session)

    async def list(
        self, *, limit: int, offset: int, sort: ItemSort, q: str | None
    ) -> tuple[list[Item], int]:
        return await self.items.list(limit=limit, offset=offset, sort=sort, q=q)

    async def get(self, item_id: uuid.UUID) -> Item:
        item = await self.items.get(item_id)
        if item is None:
            raise NotFoundError("item", item_id)
        return item

    async def create(self, data: ItemCreate) -> Item:
        item = await self.items.add(Item.model_validate(data))
        await self.session.commit()
        return item

    async def update(self, item_id: uuid.UUID, data: ItemUpdate) -> Item:
        item = await self.get(item_id)
        item.sqlmodel_update(data.model_dump(exclude_unset=True))
        item.updated_at = utcnow()
        await self.items.add(item)
        await self.session.commit()
        return item

    async def delete(self, item_id: uuid.UUID) -> None:
        item = await self.get(item_id)
        await self.items.delete(item)
        await self.session.commit()

    def export(self, *, sort: ItemSort, q: str | None) -> AsyncIterator[Item]:
        return self.items.stream(sort=sort, q=q)
