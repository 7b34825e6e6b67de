"""Naver login against the sandbox over HTTP: sign up, log in again, a taken nickname, linking and unlinking,
and every forged or failed callback refused with nothing changed."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from aiohttp.test_utils import TestClient

from gateway.keys import MARKET
from market.migrate import MIGRATIONS_DIR, split_statements
from tests.conftest import sign_up


async def _profile(client: TestClient, nickname: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        resp = await http.post(client.app[MARKET].config.naver_auth_url + "/sandbox/naver/people",
                               json={"nickname": nickname, "email": f"{nickname}@naver.example", "name": "이름"})
        return resp.json()  # type: ignore[no-any-return]


async def _to_naver(client: TestClient, headers: dict[str, str] | None = None, link: bool = False) -> str:
    async with client.get("/auth/naver", params={"link": "1"} if link else {}, headers=headers or {},
                          allow_redirects=False) as resp:
        assert resp.status == 302
        return resp.headers["Location"]


async def _consent(authorize_url: str, profile: dict[str, Any], *, deny: bool = False) -> str:
    """Press the sandbox's consent button; returns the callback path and query Naver redirects to."""
    parts = urlsplit(authorize_url)
    form = {k: v[0] for k, v in parse_qs(parts.query).items()}
    async with httpx.AsyncClient() as http:
        page = await http.get(authorize_url)
        assert "네이버 아이디로 로그인" in page.text
        resp = await http.post(f"{parts.scheme}://{parts.netloc}{parts.path}",
                               data={**form, "naver_id": profile["id"], "consent": "no" if deny else "yes"})
    assert resp.status_code == 302
    back = urlsplit(resp.headers["location"])
    assert back.path == "/auth/naver/callback"
    return f"{back.path}?{back.query}"


async def _callback(client: TestClient, path: str, headers: dict[str, str] | None = None) -> tuple[int, str, str | None]:
    async with client.get(path, headers=headers or {}, allow_redirects=False) as resp:
        cookie = resp.cookies.get("billi_session")
        return resp.status, await resp.text(), cookie.value if cookie else None


async def _me(client: TestClient, token: str) -> dict[str, Any]:
    async with client.get("/api/me", headers={"Authorization": f"Bearer {token}"}) as resp:
        assert resp.status == 200
        return (await resp.json())["user"]  # type: ignore[no-any-return]


async def test_sign_up_then_log_in_again_with_naver(client: TestClient) -> None:
    profile = await _profile(client, "네이버이웃")
    status, _, token = await _callback(client, await _consent(await _to_naver(client), profile))
    assert status == 302 and token
    me = await _me(client, token)
    assert me["nickname"] == "네이버이웃"
    again = await _consent(await _to_naver(client), profile)
    status, _, second = await _callback(client, again)
    assert status == 302 and second and second != token
    assert (await _me(client, second))["id"] == me["id"]
    status, text, _ = await _callback(client, again)  # the same callback twice: its state was single-use
    assert status == 400 and "만료" in text
    assert await client.app[MARKET].db.fetchval("SELECT COUNT(*) FROM login_links") == 1


async def test_a_taken_nickname_is_asked_for(client: TestClient) -> None:
    await sign_up(client, "겹치는이름")
    profile = await _profile(client, "겹치는이름")
    status, page, token = await _callback(client, await _consent(await _to_naver(client), profile))
    assert status == 200 and token is None and "닉네임" in page
    pending = page.split('name="pending" value="')[1].split('"')[0]
    async with client.post("/api/auth/naver/complete", json={"pending": pending, "nickname": "겹치는이름"}) as resp:
        assert resp.status == 409  # still taken
    async with client.post("/api/auth/naver/complete", json={"pending": pending, "nickname": "<b>x</b>"}) as resp:
        assert resp.status == 400
    async with client.post("/api/auth/naver/complete", json={"pending": pending, "nickname": "새이름"}) as resp:
        assert resp.status == 201
        body = await resp.json()
    assert body["user"]["nickname"] == "새이름"
    own = {"Origin": str(client.make_url("/")).rstrip("/")}  # the browser now has a session cookie: it says where from
    async with client.post("/api/auth/naver/complete", json={"pending": pending, "nickname": "또이름"},
                           headers=own) as resp:
        assert resp.status == 400  # used up


async def test_forged_denied_and_expired_callbacks_change_nothing(client: TestClient) -> None:
    market = client.app[MARKET]
    profile = await _profile(client, "조심이")
    status, text, _ = await _callback(client, "/auth/naver/callback?state=" + "A" * 32 + "&code=abc")
    assert status == 400
    status, text, _ = await _callback(client, "/auth/naver/callback?code=abc")
    assert status == 400
    denied = await _consent(await _to_naver(client), profile, deny=True)
    status, text, _ = await _callback(client, denied)
    assert status == 409 and "취소" in text
    late = await _consent(await _to_naver(client), profile)
    async with httpx.AsyncClient() as http:
        await http.post(market.config.naver_auth_url + "/sandbox/naver/expire_codes")
    status, text, _ = await _callback(client, late)
    assert status == 400 and "만료" in text
    assert await market.db.fetchval("SELECT COUNT(*) FROM login_links") == 0
    assert await market.db.fetchval("SELECT COUNT(*) FROM users WHERE nickname = '조심이'") == 0


async def test_link_unlink_and_one_naver_account_per_person(client: TestClient) -> None:
    market = client.app[MARKET]
    person = await sign_up(client, "비번있음")
    other = await sign_up(client, "다른사람")
    profile = await _profile(client, "연결할네이버")
    url = await _to_naver(client, person.auth, link=True)
    status, _, _ = await _callback(client, await _consent(url, profile), person.auth)
    assert status == 302
    status, page = await person.call("GET", "/api/me/page")
    assert page["naver_linked"] is True
    # someone else trying to link the same Naver account
    url = await _to_naver(client, other.auth, link=True)
    status, text, _ = await _callback(client, await _consent(url, profile), other.auth)
    assert status == 409 and "다른 빌리마켓 계정" in text
    # a link started by one person and finished in another person's browser
    url = await _to_naver(client, other.auth, link=True)
    status, _, _ = await _callback(client, await _consent(url, await _profile(client, "남의것")), person.auth)
    assert status == 400
    # logging in with the linked Naver account is logging in as that person
    status, _, token = await _callback(client, await _consent(await _to_naver(client), profile))
    assert token and (await _me(client, token))["id"] == person.id
    status, body = await person.call("DELETE", "/api/auth/naver")
    assert status == 200
    status, body = await person.call("DELETE", "/api/auth/naver")
    assert status == 404
    # a Naver-only account cannot cut its only way in
    status, _, naver_only = await _callback(client, await _consent(await _to_naver(client),
                                                                   await _profile(client, "네이버만")))
    async with client.delete("/api/auth/naver", headers={"Authorization": f"Bearer {naver_only}"}) as resp:
        assert resp.status == 409
    assert await market.db.fetchval("SELECT COUNT(*) FROM login_links") == 1  # the Naver-only account's


async def _logged_in_again(client: TestClient, email: str) -> dict[str, str]:
    """Another session of the same person (a thief's, say): its bearer header."""
    async with client.post("/api/auth/login", json={"email": email, "password": "rent4you"}) as resp:
        body = await resp.json()
        assert resp.status == 200, body
    client.session.cookie_jar.clear()
    return {"Authorization": f"Bearer {body['token']}"}


async def test_a_naver_link_added_from_another_session_ends_with_a_password_change_and_all_end_with_a_reset(
        client: TestClient) -> None:
    market = client.app[MARKET]
    owner = await sign_up(client, "도둑맞은이", email="robbed@example.com")
    thief = await _logged_in_again(client, "robbed@example.com")  # a stolen session
    thiefs_naver = await _profile(client, "도둑네이버")
    url = await _to_naver(client, thief, link=True)
    assert (await _callback(client, await _consent(url, thiefs_naver), thief))[0] == 302
    status, _, token = await _callback(client, await _consent(await _to_naver(client), thiefs_naver))
    assert token and (await _me(client, token))["id"] == owner.id  # the thief's way back in, for now

    status, body = await owner.call("POST", "/api/me/password", json={"current": "rent4you", "new": "take it back 1"})
    assert status == 200, body
    status, text, token = await _callback(client, await _consent(await _to_naver(client), thiefs_naver))
    assert token is None or (await _me(client, token))["id"] != owner.id  # the link is gone with the session
    assert await market.db.fetchval("SELECT COUNT(*) FROM login_links WHERE user_id = %s", (owner.id,)) == 0

    owners_naver = await _profile(client, "주인네이버")
    url = await _to_naver(client, owner.auth, link=True)
    assert (await _callback(client, await _consent(url, owners_naver), owner.auth))[0] == 302
    status, body = await owner.call("POST", "/api/me/password", json={"current": "take it back 1",
                                                                      "new": "and again 22"})
    assert status == 200, body  # a link added from the session that changes the password stays
    assert await market.db.fetchval("SELECT COUNT(*) FROM login_links WHERE user_id = %s", (owner.id,)) == 1
    await market.password_resets.request({"email": "robbed@example.com"})
    token = "t" * 43
    await market.db.execute("UPDATE password_resets SET token_hash = SHA2(%s, 256)", (token,))
    client.session.cookie_jar.clear()  # (the Naver log-ins above left a session cookie)
    async with client.post("/api/auth/password-reset/confirm", json={"token": token, "password": "a reset one 3"}) as r:
        assert r.status == 200, await r.json()
    assert await market.db.fetchval("SELECT COUNT(*) FROM login_links WHERE user_id = %s", (owner.id,)) == 0


async def test_a_naver_link_added_before_links_named_their_session_ends_with_a_password_change(
        client: TestClient) -> None:
    market = client.app[MARKET]
    owner = await sign_up(client, "예전연결", email="legacy@example.com")
    naver_made = await sign_up(client, "네이버로가입")
    for person, after_s in ((owner, 3600), (naver_made, 1)):  # as migration 0031 found them: no session named
        await market.db.execute("INSERT INTO login_links (provider, subject, user_id, created_at) SELECT 'naver', %s,"
                                " id, created_at + INTERVAL %s SECOND FROM users WHERE id = %s",
                                (f"subject-{person.id}", after_s, person.id))
    (backfill,) = split_statements((MIGRATIONS_DIR / "0033_legacy_link_sessions.sql").read_text())
    await market.db.execute(backfill)
    links = {r["user_id"]: r["linked_in_session"]
             for r in await market.db.fetchall("SELECT user_id, linked_in_session FROM login_links")}
    assert links == {owner.id: "legacy", naver_made.id: None}  # linked later, vs. made with the account

    status, body = await owner.call("POST", "/api/me/password", json={"current": "rent4you", "new": "take it back 1"})
    assert status == 200, body
    assert await market.db.fetchval("SELECT COUNT(*) FROM login_links WHERE user_id = %s", (owner.id,)) == 0
    status, body = await naver_made.call("POST", "/api/me/password", json={"current": "rent4you",
                                                                           "new": "take it back 1"})
    assert status == 200, body
    assert await market.db.fetchval("SELECT COUNT(*) FROM login_links WHERE user_id = %s", (naver_made.id,)) == 1
