"""Nearby-query benchmark: our ring search vs the seed system's full-scan query, side by side.

Loads N items (half spread over Seoul, half over the rest of South Korea), then times the first page
(20 nearest within 6 km) at a dense centre (Gangnam) and a sparse one (Daejeon outskirts), checks that
both queries return identical results, and writes bench/results/geo.md, which ends with the line printed last
(``geo: dense_p99_ms=… sparse_p99_ms=… ratio_vs_seed=… identical=…``).

    python bench/geo.py [--items 1000000] [--queries 300] [--seed-queries 15]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import random
import statistics
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._services import bench_database  # noqa: E402
from market.categories import Categories  # noqa: E402
from market.db import Database  # noqa: E402
from market.geo import NearbyQuery, nearby  # noqa: E402
from market.migrate import migrate  # noqa: E402
from market.public_place import snap  # noqa: E402

SEOUL = (37.43, 37.70, 126.80, 127.18)
KOREA = (34.5, 38.3, 126.2, 129.5)
CENTRES = {"dense": (37.4979, 127.0276), "sparse": (36.42, 127.42)}
SEED_SQL = ("SELECT id, ST_Distance_Sphere(POINT(%s, %s), public_location) AS distance FROM items"
            " WHERE ST_Distance_Sphere(POINT(%s, %s), public_location) <= 6000"
            " ORDER BY ROUND(distance * 1000), id LIMIT 20")
RESULTS = Path(__file__).resolve().parent / "results" / "geo.md"


async def load(db: Database, n: int) -> float:
    have = int(await db.fetchval("SELECT COUNT(*) FROM items"))
    if have == n:
        return 0.0
    started = time.perf_counter()
    await db.execute("SET FOREIGN_KEY_CHECKS = 0")
    await db.execute("DELETE FROM items")
    if not await db.fetchone("SELECT id FROM users WHERE id = 1"):
        await db.execute("INSERT INTO users (id, email, nickname) VALUES (1, 'bench@example.com', '벤치')")
    rng = random.Random(1)
    one = "(1, '물건', '', 7, 1, 6, 7, %s, %s, '상', ST_GeomFromText(%s, 4326), ST_GeomFromText(%s, 4326), %s)"
    batch = 5000
    today = date.today()
    for start in range(0, n, batch):
        rows: list[object] = []
        for i in range(start, min(n, start + batch)):
            box = SEOUL if i % 2 == 0 else KOREA
            lat, lng = rng.uniform(box[0], box[1]), rng.uniform(box[2], box[3])
            public_lat, public_lng = snap(lat, lng)
            rows += [rng.randrange(1000, 50000, 500), rng.randrange(0, 200000, 5000),
                     f"POINT({lng:.7f} {lat:.7f})", f"POINT({public_lng:.7f} {public_lat:.7f})", today]
        count = len(rows) // 5
        await db.execute(
            "INSERT INTO items (owner_id, title, description, category_id, cat1_id, cat2_id, cat3_id, price_per_day,"
            " deposit, item_condition, location, public_location, available_from) VALUES "
            + ", ".join([one] * count), tuple(rows))
        if start % 100_000 == 0:
            print(f"  loaded {start + count:,} / {n:,}", flush=True)
    await db.execute("ANALYZE TABLE items")
    return time.perf_counter() - started


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def run(args: argparse.Namespace) -> str:
    with bench_database("billi_bench_geo") as url:
        db = await Database.connect(url, pool_size=2)
        try:
            await migrate(db)
            load_s = await load(db, args.items)
            categories = await Categories.load(db)
            rng = random.Random(2)
            rows = []
            summary: dict[str, dict[str, float]] = {}
            identical = True
            for name, (lat, lng) in CENTRES.items():
                # Jitter each query's centre by up to ~300 m, as real users stand in different places.
                centres = [(lat + rng.uniform(-0.0027, 0.0027), lng + rng.uniform(-0.0034, 0.0034))
                           for _ in range(args.queries)]
                for c in centres[:10]:  # warm both paths
                    await nearby(db, NearbyQuery(lat=c[0], lng=c[1]), categories)
                ours: list[float] = []
                answers: dict[int, list[int]] = {}
                for k, (clat, clng) in enumerate(centres):
                    t0 = time.perf_counter()
                    page = await nearby(db, NearbyQuery(lat=clat, lng=clng), categories)
                    ours.append((time.perf_counter() - t0) * 1000)
                    if k < args.seed_queries:
                        answers[k] = [h.item_id for h in page.hits]
                seed: list[float] = []
                for k in range(args.seed_queries):
                    clat, clng = centres[k]
                    t0 = time.perf_counter()
                    got = await db.fetchall(SEED_SQL, (clng, clat, clng, clat))
                    seed.append((time.perf_counter() - t0) * 1000)
                    if [r["id"] for r in got] != answers[k]:
                        identical = False
                in_circle = int(await db.fetchval(
                    "SELECT COUNT(*) FROM items WHERE ST_Distance_Sphere(POINT(%s, %s), public_location) <= 6000",
                    (lng, lat)))
                s = {"ours_p50": statistics.median(ours), "ours_p99": pct(ours, 99),
                     "seed_p50": statistics.median(seed), "seed_p99": pct(seed, 99), "in_circle": in_circle}
                summary[name] = s
                rows.append(f"| {name} ({lat}, {lng}) | {in_circle:,} | {s['ours_p50']:.2f} | {s['ours_p99']:.2f} |"
                            f" {s['seed_p50']:.1f} | {s['seed_p99']:.1f} | {s['seed_p50'] / s['ours_p50']:.0f}× |")
        finally:
            await db.close()
    ratio = summary["dense"]["seed_p50"] / summary["dense"]["ours_p50"]
    line = (f"geo: dense_p99_ms={summary['dense']['ours_p99']:.2f} sparse_p99_ms={summary['sparse']['ours_p99']:.2f}"
            f" ratio_vs_seed={ratio:.0f} identical={'yes' if identical else 'no'}")
    report = "\n".join([
        "# Nearby query: ring search vs the seed full scan",
        "",
        f"- items: {args.items:,} (half uniform over Seoul {SEOUL}, half over South Korea {KOREA})",
        f"- load time this run: {load_s:.0f} s (0 = data reused from an earlier run)",
        f"- query: first page, 20 nearest within 6 km; {args.queries} of ours and {args.seed_queries} seed"
        " queries per centre, centres jittered by up to ~300 m; one client, sequential",
        f"- machine: {platform.machine()}, Python {platform.python_version()}, MariaDB (local, 1 GiB buffer pool)",
        f"- identical results (same ids, same order) on every compared query: {'yes' if identical else 'no'}",
        "",
        "| centre | items within 6 km | ours p50 ms | ours p99 ms | seed p50 ms | seed p99 ms | speed-up (p50) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        *rows,
        "",
        "Seed query (on the public points ours searches): `SELECT id, ST_Distance_Sphere(POINT(lng,lat),"
        " public_location) AS distance FROM items WHERE ST_Distance_Sphere(POINT(lng,lat), public_location) <= 6000"
        " ORDER BY ROUND(distance * 1000), id LIMIT 20` (full scan).",
        "Ours: `market.geo.nearby` — MBRContains on the SPATIAL index over a ring that grows until it holds a page,"
        " exact ST_Distance_Sphere inside it.",
        "",
        line,
        "",
    ])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(report, encoding="utf-8")
    print(report)
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seed-queries", type=int, default=15)
    print(asyncio.run(run(parser.parse_args())), flush=True)


if __name__ == "__main__":
    main()
