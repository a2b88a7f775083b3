import asyncio

import pytest
from sqlalchemy.pool import QueuePool

from app.core.config import Settings
from app.db.session import SessionGate, create_engine, create_session_gate

pytestmark = pytest.mark.anyio


async def test_waiters_get_a_slot_in_arrival_order() -> None:
    gate = SessionGate(1, timeout=5)
    order: list[int] = []
    release = asyncio.Event()

    async def holder() -> None:
        async with gate:
            await release.wait()

    async def waiter(number: int) -> None:
        async with gate:
            order.append(number)

    first = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiters = []
    for number in range(5):
        waiters.append(asyncio.create_task(waiter(number)))
        await asyncio.sleep(0)
    release.set()
    await asyncio.gather(first, *waiters)
    assert order == [0, 1, 2, 3, 4]


async def test_a_full_gate_times_out_and_frees_nothing() -> None:
    gate = SessionGate(1, timeout=0.05)
    loop = asyncio.get_running_loop()
    async with gate:
        started = loop.time()
        with pytest.raises(TimeoutError):
            async with gate:
                pass  # pragma: no cover - never entered
        assert loop.time() - started < 1
    async with gate:  # the timed-out waiter took no slot with it
        pass


async def test_the_pool_holds_what_the_gate_admits_in_every_dialect(settings: Settings) -> None:
    tuned = settings.model_copy(
        update={"db_pool_size": 3, "db_max_overflow": 2, "db_pool_timeout": 1.25}
    )
    for autocommit in (False, True):  # the gate admits as many to either engine
        engine = create_engine(tuned, autocommit=autocommit)
        try:
            pool = engine.pool
            assert isinstance(pool, QueuePool), type(pool)
            assert pool.size() == 3
            assert pool.timeout() == 1.25
            assert pool._max_overflow == 2
        finally:
            await engine.dispose()
    assert create_session_gate(tuned)._slots._value == 5
