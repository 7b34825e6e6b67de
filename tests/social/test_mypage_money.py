"""My page says, for each rental, its state in Korean and the money it still means: "받을 돈" for the owner,
"돌려받을 보증금" for the borrower, with where that money is — taken from the contract and its bank transfers."""

from __future__ import annotations

import pytest

from market.people.mypage import my_page
from market.service import Market
from tests.rentals.helpers import Bank, days, item, link, paid_rental, settled, user


@pytest.fixture
def bank(market: Market) -> Bank:
    assert market.config.bank_url
    return Bank(market.config.bank_url)


def _only(page: dict, role: str) -> dict:  # type: ignore[type-arg]
    (c,) = page[role]["current"] + page[role]["past"]
    return c  # type: ignore[no-any-return]


async def test_a_paid_rental_tells_each_side_what_money_waits_and_until_when(market: Market, bank: Bank) -> None:
    cid, owner, borrower = await paid_rental(market, bank)
    c = await market.rentals.get(cid)
    lent, borrowed = _only(await my_page(market, owner), "lent"), _only(await my_page(market, borrower), "borrowed")
    assert lent["state_label"] == borrowed["state_label"] == "예약됨"
    assert lent["money"] == {"label": "받을 돈", "amount": c.rent, "state": "반납 확인 뒤 받아요"}
    assert borrowed["money"] == {"label": "돌려받을 보증금", "amount": c.deposit, "state": "반납하면 돌려받아요"}
    assert borrowed["item"]["url"] == f"/items/{c.item_id}" and borrowed["room_url"] == f"/app#room={c.room_id}"
    assert borrowed["other"]["id"] == owner and lent["other"]["id"] == borrower
    assert borrowed["item"]["title"] == "캠핑의자 2개"


async def test_a_claim_and_a_settled_rental_say_where_the_money_is(market: Market, bank: Bank) -> None:
    owner, borrower = await user(market), await user(market)
    await link(market, bank, owner, 0, "주인")
    await link(market, bank, borrower, 1_000_000, "손님")
    c, _ = await market.rentals.request(borrower, await item(market, owner), *days(0, 1))
    await market.rentals.accept(owner, c.id)
    await market.rentals.pay_now(borrower, c.id)
    for who in (owner, borrower):
        await market.rentals.hand_over(who, c.id)
    for who in (borrower, owner):
        await market.rentals.mark_returned(who, c.id)
    await market.rentals.claim(owner, c.id, 10_000, "다리가 부러졌어요")
    borrowed = _only(await my_page(market, borrower), "borrowed")
    assert borrowed["state_label"] == "보증금 청구 중"
    assert borrowed["money"] == {"label": "돌려받을 보증금", "amount": c.deposit - 10_000, "state": "보증금 청구 중"}
    lent = _only(await my_page(market, owner), "lent")
    assert lent["money"]["label"] in ("받을 돈", "받은 돈") and lent["money"]["amount"] == c.rent  # the rent, at once
    await market.rentals.dispute(borrower, c.id, "원래 그랬어요")
    borrowed = _only(await my_page(market, borrower), "borrowed")
    assert borrowed["state_label"] == "운영자 확인 중" and borrowed["money"]["state"] == "운영자 확인 중"

    done, owner2, borrower2 = await settled(market, bank)
    after = _only(await my_page(market, borrower2), "borrowed")
    assert after["state_label"] == "거래 완료" and "SETTLED" not in str(after["state_label"])
    assert after["money"]["amount"] == (await market.rentals.get(done)).deposit
    assert after["money"]["state"] in ("보내는 중", "입금 완료")
    assert after["money"]["label"] == ("돌려받은 보증금" if after["money"]["state"] == "입금 완료" else "돌려받을 보증금")
