"""The widget in a real browser (Debian's Chromium driven by Playwright) against a running gateway process:
two people sign up, one lists an item with a photo through the chat, the other finds it with /주변, asks about
it and rents it through the buttons — linking a bank account on the sandbox's consent page — and a message
full of HTML arrives as text. At every step of the deal each side is checked: only the person who acts sees
buttons, nothing private reaches the other, a used button ends up disabled. Screenshots of the deal room from
each side at 390 px go to docs/screenshots/."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

from PIL import Image
from playwright.async_api import Browser, Page, expect

from market.config import Config
from market.rentals.kdates import seoul_today
from market.service import Market
from tests.browser.helpers import WAIT, signed_up
from tests.e2e.nodes import Node, start_node
from tests.rentals.helpers import Bank

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
STEPS = Path("/tmp/billi-deal-steps")  # every step from both sides (not kept in the repository)




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
    return Person(await signed_up(browser, url, nickname, email, **context), nickname)


async def test_a_whole_rental_in_the_browser(node: Node, browser: Browser, config: Config, tmp_path: Path) -> None:
    assert config.bank_url
    bank = Bank(config.bank_url)
    phone = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
    owner = await _sign_up(browser, node.url, "브라우저주인", "owner@browser.example", **phone)
    borrower = await _sign_up(browser, node.url, "브라우저손님", "borrower@browser.example", **phone)

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

    # The borrower (on a phone) finds it nearby; 문의하기 opens the deal room at once, with the item pinned on top
    # and a first message ready to send.
    await borrower.room("빌리 도우미")
    await borrower.send("/주변 역삼동")
    results = await borrower.says("역삼동 주변")
    await expect(results.locator(".card", has_text="캠핑 의자 두 개")).to_be_visible()
    await expect(results.locator("img.row-img").first).to_be_visible()
    await results.locator(".card", has_text="캠핑 의자 두 개").get_by_role("button", name="문의하기").click()
    await expect(borrower.page.locator("#room-title")).to_have_text("브라우저주인", timeout=WAIT)
    await expect(borrower.page.locator("#deal-title")).to_have_text("캠핑 의자 두 개", timeout=WAIT)
    await expect(borrower.page.locator("#deal-chip")).to_have_text("문의 중")
    await expect(borrower.page.locator("#text")).to_have_value("안녕하세요! 캠핑 의자 두 개 빌릴 수 있을까요?")
    await borrower.page.locator("#composer .send").click()
    await owner.room("브라우저손님")
    intro = await owner.says("이 물건에 대해 문의했어요")
    await expect(intro.get_by_role("button")).to_have_count(0)  # who asks and their record; nothing to press
    await expect(owner.page.locator("#log")).to_contain_text("빌릴 수 있을까요?")
    await expect(owner.page.locator("#dates-open")).to_be_hidden()  # the owner does not borrow their own item

    # HTML in a message is shown as text, never run.
    attack = "<img src=x onerror=alert(1)>"
    await borrower.send(attack)
    arrived = owner.page.locator("article.msg", has_text=attack).last
    await expect(arrived).to_be_visible(timeout=WAIT)
    assert await arrived.locator(".text").text_content() == attack
    assert await owner.page.locator('#log img[src="x"]').count() == 0
    assert owner.dialogs == [] and borrower.dialogs == []

    # 대여 요청 opens the date picker, which shows the total before anything is sent; the owner reads a sentence.
    start = seoul_today() + timedelta(days=1)
    await borrower.press(await borrower.with_button("대여 요청"), "대여 요청")
    await borrower.page.locator("#date-start").fill(start.isoformat())
    await borrower.page.locator("#date-start").dispatch_event("change")
    await borrower.page.locator("#date-end").fill((start + timedelta(days=1)).isoformat())
    await borrower.page.locator("#date-end").dispatch_event("change")
    await expect(borrower.page.locator("#dates-total")).to_contain_text("40,500원", timeout=WAIT)
    await borrower.page.get_by_role("button", name="요청 보내기").click()
    sentence = f"{start.month}월 {start.day}일("
    await expect(owner.page.locator("article.msg.user", has_text="2일 빌리고 싶어요")).to_contain_text(sentence,
                                                                                                   timeout=WAIT)
    await step(owner, borrower, "1-requested", actor="owner", actor_says="대여를 요청했어요",
               other_says="주인의 수락을 기다리고 있어요", buttons=["수락", "거절"])
    await owner.press(await owner.says("대여를 요청했어요"), "수락")
    await spent(owner, "대여를 요청했어요", "수락")
    await step(owner, borrower, "2-accepted", actor="borrower", actor_says="주인이 수락했어요",
               other_says="빌리는 분이", buttons=["빌리페이로 결제 (40,500원)"])
    await expect(borrower.page.locator("#deal-chip")).to_have_text("결제 대기")

    # The first payment with no bank account linked: the pay press continues after the link with a private
    # confirmation card and one 결제 button; no button is pressed twice.
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
    back = popup.get_by_role("link", name="빌리마켓 앱으로 돌아가기")
    assert (await back.get_attribute("href") or "").startswith("/app#room=")  # back to the same deal room
    await popup.close()
    await borrower.says("빌리페이에 연결됐어요")
    check = await borrower.says("처음 결제해요")  # the new account, its holder and the amount, for her alone
    await expect(check).to_contain_text("나에게만 보여요")
    await expect(check).to_contain_text("브라우저손님")
    await expect(check.get_by_role("button", name="결제", exact=True)).to_have_count(1)
    await spent(borrower, "주인이 수락했어요", "빌리페이로 결제")  # overtaken by the card: one 결제 is live
    await borrower.press(check, "결제")
    await step(owner, borrower, "3-paid", actor="owner", actor_says="결제했어요", other_says="결제가 끝났어요",
               buttons=["약속 잡기", "전달 완료"], other_buttons=["약속 잡기", "수령 완료"])

    # 약속 잡기: the borrower proposes a time and place on a sheet; the owner agrees; it is pinned for both.
    await borrower.press(await borrower.with_button("약속 잡기"), "약속 잡기")
    await borrower.page.locator("#appt-at").fill(f"{start.isoformat()}T14:00")
    await borrower.page.locator("#appt-place").fill("역삼역 3번 출구")
    await borrower.page.get_by_role("button", name="제안하기").click()
    await step(owner, borrower, "4-proposed", actor="owner", actor_says="약속을 제안했어요:",
               other_says="상대의 답을 기다리고 있어요", buttons=["이 약속으로 할게요", "다른 시간 제안", "전달 완료"],
               other_buttons=["약속 잡기", "수령 완료"])
    await owner.press(await owner.says("약속을 제안했어요:"), "이 약속으로 할게요")
    for who in (owner, borrower):
        await who.says("약속이 정해졌어요")
        await expect(who.page.locator("#deal-appt")).to_contain_text("14:00 · 역삼역 3번 출구", timeout=WAIT)
        await expect(who.page.locator("#deal-chip")).to_have_text("예약됨")

    await owner.press(await owner.with_button("전달 완료"), "전달 완료")
    await step(owner, borrower, "5-handed", actor="borrower", actor_says="주인이 물건을 전달했어요",
               other_says="수령 확인을 기다리고", buttons=["수령 완료", "아직 못 받았어요"])
    await borrower.press(await borrower.says("주인이 물건을 전달했어요"), "수령 완료")
    await step(owner, borrower, "6-in-use", actor="borrower", actor_says="대여가 시작됐어요",
               other_says="대여가 시작됐어요", buttons=["반납 완료", "연장 요청"], other_buttons=["반납 받음", "분실"])
    await expect(owner.page.locator("#deal-chip")).to_have_text("대여 중", timeout=WAIT)
    await borrower.press(await borrower.with_button("반납 완료"), "반납 완료")
    await step(owner, borrower, "7-return-declared", actor="owner", actor_says="돌려줬다고 알렸어요",
               other_says="주인의 확인을 기다리고", buttons=["반납 받음", "아직 못 받았어요"])
    await expect(borrower.page.locator("#deal-chip")).to_have_text("반납 확인 중", timeout=WAIT)
    await owner.press(await owner.says("돌려줬다고 알렸어요"), "반납 받음")  # the lender confirms the return
    await step(owner, borrower, "8-returned", actor="owner", actor_says="반납됐어요", other_says="반납이 확인됐어요",
               buttons=["정상 반납", "파손 신고"])
    await owner.press(await owner.says("반납됐어요"), "정상 반납")
    settled = await borrower.says("정산이 끝났어요")
    await expect(settled).to_contain_text("보증금 30,000원을 돌려드려요")
    await borrower.says("계좌로 30,000원을 돌려보냈어요")  # the refund has reached her bank
    balances = await bank.balances()
    assert 200_000 - (10_000 + 500) in balances["people"].values()

    # The review: a private card, written in a sheet; the words never reach the room.
    await borrower.press(await borrower.with_button("후기 쓰기"), "후기 쓰기")
    await borrower.page.get_by_role("button", name="남기기").click()  # no stars: said next to the form
    await expect(borrower.page.locator("#review-error")).to_contain_text("별점", timeout=WAIT)
    await borrower.page.locator('#review-form input[name="stars"][value="5"]').check()
    await borrower.page.locator("#review-text").fill("친절하고 깔끔한 의자였어요")
    await borrower.page.get_by_role("button", name="남기기").click()
    await expect(borrower.page.locator("#toast")).to_contain_text("후기를 남겼어요", timeout=WAIT)
    await borrower.says("물건 자체는 어땠나요")
    # A refusal of what one typed is a toast for that person, never a message in the room.
    await borrower.send("/결제")
    await expect(borrower.page.locator("#toast")).to_contain_text("결제할 대여가 없어요", timeout=WAIT)

    # What the owner never saw — on the page or in the room's history as the owner fetches it.
    history = await owner.page.request.get(node.url + f"api/rooms/{await room_of(owner)}/messages?limit=100")
    owner_history = await history.text()
    for private in ("먼저 은행 계좌를 연결해", "빌리페이에 연결됐어요", "처음 결제해요", "예금주", "친절하고 깔끔한",
                    "결제할 대여가 없어요", "40,500"):
        await expect(owner.page.locator("#log")).not_to_contain_text(private)
        assert private not in owner_history, private
    await expect(owner.page.locator("#toast")).to_be_hidden()

    chip = owner.page.locator("button.room.active .chip")
    await expect(chip).to_have_text("거래 완료", timeout=WAIT)  # the deal's state in the room list
    await expect(owner.page.locator("#deal-chip")).to_have_text("거래 완료")
    SHOTS.mkdir(parents=True, exist_ok=True)
    await owner.page.screenshot(path=str(SHOTS / "deal-owner-390.png"))
    await borrower.page.screenshot(path=str(SHOTS / "deal-borrower-390.png"))
    await owner.page.set_viewport_size({"width": 1280, "height": 800})
    await owner.page.screenshot(path=str(SHOTS / "chat-desktop.png"))


async def room_of(person: Person) -> int:
    return int(await person.page.locator("button.room.active").get_attribute("data-room") or 0)


async def step(owner: Person, borrower: Person, name: str, *, actor: str, actor_says: str, other_says: str,
               buttons: list[str], other_buttons: list[str] | None = None) -> None:
    """One step of the deal, as each person sees it: the actor's message with exactly their buttons, the other's
    line with theirs (none by default); neither sees the other's. Both sides are photographed."""
    me, other = (owner, borrower) if actor == "owner" else (borrower, owner)
    mine = await me.says(actor_says)
    await expect(mine.locator("button:not([disabled])")).to_have_text(buttons, timeout=WAIT)
    theirs = await other.says(other_says)
    await expect(theirs.locator("button:not([disabled])")).to_have_text(other_buttons or [], timeout=WAIT)
    for label in buttons:
        if label not in (other_buttons or []):
            await expect(other.page.locator("#log button:not([disabled])", has_text=label)).to_have_count(0)
    STEPS.mkdir(parents=True, exist_ok=True)
    await owner.page.screenshot(path=str(STEPS / f"{name}-owner.png"))
    await borrower.page.screenshot(path=str(STEPS / f"{name}-borrower.png"))


async def spent(person: Person, says: str, label: str) -> None:
    """A used or overtaken button ends up disabled (the server retires it on every client)."""
    message = person.bot(says)
    await expect(message.get_by_role("button", name=label)).to_be_disabled(timeout=WAIT)


async def test_pages_a_stranger_sees(node: Node, browser: Browser) -> None:
    ctx = await browser.new_context(locale="ko-KR", viewport={"width": 360, "height": 740})
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
    await expect(login.locator(".field-error")).not_to_be_empty(timeout=WAIT)  # said beside the password
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
        await expect(alone.page.locator("#conn")).to_have_text("연결이 끊겼어요. 다시 연결하는 중…", timeout=WAIT)
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
