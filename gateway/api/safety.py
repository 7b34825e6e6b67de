"""REST for unwanted people: blocking a person (차단) and reporting a person or a listing (신고). The rules live
in ``market.people.blocks`` and ``market.people.reports``; this module only reads the request and says
the answer."""

from __future__ import annotations

from aiohttp import web

from gateway.http import json_body, json_response, require_user
from gateway.keys import MARKET
from gateway.routing import Access, Route
from market.people.reports import KINDS, MAX_NOTE, REASONS


async def block(request: web.Request) -> web.Response:
    user = require_user(request)
    await request.app[MARKET].blocks.block(user.id, int(request.match_info["user_id"]))
    return json_response({"blocked": True})


async def unblock(request: web.Request) -> web.Response:
    user = require_user(request)
    await request.app[MARKET].blocks.unblock(user.id, int(request.match_info["user_id"]))
    return json_response({"blocked": False})


async def my_blocks(request: web.Request) -> web.Response:
    user = require_user(request)
    return json_response({"blocks": await request.app[MARKET].blocks.mine(user.id)})


async def report(request: web.Request) -> web.Response:
    user = require_user(request)
    body = await json_body(request)
    filed, created = await request.app[MARKET].reports.file(user.id, body)
    return json_response({"report": filed}, status=201 if created else 200)


_PERSON = r"/api/people/{user_id:\d{1,18}}/block"
_REPORT = {"type": "object", "required": ["kind", "id", "reason"], "properties": {
    "kind": {"type": "string", "enum": list(KINDS)}, "id": {"type": "integer"},
    "reason": {"type": "string", "enum": list(REASONS),
               "description": ", ".join(f"{code}: {ko}" for code, (ko, _) in REASONS.items())},
    "note": {"type": "string", "maxLength": MAX_NOTE}}}
ROUTES = [
    Route("POST", _PERSON, block, "차단하기 (이 사람의 문의, 메시지, 대여 요청을 더 받지 않아요)", "safety", access=Access.PERSON),
    Route("DELETE", _PERSON, unblock, "차단 풀기", "safety", access=Access.PERSON),
    Route("GET", "/api/me/blocks", my_blocks, "내가 차단한 사람", "safety", access=Access.SELF),
    Route("POST", "/api/reports", report, "신고하기 (사람 또는 물건; 같은 대상은 한 번)", "safety", access=Access.PERSON,
          body=_REPORT, responses={201: "Filed", 200: "Already filed (unchanged)"}),
]
