"""A fail-open JSON cache on Redis, invalidated per scope by a generation counter.

Every key of a scope (an owner, an organization) embeds the scope's generation (and a global
epoch); a write in the scope increments the generation after the commit, so every earlier entry
becomes unreachable at once (no KEYS/SCAN) and expires on its own. A reader reads the generation
before it reads the database, so a page read before a write is stored under the old generation
and is never served after it.

An invalidation that cannot reach Redis is kept pending in this process and retried: in the
round trip of this process's next cached read (so this process never serves a cached page from
before its own write), and in the background every `RETRY_SECONDS` until Redis takes it (so
other processes stop serving the old entries as soon as Redis is back and the retry lands), and
once more at shutdown. More than `MAX_PENDING` scopes pending: the global epoch is bumped
instead, which invalidates every scope.

Redis down or slow (one short timeout): reads miss, writes are skipped, a warning is logged at most
once per interval, and Redis is left alone for a second before the next try.
"""

import asyncio
import contextlib
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

# One round trip: pending invalidations first (ARGV[1] the global epoch, ARGV[2] '1' to bump it,
# then the scopes' generation keys), then the epoch, the scope's generation (KEYS[1]) and the
# entry under them (the last two ARGV: the entry's prefix and key).
_READ = """
if ARGV[2] == '1' then
    redis.call('INCR', ARGV[1])
end
for i = 3, #ARGV - 2 do
    redis.call('INCR', ARGV[i])
end
local version = (redis.call('GET', ARGV[1]) or '0') .. '.' .. (redis.call('GET', KEYS[1]) or '0')
return {version, redis.call('GET', ARGV[#ARGV - 1] .. version .. ':' .. ARGV[#ARGV])}
"""
# Only the pending invalidations (the background retry).
_FLUSH = """
if ARGV[2] == '1' then
    redis.call('INCR', ARGV[1])
end
for i = 3, #ARGV do
    redis.call('INCR', ARGV[i])
end
return 1
"""
WARN_EVERY_SECONDS = 60.0
BACK_OFF_SECONDS = 1.0
RETRY_SECONDS = 0.5
MAX_PENDING = 10_000


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
        self.epoch_key = f"{namespace}:epoch"
        self._skip_until = 0.0
        self._warned_at = -WARN_EVERY_SECONDS
        self._pending: set[str] = set()
        self._bump_epoch = False
        self._wake = asyncio.Event()
        self._settled = asyncio.Event()
        self._settled.set()
        self._retrying: asyncio.Task[None] | None = None
        self._read = redis.script(_READ) if redis is not None else None
        self._flush = redis.script(_FLUSH) if redis is not None else None

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

    # -- invalidations that could not reach Redis ------------------------------------------

    @property
    def pending(self) -> int:
        """How many invalidations wait for Redis (the global epoch's counts as one)."""
        return len(self._pending) + int(self._bump_epoch)

    def keep_pending(self, generation_key: str) -> None:
        if len(self._pending) >= MAX_PENDING:
            self._pending.clear()
            self._bump_epoch = True
        else:
            self._pending.add(generation_key)
        self._settled.clear()
        self._wake.set()

    def pending_args(self) -> tuple[list[str], set[str], bool]:
        """(ARGV for the scripts, the scopes they carry, whether the epoch is bumped)."""
        scopes, bump = set(self._pending), self._bump_epoch
        return [self.epoch_key, "1" if bump else "0", *sorted(scopes)], scopes, bump

    def landed(self, scopes: set[str], bump: bool) -> None:
        """Invalidations that Redis has taken (concurrent new ones stay pending)."""
        self._pending -= scopes
        if bump:
            self._bump_epoch = False
        if not self.pending:
            self._wake.clear()
            self._settled.set()

    async def settled(self) -> None:
        """Wait until every invalidation of this process has reached Redis."""
        await self._settled.wait()

    async def read_entry(
        self, generation_key: str, entry_prefix: str, key: str
    ) -> tuple[str, bytes | None] | None:
        """(the version, the entry's JSON) after the pending invalidations; None: no answer."""
        if self.usable() is None or self._read is None:
            return None
        pending, scopes, bump = self.pending_args()
        try:
            version, raw = await self._read([generation_key], [*pending, entry_prefix, key])
        except REDIS_ERRORS as exc:
            self.failed("read", exc)
            return None
        if scopes or bump:
            self.landed(scopes, bump)
        version = version.decode() if isinstance(version, bytes) else str(version)
        return version, raw

    async def flush_pending(self) -> bool:
        """Send the pending invalidations; True when none is left."""
        if self._flush is None or not self.pending:
            return not self.pending
        args, scopes, bump = self.pending_args()
        try:
            await self._flush([], args)
        except REDIS_ERRORS as exc:
            self.failed("invalidation retry", exc)
            return False
        self.landed(scopes, bump)
        return not self.pending

    async def _retry_forever(self) -> None:
        while True:
            await self._wake.wait()
            if not await self.flush_pending():
                await asyncio.sleep(RETRY_SECONDS)

    def start(self) -> None:
        """Retry pending invalidations in the background (call in the lifespan)."""
        if self.redis is not None and self._retrying is None:
            self._retrying = asyncio.create_task(self._retry_forever())

    async def stop(self) -> None:
        """Stop retrying, after one last try (call before closing Redis)."""
        if self._retrying is not None:
            self._retrying.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retrying
            self._retrying = None
        if self.pending and not await self.flush_pending():
            logger.warning(
                "cache: %d invalidation(s) never reached Redis; entries of those scopes may be "
                "served until they expire",
                self.pending,
            )


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
        """(the scope's generation, the cached value): (None, None) when Redis can't answer.

        Pending invalidations of this process go first, in the same round trip.
        """
        entry = await self.cache.read_entry(f"{self.prefix}:gen", f"{self.prefix}:", key)
        if entry is None:
            return None, None
        generation, raw = entry
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
        """Make every entry of the scope unreachable. Call it after the write has committed.

        Tried even while reads back off; when Redis can't take it, it is kept pending.
        """
        redis = self.cache.redis
        if redis is None:
            return
        try:
            await redis.incr(f"{self.prefix}:gen")
        except REDIS_ERRORS as exc:
            self.cache.keep_pending(f"{self.prefix}:gen")
            self.cache.failed("invalidation", exc)
