"""Redis-manager fan-out with 1, 2, 4 and 8 gateway nodes: what each node receives, and drops, per message sent.

Each node is the gateway's own Socket.IO server and Redis manager (``gateway.chat_socket.build_server``), all in
this process on one local Redis; the people are registered in rooms directly (no websockets: what is counted is
the pub/sub traffic, not the sockets). Two-person rooms, each member on a random node; every message is emitted
by its sender's node to the room, as a chat message is. Counted per node: messages read from the Redis channel
(its own included — the manager drops those before decoding), messages from other nodes, and those it had no
socket for (dropped). Writes bench/results/fanout.md, ending with the line printed last:
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

from bench._report import write_report  # noqa: E402
from gateway.chat_socket import build_server, close_server, room_channel  # noqa: E402
from gateway.local_services import LocalServices  # noqa: E402
from market.config import Config  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "fanout.md"


class Node:
    """One gateway node's server and manager, with counters on what reaches it."""

    def __init__(self, config: Config) -> None:
        self.sio = build_server(config)
        self.read = self.from_others = self.delivered_msgs = 0
        manager = self.sio.manager
        listen = manager._listen
        node = self

        async def counted() -> Any:
            async for message in listen():
                node.from_others += 1
                yield message
        manager._listen = counted
        raw = manager._redis_listen_with_retries

        async def read() -> Any:
            async for message in raw():
                if message.get("type") == "message":
                    node.read += 1
                yield message
        manager._redis_listen_with_retries = read
        handle = manager._handle_emit

        async def handle_emit(message: dict[str, Any]) -> None:
            if message.get("host_id") != manager.host_id and list(manager.get_participants("/", message.get("room"))):
                node.delivered_msgs += 1
            await handle(message)
        manager._handle_emit = handle_emit

        async def send(eio_sid: str, pkt: Any) -> None:  # no socket behind these people: count, send nothing
            return None
        self.sio._send_eio_packet = send
        manager.initialize()


async def run(config: Config, nodes_n: int, rooms: int, messages: int) -> dict[str, float]:
    nodes = [Node(config) for _ in range(nodes_n)]
    await asyncio.sleep(0.5)  # every listener subscribed
    rng = random.Random(nodes_n)
    members: list[list[tuple[int, str]]] = []
    for r in range(rooms):
        pair = []
        for p in range(2):
            n = rng.randrange(nodes_n)
            sid = await nodes[n].sio.manager.connect(f"eio-{r}-{p}", "/")
            nodes[n].sio.manager.basic_enter_room(sid, "/", room_channel(r))
            pair.append((n, sid))
        members.append(pair)
    for node in nodes:
        node.read = node.from_others = node.delivered_msgs = 0
    for k in range(messages):
        r = rng.randrange(rooms)
        n, sid = members[r][rng.randrange(2)]
        await nodes[n].sio.emit("message", {"room": r, "seq": k, "text": "안녕하세요"}, room=room_channel(r),
                                skip_sid=sid)
        if k % 200 == 0:
            await asyncio.sleep(0)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and sum(n.read for n in nodes) < messages * nodes_n:
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.3)
    read = sum(n.read for n in nodes)
    others = sum(n.from_others for n in nodes)
    useful = sum(n.delivered_msgs for n in nodes)
    for node in nodes:
        await close_server(node.sio)
    return {"nodes": nodes_n, "read_per_node_per_msg": read / nodes_n / messages,
            "from_others_per_msg": others / messages, "useful_per_msg": useful / messages,
            "dropped_per_msg": (others - useful) / messages}


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
    table = [f"| {r['nodes']:.0f} | {r['read_per_node_per_msg']:.2f} | {r['read_per_node_per_msg'] * r['nodes']:.2f} |"
             f" {r['from_others_per_msg']:.2f} | {r['useful_per_msg']:.2f} | {r['dropped_per_msg']:.2f} |"
             for r in rows]
    line = ("fanout: nodes=1,2,4,8 received_per_node_per_msg=" + ",".join(f"{r['read_per_node_per_msg']:.2f}"
                                                                       for r in rows)
            + " dropped_per_msg=" + ",".join(f"{r['dropped_per_msg']:.2f}" for r in rows))
    report = "\n".join([
        "# Redis-manager fan-out with 1, 2, 4 and 8 nodes",
        "",
        f"`python bench/fanout.py --rooms {args.rooms} --messages {args.messages}`: {args.rooms} two-person rooms,"
        " each member on a random node; each message emitted to its room by its sender's node"
        " (gateway.chat_socket's manager: one Redis channel that every node subscribes to).",
        "",
        "| nodes | read from Redis per node per msg | read, all nodes, per msg | from other nodes, all, per msg |"
        " of those, with a local member | dropped per msg |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
        *table,
        "",
        "Every node reads every message (its own come back too, and are dropped before decoding): per message"
        " sent, the nodes together read N messages and drop those with no member socket on them. At a fixed"
        " load per node, each node's inbound pub/sub traffic therefore grows with the number of nodes.",
        "",
        line,
        "",
    ])
    write_report(RESULTS, report, line)


if __name__ == "__main__":
    main()
