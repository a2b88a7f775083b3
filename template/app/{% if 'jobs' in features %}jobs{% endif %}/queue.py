"""Enqueueing from the web process: `await queue.enqueue("task.name", scope=..., **kwargs)`.

taskiq is imported on the first enqueue, not with the app: the web process's import and start
stay as light as without jobs. A queue that can't take the job (Redis down, slow, not
configured) raises `JobQueueUnavailableError`, a 503 with Retry-After: a promise to do work
later fails visibly, never silently.
"""

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

from asgi_correlation_id import correlation_id

from app.core.config import Settings
from app.core.errors import ServiceUnavailableError
from app.core.redis import REDIS_ERRORS
from app.jobs.store import JobRecord, JobStore, new_record

if TYPE_CHECKING:
    from taskiq import AsyncBroker

logger = logging.getLogger(__name__)
T = TypeVar("T")


class JobQueueUnavailableError(ServiceUnavailableError):
    retry_after_seconds = 5

    def __init__(self) -> None:
        super().__init__("the job queue is unavailable; retry shortly")


async def _or_unavailable(call: Awaitable[T]) -> T:
    """`await call`, or a 503 when Redis can't answer.

    The 503 is raised outside the `except` block, so that it has no Redis error as its context:
    a socket error in its chain would read as "the database is unavailable" to the session
    dependency the route runs in.
    """
    try:
        return await call
    except REDIS_ERRORS as exc:
        failure: BaseException = exc
    logger.warning("job queue unavailable: %r", failure)
    raise JobQueueUnavailableError


class JobQueue:
    """The process's way onto the queue; one per process, built in the app's lifespan."""

    def __init__(self, settings: Settings, store: JobStore | None) -> None:
        self.settings = settings
        self.store = store
        self._broker: AsyncBroker | None = None
        self._starting = asyncio.Lock()

    async def enqueue(
        self, task: str, /, *, scope: str, key: str | None = None, **kwargs: Any
    ) -> JobRecord:
        """Queue the task registered as `task` (app/jobs/tasks.py) with JSON-able `kwargs`.

        Its record (status `queued`) is kept for JOBS_RESULT_TTL_SECONDS. With an idempotency
        `key`, a second enqueue of the same task, scope and key returns the first job's record
        and queues nothing.
        """
        store = self._usable_store()
        record = new_record(task, scope=scope, request_id=correlation_id.get())
        earlier = await _or_unavailable(store.reserve(record, key))
        if earlier is not None:
            return earlier
        try:
            await self._kick(record, kwargs)
        except REDIS_ERRORS as exc:
            failure: BaseException = exc
        else:
            return record
        # Redis gone: the record expires on its own; the client retries with its key.
        with contextlib.suppress(*REDIS_ERRORS):
            await store.release(record, key)
        logger.warning("job queue unavailable: %r", failure)
        raise JobQueueUnavailableError

    async def get(self, job_id: uuid.UUID) -> JobRecord | None:
        return await _or_unavailable(self._usable_store().get(job_id))

    async def get_file(self, job_id: uuid.UUID) -> bytes | None:
        return await _or_unavailable(self._usable_store().get_file(job_id))

    def _usable_store(self) -> JobStore:
        if self.store is None:  # REDIS_URL unset: there is no queue to promise anything with.
            raise JobQueueUnavailableError
        return self.store

    async def _kick(self, record: JobRecord, kwargs: dict[str, Any]) -> None:
        from taskiq.kicker import AsyncKicker  # on first use (module docstring)

        broker = await self._started_broker()
        labels = {"job_id": str(record.id), "request_id": record.request_id or ""}
        kicker: AsyncKicker[Any, Any] = AsyncKicker(record.task, broker, labels)
        await kicker.with_task_id(str(record.id)).kiq(**kwargs)

    async def _started_broker(self) -> "AsyncBroker":
        async with self._starting:
            if self._broker is None:
                from app.jobs.broker import create_broker

                broker = create_broker(self.settings, worker=False)
                await broker.startup()
                self._broker = broker
            return self._broker

    async def aclose(self) -> None:
        if self._broker is not None:
            await self._broker.shutdown()
            self._broker = None
