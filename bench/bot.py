"""Bot command round trips at a million items, through the real gateway (auth, durable write, the bot engine
with its room lock, the nearby or keyword query, card building, the durable bot message, fan-out).

Loads N items (default 1,000,000; half over Seoul, half over South Korea, as bench/geo.py) and indexes a
slice of them for keyword search, starts `billi serve` (and with ``--baseline DIR`` a second one from another
checkout of the code, e.g. a `git worktree` of an older commit, on the same services), signs up U people
(default 100) and drives them from a second process with python-socketio clients. For each gateway, in
alternating rounds:

- plain messages flat out (people in pairs in deal rooms, the chat benchmark's load): the gateway's msgs/s;
- each command flat out (`/주변 <동네> 1km`, `/검색 캠핑 <동네>`; the next one as soon as the answer with its
  cards arrives): commands/s, and the gateway process's CPU per command (utime+stime from /proc);
- `/주변` at half of that gateway's flat-out rate: the latency people feel when the node is busy, not full.

``cmd_ratio`` is `/주변` commands/s flat out over plain msgs/s on the same gateway in the same run.
Writes bench/results/bot.md, ending with the line printed last:
``bot: users=<u> items=<n> cmd_ratio=<r> p99_ms=<p99 at half flat-out> cpu_ms_near=<x> cpu_ms_search=<y> …``

    python bench/bot.py [--items 1000000] [--users 100] [--seconds 20] [--rounds 2] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._report import commit_of, write_report  # noqa: E402
from bench._services import bench_services  # noqa: E402
from bench.chat import run_clients as run_chat_clients  # noqa: E402
from bench.chat import wait_ready  # noqa: E402
from bench.geo import load, pct  # noqa: E402
from gateway.local_services import free_port  # noqa: E402
from market.config import Config  # noqa: E402
from market.db import Database  # noqa: E402
from market.migrate import migrate  # noqa: E402
from market.service import Market  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results" / "bot.md"
PLACES = ["역삼동", "삼성동", "논현동", "서초동", "잠실동", "합정동", "성수동", "여의도동", "신림동", "목동"]
COMMANDS = {"near": "/주변 {place} 1km", "search": "/검색 캠핑 {place}"}
SEARCH_DOCS = 20_000  # items indexed for keyword search (the first ids: half of them over Seoul)

CLIENTS = r'''
import asyncio, json, random, sys, time
import socketio

async def main(url, people, seconds, think, places, template):
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
            ack = await sio.call("message", {"room": p["room"], "text": template.format(place=r.choice(places))},
                                 timeout=60)
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
asyncio.run(main(sys.argv[1], people, float(sys.argv[3]), float(sys.argv[4]), json.loads(sys.argv[5]), sys.argv[6]))
'''


async def prepare(config: Config, items: int, users: int) -> tuple[float, list[dict[str, object]],
                                                                     list[dict[str, object]]]:
    """The items (kept between runs), a slice of them indexed for search, fresh people with their assistant
    rooms, and the same people in pairs in deal rooms (for the plain-message load)."""
    assert config.database_url
    db = await Database.connect(config.database_url, pool_size=2)
    try:
        await migrate(db)
        await db.execute("SET FOREIGN_KEY_CHECKS = 0")
        for table in ("messages", "room_members", "rooms"):
            await db.execute(f"DELETE FROM {table}")
        await db.execute("DELETE FROM items WHERE owner_id > 1")  # the pairs' items of an earlier run
        await db.execute("DELETE FROM users WHERE id > 1")
        await db.execute("SET FOREIGN_KEY_CHECKS = 1")
        load_s = await load(db, items)
        await db.execute("DELETE FROM search_outbox")  # only the slice below is searched by keyword
    finally:
        await db.close()
    people, pairs = [], []
    async with Market.open(config.replace(redis_pool_size=8)) as market:
        indexed = int(await market.db.fetchval(
            "SELECT COUNT(*) FROM search_docs d JOIN items i ON i.id = d.item_id AND i.owner_id = 1"))
        if indexed < min(SEARCH_DOCS, items) // 2:  # (items loaded again: their ids are new)
            stale = [int(r["item_id"]) for r in await market.db.fetchall("SELECT item_id FROM search_docs")]
            for k in range(0, len(stale), 1000):
                await market.search_backend.remove(stale[k:k + 1000])
            ids = [int(r["id"]) for r in await market.db.fetchall("SELECT id FROM items ORDER BY id LIMIT %s",
                                                                  (SEARCH_DOCS,))]
            for k in range(0, len(ids), 1000):
                await market.indexer.index_items(ids[k:k + 1000])
        sessions = []
        for n in range(users):
            s = await market.accounts.sign_up({"email": f"bot{n}@bench.billi.kr", "nickname": f"벤치{n}",
                                               "password": "bench1234"})
            room = await market.chat.assistant_room(s.user.id)
            people.append({"token": s.token, "room": room.id})
            sessions.append(s)
        for owner, borrower in zip(sessions[0::2], sessions[1::2]):
            item = await market.items.create(owner.user.id, {
                "title": f"벤치 {owner.user.id}", "description": "벤치", "category_id": 7, "price_per_day": 1000,
                "deposit": 0, "condition": "상", "lat": 37.5, "lng": 127.0})
            room, _ = await market.chat.open_deal_room(item["id"], borrower.user.id)
            pairs += [{"token": owner.token, "room": room.id}, {"token": borrower.token, "room": room.id}]
        await market.db.execute("DELETE FROM search_outbox")
    return load_s, people, pairs


def run_clients(url: str, people: list[dict[str, object]], seconds: float, think: float,
                template: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        script, data = Path(tmp) / "clients.py", Path(tmp) / "people.json"
        script.write_text(CLIENTS, encoding="utf-8")
        data.write_text(json.dumps(people), encoding="utf-8")
        out = subprocess.run([sys.executable, str(script), url, str(data), str(seconds), str(think),
                              json.dumps(PLACES), template], capture_output=True, text=True, timeout=seconds + 600)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def cpu_s(pid: int) -> float:
    """User plus system CPU seconds a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Gateway:
    """One `billi serve` process started from a checkout of the code, with what was measured on it."""

    def __init__(self, name: str, root: Path, config: Config) -> None:
        self.name, self.root = name, root
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("BILLI_")}
        env.update({"BILLI_DATABASE_URL": config.database_url or "", "BILLI_REDIS_URL": config.redis_url or "",
                    "BILLI_S3_URL": config.s3_url or "", "BILLI_S3_BUCKET": config.s3_bucket,
                    "BILLI_PORT": str(port), "BILLI_LOG_LEVEL": "WARNING", "PYTHONPATH": str(root),
                    # each person types a command a second, or flat out: far past a person's allowances
                    "BILLI_CHAT_RATE_LIMIT": "1000000", "BILLI_COMMAND_RATE_LIMIT": "1000000"})
        command = [sys.executable, "-m", "gateway.cli", "serve"]
        if profile := os.environ.get("BENCH_PROFILE"):  # py-spy's raw stacks of the gateway, for finding hot spots
            command = ["py-spy", "record", "-r", "200", "-f", "raw", "-o", f"{profile}.{name}", "--", *command]
        self.proc = subprocess.Popen(command, env=env, cwd=root)
        self.url = f"http://127.0.0.1:{port}/"
        self.runs: dict[str, list[dict[str, float]]] = {}

    def measure(self, what: str, seconds: float, fn: object) -> dict[str, object]:
        before = cpu_s(self.proc.pid)
        out: dict[str, object] = fn()  # type: ignore[operator]
        used = cpu_s(self.proc.pid) - before
        out["cpu_s"] = used
        self.runs.setdefault(what, []).append(out)  # type: ignore[arg-type]
        return out

    def stop(self) -> None:
        if os.environ.get("BENCH_PROFILE"):
            self.proc.send_signal(signal.SIGINT)  # py-spy writes its profile on Control-C
        else:
            self.proc.terminate()
        self.proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per gateway (default 2)")
    parser.add_argument("--baseline", type=Path, help="another checkout of the code to compare with, same run")
    args = parser.parse_args()
    with bench_services("billi_bench_bot") as config:
        load_s, people, pairs = asyncio.run(prepare(config, args.items, args.users))
        gateways = [Gateway("ours", ROOT, config)]
        if args.baseline:
            gateways.append(Gateway("baseline", args.baseline.resolve(), config))
        try:
            for g in gateways:
                wait_ready(g.url + "readyz", g.proc)
                for template in COMMANDS.values():
                    run_clients(g.url, people[:10], 3, 0, template)  # warm up
            for _ in range(args.rounds):  # alternate the gateways so drift on the machine touches both alike
                for g in gateways:
                    g.measure("plain", args.seconds, lambda: run_chat_clients(g.url, pairs, args.seconds))
                    for kind, template in COMMANDS.items():
                        g.measure(kind, args.seconds, lambda: run_clients(g.url, people, args.seconds, 0, template))
            for g in gateways:  # `/주변` at half of this gateway's flat-out rate
                flat = statistics.mean(len(r["lat"]) for r in g.runs["near"]) / args.seconds  # type: ignore[arg-type]
                think = args.users / (flat / 2)
                g.half_offered = flat / 2  # type: ignore[attr-defined]
                g.measure("half", args.seconds, lambda: run_clients(g.url, people, args.seconds, think,
                                                                   COMMANDS["near"]))
        finally:
            for g in gateways:
                g.stop()

    def figures(g: Gateway) -> dict[str, float]:
        plain = g.runs["plain"]
        out = {"plain_per_s": statistics.mean(r["msgs_per_s"] for r in plain),
               "plain_cpu_ms": 1000 * sum(r["cpu_s"] for r in plain) / sum(r["total_acked"] for r in plain)}
        for kind in COMMANDS:
            runs = g.runs[kind]
            done = sum(len(r["lat"]) for r in runs)  # type: ignore[arg-type]
            out[f"{kind}_per_s"] = done / (args.seconds * len(runs))
            out[f"{kind}_cpu_ms"] = 1000 * sum(r["cpu_s"] for r in runs) / done  # type: ignore[misc]
            out[f"{kind}_p50"] = statistics.median(x for r in runs for x in r["lat"])  # type: ignore[attr-defined]
            out[f"{kind}_errors"] = sum(r["errors"] for r in runs)  # type: ignore[misc]
        half = g.runs["half"][0]
        out["half_offered"] = g.half_offered  # type: ignore[attr-defined]
        out["half_per_s"] = len(half["lat"]) / args.seconds  # type: ignore[arg-type]
        out["half_p50"] = statistics.median(half["lat"])  # type: ignore[arg-type]
        out["half_p99"] = pct(half["lat"], 99)  # type: ignore[arg-type]
        out["half_errors"] = half["errors"]  # type: ignore[assignment]
        out["cmd_ratio"] = out["near_per_s"] / out["plain_per_s"]
        return out

    results = {g.name: figures(g) for g in gateways}
    rows = []
    for name, f in results.items():
        rows.append(f"| {name} | {f['plain_per_s']:.0f} | {f['plain_cpu_ms']:.2f} | {f['near_per_s']:.0f} |"
                    f" {f['near_cpu_ms']:.1f} | {f['near_p50']:.0f} | {f['search_per_s']:.0f} |"
                    f" {f['search_cpu_ms']:.1f} | {f['search_p50']:.0f} | {f['cmd_ratio']:.3f} |"
                    f" {f['half_per_s']:.0f} | {f['half_p50']:.1f} | {f['half_p99']:.1f} |"
                    f" {f['near_errors'] + f['search_errors'] + f['half_errors']:.0f} |")
    ours = results["ours"]
    ab = []
    if "baseline" in results:
        base = results["baseline"]
        ab = ["", f"CPU per command, ours / baseline: `/주변` {ours['near_cpu_ms'] / base['near_cpu_ms']:.2f}×,"
              f" `/검색` {ours['search_cpu_ms'] / base['search_cpu_ms']:.2f}×; per plain message"
              f" {ours['plain_cpu_ms'] / base['plain_cpu_ms']:.2f}×.",
              f"Baseline: {args.baseline}"
              f" (commit {commit_of(args.baseline)}); ours: commit {commit_of(ROOT)}."]
    summary = (f"bot: users={args.users} items={args.items} cmd_ratio={ours['cmd_ratio']:.3f}"
               f" p99_ms={ours['half_p99']:.1f} p50_ms={ours['half_p50']:.1f}"
               f" near_per_s={ours['near_per_s']:.0f} search_per_s={ours['search_per_s']:.0f}"
               f" cpu_ms_near={ours['near_cpu_ms']:.1f} cpu_ms_search={ours['search_cpu_ms']:.1f}"
               f" cpu_ms_plain={ours['plain_cpu_ms']:.2f}")
    if "baseline" in results:
        base = results["baseline"]
        summary += (f" cpu_vs_baseline_near={ours['near_cpu_ms'] / base['near_cpu_ms']:.2f}"
                    f" cpu_vs_baseline_search={ours['search_cpu_ms'] / base['search_cpu_ms']:.2f}")
    report = "\n".join([
        "# Bot: command round trips at a million items",
        "",
        "limits lifted: chat sends per person (BILLI_CHAT_RATE_LIMIT), bot commands per person"
        " (BILLI_COMMAND_RATE_LIMIT)",
        "",
        f"`python bench/bot.py --items {args.items} --users {args.users} --seconds {args.seconds:g}"
        f" --rounds {args.rounds}{' --baseline ' + str(args.baseline) if args.baseline else ''}`",
        "",
        f"- items: {args.items:,} (half over Seoul, half over South Korea), {min(SEARCH_DOCS, args.items):,} of them"
        f" indexed for keyword search; load this run: {load_s:.0f} s (0 = reused)",
        f"- one `billi serve` process per code version, the {args.users} people's clients in one other process;"
        " each command is timed from sending it to receiving the bot's message with the result cards (the"
        " command and the answer are both stored in MariaDB first)",
        f"- commands: `{COMMANDS['near']}` and `{COMMANDS['search']}`, places: {', '.join(PLACES)}"
        " (5 results per answer); plain: the same people in pairs in deal rooms, closed loop (bench/chat.py's"
        " clients), msgs/s received",
        f"- {args.rounds} alternating rounds per gateway, {args.seconds:g} s each load; CPU is the gateway"
        " process's own (utime+stime), per command answered / per message acknowledged",
        "- half load: each person's next `/주변` after a random pause, so the offered rate is about half that"
        " gateway's flat-out `/주변` rate",
        f"- machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}; gateways,"
        " clients, MariaDB and Redis share it",
        "",
        "| gateway | plain msgs/s | CPU ms/msg | `/주변`/s | CPU ms | p50 ms | `/검색`/s | CPU ms | p50 ms |"
        " cmd_ratio | half: cmds/s | p50 ms | p99 ms | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *rows,
        *ab,
        "",
        summary,
        "",
    ])
    write_report(RESULTS, report, summary)


if __name__ == "__main__":
    main()
