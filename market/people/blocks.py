"""Blocking (차단): who blocked whom, and the one check every way of reaching a person goes through.

A block works both ways for new contact — no deal room, rental request or message between the two — so the
blocked person cannot reach the blocker and the blocker does not talk past their own block. It never touches a
contract already under way (money and hand-overs go on through their own steps). The refusal said to the blocked
person names what they cannot do, never that they were blocked.
"""

from __future__ import annotations

from typing import Any

from market.db import Database
from market.errors import Conflict, Forbidden, NotFound
from market.storage import media_url


async def blockers_between(db: Database, a: int, b: int) -> set[int]:
    """Which of the two people blocked the other (an empty set: none)."""
    rows = await db.fetchall("SELECT blocker_id FROM blocks WHERE (blocker_id = %s AND blocked_id = %s)"
                             " OR (blocker_id = %s AND blocked_id = %s)", (a, b, b, a))
    return {int(r["blocker_id"]) for r in rows}


def refusal(blockers: set[int], actor: int, code: str) -> Forbidden | None:
    """The error for ``actor`` reaching someone when ``blockers`` blocked: the blocker is reminded of their own
    block; the blocked person hears ``code`` (what they cannot do, not why)."""
    if not blockers:
        return None
    return Forbidden("block.you_blocked" if actor in blockers else code)


async def refuse_if_blocked(db: Database, actor: int, other: int, code: str) -> None:
    """Raise when either of the two blocked the other (see ``refusal``)."""
    error = refusal(await blockers_between(db, actor, other), actor, code)
    if error is not None:
        raise error


class Blocks:
    """A person's blocks: add, remove, list."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def block(self, blocker_id: int, blocked_id: int) -> None:
        """Block a person; blocking again changes nothing."""
        if blocker_id == blocked_id:
            raise Conflict("block.self")
        if await self._db.fetchval("SELECT 1 FROM users WHERE id = %s AND deleted_at IS NULL", (blocked_id,)) is None:
            raise NotFound("account.not_found")
        await self._db.execute("INSERT INTO blocks (blocker_id, blocked_id) VALUES (%s, %s)"
                               " ON DUPLICATE KEY UPDATE blocker_id = blocker_id",
                               (blocker_id, blocked_id))

    async def unblock(self, blocker_id: int, blocked_id: int) -> None:
        """Lift a block (lifting one that is not there changes nothing)."""
        await self._db.execute("DELETE FROM blocks WHERE blocker_id = %s AND blocked_id = %s",
                               (blocker_id, blocked_id))

    async def mine(self, blocker_id: int) -> list[dict[str, Any]]:
        """The people I blocked, the latest first."""
        rows = await self._db.fetchall(
            "SELECT u.id, u.nickname, u.profile_photo_key, b.created_at FROM blocks b"
            " JOIN users u ON u.id = b.blocked_id WHERE b.blocker_id = %s ORDER BY b.created_at DESC, u.id DESC",
            (blocker_id,))
        return [{"id": r["id"], "nickname": r["nickname"], "profile_photo": media_url(r["profile_photo_key"]),
                 "blocked_at": r["created_at"].isoformat(timespec="seconds") + "Z"} for r in rows]
