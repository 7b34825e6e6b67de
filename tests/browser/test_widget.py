"""The widget in a real browser (Debian's Chromium driven by Playwright) against a running gateway process:
two people sign up, one lists an item with a photo through the chat, the other finds it with /주변, asks about
it and rents it through the buttons — linking a bank account on the sandbox's consent page — and a message
full of HTML arrives as text. Screenshots (desktop and 360 px) go to docs/screenshots/."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.async_api import Browser, Page, async_playwright, expect

from market.config import Config
from market.rentals.kdates import seoul_today
from market.service import Market
from tests.e2e.nodes import Node, start_node
from tests.rentals.helpers import Bank

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
WAIT = 20_000


@pytest.fixture
async def node(config: Config, market: Market) -> AsyncIterator[Node]:
    n = start_node(config)
    yield n
    n.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        await b.close()


def _photo(tmp_path: Path) -> Path:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), (40, 120, 200)).save(out, "JPEG")
    path = tmp_path / "chair.jpg"
    path.write_bytes(out.getvalue())
    return path


class Person:
    def __init__(self, page: Page, nickname: str) -> None:
        self.page = page
        self.nickname = nickname
        self.dialogs: list[str] = []
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

    def bot(self, text: str) -> Any:
        return self.page.locator("article.msg.bot", has_text=text).last

    async def says(self, text: str) -> Any:
        message = self.bot(text)
        await expect(message).to_be_visible(timeout=WAIT)
        return message

    async def with_button(self, label: str) -> Any:
        """The latest bot message offering a button with this label."""
        message = self.page.locator("article.msg.bot").filter(
            has=self.page.get_by_role("button", name=label, exact=True)).last
        await expect(message).to_be_visible(timeout=WAIT)
        return message

    async def send(self, text: str) -> None:
        box = self.page.locator("#text")
        await box.fill(text)
        await box.press("Enter")

    async def press(self, message: Any, label: str) -> None:
        await message.get_by_role("button", name=label, exact=False).first.click()

    async def room(self, name: str) -> None:
        if await self.page.locator("#back").is_visible():
            await self.page.locator("#back").click()
        title = self.page.locator("strong", has_text=name)
        await self.page.locator("button.room").filter(has=title).first.click()


async def _sign_up(browser: Browser, url: str, nickname: str, email: str, **context: Any) -> Person:
    ctx = await browser.new_context(locale="ko-KR", **context)
    page = await ctx.new_page()
    await page.goto(url + "login")
    form = page.locator("#signup")
    await form.locator("input[name=email]").fill(email)
    await form.locator("input[name=nickname]").fill(nickname)
    await form.locator("input[name=password]").fill("rent4you1")
    await form.get_by_role("button", name="가입하기").click()
    await page.wait_for_url("**/app")
    await expect(page.locator("#conn")).to_have_text("연결됨", timeout=WAIT)
    return Person(page, nickname)


async def test_a_whole_rental_in_the_browser(node: Node, browser: Browser, config: Config, tmp_path: Path) -> None:
    assert config.bank_url
    bank = Bank(config.bank_url)
    owner = await _sign_up(browser, node.url, "브라우저주인", "owner@browser.example",
                           viewport={"width": 1280, "height": 800})
    borrower = await _sign_up(browser, node.url, "브라우저손님", "borrower@browser.example",
                              viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True)

    # The owner lists a chair with a photo, step by step in the assistant room.
    await owner.send("/등록")
    await owner.says("제목을 알려 주세요")
    await owner.send("캠핑 의자 두 개")
    await owner.press(await owner.with_button("캠핑/레저"), "캠핑/레저")
    await owner.press(await owner.with_button("캠핑가구"), "캠핑가구")
    await owner.press(await owner.with_button("캠핑의자"), "캠핑의자")
    await owner.says("물건을 설명해 주세요")
    await owner.send("가볍고 튼튼해요. 두 개 있어요.")
    await owner.says("사진을 올려 주세요")
    await owner.page.locator("#photo").set_input_files(str(_photo(tmp_path)))
    await owner.press(await owner.says("사진 1장을 받았어요"), "다음")
    await owner.says("대여료")
    await owner.send("5000")
    await owner.says("보증금")
    await owner.send("30000")
    await owner.says("어디")
    await owner.send("역삼동")
    await owner.press(await owner.says("언제부터"), "건너뛰기")
    await owner.press(await owner.says("이렇게 등록할까요?"), "등록하기")
    await owner.says("등록을 마쳤어요")

    # The borrower (on a phone) finds it nearby and asks about it.
    await borrower.room("빌리 도우미")
    await borrower.send("/주변 역삼동")
    results = await borrower.says("역삼동 주변")
    await expect(results.locator(".card", has_text="캠핑 의자 두 개")).to_be_visible()
    await expect(results.locator("img.card-img").first).to_be_visible()
    await results.locator(".card", has_text="캠핑 의자 두 개").get_by_role("button", name="문의하기").click()
    await borrower.says("문의하는 대화방을 열었어요")
    await borrower.room("캠핑 의자 두 개")
    await borrower.says("이 물건에 대해 문의했어요")
    await owner.room("캠핑 의자 두 개")
    await owner.says("이 물건에 대해 문의했어요")

    # HTML in a message is shown as text, never run.
    attack = "<img src=x onerror=alert(1)>"
    await borrower.send(attack)
    arrived = owner.page.locator("article.msg", has_text=attack).last
    await expect(arrived).to_be_visible(timeout=WAIT)
    assert await arrived.locator(".text").text_content() == attack
    assert await owner.page.locator('#log img[src="x"]').count() == 0
    assert owner.dialogs == [] and borrower.dialogs == []

    # The rental, through the date picker and the buttons.
    start = seoul_today() + timedelta(days=1)
    await borrower.page.locator("#dates-open").click()
    await borrower.page.locator("#date-start").fill(start.isoformat())
    await borrower.page.locator("#date-end").fill((start + timedelta(days=1)).isoformat())
    await borrower.page.get_by_role("button", name="요청하기").click()
    await owner.press(await owner.says("대여를 요청했어요"), "수락")
    await borrower.press(await borrower.says("주인이 수락했어요"), "빌리페이로 결제")
    link_prompt = await borrower.says("먼저 은행 계좌를 연결해")
    await bank.person("브라우저손님", 200_000)
    async with borrower.page.context.expect_page() as popup_info:
        await link_prompt.get_by_role("link", name="계좌 연결하기").click()
    popup = await popup_info.value
    await expect(popup.get_by_text("계좌 연결 동의")).to_be_visible(timeout=WAIT)
    await popup.get_by_text("브라우저손님").last.click()
    await popup.get_by_role("button", name="동의하고 연결").click()
    await expect(popup.get_by_text("계좌가 연결됐어요")).to_be_visible(timeout=WAIT)
    await popup.close()
    await borrower.says("빌리페이에 연결됐어요")
    check = await borrower.says("처음 결제해요")  # the new account, its holder and the amount, for her alone
    await expect(check).to_contain_text("나에게만 보여요")
    await expect(check).to_contain_text("브라우저손님")
    await borrower.press(check, "결제")
    await owner.press(await owner.says("결제가 끝났어요"), "전달 완료")
    await borrower.press(await borrower.says("주인이 물건을 전달했어요"), "수령 완료")
    await borrower.press(await borrower.says("대여가 시작됐어요"), "반납 완료")
    await owner.press(await owner.says("돌려줬다고 알렸어요"), "반납 받음")  # the lender confirms the return
    await owner.press(await owner.says("반납됐어요"), "정상 반납")
    settled = await borrower.says("정산이 끝났어요")
    for private in ("먼저 은행 계좌를 연결해", "빌리페이에 연결됐어요", "처음 결제해요", "예금주"):
        await expect(owner.page.locator("#log")).not_to_contain_text(private)  # the borrower's alone
    await expect(settled).to_contain_text("보증금 환불: 30,000원")
    balances = await bank.balances()
    assert 200_000 - (10_000 + 500) in balances["people"].values()

    chip = owner.page.locator("button.room.active .chip")
    await expect(chip).to_have_text("정산 완료", timeout=WAIT)  # the deal's status in the room list
    SHOTS.mkdir(parents=True, exist_ok=True)
    await owner.page.screenshot(path=str(SHOTS / "chat-desktop.png"))
    await borrower.page.screenshot(path=str(SHOTS / "chat-mobile-360.png"))


async def test_pages_a_stranger_sees(node: Node, browser: Browser) -> None:
    ctx = await browser.new_context(viewport={"width": 360, "height": 740})
    page = await ctx.new_page()
    response = await page.goto(node.url + "app")
    assert page.url.endswith("/login")  # the app wants a session
    assert response is not None
    csp = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in csp and "object-src 'none'" in csp
    await expect(page.get_by_role("link", name="네이버 아이디로 로그인")).to_be_visible()
    login = page.locator("#login")
    await login.locator("input[name=email]").fill("nobody@example.com")
    await login.locator("input[name=password]").fill("wrongpass1")
    await login.get_by_role("button", name="로그인").click()
    await expect(page.locator("#auth-status")).not_to_be_empty(timeout=WAIT)
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / "login-360.png"))
    manifest = await page.request.get(node.url + "manifest.webmanifest")
    assert (await manifest.json())["start_url"] == "/app"
    sw = await page.request.get(node.url + "sw.js")
    assert "never cached" in await sw.text()
    vendor = await page.request.get(node.url + "static/vendor/socket.io.min.js")
    assert vendor.ok  # served from our own origin, built from the npm lock file
    await page.goto(node.url + "embed-demo")
    await page.get_by_role("button", name="빌리마켓 채팅 열기").click()
    frame = page.frame_locator("#billi-frame")
    await expect(frame.get_by_role("heading", name="로그인")).to_be_visible(timeout=WAIT)


async def test_messages_typed_while_the_server_is_away_are_sent_once_it_is_back(
        config: Config, market: Market, browser: Browser) -> None:
    node = start_node(config)
    try:
        alone = await _sign_up(browser, node.url, "끊김테스트", "offline@browser.example",
                               viewport={"width": 1280, "height": 800})
        await alone.send("/도움말")
        await alone.says("제가 할 수 있는 일이에요")
        port = int(node.url.rsplit(":", 1)[1].strip("/"))
        node.kill()  # the gateway crashes
        await expect(alone.page.locator("#conn")).to_contain_text("연결 끊김", timeout=WAIT)
        await alone.send("/주변 역삼동")
        pending = alone.page.locator("article.msg.pending", has_text="/주변 역삼동")
        await expect(pending).to_contain_text("보내는 중", timeout=WAIT)
        node = start_node(config, port=port)  # back, on the same address
        await expect(alone.page.locator("#conn")).to_have_text("연결됨", timeout=30_000)
        await expect(pending).to_have_count(0, timeout=WAIT)  # confirmed …
        sent = alone.page.locator("article.msg.mine:not(.pending)", has_text="/주변 역삼동")
        await expect(sent).to_have_count(1)  # … once
        await alone.says("역삼동 주변")  # and the bot answered it
        room = (await market.chat.assistant_room(alone_id := await market.db.fetchval(
            "SELECT id FROM users WHERE nickname = '끊김테스트'"))).id
        stored = await market.db.fetchval("SELECT COUNT(*) FROM messages WHERE room_id = %s AND sender_id = %s"
                                          " AND text = '/주변 역삼동'", (room, alone_id))
        assert stored == 1
    finally:
        node.stop()
