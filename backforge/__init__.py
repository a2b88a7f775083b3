"""backforge: render, update and prove FastAPI backends from the Copier template in this repo."""

from backforge.versioning import package_version

__version__ = package_version()
