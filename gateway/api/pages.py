"""The web widget's pages (jinja2, autoescaped): the chat app, log-in / sign-up, an item's page, my page, the
embeddable bubble script and its demo page, the service worker and the app manifest (installable on phones)."""

from __future__ import annotations

from pathlib import Path

import jinja2
from aiohttp import web

from bot import commands
from gateway.http import json_response
from gateway.keys import CONFIG, MARKET, USER
from gateway.routing import Access, Route
from gateway.static_files import compressed_page, fixed, page_cache
from market.errors import NotFound
from market.people.reports import REASONS
from web_widget.assets import catalogue

WIDGET = Path(__file__).resolve().parents[2] / "web_widget"
_TEMPLATES = jinja2.Environment(loader=jinja2.FileSystemLoader(WIDGET / "templates"), autoescape=True)
_TEMPLATES.globals["asset"] = lambda name: catalogue().url(name)  # {{ asset("app.js") }} → its hashed address
_CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self' {bank}; manifest-src 'self'; worker-src 'self'; "
        "frame-ancestors {ancestors}")


def _render(request: web.Request, name: str, *, frame: bool = False, **context: object) -> web.Response:
    config = request.app[CONFIG]
    html = _TEMPLATES.get_template(name).render(config=config, user=request.get(USER), **context)
    resp = compressed_page(request, html, **{"Cache-Control": page_cache(request)})
    ancestors = ("'self' " + config.widget_embed_origins).strip() if frame else "'none'"
    resp.headers["Content-Security-Policy"] = _CSP.format(ancestors=ancestors, bank="")
    if frame:
        resp.headers["X-Frame-Options"] = "SAMEORIGIN"
    return resp


async def app_page(request: web.Request) -> web.StreamResponse:
    if request.get(USER) is None:
        raise web.HTTPFound("/login" + ("?embed=1" if request.query.get("embed") else ""))
    return _render(request, "app.html", frame=True, embed=bool(request.query.get("embed")),
                   report_reasons=[(code, ko) for code, (ko, _) in REASONS.items()])


async def login_page(request: web.Request) -> web.StreamResponse:
    if request.get(USER) is not None:
        raise web.HTTPFound("/app")
    return _render(request, "login.html", frame=True, naver=request.app[MARKET].naver is not None)


async def forgot_password_page(request: web.Request) -> web.Response:
    return _render(request, "password_forgot.html")


async def reset_password_page(request: web.Request) -> web.Response:
    """Where a reset mail's link leads; the token rides in the fragment, which never reaches a server or a log."""
    return _render(request, "password_reset.html")


async def item_page(request: web.Request) -> web.Response:
    market = request.app[MARKET]
    user = request.get(USER)
    try:
        item = await market.items.detail(int(request.match_info["item_id"]), viewer_id=user.id if user else None,
                                         count_view=False)
    except NotFound:
        resp = _render(request, "item.html", item=None)
        resp.set_status(404)
        return resp
    rating = await market.reviews.rating(item["owner"]["id"])
    return _render(request, "item.html", item=item, rating=rating,
                   item_rating=await market.reviews.item_rating(item["id"]))


async def my_page(request: web.Request) -> web.StreamResponse:
    if request.get(USER) is None:
        raise web.HTTPFound("/login")
    return _render(request, "me.html")


async def embed_demo(request: web.Request) -> web.Response:
    return _render(request, "embed_demo.html")


async def service_worker(request: web.Request) -> web.Response:
    return fixed(request, **{"Service-Worker-Allowed": "/"})


async def manifest(request: web.Request) -> web.Response:
    return fixed(request)


async def widget_script(request: web.Request) -> web.Response:
    return fixed(request, **{"Access-Control-Allow-Origin": "*"})  # a script other sites include; it holds no data


async def bot_commands(request: web.Request) -> web.Response:
    """The slash-commands with their Korean (and English) usage, for the composer's autocomplete."""
    return json_response({"commands": [{"name": s.name, "aliases": list(s.aliases), "usage": s.usage_ko,
                                        "usage_en": s.usage_en, "summary": s.summary_ko, "summary_en": s.summary_en}
                                       for s in commands.SPECS]})


ROUTES = [
    Route("GET", "/app", app_page, "채팅 앱", "widget", access=Access.ANYONE),
    Route("GET", "/login", login_page, "로그인 / 가입", "widget", access=Access.ANYONE),
    Route("GET", "/password/forgot", forgot_password_page, "비밀번호 찾기 (재설정 링크 받기)", "widget",
          access=Access.ANYONE),
    Route("GET", "/password/reset", reset_password_page, "새 비밀번호 정하기 (메일의 링크)", "widget",
          access=Access.ANYONE),
    Route("GET", r"/items/{item_id:\d{1,18}}", item_page, "물건 페이지", "widget", access=Access.ANYONE),
    Route("GET", "/me", my_page, "마이페이지", "widget", access=Access.ANYONE),
    Route("GET", "/embed-demo", embed_demo, "다른 페이지에 넣은 채팅 버블 예시", "widget", access=Access.ANYONE),
    Route("GET", "/sw.js", service_worker, "서비스 워커 (앱 화면만 캐시)", "widget", access=Access.ANYONE),
    Route("GET", "/manifest.webmanifest", manifest, "앱 설치 정보", "widget", access=Access.ANYONE),
    Route("GET", "/widget.js", widget_script, "채팅 버블을 넣는 한 줄 스크립트", "widget", access=Access.ANYONE),
    Route("GET", "/api/bot/commands", bot_commands, "슬래시 명령어 목록", "widget", access=Access.ANYONE),
]
