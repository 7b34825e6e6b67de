"""Bot command round trip at a million items: send `/주변 <동네> 1km` in the assistant room, time until the bot's
result cards arrive, through the real gateway (auth, durable write, bot engine with its room lock, nearby
query on 1M items, card building, durable bot message, fan-out).

Loads N items (default 1,000,000; half over Seoul, half over South Korea, as bench/geo.py), starts one
`billi serve`, signs up U people (default 100) and connects a python-socketio client for each, in a second
process. Two loads: each person sending a command about once a second, and flat out (the next command as
soon as the previous answer arrives). Writes bench/results/bot.md; the last line printed is
``bot: users=<u> items=<n> p50_ms=<x> p99_ms=<y>``.

    python bench/bot.py [--items 1000000] [--users 100] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._services import bench_services  # noqa: E402
from bench.geo import load, pct  # noqa: E402
from bench.chat import wait_ready  # noqa: E402
from gateway.local_services import free_port  # noqa: E402
from market.config import Config  # noqa: E402
from market.db import Database  # noqa: E402
from market.migrate import migrate  # noqa: E402
from market.service import Market  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results" / "bot.md"
PLACES = ["역삼동", "삼성동", "논현동", "서초동", "잠실동", "합정동", "성수동", "여의도동", "신림동", "목동"]

CLIENTS = r'''
import asyncio, json, random, sys, time
import socketio

async def main(url, people, seconds, think, places):
    lat = []
    errors = 0
    async def person(p, k):
        nonlocal errors
        r = random.Random(k)
        got = asyncio.Queue()
        sio = socketio.AsyncClient(reconnection=False)
        async def on_message(m):
            if m.get("room") == p["room"] and m["sender"]["kind"] == "bot":
                got.put_nowait(m)
        sio.on("message", on_message)
        await sio.connect(url, auth={"token": p["token"]}, transports=["websocket"], wait_timeout=60)
        await sio.call("join", {"room": p["room"]}, timeout=60)
        deadline = time.perf_counter() + seconds
        if think:
            await asyncio.sleep(r.uniform(0, 2 * think))
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            ack = await sio.call("message", {"room": p["room"], "text": f"/주변 {r.choice(places)} 1km"}, timeout=60)
            if not ack.get("ok"):
                errors += 1
                continue
            try:
                m = await asyncio.wait_for(got.get(), 30)
                if not m.get("cards"):
                    errors += 1
                lat.append((time.perf_counter() - t0) * 1000)
            except asyncio.TimeoutError:
                errors += 1
            if think:
                await asyncio.sleep(r.uniform(0, 2 * think))
        await sio.disconnect()
    await asyncio.gather(*(person(p, k) for k, p in enumerate(people)))
    print(json.dumps({"lat": lat, "errors": errors}))

people = json.load(open(sys.argv[2]))
asyncio.run(main(sys.argv[1], people, float(sys.argv[3]), float(sys.argv[4]), json.loads(sys.argv[5])))
'''


async def prepare(config: Config, items: int, users: int) -> tuple[float, list[dict[str, object]]]:
    assert config.database_url
    db = await Database.connect(config.database_url, pool_size=2)
    try:
        await migrate(db)
        load_s = await load(db, items)
        await db.execute("DELETE FROM search_outbox")  # this benchmark asks for nearby items, not keywords
        await db.execute("DELETE FROM room_members WHERE user_id > 1")
        await db.execute("DELETE FROM messages")
        await db.execute("DELETE FROM rooms")
        await db.execute("DELETE FROM users WHERE id > 1")
    finally:
        await db.close()
    people = []
    async with Market.open(config.replace(redis_pool_size=8)) as market:
        for n in range(users):
            s = await market.accounts.sign_up({"email": f"bot{n}@bench.billi.kr", "nickname": f"벤치{n}",
                                               "password": "bench1234"})
            room = await market.chat.assistant_room(s.user.id)
            people.append({"token": s.token, "room": room.id})
    return load_s, people


def run_clients(url: str, people: list[dict[str, object]], seconds: float, think: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        script, data = Path(tmp) / "clients.py", Path(tmp) / "people.json"
        script.write_text(CLIENTS, encoding="utf-8")
        data.write_text(json.dumps(people), encoding="utf-8")
        out = subprocess.run([sys.executable, str(script), url, str(data), str(seconds), str(think),
                              json.dumps(PLACES)], capture_output=True, text=True, timeout=seconds + 600)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    with bench_services("billi_bench_bot") as config:
        load_s, people = asyncio.run(prepare(config, args.items, args.users))
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("BILLI_")}
        env.update({"BILLI_DATABASE_URL": config.database_url or "", "BILLI_REDIS_URL": config.redis_url or "",
                    "BILLI_S3_URL": config.s3_url or "", "BILLI_S3_BUCKET": config.s3_bucket,
                    "BILLI_PORT": str(port), "BILLI_LOG_LEVEL": "WARNING",
                    # each person types a command a second, or flat out: far past a person's allowances
                    "BILLI_CHAT_RATE_LIMIT": "1000000", "BILLI_COMMAND_RATE_LIMIT": "1000000"})
        gateway = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve"], env=env, cwd=ROOT)
        url = f"http://127.0.0.1:{port}/"
        try:
            wait_ready(url + "readyz", gateway)
            run_clients(url, people[:10], 3, 0)  # warm up
            paced = run_clients(url, people, args.seconds, 1.0)
            flat = run_clients(url, people, args.seconds, 0)
        finally:
            gateway.terminate()
            gateway.wait(timeout=30)
    rows = []
    for label, r in (("about one command per second each", paced), ("flat out", flat)):
        lat = r["lat"]
        assert isinstance(lat, list) and lat
        rows.append(f"| {args.users} people, {label} | {len(lat)} | {len(lat) / args.seconds:.0f} |"
                    f" {statistics.median(lat):.1f} | {pct(lat, 99):.1f} | {r['errors']} |")
    report = "\n".join([
        "# Bot: `/주변 <동네> 1km` round trip at a million items",
        "",
        "limits lifted: chat sends per person (BILLI_CHAT_RATE_LIMIT), bot commands per person"
        " (BILLI_COMMAND_RATE_LIMIT)",
        "",
        f"- items: {args.items:,} (half over Seoul, half over South Korea); load this run: {load_s:.0f} s"
        " (0 = reused)",
        "- one `billi serve` process; the people's clients in one other process; each command is timed from"
        " sending it to receiving the bot's message with the result cards (the command and the answer are both"
        " stored in MariaDB first)",
        f"- places: {', '.join(PLACES)} (dense Seoul neighbourhoods, 5 nearest per answer)",
        f"- machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}; gateway,"
        " clients, MariaDB and Redis share it",
        "",
        "| load | commands | commands/s | p50 ms | p99 ms | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        *rows,
        "",
    ])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(report, encoding="utf-8")
    print(report)
    lat = paced["lat"]
    assert isinstance(lat, list)
    print(f"bot: users={args.users} items={args.items} p50_ms={statistics.median(lat):.1f}"
          f" p99_ms={pct(lat, 99):.1f}")


if __name__ == "__main__":
    main()
