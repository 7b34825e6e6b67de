"""Reviews and ratings.

After a contract is SETTLED each side rates the other (1–5 ★ and a few words) and the borrower also rates the
item: one review per side (``about``: owner, borrower, item) per contract, editable for 7 days, by the parties
only. Reviews are double-blind: a review stays hidden from everyone but its author until both people have
written theirs about each other or the 7-day window has closed — and hidden reviews do not count in anyone's
rating, so a rating cannot leak them either. The person reviewed (the owner, for an item) may reply once.

A rating is a Bayesian average: ``(PRIOR_WEIGHT × PRIOR + Σ stars) / (PRIOR_WEIGHT + n)``, so one 5★ review
(4.17) does not beat fifty 4.8★ ones (4.73). Shown to people only from ``SHOWN_FROM`` reviews on (one 5★ review
showing "★4.2" reads as a bug): before that, "새 이웃 · 후기 N개" — ``rating_label`` is that rule, for every place a
rating is shown.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pymysql

from market import validation as v
from market.db import Database, Row
from market.errors import Conflict, Forbidden, InvalidInput, NotFound
from market.people.notifications import Notifications

WINDOW = timedelta(days=7)
MAX_TEXT = 1000
PRIOR, PRIOR_WEIGHT = 4.0, 5
ABOUT = ("owner", "borrower", "item")
VISIBLE = (
    "(c.settled_at <= NOW(3) - INTERVAL 7 DAY OR ((SELECT COUNT(*) FROM reviews x WHERE x.contract_id = r.contract_id"
    " AND x.about IN ('owner','borrower')) = 2))")
SELECT = ("SELECT r.*, c.settled_at, c.owner_id, c.borrower_id, a.nickname AS author_name, i.title AS item_title,"
          f" {VISIBLE} AS visible FROM reviews r JOIN contracts c ON c.id = r.contract_id"
          " JOIN users a ON a.id = r.author_id JOIN items i ON i.id = r.item_id")


SHOWN_FROM = 3  # reviews before the figure itself is shown
RATING_HINT = ("별점은 후기 3개부터 보여요. 후기가 적을수록 4.0에 가깝게 잡은 평균이에요.",
               "Stars show from 3 reviews on; with few reviews the average is drawn towards 4.0.")


def bayes(total: int, count: int) -> float:
    return round((PRIOR_WEIGHT * PRIOR + total) / (PRIOR_WEIGHT + count), 2)


def rating_label(stars: float | None, count: int, locale: str = "ko", *, item: bool = False) -> str:
    """How a rating reads wherever it is shown: ``★4.7 (12)`` from ``SHOWN_FROM`` reviews on; before that
    "새 이웃 · 후기 1개" ("새 이웃" with none) for a person, "후기 1개" ("후기 없음") for an item."""
    en = locale == "en"
    if count >= SHOWN_FROM and stars is not None:
        return f"★{stars:.1f} ({count})"
    reviews = (f"{count} review" + ("s" if count != 1 else "")) if en else f"후기 {count}개"
    if item:
        return reviews if count else ("no reviews yet" if en else "후기 없음")
    new = "New neighbour" if en else "새 이웃"
    return f"{new} · {reviews}" if count else new


def _shown(rating: dict[str, Any], *, item: bool = False) -> dict[str, Any]:
    """A rating with the words people see (Korean; ``rating_label`` again for another language)."""
    return {**rating, "label": rating_label(rating["stars"], rating["count"], item=item), "hint": RATING_HINT[0]}


# The owner's rating as two columns of an item row (alias ``i``): a page of cards and its owners' ratings in one
# query (``person_rating(owner_reviews, owner_stars)`` is then what ``Reviews.ratings`` says of the owner).
OWNER_RATING_COLUMNS = (
    "(SELECT COUNT(*) FROM reviews r JOIN contracts c ON c.id = r.contract_id WHERE r.target_user_id = i.owner_id"
    f" AND {VISIBLE}) AS owner_reviews,"
    " (SELECT COALESCE(SUM(r.stars), 0) FROM reviews r JOIN contracts c ON c.id = r.contract_id"
    f" WHERE r.target_user_id = i.owner_id AND {VISIBLE}) AS owner_stars")


def person_rating(n: int, total: int) -> dict[str, Any]:
    """A person's rating from their visible reviews: how many, and the sum of their stars."""
    n, total = int(n), int(total)
    return _shown({"stars": bayes(total, n) if n else None, "count": n,
                   "average": round(total / n, 2) if n else None})


class Reviews:
    def __init__(self, db: Database, notifications: Notifications) -> None:
        self.db = db
        self.notifications = notifications

    async def write(self, author_id: int, contract_id: Any, about: Any, stars: Any, text: Any = "") -> dict[str, Any]:
        c = await self._contract(contract_id, author_id)  # first: someone else's rental is unknown, whatever is sent
        if about not in ABOUT:
            raise InvalidInput("review.bad_about", field="about")
        value = _stars(stars)
        words = v.text({"text": text}, "text", max_len=MAX_TEXT, multiline=True, required=False, default="") or ""
        writer = "borrower" if about in ("owner", "item") else "owner"
        if (c["owner_id"] if writer == "owner" else c["borrower_id"]) != author_id:
            raise Forbidden("review.not_your_side")
        if c["state"] != "SETTLED":
            raise Conflict("review.not_settled")
        if datetime.now(UTC).replace(tzinfo=None) > c["settled_at"] + WINDOW:
            raise Conflict("review.window_closed")
        target = {"owner": c["owner_id"], "borrower": c["borrower_id"], "item": None}[about]
        try:
            async with self.db.transaction() as cur:
                await cur.execute(
                    "INSERT INTO reviews (contract_id, author_id, about, target_user_id, item_id, stars, text)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    (c["id"], author_id, about, target, c["item_id"], value, words))
                review_id = int(cur.lastrowid)
                if target is not None:
                    await self.notifications.add(cur, target, "review_received", room_id=c["room_id"],
                                                 contract_id=c["id"], dedupe=f"review:{review_id}", sender=author_id)
        except pymysql.err.IntegrityError:
            raise Conflict("review.already_written") from None
        if target is not None:
            await self.notifications.ping([target])
        return await self.get(review_id, author_id)

    async def edit(self, author_id: int, review_id: Any, stars: Any = None, text: Any = None) -> dict[str, Any]:
        """Change a review within its week. What is not sent (None) stays as it was: new stars alone keep the
        words; an empty text clears them."""
        row = await self._row(review_id)  # first: someone else's review is unknown, whatever is sent
        if row is None or row["author_id"] != author_id:
            raise NotFound("review.not_found")
        if stars is None and text is None:
            raise InvalidInput("input.nothing_to_change")
        value = None if stars is None else _stars(stars)
        words = None if text is None else v.text({"text": text}, "text", max_len=MAX_TEXT, multiline=True,
                                                 required=False, default="") or ""
        if datetime.now(UTC).replace(tzinfo=None) > row["created_at"] + WINDOW:
            raise Conflict("review.edit_closed")
        await self.db.execute("UPDATE reviews SET stars = COALESCE(%s, stars), text = COALESCE(%s, text) WHERE id = %s",
                              (value, words, row["id"]))
        return await self.get(row["id"], author_id)

    async def reply(self, user_id: int, review_id: Any, text: Any) -> dict[str, Any]:
        """The reviewed person's one reply (the owner's, for an item), once the review is visible."""
        row = await self._row(review_id)  # first: who may reply, whatever is sent
        if row is None or not row["visible"] and row["author_id"] != user_id:
            raise NotFound("review.not_found")
        replier = row["owner_id"] if row["about"] in ("owner", "item") else row["borrower_id"]
        if replier != user_id:
            raise Forbidden("review.not_yours_to_reply")
        if not row["visible"]:
            raise NotFound("review.not_found")
        words = v.text({"text": text}, "text", max_len=MAX_TEXT, multiline=True)
        done = await self.db.execute("UPDATE reviews SET reply = %s, replied_at = NOW(3) WHERE id = %s"
                                     " AND reply IS NULL", (words, row["id"]))
        if not done:
            raise Conflict("review.already_replied")
        return await self.get(row["id"], user_id)

    async def get(self, review_id: int, viewer_id: int | None) -> dict[str, Any]:
        row = await self._row(review_id)
        if row is None or not (row["visible"] or row["author_id"] == viewer_id):
            raise NotFound("review.not_found")
        return _public(row)

    async def for_contract(self, contract_id: int, viewer_id: int) -> list[dict[str, Any]]:
        rows = await self.db.fetchall(SELECT + " WHERE r.contract_id = %s ORDER BY r.id", (contract_id,))
        return [_public(r) for r in rows if r["visible"] or r["author_id"] == viewer_id]

    async def received(self, user_id: int, limit: int = 50) -> list[dict[str, Any]]:
        """Visible reviews about a person (and about their items)."""
        rows = await self.db.fetchall(
            SELECT + f" WHERE (r.target_user_id = %s OR (r.about = 'item' AND c.owner_id = %s)) AND {VISIBLE}"
            " ORDER BY r.id DESC LIMIT %s", (user_id, user_id, limit))
        return [_public(r) for r in rows]

    async def written(self, user_id: int, limit: int = 50) -> list[dict[str, Any]]:
        rows = await self.db.fetchall(SELECT + " WHERE r.author_id = %s ORDER BY r.id DESC LIMIT %s",
                                      (user_id, limit))
        return [_public(r) for r in rows]

    async def pending(self, user_id: int, contract_id: int) -> list[str]:
        """What this person may still write for a settled contract (``about`` values)."""
        c = await self.db.fetchone("SELECT * FROM contracts WHERE id = %s", (contract_id,))
        if c is None or c["state"] != "SETTLED" or c["settled_at"] + WINDOW < datetime.now(UTC).replace(tzinfo=None):
            return []
        mine = ("owner", "item") if c["borrower_id"] == user_id else ("borrower",) if c["owner_id"] == user_id else ()
        done = {r["about"] for r in await self.db.fetchall("SELECT about FROM reviews WHERE contract_id = %s",
                                                           (contract_id,))}
        return [a for a in mine if a not in done]

    async def rating(self, user_id: int) -> dict[str, Any]:
        """The person's rating from visible reviews about them."""
        return (await self.ratings([user_id]))[user_id]

    async def ratings(self, user_ids: list[int]) -> dict[int, dict[str, Any]]:
        """Several people's ratings in one query (a page of item cards)."""
        ids = sorted(set(user_ids))
        found: dict[int, tuple[int, int]] = {}
        if ids:
            rows = await self.db.fetchall(
                "SELECT r.target_user_id AS who, COUNT(*) AS n, SUM(r.stars) AS total FROM reviews r JOIN contracts c"
                f" ON c.id = r.contract_id WHERE r.target_user_id IN ({', '.join(['%s'] * len(ids))}) AND {VISIBLE}"
                " GROUP BY r.target_user_id", tuple(ids))
            found = {int(r["who"]): (int(r["n"]), int(r["total"])) for r in rows}
        return {uid: person_rating(*found.get(uid, (0, 0))) for uid in ids}

    async def item_rating(self, item_id: int) -> dict[str, Any]:
        row = await self.db.fetchone(
            "SELECT COUNT(*) AS n, COALESCE(SUM(r.stars), 0) AS total FROM reviews r JOIN contracts c"
            f" ON c.id = r.contract_id WHERE r.item_id = %s AND r.about = 'item' AND {VISIBLE}", (item_id,))
        n, total = int(row["n"]), int(row["total"])  # type: ignore[index]
        return _shown({"stars": bayes(total, n) if n else None, "count": n}, item=True)

    async def trust(self, user_id: int) -> dict[str, Any]:
        """Completed rentals (either side), on-time return rate and damage claims as a borrower."""
        row = await self.db.fetchone(
            "SELECT SUM(state = 'SETTLED') AS completed,"
            " SUM(state = 'SETTLED' AND borrower_id = %s AND returned_at IS NOT NULL) AS returns,"
            " SUM(state = 'SETTLED' AND borrower_id = %s AND returned_at IS NOT NULL AND late_fee = 0) AS on_time,"
            " SUM(borrower_id = %s AND claim_kind IS NOT NULL AND COALESCE(claim_amount, 0) > 0) AS claims"
            " FROM contracts WHERE owner_id = %s OR borrower_id = %s", (user_id,) * 5)
        returns = int(row["returns"] or 0)  # type: ignore[index]
        return {"completed": int(row["completed"] or 0), "claims": int(row["claims"] or 0),  # type: ignore[index]
                "on_time_rate": round(int(row["on_time"] or 0) / returns, 2) if returns else None}  # type: ignore[index]

    async def _contract(self, contract_id: Any, user_id: int) -> Row:
        cid = v.whole_number(contract_id)
        if cid is None:
            raise NotFound("rental.not_found")
        c = await self.db.fetchone("SELECT * FROM contracts WHERE id = %s", (cid,))
        if c is None or user_id not in (c["owner_id"], c["borrower_id"]):
            raise NotFound("rental.not_found")
        return c

    async def _row(self, review_id: Any) -> Row | None:
        rid = v.whole_number(review_id)
        if rid is None:
            return None
        return await self.db.fetchone(SELECT + " WHERE r.id = %s", (rid,))


def _stars(raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= 5:
        raise InvalidInput("review.bad_stars", field="stars")
    return raw


def _public(r: Row) -> dict[str, Any]:
    return {"id": r["id"], "contract_id": r["contract_id"], "about": r["about"], "stars": r["stars"],
            "text": r["text"], "author": {"id": r["author_id"], "nickname": r["author_name"]},
            "target_user_id": r["target_user_id"], "item": {"id": r["item_id"], "title": r["item_title"]},
            "reply": r["reply"], "visible": bool(r["visible"]),
            "at": r["created_at"].isoformat(timespec="seconds") + "Z"}
