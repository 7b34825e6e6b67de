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
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._report import commit_of, write_report  # noqa: E402
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
        # The new items are indexed here, not by the first gateway started during its first measured round.
        await market.indexer.drain()
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


def cpu_s(pid: int) -> float:
    """User plus system CPU seconds a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def summarise(runs: list[dict[str, float]]) -> dict[str, float]:
    """Mean throughput over rounds; the worst round's latencies; totals for the durability check; the server
    process's CPU per acknowledged message (warm-up included)."""
    return {"msgs_per_s": statistics.mean(r["msgs_per_s"] for r in runs),
            "cpu_ms": statistics.mean(r.get("cpu_ms", 0.0) for r in runs),
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
    parser.add_argument("--baseline", type=Path, help="another checkout of the code to run as a fourth server")
    args = parser.parse_args()
    with bench_services("billi_bench_chat") as config:
        clients = asyncio.run(make_pairs(config, args.clients))
        servers: dict[str, tuple[subprocess.Popen[bytes], str]] = {}

        def gateway(root: Path) -> tuple[subprocess.Popen[bytes], str]:
            port = free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith("BILLI_")}
            env.update({"BILLI_DATABASE_URL": config.database_url or "", "BILLI_REDIS_URL": config.redis_url or "",
                        "BILLI_S3_URL": config.s3_url or "", "BILLI_S3_BUCKET": config.s3_bucket,
                        "BILLI_PORT": str(port), "BILLI_LOG_LEVEL": "WARNING", "BILLI_CHAT_RATE_LIMIT": "1000000",
                        # each gateway a node of its own: on a shared channel the idle one decodes every message
                        # the measured one publishes, on the same two cores, during its rounds
                        "BILLI_SOCKETIO_CHANNEL": f"billi-socketio-bench-{port}",
                        "PYTHONPATH": str(root)})
            command = [sys.executable, "-m", "gateway.cli", "serve"]
            if os.environ.get("BENCH_PROFILE") and root == ROOT:  # collapsed stacks of the gateway, for hot spots
                command = ["py-spy", "record", "-r", "200", "-f", "raw", "-o", os.environ["BENCH_PROFILE"], "--",
                           *command]
            proc = subprocess.Popen(command, env=env, cwd=root)
            wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
            return proc, f"http://127.0.0.1:{port}/"

        def bare(*flags: str) -> tuple[subprocess.Popen[bytes], str]:
            port = free_port()
            proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "_bare_server.py"), str(port), *flags])
            wait_ready(f"http://127.0.0.1:{port}/socket.io/?EIO=4&transport=polling", proc)
            return proc, f"http://127.0.0.1:{port}/"

        runs: dict[str, list[dict[str, float]]] = {}
        paced_runs: dict[str, dict[str, float]] = {}
        try:
            servers["ours"] = gateway(ROOT)
            servers["bare"] = bare()
            servers["bare tuned"] = bare("--tuned")
            if args.baseline:
                servers["baseline"] = gateway(args.baseline.resolve())
            # Alternate the servers, round after round, so drift on the machine touches all alike.
            for _ in range(args.rounds):
                for name, (proc, url) in servers.items():
                    before = cpu_s(proc.pid)
                    run = run_clients(url, clients, args.seconds)
                    run["cpu_ms"] = 1000 * (cpu_s(proc.pid) - before) / max(1, run["total_acked"])
                    runs.setdefault(name, []).append(run)
            for name, (_, url) in servers.items():
                paced_runs[name] = run_clients(url, clients, args.seconds, args.rate)
        finally:
            for proc, _ in servers.values():
                proc.send_signal(signal.SIGINT) if os.environ.get("BENCH_PROFILE") else proc.terminate()
                proc.wait(timeout=30)

        async def stored() -> int:
            assert config.database_url
            db = await Database.connect(config.database_url)
            try:
                return int(await db.fetchval("SELECT COUNT(*) FROM messages WHERE sender_kind = 'user'"))
            finally:
                await db.close()

        durable = asyncio.run(stored())
    table = {name: summarise(r) for name, r in runs.items()}
    ours, theirs, tuned = table["ours"], table["bare"], table["bare tuned"]
    ratio = ours["msgs_per_s"] / theirs["msgs_per_s"]
    tuned_ratio = ours["msgs_per_s"] / tuned["msgs_per_s"]
    cpu_ratio = theirs["cpu_ms"] / ours["cpu_ms"]
    tuned_cpu_ratio = tuned["cpu_ms"] / ours["cpu_ms"]
    acked_by_gateways = sum(table[n]["total_acked"] + paced_runs[n]["total_acked"] for n in table
                            if n in ("ours", "baseline"))
    summary = (f"chat: clients={args.clients} msgs_per_s={ours['msgs_per_s']:.0f}"
               f" bare_msgs_per_s={theirs['msgs_per_s']:.0f} ratio={ratio:.3f}"
               f" tuned_bare_msgs_per_s={tuned['msgs_per_s']:.0f} tuned_ratio={tuned_ratio:.3f}"
               f" p99_ms={paced_runs['ours']['p99_ms']:.1f} cpu_ratio={cpu_ratio:.3f} tuned_cpu_ratio={tuned_cpu_ratio:.3f}")
    if "baseline" in table:
        summary += f" baseline_ratio={table['baseline']['msgs_per_s'] / theirs['msgs_per_s']:.3f}"
    described = {
        "ours": "this checkout's `billi serve` (uvloop, orjson codec)",
        "bare": "stock python-socketio echo server (stdlib json, asyncio loop): what a user would otherwise pick",
        "bare tuned": "the same echo server with our tuning (orjson codec, uvloop)",
        "baseline": f"`billi serve` from {args.baseline} (commit {commit_of(args.baseline) if args.baseline else ''})",
    }
    report = "\n".join([
        "# Chat: the real gateway vs a bare python-socketio server",
        "",
        "limits lifted: chat sends per person (BILLI_CHAT_RATE_LIMIT)",
        "",
        f"`python bench/chat.py --clients {args.clients} --seconds {args.seconds:g} --rounds {args.rounds}"
        f" --rate {args.rate:g}{' --baseline ' + str(args.baseline) if args.baseline else ''}` (commit {commit_of(ROOT)})",
        "",
        f"- {args.clients} clients in {args.clients // 2} two-person rooms, websocket transport, all in one client"
        f" process; each sends its next message when the previous one is acknowledged; {args.seconds:.0f} s"
        " measured after a 2 s warm-up",
        "- ours: one `billi serve` process (session check per event, membership checked in the write transaction,"
        " group-committed MariaDB write — every message committed before its ack — AsyncRedisManager fan-out"
        " carrying each member's unread count); each gateway on a Redis"
        " channel of its own (a node alone, as measured)",
        "- MariaDB as `billi up` runs it: `--innodb-flush-log-at-trx-commit=2`, `--innodb-buffer-pool-size=1G`,"
        " `--skip-log-bin` (gateway/local_services.py), the same for every server and round",
        *[f"- {name}: {described[name]}" for name in table],
        "- every server runs with the same garbage-collector setting (`gc.freeze()`, gen0 threshold 50,000)",
        f"- machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()};"
        " servers, clients, MariaDB and Redis share it",
        "",
        "## As fast as possible (closed loop): throughput",
        "",
        f"{args.rounds} alternating rounds per server; msgs/s is the mean (each round in the last column),"
        " latencies the worst round's.",
        "",
        "| server | msgs/s received | server CPU ms/msg | p50 ms | p99 ms | acked | errors | rounds |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        *[f"| {name} | {t['msgs_per_s']:.0f} | {t['cpu_ms']:.3f} | {t['p50_ms']:.1f} | {t['p99_ms']:.1f} |"
          f" {t['acked']:.0f} | {t['errors']:.0f} | {t['rounds']} |" for name, t in table.items()],
        "",
        f"## Steady load: latency at {args.rate:g} messages/s per client ({args.rate * args.clients:.0f} msgs/s offered)",
        "",
        "| server | msgs/s received | p50 ms | p99 ms | errors |",
        "| --- | ---: | ---: | ---: | ---: |",
        *[f"| {name} | {p['msgs_per_s']:.0f} | {p['p50_ms']:.1f} | {p['p99_ms']:.1f} | {p['errors']:.0f} |"
          for name, p in paced_runs.items()],
        "",
        f"- throughput ratio ours/bare: {ratio:.3f}; ours/bare tuned: {tuned_ratio:.3f}; by server CPU per message"
        f" (robust to a busy machine): bare/ours {cpu_ratio:.3f}, bare tuned/ours {tuned_cpu_ratio:.3f}",
        f"- durable: {durable} user messages in MariaDB after all runs for {acked_by_gateways:.0f} acknowledged by the"
        f" gateways (warm-up included): {'every acknowledged message is stored' if durable == acked_by_gateways else 'MISMATCH'};"
        " a message is acknowledged only after its transaction commits",
        "",
        summary,
        "",
    ])
    write_report(RESULTS, report, summary)


if __name__ == "__main__":
    main()
