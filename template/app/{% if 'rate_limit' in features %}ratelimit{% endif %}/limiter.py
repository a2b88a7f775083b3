"""Policies, counters and the IETF RateLimit fields.

Counters live in Redis when the app has one (shared by every process), else in this process's
memory. The sliding-window-counter strategy of `limits` costs two small keys per client and
window. With Redis, a hit is one round trip: a Lua script (sent once, then called by its SHA)
does what `limits`' own acquire script does on the same keys, and answers the window's counts
in the same call, so that `limits` can still test and clear those counters. The same call can
resolve a verified API key to its organization (`app.ratelimit.clients.VerifiedKeys`).

A storage that fails is an optimisation that failed: the request is allowed and a warning logged
(at most once a minute), never a 500; Redis is then left alone for a second (a Redis that
accepts connections and never answers costs one short timeout per second, not one per request).
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
from app.ratelimit.clients import VerifiedKeys

logger = logging.getLogger(__name__)

WARN_EVERY_SECONDS = 60.0
BACK_OFF_SECONDS = 1.0
KEY_PREFIX = "ratelimit"

# limits' acquire_sliding_window.lua (same keys, same rule), answering the window after the hit.
# ARGV: limit, window seconds, the client's current-window key, then (optional) the
# verified-key marker and the two halves of the organization's current-window key: when the
# marker names an organization, the hit counts for it instead of the client.
_HIT = """
local limit = tonumber(ARGV[1])
local expiry = tonumber(ARGV[2]) * 1000
local current_key = ARGV[3]
if ARGV[4] then
    local organization = redis.call('GET', ARGV[4])
    if organization then
        current_key = ARGV[5] .. organization .. ARGV[6]
    end
end
local previous_key = current_key .. '/-1'
local current_ttl = tonumber(redis.call('PTTL', current_key))
if current_ttl > 0 and current_ttl < expiry then
    redis.call('RENAME', current_key, previous_key)
    redis.call('SET', current_key, 0, 'PX', current_ttl + expiry)
end
local previous_count = tonumber(redis.call('GET', previous_key)) or 0
local previous_ttl = math.max(0, tonumber(redis.call('PTTL', previous_key)))
local current_count = tonumber(redis.call('GET', current_key)) or 0
current_ttl = math.max(0, tonumber(redis.call('PTTL', current_key)))
local weighted = math.floor(previous_count * previous_ttl / expiry) + current_count
local allowed = 0
if 1 <= limit and weighted + 1 <= limit then
    allowed = 1
    if current_ttl > 0 then
        current_count = redis.call('INCRBY', current_key, 1)
    else
        redis.call('SET', current_key, 1, 'PX', expiry * 2)
        current_count = 1
        current_ttl = expiry * 2
    end
end
return {allowed, previous_count, previous_ttl, current_count, current_ttl}
"""
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


def _decision(
    policy: Policy,
    allowed: bool,
    previous_count: int,
    previous_expires_in: float,
    current_count: int,
    current_expires_in: float,
) -> Decision:
    """What is left and when it resets, computed as `limits`' get_window_stats does."""
    window = policy.window
    weighted = previous_count * previous_expires_in / window + current_count
    remaining = max(0, policy.quota - math.floor(weighted))
    reset = 0.0
    if previous_count or current_count:
        resets = [math.inf]
        if previous_count:
            resets.append(previous_expires_in % (window / previous_count))
        if current_count:
            resets.append(current_expires_in % window)
        reset = min(resets)
    return Decision(policy, allowed, remaining, min(max(0, math.ceil(reset)), window))


class RateLimits:
    """Counting hits against policies, failing open."""

    def __init__(self, storage: Storage, redis: RedisClient | None = None) -> None:
        self.storage = storage
        self.limiter = SlidingWindowCounterRateLimiter(storage)
        self.shared = redis is not None
        self.keys = VerifiedKeys()
        self._redis = redis
        self._hit = redis.script(_HIT) if redis is not None else None
        self._warned_at = -WARN_EVERY_SECONDS
        self._skip_until = 0.0

    @classmethod
    def create(cls, redis: RedisClient | None, redis_url: str | None) -> "RateLimits":
        if redis is None or redis_url is None:
            return cls(MemoryStorage())
        storage = RedisStorage(
            f"async+{redis_url}",
            implementation="redispy",
            wrap_exceptions=True,
            key_prefix=KEY_PREFIX,
            connection_pool=redis.connection_pool,  # type: ignore[arg-type]
        )
        return cls(storage, redis)

    def _usable(self) -> bool:
        return time.monotonic() >= self._skip_until

    def _failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        self._skip_until = now + BACK_OFF_SECONDS
        if now - self._warned_at >= WARN_EVERY_SECONDS:
            self._warned_at = now
            logger.warning("rate limit storage failed, allowing requests: %r", exc)

    @staticmethod
    def _key(policy: Policy, *identity: str) -> str:
        """The current-window key `limits`' Redis storage uses for this policy and client."""
        return KEY_PREFIX + ":{" + policy.item.key_for(*identity) + "}"

    async def _stats(self, policy: Policy, allowed: bool, *identity: str) -> Decision:
        stats = await self.limiter.get_window_stats(policy.item, *identity)
        reset = max(0, math.ceil(stats.reset_time - time.time()))
        return Decision(policy, allowed, max(0, stats.remaining), min(reset, policy.window))

    async def hit(
        self, policy: Policy, *identity: str, marker: str | None = None
    ) -> Decision | None:
        """Count one request; None when the storage can't answer (the request is allowed).

        `marker`: a Redis key that may name an organization (a verified API key); when it
        does, the request counts for `org:<organization>` instead of `identity`.
        """
        if not self._usable():
            return None
        try:
            if self._hit is None:
                allowed = await self.limiter.hit(policy.item, *identity)
                return await self._stats(policy, allowed, *identity)
            args: list[str | int] = [policy.quota, policy.window, self._key(policy, *identity)]
            if marker is not None:
                before, after = self._key(policy, "org:\x00").split("\x00")
                args += [marker, before, after]
            allowed_flag, previous, previous_ttl, current, current_ttl = await self._hit([], args)
            return _decision(
                policy,
                bool(allowed_flag),
                int(previous),
                int(previous_ttl) / 1000,
                int(current),
                int(current_ttl) / 1000,
            )
        except STORAGE_ERRORS as exc:
            self._failed(exc)
            return None

    async def check(self, policy: Policy, *identity: str) -> Decision | None:
        """Whether one more request would be allowed, without counting it."""
        if not self._usable():
            return None
        try:
            allowed = await self.limiter.test(policy.item, *identity)
            return await self._stats(policy, allowed, *identity)
        except STORAGE_ERRORS as exc:
            self._failed(exc)
            return None

    async def clear(self, policy: Policy, *identity: str) -> None:
        if not self._usable():
            return
        try:
            await self.limiter.clear(policy.item, *identity)
        except STORAGE_ERRORS as exc:
            self._failed(exc)

    async def key_verified(self, api_key: str, organization: object) -> None:
        """An API key was verified: from now on its requests count for its organization."""
        if not self.keys.remember(api_key, organization) or self._redis is None:
            return
        if not self._usable():
            self.keys.forget(api_key)  # rewrite the marker at the next verification
            return
        try:
            await self._redis.set(
                self.keys.marker(api_key),
                str(organization).encode(),
                seconds=self.keys.marker_seconds,
            )
        except STORAGE_ERRORS as exc:
            self.keys.forget(api_key)
            self._failed(exc)

    async def reset(self) -> None:
        """Forget every counter (tests)."""
        await self.storage.reset()
