from typing import Annotated

from fastapi import Depends

from app.dependencies.db import SessionDep
from app.services.item import ItemService


def get_item_service(session: SessionDep) -> ItemService:
    return ItemService(session)


ItemServiceDep = Annotated[ItemService, Depends(get_item_service)]
