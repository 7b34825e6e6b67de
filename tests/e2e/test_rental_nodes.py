"""Whole rentals through chat buttons: the owner on one gateway node, the borrower on another, the bank sandbox
over HTTP — a normal return, a damage claim the borrower accepts, and a dispute an operator resolves — with every
balance checked at the end (the people's banks, the platform account, the escrow ledger)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from market.config import Config
from market.service import Market
from tests.conftest import Chatter, image_bytes
from tests.e2e.nodes import Node, start_node
from tests.e2e.test_two_nodes import _person
from tests.rentals.helpers import Bank, ledger_sum

PRICE, DEPOSIT = 5000, 30000
RENT, FEE = 3 * PRICE, 750  # "내일부터 3일"
START = 1_000_000


@dataclass
class Deal:
    owner: Chatter
    borrower: Chatter
    owner_node: Node
    borrower_node: Node
    room: int
    bank: Bank
    market: Market
    accounts: dict[str, dict[str, Any]]

    async def bot(self, who: Chatter, contains: str, after: int = 0) -> dict[str, Any]:
        for _ in range(400):
            for m in who.received("message", self.room):
                if not m.get("hidden") and m["sender"]["kind"] == "bot" and contains in m["text"] and m["seq"] > after:
                    return m  # type: ignore[no-any-return]
            await asyncio.sleep(0.05)
        texts = [m.get("text") for m in who.received("message", self.room)]
        raise AssertionError(f"no bot message with {contains!r}; got {texts}")

    async def notice(self, who: Chatter, contains: str) -> dict[str, Any]:
        """A refusal for ``who`` alone: a toast, never stored in the room."""
        for _ in range(400):
            for n in who.received("notice", self.room):
                if contains in n["message"]:
                    return n  # type: ignore[no-any-return]
            await asyncio.sleep(0.05)
        raise AssertionError(f"no notice with {contains!r}; got {who.received('notice', self.room)}")

    def private(self, who: Chatter, message: dict[str, Any]) -> None:
        """A step with buttons is ``who``'s alone: the other person holds only its seq."""
        other = self.borrower if who is self.owner else self.owner
        assert message["audience"] == who.person.id
        theirs = [m for m in other.received("message", self.room) if m["seq"] == message["seq"]]
        assert all(set(m) == {"room", "seq", "id", "hidden", "unread"} for m in theirs), theirs

    async def press(self, who: Chatter, message: dict[str, Any], label: str, *, once: bool = True) -> None:
        """``who`` presses; the other person cannot; pressing again changes nothing (a step taken is refused;
        ``once=False``: a button that only asks a question asks it again)."""
        token = next(b["token"] for b in message["buttons"] if b["label"].startswith(label))
        self.private(who, message)
        other = self.borrower if who is self.owner else self.owner
        refused = await other.call("action", {"room": self.room, "token": token})
        assert refused["ok"] is False and refused["error"]["code"] == "bot.button_not_yours"
        answer = await who.call("action", {"room": self.room, "token": token})
        assert answer["ok"], answer
        replay = await who.call("action", {"room": self.room, "token": token})
        assert replay["ok"] is not once, replay

    async def say(self, who: Chatter, text: str) -> None:
        assert (await who.call("message", {"room": self.room, "text": text}))["ok"]

    async def link(self, who: Chatter, node: Node, name: str) -> dict[str, Any]:
        """The person asks to link, follows the bot's button to the bank, consents, and comes back."""
        seen = max([m["seq"] for m in who.received("message", self.room)] or [0])
        await self.say(who, "/결제 link")
        prompt = await self.bot(who, "계좌를 연결해", after=seen)
        url = node.url.rstrip("/") + prompt["buttons"][0]["url"]
        person = await self.bank.person(name, START if who is self.borrower else 0)
        other = self.owner if who is self.borrower else self.borrower
        async with httpx.AsyncClient(timeout=30) as http:
            foreign = await http.get(url, headers={"Authorization": f"Bearer {other.person.token}"})
            assert foreign.status_code == 403  # the other person in the room cannot use it
            assert (await http.get(url)).status_code == 403  # nor anyone not logged in
            auth = {"Authorization": f"Bearer {who.person.token}"}
            to_bank = await http.get(url, headers=auth)
            assert to_bank.status_code == 302
            back = await self.bank.consent(to_bank.headers["location"], person)
            replay = await http.get(url, headers=auth)  # the ticket worked once
            assert replay.status_code == 400
            stranger = await http.get(node.url + "billipay/callback", params=back)  # no session: refused, not spent
            assert stranger.status_code == 403 and "로그인" in stranger.text
            done = await http.get(node.url + "billipay/callback", params=back, headers=auth)
            assert done.status_code == 200 and "연결됐어요" in done.text
            again = await http.get(node.url + "billipay/callback", params=back, headers=auth)  # a replayed state
            assert again.status_code == 400 and "만료" in again.text
        await self.bot(who, "빌리페이에 연결됐어요", after=seen)
        return person

    async def to_returned(self) -> int:
        """Request → accept → pay → hand-over → in use → returned; returns the contract id."""
        await self.say(self.borrower, "/대여 내일부터 3일")
        request = await self.bot(self.owner, "대여를 요청했어요")
        waiting = await self.bot(self.borrower, "주인의 수락을 기다리고 있어요")  # a status line, no buttons
        assert not waiting.get("buttons") and not waiting.get("cards")
        card = request["cards"][0]  # the owner sees the rent they will get; the borrower's total is theirs
        assert dict(card["fields"])["받을 대여료"] == f"{RENT:,}원" and "결제 금액" not in dict(card["fields"])
        await self.press(self.owner, request, "수락")
        accepted = await self.bot(self.borrower, "주인이 수락했어요")
        assert dict(accepted["cards"][0]["fields"])["결제 금액"] == f"{RENT + FEE + DEPOSIT:,}원"
        assert not (await self.bot(self.owner, "빌리는 분이")).get("buttons")
        await self.press(self.borrower, accepted, "빌리페이로 결제")
        # the first payment with the newly linked account: the borrower alone checks it and presses 결제 once
        check = await self.bot(self.borrower, "처음 결제해요")
        assert check["audience"] == self.borrower.person.id and "손님" in str(check["cards"][0]["fields"])
        await self.press(self.borrower, check, "결제")
        paid = await self.bot(self.owner, "빌림님이 결제했어요")
        assert [b["label"] for b in paid["buttons"]] == ["약속 잡기", "전달 완료"]
        assert "만날 시간과 장소를 정해 주세요" in paid["text"]  # it starts tomorrow: no separate reminder follows
        assert f"{RENT + FEE + DEPOSIT:,}" not in paid["text"]  # what the borrower was charged is theirs
        assert await self.bank.balance_of(self.accounts["borrower"]) == START - (RENT + FEE + DEPOSIT)
        await self.press(self.owner, paid, "전달 완료")
        handed = await self.bot(self.borrower, "주인이 물건을 전달했어요")
        assert not (await self.bot(self.owner, "수령 확인을 기다리고")).get("buttons")
        await self.press(self.borrower, handed, "수령 완료")
        started = await self.bot(self.owner, "대여가 시작됐어요")
        assert [b["label"] for b in started["buttons"]] == ["반납 받음", "분실"]  # each their own next steps
        mine = await self.bot(self.borrower, "대여가 시작됐어요")
        assert [b["label"] for b in mine["buttons"]] == ["반납 완료", "연장 요청"]
        await self.press(self.borrower, mine, "반납 완료")
        declared = await self.bot(self.owner, "돌려줬다고 알렸어요")  # the owner is asked; only they end it
        assert [b["label"] for b in declared["buttons"]] == ["반납 받음", "아직 못 받았어요"]
        await self.press(self.owner, declared, "반납 받음")
        returned = await self.bot(self.owner, "반납됐어요")
        assert [b["label"] for b in returned["buttons"]] == ["정상 반납", "파손 신고"]
        cid = int(await self.market.db.fetchval("SELECT id FROM contracts WHERE room_id = %s", (self.room,)))
        return cid

    async def check_money(self, cid: int, owner_gets: int, borrower_pays: int) -> None:
        for _ in range(200):  # payouts go out right after settlement
            if await self.bank.balance_of(self.accounts["owner"]) == owner_gets:
                break
            await asyncio.sleep(0.05)
        assert await self.bank.balance_of(self.accounts["owner"]) == owner_gets
        assert await self.bank.balance_of(self.accounts["borrower"]) == START - borrower_pays
        assert await self.bank.platform() == FEE
        assert await ledger_sum(self.market, f"escrow:{cid}") == 0
        assert await ledger_sum(self.market) == 0
        for uid in (self.owner.person.id, self.borrower.person.id):
            assert await ledger_sum(self.market, f"payable:{uid}") == 0
        assert await ledger_sum(self.market, "fees") == FEE
        state = await self.market.db.fetchval("SELECT state FROM contracts WHERE id = %s", (cid,))
        assert state == "SETTLED"


@pytest.fixture
async def deal(config: Config, market: Market) -> AsyncIterator[Deal]:
    owner = await _person(market, "lender@example.com", "빌려줌")
    borrower = await _person(market, "renter@example.com", "빌림")
    item = await market.items.create(owner.id, {
        "title": "캠핑 의자", "description": "튼튼해요", "category_id": 7, "price_per_day": PRICE, "deposit": DEPOSIT,
        "condition": "상", "lat": 37.4979, "lng": 127.0276})
    room, _ = await market.chat.open_deal_room(item["id"], borrower.id)
    a = start_node(config, BILLI_SCHEDULER_INTERVAL_MS="1000")
    b = start_node(config, BILLI_SCHEDULER_INTERVAL_MS="1000")
    o = await Chatter(owner, a.url).connect()
    r = await Chatter(borrower, b.url).connect()
    try:
        for c in (o, r):
            assert (await c.call("join", {"room": room.id}))["ok"]
        assert config.bank_url
        d = Deal(o, r, a, b, room.id, Bank(config.bank_url), market, {})
        d.accounts["owner"] = await d.link(o, a, "주인")
        d.accounts["borrower"] = await d.link(r, b, "손님")
        yield d
    finally:
        for c in (o, r):
            await c.close()
        a.stop()
        b.stop()


async def test_a_normal_return_settles_the_deposit(deal: Deal) -> None:
    cid = await deal.to_returned()
    returned = await deal.bot(deal.owner, "반납됐어요")
    await deal.press(deal.owner, returned, "정상 반납")
    settled = await deal.bot(deal.borrower, "정산이 끝났어요")
    assert f"보증금 {DEPOSIT:,}원을 돌려드려요" in settled["text"] and settled["audience"] == deal.borrower.person.id
    await deal.bot(deal.owner, "계좌로 15,000원을 보냈어요")
    assert "15,000원을 보냈어요" not in str(deal.borrower.received("message", deal.room))  # the owner's money
    # each is asked for a review privately; the review is written in a sheet, never posted to the room
    ask = await deal.bot(deal.borrower, "거래는 어땠나요")
    deal.private(deal.borrower, ask)
    button = ask["buttons"][0]
    assert button["form"] == "review"
    wrote = await deal.borrower.call("action", {"room": deal.room, "token": button["token"], "seq": ask["seq"],
                                                "input": {"stars": 5, "text": "친절하고 깔끔했어요"}})
    assert wrote == {"ok": True, "handled": True, "message": "후기를 남겼어요. 고마워요!"}
    await deal.bot(deal.borrower, "물건 자체는 어땠나요")
    await asyncio.sleep(0.3)
    for who in (deal.owner, deal.borrower):
        assert "친절하고 깔끔했어요" not in str(who.received("message", deal.room))
    assert (await deal.borrower.wait_for("message_update", room=deal.room))[-1]["buttons"][0]["disabled"] is True
    await deal.check_money(cid, owner_gets=RENT, borrower_pays=RENT + FEE)


async def _claim(deal: Deal, amount: int) -> dict[str, Any]:
    returned = await deal.bot(deal.owner, "반납됐어요")
    async with httpx.AsyncClient(timeout=30) as http:  # a photo of the damage, posted in the room
        resp = await http.post(f"{deal.owner_node.url}api/rooms/{deal.room}/images",
                               headers={"Authorization": f"Bearer {deal.owner.person.token}"},
                               files={"photo": ("scratch.jpg", image_bytes(), "image/jpeg")})
        assert resp.status_code == 201, resp.text
    await deal.press(deal.owner, returned, "파손 신고", once=False)
    await deal.bot(deal.owner, "청구할 금액을 알려 주세요 (최대 30,000원)")
    await deal.say(deal.owner, "3만 5천원")  # more than the deposit: asked again, privately
    await deal.notice(deal.owner, "1원부터 30,000원까지")
    await deal.say(deal.owner, f"{amount:,}원")
    await deal.bot(deal.owner, "어떤 손상인지")
    await deal.say(deal.owner, "다리 하나가 휘었어요")
    claimed = await deal.bot(deal.borrower, "파손을 신고했어요")
    assert f"{amount:,}원" in claimed["text"] and "사진 1장" in claimed["text"]
    return claimed


async def test_a_damage_claim_the_borrower_accepts(deal: Deal) -> None:
    cid = await deal.to_returned()
    claimed = await _claim(deal, 12000)
    await deal.press(deal.borrower, claimed, "청구 수락")
    settled = await deal.bot(deal.owner, "정산이 끝났어요")
    assert "배상 12,000원" in settled["text"]
    refund = await deal.bot(deal.borrower, "정산이 끝났어요")
    assert "보증금 18,000원을 돌려드려요" in refund["text"]
    await deal.check_money(cid, owner_gets=RENT + 12000, borrower_pays=RENT + FEE + 12000)


async def test_a_dispute_resolved_by_an_operator(deal: Deal, config: Config) -> None:
    cid = await deal.to_returned()
    claimed = await _claim(deal, 20000)
    await deal.press(deal.borrower, claimed, "이의 제기")
    await deal.bot(deal.owner, "이의가 접수됐어요")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BILLI_")}
    env.update({"BILLI_DATABASE_URL": config.database_url or "", "BILLI_REDIS_URL": config.redis_url or "",
                "BILLI_S3_URL": config.s3_url or "", "BILLI_S3_BUCKET": config.s3_bucket,
                "BILLI_BANK_URL": config.bank_url or "", "BILLI_DATA_DIR": str(config.data_dir)})
    listed = subprocess.run([sys.executable, "-m", "gateway.cli", "disputes"], env=env, capture_output=True,
                            text=True, timeout=120)
    assert listed.returncode == 0 and f"#{cid}" in listed.stdout and "다리 하나가 휘었어요" in listed.stdout
    too_much = subprocess.run([sys.executable, "-m", "gateway.cli", "disputes", "--resolve", str(cid), "--amount",
                               "20001"], env=env, capture_output=True, text=True, timeout=120)
    assert too_much.returncode == 2
    done = subprocess.run([sys.executable, "-m", "gateway.cli", "disputes", "--resolve", str(cid), "--amount", "8000",
                           "--note", "사진으로 보아 일부만 인정해요"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    # The operator's decision reaches the deal room through a node's scheduler, and the money moves.
    resolved = await deal.bot(deal.borrower, "운영자가 결정했어요")
    assert "8,000원" in resolved["text"]
    await deal.check_money(cid, owner_gets=RENT + 8000, borrower_pays=RENT + FEE + 8000)
