"""REST for accounts: sign-up, log-in, log-out, my profile and profile photo."""

from __future__ import annotations

from aiohttp import web

from gateway.http import (json_response, clear_session_cookie, json_body, require_user, set_session_cookie, uploaded_files)
from gateway.keys import CHAT, CONFIG, MARKET, SESSION_TOKEN
from gateway.routing import Route
from market.accounts import token_hash

_SIGNUP = {"type": "object", "required": ["email", "nickname", "password"], "properties": {
    "email": {"type": "string", "format": "email", "maxLength": 254},
    "nickname": {"type": "string", "minLength": 2, "maxLength": 20},
    "password": {"type": "string", "minLength": 8, "maxLength": 128},
    "locale": {"type": "string", "enum": ["ko", "en"]}}}
_LOGIN = {"type": "object", "required": ["email", "password"], "properties": {
    "email": {"type": "string"}, "password": {"type": "string"}}}
_PROFILE = {"type": "object", "properties": {
    "nickname": {"type": "string", "minLength": 2, "maxLength": 20}, "locale": {"type": "string", "enum": ["ko", "en"]}}}


async def sign_up(request: web.Request) -> web.Response:
    session = await request.app[MARKET].accounts.sign_up(await json_body(request))
    response = json_response({"user": session.user.private(), "token": session.token}, status=201)
    set_session_cookie(request, response, session)
    return response


async def log_in(request: web.Request) -> web.Response:
    session = await request.app[MARKET].accounts.log_in(await json_body(request))
    response = json_response({"user": session.user.private(), "token": session.token})
    set_session_cookie(request, response, session)
    return response


async def log_out(request: web.Request) -> web.Response:
    token = request.get(SESSION_TOKEN)
    if token:
        await request.app[MARKET].accounts.log_out(token)
        await request.app[CHAT].hang_up([token_hash(token)])  # its open chat sockets too, on every node
    response = json_response({"ok": True})
    clear_session_cookie(response)
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
    Route("POST", "/api/auth/signup", sign_up, "회원 가입 (e-mail, nickname, password)", "accounts", body=_SIGNUP,
          responses={201: "Created; the session cookie is set and the token returned"}),
    Route("POST", "/api/auth/login", log_in, "로그인", "accounts", body=_LOGIN),
    Route("POST", "/api/auth/logout", log_out, "로그아웃", "accounts"),
    Route("GET", "/api/me", me, "내 정보", "accounts", auth=True),
    Route("PATCH", "/api/me", update_me, "내 정보 수정 (닉네임, 언어)", "accounts", auth=True, body=_PROFILE),
    Route("PUT", "/api/me/photo", set_profile_photo, "프로필 사진 올리기", "accounts", auth=True, multipart=True),
]
