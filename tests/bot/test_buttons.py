"""Button tokens in Redis: bound to a person and a room, single-use where they change state."""

from __future__ import annotations

import asyncio

import pytest

from bot.buttons import ButtonError, Buttons
from market.service import Market


async def test_a_button_works_once_for_its_owner_in_its_room(market: Market) -> None:
    buttons = Buttons(market.redis)
    token = await buttons.issue(7, 3, "wish", {"item": 9}, single_use=True)
    with pytest.raises(ButtonError) as other:
        await buttons.press(token, 8, 3)
    assert other.value.reason == "button_not_yours"
    with pytest.raises(ButtonError) as room:
        await buttons.press(token, 7, 4)
    assert room.value.reason == "button_not_yours"
    press = await buttons.press(token, 7, 3)  # the refusals above did not use it up
    assert press.action == "wish" and press.payload == {"item": 9}
    with pytest.raises(ButtonError) as again:
        await buttons.press(token, 7, 3)
    assert again.value.reason == "button_used"


async def test_racing_presses_of_a_single_use_button_succeed_once(market: Market) -> None:
    buttons = Buttons(market.redis)
    token = await buttons.issue(1, 1, "ask", {"item": 1}, single_use=True)
    results = await asyncio.gather(*(buttons.press(token, 1, 1) for _ in range(20)), return_exceptions=True)
    assert sum(1 for r in results if not isinstance(r, Exception)) == 1


async def test_forged_expired_and_reusable_buttons(market: Market) -> None:
    buttons = Buttons(market.redis)
    for forged in ["nope", "abc.123", "x" * 500, "", None, 5, "a.b.c"]:
        with pytest.raises(ButtonError) as e:
            await buttons.press(forged, 1, 1)
        assert e.value.reason in ("button_invalid", "button_expired")
    with pytest.raises(ButtonError) as expired:
        await buttons.press("abc.1000", 1, 1)  # an expiry long past
    assert expired.value.reason == "button_expired"
    short = Buttons(market.redis, ttl_s=1)
    token = await short.issue(1, 1, "more", {})
    assert (await short.press(token, 1, 1)).action == "more"
    assert (await short.press(token, 1, 1)).action == "more"  # not single-use
    await asyncio.sleep(2.1)
    with pytest.raises(ButtonError) as late:
        await short.press(token, 1, 1)
    assert late.value.reason == "button_expired"



async def test_replies_built_at_once_each_have_their_buttons_stored_before_they_are_posted(market: Market) -> None:
    buttons = Buttons(market.redis)

    async def reply(n: int) -> list[str]:
        async with buttons.batch():
            tokens = [await buttons.issue(n, 5, "more", {"page": i}) for i in range(1 + n % 3)]
        return tokens  # (the reply would be posted now: each of its tokens must already work)

    replies = await asyncio.gather(*(reply(n) for n in range(30)))
    for n, tokens in enumerate(replies):
        assert [(await buttons.press(t, n, 5)).payload for t in tokens] == [{"page": i} for i in range(len(tokens))]


async def test_a_failed_store_reaches_every_reply_waiting_on_it(market: Market) -> None:
    buttons = Buttons(market.redis)

    async def refuse(*args: object, **kwargs: object) -> None:
        raise ConnectionError("Redis away")

    buttons._store = refuse  # type: ignore[method-assign]  # (as if Redis did not answer)
    buttons._redis = type("Away", (), {"set": refuse})()  # type: ignore[assignment]

    async def reply(n: int) -> None:
        async with buttons.batch():
            await buttons.issue(n, 5, "more", {})
            await buttons.issue(n, 5, "wish", {})

    results = await asyncio.gather(*(reply(n) for n in range(5)), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)

def test_tokens_never_repeat_not_even_in_a_forked_process() -> None:
    import os

    from bot import buttons

    parts = [buttons._random_part() for _ in range(2000)]  # (several refills of the drawn bytes)
    assert len(set(parts)) == len(parts) and all(len(p) == 22 for p in parts)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child's next token, for the parent to compare with its own
        os.write(write, buttons._random_part().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    os.close(write)
    assert child != buttons._random_part()
