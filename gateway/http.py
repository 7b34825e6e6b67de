"""HTTP plumbing: request ids and access logs, sessions from cookie or bearer token, CSRF origin check,
domain errors as ``{"error": {...}}`` JSON, security and cache headers, metrics, our public address. Handlers stay
short because of it.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import BadHttpMessage
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from gateway.keys import (
    CLIENT_ADDRESSES,
    CONFIG,
    DEVICE_COOKIE,
    MARKET,
    METRICS,
    REQUEST_ID,
    SESSION_COOKIE,
    SESSION_TOKEN,
    SESSION_VIA_COOKIE,
    USER,
)
from market.db import unavailable
from market.errors import InvalidInput, Kind, MarketError, TooLarge, Unauthenticated, Unsupported
from market.limits import Limit
from market.messages import render
from market.people.accounts import Session, User

log = logging.getLogger("billi.http")

STATUS = {
    Kind.INVALID: 400, Kind.UNAUTHENTICATED: 401, Kind.FORBIDDEN: 403, Kind.NOT_FOUND: 404,
    Kind.CONFLICT: 409, Kind.TOO_LARGE: 413, Kind.UNSUPPORTED: 415, Kind.RATE_LIMITED: 429,
    Kind.UNAVAILABLE: 503,
}
_REQUEST_ID = re.compile(r"^[A-Za-z0-9\-_.]{1,64}$")
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
_DEVICE_COOKIE_S = 400 * 24 * 3600  # browsers keep a cookie at most 400 days


_dumps = functools.partial(json.dumps, ensure_ascii=False)


def json_response(data: Any, *, status: int = 200) -> web.Response:
    """JSON with Korean left readable (no \\u escapes)."""
    return web.json_response(data, status=status, dumps=_dumps)


def locale_of(request: web.Request) -> str:
    user: User | None = request.get(USER)
    if user is not None:
        return user.locale
    return "en" if request.headers.get("Accept-Language", "").lower().startswith("en") else "ko"


def error_response(request: web.Request, status: int, code: str, *, field: str | None = None,
                   params: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"code": code, "message": render(code, locale_of(request), field=field,
                                                            **(params or {}))}
    if field:
        body["field"] = field
    response = json_response({"error": body}, status=status)
    if isinstance((params or {}).get("retry_after"), int):  # busy or too fast: when to ask again
        response.headers["Retry-After"] = str(params["retry_after"])  # type: ignore[index]
    return response


class HttpMetrics:
    """Request counters and latencies, in a registry of this app's own (tests build many apps)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("billi_http_requests", "HTTP requests", ["method", "route", "status"],
                                registry=self.registry)
        self.latency = Histogram("billi_http_request_seconds", "HTTP request latency", ["method", "route"],
                                 registry=self.registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))

    def watch_scheduler(self, failures: Mapping[str, int]) -> None:
        """Show the scheduler's failed rows (by job) as ``billi_scheduler_failures_total``, read at each scrape."""
        self.registry.register(_SchedulerFailures(failures))

    def watch_reconciliation(self, last: Any) -> None:
        """The differences the last daily reconciliation found, by kind (``billi_reconcile_differences``)."""
        self.registry.register(_ReconcileDifferences(last))

    def watch_uploads(self, uploads: Any) -> None:
        """Photo uploads in progress and photos being decoded in this process, read at each scrape."""
        self.registry.register(_Uploads(uploads))


class _SchedulerFailures:
    def __init__(self, failures: Mapping[str, int]) -> None:
        self._failures = failures

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily("billi_scheduler_failures", "Scheduler rows or jobs that failed and were "
                                     "passed over", labels=["job"])
        for job, n in sorted(self._failures.items()):
            family.add_metric([job], n)
        yield family


class _ReconcileDifferences:
    KINDS = ("missing", "extra", "amount", "suspense", "ledger")

    def __init__(self, reconciler: Any) -> None:
        self._reconciler = reconciler

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("billi_reconcile_differences", "Differences between the bank statement and our "
                                   "transfers found by the last daily reconciliation", labels=["kind"])
        for kind in self.KINDS:
            family.add_metric([kind], self._reconciler.last.get(kind, 0))
        yield family


class _Uploads:
    def __init__(self, uploads: Any) -> None:
        self._uploads = uploads

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily("billi_uploads_in_progress", "Photo uploads admitted and not finished (being read, "
                                "waiting for a decoding worker or decoded)", value=self._uploads.in_progress)
        yield GaugeMetricFamily("billi_image_decodes_running", "Photo decoding worker processes running",
                                value=self._uploads.decoding)


@web.middleware
async def observe(request: web.Request, handler: Any) -> web.StreamResponse:
    """Request id, access log, metrics and security headers around everything else."""
    rid = request.headers.get("X-Request-Id", "")
    request[REQUEST_ID] = rid if _REQUEST_ID.match(rid) else uuid.uuid4().hex[:16]
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as e:
        status = e.status
        raise
    finally:
        elapsed = time.perf_counter() - started
        route = request.match_info.route.resource.canonical if request.match_info.route.resource else "unmatched"
        metrics = request.app[METRICS]
        metrics.requests.labels(request.method, route, str(status)).inc()
        metrics.latency.labels(request.method, route).observe(elapsed)
        log.info("%s %s %s %.1fms", request.method, request.path, status, elapsed * 1000,
                 extra={"request_id": request[REQUEST_ID], "status": status})


@web.middleware
async def headers(request: web.Request, handler: Any) -> web.StreamResponse:
    """Security headers on everything; ``Cache-Control: no-store`` on every answer whose handler did not say how
    it may be cached (so no browser or proxy keeps a person's JSON or page), static files excepted."""
    response = await handler(request)
    if "Cache-Control" not in response.headers and not isinstance(response, web.FileResponse):
        response.headers["Cache-Control"] = "no-store"
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers["X-Request-Id"] = request[REQUEST_ID]
    if response.content_type == "text/html":
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
            "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
    return response


class BannerlessRequest(web.Request):
    """A request whose answer never says ``Server: Python/3.x aiohttp/y`` — which versions we run helps only an
    attacker. aiohttp adds the header just before a response's prepare hook, and answers a request it could not
    parse (a malformed request line or header) with no route and so no ``on_response_prepare`` signal: the hook
    of the request itself is the one place every answer passes."""

    async def _prepare_hook(self, response: web.StreamResponse) -> None:
        response.headers.popall("Server", None)
        await super()._prepare_hook(response)


def without_server_banner(app: web.Application) -> None:
    """Make every request of ``app`` — its parser's error answers too — a ``BannerlessRequest``."""
    app._make_request = functools.partial(app._make_request, _cls=BannerlessRequest)  # type: ignore[method-assign]


@web.middleware
async def errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every failure becomes a JSON error with a Korean (or English) message; nothing leaks a traceback."""
    try:
        return await handler(request)
    except MarketError as e:
        return error_response(request, STATUS[e.kind], e.code, field=e.field, params=e.params)
    except web.HTTPRequestEntityTooLarge:
        return error_response(request, 413, "service.body_too_large")
    except web.HTTPNotFound:
        return error_response(request, 404, "service.not_found")
    except web.HTTPMethodNotAllowed:
        return error_response(request, 405, "service.method")
    except web.HTTPException:
        raise
    except Exception as e:
        if (busy := unavailable(e)) is not None:  # the database busy or away: try again shortly, not a bug
            log.warning("database unavailable on %s %s: %r", request.method, request.path, e.__cause__ or e,
                        extra={"request_id": request.get(REQUEST_ID)})
            return error_response(request, 503, busy.code, params=busy.params)
        log.exception("unexpected error on %s %s", request.method, request.path,
                      extra={"request_id": request.get(REQUEST_ID)})
        return error_response(request, 500, "service.internal")


@web.middleware
async def sessions(request: web.Request, handler: Any) -> web.StreamResponse:
    """Find the session (bearer token first, then cookie); refuse cross-site writes.

    A write not carrying a bearer token may set or use the session cookie, so it must come from our own pages:
    a foreign or ``null`` Origin is refused whether or not a cookie came with it (else another site could log
    a visitor in as someone else — login CSRF); a write that carries a cookie must name its origin (Origin, or
    at least Referer). Bearer-token clients are not browsers riding on ambient credentials."""
    token, via_cookie = None, False
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        token = auth[7:].strip()
    elif SESSION_COOKIE in request.cookies:
        token, via_cookie = request.cookies[SESSION_COOKIE], True
    if request.method in _UNSAFE and not auth.lower().startswith("bearer ") and not _same_origin(request, via_cookie):
        return error_response(request, 403, "service.csrf")
    user = await request.app[MARKET].accounts.session_user(token) if token else None
    request[USER] = user
    request[SESSION_TOKEN] = token if user else None
    request[SESSION_VIA_COOKIE] = via_cookie
    return await handler(request)


def _same_origin(request: web.Request, with_cookie: bool) -> bool:
    """Whether an unsafe request comes from our own pages (see ``sessions``): scheme, host and port all match
    our public address (``BILLI_PUBLIC_URL``, behind a proxy) or else the address the request came to."""
    public = request.app[CONFIG].public_url
    ours = _origin_of(public) if public else f"{request.scheme}://{request.host}".lower()
    origin = request.headers.get("Origin")
    if origin is not None:
        return _origin_of(origin) == ours
    referer = request.headers.get("Referer")
    if referer is not None:
        return _origin_of(referer) == ours
    return not with_cookie  # a plain client with no cookie and no origin (curl, a server) is not a browser


def _origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lower-cased ("" for anything else, such as ``null``)."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}".lower() if sep and scheme else ""


def require_user(request: web.Request) -> User:
    user: User | None = request.get(USER)
    if user is None:
        raise Unauthenticated("account.login_required")
    return user


async def within_limit(request: web.Request, limit: Limit) -> None:
    """Count this request against ``limit`` for the person asking (their address when logged out) and for their
    address; past it, 429 with Retry-After (``RateLimited``)."""
    user: User | None = request.get(USER)
    await request.app[MARKET].limits.take(limit, person=user.id if user else None,
                                          address=request.app[CLIENT_ADDRESSES].of(request))


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object. Only ``application/json`` is read: a form another site can send without
    asking (``text/plain``, form encodings) never reaches a JSON endpoint."""
    if request.content_type != "application/json":
        raise Unsupported("input.json_only", field="body")
    raw = await request.read()
    if not raw:
        raise InvalidInput("input.not_object", field="body")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: "[" × 100,000 nests past the limit
        raise InvalidInput("input.bad_json", field="body") from None
    if not isinstance(data, dict):
        raise InvalidInput("input.not_object", field="body")
    return data


async def uploaded_files(request: web.Request, *, max_files: int, max_bytes: int) -> list[bytes]:
    """The file parts of a multipart upload, each read with a size cap so a huge file is refused early, and the
    whole body within ``BILLI_UPLOAD_READ_TIMEOUT_S``: an upload trickling in would otherwise hold one of the
    process's few upload places for as long as its sender likes."""
    if not request.content_type.startswith("multipart/"):
        raise InvalidInput("photo.none", field="photo")
    try:
        async with asyncio.timeout(request.app[CONFIG].upload_read_timeout_s):
            return await _read_files(request, max_files=max_files, max_bytes=max_bytes)
    except (BadHttpMessage, ValueError):  # no boundary, a part header that is not HTTP: the form is broken
        raise InvalidInput("photo.bad_form", field="photo") from None
    except TimeoutError:
        raise InvalidInput("photo.too_slow", field="photo") from None


async def _read_files(request: web.Request, *, max_files: int, max_bytes: int) -> list[bytes]:
    reader = await request.multipart()
    files: list[bytes] = []
    async for part in _parts(reader):
        if part.filename is None:
            continue
        if len(files) >= max_files:
            raise InvalidInput("photo.too_many", field="photo", max=max_files)
        chunks, size = [], 0
        while chunk := await part.read_chunk(64 * 1024):
            size += len(chunk)
            if size > max_bytes:
                raise TooLarge("photo.too_large", field="photo", max_mb=max_bytes // (1024 * 1024))
            chunks.append(chunk)
        files.append(b"".join(chunks))
    if not files:
        raise InvalidInput("photo.none", field="photo")
    return files


async def _parts(reader: Any) -> AsyncIterator[BodyPartReader]:
    while True:
        part = await reader.next()
        if part is None:
            return
        if isinstance(part, BodyPartReader):
            yield part


def set_session_cookie(request: web.Request, response: web.Response, session: Session) -> None:
    config = request.app[CONFIG]
    response.set_cookie(SESSION_COOKIE, session.token, max_age=config.session_ttl_s, httponly=True,
                        samesite="Lax", secure=config.cookie_secure, path="/")
    if session.device:
        set_device_cookie(request, response, session.device)


def set_device_cookie(request: web.Request, response: web.Response, device: str) -> None:
    """The known-device token (``market.people.known_devices``): it only tells the log-in throttle that this
    browser is one the account's owner logs in from, so it goes only to ``/api/auth/``."""
    response.set_cookie(DEVICE_COOKIE, device, max_age=_DEVICE_COOKIE_S, httponly=True, samesite="Lax",
                        secure=request.app[CONFIG].cookie_secure, path="/api/auth/")


def clear_session_cookie(response: web.Response, *, device: bool = False) -> None:
    """The session cookie goes; with ``device`` (an explicit log-out or leaving) the known-device cookie too, so
    the next person at a shared browser is not taken for its owner by the log-in throttle."""
    response.del_cookie(SESSION_COOKIE, path="/")
    if device:
        response.del_cookie(DEVICE_COOKIE, path="/api/auth/")


def public_base(request: web.Request) -> str:
    """Our address for links others send people back to (the bank's and Naver's redirects), without a trailing
    slash: ``BILLI_PUBLIC_URL``, else the address this connection really reached on our socket — never the Host
    header, which the sender writes (a forged one would send a login's code to their own site)."""
    config = request.app[CONFIG]
    if config.public_url:
        return config.public_url.rstrip("/")
    bound = request.transport.get_extra_info("sockname") if request.transport else None
    if not isinstance(bound, tuple):  # not a TCP socket: the configured address
        return config.url().rstrip("/")
    host, port = bound[0], bound[1]
    return f"{request.scheme}://{f'[{host}]' if ':' in host else host}:{port}"


def client_key(request: web.Request) -> str:
    """An anonymous viewer's key for view counting: the remote address."""
    return request.remote or "anon"
