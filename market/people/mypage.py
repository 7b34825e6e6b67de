"""My page: one read of everything a person has here — profile, rating and trust, my items with their rental
status (대여 가능 / 예약중 / 대여중), what I borrowed and lent (each with its item, the other person, its state in
words and the money it still owes me: 받을 돈 / 돌려받을 보증금), wishes, reviews, the linked bank account.
It only reads; what it says about money comes from the contract and its transfers, never guessed."""

from __future__ import annotations

from typing import Any

from market.rentals.contract import chip
from market.rentals.kdates import seoul_today

RENTAL_STATUS = {"available": ("대여 가능", "available"), "reserved": ("예약중", "reserved"),
                 "rented": ("대여중", "rented out"), "hidden": ("숨김", "hidden")}
CURRENT = ("REQUESTED", "ACCEPTED", "PAID", "IN_USE", "OVERDUE", "RETURNED", "CLAIMED", "DISPUTED")
# A payout's transfers (to the owner, back to the borrower) → what the person is told about that money.
TRANSFER_WORDS = {"pending": ("보내는 중", "on its way"), "sending": ("보내는 중", "on its way"),
                  "unknown": ("은행 확인 중", "being checked with the bank"),
                  "review": ("운영자 확인 중", "with an operator"), "suspense": ("운영자 확인 중", "with an operator"),
                  "failed": ("운영자 확인 중", "with an operator"), "done": ("입금 완료", "paid in")}
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
    await _describe(market, user_id, borrowed + lent, locale)
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


async def _describe(market: Any, user_id: int, contracts: list[dict[str, Any]], locale: str) -> None:
    """Each rental as a card: its item (title, photo), the other person, its state in words, where to go (the
    item's page, the deal room) and the money it still means for me."""
    if not contracts:
        return
    en = locale == "en"
    items = {i["id"]: i for i in await market.items.cards_by_ids(sorted({c["item_id"] for c in contracts}))}
    others = sorted({c["owner_id"] if c["borrower_id"] == user_id else c["borrower_id"] for c in contracts})
    names = {r["id"]: r["nickname"] for r in await market.db.fetchall(
        f"SELECT id, nickname FROM users WHERE id IN ({', '.join(['%s'] * len(others))})", tuple(others))}
    ids = [c["id"] for c in contracts]
    transfers: dict[tuple[int, str], list[Any]] = {}
    for t in await market.db.fetchall(
            "SELECT contract_id, purpose, amount, state FROM transfers WHERE user_id = %s AND direction = 'deposit'"
            f" AND contract_id IN ({', '.join(['%s'] * len(ids))})", (user_id, *ids)):
        transfers.setdefault((int(t["contract_id"]), t["purpose"].split(":", 1)[0]), []).append(t)
    for c in contracts:
        mine_as = "borrower" if c["borrower_id"] == user_id else "owner"
        item = items.get(c["item_id"])
        other = c["owner_id"] if mine_as == "borrower" else c["borrower_id"]
        shown = item is not None and (item["status"] not in ("deleted", "hidden") or
                                      item["status"] == "hidden" and mine_as == "owner")  # its page answers me
        c["item"] = {"title": item["title"] if item else None, "thumbnail": item["thumbnail"] if item else None,
                     "url": f"/items/{c['item_id']}" if shown else None}
        c["other"] = {"id": other, "nickname": names.get(other) or ("Former neighbour" if en else "탈퇴한 이웃")}
        c["room_url"] = f"/app#room={c['room_id']}"
        c["state_label"] = chip(c["state"], bool(c.get("return_declared_at")), locale)
        c["money"] = _money(c, mine_as, transfers, en)


def _money(c: dict[str, Any], role: str, transfers: dict[tuple[int, str], list[Any]],
           en: bool) -> dict[str, Any] | None:
    """What this rental still means in money for me: as the owner the rent (and any claim) I am to be paid
    (받을 돈), as the borrower the deposit I am to get back (돌려받을 보증금) — with its state. None when there is
    none (a declined request, a refused payment)."""
    kind = "payout" if role == "owner" else "refund"
    label = ("Money to receive" if en else "받을 돈") if role == "owner" else \
        ("Deposit to get back" if en else "돌려받을 보증금")
    sent = transfers.get((c["id"], kind), [])
    if sent:  # the money has left the escrow for me: what the bank says about it
        states = {t["state"] for t in sent} - {"failed"} or {"failed"}  # a refused try sent again counts no more
        if role == "borrower" and c["state"] == "CANCELLED":
            label = "Money to get back" if en else "돌려받을 돈"
        word = next(TRANSFER_WORDS[s] for s in ("review", "suspense", "failed", "unknown", "pending", "sending",
                                                "done") if s in states)
        if states == {"done"}:  # arrived: said in the past
            label = ("Money received" if en else "받은 돈") if role == "owner" else \
                ("Deposit got back" if en else "돌려받은 보증금")
        return {"label": label, "amount": sum(int(t["amount"]) for t in sent if t["state"] in states),
                "state": word[en]}
    state = c["state"]
    if role == "owner":
        if state in ("REQUESTED", "ACCEPTED"):
            return {"label": label, "amount": c["rent"], "state": "After payment" if en else "결제하면 받아요"}
        if state in ("PAID", "IN_USE", "OVERDUE", "RETURNED", "CLAIMED", "DISPUTED"):
            words = ("With an operator", "운영자 확인 중") if state == "DISPUTED" else \
                ("Paid when the rental is settled", "반납 확인 뒤 받아요")
            return {"label": label, "amount": c["rent"] + c["extra_rent"] + c["late_fee"], "state": words[not en]}
        return None
    if state in ("PAID", "IN_USE", "OVERDUE"):
        return {"label": label, "amount": c["deposit"] - c["late_fee"],
                "state": "Back after the return" if en else "반납하면 돌려받아요"}
    if state == "RETURNED":
        return {"label": label, "amount": c["deposit"] - c["late_fee"],
                "state": "Back after the owner's check" if en else "상태 확인 뒤 돌려받아요"}
    if state in ("CLAIMED", "DISPUTED"):
        words = ("With an operator", "운영자 확인 중") if state == "DISPUTED" else ("Claim open", "보증금 청구 중")
        return {"label": label, "amount": max(0, c["deposit"] - c["late_fee"] - (c["claim_amount"] or 0)),
                "state": words[not en]}
    return None
