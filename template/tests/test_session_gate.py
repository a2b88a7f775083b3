import asyncio

import pytest

from app.db.session import SessionGate

pytestmark = pytest.mark.anyio


async def test_waiters_get_a_slot_in_arrival_order() -> None:
    gate = SessionGate(1, timeout=5)
    order: list[int] = []
    release = asyncio.Event()

    async def holder() -> None:
        async with gate():
            await release.wait()

    async def waiter(number: int) -> None:
        async with gate():
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
    async with gate():
        started = loop.time()
        with pytest.raises(TimeoutError):
            async with gate():
                pass  # pragma: no cover - never entered
        assert loop.time() - started < 1
    async with gate():  # the timed-out waiter took no slot with it
        pass
