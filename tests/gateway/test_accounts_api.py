"""Sign-up, log-in, sessions and profile photos through the REST API."""

from __future__ import annotations

from aiohttp import FormData
from aiohttp.test_utils import TestClient

from tests.conftest import image_bytes, sign_up


async def test_sign_up_sets_an_httponly_samesite_cookie_and_returns_a_token(client: TestClient) -> None:
    async with client.post("/api/auth/signup", json={
            "email": "Minji@Example.com", "nickname": "민지", "password": "camping123"}) as resp:
        assert resp.status == 201
        body = await resp.json()
        cookie = resp.headers["Set-Cookie"]
    assert body["user"]["email"] == "minji@example.com"
    assert body["user"]["nickname"] == "민지"
    assert "password" not in str(body["user"]) and "hash" not in str(body["user"])
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    async with client.get("/api/me") as resp:  # the cookie alone authenticates
        assert resp.status == 200
        assert (await resp.json())["user"]["nickname"] == "민지"


async def test_duplicate_email_and_nickname_are_refused_in_korean(client: TestClient) -> None:
    await sign_up(client, nickname="텐트왕", email="tent@example.com")
    async with client.post("/api/auth/signup", json={
            "email": "TENT@example.com", "nickname": "다른이름", "password": "camping123"}) as resp:
        assert resp.status == 409
        err = (await resp.json())["error"]
    assert err["code"] == "account.email_taken" and err["field"] == "email"
    assert "이미 가입된 이메일" in err["message"]
    async with client.post("/api/auth/signup", json={
            "email": "other@example.com", "nickname": "텐트왕", "password": "camping123"}) as resp:
        assert resp.status == 409
        assert (await resp.json())["error"]["code"] == "account.nickname_taken"


async def test_bad_sign_up_input_gets_a_clear_error_and_creates_nobody(client: TestClient) -> None:
    cases = [
        ({"nickname": "민지", "password": "camping123"}, "input.required", "email"),
        ({"email": "not-an-email", "nickname": "민지", "password": "camping123"}, "account.bad_email", "email"),
        ({"email": "a@example.com", "nickname": "<b>x</b>", "password": "camping123"}, "account.bad_nickname",
         "nickname"),
        ({"email": "a@example.com", "nickname": "민지", "password": "short1"}, "account.weak_password", "password"),
        ({"email": "a@example.com", "nickname": "민지", "password": "x" * 129}, "account.weak_password", "password"),
        ({"email": "a@example.com", "nickname": "민지", "password": "camping123", "admin": True},
         "input.unknown_field", None),
        ({"email": ["a@example.com"], "nickname": "민지", "password": "camping123"}, "input.not_text", "email"),
    ]
    for body, code, field in cases:
        async with client.post("/api/auth/signup", json=body) as resp:
            assert resp.status == 400, body
            err = (await resp.json())["error"]
            assert err["code"] == code, (body, err)
            assert err.get("field") == field
            assert err["message"] and not err["message"].isascii()
    async with client.post("/api/auth/signup", data="{not json", headers={"Content-Type": "application/json"}) as r:
        assert r.status == 400
        assert (await r.json())["error"]["code"] == "input.bad_json"
    async with client.post("/api/auth/signup", json=["a", "b"]) as resp:
        assert (await resp.json())["error"]["code"] == "input.not_object"
    async with client.post("/api/auth/login", json={"email": "a@example.com", "password": "camping123"}) as resp:
        assert resp.status == 401  # nobody was created by any of the refused sign-ups


async def test_english_speakers_get_english_errors(client: TestClient) -> None:
    async with client.post("/api/auth/signup", json={"email": "x"},
                           headers={"Accept-Language": "en-US,en;q=0.9"}) as resp:
        err = (await resp.json())["error"]
    assert err["message"] == "That e-mail address does not look right."


async def test_log_in_log_out_and_the_old_token_stops_working(client: TestClient) -> None:
    await sign_up(client, email="junho@example.com")
    async with client.post("/api/auth/login", json={"email": "junho@example.com", "password": "rent4you"}) as resp:
        assert resp.status == 200
        token = (await resp.json())["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    async with client.get("/api/me", headers=bearer) as resp:
        assert resp.status == 200
    async with client.post("/api/auth/logout", headers=bearer) as resp:
        assert resp.status == 200
    async with client.get("/api/me", headers=bearer) as resp:
        assert resp.status == 401
        assert (await resp.json())["error"]["message"] == "로그인이 필요해요."


async def test_wrong_password_and_unknown_email_get_the_same_answer(client: TestClient) -> None:
    await sign_up(client, email="seoyeon@example.com")
    answers = []
    for email, password in [("seoyeon@example.com", "wrong-pass1"), ("nobody@example.com", "rent4you")]:
        async with client.post("/api/auth/login", json={"email": email, "password": password}) as resp:
            answers.append((resp.status, await resp.json()))
    assert answers[0] == answers[1]
    assert answers[0][0] == 401


async def test_repeated_failed_logins_make_that_client_wait(client: TestClient) -> None:
    await sign_up(client, email="target@example.com")
    for _ in range(5):  # the test config allows 5 failures
        async with client.post("/api/auth/login", json={"email": "target@example.com", "password": "guess1234"}) as r:
            assert r.status == 401
    async with client.post("/api/auth/login", json={"email": "target@example.com", "password": "rent4you"}) as r:
        assert r.status == 429
        assert "로그인 시도가 너무 많아요" in (await r.json())["error"]["message"]


async def test_garbage_tokens_are_treated_as_logged_out(client: TestClient) -> None:
    for header in ["Bearer ", "Bearer nonsense", "Bearer " + "x" * 5000, "Basic abc"]:
        async with client.get("/api/me", headers={"Authorization": header}) as resp:
            assert resp.status == 401


async def test_profile_photo_is_stored_in_s3_and_served_back(client: TestClient) -> None:
    person = await sign_up(client)
    form = FormData()
    form.add_field("photo", image_bytes("PNG", (300, 300)), filename="me.png", content_type="image/png")
    status, body = await person.call("PUT", "/api/me/photo", data=form)
    assert status == 200, body
    url = body["user"]["profile_photo"]
    assert url.startswith("/media/profiles/")
    async with client.get(url) as resp:
        assert resp.status == 200
        assert resp.content_type == "image/jpeg"
        assert (await resp.read())[:3] == b"\xff\xd8\xff"


async def test_a_text_file_named_like_a_photo_is_refused_and_changes_nothing(client: TestClient) -> None:
    person = await sign_up(client)
    form = FormData()
    form.add_field("photo", b"<?php echo 'hi'; ?>", filename="me.jpg", content_type="image/jpeg")
    status, body = await person.call("PUT", "/api/me/photo", data=form)
    assert status == 415
    assert body["error"]["code"] == "photo.not_image"
    status, me = await person.call("GET", "/api/me")
    assert me["user"]["profile_photo"] is None


async def test_profile_edit_changes_nickname_and_refuses_a_taken_one(client: TestClient) -> None:
    a = await sign_up(client, nickname="가나다")
    b = await sign_up(client)
    status, body = await b.call("PATCH", "/api/me", json={"nickname": "새이름", "locale": "en"})
    assert status == 200 and body["user"]["nickname"] == "새이름" and body["user"]["locale"] == "en"
    status, body = await b.call("PATCH", "/api/me", json={"nickname": a.user["nickname"]})
    assert status == 409
    assert body["error"]["message"] == "That nickname is taken; please choose another."  # b chose English


async def test_a_cookie_session_cannot_be_used_from_another_site(client: TestClient) -> None:
    await sign_up(client, email="victim@example.com")
    async with client.post("/api/auth/login", json={"email": "victim@example.com", "password": "rent4you"}):
        pass
    async with client.patch("/api/me", json={"nickname": "해킹됨"}, headers={"Origin": "https://evil.example"}) as r:
        assert r.status == 403
        assert (await r.json())["error"]["code"] == "service.csrf"
    async with client.get("/api/me") as resp:
        assert (await resp.json())["user"]["nickname"] != "해킹됨"
