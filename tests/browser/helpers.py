"""Helpers of the browser tests: signing up through the pages, and the accessibility check (axe-core from npm)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, expect

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]
WAIT = 20_000
AXE = Path(__file__).resolve().parents[2] / "web_widget" / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21aa"]


async def signed_up(browser: Browser, url: str, nickname: str, email: str, **context: Any) -> Page:
    """A new person signed up through /login in a browser context of their own (``context``: Playwright's
    new_context options), on /app and connected."""
    page = await (await browser.new_context(locale="ko-KR", **context)).new_page()
    await page.goto(url + "login")
    form = page.locator("#signup")
    await form.locator("input[name=email]").fill(email)
    await form.locator("input[name=nickname]").fill(nickname)
    await form.locator("input[name=password]").fill("rent4you1")
    await form.get_by_role("button", name="가입하기").click()
    await page.wait_for_url("**/app")
    await expect(page.locator("#conn")).to_have_text("연결됨", timeout=WAIT)
    return page


async def axe_violations(page: Page) -> list[dict[str, Any]]:
    """What axe-core finds on the page as it is now, by WCAG 2.1 A/AA (no rule disabled, nothing excluded): each
    violation as {id, impact, help, nodes: [css targets]}. axe is evaluated through the debugging protocol, which
    the page's Content-Security-Policy does not govern, so the page is checked exactly as people get it."""
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        await page.evaluate(AXE.read_text() + "\n;0")
    found = await page.evaluate(
        """async (tags) => {
            const r = await window.axe.run(document, {runOnly: {type: 'tag', values: tags}});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                          nodes: v.nodes.map(n => n.target.join(' '))}));
        }""", AXE_TAGS)
    return list(found)
