"""REST for the social side: Naver login (the browser's redirects and the API), my page, notifications and
their settings, reviews and replies, a person's public profile (rating, trust, reviews)."""

from __future__ import annotations

import html
import secrets

from aiohttp import web

from gateway.http import json_body, json_response, public_base, require_user, set_session_cookie
from gateway.keys import CONFIG, MARKET, SESSION_TOKEN, USER
from gateway.routing import Access, Param, Route
from market.errors import MarketError, NotFound
from market.messages import render
from market.people.accounts import token_hash
from market.people.mypage import my_page


BROWSER_COOKIE = "billi_naver"


def _naver(request: web.Request) -> object:
    naver = request.app[MARKET].naver
    if naver is None:
        raise NotFound("naver.not_configured")
    return naver


def _callback_url(request: web.Request) -> str:
    return public_base(request) + "/auth/naver/callback"


def _page(title: str, body: str, status: int = 200) -> web.Response:
    return web.Response(text=(f'<!doctype html><html lang="ko"><meta charset="utf-8">'
                              f'<meta name="viewport" content="width=device-width"><title>{html.escape(title)}</title>'
                              f"<body><h1>{html.escape(title)}</h1>{body}"
                              f'<p><a href="/">빌리마켓으로 돌아가기</a></p></body></html>'),
                        content_type="text/html", status=status)


async def naver_start(request: web.Request) -> web.StreamResponse:
    """네이버 아이디로 로그인 (or, with ?link=1 and a session, link Naver to my account)."""
    naver = _naver(request)
    user = request.get(USER)
    link = request.query.get("link") == "1"
    if link and user is None:
        raise web.HTTPFound("/")
    # binds the state to this browser (checked on the callback); a login begun in another tab keeps the same one
    browser = request.cookies.get(BROWSER_COOKIE) or secrets.token_urlsafe(24)
    url = await naver.start(_callback_url(request), browser=browser,  # type: ignore[attr-defined]
                            link_to=user.id if link and user else None)
    response = web.HTTPFound(url)
    response.set_cookie(BROWSER_COOKIE, browser, max_age=10 * 60, httponly=True, samesite="Lax",
                        secure=request.app[CONFIG].cookie_secure, path="/auth/naver")
    raise response


async def naver_callback(request: web.Request) -> web.StreamResponse:
    naver = _naver(request)
    q = request.query
    user = request.get(USER)
    token = request.get(SESSION_TOKEN)  # a link is recorded with the session it was added from
    try:
        result = await naver.finish(q.get("state"), q.get("code"), error=q.get("error"),  # type: ignore[attr-defined]
                                    browser=request.cookies.get(BROWSER_COOKIE),
                                    session_user=user.id if user else None,
                                    session_hash=token_hash(token) if token else None)
    except MarketError as e:
        status = {"conflict": 409, "forbidden": 403}.get(e.kind.value, 400)
        return _page("네이버 로그인", f"<p>{html.escape(e.message())}</p>", status)
    if result.action == "need_nickname":
        suggested = html.escape(result.suggested or "")
        form = (f'<p>{html.escape(render("naver.pick_nickname"))}</p>'
                f'<form method="post" action="/auth/naver/complete">'
                f'<input type="hidden" name="pending" value="{html.escape(result.pending or "")}">'
                f'<label>닉네임 <input name="nickname" value="{suggested}" minlength="2" maxlength="20" required>'
                f'</label> <button>가입하기</button></form>')
        return _page("네이버로 가입하기", form)
    response = web.HTTPFound("/")
    response.del_cookie(BROWSER_COOKIE, path="/auth/naver")
    if result.session is not None:
        set_session_cookie(request, response, result.session)
    raise response


async def naver_complete_form(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    try:
        session = await _naver(request).complete(form.get("pending"), form.get("nickname"))  # type: ignore[attr-defined]
    except MarketError as e:
        return _page("네이버로 가입하기", f"<p>{html.escape(e.message())}</p>", 400)
    response = web.HTTPFound("/")
    set_session_cookie(request, response, session)
    raise response


async def naver_complete(request: web.Request) -> web.Response:
    body = await json_body(request)
    session = await _naver(request).complete(body.get("pending"), body.get("nickname"))  # type: ignore[attr-defined]
    response = json_response({"token": session.token, "user": session.user.private()}, status=201)
    set_session_cookie(request, response, session)
    return response


async def naver_unlink(request: web.Request) -> web.Response:
    user = require_user(request)
    await _naver(request).unlink(user.id)  # type: ignore[attr-defined]
    return json_response({"ok": True})


async def page(request: web.Request) -> web.Response:
    user = require_user(request)
    return json_response(await my_page(request.app[MARKET], user.id))


async def notifications(request: web.Request) -> web.Response:
    user = require_user(request)
    q = request.query
    return json_response(await request.app[MARKET].notifications.page(user.id, q.get("before"), q.get("limit")))


async def notifications_read(request: web.Request) -> web.Response:
    user = require_user(request)
    body = await json_body(request)
    unread = await request.app[MARKET].notifications.mark_read(user.id, body.get("upto"))
    return json_response({"unread": unread})


async def prefs(request: web.Request) -> web.Response:
    user = require_user(request)
    return json_response({"prefs": await request.app[MARKET].notifications.prefs(user.id)})


async def set_prefs(request: web.Request) -> web.Response:
    user = require_user(request)
    body = await json_body(request)
    return json_response({"prefs": await request.app[MARKET].notifications.set_prefs(user.id, body)})


async def write_review(request: web.Request) -> web.Response:
    user = require_user(request)
    body = await json_body(request)
    review = await request.app[MARKET].reviews.write(user.id, request.match_info["contract_id"], body.get("about"),
                                                     body.get("stars"), body.get("text", ""))
    return json_response({"review": review}, status=201)


async def contract_reviews(request: web.Request) -> web.Response:
    user = require_user(request)
    market = request.app[MARKET]
    c = await market.rentals.get(request.match_info["contract_id"], user.id)
    return json_response({"reviews": await market.reviews.for_contract(c.id, user.id),
                          "can_write": await market.reviews.pending(user.id, c.id)})


async def edit_review(request: web.Request) -> web.Response:
    user = require_user(request)
    body = await json_body(request)
    review = await request.app[MARKET].reviews.edit(user.id, request.match_info["review_id"], body.get("stars"),
                                                    body.get("text"))
    return json_response({"review": review})


async def reply_review(request: web.Request) -> web.Response:
    user = require_user(request)
    body = await json_body(request)
    review = await request.app[MARKET].reviews.reply(user.id, request.match_info["review_id"], body.get("text"))
    return json_response({"review": review})


async def profile(request: web.Request) -> web.Response:
    market = request.app[MARKET]
    user = await market.accounts.get(int(request.match_info["user_id"]))
    return json_response({"user": user.public(), "rating": await market.reviews.rating(user.id),
                          "trust": await market.reviews.trust(user.id),
                          "reviews": await market.reviews.received(user.id, limit=20)})


_REVIEW = {"type": "object", "required": ["stars"], "properties": {
    "about": {"type": "string", "enum": ["owner", "borrower", "item"]}, "stars": {"type": "integer"},
    "text": {"type": "string", "maxLength": 1000}}}
_REVIEW_EDIT = {"type": "object", "description": "보낸 항목만 바뀌어요 (별점만 보내면 글은 그대로)", "properties": {
    "stars": {"type": "integer"}, "text": {"type": "string", "maxLength": 1000}}}
ROUTES = [
    Route("GET", "/auth/naver", naver_start, "네이버 아이디로 로그인 (link=1: 내 계정에 연결)", "naver",
          access=Access.ANYONE,
          query=(Param("link", "string", "1이면 로그인한 계정에 연결"),), responses={302: "To Naver"}),
    Route("GET", "/auth/naver/callback", naver_callback, "네이버 인증 후 돌아오는 주소", "naver", access=Access.ANYONE,
          query=(Param("state", "string", required=True), Param("code", "string"), Param("error", "string"))),
    Route("POST", "/auth/naver/complete", naver_complete_form, "네이버 가입 마치기 (닉네임 양식)", "naver",
          access=Access.ANYONE),
    Route("POST", "/api/auth/naver/complete", naver_complete, "네이버 가입 마치기 (닉네임)", "naver",
          access=Access.ANYONE, body={"type": "object", "required": ["pending", "nickname"], "properties": {
              "pending": {"type": "string"}, "nickname": {"type": "string"}}}, responses={201: "Signed up"}),
    Route("DELETE", "/api/auth/naver", naver_unlink, "네이버 연결 해제", "naver", access=Access.SELF),
    Route("GET", "/api/me/page", page, "마이페이지 (물건, 빌린 것, 빌려준 것, 찜, 리뷰, 평점, 계좌)", "me",
          access=Access.SELF),
    Route("GET", "/api/me/notifications", notifications, "알림", "me", access=Access.SELF,
          query=(Param("before", "integer"), Param("limit", "integer"))),
    Route("POST", "/api/me/notifications/read", notifications_read, "알림 읽음 (upto까지, 없으면 전부)", "me",
          access=Access.SELF, body={"type": "object", "properties": {"upto": {"type": "integer"}}}),
    Route("GET", "/api/me/notifications/prefs", prefs, "알림 설정", "me", access=Access.SELF),
    Route("PUT", "/api/me/notifications/prefs", set_prefs, "알림 설정 바꾸기 ({종류: true|false})", "me",
          access=Access.SELF, body={"type": "object", "additionalProperties": {"type": "boolean"}}),
    Route("POST", r"/api/contracts/{contract_id:\d{1,18}}/reviews", write_review, "리뷰 쓰기", "reviews",
          access=Access.PARTY, body=_REVIEW, responses={201: "Written"}),
    Route("GET", r"/api/contracts/{contract_id:\d{1,18}}/reviews", contract_reviews, "대여의 리뷰", "reviews",
          access=Access.PARTY),
    Route("PATCH", r"/api/reviews/{review_id:\d{1,18}}", edit_review, "리뷰 고치기 (7일 안)", "reviews",
          access=Access.AUTHOR, body=_REVIEW_EDIT),
    Route("POST", r"/api/reviews/{review_id:\d{1,18}}/reply", reply_review, "리뷰에 답글 (한 번)", "reviews",
          access=Access.REVIEWED,
          body={"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}),
    Route("GET", r"/api/users/{user_id:\d{1,18}}", profile, "프로필 (평점, 신뢰 정보, 리뷰)", "reviews",
          access=Access.ANYONE),
]
