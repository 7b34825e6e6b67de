"""The engine under random input (hypothesis): random text and random button tokens never raise, every
reply is a well-formed message, and a refused press changes nothing."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.engine import BotEngine
from market.chat import Sent
from market.service import Market


_people = itertools.count()


class Recorder:
    """Stands in for the gateway's socket: keeps what the engine sends out."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []

    async def publish(self, sent: Sent) -> None:
        self.sent.append(sent)

    async def announce_room(self, room_id: int, user_ids: list[int]) -> None:
        pass


def _well_formed(wire: dict[str, Any]) -> None:
    assert wire["sender"]["kind"] == "bot" and isinstance(wire["text"], str) and wire["text"]
    for card in wire.get("cards", []):
        assert isinstance(card["title"], str) and all(len(f) == 2 for f in card["fields"])
        assert all(isinstance(b["label"], str) and isinstance(b["token"], str) for b in card["buttons"])
    for b in wire.get("buttons", []):
        assert isinstance(b["label"], str) and isinstance(b["token"], str)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(st.text(max_size=300), st.sampled_from(["/", "/검색", "/주변", "/물품", "/찜", "/등록", "/취소",
                                                              "/도움말"]).flatmap(
    lambda h: st.text(max_size=100).map(lambda t: f"{h} {t}"))),
       token=st.text(max_size=80))
async def test_random_messages_and_presses_never_break_the_engine(market: Market, text: str, token: str) -> None:
    n = next(_people)
    owner = await market.accounts.sign_up({"email": f"fuzz{n}@example.com", "nickname": f"퍼즈{n}",
                                           "password": "rent4you"})
    room = (await market.chat.assistant_room(owner.user.id)).id
    outlet = Recorder()
    engine = BotEngine(market, outlet)
    await engine.on_message(room, {"text": text, "room": room}, owner.user.id)
    await engine.drain()
    for sent in outlet.sent:
        _well_formed(sent.message.to_wire())
    items_before = await market.db.fetchval("SELECT COUNT(*) FROM items")
    ack = await engine.on_action(room, token, owner.user.id)
    assert ack["ok"] is False and ack["error"]["code"].startswith("bot.") and ack["error"]["message"]
    assert await market.db.fetchval("SELECT COUNT(*) FROM items") == items_before
    await engine.flows.clear(room, owner.user.id)
