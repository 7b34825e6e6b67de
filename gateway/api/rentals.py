"""REST for BilliPay and rentals: linking a bank account (the bank's redirect comes back here), my linked
account, my contracts with their history and evidence photos. The rental steps themselves happen in chat.
"""

from __future__ import annotations

import html
from datetime import date

from aiohttp import web

from gateway.http import json_body, json_response, locale_of, public_base, require_user
from gateway.keys import CHAT, MARKET, USER
from gateway.routing import Access, Param, Route
from market.errors import Conflict, InvalidInput, MarketError, NotFound
from market.messages import render
from market.rentals import DatesTaken, private_to
from market.rentals.kdates import DateReading, describe, read_dates


def _callback_url(request: web.Request) -> str:
    return public_base(request) + "/billipay/callback"


def _page(title: str, text: str, status: int = 200, back: str = "/app") -> web.Response:
    body = (f'<!doctype html><html lang="ko"><meta charset="utf-8"><meta name="viewport" content="width=device-width">'
            f"<title>{html.escape(title)}</title><body><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>"
            f'<p><a href="{html.escape(back)}">빌리마켓 앱으로 돌아가기</a></p></body></html>')
    return web.Response(text=body, content_type="text/html", status=status)


async def link_start(request: web.Request) -> web.StreamResponse:
    """A "계좌 연결하기" button's link: the single-use ticket from the chat says who and from which room."""
    market = request.app[MARKET]
    if market.billipay is None:
        return _page("빌리페이", render("pay.not_configured"), 503)
    user = request.get(USER)
    try:
        url = await market.billipay.follow_ticket(request.query.get("ticket"), user.id if user else None,
                                                  _callback_url(request))
    except MarketError as e:
        return _page("빌리페이", e.message(), 403 if e.kind.value == "forbidden" else 400)
    raise web.HTTPFound(url)


async def link_callback(request: web.Request) -> web.Response:
    market = request.app[MARKET]
    if market.billipay is None:
        return _page("빌리페이", render("pay.not_configured"), 503)
    q = request.query
    user = request.get(USER)
    try:
        done = await market.billipay.finish_link(q.get("state"), q.get("code"), error=q.get("error"),
                                                 session_user=user.id if user else None)
    except MarketError as e:  # someone else's session, or none: nothing linked, the link request still usable
        return _page("빌리페이 계좌 연결", e.message(), 403 if e.kind.value == "forbidden" else 400)
    account = done["account"]
    room = done.get("room")
    chat = request.app[CHAT]
    if room and chat.bot is not None:
        await chat.bot.after_link(int(room), done["user"], account)
    else:
        await market.rentals.payouts_for(done["user"])
    return _page("빌리페이 계좌 연결", f"{account['bank_name']} {account['account']} 계좌가 연결됐어요. 채팅으로 돌아가 주세요.",
                 back=f"/app#room={int(room)}" if room else "/app")


async def my_account(request: web.Request) -> web.Response:
    user = require_user(request)
    market = request.app[MARKET]
    account = await market.billipay.account(user.id) if market.billipay else None
    return json_response({"account": account})


async def unlink_account(request: web.Request) -> web.Response:
    user = require_user(request)
    market = request.app[MARKET]
    if market.billipay is None or not await market.billipay.unlink(user.id):
        raise NotFound("pay.no_link")
    return json_response({"ok": True})


async def link_url(request: web.Request) -> web.Response:
    """The bank's consent page address for the logged-in person (the widget's "계좌 연결" on my page)."""
    user = require_user(request)
    market = request.app[MARKET]
    if market.billipay is None:
        raise NotFound("pay.not_configured")
    return json_response({"url": await market.billipay.start_link(user.id, _callback_url(request))})


async def my_contracts(request: web.Request) -> web.Response:
    user = require_user(request)
    role = "owner" if request.query.get("role") == "owner" else "borrower"
    contracts = await request.app[MARKET].rentals.mine(user.id, role)
    return json_response({"contracts": [c.public() for c in contracts]})


async def request_rental(request: web.Request) -> web.Response:
    """A rental request from the widget's date picker (``start``/``end``) or typed dates (``dates``: 내일부터 3일)."""
    user = require_user(request)
    body = await json_body(request)
    market = request.app[MARKET]
    if isinstance(body.get("dates"), str):
        reading = read_dates(body["dates"], market.rentals.clock.today())
        if reading is None:
            raise InvalidInput("rental.bad_dates", field="dates")
        start, end = reading.start, reading.end
    else:
        try:
            start, end = date.fromisoformat(str(body.get("start"))), date.fromisoformat(str(body.get("end")))
        except ValueError:
            raise InvalidInput("rental.bad_dates", field="dates") from None
    try:
        c, created = await market.rentals.request(user.id, body.get("item_id"), start, end)
    except Conflict as e:
        if e.opened_room is not None:  # (refused, in a deal room it opened all the same: both are shown it)
            await request.app[CHAT].announce_room(*e.opened_room)
        if not isinstance(e, DatesTaken):
            raise
        return json_response({"error": {"code": e.code, "message": render(e.code, locale_of(request))},
                              "free": [{"start": s.isoformat(), "end": en.isoformat()} for s, en in e.free]},
                             status=409)
    if created:
        await request.app[CHAT].announce_room(c.room_id, [c.owner_id, c.borrower_id])
    return json_response({"contract": c.public()}, status=201)


async def quote(request: web.Request) -> web.Response:
    """What a rental of this item on these dates costs (the date picker shows it before anything is sent), and
    the words the picker sends: "12월 5일(토) ~ 12월 6일(일), 2일 빌리고 싶어요"."""
    market = request.app[MARKET]
    item = await market.items.detail(int(request.match_info["item_id"]), count_view=False)
    try:
        start = date.fromisoformat(str(request.query.get("start")))
        end = date.fromisoformat(str(request.query.get("end")))
    except ValueError:
        raise InvalidInput("rental.bad_dates", field="start") from None
    market.rentals.check_dates(start, end)  # the same rules as a request (market/rentals/availability.py)
    locale = locale_of(request)
    words = describe(DateReading(start, end), locale)
    return json_response({"quote": market.rentals.quote(item["price_per_day"], item["deposit"], start, end),
                          "dates": words, "message": f"{words} 빌리고 싶어요" if locale == "ko"
                          else f"I'd like to rent it: {words}"})


async def contract(request: web.Request) -> web.Response:
    user = require_user(request)
    rentals = request.app[MARKET].rentals
    c = await rentals.get(request.match_info["contract_id"], user.id)
    role = c.role(user.id) or ""
    return json_response({"contract": c.public(), "events": [private_to(e, role) for e in await rentals.events(c.id)],
                          "photos": await rentals.photos(c.id)})


ROUTES = [
    Route("GET", "/billipay/link", link_start, "계좌 연결 시작 (채팅 버튼의 링크)", "billipay", access=Access.ANYONE,
          query=(Param("ticket", "string", "채팅에서 받은 1회용 티켓", True),), responses={302: "To the bank"}),
    Route("GET", "/billipay/callback", link_callback, "은행 인증 후 돌아오는 주소", "billipay", access=Access.ANYONE,
          query=(Param("state", "string", required=True), Param("code", "string"), Param("error", "string"))),
    Route("GET", "/api/billipay/account", my_account, "연결된 계좌 (가려진 번호)", "billipay", access=Access.SELF),
    Route("DELETE", "/api/billipay/account", unlink_account, "계좌 연결 해제", "billipay", access=Access.SELF),
    Route("POST", "/api/billipay/link", link_url, "계좌 연결 주소 받기", "billipay", access=Access.SELF),
    Route("POST", "/api/contracts", request_rental, "대여 요청 (start/end 또는 dates 글자)", "rentals",
          access=Access.PERSON, body={"type": "object", "required": ["item_id"], "properties": {
              "item_id": {"type": "integer"}, "start": {"type": "string", "format": "date"},
              "end": {"type": "string", "format": "date"}, "dates": {"type": "string"}}},
          responses={201: "Requested", 409: "Dates taken (with the nearest free ranges in free)"}),
    Route("GET", "/api/contracts", my_contracts, "내 대여 (role=borrower|owner)", "rentals", access=Access.SELF,
          query=(Param("role", "string", "borrower 또는 owner"),)),
    Route("GET", r"/api/items/{item_id:\d{1,18}}/quote", quote, "이 날짜에 빌리면 얼마인지 (대여료, 수수료, 보증금, 합계)",
          "rentals", access=Access.ANYONE, query=(Param("start", "string", "시작일 YYYY-MM-DD", True),
                                                  Param("end", "string", "반납일 YYYY-MM-DD", True))),
    Route("GET", r"/api/contracts/{contract_id:\d{1,18}}", contract, "대여 한 건과 기록, 사진", "rentals",
          access=Access.PARTY),
]
