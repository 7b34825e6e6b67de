"""Nobody poses as the service or hides characters in what others read: nicknames that look like 빌리마켓, its
bot, its notices or its staff are refused however they are spelled; invisible characters leave names, titles and
descriptions; passwords guessers try first are refused; a review edit changes only what it sends."""

from __future__ import annotations

import unicodedata
from typing import Any

from aiohttp.test_utils import TestClient

from gateway.keys import MARKET
from tests.conftest import Person, sign_up
from tests.rentals.helpers import Bank, settled
from tests.social.test_naver import _callback, _consent, _profile, _to_naver

# Each poses as the service, its bot (빌리), its notices (알림) or its staff, in a spelling of its own.
POSING = [
    "빌리마켓", "빌리", "운영자", "알림", "bot", "admin",
    "ＢＩＬＬＩ",  # fullwidth
    "ａｄｍｉｎ",
    "\u0410dmin",  # Cyrillic А
    "\u0430dmin",  # Cyrillic а
    unicodedata.normalize("NFD", "빌리마켓"),  # decomposed jamo
    "ㅂㅣㄹㄹㅣ",  # compatibility jamo, letter by letter
    "빌\u200b리",  # a zero-width space inside
    "admin_1", "Admin2", "b0t", "BilliBot", "billi_market", "빌리봇", "알림_공식",
    "진짜빌리마켓", "동네운영자", "관리자",
    "BiIIiMarket",  # capital I for l: looks like BilliMarket in most fonts
    "빌리정산팀", "빌리고객센타", "정산봇", "빌리상담원", "빌리공식계정",  # what a scammer in a deal room would pick
]
ORDINARY = ["빌리는곰", "알림손님", "badminton", "bottle", "공식대로", "민지네캠핑", "김지원", "센터장"]


async def _sign_up(client: TestClient, nickname: str, password: str = "rent4you", email: str = "new@example.com",
                   ) -> tuple[int, dict[str, Any]]:
    async with client.post("/api/auth/signup", json={"email": email, "nickname": nickname,
                                                     "password": password}) as resp:
        answer = resp.status, await resp.json()
    client.session.cookie_jar.clear()  # people act through their bearer token; the client stays anonymous
    return answer


async def _users(client: TestClient) -> int:
    return int(await client.app[MARKET].db.fetchval("SELECT COUNT(*) FROM users"))


def _refused(status: int, body: dict[str, Any], code: str, field: str) -> None:
    assert status == 400, body
    assert body["error"]["code"] == code and body["error"]["field"] == field, body
    assert not body["error"]["message"].isascii()  # said in Korean


# -- nicknames ---------------------------------------------------------------------------------------------------
async def test_nicknames_that_pose_as_the_service_are_refused_at_sign_up(client: TestClient) -> None:
    for nickname in POSING:
        status, body = await _sign_up(client, nickname)
        assert status == 400, (nickname, body)
        assert body["error"]["code"] == "account.reserved_nickname", (nickname, body)
        assert body["error"]["field"] == "nickname"
        assert "운영진" in body["error"]["message"]
    assert await _users(client) == 0


async def test_ordinary_names_near_the_reserved_words_are_welcome(client: TestClient) -> None:
    for n, nickname in enumerate(ORDINARY):
        status, body = await _sign_up(client, nickname, email=f"plain{n}@example.com")
        assert status == 201, (nickname, body)
        assert body["user"]["nickname"] == nickname


async def test_a_profile_change_to_a_name_that_poses_as_the_service_changes_nothing(client: TestClient) -> None:
    person = await sign_up(client, "평범한이웃")
    for nickname in POSING:
        status, body = await person.call("PATCH", "/api/me", json={"nickname": nickname, "locale": "en"})
        assert status == 400, (nickname, body)
        assert body["error"]["code"] == "account.reserved_nickname", (nickname, body)
    _, me = await person.call("GET", "/api/me")
    assert (me["user"]["nickname"], me["user"]["locale"]) == ("평범한이웃", "ko")


async def test_a_naver_nickname_that_poses_as_the_service_is_never_taken(client: TestClient) -> None:
    profile = await _profile(client, "빌리마켓")
    status, page, token = await _callback(client, await _consent(await _to_naver(client), profile))
    assert status == 200 and token is None and "닉네임" in page  # asked to pick one, no account made
    assert 'value="빌리마켓"' not in page  # and not offered the posing one back
    pending = page.split('name="pending" value="')[1].split('"')[0]
    async with client.post("/api/auth/naver/complete", json={"pending": pending, "nickname": "운영자"}) as resp:
        _refused(resp.status, await resp.json(), "account.reserved_nickname", "nickname")
    async with client.post("/api/auth/naver/complete", json={"pending": pending, "nickname": "네이버손님"}) as resp:
        assert resp.status == 201
        assert (await resp.json())["user"]["nickname"] == "네이버손님"
    assert await _users(client) == 1


# -- invisible characters -------------------------------------------------------------------------------------
async def test_bidi_controls_and_zero_width_characters_leave_a_nickname(client: TestClient) -> None:
    status, body = await _sign_up(client, "\u202e민\u200d지\u2066\u200b\u2069\ufeff")
    assert status == 201, body
    assert body["user"]["nickname"] == "민지"
    person = Person(client, body["token"], body["user"])
    status, body = await person.call("PATCH", "/api/me", json={"nickname": "\u200f새\u200c이\u2060름\u200e"})
    assert status == 200, body
    assert body["user"]["nickname"] == "새이름"


async def test_invisible_characters_leave_item_titles_and_descriptions_but_emoji_sequences_stay(
        client: TestClient) -> None:
    owner = await sign_up(client)
    coder, fire = "\U0001F469\u200d\U0001F4BB", "\u2764\ufe0f\u200d\U0001F525"  # 👩‍💻 and ❤️‍🔥, joined by ZWJ
    item = await owner.new_item(title=f"\u202e텐트\u200d대여\u2067 {coder}",
                                description=f"설명\u200b입니다\u2060\ufeff\n{fire} 좋아요\u200d\u3164")
    assert item["title"] == f"텐트대여 {coder}"
    assert item["description"] == f"설명입니다\n{fire} 좋아요"
    status, body = await owner.call("PATCH", f"/api/items/{item['id']}", json={"title": "의자\u200d\u202a세트"})
    assert status == 200, body
    assert body["item"]["title"] == "의자세트"


# -- passwords ----------------------------------------------------------------------------------------------------
async def test_common_passwords_are_refused(client: TestClient) -> None:
    for password in ("password1", "qwerty123", "QWERTY123", "qwer1234", "1q2w3e4r"):
        status, body = await _sign_up(client, "흔한비번", password)
        _refused(status, body, "account.common_password", "password")
    assert await _users(client) == 0


async def test_a_password_that_is_the_persons_own_name_is_refused(client: TestClient) -> None:
    status, body = await _sign_up(client, "바다곰", "Sunny2024", email="sunny2024@example.com")
    _refused(status, body, "account.password_is_name", "password")
    status, body = await _sign_up(client, "Camper77x", "camper77x", email="other@example.com")
    _refused(status, body, "account.password_is_name", "password")
    assert await _users(client) == 0


async def test_a_long_passphrase_needs_no_digit_but_a_password_has_at_most_128_characters(client: TestClient) -> None:
    status, body = await _sign_up(client, "긴비번", "x" * 129)
    _refused(status, body, "account.weak_password", "password")
    assert "128" in body["error"]["message"]
    passphrase = "초록 텐트 아래 고양이"
    status, body = await _sign_up(client, "긴비번", passphrase)
    assert status == 201, body
    async with client.post("/api/auth/login", json={"email": "new@example.com", "password": passphrase}) as r:
        assert r.status == 200


# -- reviews --------------------------------------------------------------------------------------------------------
async def test_a_review_edit_that_sends_only_stars_keeps_the_text(client: TestClient) -> None:
    market = client.app[MARKET]
    assert market.config.bank_url
    cid, _, borrower = await settled(market, Bank(market.config.bank_url))
    review = await market.reviews.write(borrower, cid, "owner", 3, "시간 약속을 잘 지켰어요")
    session = await market.accounts.session_for(borrower)
    person = Person(client, session.token, session.user.private())
    status, body = await person.call("PATCH", f"/api/reviews/{review['id']}", json={"stars": 5})
    assert status == 200, body
    assert (body["review"]["stars"], body["review"]["text"]) == (5, "시간 약속을 잘 지켰어요")
    status, body = await person.call("PATCH", f"/api/reviews/{review['id']}", json={"text": "아주 친절해요"})
    assert status == 200, body
    assert (body["review"]["stars"], body["review"]["text"]) == (5, "아주 친절해요")
    status, body = await person.call("PATCH", f"/api/reviews/{review['id']}", json={})
    assert status == 400 and body["error"]["code"] == "input.nothing_to_change"
