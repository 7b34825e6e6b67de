"""Chat throughput and latency through the real gateway vs a bare python-socketio echo server.

N clients in pairs (one deal room per pair) send — as fast as acks allow (throughput), then at a steady pace
(latency) — through (1) a real `billi serve` process
— session auth, membership, durable MariaDB write, Redis fan-out with unread counts — and (2) a bare echo
server with the same events, each from one separate client process, on the same machine. Checks that
every acknowledged message is in the database. Writes bench/results/chat.md.

    python bench/chat.py [--clients 200] [--seconds 20] [--rounds 3] [--rate 5]
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
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._services import bench_services  # noqa: E402
from gateway.local_services import free_port  # noqa: E402
from market.config import Config  # noqa: E402
from market.db import Database  # noqa: E402
from market.service import Market  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "chat.md"


async def make_pairs(config: Config, clients: int) -> list[dict[str, object]]:
    """Fresh people, items and deal rooms; returns each client's token and room."""
    async with Market.open(config) as market:
        await market.db.execute("SET FOREIGN_KEY_CHECKS = 0")
        for table in ("messages", "room_members", "rooms", "item_photos", "wishes", "items", "users"):
            await market.db.execute(f"DELETE FROM {table}")
        await market.db.execute("SET FOREIGN_KEY_CHECKS = 1")
        out: list[dict[str, object]] = []
        for p in range(clients // 2):
            owner = await market.accounts.sign_up({"email": f"o{p}@bench.example", "nickname": f"owner{p}",
                                                   "password": "bench1234"})
            borrower = await market.accounts.sign_up({"email": f"b{p}@bench.example", "nickname": f"borrower{p}",
                                                      "password": "bench1234"})
            item = await market.items.create(owner.user.id, {
                "title": f"물건 {p}", "description": "벤치", "category_id": 7, "price_per_day": 1000,
                "deposit": 0, "condition": "상", "lat": 37.5, "lng": 127.0})
            room, _ = await market.chat.open_deal_room(item["id"], borrower.user.id)
            out += [{"token": owner.token, "room": room.id}, {"token": borrower.token, "room": room.id}]
        return out


def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError as e:
            if getattr(e, "code", None):  # an HTTP error means it answers
                return
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def run_clients(url: str, clients: list[dict[str, object]], seconds: float, rate: float = 0.0) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(clients, f)
    try:
        out = subprocess.run([sys.executable, str(ROOT / "bench" / "_chat_clients.py"), url, f.name, str(seconds),
                              str(rate)],
                             capture_output=True, text=True, timeout=seconds + 300)
    finally:
        os.unlink(f.name)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def summarise(runs: list[dict[str, float]]) -> dict[str, float]:
    """Mean throughput over rounds; the worst round's latencies; totals for the durability check."""
    return {"msgs_per_s": statistics.mean(r["msgs_per_s"] for r in runs),
            "p50_ms": max(r["p50_ms"] for r in runs), "p99_ms": max(r["p99_ms"] for r in runs),
            "acked": sum(r["acked"] for r in runs), "total_acked": sum(r["total_acked"] for r in runs),
            "errors": sum(r["errors"] for r in runs),
            "rounds": " / ".join(f"{r['msgs_per_s']:.0f}" for r in runs)}  # type: ignore[dict-item]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per server (default 3)")
    parser.add_argument("--rate", type=float, default=5.0,
                        help="messages per second per client for the steady-load latency run (default 5)")
    args = parser.parse_args()
    with bench_services("billi_bench_chat") as config:
        clients = asyncio.run(make_pairs(config, args.clients))
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("BILLI_")}
        env.update({"BILLI_DATABASE_URL": config.database_url or "", "BILLI_REDIS_URL": config.redis_url or "",
                    "BILLI_S3_URL": config.s3_url or "", "BILLI_S3_BUCKET": config.s3_bucket,
                    "BILLI_PORT": str(port), "BILLI_LOG_LEVEL": "WARNING", "BILLI_CHAT_RATE_LIMIT": "1000000"})
        command = [sys.executable, "-m", "gateway.cli", "serve"]
        if os.environ.get("BENCH_PROFILE"):  # collapsed stacks of the gateway, for finding hot spots
            command = ["py-spy", "record", "-r", "200", "-f", "raw", "-o", os.environ["BENCH_PROFILE"], "--", *command]
        gateway = subprocess.Popen(command, env=env, cwd=ROOT)
        bare_port = free_port()
        bare = subprocess.Popen([sys.executable, str(ROOT / "bench" / "_bare_server.py"), str(bare_port)])
        ours_url, bare_url = f"http://127.0.0.1:{port}/", f"http://127.0.0.1:{bare_port}/"
        try:
            wait_ready(ours_url + "readyz", gateway)
            wait_ready(bare_url + "socket.io/?EIO=4&transport=polling", bare)
            # Alternate the two servers, round after round, so drift on the machine touches both alike.
            ours_runs, bare_runs = [], []
            for _ in range(args.rounds):
                ours_runs.append(run_clients(ours_url, clients, args.seconds))
                bare_runs.append(run_clients(bare_url, clients, args.seconds))
            paced = run_clients(ours_url, clients, args.seconds, args.rate)
            theirs_paced = run_clients(bare_url, clients, args.seconds, args.rate)
        finally:
            for proc in (gateway, bare):
                proc.terminate()
                proc.wait(timeout=30)

        async def stored() -> int:
            assert config.database_url
            db = await Database.connect(config.database_url)
            try:
                return int(await db.fetchval("SELECT COUNT(*) FROM messages WHERE sender_kind = 'user'"))
            finally:
                await db.close()

        durable = asyncio.run(stored())
    ours = summarise(ours_runs)
    theirs = summarise(bare_runs)
    ratio = ours["msgs_per_s"] / theirs["msgs_per_s"]
    report = "\n".join([
        "# Chat: the real gateway vs a bare python-socketio server",
        "",
        "limits lifted: chat sends per person (BILLI_CHAT_RATE_LIMIT)",
        "",
        f"- {args.clients} clients in {args.clients // 2} two-person rooms, websocket transport, all in one client"
        f" process; each sends its next message when the previous one is acknowledged; {args.seconds:.0f} s"
        " measured after a 2 s warm-up",
        "- ours: one `billi serve` process (session check per event, membership checked in the write transaction,"
        " group-committed MariaDB write, AsyncRedisManager fan-out carrying each member's unread count)",
        "- bare: python-socketio AsyncServer on aiohttp, in-memory rooms, echo to the room (no auth, DB or Redis)",
        "- both servers run with the same garbage-collector setting (`gc.freeze()`, gen0 threshold 50,000)",
        f"- machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()};"
        " server, clients, MariaDB and Redis share it",
        "",
        "## As fast as possible (closed loop): throughput",
        "",
        f"{args.rounds} alternating rounds per server; msgs/s is the mean (each round in the last column),"
        " latencies the worst round's.",
        "",
        "| server | msgs/s received | p50 ms | p99 ms | acked | errors | rounds |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
        f"| ours | {ours['msgs_per_s']:.0f} | {ours['p50_ms']:.1f} | {ours['p99_ms']:.1f} | {ours['acked']:.0f} |"
        f" {ours['errors']:.0f} | {ours['rounds']} |",
        f"| bare | {theirs['msgs_per_s']:.0f} | {theirs['p50_ms']:.1f} | {theirs['p99_ms']:.1f} |"
        f" {theirs['acked']:.0f} | {theirs['errors']:.0f} | {theirs['rounds']} |",
        "",
        f"## Steady load: latency at {args.rate:g} messages/s per client ({args.rate * args.clients:.0f} msgs/s offered)",
        "",
        "| server | msgs/s received | p50 ms | p99 ms | errors |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| ours | {paced['msgs_per_s']:.0f} | {paced['p50_ms']:.1f} | {paced['p99_ms']:.1f} | {paced['errors']:.0f} |",
        f"| bare | {theirs_paced['msgs_per_s']:.0f} | {theirs_paced['p50_ms']:.1f} | {theirs_paced['p99_ms']:.1f} |"
        f" {theirs_paced['errors']:.0f} |",
        "",
        f"- throughput ratio ours/bare: {ratio:.3f}",
        f"- durable: {durable} user messages in MariaDB after both runs for"
        f" {ours['total_acked'] + paced['total_acked']:.0f} acknowledged"
        f" (warm-up included): {'every acknowledged message is stored' if durable == ours['total_acked'] + paced['total_acked'] else 'MISMATCH'};"
        " a message is acknowledged only after its transaction commits",
        "",
    ])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(report, encoding="utf-8")
    print(report)
    print(f"chat: clients={args.clients} msgs_per_s={ours['msgs_per_s']:.0f} bare_msgs_per_s={theirs['msgs_per_s']:.0f}"
          f" ratio={ratio:.3f} p99_ms={paced['p99_ms']:.1f}")


if __name__ == "__main__":
    main()
