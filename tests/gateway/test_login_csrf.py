"""Login CSRF: another site must not be able to log a visitor in as someone else (which would also let a stranger
finish a bank link in the visitor's browser). Naver's callback is finished only in the browser that started it;
JSON endpoints read only JSON; writes refuse a foreign or null Origin with or without a cookie, and a write with
a cookie must say where it comes from."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.conftest import sign_up
from tests.social.test_naver import _consent, _profile, _to_naver

EVIL = "https://evil.example"


async def test_an_attackers_naver_callback_opened_in_another_browser_logs_nobody_in(client: TestClient) -> None:
    profile = await _profile(client, "공격자네이버")
    callback = await _consent(await _to_naver(client), profile)  # the attacker stops before coming back
    nonce = next(c.value for c in client.session.cookie_jar if c.key == "billi_naver")
    client.session.cookie_jar.clear()  # the victim's browser: no cookie from the attacker's start
    async with client.get(callback, allow_redirects=False) as resp:
        assert resp.status == 403 and "브라우저" in await resp.text()
        assert "billi_session" not in resp.cookies
    # The browser that started it still can (the state was not used up).
    async with client.get(callback, allow_redirects=False, headers={"Cookie": f"billi_naver={nonce}"}) as resp:
        assert resp.status == 302 and resp.cookies["billi_session"].value


async def _login(client: TestClient, body: str, headers: dict[str, str]) -> tuple[int, Any]:
    async with client.post("/api/auth/login", data=body.encode(), headers=headers) as resp:
        return resp.status, await resp.json()


async def test_a_cross_site_form_cannot_log_a_visitor_in(client: TestClient) -> None:
    await sign_up(client, "공격자", email="evil@example.com")
    body = '{"email": "evil@example.com", "password": "rent4you"}'
    for headers, status, code in (
            ({"Content-Type": "text/plain", "Origin": EVIL}, 403, "service.csrf"),
            ({"Content-Type": "text/plain", "Origin": "null"}, 403, "service.csrf"),
            ({"Content-Type": "application/x-www-form-urlencoded", "Referer": EVIL + "/x"}, 403, "service.csrf"),
            ({"Content-Type": "text/plain"}, 415, "input.json_only"),
            ({"Content-Type": "application/json", "Origin": EVIL}, 403, "service.csrf")):
        got, answer = await _login(client, body, headers)
        assert (got, answer["error"]["code"]) == (status, code), headers
        assert not [c for c in client.session.cookie_jar if c.key == "billi_session"]
    own = str(client.make_url("/")).rstrip("/")
    got, answer = await _login(client, body, {"Content-Type": "application/json", "Origin": own})
    assert got == 200 and answer["user"]["nickname"] == "공격자"


async def test_a_write_riding_on_the_cookie_must_say_where_it_comes_from(client: TestClient) -> None:
    person = await sign_up(client, "쿠키주인")
    own = str(client.make_url("/")).rstrip("/")
    cookie = {"Cookie": f"billi_session={person.token}"}
    for headers, status in (({}, 403), ({"Origin": EVIL}, 403), ({"Referer": EVIL + "/page"}, 403),
                            ({"Origin": "null"}, 403), ({"Origin": own}, 200), ({"Referer": own + "/me"}, 200)):
        async with client.post("/api/me/notifications/read", json={}, headers={**cookie, **headers}) as resp:
            assert resp.status == status, (headers, await resp.text())
    # A client with its bearer token is not a browser riding on ambient credentials.
    status, _ = await person.call("POST", "/api/me/notifications/read", json={})
    assert status == 200


async def test_an_origin_with_another_scheme_or_port_is_not_ours(client: TestClient) -> None:
    person = await sign_up(client, "포트다름")
    url = client.make_url("/")
    cookie = {"Cookie": f"billi_session={person.token}"}
    for origin in (f"https://{url.host}:{url.port}", f"http://{url.host}:{url.port + 1}", f"http://{url.host}",
                   f"http://{url.host}:{url.port}.evil.example"):
        async with client.post("/api/me/notifications/read", json={}, headers={**cookie, "Origin": origin}) as resp:
            assert resp.status == 403, origin
    async with client.post("/api/me/notifications/read", json={},
                           headers={**cookie, "Origin": f"HTTP://{url.host}:{url.port}"}) as resp:
        assert resp.status == 200  # the same origin, however it is spelled
