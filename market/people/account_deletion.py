"""Leaving Billi Market. An account is deleted only when nothing is open — no rental in a state that is not final,
no money owed to or held for the person — and then its personal data goes (e-mail, nickname, password, profile
photo, bank and Naver links, wishes, notifications, reset links, sessions) and its items leave the market with
their photos.

The row itself stays, named "탈퇴한 이웃" like every other former neighbour: contracts, the ledger, chat messages
and the reviews the person wrote still point at it. Their messages are named through the users table (live or
archived; archived segments are written anew without the old name as sender), and the inquiries others were told
of are written anew from their template. What the bot said in a deal room is never rewritten: it is the record of
what was said then, and no substring of a message is ever replaced (a nickname such as "true", "10" or "민수" would
corrupt other people's messages). Nothing here knows about sockets or HTTP.
"""

from __future__ import annotations

import logging
from typing import Any

from market import validation as v
from market.chat.archive import ChatArchive
from market.db import Database
from market.errors import Conflict, InvalidInput, NotFound
from market.items import Items
from market.people.accounts import Accounts
from market.people.notifications import Notifications
from market.rentals.contract import OPEN, marks
from market.storage import BlobStore

log = logging.getLogger("billi.accounts")
FORMER_NEIGHBOUR = "탈퇴한 이웃"  # no living nickname can be this (a space is not allowed in one)
# Transfers whose money is still moving or waits for someone: a payout on its way, an answer the bank owes,
# an operator's decision.
_MONEY_MOVING = ("pending", "sending", "unknown", "review", "suspense")


class AccountDeletion:
    def __init__(self, db: Database, accounts: Accounts, items: Items, store: BlobStore,
                 notifications: Notifications | None = None, archive: ChatArchive | None = None) -> None:
        self._notifications = notifications
        self._archive = archive
        self._db = db
        self._accounts = accounts
        self._items = items
        self._store = store

    async def delete(self, user_id: int, data: dict[str, Any]) -> list[str]:
        """Delete the account, proven by its password (an account without one, logged in with Naver, confirms
        with ``confirm: true``). Returns the ended sessions' token hashes."""
        v.only_fields(data, {"password", "confirm"})
        if await self._accounts.has_password(user_id):
            await self._accounts.check_password(user_id, data.get("password"), field="password")
        elif data.get("confirm") is not True:
            raise InvalidInput("account.confirm_delete", field="confirm")
        async with self._db.transaction() as cur:
            await cur.execute("SELECT profile_photo_key FROM users WHERE id = %s AND deleted_at IS NULL"
                              " FOR UPDATE", (user_id,))
            person = await cur.fetchone()
            if person is None:
                raise NotFound("account.not_found")
            # Items first: a rental request locks its item, so none can start on them while we look.
            unlisted = await self._items.unlist_all(cur, user_id)
            await _nothing_open(cur, user_id)
            photos = await _take_item_photos(cur, user_id)
            if self._notifications is not None:
                await self._notifications.rename_sender(cur, user_id, FORMER_NEIGHBOUR)
            await cur.execute("SELECT room_id FROM room_members WHERE user_id = %s", (user_id,))
            rooms = [int(r["room_id"]) for r in await cur.fetchall()]
            await _forget(cur, user_id)
            ended = await self._accounts.revoke_sessions(cur, user_id)
        await self._accounts.uncache(ended)
        await self._accounts.profile_changed(user_id)
        if person["profile_photo_key"]:
            photos.append(person["profile_photo_key"])
        await self._delete_photos(user_id, photos)
        if self._archive is not None and rooms:
            try:
                await self._archive.rename(user_id, rooms, FORMER_NEIGHBOUR)
            except Exception:  # noqa: BLE001 — the account is gone; reading still names the sender anew
                log.exception("archived chat of deleted account %d could not be rewritten", user_id)
        if unlisted and self._items.on_change is not None:
            self._items.on_change()
        return ended

    async def _delete_photos(self, user_id: int, keys: list[str]) -> None:
        """Delete the objects of a deleted account's photos (their rows are gone). If the photo store fails (or
        the request is cancelled) the keys still left are logged, for an operator to remove: nothing refers to
        them any more."""
        for at, key in enumerate(keys):
            try:
                await self._store.delete(key)
            except BaseException as e:
                log.warning("deleted account %d: %d photo object(s) left in the store (%r): %s", user_id,
                            len(keys) - at, e, " ".join(keys[at:]))
                if not isinstance(e, Exception):
                    raise
                return


async def _nothing_open(cur: Any, user_id: int) -> None:
    """Refuse while a rental of the person's is open or money of theirs is still on its way."""
    await cur.execute(f"SELECT 1 FROM contracts WHERE owner_id = %s AND state IN ({marks(OPEN)}) UNION ALL"
                      f" SELECT 1 FROM contracts WHERE borrower_id = %s AND state IN ({marks(OPEN)}) LIMIT 1",
                      (user_id, *OPEN, user_id, *OPEN))
    if await cur.fetchone() is not None:
        raise Conflict("account.open_rental")
    await cur.execute("SELECT COALESCE(SUM(amount), 0) AS owed FROM ledger WHERE account = %s", (f"payable:{user_id}",))
    owed = (await cur.fetchone())["owed"]
    await cur.execute(f"SELECT 1 FROM transfers WHERE state IN ({marks(_MONEY_MOVING)}) AND user_id = %s LIMIT 1",
                      (*_MONEY_MOVING, user_id))
    if owed or await cur.fetchone() is not None:
        raise Conflict("account.money_open")


async def _take_item_photos(cur: Any, user_id: int) -> list[str]:
    """Remove the photo rows of every item of the person — listed, hidden or deleted before; returns their objects'
    keys, to delete once committed."""
    await cur.execute("SELECT p.id, p.object_key, p.thumb_key FROM item_photos p JOIN items i ON i.id = p.item_id"
                      " WHERE i.owner_id = %s", (user_id,))
    rows = await cur.fetchall()
    for at in range(0, len(rows), 500):
        chunk = [r["id"] for r in rows[at:at + 500]]
        await cur.execute("DELETE FROM item_photos WHERE id IN (" + ", ".join(["%s"] * len(chunk)) + ")", chunk)
    return [key for row in rows for key in (row["object_key"], row["thumb_key"]) if key]


async def _forget(cur: Any, user_id: int) -> None:
    """Remove the person's data from every table that holds it; the rows others need stay. A bank link's tokens go
    with it; the bank gives us no call to revoke its side, so the drop is recorded for an operator
    (``bank_link_drops``)."""
    await cur.execute("INSERT INTO bank_link_drops (user_id, user_seq_no) SELECT user_id, user_seq_no FROM bank_links"
                      " WHERE user_id = %s", (user_id,))
    await cur.execute("UPDATE users SET email = NULL, nickname = %s, password_hash = NULL, profile_photo_key = NULL,"
                      " home_place = NULL, home_lat = NULL, home_lng = NULL,"
                      " deleted_at = NOW(3) WHERE id = %s", (FORMER_NEIGHBOUR, user_id))
    await cur.execute("UPDATE items i JOIN wishes w ON w.item_id = i.id SET i.wish_count = i.wish_count - 1"
                      " WHERE w.user_id = %s AND i.wish_count > 0", (user_id,))
    for table in ("wishes", "bank_links", "login_links", "notifications", "notification_mutes", "password_resets"):
        await cur.execute(f"DELETE FROM {table} WHERE user_id = %s", (user_id,))
