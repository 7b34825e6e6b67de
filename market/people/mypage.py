"""My page: one read of everything a person has here — profile, rating and trust, my items with their rental
status (대여 가능 / 예약중 / 대여중), what I borrowed and lent, wishes, reviews, the linked bank account."""

from __future__ import annotations

from typing import Any

from market.rentals.kdates import seoul_today

RENTAL_STATUS = {"available": ("대여 가능", "available"), "reserved": ("예약중", "reserved"),
                 "rented": ("대여중", "rented out"), "hidden": ("숨김", "hidden")}
CURRENT = ("REQUESTED", "ACCEPTED", "PAID", "IN_USE", "OVERDUE", "RETURNED", "CLAIMED", "DISPUTED")
OPERATOR_NOTE = ("운영자가 확인하고 있어요 · 보통 2일 안에", "An operator is looking into it · usually within 2 days")


async def my_page(market: Any, user_id: int) -> dict[str, Any]:
    user = await market.accounts.get(user_id)
    items = await market.items.owned_by(user_id)
    today = seoul_today()
    states: dict[int, str] = {}
    if items:
        rows = await market.db.fetchall(
            "SELECT item_id, MAX(state IN ('IN_USE','OVERDUE')) AS out_now,"
            " MAX((state IN ('ACCEPTED','PAID') OR state = 'DISPUTED' AND claim_kind = 'handover') AND end_date >= %s)"
            " AS booked FROM contracts"
            f" WHERE item_id IN ({', '.join(['%s'] * len(items))}) GROUP BY item_id",
            (today, *[i["id"] for i in items]))
        for r in rows:
            states[r["item_id"]] = "rented" if r["out_now"] else "reserved" if r["booked"] else "available"
    locale = user.locale
    for item in items:
        rental = "hidden" if item.get("status") == "hidden" else states.get(item["id"], "available")
        item["rental_status"] = rental
        item["rental_status_label"] = RENTAL_STATUS[rental][locale == "en"]
    borrowed = [c.public() for c in await market.rentals.mine(user_id, "borrower")]
    lent = [c.public() for c in await market.rentals.mine(user_id, "owner")]
    waiting = await market.rentals.waiting_on_operator([c["id"] for c in borrowed + lent])
    for c in borrowed + lent:  # money or a claim waiting for an operator: said plainly, to both
        c["operator_note"] = OPERATOR_NOTE[locale == "en"] if c["id"] in waiting else None
    return {
        "profile": user.private(),
        "rating": await market.reviews.rating(user_id),
        "trust": await market.reviews.trust(user_id),
        "items": items,
        "borrowed": {"current": [c for c in borrowed if c["state"] in CURRENT],
                     "past": [c for c in borrowed if c["state"] not in CURRENT]},
        "lent": {"current": [c for c in lent if c["state"] in CURRENT],
                 "past": [c for c in lent if c["state"] not in CURRENT]},
        "wishes": await market.wishes.mine(user_id),
        "reviews": {"received": await market.reviews.received(user_id),
                    "written": await market.reviews.written(user_id)},
        "bank_account": await market.billipay.account(user_id) if market.billipay else None,
        "naver_linked": await market.naver.linked(user_id) if market.naver else False,
        "notifications_unread": await market.notifications.unread(user_id),
    }
