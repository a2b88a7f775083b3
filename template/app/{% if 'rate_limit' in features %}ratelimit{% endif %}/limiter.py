"""Policies, counters and the IETF RateLimit fields.

Counters live in Redis when the app has one (shared by every process), else in this process's
memory. The sliding-window-counter strategy costs two small keys per client and window. A storage
that fails is an optimisation that failed: the request is allowed and a warning logged (at most
once a minute), never a 500.
"""

import logging
import math
import time
from dataclasses import dataclass
from http import HTTPStatus

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError

from app.core.errors import DomainError
from app.core.redis import REDIS_ERRORS, RedisClient

logger = logging.getLogger(__name__)

WARN_EVERY_SECONDS = 60.0
STORAGE_ERRORS: tuple[type[BaseException], ...] = (StorageError, *REDIS_ERRORS)


@dataclass(frozen=True, slots=True)
class Policy:
    """A named limit: `quota` requests per `window` seconds."""

    name: str
    item: RateLimitItem

    @classmethod
    def parse(cls, name: str, text: str) -> "Policy":
        return cls(name, parse(text))

    @property
    def quota(self) -> int:
        return self.item.amount

    @property
    def window(self) -> int:
        return self.item.get_expiry()

    def header(self) -> str:
        """The `RateLimit-Policy` field (draft-ietf-httpapi-ratelimit-headers)."""
        return f'"{self.name}";q={self.quota};w={self.window}'


@dataclass(frozen=True, slots=True)
class Decision:
    policy: Policy
    allowed: bool
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        """`RateLimit-Policy` and `RateLimit`, plus `Retry-After` when refused."""
        headers = {
            "RateLimit-Policy": self.policy.header(),
            "RateLimit": f'"{self.policy.name}";r={self.remaining};t={self.reset_seconds}',
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, self.reset_seconds))
        return headers


class RateLimitedError(DomainError):
    """Too many requests; the client may retry after `decision.reset_seconds`."""

    status = HTTPStatus.TOO_MANY_REQUESTS

    def __init__(self, decision: Decision) -> None:
        super().__init__(
            f"rate limit {decision.policy.name!r} exceeded "
            f"({decision.policy.quota} per {decision.policy.window} s); "
            f"retry in {max(1, decision.reset_seconds)} s"
        )
        self.decision = decision


class RateLimits:
    """Counting hits against policies, failing open."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.limiter = SlidingWindowCounterRateLimiter(storage)
        self._warned_at = -WARN_EVERY_SECONDS

    @classmethod
    def create(cls, redis: RedisClient | None, redis_url: str | None) -> "RateLimits":
        if redis is None or redis_url is None:
            return cls(MemoryStorage())
        storage = RedisStorage(
            f"async+{redis_url}",
            implementation="redispy",
            wrap_exceptions=True,
            key_prefix="ratelimit",
            connection_pool=redis.connection_pool,  # type: ignore[arg-type]
        )
        return cls(storage)

    def _failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY_SECONDS:
            self._warned_at = now
            logger.warning("rate limit storage failed, allowing requests: %r", exc)

    async def _decision(self, policy: Policy, allowed: bool, *identity: str) -> Decision:
        stats = await self.limiter.get_window_stats(policy.item, *identity)
        reset = max(0, math.ceil(stats.reset_time - time.time()))
        return Decision(policy, allowed, max(0, stats.remaining), min(reset, policy.window))

    async def hit(self, policy: Policy, *identity: str) -> Decision | None:
        """Count one request; None when the storage can't answer (the request is allowed)."""
        try:
            allowed = await self.limiter.hit(policy.item, *identity)
            return await self._decision(policy, allowed, *identity)
        except STORAGE_ERRORS as exc:
            self._failed(exc)
            return None

    async def check(self, policy: Policy, *identity: str) -> Decision | None:
        """Whether one more request would be allowed, without counting it."""
        try:
            allowed = await self.limiter.test(policy.item, *identity)
            return await self._decision(policy, allowed, *identity)
        except STORAGE_ERRORS as exc:
            self._failed(exc)
            return None

    async def clear(self, policy: Policy, *identity: str) -> None:
        try:
            await self.limiter.clear(policy.item, *identity)
        except STORAGE_ERRORS as exc:
            self._failed(exc)

    async def reset(self) -> None:
        """Forget every counter (tests)."""
        await self.storage.reset()
