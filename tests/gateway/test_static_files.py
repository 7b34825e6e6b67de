"""The widget's files over HTTP: pages name content-hashed files that are cached for a year and come brotli- or
gzip-compressed; pages, the service worker and the manifest are revalidated and name exactly those files."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import aiohttp
import brotli
from aiohttp.test_utils import TestClient

from tests.conftest import sign_up

STATIC = Path(__file__).resolve().parents[2] / "web_widget" / "static"
IMMUTABLE = "public, max-age=31536000, immutable"
HASHED = re.compile(r'(?:href|src)="(/static/[^"]+)"')


async def _raw(client: TestClient, path: str, **headers: str) -> tuple[aiohttp.ClientResponse, bytes]:
    """The answer's bytes as sent (not decompressed by the client)."""
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        async with session.get(client.make_url(path), headers=headers) as resp:
            return resp, await resp.read()


def _plain(path: str) -> bytes:
    """The file on disk behind a hashed address: ``/static/app.3f2a9c1b.js`` → ``static/app.js``."""
    name = re.sub(r"\.[0-9a-f]{8}(\.[a-z]+)$", r"\1", path.removeprefix("/static/"))
    return (STATIC / name).read_bytes()


async def test_a_page_names_hashed_files_served_compressed_and_cached_for_a_year(client: TestClient) -> None:
    person = await sign_up(client)
    async with client.get("/app", headers=person.auth) as resp:
        html = await resp.text()
    files = HASHED.findall(html)
    names = {re.sub(r"\.[0-9a-f]{8}\.", ".", f) for f in files}
    assert {"/static/app.js", "/static/app.css", "/static/vendor/socket.io.min.js"} <= names, files
    for path in files:
        assert re.search(r"\.[0-9a-f]{8}\.[a-z]+$", path), path
        on_disk = _plain(path)
        resp, body = await _raw(client, path, **{"Accept-Encoding": "gzip, deflate, br"})
        assert resp.status == 200 and resp.headers["Cache-Control"] == IMMUTABLE, path
        assert "Accept-Encoding" in resp.headers["Vary"]
        if path.endswith((".js", ".css")):
            assert resp.headers["Content-Encoding"] == "br", path
            assert brotli.decompress(body) == on_disk and len(body) < len(on_disk) / 2, path
        else:  # a PNG is compressed already
            assert "Content-Encoding" not in resp.headers and body == on_disk
    script = next(f for f in files if "/app." in f and f.endswith(".js"))
    resp, body = await _raw(client, script, **{"Accept-Encoding": "gzip"})
    assert resp.headers["Content-Encoding"] == "gzip" and gzip.decompress(body) == _plain(script)
    gzip_tag = resp.headers["ETag"]
    resp, _ = await _raw(client, script, **{"Accept-Encoding": "br"})
    assert resp.headers["ETag"] != gzip_tag  # each encoding its own validator
    resp, _ = await _raw(client, script, **{"Accept-Encoding": "br", "If-None-Match": gzip_tag})
    assert resp.status == 200  # a gzip copy does not validate the brotli one
    resp, body = await _raw(client, script, **{"Accept-Encoding": "br;q=0, identity"})
    assert "Content-Encoding" not in resp.headers and body == _plain(script)
    resp, _ = await _raw(client, script, **{"Accept-Encoding": "identity", "If-None-Match": resp.headers["ETag"]})
    assert resp.status == 304 and resp.headers["Cache-Control"] == IMMUTABLE


async def test_pages_are_revalidated_and_a_persons_page_is_not_stored(client: TestClient) -> None:
    for path in ("/", "/login", "/password/forgot"):
        async with client.get(path) as resp:
            assert resp.status == 200 and resp.headers["Cache-Control"] == "no-cache", path
            assert HASHED.findall(await resp.text()), path
    person = await sign_up(client)
    for path in ("/app", "/me"):
        async with client.get(path, headers=person.auth) as resp:
            assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store", path


async def test_the_service_worker_and_manifest_name_the_files_this_build_serves(client: TestClient) -> None:
    person = await sign_up(client)
    async with client.get("/app", headers=person.auth) as resp:
        page_files = set(HASHED.findall(await resp.text()))
    async with client.get("/sw.js") as resp:
        assert resp.headers["Cache-Control"] == "no-cache" and resp.headers["Service-Worker-Allowed"] == "/"
        worker = await resp.text()
    shell = json.loads(re.search(r"const FILES = (\[.*?\]);", worker, re.S).group(1))  # type: ignore[union-attr]
    assert "/manifest.webmanifest" in shell
    assert {f for f in shell if f.endswith((".js", ".css"))} <= page_files  # installing fetches nothing new
    async with client.get("/manifest.webmanifest") as resp:
        assert resp.headers["Cache-Control"] == "no-cache"
        icons = [i["src"] for i in json.loads(await resp.text())["icons"]]
    for path in [*shell, *icons]:
        if path.startswith("/static/"):
            async with client.get(path) as resp:
                assert resp.status == 200 and resp.headers["Cache-Control"] == IMMUTABLE, path
    resp, body = await _raw(client, "/widget.js", **{"Accept-Encoding": "br"})
    assert resp.headers["Content-Encoding"] == "br" and resp.headers["Access-Control-Allow-Origin"] == "*"
    assert brotli.decompress(body) == (STATIC / "widget.js").read_bytes()


async def test_a_plain_name_still_answers_but_a_wrong_hash_or_a_dot_file_does_not(client: TestClient) -> None:
    # a plain name, or another build's hashed name (a node of the next or last build rendered the page, during a
    # rolling deploy): this build's file, revalidated — never kept for a year under a name that is not its own
    for path in ("/static/app.js", "/static/app.00000000.js"):
        async with client.get(path) as resp:
            assert resp.status == 200 and resp.headers["Cache-Control"] == "no-cache", path
            assert await resp.read() == (STATIC / "app.js").read_bytes()
    for path in ("/static/vendor/.lock", "/static/../gateway/app.py",
                 "/static/sw.js", "/static/nothing.js"):
        async with client.get(path) as resp:
            assert resp.status == 404, path
