"""Structured logging: JSON lines in production, readable lines locally; both carry request_id."""

import json
import logging
import logging.config
from datetime import UTC, datetime
from typing import Any

from asgi_correlation_id import correlation_id

from app.core.config import Settings

_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id"}


class RequestIdFilter(logging.Filter):
    """Give every record the id of the request being served ("-" outside of requests)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = correlation_id.get() or "-"
        return True


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        payload.update(
            {key: value for key, value in record.__dict__.items() if key not in _RESERVED}
        )
        if record.exc_info:
            payload["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def library_level(level: str) -> str:
    """The level of every logger but the app's and the server's: WARNING, or LOG_LEVEL if higher."""
    return level if logging.getLevelName(level) > logging.WARNING else "WARNING"


def configure_logging(settings: Settings) -> None:
    formatter = "json" if settings.log_format == "json" else "console"
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "filters": {
                "request_id": {"()": RequestIdFilter},
            },
            "formatters": {
                "json": {"()": JSONFormatter},
                "console": {
                    "format": "%(asctime)s %(levelname)-8s [%(request_id)s] %(name)s: %(message)s",
                },
            },
            "handlers": {
                "default": {
                    "class": "logging.StreamHandler",
                    "formatter": formatter,
                    "filters": ["request_id"],
                }
            },
            # Libraries (watchfiles, asyncio, httpx, ...) speak only when something is wrong;
            # the app and the server log at LOG_LEVEL.
            "root": {"handlers": ["default"], "level": library_level(settings.log_level)},
            "loggers": {
                "app": {"level": settings.log_level},
                **{
                    name: {"handlers": ["default"], "level": settings.log_level, "propagate": False}
                    for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
                },
            },
        }
    )
