"""What a worker process opens once and its jobs share: the database engine and the job store."""

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from taskiq import Context, TaskiqState

from app.core.config import Settings
from app.core.redis import RedisClient
from app.db.session import create_engine, create_session_factory
from app.jobs.store import JobStore


@dataclass
class JobResources:
    settings: Settings
    engine: AsyncEngine
    session: async_sessionmaker[AsyncSession]
    redis: RedisClient
    jobs: JobStore

    @classmethod
    def open(cls, settings: Settings) -> "JobResources":
        redis = RedisClient.from_settings(settings)
        engine = create_engine(settings)
        return cls(
            settings=settings,
            engine=engine,
            session=create_session_factory(engine),
            redis=redis,
            jobs=JobStore(redis, ttl_seconds=settings.jobs_result_ttl_seconds),
        )

    async def close(self) -> None:
        await self.redis.aclose()
        await self.engine.dispose()

    def install(self, state: TaskiqState) -> None:
        state.resources = self
        state.jobs = self.jobs  # read by the status and retry middlewares

    @staticmethod
    def of(context: Context) -> "JobResources":
        resources: JobResources = context.state.resources
        return resources


def job_id_of(context: Context) -> uuid.UUID:
    """The id of the running job (its record's id in the job store)."""
    return uuid.UUID(str(context.message.labels["job_id"]))
