from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from backforge.servers import ServerPool

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def template_path() -> str:
    return str(REPO)


@pytest.fixture(scope="session")
def server_pool() -> Iterator[ServerPool]:
    """One real server of each kind for the whole run, started on first use."""
    with ServerPool() as pool:
        yield pool
