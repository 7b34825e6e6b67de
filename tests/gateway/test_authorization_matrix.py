"""Every route and chat event declares who may use it (``gateway.routing.Access``); here each one is called as
the item's owner, the other party of a rental, a stranger and an anonymous caller, and each gets exactly the
answer its policy gives — and a refused call changes nothing.

The rule: an allowed caller is never answered 401, 403 or 404; a refused anonymous caller gets 401 wherever a
session is needed; a refused logged-in caller gets 403 or 404 (404 where even the resource's existence is not
theirs to learn).
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from gateway.app import all_routes
from gateway.chat_socket import EVENT_ACCESS
from gateway.routing import Access, Route, openapi_path
from market.service import Market
from tests.conftest import Person, image_bytes, sign_up
from tests.rentals.helpers import Bank, settled

CALLERS = ("owner", "party", "stranger", "anonymous")
# Who of the world's four callers each policy lets in (the owner owns the item, rented it to the other party,
# and the other party's review is about the owner).
ALLOWED: dict[Access, set[str]] = {
    Access.ANYONE: {"owner", "party", "stranger", "anonymous"},
    Access.PERSON: {"owner", "party", "stranger"},
    Access.OWNER: {"owner"},
    Access.PARTY: {"owner", "party"},
    Access.MEMBER: {"owner", "party"},
    Access.AUTHOR: {"party"},
    Access.REVIEWED: {"owner"},
}
# Tables a refused call must leave exactly as they were (sessions, the ledger and transfers belong to the
# session middleware and the scheduler, which run whatever the caller does).
CHECKED_TABLES = ("users", "items", "item_photos", "wishes", "rooms", "room_members", "messages", "contracts",
                  "contract_events", "contract_photos", "reviews", "notifications", "bank_links")
ALLOWED_STATUS_NEVER = {401, 403, 404}


@pytest.fixture
def bank(market: Market) -> Bank:
    assert market.config.bank_url
    return Bank(market.config.bank_url)


class World:
    """An owner with an item (and a photo), a settled rental of it to the other party with its deal room and a
    review by the other party about the owner, and a stranger."""

    def __init__(self, people: dict[str, Person | None], ids: dict[str, Any]) -> None:
        self.people = people
        self.ids = ids  # path parameter → the world's value for it

    def path(self, route: Route) -> str:
        """The route's path with the world's values filled in; a parameter the world cannot fill fails the test."""
        missing = [name for name in route.path_params if name not in self.ids]
        assert not missing, f"{route.method} {route.path}: the world has no value for {missing}"
        return openapi_path(route.path).format(**self.ids)


async def build_world(client: TestClient, market: Market, bank: Bank) -> World:
    owner, party, stranger = await sign_up(client), await sign_up(client), await sign_up(client)
    neighbour = await sign_up(client)  # the person the person-routes name (blocking them touches no other route)
    contract_id, _, _ = await settled(market, bank, owner.id, party.id)
    await market.rentals.process_transfers()  # (the payouts are done before anything is watched)
    row = await market.db.fetchone("SELECT item_id, room_id FROM contracts WHERE id = %s", (contract_id,))
    assert row is not None
    item_id, room_id = row["item_id"], row["room_id"]
    status, body = await owner.call("POST", f"/api/items/{item_id}/photos", data=_photo_form())
    assert status == 201, body
    photo = body["photos"][0]
    review = await market.reviews.write(party.id, contract_id, "owner", 5, "친절해요")
    await market.reviews.write(owner.id, contract_id, "borrower", 5, "약속을 잘 지켰어요")  # both written: visible
    return World({"owner": owner, "party": party, "stranger": stranger, "anonymous": None}, {
        "item_id": item_id, "photo_id": photo["id"], "contract_id": contract_id, "room_id": room_id,
        "review_id": review["id"], "user_id": neighbour.id, "key": await _photo_key(market, photo["id"]),
    })


async def _photo_key(market: Market, photo_id: int) -> str:
    key = await market.db.fetchval("SELECT object_key FROM item_photos WHERE id = %s", (photo_id,))
    assert key
    return str(key)


def _photo_form() -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("photo", image_bytes(), filename="photo.jpg", content_type="image/jpeg")
    return form


async def _call(client: TestClient, caller: Person | None, route: Route, path: str) -> tuple[int, Any]:
    """The route called with a harmless body: an empty JSON object, or one real photo where it takes uploads."""
    kw: dict[str, Any] = {"headers": caller.auth if caller else {}, "allow_redirects": False}
    if route.multipart:
        kw["data"] = _photo_form()
    elif route.body is not None:
        kw["json"] = {}
    async with client.request(route.method, path, **kw) as resp:
        body = await resp.json() if resp.content_type == "application/json" else resp.content_type
        return resp.status, body


async def _checksums(market: Market) -> dict[str, Any]:
    rows = await market.db.fetchall("CHECKSUM TABLE " + ", ".join(CHECKED_TABLES))
    return {row["Table"].rsplit(".", 1)[-1]: row["Checksum"] for row in rows}


def _with_ids(routes: list[Route]) -> list[Route]:
    """The routes that name a resource in their path, those that delete last (the item itself at the very end),
    so no call takes away what a later one needs."""
    named = [r for r in routes if r.path_params]
    return sorted(named, key=lambda r: (r.method == "DELETE", r.path_params == ["item_id"]))


def test_every_route_that_names_a_resource_says_whose_it_is() -> None:
    """A route with an id in its path must declare a policy that compares the caller with that resource (or
    admits everyone); "self" would mean it ignores whose id it was given."""
    wrong = [f"{r.method} {r.path}: {r.access.value}" for r in all_routes()
             if r.path_params and r.access not in ALLOWED]
    assert not wrong, "\n".join(wrong)


def test_every_route_and_chat_event_declares_a_policy() -> None:
    assert all(isinstance(r.access, Access) for r in all_routes())
    assert all(isinstance(a, Access) for a in EVENT_ACCESS.values())
    assert set(EVENT_ACCESS) == {"join", "message", "action", "typing", "read", "history"}


async def test_the_openapi_document_shows_each_operations_policy(client: TestClient) -> None:
    async with client.get("/api/openapi.json") as resp:
        doc = await resp.json()
    ops = {(m.upper(), p): op for p, methods in doc["paths"].items() for m, op in methods.items()}
    assert ops[("PATCH", "/api/items/{item_id}")]["x-access"] == "owner"
    assert ops[("GET", "/api/contracts/{contract_id}")]["x-access"] == "party"
    assert ops[("GET", "/api/rooms/{room_id}/messages")]["x-access"] == "member"
    assert all("x-access" in op for op in ops.values())


async def test_each_caller_gets_exactly_what_the_policy_says_and_a_refusal_changes_nothing(
        client: TestClient, market: Market, bank: Bank) -> None:
    world = await build_world(client, market, bank)
    wrong: list[str] = []
    for route in _with_ids(all_routes()):
        path = world.path(route)
        allowed = ALLOWED[route.access]
        before = await _checksums(market)
        for name in [c for c in CALLERS if c not in allowed]:
            status, body = await _call(client, world.people[name], route, path)
            expected = {401} if name == "anonymous" else {403, 404}
            if status not in expected:
                wrong.append(f"{route.method} {path} as {name}: {status} (wanted {sorted(expected)}) {body}")
        after = await _checksums(market)
        changed = [t for t in CHECKED_TABLES if before[t] != after[t]]
        if changed:
            wrong.append(f"{route.method} {path}: a refused call changed {changed}")
        for name in [c for c in CALLERS if c in allowed]:
            status, body = await _call(client, world.people[name], route, path)
            if status in ALLOWED_STATUS_NEVER:
                wrong.append(f"{route.method} {path} as {name}: {status}, though allowed {body}")
    assert not wrong, "\n".join(wrong)


async def test_an_anonymous_caller_is_asked_to_log_in_wherever_a_session_is_needed(
        client: TestClient, market: Market) -> None:
    await sign_up(client)
    wrong: list[str] = []
    before = await _checksums(market)
    for route in [r for r in all_routes() if r.auth and not r.path_params]:
        status, body = await _call(client, None, route, route.path)
        if status != 401:
            wrong.append(f"{route.method} {route.path}: {status} {body}")
    assert await _checksums(market) == before
    assert not wrong, "\n".join(wrong)


async def test_only_the_rooms_members_may_use_its_chat_events(client: TestClient, market: Market, bank: Bank,
                                                              chatters: Any) -> None:
    world = await build_world(client, market, bank)
    room = world.ids["room_id"]
    data: dict[str, dict[str, Any]] = {
        "join": {"room": room}, "message": {"room": room, "text": "안녕하세요", "client_msg_id": "m1"},
        "action": {"room": room, "token": "no-such-button"}, "typing": {"room": room},
        "read": {"room": room, "seq": 1}, "history": {"room": room},
    }
    assert set(data) == set(EVENT_ACCESS)
    people = {name: await chatters(p) for name, p in world.people.items() if p is not None}
    wrong: list[str] = []
    for event, access in EVENT_ACCESS.items():
        allowed = ALLOWED[access]
        before = await _checksums(market)
        for name in [n for n in people if n not in allowed]:
            ack = await people[name].call(event, data[event])
            if ack.get("ok") or ack["error"]["code"] != "chat.unknown_room":
                wrong.append(f"{event} as {name}: {ack}")
        if (after := await _checksums(market)) != before:
            wrong.append(f"{event}: a refused event changed {[t for t in before if before[t] != after[t]]}")
        for name in [n for n in people if n in allowed]:
            ack = await people[name].call(event, data[event])
            if not ack.get("ok") and ack["error"]["code"] == "chat.unknown_room":
                wrong.append(f"{event} as {name}: refused though a member {ack}")
    assert not wrong, "\n".join(wrong)


async def test_a_chat_images_file_is_for_the_rooms_members_alone(client: TestClient, market: Market,
                                                                  bank: Bank) -> None:
    """/media is open to anyone for item and profile photos; a chat image's key names its room, and the file is
    its members' (the media route's "anyone" is about public photos — this is the rest of its policy)."""
    world = await build_world(client, market, bank)
    party = world.people["party"]
    assert party is not None
    status, body = await party.call("POST", f"/api/rooms/{world.ids['room_id']}/images", data=_photo_form())
    assert status == 201, body
    url = body["message"]["image"]["url"]
    assert url.startswith("/media/chat/")
    for name, wanted in (("owner", 200), ("party", 200), ("stranger", 404), ("anonymous", 404)):
        caller = world.people[name]
        async with client.get(url, headers=caller.auth if caller else {}) as resp:
            assert resp.status == wanted, name
