"""A fail-open JSON cache on Redis, invalidated per scope by a generation counter.

Every key of a scope (an owner, an organization) embeds the scope's generation; a write in the
scope increments it after the commit, so every earlier entry becomes unreachable at once (no
KEYS/SCAN) and expires on its own. A reader reads the generation before it reads the database, so
a page read before a write is stored under the old generation and is never served after it.

Redis down or slow (one short timeout): reads miss, writes are skipped, a warning is logged at most
once per interval, and Redis is left alone for a second before the next try.
"""

import hashlib
import json
import logging
import random
import time
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from app.core.redis import REDIS_ERRORS, RedisClient

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

# One round trip: the scope's generation, and the entry under it.
_READ = """
local generation = redis.call('GET', KEYS[1]) or '0'
return {generation, redis.call('GET', ARGV[1] .. generation .. ':' .. ARGV[2])}
"""
WARN_EVERY_SECONDS = 60.0
BACK_OFF_SECONDS = 1.0


class Cache:
    """The process's cache: where entries live, how long, and what happens when Redis fails."""

    def __init__(
        self,
        redis: RedisClient | None,
        *,
        ttl_seconds: int,
        jitter: float = 0.1,
        namespace: str = "cache",
    ) -> None:
        self.redis = redis
        self.ttl_seconds = ttl_seconds
        self.jitter = jitter
        self.namespace = namespace
        self._skip_until = 0.0
        self._warned_at = -WARN_EVERY_SECONDS

    def scoped(self, kind: str, scope: object) -> "ScopedCache":
        return ScopedCache(self, f"{self.namespace}:{kind}:{scope}")

    def ttl(self) -> int:
        """The TTL plus up to `jitter` of it, so entries written together expire apart."""
        spread = int(self.ttl_seconds * self.jitter)
        return self.ttl_seconds + random.randint(0, spread)  # noqa: S311  (not a secret)

    def usable(self) -> RedisClient | None:
        if self.redis is None or time.monotonic() < self._skip_until:
            return None
        return self.redis

    def failed(self, action: str, exc: BaseException) -> None:
        now = time.monotonic()
        self._skip_until = now + BACK_OFF_SECONDS
        if now - self._warned_at >= WARN_EVERY_SECONDS:
            self._warned_at = now
            logger.warning("cache %s failed, serving from the database: %r", action, exc)


class ScopedCache:
    """The entries of one scope. `read` gives the generation to `write` under."""

    def __init__(self, cache: Cache, prefix: str) -> None:
        self.cache = cache
        self.prefix = prefix

    @staticmethod
    def key(*parts: object) -> str:
        """A short key for any parameters (user text included), by hash."""
        text = json.dumps([str(part) for part in parts], separators=(",", ":"))
        return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()

    async def read(self, key: str, model: type[M]) -> tuple[str | None, M | None]:
        """(the scope's generation, the cached value): (None, None) when Redis can't answer."""
        redis = self.cache.usable()
        if redis is None:
            return None, None
        try:
            generation, raw = await redis.eval(
                _READ, [f"{self.prefix}:gen"], [f"{self.prefix}:", key]
            )
        except REDIS_ERRORS as exc:
            self.cache.failed("read", exc)
            return None, None
        generation = generation.decode() if isinstance(generation, bytes) else str(generation)
        if raw is None:
            return generation, None
        try:
            return generation, model.model_validate_json(raw)
        except ValidationError:
            # Written by another version of the schema: treat it as a miss, it will be replaced.
            return generation, None

    async def write(self, generation: str | None, key: str, value: BaseModel) -> None:
        redis = self.cache.usable()
        if redis is None or generation is None:
            return
        try:
            await redis.set(
                f"{self.prefix}:{generation}:{key}",
                value.model_dump_json().encode(),
                seconds=self.cache.ttl(),
            )
        except REDIS_ERRORS as exc:
            self.cache.failed("write", exc)

    async def invalidate(self) -> None:
        """Make every entry of the scope unreachable. Call it after the write has committed."""
        redis = self.cache.redis
        if redis is None:
            return
        try:
            await redis.incr(f"{self.prefix}:gen")
        except REDIS_ERRORS as exc:
            self.cache.failed("invalidation", exc)
