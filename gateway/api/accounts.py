"""REST for accounts: sign-up, log-in, log-out (here or everywhere), password change and reset, my profile and
profile photo, leaving. Whenever sessions end, their open chat sockets are hung up on every node."""

from __future__ import annotations

from aiohttp import web

from gateway.http import (
    clear_session_cookie,
    json_body,
    json_response,
    locale_of,
    require_user,
    set_device_cookie,
    set_session_cookie,
    uploaded_files,
)
from gateway.keys import CHAT, CLIENT_ADDRESSES, CONFIG, DEVICE_COOKIE, MARKET, SESSION_TOKEN
from gateway.routing import Access, Route
from market.messages import render
from market.people.accounts import token_hash

_SIGNUP = {"type": "object", "required": ["email", "nickname", "password"], "properties": {
    "email": {"type": "string", "format": "email", "maxLength": 254},
    "nickname": {"type": "string", "minLength": 2, "maxLength": 20},
    "password": {"type": "string", "minLength": 8, "maxLength": 128},
    "locale": {"type": "string", "enum": ["ko", "en"]}}}
_LOGIN = {"type": "object", "required": ["email", "password"], "properties": {
    "email": {"type": "string", "minLength": 1}, "password": {"type": "string", "minLength": 1}}}
_PASSWORD = {"type": "object", "required": ["current", "new"], "properties": {
    "current": {"type": "string"}, "new": {"type": "string", "minLength": 8, "maxLength": 128}}}
_RESET = {"type": "object", "required": ["email"], "properties": {
    "email": {"type": "string", "minLength": 1, "maxLength": 254}}}
_RESET_CONFIRM = {"type": "object", "required": ["token", "password"], "properties": {
    "token": {"type": "string", "minLength": 1}, "password": {"type": "string", "minLength": 8, "maxLength": 128}}}
_LEAVE = {"type": "object", "properties": {
    "password": {"type": "string"},
    "confirm": {"type": "boolean", "description": "계정에 비밀번호가 없을 때 (네이버)"}}}
_PROFILE = {"type": "object", "properties": {
    "nickname": {"type": "string", "minLength": 2, "maxLength": 20}, "locale": {"type": "string", "enum": ["ko", "en"]}}}


async def sign_up(request: web.Request) -> web.Response:
    session = await request.app[MARKET].accounts.sign_up(await json_body(request),
                                                         source=request.app[CLIENT_ADDRESSES].of(request))
    response = json_response({"user": session.user.private(), "token": session.token}, status=201)
    set_session_cookie(request, response, session)
    return response


async def log_in(request: web.Request) -> web.Response:
    session = await request.app[MARKET].accounts.log_in(await json_body(request),
                                                        source=request.app[CLIENT_ADDRESSES].of(request),
                                                        device=request.cookies.get(DEVICE_COOKIE))
    response = json_response({"user": session.user.private(), "token": session.token})
    set_session_cookie(request, response, session)
    return response


async def log_out(request: web.Request) -> web.Response:
    token = request.get(SESSION_TOKEN)
    if token:
        await request.app[MARKET].accounts.log_out(token)
        await request.app[CHAT].hang_up([token_hash(token)])  # its open chat sockets too, on every node
    response = json_response({"ok": True})
    clear_session_cookie(response, device=True)
    return response


async def log_out_everywhere(request: web.Request) -> web.Response:
    user = require_user(request)
    ended = await request.app[MARKET].accounts.log_out_everywhere(user.id)
    await request.app[CHAT].hang_up(ended)
    response = json_response({"ok": True, "message": render("account.logged_out_everywhere", user.locale)})
    clear_session_cookie(response, device=True)
    return response


async def change_password(request: web.Request) -> web.Response:
    """Every other session ends; this one stays, and this browser gets a new known-device token (the change voids
    every one the account had)."""
    user = require_user(request)
    token = request[SESSION_TOKEN]
    assert token is not None
    accounts = request.app[MARKET].accounts
    ended = await accounts.change_password(user.id, token, await json_body(request))
    await request.app[CHAT].hang_up(ended)
    response = json_response({"ok": True, "message": render("account.password_changed", user.locale)})
    set_device_cookie(request, response, await accounts.device_token(user.id))
    return response


async def request_password_reset(request: web.Request) -> web.Response:
    """The same answer whether or not the address has an account."""
    await request.app[MARKET].password_resets.request(await json_body(request),
                                                      source=request.app[CLIENT_ADDRESSES].of(request))
    return json_response({"ok": True, "message": render("account.reset_sent", locale_of(request))})


async def confirm_password_reset(request: web.Request) -> web.Response:
    """Every session of the person ends, and a new one begins in this browser."""
    session, ended = await request.app[MARKET].password_resets.confirm(await json_body(request))
    await request.app[CHAT].hang_up(ended)
    response = json_response({"user": session.user.private(), "token": session.token})
    set_session_cookie(request, response, session)
    return response


async def delete_me(request: web.Request) -> web.Response:
    user = require_user(request)
    ended = await request.app[MARKET].deletion.delete(user.id, await json_body(request))
    await request.app[CHAT].hang_up(ended)
    response = json_response({"ok": True, "message": render("account.deleted", user.locale)})
    clear_session_cookie(response, device=True)
    return response


async def me(request: web.Request) -> web.Response:
    return json_response({"user": require_user(request).private()})


async def update_me(request: web.Request) -> web.Response:
    user = await request.app[MARKET].accounts.update_profile(require_user(request), await json_body(request))
    return json_response({"user": user.private()})


async def set_profile_photo(request: web.Request) -> web.Response:
    user = require_user(request)
    config = request.app[CONFIG]
    market = request.app[MARKET]
    async with market.uploads.admit(user.id):
        files = await uploaded_files(request, max_files=1, max_bytes=config.max_upload_bytes)
        user = await market.accounts.set_profile_photo(user, files[0])
    return json_response({"user": user.private()})


ROUTES = [
    Route("POST", "/api/auth/signup", sign_up, "회원 가입 (e-mail, nickname, password)", "accounts",
          access=Access.ANYONE, body=_SIGNUP,
          responses={201: "Created; the session cookie is set and the token returned",
                     409: "The e-mail address (account.email_taken) or the nickname (account.nickname_taken) is "
                          "taken",
                     503: "Password hashing busy (account.busy); Retry-After says when to try again"}),
    Route("POST", "/api/auth/login", log_in, "로그인", "accounts", access=Access.ANYONE, body=_LOGIN,
          responses={200: "Logged in; the session cookie is set and the token returned",
                     429: "This address must wait before trying again (account.login_throttled); see Retry-After",
                     503: "Password hashing busy (account.busy) or the guessing counters unreachable "
                          "(service.unavailable); Retry-After says when to try again"}),
    Route("POST", "/api/auth/logout", log_out, "로그아웃", "accounts", access=Access.ANYONE),
    Route("POST", "/api/auth/logout-everywhere", log_out_everywhere, "모든 기기에서 로그아웃", "accounts",
          access=Access.SELF),
    Route("POST", "/api/auth/password-reset", request_password_reset,
          "비밀번호 재설정 링크 받기 (가입 여부와 관계없이 같은 답, 주소마다 횟수 제한)", "accounts",
          access=Access.ANYONE, body=_RESET,
          responses={200: "The same answer for every address",
                     429: "Too many links asked for this e-mail address, or from this client address"}),
    Route("POST", "/api/auth/password-reset/confirm", confirm_password_reset,
          "새 비밀번호 정하기 (메일의 링크, 30분 안에 한 번; 모든 세션이 끝나고 여기서 로그인)", "accounts",
          access=Access.ANYONE, body=_RESET_CONFIRM),
    Route("POST", "/api/me/password", change_password, "비밀번호 변경 (다른 기기는 로그아웃)", "accounts",
          access=Access.SELF, body=_PASSWORD),
    Route("GET", "/api/me", me, "내 정보", "accounts", access=Access.SELF),
    Route("PATCH", "/api/me", update_me, "내 정보 수정 (닉네임, 언어)", "accounts", access=Access.SELF, body=_PROFILE),
    Route("DELETE", "/api/me", delete_me, "탈퇴 (진행 중인 대여나 정산이 없을 때; 리뷰는 '탈퇴한 이웃'으로 남아요)",
          "accounts", access=Access.SELF, body=_LEAVE,
          responses={200: "Deleted; every session ended", 409: "A rental or money is still open"}),
    Route("PUT", "/api/me/photo", set_profile_photo, "프로필 사진 올리기", "accounts",
          access=Access.SELF, multipart=True),
]
