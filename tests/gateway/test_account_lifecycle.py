"""An account's life after sign-up: log out everywhere, a password change (every other session ends, this one
stays), a forgotten password reset by a single-use e-mailed link that lives 30 minutes, and account deletion
(refused while a rental or money is open; otherwise the person's data goes and their reviews stay under
"탈퇴한 이웃"). Every ended session's open chat sockets are hung up at once."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.keys import MARKET
from gateway.mail_sink import MailSink, text_of
from market.config import Config
from market.errors import Unauthenticated
from market.service import Market
from market.storage import BlobStore
from tests.conftest import Chatter, Person, _clean, image_bytes, sign_up
from tests.rentals.helpers import Bank, link
from tests.rentals.test_contracts import _paid

NEW_PASSWORD = "borrow2lend"


@pytest.fixture
async def mail() -> AsyncIterator[MailSink]:
    sink = await MailSink.start()
    yield sink
    await sink.close()


@pytest.fixture
async def client(config: Config, mail: MailSink) -> AsyncIterator[TestClient]:
    """The gateway test client, sending its mail to this test's sink."""
    await _clean(config)
    async with TestClient(TestServer(create_app(config.replace(smtp_url=mail.url)))) as c:
        yield c


@pytest.fixture
def bank(config: Config) -> Bank:
    assert config.bank_url
    return Bank(config.bank_url)


async def _second_session(client: TestClient, person: Person, password: str = "rent4you") -> Person:
    """The same person logged in on another device."""
    async with client.post("/api/auth/login", json={"email": person.user["email"], "password": password}) as resp:
        body = await resp.json()
        assert resp.status == 200, body
    client.session.cookie_jar.clear()
    return Person(client, body["token"], body["user"])


async def _log_in(client: TestClient, email: str, password: str) -> int:
    async with client.post("/api/auth/login", json={"email": email, "password": password}) as resp:
        client.session.cookie_jar.clear()
        return resp.status


async def _hung_up(chatter: Chatter) -> bool:
    for _ in range(200):
        if not chatter.sio.connected:
            return True
        await asyncio.sleep(0.05)
    return False


async def _post(client: TestClient, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with client.post(path, json=body) as resp:
        client.session.cookie_jar.clear()
        return resp.status, await resp.json()


def _token_from(mail: Any) -> str:
    found = re.search(r"/password/reset#([A-Za-z0-9_-]{43})", text_of(mail))
    assert found, text_of(mail)
    return found.group(1)


# -- log out everywhere --------------------------------------------------------------------------------------------
async def test_logging_out_everywhere_ends_every_session_and_hangs_up_every_socket(
        client: TestClient, chatters: Any) -> None:
    laptop = await sign_up(client, "어디서나")
    phone = await _second_session(client, laptop)
    neighbour = await sign_up(client, "옆집")
    sockets = [await chatters(laptop), await chatters(phone)]
    theirs = await chatters(neighbour)
    status, body = await phone.call("POST", "/api/auth/logout-everywhere")
    assert status == 200 and "모든 기기" in body["message"], body
    for s in sockets:
        assert await _hung_up(s), s.events
        assert "로그아웃" in s.received("session_ended")[0]["message"]
    assert (await laptop.call("GET", "/api/me"))[0] == 401
    assert (await phone.call("GET", "/api/me"))[0] == 401
    assert (await neighbour.call("GET", "/api/me"))[0] == 200 and theirs.sio.connected
    assert await _log_in(client, laptop.user["email"], "rent4you") == 200  # the password still works


async def test_logging_out_everywhere_from_another_site_is_refused(client: TestClient) -> None:
    person = await sign_up(client, "조심이")
    client.session.cookie_jar.update_cookies({"billi_session": person.token})
    async with client.post("/api/auth/logout-everywhere", json={},
                           headers={"Origin": "https://evil.example"}) as resp:
        assert resp.status == 403
    client.session.cookie_jar.clear()
    assert (await person.call("GET", "/api/me"))[0] == 200


# -- password change -----------------------------------------------------------------------------------------------
async def test_changing_the_password_ends_the_other_sessions_and_keeps_this_one(
        client: TestClient, chatters: Any) -> None:
    here = await sign_up(client, "바꾸는이")
    there = await _second_session(client, here)
    this_socket, other_socket = await chatters(here), await chatters(there)
    status, body = await here.call("POST", "/api/me/password", json={"current": "rent4you", "new": NEW_PASSWORD})
    assert status == 200 and "비밀번호를 바꿨어요" in body["message"], body
    assert await _hung_up(other_socket)
    assert other_socket.received("session_ended")
    assert (await there.call("GET", "/api/me"))[0] == 401
    assert (await here.call("GET", "/api/me"))[0] == 200
    room = (await client.app[MARKET].chat.assistant_room(here.id)).id
    assert this_socket.sio.connected and (await this_socket.call("join", {"room": room}))["ok"]
    assert not this_socket.received("session_ended")
    assert await _log_in(client, here.user["email"], "rent4you") == 401
    assert await _log_in(client, here.user["email"], NEW_PASSWORD) == 200


async def test_a_wrong_current_password_or_a_weak_new_one_changes_nothing(client: TestClient) -> None:
    here = await sign_up(client, "틀린이")
    there = await _second_session(client, here)
    cases = [({"current": "not-mine-9", "new": NEW_PASSWORD}, "account.wrong_password", "current"),
             ({"current": "rent4you", "new": "short1"}, "account.weak_password", "new"),
             ({"current": "rent4you", "new": "password1"}, "account.common_password", "new"),
             ({"current": "rent4you"}, "input.required", "new"),
             ({"current": "rent4you", "new": NEW_PASSWORD, "admin": True}, "input.unknown_field", None)]
    for body, code, field in cases:
        status, answer = await here.call("POST", "/api/me/password", json=body)
        assert status == 400 and answer["error"]["code"] == code, (body, answer)
        assert answer["error"].get("field") == field
        assert not answer["error"]["message"].isascii()  # said in Korean
    assert (await there.call("GET", "/api/me"))[0] == 200
    assert await _log_in(client, here.user["email"], "rent4you") == 200


async def test_guessing_the_current_password_is_cut_off(client: TestClient) -> None:
    """A stolen session cannot be used to try passwords without end."""
    here = await sign_up(client, "추측당한이")
    limit = client.app[MARKET].config.login_max_failures
    for n in range(limit):
        status, _ = await here.call("POST", "/api/me/password", json={"current": f"guess{n}abc", "new": NEW_PASSWORD})
        assert status == 400
    status, body = await here.call("POST", "/api/me/password", json={"current": "rent4you", "new": NEW_PASSWORD})
    assert status == 429 and "분 뒤" in body["error"]["message"], body
    assert await _log_in(client, here.user["email"], "rent4you") == 200


# -- password reset ------------------------------------------------------------------------------------------------
async def test_a_reset_link_sets_a_new_password_once_and_ends_every_session(
        client: TestClient, chatters: Any, mail: MailSink) -> None:
    market = client.app[MARKET]
    person = await sign_up(client, "잊은이", email="forgot@example.com")
    socket = await chatters(person)
    status, body = await _post(client, "/api/auth/password-reset", {"email": "Forgot@Example.com"})
    assert status == 200, body
    (sent,) = await mail.wait_for(1)
    assert sent["To"] == "forgot@example.com"
    assert sent["Subject"].startswith("[빌리마켓]")
    text = text_of(sent)
    assert text.index("비밀번호") < text.index("password")  # Korean first
    token = _token_from(sent)
    stored = await market.db.fetchall("SELECT token_hash FROM password_resets")
    assert stored == [{"token_hash": hashlib.sha256(token.encode()).hexdigest()}]  # only its hash is kept

    status, weak = await _post(client, "/api/auth/password-reset/confirm", {"token": token, "password": "weak"})
    assert status == 400 and weak["error"]["code"] == "account.weak_password"  # and the link is not used up

    status, done = await _post(client, "/api/auth/password-reset/confirm", {"token": token, "password": NEW_PASSWORD})
    assert status == 200, done
    assert await _hung_up(socket) and socket.received("session_ended")
    assert (await person.call("GET", "/api/me"))[0] == 401
    fresh = Person(client, done["token"], done["user"])  # the reset logs the person in
    assert (await fresh.call("GET", "/api/me"))[0] == 200
    assert await _log_in(client, "forgot@example.com", "rent4you") == 401
    assert await _log_in(client, "forgot@example.com", NEW_PASSWORD) == 200

    status, again = await _post(client, "/api/auth/password-reset/confirm", {"token": token, "password": "another1pw"})
    assert status == 400 and again["error"]["code"] == "account.reset_invalid", again
    assert "새 링크" in again["error"]["message"]
    assert await _log_in(client, "forgot@example.com", NEW_PASSWORD) == 200  # the second use changed nothing


async def test_a_reset_link_is_refused_after_30_minutes(client: TestClient, mail: MailSink) -> None:
    market = client.app[MARKET]
    await sign_up(client, "늦은이", email="late@example.com")
    await _post(client, "/api/auth/password-reset", {"email": "late@example.com"})
    token = _token_from((await mail.wait_for(1))[0])
    minutes = await market.db.fetchval("SELECT TIMESTAMPDIFF(MINUTE, created_at, expires_at) FROM password_resets")
    assert minutes == 30
    await market.db.execute("UPDATE password_resets SET expires_at = created_at - INTERVAL 1 SECOND")
    status, body = await _post(client, "/api/auth/password-reset/confirm", {"token": token, "password": NEW_PASSWORD})
    assert status == 400 and body["error"]["code"] == "account.reset_invalid", body
    assert await _log_in(client, "late@example.com", "rent4you") == 200
    status, forged = await _post(client, "/api/auth/password-reset/confirm", {"token": "A" * 43,
                                                                              "password": NEW_PASSWORD})
    assert status == 400 and forged["error"]["code"] == "account.reset_invalid"


async def test_the_reset_request_answers_the_same_for_unknown_addresses(client: TestClient, mail: MailSink) -> None:
    await sign_up(client, "있는이", email="known@example.com")
    known = await _post(client, "/api/auth/password-reset", {"email": "known@example.com"})
    unknown = await _post(client, "/api/auth/password-reset", {"email": "nobody@example.com"})
    assert known == unknown and known[0] == 200
    assert "30분" in known[1]["message"]
    await mail.wait_for(1)
    await _post(client, "/api/auth/password-reset", {"email": "known@example.com"})  # (a later mail, to know the
    await mail.wait_for(2)                                                           # unknown one never came)
    assert [m["To"] for m in mail.mails] == ["known@example.com", "known@example.com"]
    status, bad = await _post(client, "/api/auth/password-reset", {"email": "not-an-address"})
    assert status == 400 and bad["error"]["code"] == "account.bad_email"


async def test_reset_requests_are_limited_per_address_alike_for_known_and_unknown(
        client: TestClient, mail: MailSink) -> None:
    market = client.app[MARKET]
    await sign_up(client, "조르는이", email="often@example.com")
    limit = market.config.password_reset_max_requests
    for _ in range(limit):
        assert (await _post(client, "/api/auth/password-reset", {"email": "often@example.com"}))[0] == 200
        assert (await _post(client, "/api/auth/password-reset", {"email": "ghost@example.com"}))[0] == 200
    known = await _post(client, "/api/auth/password-reset", {"email": "often@example.com"})
    unknown = await _post(client, "/api/auth/password-reset", {"email": "ghost@example.com"})
    assert known == unknown and known[0] == 429, known
    assert "분 뒤" in known[1]["error"]["message"]
    await mail.wait_for(limit)
    assert await market.db.fetchval("SELECT COUNT(*) FROM password_resets") == limit
    assert (await _post(client, "/api/auth/password-reset", {"email": "other@example.com"}))[0] == 200


async def test_reset_requests_are_limited_per_client_address_whatever_addresses_they_name(
        config: Config, mail: MailSink) -> None:
    await _clean(config)
    settings = config.replace(smtp_url=mail.url, trusted_proxies="127.0.0.0/8", password_reset_address_max_requests=3)
    async with TestClient(TestServer(create_app(settings))) as client:
        await sign_up(client, "잊은이", email="forgetful@example.com")
        sender = {"X-Forwarded-For": "198.51.100.7"}
        for n in range(3):  # a new e-mail address each time: the per-e-mail limit never bites
            async with client.post("/api/auth/password-reset", json={"email": f"victim{n}@example.com"},
                                   headers=sender) as resp:
                assert resp.status == 200
        async with client.post("/api/auth/password-reset", json={"email": "forgetful@example.com"},
                               headers=sender) as resp:
            body = await resp.json()
            assert resp.status == 429, body
            assert body["error"]["code"] == "limit.password_reset" and int(resp.headers["Retry-After"]) >= 1
            assert body["error"]["message"].startswith("이 네트워크에서 비밀번호 재설정을 너무 많이 요청했어요.")
        async with client.post("/api/auth/password-reset", json={"email": "forgetful@example.com"},
                               headers={"X-Forwarded-For": "203.0.113.9"}) as resp:
            assert resp.status == 200  # the owner, elsewhere
        await mail.wait_for(1)
        assert [m["To"] for m in mail.mails] == ["forgetful@example.com"]


async def test_with_tls_required_no_mail_goes_to_a_server_without_starttls(config: Config, mail: MailSink) -> None:
    await _clean(config)
    settings = config.replace(smtp_url=mail.url, smtp_require_tls=True)
    async with TestClient(TestServer(create_app(settings))) as client:
        await sign_up(client, "조심이", email="careful@example.com")
        async with client.post("/api/auth/password-reset", json={"email": "careful@example.com"}) as resp:
            assert resp.status == 200  # the same answer: the mail goes out after it …
        await client.app[MARKET].password_resets.drain()
        assert mail.mails == []  # … and never in the clear


async def test_signing_up_with_a_taken_address_is_told_so_and_makes_nothing_and_mails_nobody(
        client: TestClient, mail: MailSink) -> None:
    """A decoy answer would be told apart by any follow-up (its token, its user id, its nickname still free) and
    its notice mail could be sent to anyone's inbox at will: the taken address is said, as the nickname is."""
    await sign_up(client, "원래주인", email="taken@example.com")
    market = client.app[MARKET]
    users = await market.db.fetchval("SELECT COUNT(*) FROM users")
    async with client.post("/api/auth/signup", json={"email": "TAKEN@example.com", "nickname": "새로온이",
                                                     "password": "camping123"}) as resp:
        body = await resp.json()
        assert resp.status == 409, body
        assert "Set-Cookie" not in resp.headers
    assert body["error"]["code"] == "account.email_taken" and body["error"]["field"] == "email"
    assert body["error"]["message"] == "이미 가입된 이메일이에요. 로그인해 주세요."
    assert await market.db.fetchval("SELECT COUNT(*) FROM users") == users
    status, _ = await _post(client, "/api/auth/password-reset", {"email": "taken@example.com"})
    assert status == 200  # a mail asked for after the sign-up: once it is in, any notice sent before would be too
    await mail.wait_for(1)
    await asyncio.sleep(0.3)
    assert len(mail.mails) == 1 and "/password/reset#" in text_of(mail.mails[0])  # the reset link, nothing else


# -- account deletion ----------------------------------------------------------------------------------------------
async def _as_person(client: TestClient, market: Market, user_id: int) -> Person:
    session = await market.accounts.session_for(user_id)
    return Person(client, session.token, session.user.private())


async def test_deleting_the_account_is_refused_while_a_rental_is_open(client: TestClient, bank: Bank) -> None:
    market = client.app[MARKET]
    c, owner_id, borrower_id, _, _ = await _paid(market, bank)
    for user_id in (borrower_id, owner_id):
        person = await _as_person(client, market, user_id)
        status, body = await person.call("DELETE", "/api/me", json={"password": "rent4you"})
        assert status == 409 and body["error"]["code"] == "account.open_rental", body
        assert "진행 중인 대여" in body["error"]["message"]
        assert (await person.call("GET", "/api/me"))[0] == 200
        assert await _log_in(client, person.user["email"], "rent4you") == 200
    assert (await market.rentals.get(c.id)).state == "PAID"


async def _settled_and_reviewed(market: Market, bank: Bank) -> tuple[int, int]:
    """A rental from request to settlement, each side reviewed; returns (owner, borrower). Its payouts are still
    on their way."""
    c, owner, borrower, _, _ = await _paid(market, bank)
    await market.rentals.hand_over(owner, c.id)
    await market.rentals.hand_over(borrower, c.id)
    await market.rentals.mark_returned(borrower, c.id)
    await market.rentals.mark_returned(owner, c.id)
    assert (await market.rentals.confirm_ok(owner, c.id)).state == "SETTLED"
    await market.reviews.write(borrower, c.id, "owner", 5, "친절하게 빌려주셨어요")
    await market.reviews.write(owner, c.id, "borrower", 4, "깨끗하게 쓰셨어요")
    return owner, borrower


async def test_deleting_the_account_waits_for_money_still_on_its_way(client: TestClient, bank: Bank) -> None:
    market = client.app[MARKET]
    owner, borrower = await _settled_and_reviewed(market, bank)
    await market.db.execute("UPDATE transfers SET state = 'unknown' WHERE user_id = %s", (owner,))
    person = await _as_person(client, market, owner)
    status, body = await person.call("DELETE", "/api/me", json={"password": "rent4you"})
    assert status == 409 and body["error"]["code"] == "account.money_open", body
    assert "정산" in body["error"]["message"]
    assert (await person.call("GET", "/api/me"))[0] == 200


async def test_a_deleted_account_is_gone_and_its_reviews_stay_under_a_placeholder(
        client: TestClient, bank: Bank, chatters: Any) -> None:
    market = client.app[MARKET]
    owner, borrower = await _settled_and_reviewed(market, bank)
    await market.rentals.process_transfers()
    leaver = await _as_person(client, market, borrower)
    email, nickname = leaver.user["email"], leaver.user["nickname"]
    form = FormData()
    form.add_field("photo", image_bytes(), filename="me.jpg", content_type="image/jpeg")
    status, body = await leaver.call("PUT", "/api/me/photo", data=form)
    assert status == 200, body
    photo_key = await market.db.fetchval("SELECT profile_photo_key FROM users WHERE id = %s", (borrower,))
    assert await market.store.get(photo_key) is not None
    item = await leaver.new_item(title="접이식 테이블")
    socket = await chatters(leaver)

    status, wrong = await leaver.call("DELETE", "/api/me", json={"password": "not-mine-9"})
    assert status == 400 and wrong["error"]["code"] == "account.wrong_password"
    assert (await leaver.call("GET", "/api/me"))[0] == 200  # nothing happened

    status, bye = await leaver.call("DELETE", "/api/me", json={"password": "rent4you"})
    assert status == 200 and "탈퇴" in bye["message"], bye
    assert await _hung_up(socket) and socket.received("session_ended")
    assert (await leaver.call("GET", "/api/me"))[0] == 401
    assert await _log_in(client, email, "rent4you") == 401
    row = await market.db.fetchone("SELECT email, nickname, password_hash, profile_photo_key FROM users WHERE id = %s",
                                   (borrower,))
    assert row == {"email": None, "nickname": "탈퇴한 이웃", "password_hash": None, "profile_photo_key": None}
    assert await market.store.get(photo_key) is None
    assert await market.db.fetchval("SELECT COUNT(*) FROM bank_links WHERE user_id = %s", (borrower,)) == 0
    assert await market.db.fetchval("SELECT COUNT(*) FROM sessions WHERE user_id = %s AND revoked_at IS NULL",
                                    (borrower,)) == 0
    async with client.get(f"/api/items/{item['id']}") as resp:
        assert resp.status == 404  # unlisted
    async with client.get(f"/api/users/{owner}") as resp:
        reviews = (await resp.json())["reviews"]
    assert [(r["author"]["nickname"], r["text"]) for r in reviews] == [("탈퇴한 이웃", "친절하게 빌려주셨어요")]

    again = await sign_up(client, nickname, email=email)  # the address and the name are free again
    assert again.id != borrower
    other = await sign_up(client, "두번째로떠나는이")
    status, _ = await other.call("DELETE", "/api/me", json={"password": "rent4you"})
    assert status == 200  # two former neighbours share the placeholder


async def test_the_pages_offer_every_step(client: TestClient) -> None:
    async with client.get("/login") as resp:
        login = await resp.text()
    assert "비밀번호를 잊으셨나요?" in login and 'href="/password/forgot"' in login
    async with client.get("/password/forgot") as resp:
        assert resp.status == 200 and 'type="email"' in await resp.text()
    async with client.get("/password/reset") as resp:
        assert resp.status == 200 and 'autocomplete="new-password"' in await resp.text()
    person = await sign_up(client, "페이지보는이")
    client.session.cookie_jar.update_cookies({"billi_session": person.token})
    async with client.get("/me") as resp:
        me = await resp.text()
    for words in ("모든 기기에서 로그아웃", "비밀번호 변경", "탈퇴"):
        assert words in me, words


async def test_a_log_in_that_checked_the_old_password_makes_no_session_once_it_changed(client: TestClient) -> None:
    """A log-in reads the account (its password hash and auth_epoch), spends a moment on argon2, then makes its
    session: if the password was changed (or the account left) meanwhile, no session comes of it."""
    here = await sign_up(client, "엇갈린이")
    market = client.app[MARKET]
    checked = int(await market.db.fetchval("SELECT auth_epoch FROM users WHERE id = %s", (here.id,)))
    status, _ = await here.call("POST", "/api/me/password", json={"current": "rent4you", "new": NEW_PASSWORD})
    assert status == 200
    before = await market.db.fetchval("SELECT COUNT(*) FROM sessions WHERE user_id = %s", (here.id,))
    with pytest.raises(Unauthenticated):
        await market.accounts._new_session(await market.accounts.get(here.id), epoch=checked)  # the late log-in
    assert await market.db.fetchval("SELECT COUNT(*) FROM sessions WHERE user_id = %s", (here.id,)) == before
    assert await _log_in(client, here.user["email"], NEW_PASSWORD) == 200  # a log-in under the new one works


async def test_a_deleted_account_leaves_no_name_in_others_notifications_or_chat_and_no_photos_or_bank_tokens(
        client: TestClient, bank: Bank) -> None:
    market = client.app[MARKET]
    owner, leaver = await sign_up(client, "남아있는주인"), await sign_up(client, "곧떠날이웃")
    tent = await owner.new_item(title="몽골텐트")
    status, opened = await leaver.call("POST", f"/api/items/{tent['id']}/room")
    assert status in (200, 201), opened
    room = opened["room"]["id"]
    await market.chat.send(leaver.id, "곧떠날이웃", room, "주말에 빌릴 수 있을까요?")
    await market.chat.archive.archive_older_than(timedelta(0))  # the room's history moves to S3 as it was
    assert await market.db.fetchval("SELECT COUNT(*) FROM messages WHERE room_id = %s", (room,)) == 0
    status, page = await owner.call("GET", "/api/me/notifications")
    assert any("곧떠날이웃" in n["text"] for n in page["notifications"]), page
    table = await leaver.new_item(title="캠핑 테이블")
    form = FormData()
    form.add_field("photo", image_bytes(), filename="t.jpg", content_type="image/jpeg")
    status, body = await leaver.call("POST", f"/api/items/{table['id']}/photos", data=form)
    assert status == 201, body
    photo_keys = [k for r in await market.db.fetchall("SELECT object_key, thumb_key FROM item_photos WHERE item_id = %s",
                                                      (table["id"],)) for k in (r["object_key"], r["thumb_key"])]
    assert len(photo_keys) == 2 and all([await market.store.get(k) for k in photo_keys])
    await link(market, bank, leaver.id, 0, "곧떠날이웃")

    status, bye = await leaver.call("DELETE", "/api/me", json={"password": "rent4you"})
    assert status == 200, bye

    status, page = await owner.call("GET", "/api/me/notifications")
    texts = [n["text"] for n in page["notifications"]]
    assert not any("곧떠날이웃" in t for t in texts) and "탈퇴한 이웃님이 몽골텐트에 대해 문의했어요." in texts, texts
    status, history = await owner.call("GET", f"/api/rooms/{room}/messages")
    assert status == 200, history
    senders = {m["sender"]["name"] for m in history["messages"] if m.get("sender", {}).get("kind") == "user"}
    assert senders == {"탈퇴한 이웃"}, history
    for segment in await market.chat.archive.segments(room):  # nor is it kept as a sender in the archive itself
        stored = await market.store.get(segment["object_key"])
        assert stored is not None
        records = [json.loads(line) for line in gzip.decompress(stored.body).decode().splitlines()]
        assert {r["sender_name"] for r in records if r["sender_kind"] == "user"} == {"탈퇴한 이웃"}
    for key in photo_keys:
        assert await market.store.get(key) is None  # gone from the public photo store
    assert await market.db.fetchval("SELECT COUNT(*) FROM bank_links WHERE user_id = %s", (leaver.id,)) == 0
    assert await market.db.fetchval("SELECT COUNT(*) FROM bank_link_drops WHERE user_id = %s AND closed_at IS NULL",
                                    (leaver.id,)) == 1  # for an operator to close at the bank


@pytest.mark.parametrize("nickname", ["true", "10", "민수"])
async def test_leaving_rewrites_no_message_of_anyone_whatever_the_nickname(client: TestClient, nickname: str) -> None:
    """A nickname is never replaced as a substring of stored messages: "true" inside card JSON, "10" inside an
    amount or "민수" inside "김민수" stay as they were (what the bot said is the record of what was said)."""
    market = client.app[MARKET]
    owner, leaver = await sign_up(client, "김민수"), await sign_up(client, nickname)
    tent = await owner.new_item(title="몽골텐트 10인용", price_per_day=10000)
    status, opened = await leaver.call("POST", f"/api/items/{tent['id']}/room")
    assert status in (200, 201), opened
    room = opened["room"]["id"]
    await market.chat.post(room, "김민수님, 10,000원이 들어왔어요. true",
                           body={"buttons": [{"label": "확인", "disabled": True}], "amount": 10000})
    status, before = await owner.call("GET", f"/api/rooms/{room}/messages")
    assert status == 200, before
    stored = await market.db.fetchall("SELECT seq, text, body FROM messages WHERE room_id = %s ORDER BY seq", (room,))

    status, bye = await leaver.call("DELETE", "/api/me", json={"password": "rent4you"})
    assert status == 200, bye

    assert await market.db.fetchall("SELECT seq, text, body FROM messages WHERE room_id = %s ORDER BY seq",
                                     (room,)) == stored
    status, after = await owner.call("GET", f"/api/rooms/{room}/messages")
    assert status == 200, after
    assert [m for m in after["messages"] if m.get("sender", {}).get("kind") != "user"] == \
        [m for m in before["messages"] if m.get("sender", {}).get("kind") != "user"]
    status, rooms = await owner.call("GET", "/api/rooms")
    assert status == 200, rooms


async def test_leaving_deletes_the_photos_of_every_item_listed_hidden_or_deleted_before(client: TestClient) -> None:
    market = client.app[MARKET]
    leaver = await sign_up(client)
    keys = []
    for title in ("캠핑 의자", "접이식 테이블", "랜턴"):
        item = await leaver.new_item(title=title)
        form = FormData()
        form.add_field("photo", image_bytes(), filename="p.jpg", content_type="image/jpeg")
        status, body = await leaver.call("POST", f"/api/items/{item['id']}/photos", data=form)
        assert status == 201, body
        keys += [k for r in await market.db.fetchall("SELECT object_key, thumb_key FROM item_photos WHERE item_id = %s",
                                                     (item["id"],)) for k in (r["object_key"], r["thumb_key"])]
        if title == "접이식 테이블":
            status, body = await leaver.call("PATCH", f"/api/items/{item['id']}", json={"status": "hidden"})
            assert status == 200, body
        if title == "랜턴":
            status, body = await leaver.call("DELETE", f"/api/items/{item['id']}")
            assert status in (200, 204), body
    assert len(keys) == 6 and all([await market.store.get(k) for k in keys])

    status, bye = await leaver.call("DELETE", "/api/me", json={"password": "rent4you"})
    assert status == 200, bye
    assert [k for k in keys if await market.store.get(k) is not None] == []
    assert await market.db.fetchval("SELECT COUNT(*) FROM item_photos p JOIN items i ON i.id = p.item_id"
                                    " WHERE i.owner_id = %s", (leaver.id,)) == 0


async def test_photos_the_store_could_not_delete_after_leaving_are_logged_by_key(
        client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    market = client.app[MARKET]
    leaver = await sign_up(client)
    item = await leaver.new_item(title="캠핑 의자")
    form = FormData()
    form.add_field("photo", image_bytes(), filename="p.jpg", content_type="image/jpeg")
    status, body = await leaver.call("POST", f"/api/items/{item['id']}/photos", data=form)
    assert status == 201, body
    keys = [k for r in await market.db.fetchall("SELECT object_key, thumb_key FROM item_photos WHERE item_id = %s",
                                                (item["id"],)) for k in (r["object_key"], r["thumb_key"])]
    market.deletion._store = BlobStore(market.store._s3, "no-such-bucket-for-photos")  # the store fails

    status, bye = await leaver.call("DELETE", "/api/me", json={"password": "rent4you"})
    assert status == 200, bye  # the account is gone all the same
    left = [r.getMessage() for r in caplog.records if "photo object(s) left in the store" in r.getMessage()]
    assert len(left) == 1 and all(k in left[0] for k in keys), caplog.text
