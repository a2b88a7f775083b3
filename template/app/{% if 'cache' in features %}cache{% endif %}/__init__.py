"""Read caching in Redis for services: per-scope generations, JSON through the read schemas."""

from app.cache.store import Cache, ScopedCache

__all__ = ["Cache", "ScopedCache"]
