from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import browser, playwright, screenshots, serve

from backforge.servers import ServerPool

# The browser tests' fixtures (tests/browser.py), here so that `serve` is one per run.
__all__ = ["browser", "playwright", "screenshots", "serve"]

REPO = Path(__file__).resolve().parent.parent

# The tests that start a rendered project's processes themselves (its suite, uvicorn, alembic)
# pass them this process's environment: an inherited PYTHONDONTWRITEBYTECODE made every one of
# them compile the project's packages again from source (backforge.steps.tools.NOT_INHERITED).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


@pytest.fixture(scope="session")
def template_path() -> str:
    return str(REPO)


@pytest.fixture(scope="session")
def server_pool() -> Iterator[ServerPool]:
    """One real server of each kind for the whole run, started on first use."""
    with ServerPool() as pool:
        yield pool
