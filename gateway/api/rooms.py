"""REST for chat rooms: my rooms, open the deal room of an item, history, read position, image messages."""

from __future__ import annotations

from aiohttp import web

from gateway.http import json_body, json_response, require_user, uploaded_files
from gateway.keys import CHAT, CONFIG, MARKET
from gateway.routing import Access, Param, Route


def _room_id(request: web.Request) -> int:
    return int(request.match_info["room_id"])


async def my_rooms(request: web.Request) -> web.Response:
    user = require_user(request)
    return json_response({"rooms": await request.app[MARKET].chat.rooms_for(user.id)})


async def open_deal_room(request: web.Request) -> web.Response:
    """문의하기: the deal room for this item and me, with a first message to suggest; on the first inquiry each
    person is introduced (the bot does it, the same as 문의하기 in the chat)."""
    user = require_user(request)
    market = request.app[MARKET]
    item_id = int(request.match_info["item_id"])
    chat = request.app[CHAT]
    if chat.bot is not None:
        opened = await chat.bot.open_deal(item_id, user.id)
        room_id, created, suggest = opened["open_room"], opened["created"], opened["suggest"]
    else:
        room, created = await market.chat.open_deal_room(item_id, user.id)
        room_id, suggest = room.id, ""
    rooms = {r["id"]: r for r in await market.chat.rooms_for(user.id)}
    return json_response({"room": rooms[room_id], "created": created, "suggest": suggest},
                         status=201 if created else 200)


async def deal(request: web.Request) -> web.Response:
    """The deal pinned on top of a deal room, as I see it (the item, dates, my amount, its state, my menu)."""
    user = require_user(request)
    room = await request.app[MARKET].chat.room(_room_id(request), user.id)
    chat = request.app[CHAT]
    view = await chat.bot.deal_view(room.id, user.id) if chat.bot is not None and room.kind == "deal" else None
    return json_response({"deal": view})


async def room_messages(request: web.Request) -> web.Response:
    user = require_user(request)
    q = request.query
    page = await request.app[MARKET].chat.history(user.id, _room_id(request), before_seq=q.get("before_seq"),
                                                  after_seq=q.get("after_seq"), limit=q.get("limit", 50))
    return json_response(page)


async def mark_read(request: web.Request) -> web.Response:
    user = require_user(request)
    body = await json_body(request)
    state = await request.app[MARKET].chat.mark_read(user.id, _room_id(request), body.get("seq"))
    return json_response(state)


async def send_image(request: web.Request) -> web.Response:
    """An image message (the photo is checked and stored by the market), then delivered to the room."""
    user = require_user(request)
    market = request.app[MARKET]
    config = request.app[CONFIG]
    await market.chat.room(_room_id(request), user.id)  # a stranger learns nothing, not even upload limits
    async with market.uploads.admit(user.id):
        files = await uploaded_files(request, max_files=1, max_bytes=config.max_upload_bytes)
        sent = await market.chat.send_image(user.id, user.nickname, _room_id(request), files[0],
                                            caption=request.query.get("caption", ""),
                                            client_msg_id=request.query.get("client_msg_id"))
    if not sent.duplicate:
        chat = request.app[CHAT]
        await chat.publish(sent)
        if chat.bot is not None:  # a photo for a flow that asked for one (listing an item)
            await chat.bot.on_message(sent.message.room_id, sent.message.to_wire(), user.id)
    return json_response({"message": sent.message.to_wire(), "duplicate": sent.duplicate},
                         status=200 if sent.duplicate else 201)


_ROOM = r"/api/rooms/{room_id:\d{1,18}}"
ROUTES = [
    Route("GET", "/api/rooms", my_rooms, "내 대화방 (도우미 방 먼저, 안 읽은 수, 마지막 메시지)", "chat",
          access=Access.SELF),
    Route("POST", r"/api/items/{item_id:\d{1,18}}/room", open_deal_room, "이 물건 문의하기 (거래 대화방 열기)", "chat",
          access=Access.PERSON, responses={200: "Existing room", 201: "Created"}),
    Route("GET", _ROOM + "/deal", deal, "대화방 위에 고정된 거래 (물건, 날짜, 금액, 상태)", "chat",
          access=Access.MEMBER),
    Route("GET", _ROOM + "/messages", room_messages, "대화 기록 (before_seq 이전 또는 after_seq 이후)", "chat",
          access=Access.MEMBER, query=(Param("before_seq", "integer"), Param("after_seq", "integer"),
                            Param("limit", "integer", "1–100, 기본 50"))),
    Route("POST", _ROOM + "/read", mark_read, "여기까지 읽음", "chat", access=Access.MEMBER,
          body={"type": "object", "required": ["seq"], "properties": {"seq": {"type": "integer"}}}),
    Route("POST", _ROOM + "/images", send_image, "사진 메시지 보내기", "chat", access=Access.MEMBER, multipart=True,
          query=(Param("caption", "string"), Param("client_msg_id", "string")), responses={201: "Sent"}),
]
