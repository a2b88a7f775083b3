import json
import logging
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.core.config import EXAMPLE_SECRET_KEY, Settings
from app.core.logging import JSONFormatter
from app.db.url import to_async_url
from app.main import create_app
from tests.support.database import configured_database_url
from tests.support.production import production


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"secret_key": ""}, "SECRET_KEY is required"),
        ({"secret_key": "short"}, "at least 32 bytes"),
        ({"secret_key": EXAMPLE_SECRET_KEY}, "example value"),
        ({"cors_origins": "*"}, "CORS_ORIGINS='*'"),
    ],
)
def test_production_refuses_unsafe_settings(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        production(**overrides)


def test_production_hides_docs_unless_asked(database_url: str) -> None:
    assert production().show_docs is False
    assert production(docs_enabled=True).show_docs is True
    assert Settings(environment="local").show_docs is True
    app = create_app(production(database_url=database_url))
    assert app.docs_url is None
    assert app.openapi_url is None


def test_cors_origins_are_read_from_a_comma_separated_string(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    settings = Settings(_env_file=None)
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("plain", "expected"),
    [
        ("postgres://u:p@db:5432/app", "postgresql+asyncpg://u:p@db:5432/app"),
        ("postgresql://u:p@db/app?sslmode=require", "postgresql+asyncpg://u:p@db/app?ssl=require"),
        ("mysql://u:p@db:3306/app", "mysql+asyncmy://u:p@db:3306/app?charset=utf8mb4"),
        ("sqlite:///./app.db", "sqlite+aiosqlite:///./app.db"),
        ("postgresql+psycopg://u:p@db/app", "postgresql+psycopg://u:p@db/app"),
    ],
)
def test_plain_database_urls_get_an_async_driver(plain: str, expected: str) -> None:
    assert to_async_url(plain) == expected


def test_unsupported_database_url_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported database URL scheme 'oracle'"):
        to_async_url("oracle://u:p@db/app")


def test_exports_must_leave_sessions_for_other_requests() -> None:
    message = r"EXPORT_CONCURRENCY \(5\) must be less than DB_POOL_SIZE \+ DB_MAX_OVERFLOW \(5\)"
    with pytest.raises(ValidationError, match=message):
        Settings(_env_file=None, db_pool_size=3, db_max_overflow=2, export_concurrency=5)
    assert Settings(_env_file=None, db_pool_size=3, db_max_overflow=2).export_concurrency == 4


def test_json_logs_carry_the_request_id_and_extras() -> None:
    record = logging.makeLogRecord(
        {"name": "app", "levelname": "INFO", "msg": "hello %s", "args": ("world",)}
    )
    record.request_id = "abc"
    record.user = "u1"
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    payload = json.loads(JSONFormatter().format(record))
    assert payload["message"] == "hello world"
    assert payload["request_id"] == "abc"
    assert payload["user"] == "u1"
    assert "ValueError: boom" in payload["exc_info"]


def test_json_log_format_is_configured(
    capsys: pytest.CaptureFixture[str], database_url: str
) -> None:
    create_app(Settings(_env_file=None, log_format="json", database_url=database_url))
    logging.getLogger("app.test").warning("structured")
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert json.loads(line)["message"] == "structured"


def test_the_suite_reads_database_url_from_dotenv_like_the_app(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("DATABASE_URL=postgresql://u:p@db.example:5432/app\n")
    assert configured_database_url() == "postgresql://u:p@db.example:5432/app"
    monkeypatch.setenv("DATABASE_URL", "mysql://u:p@db.example:3306/app")
    assert configured_database_url() == "mysql://u:p@db.example:3306/app"


def test_every_test_reads_database_url_through_that_reader() -> None:
    """A test that read DATABASE_URL from the environment alone (with a SQLite default) failed
    in a project whose URL is only in `.env`."""
    reads_the_environment = re.compile(r"(environ\.get|environ\[|getenv)\(?\s*[\"']DATABASE_URL")
    tests = sorted(Path(__file__).parent.glob("*.py"))
    assert [test.name for test in tests if reads_the_environment.search(test.read_text())] == []


def test_library_chatter_stays_out_of_the_logs(
    capsys: pytest.CaptureFixture[str], database_url: str
) -> None:
    create_app(Settings(_env_file=None, log_level="INFO", database_url=database_url))
    logging.getLogger("watchfiles.main").info("1 change detected")
    logging.getLogger("app.probe").info("the app speaks")
    logging.getLogger("watchfiles.main").warning("the library warns")
    logged = capsys.readouterr().err
    assert "1 change detected" not in logged
    assert "the app speaks" in logged
    assert "the library warns" in logged


def test_pre_commit_runs_the_ruff_the_project_pins() -> None:
    root = Path(__file__).resolve().parent.parent
    pinned = re.search(r'"ruff==([0-9.]+)"', (root / "pyproject.toml").read_text())
    hook = re.search(
        r"ruff-pre-commit\n\s+rev: v([0-9.]+)", (root / ".pre-commit-config.yaml").read_text()
    )
    assert pinned is not None
    assert hook is not None
    assert hook.group(1) == pinned.group(1)
