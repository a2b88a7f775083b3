"""Items: the example resource. HTTP only: every rule lives in ItemService."""

import csv
import io
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.responses import StreamingResponse

from app.core.openapi import problem_responses
from app.dependencies.pagination import PageParams
from app.dependencies.services import ITEM_SERVICE_PROBLEMS, ItemServiceDep
from app.models.item import Item
from app.schemas.common import NO_NUL_PATTERN, Page
from app.schemas.item import ItemCreate, ItemRead, ItemSort, ItemUpdate

router = APIRouter(prefix="/items", tags=["items"], responses=ITEM_SERVICE_PROBLEMS)
ItemPage = Page[ItemRead]

SortParam = Annotated[ItemSort, Query(description="Sort key; prefix with - for descending")]
SearchParam = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=100,
        pattern=NO_NUL_PATTERN,
        description="Case-insensitive name search",
    ),
]
CSV_COLUMNS = ("id", "name", "description", "created_at", "updated_at")


@router.get("", response_model=ItemPage)
async def list_items(
    service: ItemServiceDep,
    page: PageParams,
    sort: SortParam = "-created_at",
    q: SearchParam = None,
) -> ItemPage:
    items, total = await service.list(limit=page.limit, offset=page.offset, sort=sort, q=q)
    return ItemPage.of(items, total=total, limit=page.limit, offset=page.offset)


@router.post("", response_model=ItemRead, status_code=status.HTTP_201_CREATED)
async def create_item(data: ItemCreate, service: ItemServiceDep) -> Item:
    return await service.create(data)


@router.get(
    "/export.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "Every item as CSV"}},
)
async def export_items(
    service: ItemServiceDep, sort: SortParam = "-created_at", q: SearchParam = None
) -> StreamingResponse:
    rows = service.export(sort=sort, q=q)
    return StreamingResponse(
        _csv_lines(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="items.csv"'},
    )


async def _csv_lines(items: AsyncIterator[Item]) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    async for item in items:
        writer.writerow(
            [
                item.id,
                item.name,
                item.description or "",
                item.created_at.isoformat(),
                item.updated_at.isoformat(),
            ]
        )
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


@router.get("/{item_id}", response_model=ItemRead, responses=problem_responses(404))
async def get_item(item_id: uuid.UUID, service: ItemServiceDep) -> Item:
    return await service.get(item_id)


@router.patch("/{item_id}", response_model=ItemRead, responses=problem_responses(404))
async def update_item(item_id: uuid.UUID, data: ItemUpdate, service: ItemServiceDep) -> Item:
    return await service.update(item_id, data)


@router.delete(
    "/{item_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(404)
)
async def delete_item(item_id: uuid.UUID, service: ItemServiceDep) -> None:
    await service.delete(item_id)
