"""REST for items: list, edit, delete, photos, detail, my items, nearby, wishes and categories."""

from __future__ import annotations

from aiohttp import web

from gateway.http import client_key, json_body, json_response, require_user, uploaded_files, within_limit
from gateway.keys import CONFIG, MARKET, USER
from gateway.routing import Access, Param, Route
from market.validation import KOREA_LAT, KOREA_LNG

_ITEM_PROPS = {
    "title": {"type": "string", "minLength": 2, "maxLength": 60},
    "description": {"type": "string", "maxLength": 2000},
    "category_id": {"type": "integer", "description": "a third-level (소분류) category id"},
    "price_per_day": {"type": "integer", "minimum": 100, "maximum": 1000000},
    "deposit": {"type": "integer", "minimum": 0, "maximum": 10000000},
    "condition": {"type": "string", "enum": ["상", "중", "하"]},
    "lat": {"type": "number", "minimum": KOREA_LAT[0], "maximum": KOREA_LAT[1]},
    "lng": {"type": "number", "minimum": KOREA_LNG[0], "maximum": KOREA_LNG[1]},
    "place_name": {"type": "string", "maxLength": 60},
    "available_from": {"type": "string", "format": "date"},
    "available_until": {"type": ["string", "null"], "format": "date"},
}
_CREATE = {"type": "object", "properties": _ITEM_PROPS,
           "required": ["title", "description", "category_id", "price_per_day", "deposit", "condition", "lat", "lng"]}
_UPDATE = {"type": "object", "properties": {**_ITEM_PROPS, "status": {"type": "string", "enum": ["available", "hidden"]}}}
_ORDER = {"type": "object", "required": ["order"], "properties": {"order": {"type": "array", "items": {"type": "integer"}}}}
_NEARBY = (
    Param("lat", "number", "위도", True, KOREA_LAT), Param("lng", "number", "경도", True, KOREA_LNG),
    Param("radius_m", "integer", "반경(m), 기본 6000"), Param("category", "integer", "카테고리 id (어느 단계든)"),
    Param("price_min", "integer"), Param("price_max", "integer"), Param("deposit_min", "integer"),
    Param("deposit_max", "integer"), Param("condition", "string", "상,중,하 중 쉼표로"),
    Param("available_from", "string", "YYYY-MM-DD"), Param("available_until", "string", "YYYY-MM-DD"),
    Param("status", "string", "available,reserved,rented 중 쉼표로"), Param("limit", "integer", "1–50, 기본 20"),
    Param("cursor", "string", "이전 페이지의 next_cursor"),
)


def _item_id(request: web.Request) -> int:
    return int(request.match_info["item_id"])


async def create_item(request: web.Request) -> web.Response:
    user = require_user(request)
    item = await request.app[MARKET].items.create(user.id, await json_body(request))
    return json_response({"item": item}, status=201)


async def get_item(request: web.Request) -> web.Response:
    user = request.get(USER)
    item = await request.app[MARKET].items.detail(_item_id(request), viewer_id=user.id if user else None,
                                                  viewer_key=client_key(request))
    return json_response({"item": item})


async def update_item(request: web.Request) -> web.Response:
    user = require_user(request)
    item = await request.app[MARKET].items.update(user.id, _item_id(request), await json_body(request))
    return json_response({"item": item})


async def delete_item(request: web.Request) -> web.Response:
    user = require_user(request)
    await request.app[MARKET].items.delete(user.id, _item_id(request))
    return json_response({"ok": True})


async def add_photos(request: web.Request) -> web.Response:
    user = require_user(request)
    config = request.app[CONFIG]
    market = request.app[MARKET]
    async with market.uploads.admit(user.id):
        files = await uploaded_files(request, max_files=config.max_photos_per_item,
                                     max_bytes=config.max_upload_bytes)
        photos = await market.items.add_photos(user.id, _item_id(request), files)
    return json_response({"photos": [p.to_dict() for p in photos]}, status=201)


async def delete_photo(request: web.Request) -> web.Response:
    user = require_user(request)
    photos = await request.app[MARKET].items.delete_photo(user.id, _item_id(request),
                                                          int(request.match_info["photo_id"]))
    return json_response({"photos": [p.to_dict() for p in photos]})


async def reorder_photos(request: web.Request) -> web.Response:
    user = require_user(request)
    body = await json_body(request)
    photos = await request.app[MARKET].items.reorder_photos(user.id, _item_id(request), body.get("order"))
    return json_response({"photos": [p.to_dict() for p in photos]})


async def my_items(request: web.Request) -> web.Response:
    user = require_user(request)
    return json_response({"items": await request.app[MARKET].items.owned_by(user.id)})


async def nearby(request: web.Request) -> web.Response:
    """(Counted as a search: the same limit covers both ways of searching.)"""
    market = request.app[MARKET]
    await within_limit(request, market.limits.search)
    return json_response(await market.nearby(dict(request.query)))


async def wish(request: web.Request) -> web.Response:
    user = require_user(request)
    count = await request.app[MARKET].wishes.add(user.id, _item_id(request))
    return json_response({"wished": True, "wish_count": count})


async def unwish(request: web.Request) -> web.Response:
    user = require_user(request)
    count = await request.app[MARKET].wishes.remove(user.id, _item_id(request))
    return json_response({"wished": False, "wish_count": count})


async def my_wishes(request: web.Request) -> web.Response:
    user = require_user(request)
    return json_response({"items": await request.app[MARKET].wishes.mine(user.id)})


async def categories(request: web.Request) -> web.Response:
    return json_response({"categories": request.app[MARKET].categories.tree()})


_ITEM = r"/api/items/{item_id:\d{1,18}}"
ROUTES = [
    Route("GET", "/api/categories", categories, "카테고리 트리 (대분류 > 중분류 > 소분류)", "items",
          access=Access.ANYONE),
    Route("POST", "/api/items", create_item, "물건 등록", "items", access=Access.SELF, body=_CREATE,
          responses={201: "Created"}),
    Route("GET", "/api/items/nearby", nearby, "내 주변 물건 (가까운 순, 필터, 커서 페이지)", "items",
          access=Access.ANYONE, query=_NEARBY),
    Route("GET", _ITEM, get_item, "물건 상세 (조회수 +1)", "items", access=Access.ANYONE),
    Route("PATCH", _ITEM, update_item, "물건 수정 (주인만)", "items", access=Access.OWNER, body=_UPDATE),
    Route("DELETE", _ITEM, delete_item, "물건 삭제 (주인만)", "items", access=Access.OWNER),
    Route("POST", _ITEM + "/photos", add_photos, "사진 올리기 (최대 10장)", "items",
          access=Access.OWNER, multipart=True,
          responses={201: "Created"}),
    Route("PUT", _ITEM + "/photos/order", reorder_photos, "사진 순서 바꾸기 (첫 장이 대표 사진)", "items",
          access=Access.OWNER, body=_ORDER),
    Route("DELETE", _ITEM + r"/photos/{photo_id:\d{1,18}}", delete_photo, "사진 삭제", "items", access=Access.OWNER),
    Route("PUT", _ITEM + "/wish", wish, "찜하기", "wishes", access=Access.PERSON),
    Route("DELETE", _ITEM + "/wish", unwish, "찜 취소", "wishes", access=Access.PERSON),
    Route("GET", "/api/me/items", my_items, "내 물건", "items", access=Access.SELF),
    Route("GET", "/api/me/wishes", my_wishes, "내 찜 목록", "wishes", access=Access.SELF),
]
