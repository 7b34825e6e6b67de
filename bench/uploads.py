"""What photo uploads cost the gateway's memory: 20 people upload a maximum-size photo at the same moment.

A real `billi serve` process with its defaults (the pixel limit, the decoding workers, the places for uploads in
progress); each photo is just under the pixel limit and the byte limit — a PNG with transparency and a band of
noise, so it is large and its decode costs the most. Clients that are told 503 come back after its Retry-After,
as the widget does, until every photo is stored. The resident memory (RSS) of the gateway's whole process tree
(the gateway and its decoding workers, from /proc) is sampled every 10 ms: its baseline, the peak while one
photo alone is uploaded (one decode's cost), the peak during the burst, and 60 s after the burst. Writes
bench/results/uploads.md; the last line printed is ``uploads: workers=<n> peak_growth_mb=<x> after_60s_mb=<y>``.

    python bench/uploads.py [--people 20] [--settle 60]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import platform
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._report import write_report  # noqa: E402
from bench._services import bench_services, gateway_env  # noqa: E402
from bench.chat import wait_ready  # noqa: E402
from gateway.local_services import free_port  # noqa: E402
from market.config import Config  # noqa: E402
from market.service import Market  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results" / "uploads.md"
MB = 1024 * 1024


# -- the gateway's process tree ----------------------------------------------------------------------
def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def tree(pid: int) -> list[int]:
    """``pid`` and every process below it, but for a child caught between fork and exec: it still runs the
    gateway's program in the gateway's pages, and counting them twice would be counting nothing real."""
    out, todo, gateway = [], [pid], _cmdline(pid)
    while todo:
        p = todo.pop()
        if p != pid and _cmdline(p) == gateway:
            continue
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            continue  # gone meanwhile
    return out


def rss_mb(pid: int) -> float:
    """The summed resident memory of ``pid``'s process tree, in MiB."""
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue
    return total / 1024


class Sampler:
    """Samples the tree's RSS every 10 ms in a thread, keeping the peak since the last ``reset``."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0.0
        self.processes = 1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, rss_mb(self.pid))
            self.processes = max(self.processes, len(tree(self.pid)))

    def reset(self) -> None:
        self.peak, self.processes = rss_mb(self.pid), len(tree(self.pid))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


# -- the photo ------------------------------------------------------------------------------------
def largest_photo(max_pixels: int, max_bytes: int) -> tuple[bytes, tuple[int, int]]:
    """An RGBA PNG just under the pixel limit, and just under the byte limit thanks to a band of noise."""
    width = int(max_pixels ** 0.5)
    height = max_pixels // width - 1
    band = max(1, int(max_bytes * 0.97) // (4 * width))
    while True:
        img = Image.new("RGBA", (width, height), (30, 120, 200, 160))
        img.paste(Image.frombytes("RGBA", (width, band), os.urandom(4 * width * band)), (0, 0))
        out = io.BytesIO()
        img.save(out, format="PNG", compress_level=1)
        if len(out.getvalue()) <= max_bytes:
            return out.getvalue(), (width, height)
        band = band * 9 // 10


# -- the people and their uploads -------------------------------------------------------------------
async def make_people(config: Config, n: int) -> list[str]:
    async with Market.open(config) as market:
        run = uuid.uuid4().hex[:6]
        tokens = []
        for i in range(n):
            session = await market.accounts.sign_up({"email": f"up{run}{i}@bench.example",
                                                     "nickname": f"up{run}{i}", "password": "bench1234"})
            tokens.append(session.token)
        return tokens


async def upload(client: httpx.AsyncClient, token: str, photo: bytes) -> dict[str, float]:
    """One person's photo, sent again after Retry-After whenever the gateway is busy."""
    started, busy = time.perf_counter(), 0
    while True:
        r = await client.put("/api/me/photo", headers={"Authorization": f"Bearer {token}"},
                             files={"photo": ("photo.png", photo, "image/png")})
        if r.status_code != 503:
            break
        busy += 1
        await asyncio.sleep(int(r.headers.get("Retry-After", "1")))
    if r.status_code != 200:
        raise RuntimeError(f"upload answered {r.status_code}: {r.text[:300]}")
    return {"seconds": time.perf_counter() - started, "busy": busy}


async def burst(url: str, tokens: list[str], photo: bytes) -> list[dict[str, float]]:
    limits = httpx.Limits(max_connections=len(tokens) + 1)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:
        return await asyncio.gather(*(upload(client, t, photo) for t in tokens))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=20, help="uploads at the same moment (default 20)")
    parser.add_argument("--settle", type=float, default=60, help="seconds after the burst to measure again")
    args = parser.parse_args()
    defaults = Config()
    photo, size = largest_photo(defaults.max_image_pixels, defaults.max_upload_bytes)
    small = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 80, 40)).save(small, format="PNG")
    with bench_services("billi_bench_uploads") as config:
        tokens = asyncio.run(make_people(config, args.people + 1))
        port = free_port()
        gateway = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve"], env=gateway_env(config, port),
                                   cwd=ROOT)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url + "/readyz", gateway)
            asyncio.run(burst(url, tokens[-1:], small.getvalue()))  # every code path of an upload warmed up
            time.sleep(2)
            baseline = rss_mb(gateway.pid)
            sampler = Sampler(gateway.pid)
            sampler.reset()
            asyncio.run(burst(url, tokens[:1], photo))
            one_peak = sampler.peak
            time.sleep(5)
            sampler.reset()
            started = time.perf_counter()
            results = asyncio.run(burst(url, tokens[:args.people], photo))
            burst_s = time.perf_counter() - started
            peak, processes = sampler.peak, sampler.processes
            sampler.stop()
            right_after = rss_mb(gateway.pid)
            time.sleep(args.settle)
            settled = rss_mb(gateway.pid)
        finally:
            gateway.terminate()
            gateway.wait(timeout=30)
    workers = defaults.image_workers
    one_cost = one_peak - baseline
    peak_growth = peak - baseline
    after = settled - baseline
    budget = workers * one_cost + 100
    busy = sum(r["busy"] for r in results)
    slowest = max(r["seconds"] for r in results)
    summary = f"uploads: workers={workers} peak_growth_mb={peak_growth:.0f} after_60s_mb={after:.0f}"
    report = "\n".join([
        "# Uploads: what a burst of maximum-size photos costs the gateway's memory",
        "",
        "limits lifted: none (one photo per person, within the upload rate)",
        "",
        f"- {args.people} people each upload one photo (`PUT /api/me/photo`) at the same moment to one `billi serve`"
        " process with the default settings: pixel limit"
        f" {defaults.max_image_pixels:,}, byte limit {defaults.max_upload_bytes // MB} MiB,"
        f" {workers} decoding workers, {defaults.image_queue} more uploads may wait for one",
        f"- the photo: an RGBA PNG of {size[0]}×{size[1]} ({size[0] * size[1]:,} pixels), {len(photo) / MB:.1f} MiB"
        " (a band of noise, the rest one translucent colour)",
        "- an upload told 503 comes back after its Retry-After, until every photo is stored",
        "- memory: the summed VmRSS of the gateway and every process below it (its decoding workers), sampled"
        " every 10 ms; a worker caught between fork and exec is left out: it still shares the gateway's pages,"
        " and counting them twice would add the gateway's whole size to a peak",
        f"- command: `python bench/uploads.py --people {args.people} --settle {args.settle:g}`",
        f"- machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()};"
        " the gateway, the clients, MariaDB, Redis and S3 share it",
        "",
        "| measure | MiB |",
        "| --- | ---: |",
        f"| baseline (idle, after one small upload) | {baseline:.0f} |",
        f"| one photo alone: peak growth (one decode's cost) | {one_cost:.0f} |",
        f"| {args.people} at once: peak growth | {peak_growth:.0f} |",
        f"| budget: workers × one decode's cost + 100 | {budget:.0f} |",
        f"| right after the burst, above baseline | {right_after - baseline:.0f} |",
        f"| {args.settle:g} s after the burst, above baseline | {after:.0f} |",
        "",
        f"- every photo stored: {len(results)} of {args.people}, in {burst_s:.1f} s (the slowest upload"
        f" {slowest:.1f} s); {busy} answers were 503 + Retry-After; at most {processes} processes in the tree",
        f"- peak within budget: {'yes' if peak_growth <= budget else 'NO'};"
        f" back within 100 MiB of baseline after {args.settle:g} s: {'yes' if after <= 100 else 'NO'}",
        "",
        summary,
        "",
    ])
    write_report(RESULTS, report, summary)


if __name__ == "__main__":
    main()
