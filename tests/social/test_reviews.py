"""Reviews after a settled rental: one per side, double-blind, editable for a week, one reply; ratings that a
single 5★ cannot game; trust figures."""

from __future__ import annotations

import pytest

from market.errors import Conflict, Forbidden, InvalidInput, NotFound
from market.people.reviews import RATING_HINT, bayes, rating_label
from market.service import Market
from tests.rentals.helpers import Bank, days, item, settled, user


@pytest.fixture
def bank(market: Market) -> Bank:
    assert market.config.bank_url
    return Bank(market.config.bank_url)


async def test_reviews_stay_hidden_until_both_have_written(market: Market, bank: Bank) -> None:
    cid, owner, borrower = await settled(market, bank)
    r = market.reviews
    mine = await r.write(borrower, cid, "owner", 5, "<b>친절해요</b>")
    assert mine["text"] == "<b>친절해요</b>" and mine["visible"] is False  # stored as text; shown as text
    assert [x["about"] for x in await r.for_contract(cid, borrower)] == ["owner"]  # the author sees their own
    assert await r.for_contract(cid, owner) == []  # the other side does not, yet
    assert (await r.rating(owner))["count"] == 0  # and it does not count yet
    with pytest.raises(NotFound):
        await r.get(mine["id"], owner)
    await r.write(owner, cid, "borrower", 4, "시간 약속을 잘 지켰어요")
    assert {x["about"] for x in await r.for_contract(cid, owner)} == {"owner", "borrower"}
    assert (await r.rating(owner)) == {"stars": bayes(5, 1), "count": 1, "average": 5.0, "label": "새 이웃 · 후기 1개",
                                       "hint": RATING_HINT[0]}  # the figure shows from 3 reviews on
    item_review = await r.write(borrower, cid, "item", 3, "조금 낡았어요")
    assert item_review["visible"] is True


async def test_the_window_opens_hidden_reviews_after_seven_days(market: Market, bank: Bank) -> None:
    cid, owner, borrower = await settled(market, bank)
    mine = await market.reviews.write(borrower, cid, "owner", 2, "별로")
    await market.db.execute("UPDATE contracts SET settled_at = settled_at - INTERVAL 8 DAY WHERE id = %s", (cid,))
    assert (await market.reviews.get(mine["id"], owner))["visible"] is True
    with pytest.raises(Conflict):
        await market.reviews.write(owner, cid, "borrower", 5, "")  # the window has closed for writing too


async def test_bad_reviews_are_refused(market: Market, bank: Bank) -> None:
    cid, owner, borrower = await settled(market, bank)
    stranger = await user(market)
    r = market.reviews
    for stars in (0, 6, -1, "5", 4.5, True, None):
        with pytest.raises(InvalidInput):
            await r.write(borrower, cid, "owner", stars, "")
    with pytest.raises(InvalidInput):
        await r.write(borrower, cid, "owner", 5, "가" * 5000)
    with pytest.raises(InvalidInput):
        await r.write(borrower, cid, "everyone", 5, "")
    with pytest.raises(NotFound):
        await r.write(stranger, cid, "owner", 5, "")  # no contract with them
    with pytest.raises(Forbidden):
        await r.write(owner, cid, "owner", 5, "셀프 칭찬")  # not their side
    await r.write(borrower, cid, "owner", 5, "")
    with pytest.raises(Conflict):
        await r.write(borrower, cid, "owner", 1, "두 번째")  # twice
    assert await market.db.fetchval("SELECT COUNT(*) FROM reviews") == 1
    other = await user(market)
    iid = await item(market, owner)
    open_contract, _ = await market.rentals.request(other, iid, *days(3, 1))
    with pytest.raises(Conflict):
        await r.write(other, open_contract.id, "owner", 5, "")  # not settled


async def test_edit_within_a_week_and_reply_once(market: Market, bank: Bank) -> None:
    cid, owner, borrower = await settled(market, bank)
    r = market.reviews
    review = await r.write(borrower, cid, "owner", 3, "보통")
    await r.write(owner, cid, "borrower", 5, "최고")
    edited = await r.edit(borrower, review["id"], 4, "생각해 보니 좋았어요")
    assert (edited["stars"], edited["text"]) == (4, "생각해 보니 좋았어요")
    with pytest.raises(NotFound):
        await r.edit(owner, review["id"], 1, "남의 리뷰")
    with pytest.raises(Forbidden):
        await r.reply(borrower, review["id"], "내 리뷰에 내가 답글")
    replied = await r.reply(owner, review["id"], "고마워요")
    assert replied["reply"] == "고마워요"
    with pytest.raises(Conflict):
        await r.reply(owner, review["id"], "또 답글")
    await market.db.execute("UPDATE reviews SET created_at = created_at - INTERVAL 8 DAY WHERE id = %s",
                            (review["id"],))
    with pytest.raises(Conflict):
        await r.edit(borrower, review["id"], 1, "늦은 수정")


async def test_one_five_star_review_does_not_beat_fifty_good_ones() -> None:
    assert bayes(5, 1) < bayes(int(4.8 * 50), 50)
    assert 4.0 < bayes(5, 1) < 4.5


async def test_trust_counts_completed_rentals_late_returns_and_claims(market: Market, bank: Bank) -> None:
    owner, borrower = await user(market), await user(market)
    await settled(market, bank, owner, borrower)
    await settled(market, bank, owner, borrower, late_days=2)
    trust = await market.reviews.trust(borrower)
    assert trust == {"completed": 2, "claims": 0, "on_time_rate": 0.5}
    assert (await market.reviews.trust(owner))["completed"] == 2


def test_a_rating_shows_its_figure_only_from_three_reviews_on() -> None:
    assert rating_label(None, 0) == "새 이웃"
    assert rating_label(bayes(5, 1), 1) == "새 이웃 · 후기 1개"  # not "★4.2 (1)", which reads as a bug
    assert rating_label(bayes(9, 2), 2) == "새 이웃 · 후기 2개"
    assert rating_label(bayes(15, 3), 3) == "★4.4 (3)"
    assert rating_label(bayes(240, 50), 50) == "★4.7 (50)"
    assert rating_label(bayes(5, 1), 1, "en") == "New neighbour · 1 review"
    assert rating_label(None, 0, item=True) == "후기 없음" and rating_label(4.2, 1, item=True) == "후기 1개"
    assert "3개부터" in RATING_HINT[0] and RATING_HINT[0].count("\n") == 0  # one tooltip line


async def test_cards_read_with_their_owners_ratings_say_what_the_ratings_say(market: Market, bank: Bank) -> None:
    """A page of results reads its owners' ratings in the same query as its cards (the bot's results); they are
    the ratings people see anywhere else, hidden reviews left out."""
    cid, owner, borrower = await settled(market, bank)
    spot = {"lat": "35.1796", "lng": "129.0756", "radius_m": "200"}  # a place of this test alone (부산)
    iid = await item(market, owner, lat=35.1796, lng=129.0756, place_name="부산진구")

    async def shown() -> tuple[dict[str, object], dict[str, object], dict[str, object]]:
        near = [c for c in (await market.nearby({**spot, "limit": "50"}, owner_ratings=True))["items"]
                if c["id"] == iid]
        by_id = await market.items.cards_by_ids([iid], owner_ratings=True)
        return near[0]["owner_rating"], by_id[0]["owner_rating"], (await market.reviews.ratings([owner]))[owner]

    await market.reviews.write(borrower, cid, "owner", 5, "친절해요")  # hidden until the other side writes
    near, by_id, rating = await shown()
    assert near == by_id == rating and rating["count"] == 0
    await market.reviews.write(owner, cid, "borrower", 4, "")
    near, by_id, rating = await shown()
    assert near == by_id == rating == {"stars": bayes(5, 1), "count": 1, "average": 5.0,
                                       "label": "새 이웃 · 후기 1개", "hint": RATING_HINT[0]}
    assert "owner_rating" not in (await market.nearby({**spot, "limit": "50"}))["items"][0]  # the API's cards as before
