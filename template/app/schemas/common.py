from collections.abc import Sequence
from typing import Generic, Self, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list: the items, how many exist in all, and where the page starts."""

    items: list[T]
    total: int = Field(ge=0)
    limit: int = Field(ge=1)
    offset: int = Field(ge=0)

    @classmethod
    def of(cls, items: Sequence[object], *, total: int, limit: int, offset: int) -> Self:
        """The page of `items` (models read by attribute), validated in one pass."""
        page = {"items": items, "total": total, "limit": limit, "offset": offset}
        return cls.model_validate(page, from_attributes=True)
