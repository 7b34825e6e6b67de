"""Sessions survive Redis: MariaDB holds them (token hash, person, expiry, revoked) and Redis only caches them. A
flushed or restarted Redis logs nobody out — not the page, not the chat socket, not a send — and a revoked or
expired session stays refused whatever Redis holds."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from gateway.keys import MARKET
from market.messages import render
from market.people.accounts import session_key, token_hash
from market.rentals.kdates import seoul_today
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


async def test_a_request_sees_a_changed_profile_at_once_though_a_copy_of_it_is_kept(client: TestClient) -> None:
    """Each request reads its session and a copy of the person's profile in one Redis round trip; a change of the
    nickname, the language or the photo is seen by the very next request, and a logout still ends the session at
    once, copy or not."""
    market = client.app[MARKET]
    person = await sign_up(client, "바뀌는사람")
    other = await sign_up(client, "다른기기")  # (the same person on another device would be another session)
    assert (await person.call("GET", "/api/me"))[1]["user"]["nickname"] == "바뀌는사람"
    assert await market.redis.get(f"billi:person:{person.id}") is not None  # the copy the next request reads
    status, _ = await person.call("PATCH", "/api/me", json={"nickname": "바뀐사람", "locale": "en"})
    assert status == 200
    status, me = await person.call("GET", "/api/me")
    assert me["user"]["nickname"] == "바뀐사람" and me["user"]["locale"] == "en"
    day = (seoul_today() + timedelta(days=3)).isoformat()
    status, body = await person.call("POST", "/api/contracts", json={"item_id": 10**9, "start": day, "end": day})
    assert status == 404 and body["error"]["message"] == render("item.not_found", "en")  # in the new language
    assert (await other.call("GET", "/api/me"))[1]["user"]["nickname"] == "다른기기"
    await person.call("POST", "/api/auth/logout")
    assert await market.redis.get(f"billi:person:{person.id}") is not None  # the copy stays; the session does not
    assert (await person.call("GET", "/api/me"))[0] == 401


async def test_a_profile_read_before_a_change_is_never_kept_as_its_copy(client: TestClient,
                                                                        monkeypatch: Any) -> None:
    """A request that read the person's record just before a change committed (and the change dropped the copy
    meanwhile) does not keep what it read as the copy: the next request reads the change."""
    market = client.app[MARKET]
    person = await sign_up(client, "경주전이름")
    accounts = market.accounts
    real_get = accounts.get
    raced = []

    async def get_then_change(user_id: int) -> Any:
        before = await real_get(user_id)  # the record as it was …
        if not raced:
            raced.append(user_id)  # … when the change commits, and drops the copy, before this one is kept
            await market.db.execute("UPDATE users SET nickname = %s WHERE id = %s", ("경주후이름", user_id))
            await accounts.profile_changed(user_id)
        return before

    await market.redis.delete(f"billi:person:{person.id}")  # (the copy the sign-up kept has lapsed)
    monkeypatch.setattr(accounts, "get", get_then_change)
    assert (await accounts.session_user(person.token)).nickname == "경주전이름"  # (read before the change)
    assert raced and await market.redis.get(f"billi:person:{person.id}") is None  # not kept
    assert (await accounts.session_user(person.token)).nickname == "경주후이름"
    assert (await accounts.session_user(person.token)).nickname == "경주후이름"  # (now from the copy)
    assert await market.redis.get(f"billi:person:{person.id}") is not None


async def test_the_first_request_after_a_sign_up_or_log_in_finds_the_profile_they_read(client: TestClient,
                                                                                       monkeypatch: Any) -> None:
    """A sign-up or a log-in has just read the person's record: the copy of it goes to Redis with the session's
    cache, in the same call, so the first request reads neither MariaDB's record nor a second Redis key."""
    market = client.app[MARKET]
    accounts = market.accounts
    person = await sign_up(client, "첫요청", email="first-request@example.com")
    read = []
    real_get = accounts.get

    async def counted_get(user_id: int) -> Any:
        read.append(user_id)
        return await real_get(user_id)

    monkeypatch.setattr(accounts, "get", counted_get)
    status, me = await person.call("GET", "/api/me")
    assert status == 200 and me["user"]["nickname"] == "첫요청" and read == []
    await market.redis.delete(f"billi:person:{person.id}")
    async with client.post("/api/auth/login", json={"email": "first-request@example.com",
                                                    "password": "rent4you"}) as resp:
        assert resp.status == 200
        token = (await resp.json())["token"]
    client.session.cookie_jar.clear()
    async with client.get("/api/me", headers={"Authorization": f"Bearer {token}"}) as resp:
        assert resp.status == 200 and (await resp.json())["user"]["email"] == "first-request@example.com"
    assert read == []
    assert (await accounts.session_user(token)) == await real_get(person.id)  # the copy is the record


async def test_a_log_in_that_read_the_profile_before_a_change_keeps_no_copy_of_it(client: TestClient,
                                                                                  monkeypatch: Any) -> None:
    """A log-in reads the record, then spends a moment on the password: a change of the profile committed meanwhile
    (its copy dropped, its generation counted) is what the first request sees, not the record the log-in read."""
    market = client.app[MARKET]
    accounts = market.accounts
    person = await sign_up(client, "바꾸기전", email="changed-meanwhile@example.com")
    real_verify = accounts._passwords.verify

    async def verify_then_change(stored: str, password: str) -> bool:
        right = await real_verify(stored, password)
        await market.db.execute("UPDATE users SET nickname = %s WHERE id = %s", ("바꾼뒤", person.id))
        await accounts.profile_changed(person.id)
        return right

    monkeypatch.setattr(accounts._passwords, "verify", verify_then_change)
    async with client.post("/api/auth/login", json={"email": "changed-meanwhile@example.com",
                                                    "password": "rent4you"}) as resp:
        assert resp.status == 200
        token = (await resp.json())["token"]
    client.session.cookie_jar.clear()
    assert await market.redis.get(f"billi:person:{person.id}") is None  # not kept
    assert (await accounts.session_user(token)).nickname == "바꾼뒤"


async def test_a_revocation_between_a_log_ins_insert_and_its_cache_write_stays_a_revocation(client: TestClient,
                                                                                            monkeypatch: Any) -> None:
    """"Log out everywhere" (or a password change) that commits after a log-in's session row and before its Redis
    call revokes that session too: the log-in's cache write does not overwrite the revocation's "no"."""
    market = client.app[MARKET]
    accounts = market.accounts
    person = await sign_up(client, "엇갈린로그인", email="raced-login@example.com")
    real = accounts._session_made
    ended: list[str] = []

    async def revoked_first(*, keys: list[str], args: list[Any]) -> Any:
        ended.extend(await accounts.log_out_everywhere(person.id))
        return await real(keys=keys, args=args)

    monkeypatch.setattr(accounts, "_session_made", revoked_first)
    async with client.post("/api/auth/login", json={"email": "raced-login@example.com",
                                                    "password": "rent4you"}) as resp:
        assert resp.status == 200
        token = (await resp.json())["token"]
    client.session.cookie_jar.clear()
    assert token_hash(token) in ended
    assert await accounts.session_user_id(token) is None and await accounts.session_user(token) is None
    async with client.get("/api/me", headers={"Authorization": f"Bearer {token}"}) as resp:
        assert resp.status == 401
