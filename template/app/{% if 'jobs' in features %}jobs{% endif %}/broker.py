"""The broker: taskiq on a Redis stream with a consumer group, acknowledged after the job ran.

At least once: a worker takes a message (XREADGROUP) and acknowledges it (XACK) only after the
job has finished, retries included; while the job runs, its worker claims the message again
(XCLAIM) every third of JOBS_REDELIVER_AFTER_SECONDS, so a long job is never taken from a live
worker. A message whose worker died stays pending and is claimed by another worker (XAUTOCLAIM)
once nobody has claimed it for JOBS_REDELIVER_AFTER_SECONDS. Jobs must therefore be safe to run
twice.

Retries (`RetryMiddleware`, taskiq's `SmartRetryMiddleware`): transient errors only, with a
delay that grows with each attempt plus jitter, up to JOBS_MAX_ATTEMPTS attempts in all. A job
that fails for good is logged with the id of the request that enqueued it.
"""

import asyncio
import contextlib
import logging
import uuid
import weakref
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
    has one consumer group: its workers). taskiq-redis lets another worker claim the message
    of a job that runs longer than the idle timeout, so a long job ran twice at once; here the
    worker keeps claiming the messages of the jobs it runs.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The messages this worker runs, by id. Held weakly through their `ack` callables:
        # taskiq drops a message once its job has ended, even when the job never acknowledged
        # it (an error outside the job), and then it is no longer claimed.
        self._running: weakref.WeakValueDictionary[Any, Callable[[], Awaitable[None]]] = (
            weakref.WeakValueDictionary()
        )

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        heartbeat = asyncio.create_task(self._keep_claiming())
        try:
            async for message in self._read():
                yield message
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

    async def _keep_claiming(self) -> None:
        """Claim the running jobs' messages again and again: their idle time stays well below
        the timeout after which another worker would take them."""
        interval = self.idle_timeout / 1000 / 3
        async with Redis(connection_pool=self.connection_pool) as redis:
            while True:
                await asyncio.sleep(interval)
                running = list(self._running.keys())
                if not running:
                    continue
                try:
                    await cast(Any, redis).xclaim(
                        self.queue_name,
                        self.consumer_group_name,
                        self.consumer_name,
                        min_idle_time=0,
                        message_ids=running,
                        justid=True,
                    )
                except REDIS_ERRORS as exc:
                    # Redis down (nobody else can claim them either) or the stream gone: the
                    # next beat tries again.
                    logger.warning("could not claim the running jobs' messages: %r", exc)

    async def _read(self) -> AsyncGenerator[AckableMessage, None]:
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
        ack = self._ack_generator(id=message_id, queue_name=self.queue_name)
        self._running[message_id] = ack
        return AckableMessage(data=fields[b"data"], ack=ack)

    def _ack_generator(self, id: str, queue_name: str) -> Callable[[], Awaitable[None]]:
        """Acknowledge a message and delete it from the stream, in one transaction."""

        async def ack() -> None:
            async with Redis(connection_pool=self.connection_pool) as redis:
                pipeline = cast(Any, redis).pipeline(transaction=True)
                pipeline.xack(queue_name, self.consumer_group_name, id)
                pipeline.xdel(queue_name, id)
                await pipeline.execute()
            self._running.pop(id, None)

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
