import os
from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory

from tests.database import alembic_config, create_database, drop_database, migrate


def test_single_head_and_round_trip_without_drift(tmp_path: Path) -> None:
    server_url = os.environ.get("DATABASE_URL", "sqlite:///./test.db")
    url = create_database(server_url, tmp_path)
    try:
        config = alembic_config(url)
        assert len(ScriptDirectory.from_config(config).get_heads()) == 1
        migrate(url)
        command.check(config)
        command.downgrade(config, "base")
        migrate(url)
        command.check(config)
    finally:
        drop_database(server_url, url)
