"""A newcomer's first load of /app and their taps to a rental request, in Debian's Chromium (Playwright).

A person signed up a moment ago (through the API, so no page of ours is in the browser's cache) opens /app on a
phone-sized screen with an empty cache. Every byte that crosses the network until the bot's welcome is on the
screen is counted from Chromium's own network log (DevTools protocol): each HTTP response as transferred —
headers and the compressed body (HTML, scripts, styles, icons, the manifest, API JSON, images) — and the
WebSocket's frames both ways. Then, from that screen, the taps to a sent rental request for a search result are
pressed and counted (a tap is a press on any control or chip; typing is not): 캠핑의자 찾기 → 문의하기 → 이번
주말 → 요청 보내기. ``usable_ms`` is from starting to open /app to the welcome's chips being on the screen.

Writes bench/results/widget.md; the last line printed is
``widget: first_load_kb=<kB> taps_to_request=<n> usable_ms=<ms>``.

    python bench/widget.py [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._report import write_report  # noqa: E402
from bench._services import bench_services, gateway_env  # noqa: E402
from bench.chat import wait_ready  # noqa: E402
from gateway.local_services import free_port  # noqa: E402
from market.config import Config  # noqa: E402
from market.db import DatabaseTarget, drop_database  # noqa: E402
from market.service import Market  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "widget.md"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]
PHONE = {"width": 390, "height": 844}
BUDGET_KB = 45
CHAIRS = [("헬리녹스 체어원 캠핑의자", 5000, 30000), ("콜맨 캠핑의자 2개", 4000, 20000), ("로우 캠핑의자", 3000, 10000),
          ("캠핑의자 릴렉스 체어", 6000, 30000), ("접이식 캠핑의자", 2000, 0), ("캠핑의자 + 테이블 세트", 9000, 50000)]


def _photo(n: int) -> bytes:
    image = Image.new("RGB", (800, 600), (246, 240, 232))
    draw = ImageDraw.Draw(image)
    draw.rectangle((260, 180, 540, 380), fill=(60 + 30 * n, 120, 200 - 25 * n))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


async def prepare(config: Config) -> None:
    """A fresh database with six camping chairs near 역삼동 (an earlier run's requests would hold their dates)."""
    assert config.database_url
    await drop_database(DatabaseTarget.parse(config.database_url))
    async with Market.open(config) as market:
        owner = (await market.accounts.sign_up({"email": "chairs@bench.example", "nickname": "의자주인",
                                                "password": "bench1234"})).user
        for n, (title, price, deposit) in enumerate(CHAIRS):
            item = await market.items.create(owner.id, {
                "title": title, "description": "주말 캠핑에 딱 좋아요.", "category_id": 7, "price_per_day": price,
                "deposit": deposit, "condition": "상", "lat": 37.5006 + n * 0.001, "lng": 127.0364,
                "place_name": "역삼동"})
            await market.items.add_photos(owner.id, item["id"], [_photo(n)])


class Wire:
    """Bytes on the wire as Chromium reports them (DevTools protocol, the page's own target)."""

    def __init__(self) -> None:
        self.http: dict[str, int] = {}
        self.kinds: dict[str, str] = {}
        self.urls: dict[str, str] = {}
        self.ws = 0
        self.ws_frames = 0

    def attach(self, cdp: Any) -> None:
        cdp.on("Network.responseReceived", self._response)
        cdp.on("Network.loadingFinished", self._finished)
        cdp.on("Network.webSocketFrameReceived", self._frame)
        cdp.on("Network.webSocketFrameSent", self._frame)

    def _response(self, e: dict[str, Any]) -> None:
        self.kinds[e["requestId"]] = e.get("type", "Other")
        self.urls[e["requestId"]] = e["response"]["url"]

    def _finished(self, e: dict[str, Any]) -> None:
        self.http[e["requestId"]] = int(e["encodedDataLength"])

    def _frame(self, e: dict[str, Any]) -> None:
        self.ws += len(e["response"]["payloadData"].encode())
        self.ws_frames += 1

    def total(self) -> int:
        return sum(self.http.values()) + self.ws

    def by_kind(self) -> dict[str, tuple[int, int]]:
        out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for rid, n in self.http.items():
            kind = self.kinds.get(rid, "Other")
            out[kind][0] += 1
            out[kind][1] += n
        return {k: (v[0], v[1]) for k, v in out.items()}


async def one_newcomer(url: str, run: int) -> dict[str, Any]:
    from playwright.async_api import async_playwright, expect

    email = f"new{uuid.uuid4().hex[:8]}@bench.example"
    async with httpx.AsyncClient(base_url=url) as http:
        r = await http.post("/api/auth/signup", json={"email": email, "nickname": f"새이웃{run}{email[3:7]}",
                                                       "password": "bench1234"})
        r.raise_for_status()
        token = r.json()["token"]
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        context = await browser.new_context(viewport=PHONE, locale="ko-KR", has_touch=True)
        host = url.split("//", 1)[1].split(":", 1)[0]
        await context.add_cookies([{"name": "billi_session", "value": token, "domain": host, "path": "/"}])
        page = await context.new_page()
        cdp = await context.new_cdp_session(page)
        wire = Wire()
        wire.attach(cdp)
        await cdp.send("Network.enable")
        await cdp.send("Network.setCacheDisabled", {"cacheDisabled": False})
        started = time.perf_counter()
        await page.goto(url + "app")
        welcome = page.locator("article.msg.bot", has_text="빌리마켓 도우미")
        chip = welcome.get_by_role("button", name="캠핑의자 찾기")
        await expect(chip).to_be_visible(timeout=30_000)
        usable_ms = (time.perf_counter() - started) * 1000
        await page.wait_for_timeout(300)  # frames and answers already under way are counted too
        first = {"bytes": wire.total(), "http": len(wire.http), "ws": wire.ws, "ws_frames": wire.ws_frames,
                 "kinds": wire.by_kind(), "usable_ms": usable_ms,
                 "files": sorted((wire.urls.get(rid, "?").replace(url, "/"), n) for rid, n in wire.http.items())}

        taps = 0

        async def tap(locator: Any) -> None:
            nonlocal taps
            await expect(locator).to_be_visible(timeout=30_000)
            await locator.click()
            taps += 1

        await tap(chip)
        results = page.locator("article.msg.bot.results", has_text="캠핑의자")
        # (each run asks about another chair: an earlier run's request holds this weekend on its own)
        await tap(results.locator(".row-card").nth(run % 5).get_by_role("button", name="문의하기"))
        await tap(page.locator("article.msg.bot").get_by_role("button", name="이번 주말"))
        await expect(page.locator("#dates-total")).to_contain_text("결제 금액", timeout=30_000)
        await tap(page.get_by_role("button", name="요청 보내기"))
        await expect(page.locator("article.msg.bot", has_text="주인의 수락을 기다리고 있어요")).to_be_visible(
            timeout=30_000)
        await browser.close()
    return {**first, "taps": taps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with bench_services("billi_bench_widget") as config:
        asyncio.run(prepare(config))
        port = free_port()
        gateway = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve"], env=gateway_env(config, port),
                                   cwd=ROOT)
        url = f"http://127.0.0.1:{port}/"
        try:
            wait_ready(url + "readyz", gateway)
            for _ in range(300):  # the search index has the chairs
                found = httpx.get(url + "api/search", params={"q": "캠핑의자"}).json()
                if len(found.get("items", [])) >= len(CHAIRS):
                    break
                time.sleep(0.2)
            runs = [asyncio.run(one_newcomer(url, n)) for n in range(args.runs)]
        finally:
            gateway.terminate()
            gateway.wait(timeout=30)
    middle = sorted(runs, key=lambda r: r["bytes"])[len(runs) // 2]
    first_kb = middle["bytes"] / 1000
    taps = max(r["taps"] for r in runs)
    usable = statistics.median(r["usable_ms"] for r in runs)
    summary = f"widget: first_load_kb={first_kb:.1f} taps_to_request={taps} usable_ms={usable:.0f}"
    every = ", ".join(f"{r['bytes'] / 1000:.1f}" for r in runs)
    kinds = "\n".join(f"| {kind} | {n} | {size / 1000:.1f} |" for kind, (n, size) in
                      sorted(middle["kinds"].items(), key=lambda kv: -kv[1][1]))
    files = "\n".join(f"| `{path.split('?')[0][:70]}` | {size / 1000:.1f} |" for path, size in middle["files"])
    report = "\n".join([
        "# Widget: a newcomer's first load of /app and taps to a rental request",
        "",
        "- a person signed up a moment ago opens /app in Debian's Chromium (Playwright), 390×844, empty cache;"
        " counted from Chromium's network log until the bot's welcome (its chips) is on the screen: every HTTP"
        " response as transferred (headers + compressed body) and every WebSocket frame both ways",
        "- then from that screen to a sent rental request for a search result, each press of a control or chip"
        " counted: 캠핑의자 찾기 → 문의하기 → 이번 주말 → 요청 보내기 (typing would not count; none is needed)",
        f"- usable: from starting to open /app to the welcome's chips on the screen; {args.runs} runs, the median"
        " shown (bytes: the median run's)",
        "- one `billi serve` process with its defaults; static files brotli-compressed under content-hashed names;"
        " the service worker registers after the page has loaded (its install fetches the same hashed files, from"
        " the HTTP cache)",
        f"- machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}; gateway,"
        " browser, MariaDB, Redis and S3 share it",
        "",
        "| measure | value | budget |",
        "| --- | ---: | ---: |",
        f"| first load, transferred | {first_kb:.1f} kB | {BUDGET_KB} kB |",
        f"| … HTTP responses | {middle['http']} ({(middle['bytes'] - middle['ws']) / 1000:.1f} kB) | |",
        f"| … WebSocket frames | {middle['ws_frames']} ({middle['ws'] / 1000:.1f} kB) | |",
        f"| taps from the welcome to a sent request | {taps} | 4 |",
        f"| usable (median) | {usable:.0f} ms | |",
        "",
        "| response type | responses | kB |",
        "| --- | ---: | ---: |",
        kinds,
        "",
        "| response (median run) | kB |",
        "| --- | ---: |",
        files,
        "",
        f"- within budget: {'yes' if first_kb <= BUDGET_KB and taps <= 4 else 'no'}; every run's bytes:"
        f" {every} kB",
        "",
        summary,
        "",
    ])
    write_report(RESULTS, report, summary)


if __name__ == "__main__":
    main()
