"""SQLModel table models, one module per domain.

Importing this package imports every module in it (by name, in sorted order), which registers
each table on `metadata`: Alembic and the tests see every table, and a new model is one new file
here, with no list to keep.
"""

import importlib
import pkgutil

from app.db.base import metadata

for _module in sorted(module.name for module in pkgutil.iter_modules(__path__)):
    importlib.import_module(f"{__name__}.{_module}")

__all__ = ["metadata"]
