"""Redis-manager fan-out with 1, 2, 4 and 8 gateway nodes: what each node receives, and drops, per message sent.

Each node is the gateway's own Socket.IO server and Redis manager (``gateway.chat_socket.build_server``, routing
by audience: gateway/fanout.py), all in this process on one local Redis; the people are registered in rooms
through the manager (no websockets: what is counted is the pub/sub traffic, not the sockets). Two-person rooms,
each member on a random node and in their own person room (``user:<id>``) too. Two phases: every message emitted
by its sender's node to the room, as a chat message is; then as many emitted to one member's person room (a
private bot message, a placeholder, a ``room_update``). Counted per node: messages read from Redis (its own
included — the manager drops those before decoding), messages from other nodes, and those it had no socket for
(dropped). Writes bench/results/fanout.md, ending with the line printed last (room messages):
``fanout: nodes=1,2,4,8 received_per_node_per_msg=… dropped_per_msg=…``.

    python bench/fanout.py [--rooms 2000] [--messages 4000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._report import commit_of, write_report  # noqa: E402
from gateway.chat_socket import build_server, close_server, room_channel, user_channel  # noqa: E402
from gateway.local_services import LocalServices  # noqa: E402
from market.config import Config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "fanout.md"
# What every node read before routing (8c0a677, one channel for all: bench/results/fanout.md of that commit).
BEFORE = {"received": "1.00,1.00,1.00,1.00", "dropped": "0.00,0.50,2.25,6.12"}


class Node:
    """One gateway node's server and manager, with counters on what reaches it."""

    def __init__(self, config: Config) -> None:
        self.sio = build_server(config)
        self.from_others = self.delivered_msgs = 0
        manager = self.sio.manager
        manager.subscribe_wait_s = 120.0  # (every join confirmed before anything is sent, however busy the box)
        handle = manager._handle_emit
        node = self

        async def handle_emit(message: dict[str, Any]) -> None:
            if message.get("host_id") != manager.host_id:
                node.from_others += 1
                if list(manager.get_participants("/", message.get("room"))):
                    node.delivered_msgs += 1
            await handle(message)
        manager._handle_emit = handle_emit

        async def send(eio_sid: str, pkt: Any) -> None:  # no socket behind these people: count, send nothing
            return None
        self.sio._send_eio_packet = send
        manager.initialize()

    @property
    def read(self) -> int:
        return int(self.sio.manager.received)

    def reset(self) -> None:
        self.sio.manager.received = 0
        self.from_others = self.delivered_msgs = 0


async def _phase(nodes: list[Node], messages: int, emit: Any) -> dict[str, float]:
    for node in nodes:
        node.reset()
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
    read = sum(n.read for n in nodes)
    others = sum(n.from_others for n in nodes)
    useful = sum(n.delivered_msgs for n in nodes)
    return {"read_per_node_per_msg": read / len(nodes) / messages, "read_per_msg": read / messages,
            "from_others_per_msg": others / messages, "useful_per_msg": useful / messages,
            "dropped_per_msg": (others - useful) / messages}


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
    subscriptions = sum(node.sio.manager.subscriptions for node in nodes) / nodes_n

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


def _rows(rows: list[dict[str, Any]], key: str) -> list[str]:
    return [f"| {r['nodes']} | {r[key]['read_per_node_per_msg']:.2f} | {r[key]['read_per_msg']:.2f} |"
            f" {r[key]['from_others_per_msg']:.2f} | {r[key]['useful_per_msg']:.2f} | {r[key]['dropped_per_msg']:.2f} |"
            for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rooms", type=int, default=2000)
    parser.add_argument("--messages", type=int, default=4000)
    args = parser.parse_args()
    config = Config.from_env()
    services = LocalServices(Path(config.data_dir) / "bench-fanout")
    try:
        urls = services.start(mariadb=False, redis=not config.redis_url, s3=False)
        config = config.replace(**urls, socketio_channel="billi-fanout-bench")
        rows = [asyncio.run(run(config, n, args.rooms, args.messages)) for n in (1, 2, 4, 8)]
    finally:
        services.stop()
    head = ("| nodes | read from Redis per node per msg | read, all nodes, per msg | from other nodes, all, per msg |"
            " of those, with a local member | dropped per msg |")
    line = ("fanout: nodes=1,2,4,8 received_per_node_per_msg=" + ",".join(
        f"{r['room']['read_per_node_per_msg']:.2f}" for r in rows)
        + " dropped_per_msg=" + ",".join(f"{r['room']['dropped_per_msg']:.2f}" for r in rows))
    report = "\n".join([
        "# Redis-manager fan-out with 1, 2, 4 and 8 nodes",
        "",
        f"`python bench/fanout.py --rooms {args.rooms} --messages {args.messages}` at {commit_of(ROOT)}:"
        f" {args.rooms} two-person rooms, each member on a random node; gateway.fanout's manager (a channel per"
        " room and per person, subscribed by the nodes holding one of its sockets).",
        "",
        "## Room messages (each emitted to its room by its sender's node)",
        "",
        head,
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
        *_rows(rows, "room"),
        "",
        "## Private messages (each emitted to the other member's person room by the sender's node)",
        "",
        head,
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
        *_rows(rows, "private"),
        "",
        "Channels subscribed per node: " + ", ".join(f"{r['subscriptions']:.0f} with {r['nodes']} node(s)"
                                                    for r in rows) + f" (of {3 * args.rooms} rooms"
        " and persons in all, plus the node's own and the everyone channel).",
        "",
        "A node reads a message only when one of its sockets is in the room or is the person it is for (its own"
        " come back too when it holds a member, and are dropped before decoding): per message sent the nodes"
        " together read at most two, whatever N is, so each node's share falls as 1/N and nothing is dropped."
        f" Before routing (one channel for all) every node read every message: received_per_node_per_msg="
        f"{BEFORE['received']} dropped_per_msg={BEFORE['dropped']}.",
        "",
        line,
        "",
    ])
    write_report(RESULTS, report, line)


if __name__ == "__main__":
    main()
