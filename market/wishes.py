"""Wishes (찜): a person's saved items. Adding or removing twice is the same as once."""

from __future__ import annotations

from typing import Any

from market.db import Database
from market.errors import NotFound
from market.items import Items


class Wishes:
    def __init__(self, db: Database, items: Items) -> None:
        self._db = db
        self._items = items

    async def add(self, user_id: int, item_id: int) -> int:
        """Wish for a visible item; returns its wish count. The count moves in the same transaction."""
        async with self._db.transaction() as cur:
            await cur.execute(
                "SELECT id, owner_id, status FROM items WHERE id = %s AND status NOT IN ('deleted') FOR UPDATE",
                (item_id,))
            row = await cur.fetchone()
            if row is None or (row["status"] == "hidden" and row["owner_id"] != user_id):
                raise NotFound("item.not_found")
            # Affected rows: 1 when inserted, 0 when the wish already existed (no warning, unlike INSERT IGNORE).
            added = await cur.execute("INSERT INTO wishes (user_id, item_id) VALUES (%s, %s)"
                                      " ON DUPLICATE KEY UPDATE user_id = user_id", (user_id, item_id))
            if added:
                await cur.execute("UPDATE items SET wish_count = wish_count + 1 WHERE id = %s", (item_id,))
            await cur.execute("SELECT wish_count FROM items WHERE id = %s", (item_id,))
            return int((await cur.fetchone())["wish_count"])

    async def remove(self, user_id: int, item_id: int) -> int:
        async with self._db.transaction() as cur:
            await cur.execute("SELECT id FROM items WHERE id = %s FOR UPDATE", (item_id,))
            if await cur.fetchone() is None:
                raise NotFound("item.not_found")
            removed = await cur.execute("DELETE FROM wishes WHERE user_id = %s AND item_id = %s",
                                        (user_id, item_id))
            if removed:
                await cur.execute("UPDATE items SET wish_count = wish_count - 1 WHERE id = %s AND wish_count > 0",
                                  (item_id,))
            await cur.execute("SELECT wish_count FROM items WHERE id = %s", (item_id,))
            return int((await cur.fetchone())["wish_count"])

    async def mine(self, user_id: int) -> list[dict[str, Any]]:
        """My wished items that are still on the market, most recent wish first."""
        rows = await self._db.fetchall(
            "SELECT w.item_id FROM wishes w JOIN items i ON i.id = w.item_id"
            " WHERE w.user_id = %s AND i.status IN ('available', 'reserved', 'rented')"
            " ORDER BY w.created_at DESC, w.item_id DESC", (user_id,))
        return await self._items.cards_by_ids([r["item_id"] for r in rows])
