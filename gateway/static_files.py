"""Serving the widget's static files from the catalogue (web_widget/assets.py): the best encoding the browser
accepts, a year of caching for hashed addresses, revalidation for plain and fixed ones. Never reads the disk
while serving. Pages are compressed as they are rendered (they carry no secret for a compression side channel
to guess at: the session is an HttpOnly cookie, never in a page)."""

from __future__ import annotations

import gzip
import re

import brotli
from aiohttp import web

from gateway.keys import USER
from web_widget.assets import PREFIX, Asset, catalogue

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


def accepted(header: str) -> set[str]:
    """The codings an ``Accept-Encoding`` header allows (``q=0`` refuses one)."""
    codings = set()
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        q = params.strip().removeprefix("q=") if params.strip().startswith("q=") else "1"
        try:
            allowed = float(q) > 0
        except ValueError:
            allowed = False
        if name and allowed:
            codings.add(name.strip().lower())
    return codings


_HASH = re.compile(r"\.[0-9a-f]{8}\.(?=[^./]+$)")  # app.3f2a9c1b.js → app.js


def respond(request: web.Request, asset: Asset, cache: str, **headers: str) -> web.Response:
    """``asset`` in the best encoding ``request`` accepts (brotli, then gzip), or 304 when it has it already."""
    wanted = accepted(request.headers.get("Accept-Encoding", ""))
    encoding = next((e for e in ("br", "gzip") if e in wanted and e in asset.bodies), "")
    etag = f'{asset.etag[:-1]}-{encoding}"' if encoding else asset.etag  # each encoding its own (RFC 9110 8.8.3)
    common = {"Cache-Control": cache, "ETag": etag, "Vary": "Accept-Encoding", **headers}
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=common)
    if encoding:
        common["Content-Encoding"] = encoding
    return web.Response(body=asset.body(encoding), content_type=asset.content_type, headers=common)


async def static_file(request: web.Request) -> web.StreamResponse:
    """``/static/<hashed name>`` for a year; ``/static/<plain name>`` (an old page, a hand-typed address) still
    answers, revalidated each time."""
    files = catalogue()
    asset = files.at(request.path)
    if asset is not None:
        return respond(request, asset, IMMUTABLE)
    name = request.path.removeprefix(PREFIX)
    asset = files.named(name) or files.named(_HASH.sub(".", name))  # another build's name (a rolling deploy):
    if asset is None:                                                # this build's file, never kept under it
        raise web.HTTPNotFound()
    return respond(request, asset, REVALIDATE)


def fixed(request: web.Request, **headers: str) -> web.Response:
    """A file with a fixed address of its own (``/sw.js``, ``/manifest.webmanifest``, ``/widget.js``)."""
    asset = catalogue().at(request.path)
    assert asset is not None, request.path
    return respond(request, asset, REVALIDATE, **headers)


def page_cache(request: web.Request) -> str:
    """A page's ``Cache-Control``: always revalidated (it names this build's files); a signed-in person's page is
    not stored at all (it carries their name)."""
    return "no-store" if request.get(USER) is not None else REVALIDATE


def compressed_page(request: web.Request, html: str, **headers: str) -> web.Response:
    """A rendered page in the best encoding the browser accepts (brotli at a quick setting, else gzip)."""
    body = html.encode()
    wanted = accepted(request.headers.get("Accept-Encoding", ""))
    encoding = "br" if "br" in wanted else "gzip" if "gzip" in wanted else ""
    if encoding == "br":
        body = brotli.compress(body, quality=5)
    elif encoding == "gzip":
        body = gzip.compress(body, 6)
    out = {"Vary": "Accept-Encoding", **headers, **({"Content-Encoding": encoding} if encoding else {})}
    return web.Response(body=body, content_type="text/html", charset="utf-8", headers=out)
