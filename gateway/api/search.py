"""REST for keyword search and title autocomplete."""

from __future__ import annotations

from aiohttp import web

from gateway.http import json_response, within_limit
from gateway.keys import MARKET
from gateway.routing import Access, Param, Route
from market.validation import KOREA_LAT, KOREA_LNG

_SEARCH = (
    Param("q", "string", "검색어 (최대 200자)", True),
    Param("lat", "number", "위도 (주면 반경 안에서만; 경도와 함께)", bounds=KOREA_LAT),
    Param("lng", "number", "경도", bounds=KOREA_LNG),
    Param("radius_m", "integer", "반경(m), 기본 6000"), Param("category", "integer", "카테고리 id (어느 단계든)"),
    Param("price_min", "integer"), Param("price_max", "integer"), Param("deposit_min", "integer"),
    Param("deposit_max", "integer"), Param("condition", "string", "상,중,하 중 쉼표로"),
    Param("available_from", "string", "YYYY-MM-DD"), Param("available_until", "string", "YYYY-MM-DD"),
    Param("limit", "integer", "1–50, 기본 20"), Param("cursor", "string", "이전 페이지의 next_cursor"),
)


async def search(request: web.Request) -> web.Response:
    market = request.app[MARKET]
    await within_limit(request, market.limits.search)
    return json_response(await market.search(dict(request.query)))


async def complete(request: web.Request) -> web.Response:
    titles = await request.app[MARKET].complete(request.query.get("q", ""))
    return json_response({"suggestions": titles})


ROUTES = [
    Route("GET", "/api/search", search, "키워드 검색 (관련도 순, 거리·최신·평점으로 동점 정리, 결과 없으면 추천 검색어)",
          "search", access=Access.ANYONE, query=_SEARCH),
    Route("GET", "/api/search/complete", complete, "제목 자동완성 (입력 중인 글자로)", "search", access=Access.ANYONE,
          query=(Param("q", "string", "지금까지 입력한 글자", True),)),
]
