"""The deal room's menu in a real browser: 차단하기 and 신고하기, each asking for confirmation first."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Browser, Dialog, Page, expect

from market.service import Market
from tests.browser.helpers import WAIT, signed_up
from tests.conftest import item_fields
from tests.e2e.nodes import Node


async def _signed_up(browser: Browser, url: str, nickname: str, email: str, asked: list[str]) -> Page:
    page = await signed_up(browser, url, nickname, email)

    async def yes(dialog: Dialog) -> None:  # every confirmation is answered yes
        asked.append(dialog.message)
        await dialog.accept()

    page.on("dialog", yes)
    return page


async def _open_deal(page: Page, other: str) -> None:
    await page.reload()
    await page.locator("button.room").filter(has=page.locator("strong", has_text=other)).first.click()
    await expect(page.locator("#room-menu")).to_be_visible(timeout=WAIT)


async def test_blocking_and_reporting_from_the_deal_room_menu(node: Node, browser: Browser, market: Market) -> None:
    asked: list[str] = []
    owner = await _signed_up(browser, node.url, "메뉴주인", "menu-owner@browser.example", asked)
    borrower = await _signed_up(browser, node.url, "메뉴손님", "menu-borrower@browser.example", asked)
    ids: dict[str, Any] = {r["nickname"]: r["id"] for r in await market.db.fetchall(
        "SELECT id, nickname FROM users WHERE nickname IN ('메뉴주인', '메뉴손님')")}
    item = await market.items.create(ids["메뉴주인"], item_fields(title="메뉴 텐트"))
    await market.chat.open_deal_room(item["id"], ids["메뉴손님"])

    await _open_deal(borrower, "메뉴주인")
    await borrower.locator("#room-menu summary").click()
    await borrower.get_by_role("button", name="신고하기").click()
    dialog = borrower.locator("#report-dialog")
    await expect(dialog).to_be_visible()
    await dialog.get_by_label("메뉴 텐트").check()
    await dialog.locator("#report-reason").select_option(label="금지 물품")
    await dialog.locator("#report-note").fill("판매 금지 물건 같아요")
    await dialog.get_by_role("button", name="신고하기").click()
    await expect(borrower.locator("#toast")).to_have_text("신고를 받았어요. 운영자가 확인할게요.", timeout=WAIT)
    rows = await market.db.fetchall("SELECT target_kind, target_id, reason, note FROM reports")
    assert [tuple(r.values()) for r in rows] == [("item", item["id"], "prohibited", "판매 금지 물건 같아요")]

    await _open_deal(owner, "메뉴손님")
    await owner.locator("#room-menu summary").click()
    await owner.get_by_role("button", name="차단하기").click()
    await expect(owner.locator("#toast")).to_have_text("메뉴손님님을 차단했어요.", timeout=WAIT)
    assert any(q.startswith("메뉴손님님을 차단할까요?") for q in asked)
    assert await market.db.fetchval("SELECT COUNT(*) FROM blocks WHERE blocker_id = %s AND blocked_id = %s",
                                    (ids["메뉴주인"], ids["메뉴손님"])) == 1
    await owner.locator("#room-menu summary").click()
    await expect(owner.get_by_role("button", name="차단 풀기")).to_be_visible(timeout=WAIT)
