"""A newcomer's first minutes in /app on a phone (390 px), in Debian's Chromium: the bot's welcome with Korean chips,
setting one's 동네 in an inline field (never a prompt box), result rows (five to a screen, read from the first,
내 물건 without 문의하기, a 찜 count that moves), and from the welcome to a sent rental request in four taps.
Then the app's accessibility: axe-core finds nothing on the room list and in a deal room, every control is at least
44×44 px with a visible focus, and the message box has most of the width. Screenshots of the welcome and of the
results at 390 px go to docs/screenshots/."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from PIL import Image, ImageDraw
from playwright.async_api import Browser, Page, expect

from market.service import Market
from tests.browser.helpers import WAIT, axe_violations, signed_up
from tests.conftest import item_fields
from tests.e2e.nodes import Node

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PHONE = {"width": 390, "height": 844}
CHAIRS = [("헬리녹스 체어원 캠핑의자", 5000, 30000), ("콜맨 캠핑의자 2개", 4000, 20000), ("로우 캠핑의자", 3000, 10000),
          ("캠핑의자 릴렉스 체어", 6000, 30000), ("접이식 캠핑의자", 2000, 0), ("캠핑의자 + 테이블 세트", 9000, 50000)]


def _picture(colour: tuple[int, int, int]) -> bytes:
    """A chair-ish drawing on a soft background (the screenshots show rows with photos)."""
    image = Image.new("RGB", (480, 480), (246, 240, 232))
    draw = ImageDraw.Draw(image)
    draw.rectangle((140, 150, 340, 300), fill=colour)
    draw.rectangle((140, 300, 160, 420), fill=(80, 80, 80))
    draw.rectangle((320, 300, 340, 420), fill=(80, 80, 80))
    out = io.BytesIO()
    image.save(out, "JPEG")
    return out.getvalue()


async def _market_with_chairs(market: Market, newcomer: str) -> dict[str, int]:
    """An owner with six camping chairs near 역삼동, and one chair of the newcomer's own."""
    owner = (await market.accounts.sign_up({"email": "chairs@browser.example", "nickname": "의자주인",
                                            "password": "rent4you1"})).user
    ids = {}
    for n, (title, price, deposit) in enumerate(CHAIRS):
        item = await market.items.create(owner.id, item_fields(title=title, price_per_day=price, deposit=deposit))
        await market.items.add_photos(owner.id, item["id"], [_picture((60 + 30 * n, 120, 200 - 25 * n))])
        ids[title] = item["id"]
    me = await market.db.fetchval("SELECT id FROM users WHERE nickname = %s", (newcomer,))
    mine = await market.items.create(int(me), item_fields(title="내 캠핑의자", price_per_day=1000, deposit=0))
    ids["mine"] = mine["id"]
    return ids


async def _wait_indexed(market: Market, item_ids: list[int]) -> None:
    for _ in range(200):
        found = await market.search({"q": "캠핑의자", "limit": "20"})
        if {i["id"] for i in found["items"]} >= set(item_ids):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the search index did not catch up")


async def _newcomer(browser: Browser, url: str, nickname: str, email: str) -> tuple[Page, list[str]]:
    page = await signed_up(browser, url, nickname, email, viewport=PHONE, has_touch=True)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), asyncio.ensure_future(d.dismiss())))
    return page, dialogs


async def test_from_the_welcome_to_a_rental_request_in_four_taps(node: Node, browser: Browser,
                                                                  market: Market) -> None:
    page, dialogs = await _newcomer(browser, node.url, "첫손님", "first@browser.example")
    welcome = page.locator("article.msg.bot", has_text="빌리마켓 도우미 빌리예요")
    await expect(welcome).to_be_visible(timeout=WAIT)
    chips = welcome.locator(".chip-button")
    assert await chips.all_text_contents() == ["캠핑의자 찾기", "내 주변 물건", "카테고리", "물건 올리기"]
    await expect(welcome.get_by_label("동 이름")).to_be_visible()
    ids = await _market_with_chairs(market, "첫손님")
    await _wait_indexed(market, list(ids.values()))
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / "welcome.png"))

    # 동네: typed in the welcome's own field; the bot remembers it and shows what is near
    await welcome.get_by_label("동 이름").fill("역삼동")
    await welcome.get_by_role("button", name="정하기", exact=True).click()
    await expect(page.locator("article.msg.bot", has_text="내 동네를 역삼동으로 정했어요")).to_be_visible(timeout=WAIT)
    await expect(page.locator("article.msg.mine", has_text="내 동네: 역삼동")).to_be_visible()
    await expect(page.locator("article.msg.bot", has_text="역삼동 주변 3km 안의 물건이에요")).to_be_visible(timeout=WAIT)
    assert await page.locator("#log").get_by_text("/동네").count() == 0  # the words, never the command

    taps = 0
    await chips.filter(has_text="캠핑의자 찾기").click()
    taps += 1
    results = page.locator("article.msg.bot.results", has_text="'캠핑의자' 검색 결과예요")
    await expect(results).to_be_visible(timeout=WAIT)
    rows = results.locator(".row-card")
    await expect(rows).to_have_count(5)
    log_box = await page.locator("#log").bounding_box()
    head = await results.bounding_box()
    assert log_box and head and log_box["y"] <= head["y"] < log_box["y"] + 40  # read from its first row
    inside = 0
    for n in range(5):
        box = await rows.nth(n).bounding_box()
        assert box is not None
        inside += box["y"] >= log_box["y"] and box["y"] + box["height"] <= log_box["y"] + log_box["height"]
    if inside != 5:
        await page.screenshot(path="/tmp/first5b-rows.png")
    assert inside == 5, "five results on one phone screen"
    first = rows.first
    for words in ("하루 ", "보증금 ", "♡ 0", "역삼동 · 방금"):
        await expect(first).to_contain_text(words)
    mine = results.locator(".row-card", has_text="내 캠핑의자")
    if await mine.count():
        await expect(mine).to_contain_text("내 물건")
        await expect(mine.get_by_role("button", name="문의하기")).to_have_count(0)
    await page.screenshot(path=str(SHOTS / "results.png"))
    wished = rows.nth(1)
    await wished.get_by_role("button", name="♡ 찜").click()  # (not counted: the request needs no 찜)
    await expect(wished.locator(".wishes")).to_have_text("♡ 1", timeout=WAIT)

    await first.get_by_role("button", name="문의하기").click()
    taps += 1
    weekend = page.locator("article.msg.bot").get_by_role("button", name="이번 주말")
    await expect(weekend).to_be_visible(timeout=WAIT)
    await weekend.click()
    taps += 1
    await expect(page.locator("#dates-total")).to_contain_text("결제 금액", timeout=WAIT)
    await page.get_by_role("button", name="요청 보내기").click()
    taps += 1
    await expect(page.locator("article.msg.bot", has_text="주인의 수락을 기다리고 있어요")).to_be_visible(timeout=WAIT)
    assert taps <= 4
    requested = await market.db.fetchval(
        "SELECT COUNT(*) FROM contracts c JOIN users u ON u.id = c.borrower_id WHERE u.nickname = '첫손님'"
        " AND c.state = 'REQUESTED'")
    assert requested == 1
    assert dialogs == []  # never a prompt(), alert() or confirm()


async def test_a_mistyped_command_and_no_connection_are_said_in_korean(node: Node, browser: Browser) -> None:
    page, _ = await _newcomer(browser, node.url, "오타손님", "typo@browser.example")
    await page.locator("#text").fill("/검삭 텐트")
    await page.locator("#text").press("Enter")
    await expect(page.locator("#toast")).to_contain_text("/검색을 찾으셨나요?", timeout=WAIT)
    await page.context.set_offline(True)
    await page.evaluate("() => window.dispatchEvent(new Event('offline'))")
    node.kill()  # (the socket drops; Chromium's own words for it must never show)
    await expect(page.locator("#conn")).to_have_text("연결이 끊겼어요. 다시 연결하는 중…", timeout=WAIT)
    await page.wait_for_timeout(1500)  # a failed reconnection or two
    await expect(page.locator("#conn")).to_have_text("연결이 끊겼어요. 다시 연결하는 중…")


async def _targets_too_small(page: Page) -> list[str]:
    """Every control on the screen (button, link, input, summary, chip) smaller than 44×44 px (a skip link waits
    off-screen until it has the focus)."""
    return list(await page.evaluate("""() => [...document.querySelectorAll(
        'button, a[href], input:not([type=file]), textarea, select, summary, label[for=photo]')]
        .filter((n) => n.offsetParent !== null && !n.closest('dialog:not([open])'))
        .map((n) => [n, n.getBoundingClientRect()])
        .filter(([n, r]) => r.width > 0 && r.right > 0 && (r.width < 44 || r.height < 44))
        .map(([n, r]) => `${n.tagName.toLowerCase()}#${n.id}.${n.className} "${(n.textContent || '').trim()
          .slice(0, 20)}" ${Math.round(r.width)}×${Math.round(r.height)}`)"""))


async def test_the_app_passes_axe_and_fits_a_thumb(node: Node, browser: Browser, market: Market) -> None:
    page, _ = await _newcomer(browser, node.url, "접근성", "a11y@browser.example")
    await expect(page.locator("article.msg.bot", has_text="빌리마켓 도우미")).to_be_visible(timeout=WAIT)
    assert await page.locator("main").count() == 1 and await page.locator("h1:visible").count() == 1
    assert await _targets_too_small(page) == []
    composer, text = await page.locator("#composer").bounding_box(), await page.locator("#text").bounding_box()
    assert composer and text and text["width"] >= 0.6 * PHONE["width"], (text, composer)
    await page.locator("#tools-open").click()
    assert await _targets_too_small(page) == []
    await page.locator("#tools-open").click()

    # a visible focus on every control reached with Tab
    unmarked: list[str] = []
    for _ in range(30):
        await page.keyboard.press("Tab")
        unmarked += await page.evaluate("""() => {
            const n = document.activeElement;
            if (!n || n === document.body) return [];
            const s = getComputedStyle(n);
            return s.outlineStyle === 'none' || parseFloat(s.outlineWidth) < 2 ? [n.id || n.className || n.tagName] : [];
        }""")
    assert unmarked == []

    assert await axe_violations(page) == []  # the assistant room with its welcome
    await page.locator("#back").click()
    await expect(page.locator("#rooms")).to_be_visible()
    assert await axe_violations(page) == []  # the room list

    owner = (await market.accounts.sign_up({"email": "a11y-owner@browser.example", "nickname": "빌려주는이",
                                            "password": "rent4you1"})).user
    item = await market.items.create(owner.id, item_fields(title="원터치 텐트"))
    await market.items.add_photos(owner.id, item["id"], [_picture((200, 120, 60))])
    status = await page.evaluate("""async (id) => (await fetch(`/api/items/${id}/room`,
        {method: 'POST', credentials: 'same-origin'})).status""", item["id"])  # 문의하기 on the item's page
    assert status == 201
    await page.locator("button.room", has_text="빌려주는이").click()
    await expect(page.locator("#deal-title")).to_have_text("원터치 텐트", timeout=WAIT)
    await expect(page.locator("article.msg.bot", has_text="주인과의 대화방이에요")).to_be_visible(timeout=WAIT)
    assert await axe_violations(page) == []  # a deal room
    assert await _targets_too_small(page) == []
    assert await page.locator("h1:visible").count() == 1


async def test_results_use_a_desktops_width(node: Node, browser: Browser, market: Market) -> None:
    page = await signed_up(browser, node.url, "넓은화면", "wide@browser.example", viewport={"width": 1280, "height": 800})
    ids = await _market_with_chairs(market, "넓은화면")
    await _wait_indexed(market, list(ids.values()))
    await page.locator("#text").fill("캠핑의자")
    await page.locator("#text").press("Enter")
    results = page.locator("article.msg.bot.results")
    await expect(results.locator(".row-card")).to_have_count(5, timeout=WAIT)
    log_box, box = await page.locator("#log").bounding_box(), await results.bounding_box()
    assert log_box and box and box["width"] >= 0.9 * (log_box["width"] - 24)  # the whole room, not a bubble's 88 %
    tops = [b["y"] for b in [await results.locator(".row-card").nth(n).bounding_box() for n in range(2)] if b]
    assert len(tops) == 2 and tops[0] == tops[1]  # side by side
