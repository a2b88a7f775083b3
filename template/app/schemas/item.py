import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from app.models.item import DESCRIPTION_MAX_LENGTH, NAME_MAX_LENGTH, ItemBase
from app.schemas.common import InputModel, document_storable_text

ItemSort = Literal["name", "-name", "created_at", "-created_at"]


class ItemCreate(ItemBase, InputModel):
    model_config = ConfigDict(  # type: ignore[assignment]
        extra="forbid", str_strip_whitespace=True, json_schema_extra=document_storable_text
    )


class ItemUpdate(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    # Optional but never null: the documented schema says so too (null is refused below).
    name: Annotated[str, Field(min_length=1, max_length=NAME_MAX_LENGTH)] | SkipJsonSchema[None] = (
        None
    )
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX_LENGTH)

    @model_validator(mode="after")
    def _name_not_null(self) -> "ItemUpdate":
        if "name" in self.model_fields_set and self.name is None:
            raise ValueError("name cannot be null; omit it to keep the current name")
        return self


class ItemRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    description: str | None
    created_at: datetime
    updated_at: datetime
