"""Readiness checks: each dependency is probed concurrently, each within the same deadline."""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

logger = logging.getLogger(__name__)

Check = Callable[[], Awaitable[None]]


async def _run_one(name: str, check: Check, seconds: float) -> str:
    try:
        async with asyncio.timeout(seconds):
            await check()
    except TimeoutError:
        logger.warning("readiness check %s timed out after %.1fs", name, seconds)
        return "timeout"
    except Exception as exc:
        logger.warning("readiness check %s failed: %s", name, type(exc).__name__)
        return "error"
    return "ok"


async def run_checks(checks: Mapping[str, Check], *, seconds: float) -> dict[str, str]:
    names = list(checks)
    results = await asyncio.gather(*(_run_one(name, checks[name], seconds) for name in names))
    return dict(zip(names, results, strict=True))
