"""Rate limits on the `limits` library: per client on the API, per e-mail and IP on sign-in."""

from app.ratelimit.limiter import Decision, Policy, RateLimitedError, RateLimits

__all__ = ["Decision", "Policy", "RateLimitedError", "RateLimits"]
