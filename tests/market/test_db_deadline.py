"""A statement's deadline (``market.db._within``) keeps ``asyncio.timeout``'s rules with one timer: only its own
cancellation becomes TimeoutError, a cancellation from elsewhere stays one, and nothing is left cancelled."""

from __future__ import annotations

import asyncio

import pytest

from market.db import _within


async def test_past_the_deadline_is_a_timeout_and_leaves_the_task_uncancelled() -> None:
    with pytest.raises(TimeoutError):
        await _within(0.01, asyncio.sleep(5))
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    await asyncio.sleep(0.02)  # (nothing is delivered later)
    assert await _within(1, asyncio.sleep(0, "done")) == "done"


async def test_work_done_in_time_leaves_no_timer_behind() -> None:
    assert await _within(0.01, asyncio.sleep(0.001, 7)) == 7
    await asyncio.sleep(0.03)  # the timer would have fired by now
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


async def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    started = asyncio.Event()

    async def statement() -> None:
        started.set()
        await asyncio.sleep(5)

    async def caller() -> None:
        await _within(5, statement())

    task = asyncio.create_task(caller())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_an_outer_deadline_is_the_outer_ones_and_an_inner_one_the_inner_ones() -> None:
    with pytest.raises(TimeoutError):  # the outer one expires first: the inner sees a plain cancellation
        async with asyncio.timeout(0.01):
            await _within(5, asyncio.sleep(5))
    async with asyncio.timeout(5) as outer:  # the inner one expires: the outer one is untouched
        with pytest.raises(TimeoutError):
            await _within(0.01, asyncio.sleep(5))
        assert not outer.expired()
        await asyncio.sleep(0.02)
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


async def test_work_that_swallows_the_cancellation_leaves_none_pending() -> None:
    async def stubborn() -> str:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            return "swallowed"
        return "slept"

    assert await _within(0.01, stubborn()) == "swallowed"
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    await asyncio.sleep(0.02)
