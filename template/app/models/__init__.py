"""SQLModel table models. Importing this package registers every table on the metadata."""

from app.db.base import metadata
from app.models.item import Item

__all__ = ["Item", "metadata"]
