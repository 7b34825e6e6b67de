"""What our answers say besides their body: no cache keeps a person's answers, no banner names our software, the
metrics are for operators, a client cannot write lines of our log, and the addresses we hand to Naver and the bank
are our own whatever Host header a request carries."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from gateway.app import create_app
from gateway.cli import setup_logging
from market.config import Config
from tests.conftest import image_bytes, sign_up
from tests.gateway.test_items_api import photos_form


@pytest.fixture
def log_line() -> Iterator[logging.Formatter]:
    """The formatter ``billi serve`` writes its plain log lines with (the root logger is put back afterwards)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    setup_logging(Config(log_json=False))
    formatter = root.handlers[0].formatter
    root.handlers[:] = handlers
    root.setLevel(level)
    assert formatter is not None
    yield formatter


async def test_personal_answers_are_never_stored_and_no_answer_names_our_server(client: TestClient) -> None:
    person = await sign_up(client)
    for path in ("/api/me", "/api/me/notifications", "/api/nothing-here", "/me"):  # JSON, an error, a page
        async with client.get(path, headers=person.auth) as resp:
            assert resp.status in (200, 404), path
            assert resp.headers["Cache-Control"] == "no-store", path
            assert "Server" not in resp.headers, (path, resp.headers.get("Server"))
    # what is the same for everyone keeps its caching
    item = await person.new_item()
    status, body = await person.call("POST", f"/api/items/{item['id']}/photos",
                                     data=photos_form((image_bytes(), "a.jpg")))
    photo = body["photos"][0]["url"]
    async with client.get(photo) as resp:
        assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        etag = resp.headers["ETag"]
        assert "Server" not in resp.headers
    async with client.get(photo, headers={"If-None-Match": etag}) as resp:
        assert resp.status == 304 and resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    async with client.get("/static/app.js") as resp:
        assert resp.status == 200 and "no-store" not in resp.headers.get("Cache-Control", "")
        assert "Server" not in resp.headers


async def test_metrics_answer_only_the_operator(client: TestClient, config: Config) -> None:
    # no token configured: only a caller on this machine talking to us directly
    async with client.get("/metrics") as resp:
        assert resp.status == 200
    for forwarded in ({"X-Forwarded-For": "203.0.113.9"}, {"Forwarded": "for=203.0.113.9"},
                      {"X-Real-IP": "203.0.113.9"}):
        async with client.get("/metrics", headers=forwarded) as resp:
            assert resp.status == 403
            assert (await resp.json())["error"]["code"] == "service.operator_only"
    async with TestClient(TestServer(create_app(config.replace(metrics_token="operator-secret")))) as guarded:
        for auth in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "operator-secret"}):
            async with guarded.get("/metrics", headers=auth) as resp:
                assert resp.status == 403
                body = await resp.json()
                assert body["error"]["code"] == "service.operator_only" and body["error"]["message"]
        async with guarded.get("/metrics", headers={"Authorization": "Bearer operator-secret"}) as resp:
            assert resp.status == 200 and "billi_http_requests_total" in await resp.text()
    # behind a proxy (a public address configured), even a local caller needs the token
    async with TestClient(TestServer(create_app(config.replace(public_url="https://billi.example/")))) as deployed:
        async with deployed.get("/metrics") as resp:
            assert resp.status == 403
    # a trusted proxy on this machine that forwards no headers of its own makes every caller look local
    async with TestClient(TestServer(create_app(config.replace(trusted_proxies="127.0.0.1")))) as proxied:
        async with proxied.get("/metrics") as resp:
            assert resp.status == 403


async def test_a_newline_in_a_path_cannot_forge_a_log_line(client: TestClient, caplog: pytest.LogCaptureFixture,
                                                           log_line: logging.Formatter) -> None:
    caplog.set_level(logging.INFO, logger="billi.http")
    forged = "/api/x%0d%0a2026-11-30%2008:00:00,000%20INFO%20billi.http:%20GET%20/api/admin%20200%200.1ms"
    base = str(client.make_url("/")).rstrip("/")
    async with client.session.get(URL(base + forged, encoded=True)) as resp:
        assert resp.status == 404
    records = [r for r in caplog.records if r.name == "billi.http" and "/api/x" in r.getMessage()]
    assert len(records) == 1
    line = log_line.format(records[0])
    assert "\n" not in line and "\r" not in line
    assert "/api/x\\r\\n2026-11-30 08:00:00,000 INFO billi.http: GET /api/admin" in line


def _redirect_uri(url: str) -> str:
    return parse_qs(urlsplit(url).query)["redirect_uri"][0]


async def test_naver_and_the_bank_are_given_our_address_never_the_host_header(client: TestClient,
                                                                               config: Config) -> None:
    forged = {"Host": "evil.example"}
    async with client.get("/auth/naver", headers=forged, allow_redirects=False) as resp:
        assert resp.status == 302
        assert _redirect_uri(resp.headers["Location"]) == f"http://127.0.0.1:{client.port}/auth/naver/callback"
    person = await sign_up(client)
    status, body = await person.call("POST", "/api/billipay/link", headers=forged)
    assert status == 200, body
    assert _redirect_uri(body["url"]) == f"http://127.0.0.1:{client.port}/billipay/callback"
    async with TestClient(TestServer(create_app(config.replace(public_url="https://billi.example/")))) as deployed:
        async with deployed.get("/auth/naver", headers=forged, allow_redirects=False) as resp:
            assert _redirect_uri(resp.headers["Location"]) == "https://billi.example/auth/naver/callback"


@pytest.mark.parametrize("raw", [
    b"GET /api/me HTTP/1.1\r\nHost: x\r\nBad Header: a space in its name\r\n\r\n",
    b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
])
async def test_not_even_the_http_parsers_own_errors_name_our_server(client: TestClient, raw: bytes) -> None:
    assert client.server.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    try:
        writer.write(raw)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(65536), 10)
    finally:
        writer.close()
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    assert re.match(r"HTTP/1\.[01] 400 ", head), head
    assert not re.search(r"^server:", head, re.I | re.M), head


def test_a_nickname_cannot_reorder_or_split_a_json_log_line() -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    setup_logging(Config(log_json=True))
    formatter = root.handlers[0].formatter
    root.handlers[:] = handlers
    root.setLevel(level)
    assert formatter is not None
    tricks = "".join(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x2028, 0x2029, 0xE0001))
    nickname = f"이웃{tricks}관리자"
    record = logging.LogRecord("billi.chat", logging.INFO, __file__, 1, "%s joined", (nickname,), None)
    line = formatter.format(record)
    assert all(ch.isprintable() for ch in line), ascii(line)
    assert "이웃" in line and "\\u202e" in line and "\\u2028" in line  # Korean readable, the tricks as escapes
    assert json.loads(line)["msg"] == f"{nickname} joined"  # still the same JSON


def test_blank_fillers_in_a_nickname_are_escaped_in_every_log_line() -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    formatters = []
    for as_json in (True, False):
        setup_logging(Config(log_json=as_json))
        formatters.append(root.handlers[0].formatter)
        root.handlers[:] = handlers
        root.setLevel(level)
    fillers = "\u3164\u115f\u1160\uffa0\u2800"
    nickname = f"빌{fillers}리"
    record = logging.LogRecord("billi.chat", logging.INFO, __file__, 1, "%s joined", (nickname,), None)
    for formatter in formatters:
        assert formatter is not None
        line = formatter.format(record)
        assert not set(fillers) & set(line), ascii(line)  # each written as an escape, never as a blank
        assert all(f"\\u{ord(ch):04x}" in line for ch in fillers) and "빌" in line and "리" in line, line
    assert json.loads(formatters[0].format(record))["msg"] == f"{nickname} joined"
