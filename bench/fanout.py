"""Redis-manager fan-out with 1, 2, 4 and 8 gateway nodes: what each node receives, and drops, per message sent.

Each node is the gateway's own Socket.IO server and Redis manager (``gateway.chat_socket.build_server``, routing
by audience: gateway/fanout.py), all in one process on one local Redis; the people are registered in rooms
through the manager (no websockets: what is counted is the pub/sub traffic, not the sockets). Two-person rooms,
each member on a random node and in their own person room (``user:<id>``) too. Two phases: every message emitted
by its sender's node to the room, as a chat message is; then as many emitted to one member's person room (a
private bot message, a placeholder, a ``room_update``). Counted per node: messages read from Redis (its own
included — the manager drops those before decoding), messages from other nodes, and those it had no socket for
(dropped); and the CPU the whole cluster (the one process) spent per message sent.

With ``--baseline <older checkout>`` each node count runs ``--rounds`` times with each checkout's gateway, in
alternating worker processes, and the report compares the two (counts, and CPU per message as a ratio).
Writes bench/results/fanout.md, ending with the line printed last (room messages, this checkout):
``fanout: nodes=1,2,4,8 received_per_node_per_msg=… dropped_per_msg=…``.

    python bench/fanout.py [--rooms 2000] [--messages 4000] [--baseline /path/to/checkout --rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# A worker runs the gateway of the checkout it is given (``--code``); the report is written by this one's.
_CODE = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--code=")), str(ROOT))
sys.path.insert(0, _CODE)

from gateway.chat_socket import build_server, close_server, room_channel, user_channel  # noqa: E402
from market.config import Config  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "fanout.md"
NODES = (1, 2, 4, 8)


class Node:
    """One gateway node's server and manager, with counters on what reaches it."""

    def __init__(self, config: Config) -> None:
        self.sio = build_server(config)
        self.from_others = self.delivered_msgs = self._read = 0
        manager = self.sio.manager
        manager.subscribe_wait_s = 120.0  # (every join confirmed before anything is sent, however busy the box)
        if not hasattr(manager, "received"):  # (an older manager: count what its listener reads)
            raw = manager._redis_listen_with_retries

            async def read() -> Any:
                async for message in raw():
                    if message.get("type") == "message":
                        self._read += 1
                    yield message
            manager._redis_listen_with_retries = read
        handle = manager._handle_emit

        async def handle_emit(message: dict[str, Any]) -> None:
            if message.get("host_id") != manager.host_id:
                self.from_others += 1
                if list(manager.get_participants("/", message.get("room"))):
                    self.delivered_msgs += 1
            await handle(message)
        manager._handle_emit = handle_emit

        async def send(eio_sid: str, pkt: Any) -> None:  # no socket behind these people: count, send nothing
            return None
        self.sio._send_eio_packet = send
        manager.initialize()

    @property
    def read(self) -> int:
        return int(getattr(self.sio.manager, "received", self._read))

    def reset(self) -> None:
        if hasattr(self.sio.manager, "received"):
            self.sio.manager.received = 0
        self._read = self.from_others = self.delivered_msgs = 0


async def _phase(nodes: list[Node], messages: int, emit: Any) -> dict[str, float]:
    for node in nodes:
        node.reset()
    cpu = time.process_time()
    for k in range(messages):
        await emit(k)
        if k % 200 == 0:
            await asyncio.sleep(0)
    # Every message is read at least once (by its audience's nodes); then wait for the reads to stop.
    deadline, last, quiet_since = time.monotonic() + 60, -1, time.monotonic()
    while time.monotonic() < deadline:
        read = sum(n.read for n in nodes)
        if read != last:
            last, quiet_since = read, time.monotonic()
        elif read >= messages and time.monotonic() - quiet_since > 1.0:
            break
        await asyncio.sleep(0.1)
    cpu = time.process_time() - cpu
    read = sum(n.read for n in nodes)
    others = sum(n.from_others for n in nodes)
    useful = sum(n.delivered_msgs for n in nodes)
    return {"read_per_node_per_msg": read / len(nodes) / messages, "read_per_msg": read / messages,
            "from_others_per_msg": others / messages, "useful_per_msg": useful / messages,
            "dropped_per_msg": (others - useful) / messages, "cpu_ms_per_msg": cpu * 1000 / messages}


async def run(config: Config, nodes_n: int, rooms: int, messages: int) -> dict[str, Any]:
    nodes = [Node(config) for _ in range(nodes_n)]
    await asyncio.sleep(0.5)  # every listener subscribed to its node's own channels
    rng = random.Random(nodes_n)
    members: list[list[tuple[int, str, int]]] = []
    joins: list[Any] = []
    for r in range(rooms):
        pair = []
        for p in range(2):
            n, person = rng.randrange(nodes_n), 2 * r + p
            sid = await nodes[n].sio.manager.connect(f"eio-{r}-{p}", "/")
            joins.append(nodes[n].sio.manager.enter_room(sid, "/", user_channel(person)))
            joins.append(nodes[n].sio.manager.enter_room(sid, "/", room_channel(r)))
            pair.append((n, sid, person))
        members.append(pair)
    await asyncio.gather(*joins)  # (each returns once its node is subscribed)
    subscriptions = sum(getattr(node.sio.manager, "subscriptions", 1) for node in nodes) / nodes_n

    async def to_room(k: int) -> None:
        r = rng.randrange(rooms)
        n, sid, _ = members[r][rng.randrange(2)]
        await nodes[n].sio.emit("message", {"room": r, "seq": k, "text": "안녕하세요"}, room=room_channel(r),
                                skip_sid=sid)

    async def to_person(k: int) -> None:
        r = rng.randrange(rooms)
        sender = rng.randrange(2)
        n = members[r][sender][0]
        person = members[r][1 - sender][2]
        await nodes[n].sio.emit("message", {"room": r, "seq": k, "hidden": True}, room=user_channel(person))

    room = await _phase(nodes, messages, to_room)
    private = await _phase(nodes, messages, to_person)
    for node in nodes:
        await close_server(node.sio)
    return {"nodes": nodes_n, "subscriptions": subscriptions, "room": room, "private": private}


def _worker(code: Path, redis_url: str, nodes_n: int, rooms: int, messages: int) -> dict[str, Any]:
    env = {**os.environ, "BILLI_REDIS_URL": redis_url, "PYTHONPATH": str(code), "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), f"--code={code}", "--worker",
                          str(nodes_n), "--rooms", str(rooms), "--messages", str(messages)],
                         env=env, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"the fan-out worker for {code} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _median(runs: list[dict[str, Any]], phase: str, key: str) -> float:
    return statistics.median(r[phase][key] for r in runs)


def _rows(rows: list[dict[str, Any]], phase: str) -> list[str]:
    return [f"| {r['nodes']} | {_median(r['runs'], phase, 'read_per_node_per_msg'):.2f} |"
            f" {_median(r['runs'], phase, 'read_per_msg'):.2f} | {_median(r['runs'], phase, 'from_others_per_msg'):.2f} |"
            f" {_median(r['runs'], phase, 'useful_per_msg'):.2f} | {_median(r['runs'], phase, 'dropped_per_msg'):.2f} |"
            f" {_median(r['runs'], phase, 'cpu_ms_per_msg'):.3f} |" for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rooms", type=int, default=2000)
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--baseline", type=Path, help="an older checkout to compare with, in the same run")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each checkout per node count (alternating)")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--code", help=argparse.SUPPRESS)
    args = parser.parse_args()
    config = Config.from_env()
    if args.worker:
        config = config.replace(socketio_channel="billi-fanout-bench")
        print(json.dumps(asyncio.run(run(config, args.worker, args.rooms, args.messages))))
        return

    from bench._report import commit_of, write_report
    from gateway.local_services import LocalServices

    services = LocalServices(Path(config.data_dir) / "bench-fanout")
    ours: list[dict[str, Any]] = []
    base: list[dict[str, Any]] = []
    try:
        redis_url = services.start(mariadb=False, redis=not config.redis_url, s3=False).get("redis_url") \
            or config.redis_url or ""
        for n in NODES:
            ours.append({"nodes": n, "runs": []})
            base.append({"nodes": n, "runs": []})
            for _ in range(args.rounds if args.baseline else 1):
                ours[-1]["runs"].append(_worker(ROOT, redis_url, n, args.rooms, args.messages))
                if args.baseline:
                    base[-1]["runs"].append(_worker(args.baseline.resolve(), redis_url, n, args.rooms, args.messages))
    finally:
        services.stop()
    head = ("| nodes | read from Redis per node per msg | read, all nodes, per msg | from other nodes, all, per msg |"
            " of those, with a local member | dropped per msg | cluster CPU per msg (ms) |")
    rule = "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    line = ("fanout: nodes=1,2,4,8 received_per_node_per_msg=" + ",".join(
        f"{_median(r['runs'], 'room', 'read_per_node_per_msg'):.2f}" for r in ours)
        + " dropped_per_msg=" + ",".join(f"{_median(r['runs'], 'room', 'dropped_per_msg'):.2f}" for r in ours))
    what = (f"{args.rooms} two-person rooms, each member on a random node; all nodes in one process, so \"cluster"
            " CPU\" is that process's CPU (every node's publishing, reading and dropping) per message sent")
    report = [
        "# Redis-manager fan-out with 1, 2, 4 and 8 nodes",
        "",
        f"`python bench/fanout.py --rooms {args.rooms} --messages {args.messages}"
        + (f" --baseline <{commit_of(args.baseline)}> --rounds {args.rounds}" if args.baseline else "")
        + f"` at {commit_of(ROOT)}: {what}. This checkout: gateway.fanout's manager (a channel per room and per"
        " person, subscribed by the nodes holding one of its sockets)" + (
            f"; baseline: {commit_of(args.baseline)}'s (one channel every node subscribes to), alternating with it"
            f" in the same run, medians of {args.rounds} rounds." if args.baseline else "."),
        "",
    ]
    for phase, title in (("room", "Room messages (each emitted to its room by its sender's node)"),
                         ("private", "Private messages (each emitted to the other member's person room by the"
                                     " sender's node)")):
        report += [f"## {title}", "", head, rule, *_rows(ours, phase), ""]
        if args.baseline:
            report += ["Baseline:", "", head, rule, *_rows(base, phase), "",
                       "Cluster CPU per message, this checkout / baseline: " + ", ".join(
                           f"{_median(o['runs'], phase, 'cpu_ms_per_msg') / _median(b['runs'], phase, 'cpu_ms_per_msg'):.2f}"
                           f" at {o['nodes']}" for o, b in zip(ours, base)) + " node(s).", ""]
    report += [
        "Channels subscribed per node: " + ", ".join(
            f"{statistics.median(x['subscriptions'] for x in r['runs']):.0f} with {r['nodes']} node(s)"
            for r in ours) + f" (of {3 * args.rooms} rooms and persons in all, plus the node's own and the"
        " everyone channel).",
        "",
        "A node reads a message only when one of its sockets is in the room or is the person it is for (its own"
        " come back too when it holds a member, and are dropped before decoding): per message sent the nodes"
        " together read at most two, whatever N is, so each node's share falls as 1/N and nothing is dropped.",
        "",
        line,
        "",
    ]
    write_report(RESULTS, "\n".join(report), line)


if __name__ == "__main__":
    main()
