"""Health, readiness, metrics, the OpenAPI document, media (photos from S3) and the start page."""

from __future__ import annotations

import hmac
import ipaddress
from pathlib import Path

import jinja2
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.http import error_response, json_response
from gateway.keys import CONFIG, MARKET, METRICS, USER
from gateway.routing import Access, Route
from gateway.static_files import compressed_page, page_cache
from market.errors import Forbidden
from web_widget.assets import catalogue

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).resolve().parents[2] / "web_widget" / "templates"),
    autoescape=True,
)
_TEMPLATES.globals["asset"] = lambda name: catalogue().url(name)  # {{ asset("market.css") }}: its hashed address
OPENAPI = web.AppKey("openapi", dict)


async def healthz(request: web.Request) -> web.Response:
    return json_response({"ok": True})


async def readyz(request: web.Request) -> web.Response:
    checks = await request.app[MARKET].readiness()
    ok = all(checks.values())
    down = [name for name, up in checks.items() if not up]
    return json_response({"ok": ok, "checks": checks, **({"down": down} if down else {})},
                         status=200 if ok else 503)


# Headers a proxy adds: a request carrying one came from elsewhere, whatever its TCP peer.
_FORWARDED = ("Forwarded", "X-Forwarded-For", "X-Real-IP")


def _operator(request: web.Request) -> bool:
    """Whether the caller may read the metrics: it shows ``BILLI_METRICS_TOKEN`` as a bearer token; or, with no
    token configured, it is on this machine, talks to us directly, and we are not deployed behind a proxy
    (neither ``BILLI_PUBLIC_URL`` nor ``BILLI_TRUSTED_PROXIES`` set) — a proxy on this machine would make everyone
    it forwards look local, even one that adds no forwarding header."""
    config = request.app[CONFIG]
    if config.metrics_token:
        given = request.headers.get("Authorization", "").encode()
        return hmac.compare_digest(given, f"Bearer {config.metrics_token}".encode())
    if config.public_url or config.trusted_proxies or any(h in request.headers for h in _FORWARDED):
        return False
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text, for operators only (how busy we are and what fails is not for everyone)."""
    if not _operator(request):
        raise Forbidden("service.operator_only")
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi_json(request: web.Request) -> web.Response:
    return json_response(request.app[OPENAPI])


async def media(request: web.Request) -> web.StreamResponse:
    """Photos from S3: items and profiles for anyone, chat images for the room's members. Keys are unique
    per upload, so they cache forever."""
    key = request.match_info["key"]
    access = await request.app[MARKET].media_access(key, user.id if (user := request.get(USER)) else None)
    if access is None:
        return error_response(request, 404, "media.not_found")
    obj = await request.app[MARKET].store.get(key)
    if obj is None:
        return error_response(request, 404, "media.not_found")
    cache = "public, max-age=31536000, immutable" if access == "public" else "private, max-age=86400"
    if request.headers.get("If-None-Match") == obj.etag and obj.etag:
        return web.Response(status=304, headers={"Cache-Control": cache, "ETag": obj.etag})
    return web.Response(body=obj.body, content_type=obj.content_type, headers={
        "Cache-Control": cache, "ETag": obj.etag,
        "Content-Security-Policy": "default-src 'none'; sandbox"})


async def index(request: web.Request) -> web.Response:
    """The start page for newcomers; a signed-in person goes straight to the app."""
    if request.get(USER) is not None:
        raise web.HTTPFound("/app")
    html = _TEMPLATES.get_template("index.html").render(config=request.app[CONFIG])
    return compressed_page(request, html, **{"Cache-Control": page_cache(request)})


ROUTES = [
    Route("GET", "/healthz", healthz, "살아 있는지 (프로세스만)", "system", access=Access.ANYONE),
    Route("GET", "/readyz", readyz, "준비됐는지 (DB, Redis, S3)", "system",
          access=Access.ANYONE, responses={200: "Ready", 503: "Not ready"}),
    Route("GET", "/metrics", metrics, "Prometheus 지표 (운영자만: BILLI_METRICS_TOKEN)", "system",
          access=Access.OPERATOR, responses={200: "Metrics", 403: "Not an operator"}),
    Route("GET", "/api/openapi.json", openapi_json, "이 API의 OpenAPI 문서", "system", access=Access.ANYONE),
    Route("GET", "/media/{key:.+}", media, "사진 파일", "system", access=Access.ANYONE),
    Route("GET", "/", index, "시작 페이지", "system", access=Access.ANYONE),
]
