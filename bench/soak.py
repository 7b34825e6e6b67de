"""Soak: many connected chat clients on one gateway node for a long while — does it stay flat?

N clients in pairs (one deal room per pair, as in bench/chat.py) stay connected to one `billi serve` process
for M minutes; a share of them (``--senders``) sends a message every ``--interval`` seconds, open loop. The
clients run in several processes (``--procs``; a pair never straddles two). After everyone is connected and a
warm-up, the gateway process's RSS (/proc/<pid>/status VmRSS) and open files (/proc/<pid>/fd, by kind) are
sampled at the start, after every minute and at the end, with the CPU of every process involved and the
counters of MariaDB and Redis that grow in a long run (redo log, checkpoint age, purge backlog, keys, AOF), so
a minute that got slower can be told apart by what else changed. Latency is measured per minute from send
until the OTHER member of the room receives the message (the Redis fan-out), and until the ack (the
durable MariaDB write).

"lost" = acknowledged messages not in MariaDB + acknowledged messages the partner never received. Passes when
``rss_growth_mb`` ≤ 100, the last minute's delivery p99 ≤ 1.5 × the first minute's, nothing is lost, and no
send was refused or unanswered and no client was dropped. Writes bench/results/soak.md even when it fails
(then exits 1); the last line printed (also the report's last line) is
``soak: clients=… minutes=… rss_growth_mb=… p99_ms_first=… p99_ms_last=… lost=…``.

    python bench/soak.py [--clients 1000] [--minutes 10] [--interval 2] [--senders 0.5] [--procs 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pymysql
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._services import bench_services, gateway_env  # noqa: E402
from bench.chat import wait_ready  # noqa: E402
from bench.geo import pct  # noqa: E402
from gateway.local_services import free_port  # noqa: E402
from market.config import Config  # noqa: E402
from market.db import DatabaseTarget, drop_database  # noqa: E402
from market.service import Market  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "soak.md"
MAX_RSS_GROWTH_MB = 100.0
MAX_P99_RATIO = 1.5
SLOW_MS = 100.0  # deliveries slower than this are counted per minute
SETUP_AT_ONCE = 4  # pairs made concurrently: sign-up hashes passwords (argon2id) in threads, 2 cores
FILE_KINDS = ("clients", "MariaDB", "Redis", "S3", "other")
PROCESSES = ("gateway", "clients", "MariaDB", "Redis")
INNODB_STATUS = ("Innodb_os_log_written", "Innodb_checkpoint_age", "Innodb_buffer_pool_pages_dirty",
                 "Innodb_history_list_length")


@dataclass
class Sample:
    """The gateway process, the other processes' CPU and the services' counters at one moment."""

    label: str
    at: float  # CLOCK_MONOTONIC
    rss_mb: float  # the gateway's
    files: Counter[str]  # the gateway's open files by kind (see open_files_by_kind)
    cpu_s: dict[str, float]  # user + system CPU seconds so far, per process (group) of PROCESSES
    machine_busy_s: float  # all cores' non-idle seconds so far (the whole machine, other work included)
    services: dict[str, float] = field(default_factory=dict)  # see Probe.services

    @property
    def open_files(self) -> int:
        return sum(self.files.values())


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()  # after the command name, which may contain spaces
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (stat fields 14, 15)


def tcp_sockets(pid: int) -> dict[str, tuple[int, int, str]]:
    """Socket inode -> (local port, remote port, TCP state) for the network namespace of ``pid``."""
    out: dict[str, tuple[int, int, str]] = {}
    for table in ("tcp", "tcp6"):
        with open(f"/proc/{pid}/net/{table}", encoding="ascii") as f:
            next(f)
            for line in f:
                cols = line.split()
                out[cols[9]] = (int(cols[1].rsplit(":", 1)[1], 16), int(cols[2].rsplit(":", 1)[1], 16), cols[3])
    return out


def listening_pid(port: int) -> int | None:
    """The local process listening on ``port`` (to read its CPU), or None (a remote or unreadable service)."""
    wanted = {f"socket:[{inode}]" for inode, (local, _, state) in tcp_sockets(os.getpid()).items()
              if local == port and state == "0A"}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") in wanted for fd in os.listdir(f"/proc/{pid}/fd")):
                return int(pid)
        except OSError:  # gone, or not ours to read
            continue
    return None


class Probe:
    """Reads the gateway process, the client processes and the services once a minute."""

    def __init__(self, config: Config, gateway_pid: int, gateway_port: int) -> None:
        assert config.database_url and config.redis_url
        self.gateway_pid = gateway_pid
        self.gateway_port = gateway_port
        self.client_pids: list[int] = []
        self.service_ports = {int(urlsplit(u).port or 0): name for name, u in (
            ("MariaDB", config.database_url), ("Redis", config.redis_url), ("S3", config.s3_url)) if u}
        self.service_pids = {name: listening_pid(port) for port, name in self.service_ports.items()}
        target = DatabaseTarget.parse(config.database_url)
        self.db = pymysql.connect(host=target.host, port=target.port, user=target.user, password=target.password,
                                  autocommit=True)
        self.redis = redis.Redis.from_url(config.redis_url)

    def close(self) -> None:
        self.db.close()
        self.redis.close()

    def facts(self) -> dict[str, str]:
        """The settings the numbers depend on, asked of the running MariaDB and Redis themselves."""
        with self.db.cursor() as cur:
            cur.execute("SELECT @@version, @@innodb_buffer_pool_size, @@innodb_log_file_size,"
                        " @@innodb_flush_log_at_trx_commit, @@max_connections, @@log_bin,"
                        " @@innodb_adaptive_hash_index")
            version, pool, log_file, flush, conns, binlog, ahi = cur.fetchone()
            cur.execute("SHOW GLOBAL STATUS LIKE 'Innodb_checkpoint_max_age'")
            max_age = cur.fetchone()
        info = self.redis.info("server")
        aof, fsync = self.redis.config_get("appendonly"), self.redis.config_get("appendfsync")
        return {
            "mariadb": f"MariaDB {version}: innodb_buffer_pool_size {int(pool) // 2**20} MB, innodb_log_file_size"
                       f" {int(log_file) // 2**20} MB"
                       + (f" (checkpoint max age {int(max_age[1]) / 2**20:.0f} MB)" if max_age else "")
                       + f", innodb_flush_log_at_trx_commit={flush}, binary log"
                       f" {'on' if binlog else 'off'}, max_connections {conns}, adaptive hash index"
                       f" {'on' if ahi else 'off'}",
            "redis": f"Redis {info.get('redis_version')}: appendonly {aof.get('appendonly')},"
                     f" appendfsync {fsync.get('appendfsync')}",
        }

    def open_files_by_kind(self) -> Counter[str]:
        """The gateway's open files by kind — client sockets, connections to each service, the rest — so growth
        in the count says what grows. Sockets are matched to ports through /proc/<pid>/net/tcp{,6}."""
        sockets = tcp_sockets(self.gateway_pid)
        kinds: Counter[str] = Counter()
        for fd in os.listdir(f"/proc/{self.gateway_pid}/fd"):
            try:
                target = os.readlink(f"/proc/{self.gateway_pid}/fd/{fd}")
            except FileNotFoundError:  # closed meanwhile
                continue
            local, remote, state = sockets.get(target.removeprefix("socket:[").rstrip("]"), (0, 0, ""))
            if state and state != "0A" and local == self.gateway_port:  # (0A = listening)
                kinds["clients"] += 1
            elif state and remote in self.service_ports:
                kinds[self.service_ports[remote]] += 1
            else:
                kinds["other"] += 1
        return kinds

    def services(self) -> dict[str, float]:
        """MariaDB's redo bytes written so far, checkpoint age, dirty pages and purge backlog (history list);
        Redis's keys, memory, AOF size, delayed AOF fsyncs and commands so far."""
        with self.db.cursor() as cur:
            cur.execute("SHOW GLOBAL STATUS WHERE Variable_name IN ("
                        + ", ".join(["%s"] * len(INNODB_STATUS)) + ")", INNODB_STATUS)
            out = {name: float(value) for name, value in cur.fetchall()}
        info = self.redis.info()
        out["redis_keys"] = float(sum(v["keys"] for k, v in info.items()
                                      if k.startswith("db") and isinstance(v, dict)))
        for key in ("used_memory", "aof_current_size", "aof_delayed_fsync", "total_commands_processed"):
            if key in info:
                out[key] = float(info[key])
        return out

    def sample(self, label: str) -> Sample:
        rss_kb = 0
        with open(f"/proc/{self.gateway_pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss_kb = int(line.split()[1])
        with open("/proc/stat", encoding="ascii") as f:
            cpu = [int(x) for x in f.readline().split()[1:8]]
        cpu_s = {"gateway": cpu_seconds(self.gateway_pid),
                 "clients": sum(cpu_seconds(pid) for pid in self.client_pids),
                 **{name: cpu_seconds(pid) if pid else math.nan for name, pid in self.service_pids.items()}}
        return Sample(label, time.monotonic(), rss_kb / 1024, self.open_files_by_kind(), cpu_s,
                      (sum(cpu) - cpu[3] - cpu[4]) / os.sysconf("SC_CLK_TCK"), self.services())


def open_files_limit(pid: int) -> int:
    """The soft 'Max open files' of process ``pid``."""
    with open(f"/proc/{pid}/limits", encoding="ascii") as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    raise RuntimeError("no open-files limit in /proc/<pid>/limits")


def raise_open_files_limit(needed: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE (the gateway and client processes inherit it) to the hard limit,
    so 1,000 sockets fit; returns the new soft limit. Fails early if even the hard limit is too low."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, needed)
    if target < needed:
        raise SystemExit(f"the open-files hard limit is {hard}, the soak needs about {needed}:"
                         " raise it (ulimit -Hn)")
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


async def make_pairs(config: Config, clients: int) -> list[dict[str, Any]]:
    """A fresh database with clients/2 owner–borrower pairs, each with an item and its deal room (as
    bench/chat.py makes them, a few pairs at a time: 1,000 sign-ups one by one take minutes)."""
    assert config.database_url
    await drop_database(DatabaseTarget.parse(config.database_url))
    out: list[dict[str, Any]] = [{} for _ in range(clients)]
    gate = asyncio.Semaphore(SETUP_AT_ONCE)
    async with Market.open(config) as market:
        async def pair(p: int) -> None:
            async with gate:
                owner = await market.accounts.sign_up({"email": f"o{p}@bench.example", "nickname": f"owner{p}",
                                                       "password": "bench1234"})
                borrower = await market.accounts.sign_up({"email": f"b{p}@bench.example",
                                                          "nickname": f"borrower{p}", "password": "bench1234"})
                item = await market.items.create(owner.user.id, {
                    "title": f"물건 {p}", "description": "벤치", "category_id": 7, "price_per_day": 1000,
                    "deposit": 0, "condition": "상", "lat": 37.5, "lng": 127.0})
                room, _ = await market.chat.open_deal_room(item["id"], borrower.user.id)
                out[2 * p] = {"token": owner.token, "room": room.id}
                out[2 * p + 1] = {"token": borrower.token, "room": room.id}

        await asyncio.gather(*(pair(p) for p in range(clients // 2)))
    return out


def assign(people: list[dict[str, Any]], senders: float, procs: int, interval: float, drain_s: float
           ) -> list[dict[str, Any]]:
    """Each client process's spec: whole pairs, dealt round-robin; the senders are one member of as many pairs
    as possible first (with 0.5, exactly one per pair), so every sent message has a listening partner."""
    pairs = len(people) // 2
    wanted = round(senders * len(people))
    sending = {2 * p for p in range(min(wanted, pairs))} | {2 * p + 1 for p in range(max(0, wanted - pairs))}
    specs: list[dict[str, Any]] = [{"tag": f"p{i}", "interval": interval, "drain_s": drain_s, "clients": []}
                                   for i in range(procs)]
    for p in range(pairs):
        mine = specs[p % procs]["clients"]
        base = len(mine)
        for member in (0, 1):
            i = 2 * p + member
            mine.append({**people[i], "partner": base + 1 - member, "sends": i in sending})
    return [s for s in specs if s["clients"]]


def stored_keys(probe: Probe, database: str) -> set[tuple[int, int]]:
    """(room, seq) of every person's message in MariaDB."""
    with probe.db.cursor() as cur:
        cur.execute(f"SELECT room_id, seq FROM `{database}`.messages WHERE sender_kind = 'user'")
        return {(int(room), int(seq)) for room, seq in cur.fetchall()}


def read_line(proc: subprocess.Popen[str], what: str) -> dict[str, Any]:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"a client process exited (code {proc.wait()}) before {what}")
    return json.loads(line)  # type: ignore[no-any-return]


def tell(procs: list[subprocess.Popen[str]], message: dict[str, Any]) -> None:
    for p in procs:
        assert p.stdin is not None
        p.stdin.write(json.dumps(message) + "\n")
        p.stdin.flush()


def soak(args: argparse.Namespace, config: Config, workdir: Path) -> dict[str, Any]:
    """Set up, start the gateway and the client processes, sample while they run; returns everything measured."""
    assert config.database_url
    print(f"preparing {args.clients // 2} pairs…", flush=True)
    people = asyncio.run(make_pairs(config, args.clients))
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log_path = Path(config.data_dir) / "bench" / "soak-gateway.log"  # kept after the run, for a closer look
    with open(log_path, "wb") as log:
        env = gateway_env(config, port, BILLI_CHAT_RATE_LIMIT="1000000")
        gateway = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve"], env=env, cwd=ROOT, stdout=log,
                                   stderr=subprocess.STDOUT)
    clients: list[subprocess.Popen[str]] = []
    probe: Probe | None = None
    try:
        wait_ready(url + "readyz", gateway)
        fd_limit = open_files_limit(gateway.pid)
        if fd_limit < args.clients + 256:
            raise SystemExit(f"the gateway may open only {fd_limit} files; {args.clients} clients need more")
        probe = Probe(config, gateway.pid, port)
        before = probe.sample("before connecting")
        specs = assign(people, args.senders, args.procs, args.interval, args.drain)
        for spec in specs:
            spec_path = workdir / f"{spec['tag']}.spec.json"
            spec_path.write_text(json.dumps(spec), encoding="utf-8")
            clients.append(subprocess.Popen(
                [sys.executable, str(ROOT / "bench" / "_soak_clients.py"), url, str(spec_path),
                 str(workdir / f"{spec['tag']}.result.json")],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT))
        probe.client_pids = [p.pid for p in clients]
        connect_s = max(read_line(p, "connecting")["connect_s"] for p in clients)
        connected = probe.sample("all connected")
        print(f"{args.clients} clients connected in {connect_s:.1f} s; gateway RSS {connected.rss_mb:.1f} MB,"
              f" {connected.open_files} open files; {args.warmup:g} s warm-up", flush=True)
        start = time.monotonic() + args.warmup
        tell(clients, {"start": start, "end": start + args.minutes * 60})
        samples: list[Sample] = []
        for minute in range(args.minutes + 1):
            time.sleep(max(0.0, start + minute * 60 - time.monotonic()))
            if gateway.poll() is not None:
                raise RuntimeError(f"the gateway exited with code {gateway.returncode}; see {log_path}")
            samples.append(probe.sample("start" if minute == 0 else "end" if minute == args.minutes
                                        else f"minute {minute}"))
            if minute:
                s, cpu = samples[-1], per_second(samples[-2], samples[-1])
                print(f"minute {minute}: gateway RSS {s.rss_mb:.1f} MB, {s.open_files} open files"
                      f" ({', '.join(f'{k} {s.files[k]}' for k in FILE_KINDS)}), CPU {cpu['gateway']:.0f}%",
                      flush=True)
        for p in clients:
            read_line(p, "draining")
        tell(clients, {})  # the end sample is taken: now they may disconnect
        for p in clients:
            read_line(p, "finishing")
            p.wait(timeout=120)
        time.sleep(2)  # let the gateway notice every disconnect
        after = probe.sample("after all left")
        facts = probe.facts()
        stored = stored_keys(probe, DatabaseTarget.parse(config.database_url).database)
    finally:
        for p in clients:
            if p.poll() is None:
                p.kill()
                p.wait()
        gateway.terminate()
        gateway.wait(timeout=60)
        if probe is not None:
            probe.close()
    results = [json.loads((workdir / f"{s['tag']}.result.json").read_text(encoding="utf-8")) for s in specs]
    log_lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    return {"results": results, "stored": stored, "samples": samples, "before": before, "connected": connected,
            "after": after, "connect_s": connect_s, "facts": facts, "fd_limit": fd_limit,
            "log": [line for line in log_lines
                    if " WARNING " in line or " ERROR " in line or "Traceback" in line],
            "log_path": log_path}


def per_second(a: Sample, b: Sample) -> dict[str, float]:
    """CPU between two samples as % of one core, per process and for the whole machine ("machine")."""
    span = b.at - a.at
    out = {name: (b.cpu_s[name] - a.cpu_s[name]) / span * 100 for name in PROCESSES}
    out["machine"] = (b.machine_busy_s - a.machine_busy_s) / span * 100
    out["rest"] = out["machine"] - sum(v for name, v in out.items() if name in PROCESSES and not math.isnan(v))
    return out


def report(args: argparse.Namespace, run: dict[str, Any]) -> tuple[str, bool]:
    """The markdown report (its last line the summary) and whether every pass criterion held."""
    results: list[dict[str, Any]] = run["results"]
    samples: list[Sample] = run["samples"]
    delivery: list[list[float]] = [[] for _ in range(args.minutes)]
    ack: list[list[float]] = [[] for _ in range(args.minutes)]
    for r in results:
        for key, values in r["delivery_ms"].items():
            if int(key) < args.minutes:
                delivery[int(key)] += values
        for key, values in r["ack_ms"].items():
            if int(key) < args.minutes:
                ack[int(key)] += values
    acked = {(int(room), int(seq)) for r in results for room, seq in r["acked_keys"]}
    not_stored = acked - run["stored"]
    undelivered = [tuple(k) for r in results for k in r["undelivered"]]
    lost = len(not_stored) + len(undelivered)
    sent = sum(r["sent"] for r in results)
    errors: Counter[str] = Counter()
    for r in results:
        errors.update(r["errors"])
    timeouts = sum(r["timeouts"] for r in results)
    disconnects = sorted((t, r["tag"], i) for r in results for t, i in r["disconnects"])
    duplicates = sum(r["duplicates"] for r in results)

    def p(values: list[float], q: float) -> float:
        return pct(values, q) if values else math.nan

    first, last = samples[0], samples[-1]
    rss_growth = last.rss_mb - first.rss_mb
    p99_first, p99_last = p(delivery[0], 99), p(delivery[-1], 99)
    checks = {
        f"rss_growth_mb {rss_growth:.1f} ≤ {MAX_RSS_GROWTH_MB:.0f}": rss_growth <= MAX_RSS_GROWTH_MB,
        f"last minute's delivery p99 {p99_last:.1f} ms ≤ {MAX_P99_RATIO} × the first's {p99_first:.1f} ms":
            p99_last <= MAX_P99_RATIO * p99_first,
        f"lost {lost} = 0 ({len(not_stored)} acknowledged but not in MariaDB, {len(undelivered)} acknowledged but"
        " never received by the partner)": lost == 0,
        f"no send refused ({sum(errors.values())}) or unanswered within 30 s ({timeouts}), no client dropped"
        f" ({len(disconnects)})": not errors and not timeouts and not disconnects,
    }
    passed = all(checks.values())
    senders = round(args.senders * args.clients)
    command = shlex.join(["python", "bench/soak.py", *sys.argv[1:]])
    lines = [
        "# Soak: one gateway node, many connected clients, minutes on end",
        "",
        "limits lifted: chat sends per person (BILLI_CHAT_RATE_LIMIT)",
        "",
        f"`{command}`",
        "",
        f"- {args.clients} clients in {args.clients // 2} two-person deal rooms, websocket transport, in"
        f" {len(results)} client processes (a pair never split); {senders} of them send a message every"
        f" {args.interval:g} s, open loop ({senders / args.interval:.0f} msgs/s offered), the others only listen",
        "- one `billi serve` process (session check per event, group-committed MariaDB write, AsyncRedisManager"
        " fan-out with unread counts, the bot looking at every message); chat rate limit lifted as in"
        f" bench/chat.py; its open-files limit {run['fd_limit']}",
        f"- measured for {args.minutes} min after everyone connected ({run['connect_s']:.1f} s) and a"
        f" {args.warmup:g} s warm-up with the same load",
        "- **latency = send → the other member of the room receives the message** (through the Redis"
        " fan-out); the ack (send → stored in MariaDB and answered) is shown too; a message counts in the"
        " minute it was sent",
        "- gateway RSS = VmRSS of /proc/<pid>/status; open files = entries of /proc/<pid>/fd; CPU ="
        " user+system time over the minute, 100% = one core",
        f"- machine: {os.cpu_count()} cores, {platform.machine()}, Linux {platform.release()}, Python"
        f" {platform.python_version()}; gateway, clients, MariaDB, Redis and S3 share it (\"rest\" below is CPU"
        " used by anything else on the machine)",
        f"- {run['facts']['mariadb']}",
        f"- {run['facts']['redis']}",
        "",
        "## Latency per minute",
        "",
        f"| minute | sent | delivered | delivery p50 ms | delivery p99 ms | delivery max ms | > {SLOW_MS:.0f} ms"
        " | ack p50 ms | ack p99 ms |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for m in range(args.minutes):
        d = delivery[m]
        lines.append(f"| {m + 1} | {len(ack[m])} | {len(d)} | {p(d, 50):.1f} | {p(d, 99):.1f} |"
                     f" {max(d) if d else math.nan:.1f} | {sum(1 for x in d if x > SLOW_MS)} |"
                     f" {p(ack[m], 50):.1f} | {p(ack[m], 99):.1f} |")
    lines += [
        "",
        "(sent = acknowledged sends of that minute; delivered = those the partner received)",
        "",
        "## Processes per minute",
        "",
        "| minute | gateway RSS MB | open files | CPU % gateway | clients | MariaDB | Redis | rest | machine |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for m in range(args.minutes):
        b, cpu = samples[m + 1], per_second(samples[m], samples[m + 1])
        lines.append(f"| {m + 1} | {b.rss_mb:.1f} | {b.open_files} | "
                     + " | ".join(f"{cpu[k]:.0f}" for k in (*PROCESSES, "rest", "machine")) + " |")

    def at_end(b: Sample, key: str, scale: float = 1.0) -> str:
        return f"{b.services[key] / scale:.{0 if scale == 1 else 1}f}" if key in b.services else "–"

    def during(a: Sample, b: Sample, key: str, scale: float = 1.0) -> str:
        return f"{(b.services[key] - a.services[key]) / scale:.0f}" if key in a.services else "–"

    lines += [
        "",
        "## Services per minute",
        "",
        "| minute | MariaDB redo written MB | checkpoint age MB | dirty pages | history list | Redis keys"
        " | Redis MB | AOF MB | delayed AOF fsyncs | Redis commands |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for m in range(args.minutes):
        a, b = samples[m], samples[m + 1]
        lines.append(f"| {m + 1} | {during(a, b, 'Innodb_os_log_written', 2**20)} |"
                     f" {at_end(b, 'Innodb_checkpoint_age', 2**20)} |"
                     f" {at_end(b, 'Innodb_buffer_pool_pages_dirty')} |"
                     f" {at_end(b, 'Innodb_history_list_length')} | {at_end(b, 'redis_keys')} |"
                     f" {at_end(b, 'used_memory', 2**20)} | {at_end(b, 'aof_current_size', 2**20)} |"
                     f" {at_end(b, 'aof_delayed_fsync')} | {during(a, b, 'total_commands_processed')} |")
    lines += [
        "",
        "(redo written and Redis commands: during the minute; the rest: at its end)",
        "",
        "## The gateway process",
        "",
        "| moment | RSS MB | open files | " + " | ".join(f"of which {k}" for k in FILE_KINDS) + " |",
        "| --- | ---: | ---: |" + " ---: |" * len(FILE_KINDS),
        *(f"| {s.label} | {s.rss_mb:.1f} | {s.open_files} | " + " | ".join(str(s.files[k]) for k in FILE_KINDS)
          + " |" for s in [run["before"], run["connected"], first, last, run["after"]]),
        "",
        "(clients = sockets of connected clients; MariaDB / Redis / S3 = the gateway's connections to them;"
        " other = the listening socket, epoll, pipes, files)",
        "",
        f"- RSS growth from the start (after connect and warm-up) to the end: **{rss_growth:.1f} MB**",
        f"- all sends: {sent}, acknowledged {len(acked)}, refused {sum(errors.values())}"
        + (f" {dict(errors)}" if errors else "") + f", unanswered {timeouts}; received twice {duplicates}",
        f"- durable: {len(acked) - len(not_stored)} of {len(acked)} acknowledged messages are in MariaDB"
        f" ({len(run['stored'])} person messages stored in all)",
        f"- delivered: {len(acked) - len(undelivered)} of {len(acked)} acknowledged messages reached the partner"
        f" (given {args.drain:g} s after the last send)",
        f"- clients dropped during the run: {len(disconnects)}"
        + (f" (the first {disconnects[0][0]:.0f} s after the start)" if disconnects else ""),
        f"- gateway log: {len(run['log'])} warning/error lines"
        + (f"; the first: `{run['log'][0][:300]}`" if run["log"] else ""),
        "",
        "## Pass",
        "",
        *(f"- {'pass' if ok else '**FAIL**'}: {text}" for text, ok in checks.items()),
        "",
        f"soak: clients={args.clients} minutes={args.minutes} rss_growth_mb={rss_growth:.1f}"
        f" p99_ms_first={p99_first:.1f} p99_ms_last={p99_last:.1f} lost={lost}",
    ]
    return "\n".join(lines) + "\n", passed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=1000,
                        help="connected clients, an even number (default 1000)")
    parser.add_argument("--minutes", type=int, default=10, help="measured minutes (default 10)")
    parser.add_argument("--interval", type=float, default=2.0,
                        help="seconds between a sender's messages (default 2)")
    parser.add_argument("--senders", type=float, default=0.5, help="share of the clients that send (default 0.5)")
    parser.add_argument("--procs", type=int, default=4, help="client processes (default 4)")
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds of load before measuring (default 30)")
    parser.add_argument("--drain", type=float, default=15.0,
                        help="seconds after the last send's ack for deliveries to land before they count as"
                             " lost (default 15)")
    args = parser.parse_args()
    if args.clients < 2 or args.clients % 2 or args.minutes < 1 or not 0 < args.senders <= 1 or args.procs < 1:
        parser.error("--clients must be even and ≥ 2, --minutes ≥ 1, 0 < --senders ≤ 1, --procs ≥ 1")
    raise_open_files_limit(args.clients + 1024)
    with bench_services("billi_bench_soak") as config, tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        run = soak(args, config, Path(tmp))
    text, passed = report(args, run)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text, encoding="utf-8")
    print(text, end="", flush=True)
    print(f"(gateway log: {run['log_path']})", file=sys.stderr)
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
