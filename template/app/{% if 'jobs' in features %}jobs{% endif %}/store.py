"""Where a job's status, result file and idempotency key live: Redis, with a TTL.

A job's record is exactly as durable as the queue entry it describes (both are in Redis), and
everything a job leaves behind expires on its own after `JOBS_RESULT_TTL_SECONDS`: no table
grows, no cleanup is needed for the cleanup's own bookkeeping.
"""

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from app.core.redis import RedisClient
from app.db.types import utcnow

JobState = Literal["queued", "running", "succeeded", "failed"]

# The first caller with a key wins: its job id is kept under the key with the job's record.
_RESERVE = """
local existing = redis.call('GET', KEYS[1])
if existing then return existing end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
return false
"""
# Undo a reservation whose job could not be queued (only while nobody else has used it).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('DEL', KEYS[2])
return 1
"""


class JobRecord(BaseModel):
    """A job as stored. `scope` names who may see it (an owner, an organization, "all")."""

    id: uuid.UUID
    task: str
    scope: str
    status: JobState
    attempts: int = 0
    created_at: datetime
    updated_at: datetime
    request_id: str | None = None
    result: dict[str, Any] | None = None
    error: str | None = None


class JobStore:
    def __init__(self, redis: RedisClient, *, ttl_seconds: int, namespace: str = "jobs") -> None:
        self.redis = redis
        self.ttl_seconds = ttl_seconds
        self.namespace = namespace

    def _record_key(self, job_id: uuid.UUID) -> str:
        return f"{self.namespace}:record:{job_id}"

    def _idempotency_key(self, scope: str, task: str, key: str) -> str:
        return f"{self.namespace}:key:{scope}:{task}:{key}"

    def _file_key(self, job_id: uuid.UUID) -> str:
        return f"{self.namespace}:file:{job_id}"

    async def reserve(self, record: JobRecord, key: str | None) -> JobRecord | None:
        """Store a new queued record; with `key`, the earlier job's record if the key was used."""
        if key is None:
            await self.save(record)
            return None
        keys = [self._idempotency_key(record.scope, record.task, key), self._record_key(record.id)]
        existing = await self.redis.eval(
            _RESERVE, keys, [str(record.id), record.model_dump_json(), str(self.ttl_seconds)]
        )
        if existing is None:
            return None
        job_id = uuid.UUID(existing.decode() if isinstance(existing, bytes) else str(existing))
        return await self.get(job_id) or record.model_copy(update={"id": job_id})

    async def release(self, record: JobRecord, key: str | None) -> None:
        idempotency = self._idempotency_key(record.scope, record.task, key or "")
        await self.redis.eval(
            _RELEASE, [idempotency, self._record_key(record.id)], [str(record.id)]
        )

    async def save(self, record: JobRecord) -> None:
        await self.redis.set(
            self._record_key(record.id),
            record.model_dump_json().encode(),
            seconds=self.ttl_seconds,
        )

    async def get(self, job_id: uuid.UUID) -> JobRecord | None:
        raw = await self.redis.get(self._record_key(job_id))
        return None if raw is None else JobRecord.model_validate_json(raw)

    async def update(self, job_id: uuid.UUID, **changes: Any) -> JobRecord | None:
        """Change a record the worker owns (one worker runs a job at a time)."""
        record = await self.get(job_id)
        if record is None:
            return None
        record = record.model_copy(update={**changes, "updated_at": utcnow()})
        await self.save(record)
        return record

    async def put_file(self, job_id: uuid.UUID, content: bytes) -> None:
        await self.redis.set(self._file_key(job_id), content, seconds=self.ttl_seconds)

    async def get_file(self, job_id: uuid.UUID) -> bytes | None:
        return await self.redis.get(self._file_key(job_id))


def new_record(task: str, *, scope: str, request_id: str | None) -> JobRecord:
    now = utcnow()
    return JobRecord(
        id=uuid.uuid4(),
        task=task,
        scope=scope,
        status="queued",
        created_at=now,
        updated_at=now,
        request_id=request_id,
    )
