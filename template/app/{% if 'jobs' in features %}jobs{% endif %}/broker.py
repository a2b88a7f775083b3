"""The broker: taskiq on a Redis stream with a consumer group, acknowledged after the job ran.

At least once: a worker takes a message (XREADGROUP) and acknowledges it (XACK) only after the
job has finished, retries included; a message whose worker died stays pending and is claimed by
another worker (XAUTOCLAIM) once it has been idle for JOBS_REDELIVER_AFTER_SECONDS. Jobs must
therefore be safe to run twice.

Retries (`RetryMiddleware`, taskiq's `SmartRetryMiddleware`): transient errors only, with a
delay that grows with each attempt plus jitter, up to JOBS_MAX_ATTEMPTS attempts in all. A job
that fails for good is logged with the id of the request that enqueued it.
"""

import asyncio
import logging
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, cast

from asgi_correlation_id import correlation_id
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from sqlalchemy.exc import OperationalError
from taskiq import (
    AckableMessage,
    SmartRetryMiddleware,
    TaskiqMessage,
    TaskiqMiddleware,
    TaskiqResult,
)
from taskiq.exceptions import NoResultError
from taskiq.kicker import AsyncKicker
from taskiq_redis import RedisStreamBroker

from app.core.config import Settings
from app.core.redis import REDIS_ERRORS
from app.jobs.store import JobStore

logger = logging.getLogger(__name__)


class TransientJobError(Exception):
    """Raise it from a job for a failure that may pass (a remote service down): it is retried."""


# What may pass by itself: retried. Anything else (a bug, bad input) fails the job at once.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    TransientJobError,
    OperationalError,
    *REDIS_ERRORS,
)
# A blocking read waits this long for new messages, then looks for abandoned ones.
READ_BLOCK_MS = 1000


class StreamBroker(RedisStreamBroker):
    """`RedisStreamBroker` that looks for abandoned messages after every read, and survives
    Redis losing its stream.

    taskiq-redis claims pending messages only after a read that returned new ones, so on a
    quiet queue the job of a dead worker would wait for the next enqueue; here it waits at
    most JOBS_REDELIVER_AFTER_SECONDS plus one read. taskiq-redis declares the consumer group
    once, at startup, so a worker would fail on every read after Redis lost it; here it is
    declared again. taskiq-redis leaves acknowledged messages in the stream, which would grow
    forever (keeping every job's arguments); here acknowledging a message deletes it (the queue
    has one consumer group: its workers).
    """

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        async with Redis(connection_pool=self.connection_pool) as redis:
            client = cast(Any, redis)
            while True:
                try:
                    fetched = await client.xreadgroup(
                        self.consumer_group_name,
                        self.consumer_name,
                        {self.queue_name: ">"},
                        block=self.block,
                        count=self.count,
                    )
                    claimed = await client.xautoclaim(
                        self.queue_name,
                        self.consumer_group_name,
                        self.consumer_name,
                        min_idle_time=self.idle_timeout,
                        count=self.unacknowledged_batch_size,
                    )
                except ResponseError as exc:
                    # NOGROUP, or UNBLOCKED for a read that was waiting when the stream went.
                    if not str(exc).startswith(("NOGROUP", "UNBLOCKED")):
                        raise
                    # Redis lost the stream (a restart without persistence, a flush): declare
                    # the group again; it reads the stream from its start, so jobs queued
                    # meanwhile are run.
                    logger.warning(
                        "job queue %s lost its consumer group; declaring it again", self.queue_name
                    )
                    await self._declare_consumer_group()
                    continue
                for _stream, messages in fetched or []:
                    for message_id, fields in messages:
                        yield self._ackable(message_id, fields)
                for message_id, fields in claimed[1]:
                    if fields:  # None: the entry was trimmed from the stream meanwhile
                        yield self._ackable(message_id, fields)

    def _ackable(self, message_id: Any, fields: dict[bytes, bytes]) -> AckableMessage:
        return AckableMessage(
            data=fields[b"data"], ack=self._ack_generator(id=message_id, queue_name=self.queue_name)
        )

    def _ack_generator(self, id: str, queue_name: str) -> Callable[[], Awaitable[None]]:
        """Acknowledge a message and delete it from the stream, in one transaction."""

        async def ack() -> None:
            async with Redis(connection_pool=self.connection_pool) as redis:
                pipeline = cast(Any, redis).pipeline(transaction=True)
                pipeline.xack(queue_name, self.consumer_group_name, id)
                pipeline.xdel(queue_name, id)
                await pipeline.execute()

        return ack


def _store(middleware: TaskiqMiddleware) -> JobStore | None:
    store: JobStore | None = getattr(middleware.broker.state, "jobs", None)
    return store


def _job_id(message: TaskiqMessage) -> uuid.UUID | None:
    value = message.labels.get("job_id")
    return uuid.UUID(str(value)) if value else None


def _attempt(message: TaskiqMessage) -> int:
    return int(message.labels.get("_retries", 0)) + 1


def _kind(exception: BaseException) -> str:
    """What a client may see of an error: its kind; the message stays in the worker's log."""
    return type(exception).__name__


class JobStatusMiddleware(TaskiqMiddleware):
    """Keeps each job's record current: running, succeeded (with its result) or failed."""

    async def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        # Every log line of the job carries the id of the request that enqueued it.
        correlation_id.set(str(message.labels.get("request_id") or "") or None)
        store, job_id = _store(self), _job_id(message)
        if store is not None and job_id is not None:
            await store.update(job_id, status="running", attempts=_attempt(message))
        return message

    async def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        store, job_id = _store(self), _job_id(message)
        if result.is_err or store is None or job_id is None:
            return
        value = result.return_value
        outcome = value if isinstance(value, dict) else None
        await store.update(job_id, status="succeeded", result=outcome, error=None)


class RetryMiddleware(SmartRetryMiddleware):
    """taskiq's retries, waiting out the delay (the Redis stream broker has no delayed delivery).

    The failed message is acknowledged only after its retry is queued: a worker that dies while
    waiting leaves the message pending, and another worker runs it again.
    """

    async def on_send(
        self, kicker: AsyncKicker[Any, Any], message: TaskiqMessage, delay: float
    ) -> None:
        await asyncio.sleep(delay)
        store, job_id = _store(self), _job_id(message)
        if store is not None and job_id is not None:
            # Before the retry is queued: once it is, its run owns the record.
            await store.update(job_id, status="queued")
        await kicker.kiq(*message.args, **message.kwargs)

    async def on_error(
        self, message: TaskiqMessage, result: TaskiqResult[Any], exception: BaseException
    ) -> None:
        store, job_id = _store(self), _job_id(message)
        if store is not None and job_id is not None:
            await store.update(job_id, error=_kind(exception))
        await super().on_error(message, result, exception)
        if isinstance(result.error, NoResultError):
            return  # retried (see `on_send`)
        logger.error(
            "job %s (%s) failed for good after %d attempt(s): %r",
            job_id,
            message.task_name,
            _attempt(message),
            exception,
            extra={"job_id": str(job_id), "task": message.task_name},
        )
        if store is not None and job_id is not None:
            await store.update(job_id, status="failed", attempts=_attempt(message))


def create_broker(settings: Settings, *, worker: bool) -> StreamBroker:
    """The broker for a worker (long blocking reads) or for a process that only enqueues."""
    if settings.redis_url is None:
        raise RuntimeError("REDIS_URL is not set: background jobs need Redis")
    # A blocking read must outlive its socket timeout; a web process's enqueue must not hang.
    timeout = READ_BLOCK_MS / 1000 + 5 if worker else settings.redis_timeout_seconds
    broker = StreamBroker(
        settings.redis_url,
        queue_name=settings.jobs_queue_name,
        consumer_group_name=settings.jobs_queue_name,
        # The group reads the stream from its start: jobs queued before any worker ran are kept.
        consumer_id="0",
        xread_block=READ_BLOCK_MS,
        idle_timeout=int(settings.jobs_redeliver_after_seconds * 1000),
        max_connection_pool_size=settings.redis_max_connections,
        socket_timeout=timeout,
        socket_connect_timeout=settings.redis_timeout_seconds if not worker else 5,
        # How long a caller waits for a free connection of the pool (redis-py's default is 20 s).
        timeout=1.0 if not worker else 20,
    )
    delay = settings.jobs_retry_delay_seconds
    return broker.with_middlewares(
        RetryMiddleware(
            default_retry_count=settings.jobs_max_attempts,
            default_retry_label=True,
            default_delay=delay,
            use_jitter=True,
            use_delay_exponent=True,
            max_delay_exponent=settings.jobs_retry_max_delay_seconds,
            types_of_exceptions=TRANSIENT_ERRORS,
        ),
        JobStatusMiddleware(),
    )
