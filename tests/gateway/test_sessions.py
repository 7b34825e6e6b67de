"""Sessions survive Redis: MariaDB holds them (token hash, person, expiry, revoked) and Redis only caches them. A
flushed or restarted Redis logs nobody out — not the page, not the chat socket, not a send — and a revoked or
expired session stays refused whatever Redis holds."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from gateway.keys import MARKET
from market.people.accounts import session_key, token_hash
from tests.conftest import sign_up


async def test_a_flushed_redis_logs_nobody_out(client: TestClient, chatters: Any) -> None:
    market = client.app[MARKET]
    person = await sign_up(client, "남는사람")
    token = person.token
    stored = await market.db.fetchone("SELECT user_id, revoked_at FROM sessions WHERE token_hash = %s",
                                      (token_hash(token),))
    assert stored == {"user_id": person.id, "revoked_at": None}  # only the hash is kept
    chat = await chatters(person)
    room = (await market.chat.assistant_room(person.id)).id
    await chat.call("join", {"room": room})
    await market.redis.flushdb()  # Redis restarted empty, or flushed
    status, me = await person.call("GET", "/api/me")
    assert status == 200 and me["user"]["id"] == person.id
    assert await market.redis.get(session_key(token)) == str(person.id)  # the cache filled again
    await market.redis.flushdb()
    sent = await chat.call("message", {"room": room, "text": "아직 로그인돼 있어요"})  # the send path's own check
    assert sent["ok"], sent
    await market.redis.flushdb()
    again = await chatters(person)  # a new socket connects with the same token
    assert (await again.call("join", {"room": room}))["ok"]


async def test_a_revoked_or_expired_session_stays_refused_whatever_redis_holds(client: TestClient) -> None:
    market = client.app[MARKET]
    person = await sign_up(client, "나간사람")
    token = person.token
    status, _ = await person.call("POST", "/api/auth/logout")
    assert status in (200, 204)
    assert (await person.call("GET", "/api/me"))[0] == 401
    await market.redis.flushdb()
    assert (await person.call("GET", "/api/me"))[0] == 401
    assert await market.db.fetchval("SELECT revoked_at IS NOT NULL FROM sessions WHERE token_hash = %s",
                                    (token_hash(token),)) == 1
    # a cache that still says yes (a Redis restored from before the logout) is overruled once it is asked again
    other = await sign_up(client, "만료된사람")
    old = other.token
    await market.db.execute("UPDATE sessions SET expires_at = NOW(3) - INTERVAL 1 SECOND WHERE token_hash = %s",
                            (token_hash(old),))
    await market.redis.delete(session_key(old))
    assert (await other.call("GET", "/api/me"))[0] == 401
    assert await market.accounts.session_user_id("forged-token") is None  # not even the shape of one: no lookup
    assert await market.redis.get(session_key("forged-token")) is None
    shaped = "A" * 43
    assert await market.accounts.session_user_id(shaped) is None
    assert await market.redis.get(session_key(shaped)) == "-"  # an unknown token is not asked of MariaDB again at once


async def test_a_logout_racing_a_cache_refill_stays_a_logout(client: TestClient) -> None:
    """A request read the session as valid just before the logout, and refills the cache just after it: the
    logout's "no" stays."""
    market = client.app[MARKET]
    person = await sign_up(client, "경주하는사람")
    await market.redis.delete(session_key(person.token))  # (a cache miss: the next request reads MariaDB …)
    await market.accounts.log_out(person.token)  # … the logout lands in between …
    await market.accounts.refill(person.token, person.id, 600)  # … and the request refills with what it read
    assert await market.redis.get(session_key(person.token)) == "-"
    assert await market.accounts.session_user_id(person.token) is None
    assert (await person.call("GET", "/api/me"))[0] == 401


async def test_ended_sessions_are_purged_a_day_after_they_expire(client: TestClient) -> None:
    """The sessions table does not grow forever: a round of the scheduler deletes rows that expired more than a day
    ago (revoked ones expire too), and leaves live ones and those that ended within the day."""
    from market.scheduler import Scheduler

    market = client.app[MARKET]
    live, recent, old, revoked = [await sign_up(client, name) for name in ("살아있음", "막끝남", "오래전", "나갔음")]
    await market.db.execute("UPDATE sessions SET expires_at = NOW(3) - INTERVAL 1 HOUR WHERE user_id = %s",
                            (recent.id,))
    await market.db.execute("UPDATE sessions SET expires_at = NOW(3) - INTERVAL 3 DAY WHERE user_id = %s", (old.id,))
    await market.db.execute("UPDATE sessions SET revoked_at = NOW(3) - INTERVAL 20 DAY,"
                            " expires_at = NOW(3) - INTERVAL 6 DAY WHERE user_id = %s", (revoked.id,))
    # (asked directly: the app's own scheduler may hold the lease, and may have purged them first)
    await Scheduler(market.db, market.rentals, interval_s=60).purge_sessions()
    left = {r["user_id"] for r in await market.db.fetchall(
        "SELECT user_id FROM sessions WHERE user_id IN (%s, %s, %s, %s)", (live.id, recent.id, old.id, revoked.id))}
    assert left == {live.id, recent.id}
    assert (await live.call("GET", "/api/me"))[0] == 200
    await market.redis.delete(session_key(old.token))  # (its cache entry would have lapsed with its expiry)
    assert (await old.call("GET", "/api/me"))[0] == 401
