""""내 위치" in a real browser: where one is goes to one's own assistant room, never into a deal room, whose
other member would read the exact coordinates."""

from __future__ import annotations

import asyncio
from typing import Any

from playwright.async_api import Browser, Page, expect

from market.service import Market
from tests.browser.helpers import WAIT, signed_up
from tests.browser.test_block_report_widget import _open_deal
from tests.conftest import item_fields
from tests.e2e.nodes import Node

HOME = {"latitude": 37.49791, "longitude": 127.02761}


async def _signed_up_at(browser: Browser, url: str, nickname: str, email: str) -> Page:
    return await signed_up(browser, url, nickname, email, geolocation=HOME, permissions=["geolocation"])


async def test_my_location_asked_from_a_deal_room_goes_to_my_assistant_room(
        node: Node, browser: Browser, market: Market) -> None:
    await _signed_up_at(browser, node.url, "위치주인", "where-owner@browser.example")
    borrower = await _signed_up_at(browser, node.url, "위치손님", "where-borrower@browser.example")
    ids: dict[str, Any] = {r["nickname"]: r["id"] for r in await market.db.fetchall(
        "SELECT id, nickname FROM users WHERE nickname IN ('위치주인', '위치손님')")}
    item = await market.items.create(ids["위치주인"], item_fields(title="위치 텐트"))
    deal, _ = await market.chat.open_deal_room(item["id"], ids["위치손님"])
    await _open_deal(borrower, "위치주인")
    # what the page keeps in this browser's storage (a message waits there until it is acknowledged)
    await borrower.evaluate("""() => { window.__kept = []; const set = Storage.prototype.setItem;
        Storage.prototype.setItem = function (k, v) { window.__kept.push(String(v)); return set.call(this, k, v); }; }""")
    await borrower.locator("#tools-open").click()
    await borrower.locator("#locate").click()
    sent = None
    for _ in range(200):
        sent = await market.db.fetchone(
            "SELECT r.kind, m.text FROM messages m JOIN rooms r ON r.id = m.room_id WHERE m.sender_id = %s",
            (ids["위치손님"],))
        if sent:
            break
        await asyncio.sleep(0.05)
    assert sent == {"kind": "assistant", "text": "내 위치 주변 물건"}  # the words; the position went beside them
    await expect(borrower.locator("article.msg.bot", has_text="이곳 주변")).to_be_visible(timeout=WAIT)
    anywhere = await market.db.fetchval("SELECT COUNT(*) FROM messages WHERE text LIKE '%%37.49%%'")
    assert anywhere == 0  # stored nowhere, not even in my own room
    kept = " ".join(await borrower.evaluate("() => window.__kept"))
    assert "37.498,127.028" in kept and "37.4979" not in kept  # and in the browser only to ~100 m, as a 동네 is
