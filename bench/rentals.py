"""Rental requests under contention: 500 people ask for overlapping dates of 100 items at the same moment,
through two gateway processes (`billi serve`) sharing MariaDB, Redis and S3, with the bank sandbox running.

Each request is a real ``POST /api/contracts`` (session check, date checks, the deal room, the item-row lock,
the overlap check, the contract and its event, the bot's request card posted in the deal room). Reports
throughput, latency percentiles, the gateway processes' own CPU per request (utime+stime of the two nodes,
not MariaDB's nor the load generator's) and the number of double bookings (two live holds overlapping on one
item: must be 0) to bench/results/rentals.md, which ends with the line printed last:
``rentals: requests=<n> rps=<x> p50_ms=<y> p99_ms=<z> cpu_ms_per_request=<c> double_bookings=<k>``.

With ``--baseline DIR`` (another checkout of the code, e.g. a `git worktree` of an older commit) two more nodes
run that code on the same services, and each round is fired at ours and then at those (fresh dates each).

    python bench/rentals.py [--requests 500] [--items 100] [--rounds 3] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._report import commit_of  # noqa: E402
from bench._services import bench_services  # noqa: E402
from bench.chat import wait_ready  # noqa: E402
from bench.geo import pct  # noqa: E402
from gateway.local_services import free_port  # noqa: E402
from market.config import Config  # noqa: E402
from market.db import DatabaseTarget, drop_database  # noqa: E402
from market.rentals.kdates import seoul_today  # noqa: E402
from market.service import Market  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results" / "rentals.md"

DOUBLE_BOOKINGS = """
SELECT COUNT(*) FROM contracts a JOIN contracts b ON a.item_id = b.item_id AND a.id < b.id
 AND a.start_date <= b.end_date AND b.start_date <= a.end_date
WHERE a.state IN ('REQUESTED','ACCEPTED','PAID','IN_USE','OVERDUE')
  AND b.state IN ('REQUESTED','ACCEPTED','PAID','IN_USE','OVERDUE')
"""


def _env(config: Config, port: int, root: Path = ROOT) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BILLI_")}
    env["PYTHONPATH"] = str(root)
    env.update({"BILLI_DATABASE_URL": config.database_url or "", "BILLI_REDIS_URL": config.redis_url or "",
                "BILLI_S3_URL": config.s3_url or "", "BILLI_S3_BUCKET": config.s3_bucket,
                "BILLI_BANK_URL": config.bank_url or "", "BILLI_PORT": str(port), "BILLI_LOG_LEVEL": "WARNING",
                "BILLI_DATA_DIR": str(config.data_dir)})
    return env


async def prepare(config: Config, people: int, items: int) -> tuple[list[str], list[int]]:
    async with Market.open(config) as market:
        owners = []
        for i in range(max(1, items // 10)):
            s = await market.accounts.sign_up({"email": f"owner{i}@bench.example", "nickname": f"주인{i}",
                                               "password": "rent4you"})
            owners.append(s.user.id)
        item_ids = []
        for i in range(items):
            made = await market.items.create(owners[i % len(owners)], {
                "title": f"빔프로젝터 {i}", "description": "주말에 인기", "category_id": 7, "price_per_day": 10000,
                "deposit": 50000, "condition": "상", "lat": 37.4979 + i * 1e-4, "lng": 127.0276})
            item_ids.append(int(made["id"]))
        tokens = []
        for i in range(people):
            s = await market.accounts.sign_up({"email": f"fan{i}@bench.example", "nickname": f"팬{i}",
                                               "password": "rent4you"})
            tokens.append(s.token)
    return tokens, item_ids


async def fire(urls: list[str], tokens: list[str], item_ids: list[int], round_no: int,
               sequential: bool = False) -> tuple[list[float], list[int], float]:
    rng = random.Random(round_no)
    base = seoul_today() + timedelta(days=3 + round_no * 20)
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        async def one(i: int) -> tuple[float, int]:
            start = base + timedelta(days=rng.randrange(0, 8))
            body = {"item_id": item_ids[i % len(item_ids)], "start": start.isoformat(),
                    "end": (start + timedelta(days=rng.randrange(1, 4))).isoformat()}
            t0 = time.perf_counter()
            resp = await http.post(urls[i % len(urls)] + "api/contracts", json=body,
                                   headers={"Authorization": f"Bearer {tokens[i]}"})
            return (time.perf_counter() - t0) * 1000, resp.status_code

        began = time.perf_counter()
        if sequential:
            done = [await one(i) for i in range(len(tokens))]
        else:
            done = await asyncio.gather(*(one(i) for i in range(len(tokens))))
        wall = time.perf_counter() - began
    return [d[0] for d in done], [d[1] for d in done], wall


def cpu_s(pids: list[int]) -> float:
    """User plus system CPU seconds these processes have used so far."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="another checkout of the code, on two more nodes")
    args = parser.parse_args()
    roots = {"ours": ROOT, **({"baseline": args.baseline.resolve()} if args.baseline else {})}
    with bench_services("billi_bench_rentals") as config:
        assert config.database_url
        asyncio.run(drop_database(DatabaseTarget.parse(config.database_url)))
        bank_port = free_port()
        bank = subprocess.Popen([sys.executable, "-m", "gateway.sandbox", "--port", str(bank_port)], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        config = config.replace(bank_url=f"http://127.0.0.1:{bank_port}")
        nodes: list[subprocess.Popen[bytes]] = []
        try:
            wait_ready(config.bank_url + "/healthz", bank)
            print("preparing people and items…", flush=True)
            # Each code gets its own people and items (the same number), so both see the same requests against the
            # same state, round after round (a person's open requests pile up: later rounds refuse more).
            all_tokens, all_items = asyncio.run(prepare(config, args.requests * len(roots), args.items * len(roots)))
            people = {name: (all_tokens[k * args.requests:(k + 1) * args.requests],
                             all_items[k * args.items:(k + 1) * args.items]) for k, name in enumerate(roots)}
            urls: dict[str, list[str]] = {}
            pids: dict[str, list[int]] = {}
            for name, root in roots.items():
                for _ in range(2):
                    port = free_port()
                    command = [sys.executable, "-m", "gateway.cli", "serve"]
                    if os.environ.get("BENCH_PROFILE") and name == "ours" and not pids.get(name):
                        # py-spy's raw stacks of ours' first node (its CPU figure is then py-spy's own)
                        command = ["py-spy", "record", "-r", "200", "-f", "raw", "-o", os.environ["BENCH_PROFILE"],
                                   "--", *command]
                    proc = subprocess.Popen(command, env=_env(config, port, root), cwd=root,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    nodes.append(proc)
                    wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
                    urls.setdefault(name, []).append(f"http://127.0.0.1:{port}/")
                    pids.setdefault(name, []).append(proc.pid)
            every: dict[str, list[tuple[list[float], list[int], float, float]]] = {}
            for name in roots:  # warm both codes up (first requests load templates, plans, pools)
                asyncio.run(fire(urls[name], people[name][0][:50], people[name][1], 90))
            for r in range(args.rounds):
                order = list(roots) if r % 2 == 0 else list(reversed(roots))  # alternating, who goes first too
                for name in order:
                    tokens, item_ids = people[name]
                    before = cpu_s(pids[name])
                    lat, statuses, wall = asyncio.run(fire(urls[name], tokens, item_ids, r))
                    used = cpu_s(pids[name]) - before
                    every.setdefault(name, []).append((lat, statuses, wall, used))
                    print(f"{name} round {r + 1}: {len(lat)} requests in {wall:.2f} s, p99 {pct(lat, 99):.1f} ms,"
                          f" {statuses.count(201)} held, {statuses.count(409)} refused,"
                          f" gateway CPU {1000 * used / len(lat):.1f} ms/request", flush=True)
            rounds = [(lat, st, wall) for lat, st, wall, _ in every["ours"]]

            tokens, item_ids = people["ours"]
            one_by_one = asyncio.run(fire(urls["ours"], tokens[:200], item_ids, args.rounds + 1, sequential=True))
            print(f"one at a time: p50 {pct(one_by_one[0], 50):.1f} ms, p99 {pct(one_by_one[0], 99):.1f} ms",
                  flush=True)

            async def count() -> int:
                async with Market.open(config) as market:
                    return int(await market.db.fetchval(DOUBLE_BOOKINGS))

            doubles = asyncio.run(count())
        finally:
            for proc in nodes:
                proc.send_signal(signal.SIGINT)  # (py-spy, when profiling, writes its stacks on Control-C)
            for proc in nodes:
                proc.wait(timeout=30)
            bank.terminate()
            bank.wait(timeout=10)
    all_lat = [x for lat, _, _ in rounds for x in lat]
    statuses = [s for _, st, _ in rounds for s in st]
    rps = sum(len(lat) for lat, _, _ in rounds) / sum(w for _, _, w in rounds)
    errors = len([s for s in statuses if s not in (201, 409)])
    lines = [
        "# Rental requests under contention",
        "",
        "limits lifted: none (each person asks about one item: one deal room, within the inquiry limit)",
        "",
        f"`python bench/rentals.py --requests {args.requests} --items {args.items} --rounds {args.rounds}"
        f"{' --baseline ' + str(args.baseline) if args.baseline else ''}` on "
        f"{platform.machine()} with {os.cpu_count()} cores, Python {platform.python_version()}, two `billi serve` "
        f"nodes{' (and two of the baseline)' if args.baseline else ''}, MariaDB, Redis, SeaweedFS and the bank sandbox on the same machine.",
        "",
        f"Each round fires {args.requests} `POST /api/contracts` at once, alternating between the two nodes, for "
        f"{args.items} items with random overlapping dates (1–4 days within an 8-day window), so most requests "
        "conflict with another one.",
        "",
        "| round | requests | wall s | req/s | p50 ms | p99 ms | held (201) | dates taken (409) | other |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for i, (lat, st, wall) in enumerate(rounds, 1):
        lines.append(f"| {i} | {len(lat)} | {wall:.2f} | {len(lat) / wall:.0f} | {pct(lat, 50):.1f} | "
                     f"{pct(lat, 99):.1f} | {st.count(201)} | {st.count(409)} | "
                     f"{len([s for s in st if s not in (201, 409)])} |")
    seq_lat = one_by_one[0]
    cpu_ms = {name: 1000 * sum(x[3] for x in runs) / sum(len(x[0]) for x in runs) for name, runs in every.items()}
    lines += ["", "The p99 of a burst is the time it takes to work through all of it: the nodes, MariaDB and the "
              "load generator share two cores. The service time of one request is what the same code takes one at a "
              f"time — 200 requests in a row: p50 {pct(seq_lat, 50):.1f} ms, p99 {pct(seq_lat, 99):.1f} ms."]
    lines += ["", "Gateway CPU per request (the two nodes' own utime+stime over the rounds, divided by the requests;"
              " not MariaDB's, not the load generator's):", ""]
    lines += [f"- {name} (commit {commit_of(roots[name])}): {ms:.2f} ms" for name, ms in cpu_ms.items()]
    if "baseline" in cpu_ms:
        base_rounds = every["baseline"]
        lines += [f"- ours / baseline: {cpu_ms['ours'] / cpu_ms['baseline']:.2f}× (baseline rounds: "
                  + ", ".join(f"{len(x[0]) / x[2]:.0f} req/s" for x in base_rounds) + ")"]
    summary = (f"rentals: requests={len(all_lat)} rps={rps:.0f} p50_ms={pct(all_lat, 50):.1f} "
               f"p99_ms={pct(all_lat, 99):.1f} cpu_ms_per_request={cpu_ms['ours']:.2f} double_bookings={doubles}")
    if "baseline" in cpu_ms:
        summary += f" cpu_vs_baseline={cpu_ms['ours'] / cpu_ms['baseline']:.2f}"
    lines += ["", f"**Double bookings: {doubles}** (overlapping live holds on one item, counted in MariaDB after "
              "all rounds, both codes' included).", "",
              f"All rounds of ours: {rps:.0f} requests/s, p50 {pct(all_lat, 50):.1f} ms, p99 {pct(all_lat, 99):.1f} ms,"
              f" {errors} errors.", "", summary, ""]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines), encoding="utf-8")
    print(summary)


if __name__ == "__main__":
    main()
