import uuid
from datetime import datetime

from sqlmodel import Field, SQLModel

from app.db.types import UTCDateTime, utcnow

NAME_MAX_LENGTH = 120
DESCRIPTION_MAX_LENGTH = 1000


class ItemBase(SQLModel):
    name: str = Field(min_length=1, max_length=NAME_MAX_LENGTH)
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX_LENGTH)


class Item(ItemBase, table=True):
    __tablename__ = "items"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(max_length=NAME_MAX_LENGTH, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
