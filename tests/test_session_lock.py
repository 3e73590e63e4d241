"""The session's read lock (fishjam_fast._core.locks.ReadLock): asyncio.Lock's semantics with
a synchronous try_acquire, as compiled from its one source (the native receive loop
takes it by C calls) and as that source runs uncompiled."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from fishjam_fast._core import locks
from tests.conftest import compiled, uncompiled


@pytest.fixture(params=["python", "compiled"])
def lock_class(request: pytest.FixtureRequest) -> Any:
    module = uncompiled(locks) if request.param == "python" else compiled(locks)
    return module.ReadLock


async def test_waiters_are_served_in_order_and_none_is_passed(lock_class: Any) -> None:
    lock = lock_class()
    assert lock.try_acquire() and not lock.try_acquire()
    order: list[int] = []

    async def take(i: int) -> None:
        await lock.acquire()
        order.append(i)
        lock.release()

    tasks = [asyncio.create_task(take(i)) for i in range(3)]
    await asyncio.sleep(0)
    lock.release()
    assert not lock.try_acquire()  # free, but someone waits: no barging past it
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2]
    assert lock.try_acquire()


async def test_a_cancelled_waiter_hands_the_lock_on(lock_class: Any) -> None:
    lock = lock_class()
    lock.try_acquire()
    first = asyncio.create_task(lock.acquire())
    second = asyncio.create_task(lock.acquire())
    await asyncio.sleep(0)
    lock.release()  # wakes the first, which is cancelled before it runs
    first.cancel()
    assert await asyncio.wait_for(second, 1.0) is True
    lock.release()
    assert lock.try_acquire()


def test_releasing_an_unheld_lock_is_an_error(lock_class: Any) -> None:
    with pytest.raises(RuntimeError, match="not held"):
        lock_class().release()


def test_both_builds_come_from_the_one_source() -> None:
    built = compiled(locks).ReadLock
    assert built.__module__ == "fishjam_fast._core.locks"
    assert uncompiled(locks).ReadLock is not built
