"""The account pages in a real browser (Debian's Chromium driven by Playwright) against a gateway process whose
mail goes to a sink: 비밀번호를 잊으셨나요? → the mailed link → a new password → the chat; then on my page a
password change, 모든 기기에서 로그아웃, and 탈퇴 through its confirmation."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from gateway.mail_sink import MailSink, text_of
from market.config import Config
from market.service import Market
from tests.browser.helpers import ARGS, CHROMIUM, WAIT
from tests.e2e.nodes import Node, start_node

SHOTS = Path("/tmp/billi-account-pages")  # for a person to look at (not kept in the repository)


@pytest.fixture
async def mail() -> AsyncIterator[MailSink]:
    sink = await MailSink.start()
    yield sink
    await sink.close()


@pytest.fixture
async def node(config: Config, market: Market, mail: MailSink) -> AsyncIterator[Node]:
    n = start_node(config, BILLI_SMTP_URL=mail.url)
    yield n
    n.stop()


@pytest.fixture
async def page(node: Node) -> AsyncIterator[Page]:
    async with async_playwright() as p:
        browser: Browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        ctx = await browser.new_context(locale="ko-KR", viewport={"width": 360, "height": 740})
        page = await ctx.new_page()
        page.on("dialog", lambda d: asyncio.ensure_future(d.accept()))  # 확인 on every confirm() and alert()
        yield page
        await browser.close()


async def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def test_forgetting_changing_and_leaving_in_the_browser(
        node: Node, page: Page, market: Market, mail: MailSink) -> None:
    await market.accounts.sign_up({"email": "pages@browser.example", "nickname": "페이지이웃",
                                   "password": "rent4you1"})
    await page.goto(node.url + "login")
    await page.get_by_role("link", name="비밀번호를 잊으셨나요?").click()
    await page.wait_for_url("**/password/forgot")
    await page.locator("#forgot input[name=email]").fill("pages@browser.example")
    await page.get_by_role("button", name="재설정 링크 받기").click()
    await expect(page.locator("#password-status")).to_contain_text("30분", timeout=WAIT)
    await _shot(page, "forgot")

    (sent,) = await mail.wait_for(1)
    link = re.search(r"http://\S+/password/reset#\S+", text_of(sent))
    assert link, text_of(sent)
    await page.goto(link.group(0))
    await expect(page).to_have_url(re.compile(r"/password/reset$"))  # the token left the address bar
    await page.locator("#reset input[name=password]").fill("borrow2lend")
    await page.locator("#reset input[name=again]").fill("borrow2lend")
    await _shot(page, "reset")
    await page.get_by_role("button", name="비밀번호 바꾸기").click()
    await page.wait_for_url("**/app", timeout=WAIT)

    await page.goto(node.url + "me")
    form = page.locator("#password-form")
    await form.locator("input[name=current]").fill("borrow2lend")
    await form.locator("input[name=new]").fill("lend2borrow")
    await form.locator("input[name=again]").fill("lend2borrow")
    await form.get_by_role("button", name="비밀번호 변경").click()
    await expect(page.locator("#me-status")).to_contain_text("비밀번호를 바꿨어요", timeout=WAIT)
    await _shot(page, "me")

    await page.get_by_role("button", name="모든 기기에서 로그아웃").click()
    await page.wait_for_url("**/login", timeout=WAIT)
    login = page.locator("#login")
    await login.locator("input[name=email]").fill("pages@browser.example")
    await login.locator("input[name=password]").fill("lend2borrow")
    await login.get_by_role("button", name="로그인").click()
    await page.wait_for_url("**/app", timeout=WAIT)

    await page.goto(node.url + "me")
    await page.get_by_role("button", name="탈퇴하기").click()
    dialog = page.get_by_role("dialog", name="정말 탈퇴할까요?")
    await expect(dialog).to_be_visible()
    await dialog.locator("input[name=password]").fill("not-mine-1")
    await dialog.get_by_role("button", name="탈퇴", exact=True).click()
    await expect(dialog.locator("#leave-status")).to_contain_text("비밀번호가 맞지 않아요", timeout=WAIT)
    await _shot(page, "leave")
    await dialog.locator("input[name=password]").fill("lend2borrow")
    await dialog.get_by_role("button", name="탈퇴", exact=True).click()
    await page.wait_for_url(node.url, timeout=WAIT)
    assert await market.db.fetchval("SELECT COUNT(*) FROM users WHERE email = 'pages@browser.example'") == 0
