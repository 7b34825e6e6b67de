"""Naver login against the sandbox over HTTP: sign up, log in again, a taken nickname, linking and unlinking,
and every forged or failed callback refused with nothing changed."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from aiohttp.test_utils import TestClient

from gateway.keys import MARKET
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
