"""A newcomer's first minutes in a real browser (Debian's Chromium) at 390 px: the landing page with its 시작하기
button and item cards that open the item's page, a signed-in person sent on to /app; log-in and sign-up errors
said beside their field, announced and focused; my page as cards with the money each rental still means; and
axe-core's WCAG 2.1 A/AA check on /, /login, /me and /items/<n> with nothing found."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from market import demo
from market.people.reviews import RATING_HINT
from market.service import Market
from tests.browser.helpers import WAIT, axe_violations, signed_up
from tests.conftest import item_fields
from tests.e2e.nodes import Node
from tests.rentals.helpers import Bank, paid_rental, settled, user

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PHONE = {"viewport": {"width": 390, "height": 844}}


@pytest.fixture
def bank(market: Market) -> Bank:
    assert market.config.bank_url
    return Bank(market.config.bank_url)


async def _photo_item(market: Market, owner: int, kind: str, **over: Any) -> int:
    made = await market.items.create(owner, item_fields(**over))
    await market.items.add_photos(owner, made["id"], [demo.demo_photo(random.Random(made["id"]), kind)])
    return int(made["id"])


async def _no_violations(page: Page, where: str) -> None:
    found = await axe_violations(page)
    assert found == [], f"{where}: {found}"


async def _small_controls(page: Page) -> list[str]:
    """The visible links, buttons and fields smaller than 44×44 px (a fingertip)."""
    return list(await page.evaluate("""() => [...document.querySelectorAll('a, button, input, select, summary')]
        .filter(e => e.offsetParent !== null && e.type !== 'hidden')
        .map(e => [e, e.getBoundingClientRect()])
        .filter(([e, r]) => r.width < 44 || r.height < 44)
        .map(([e, r]) => `${e.tagName} ${(e.textContent || e.name || '').trim().slice(0, 20)} ${r.width}x${r.height}`)"""))


async def _structure(page: Page) -> tuple[int, int]:
    return (await page.locator("main").count(), await page.locator("h1").count())


async def _login(browser: Browser, url: str, email: str, password: str = "rent4you") -> Page:
    page = await (await browser.new_context(locale="ko-KR", **PHONE)).new_page()  # type: ignore[arg-type]
    await page.goto(url + "login")
    form = page.locator("#login")
    await form.locator("input[name=email]").fill(email)
    await form.locator("input[name=password]").fill(password)
    await form.get_by_role("button", name="로그인").click()
    await page.wait_for_url("**/app", timeout=WAIT)
    return page


async def test_the_landing_page_starts_people_off_and_its_cards_open_the_item(
        node: Node, browser: Browser, market: Market) -> None:
    owner = await user(market, "랜딩주인")
    chair = await _photo_item(market, owner, "캠핑의자", title="헬리녹스 캠핑의자")
    for n, (kind, title) in enumerate([("원터치텐트", "4인용 원터치 텐트"), ("DSLR/미러리스", "소니 A7III 바디"),
                                       ("닌텐도 스위치", "닌텐도 스위치 OLED"), ("전동드릴", "보쉬 전동드릴")]):
        await _photo_item(market, owner, kind, title=title, lat=37.4990 + n * 0.002, lng=127.0290)
    page = await (await browser.new_context(locale="ko-KR", **PHONE)).new_page()  # type: ignore[arg-type]
    await page.goto(node.url)
    start = page.get_by_role("link", name="시작하기 · 로그인")
    await expect(start).to_be_visible()
    box = await start.bounding_box()
    assert box and box["y"] < 100 and box["height"] >= 44  # at the top, a fingertip wide
    await expect(page.locator("#items li")).to_have_count(5, timeout=WAIT)
    assert await _structure(page) == (1, 1)
    assert await _small_controls(page) == []
    await _no_violations(page, "/")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "landing.png"))

    await page.get_by_role("link", name="헬리녹스 캠핑의자").click()
    await page.wait_for_url(f"**/items/{chair}", timeout=WAIT)
    await expect(page.get_by_role("heading", level=1)).to_contain_text("헬리녹스 캠핑의자")
    await expect(page.locator(".facts")).to_contain_text("새 이웃")  # no reviews: no "★" figure
    assert await _structure(page) == (1, 1)
    assert await _small_controls(page) == []
    await _no_violations(page, "/items/<n>")

    await page.goto(node.url)
    await page.get_by_role("link", name="시작하기 · 로그인").click()
    await page.wait_for_url("**/login", timeout=WAIT)

    member = await signed_up(browser, node.url, "랜딩이웃", "landing@browser.example", **PHONE)
    await member.goto(node.url)
    await member.wait_for_url("**/app", timeout=WAIT)  # signed in: straight to the app


async def _error_beside(page: Page, form: str, field: str, text: str) -> None:
    """The error is under ``field`` of ``form``, announced, tied to the field, and the field has focus."""
    error = page.locator(f"#{form} .field-error")
    await expect(error).to_contain_text(text, timeout=WAIT)
    await expect(error).to_have_attribute("role", "alert")
    error_id = await error.get_attribute("id")
    field_input = page.locator(f"#{form} [name={field}]")
    assert error_id and error_id in (await field_input.get_attribute("aria-describedby") or "").split()
    await expect(field_input).to_have_attribute("aria-invalid", "true")
    await expect(field_input).to_be_focused()
    field_box, error_box = await field_input.bounding_box(), await error.bounding_box()
    assert field_box and error_box and 0 <= error_box["y"] - (field_box["y"] + field_box["height"]) < 40  # beside it
    assert error_box["y"] + error_box["height"] <= 844  # on screen, not below the fold


async def test_log_in_and_sign_up_errors_appear_beside_the_field_announced_and_focused(
        node: Node, browser: Browser, market: Market) -> None:
    await market.accounts.sign_up({"email": "taken@browser.example", "nickname": "있는이웃", "password": "rent4you"})
    page = await (await browser.new_context(locale="ko-KR", **PHONE)).new_page()  # type: ignore[arg-type]
    await page.goto(node.url + "login")
    assert await _structure(page) == (1, 1)
    assert await _small_controls(page) == []
    await _no_violations(page, "/login")
    login = page.locator("#login")
    await login.locator("input[name=email]").fill("taken@browser.example")
    await login.locator("input[name=password]").fill("wrongpass1")
    await login.get_by_role("button", name="로그인").click()
    await _error_beside(page, "login", "password", "비밀번호")
    await _no_violations(page, "/login with an error")

    signup = page.locator("#signup")
    await signup.locator("input[name=email]").fill("taken@browser.example")
    await signup.locator("input[name=nickname]").fill("새로운이웃")
    await signup.locator("input[name=password]").fill("rent4you1")
    await signup.get_by_role("button", name="가입하기").click()
    await _error_beside(page, "signup", "email", "이메일")
    await signup.locator("input[name=email]").fill("fresh@browser.example")
    await signup.locator("input[name=password]").fill("password")
    await signup.get_by_role("button", name="가입하기").click()
    await _error_beside(page, "signup", "password", "비밀번호")
    assert await page.locator("#signup .field-error").count() == 1  # the old one went with the new try
    await expect(signup.locator("input[name=email]")).not_to_have_attribute("aria-invalid", "true")

    await page.goto(node.url + "password/reset#" + "x" * 43)
    reset = page.locator("#reset")
    await reset.locator("input[name=password]").fill("borrow2lend")
    await reset.locator("input[name=again]").fill("borrow2len")
    await reset.get_by_role("button", name="비밀번호 바꾸기").click()
    await _error_beside(page, "reset", "again", "두 비밀번호가 달라요")


async def test_my_page_shows_cards_with_korean_states_and_the_money_still_owed(
        node: Node, browser: Browser, market: Market, bank: Bank) -> None:
    owner, borrower = await user(market, "마이주인"), await user(market, "마이손님")
    done, _, _ = await settled(market, bank, owner, borrower)
    now, other_owner, _ = await paid_rental(market, bank)
    await market.db.execute("UPDATE contracts SET borrower_id = %s WHERE id = %s", (borrower, now))
    for cid in (done, now):
        c = await market.rentals.get(cid)
        await market.items.add_photos(c.owner_id, c.item_id, [demo.demo_photo(random.Random(cid), "캠핑의자")])
    me = await market.accounts.get(borrower)
    page = await _login(browser, node.url, me.email)
    await page.goto(node.url + "me")
    await expect(page.locator("#me")).to_have_attribute("aria-busy", "false", timeout=WAIT)
    text = await page.locator("main").inner_text()
    assert "SETTLED" not in text and "PAID" not in text  # states in Korean only
    borrowed = page.locator("#borrowed .row-card")
    await expect(borrowed).to_have_count(2)
    finished = borrowed.filter(has_text="거래 완료")
    await expect(finished).to_have_count(1)
    await expect(finished.locator("img")).to_have_attribute("src", re.compile(r"^/media/"))  # its photo
    c_done, c_now = await market.rentals.get(done), await market.rentals.get(now)
    await expect(finished.get_by_role("link", name="대화방 열기")).to_have_attribute(
        "href", f"/app#room={c_done.room_id}")
    await expect(finished.locator("h3 a")).to_have_attribute("href", f"/items/{c_done.item_id}")
    await expect(finished).to_contain_text("마이주인")
    booked = borrowed.filter(has_text="예약됨")
    await expect(booked).to_contain_text(f"돌려받을 보증금 {c_now.deposit:,}원 · 반납하면 돌려받아요")
    money = page.locator("#money")
    await expect(money).to_contain_text("돌려받을 보증금")
    await expect(money).to_contain_text("반납하면 돌려받아요")
    await expect(page.locator("#profile-rating")).to_have_attribute("title", RATING_HINT[0])  # one line on the score
    await expect(page.get_by_role("heading", name="계정")).to_be_visible()
    assert await _structure(page) == (1, 1)
    assert await _small_controls(page) == []
    await _no_violations(page, "/me")
    await page.screenshot(path=str(SCREENSHOTS / "me.png"))

    lender = await market.accounts.get(owner)
    owner_page = await _login(browser, node.url, lender.email)
    await owner_page.goto(node.url + "me")
    lent = owner_page.locator("#lent .row-card")
    await expect(lent).to_have_count(1, timeout=WAIT)
    await expect(lent).to_contain_text(re.compile(r"(받을 돈 [\d,]+원 · 보내는 중|받은 돈 [\d,]+원 · 입금 완료)"))
    await expect(lent).to_contain_text("거래 완료")
    assert other_owner != owner
