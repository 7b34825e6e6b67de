"""The bot engine: every stored user message and every button press reaches it; it answers in the room.

- A slash-command anywhere (``/검색 텐트``), or free text in a person's assistant room (taken as a search),
  is parsed by ``bot.commands`` and handled here with the market's public service.
- Replies are bot messages with cards, buttons and quick replies (DESIGN §3), stored like any message and
  sent to the room through the gateway's ``Outlet``.
- Button tokens (``bot.buttons``) are bound to the person and the room; state-changing ones are single-use.
- One room's events are handled one at a time, on any number of gateway nodes (a Redis lock per room).
  Handling runs after the sender's message is acknowledged, so the bot never slows a person's send.

A conversation flow (``bot.flows``: listing an item with /등록) takes the person's messages and button
presses in that room until it ends; its state is saved in Redis after every event. The rental conversation
(``bot.flows.rental``) speaks through the engine's small ``Voice`` interface (``say``, ``button``, ``retire``,
``locale``).

Messages for one person: a refusal or error of a press or a typed command is never stored in the room — it
goes back in the press's acknowledgement, or as a ``notice`` (a toast) to the person who typed. Buttons retire:
a used single-use button, and every button a later step made pointless, is disabled in place for every client
(``message_update``), in history and archived segments too.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import secrets
from collections import OrderedDict
from contextvars import ContextVar
from typing import Any, Protocol

from bot import commands, places
from bot.buttons import ButtonError, Buttons
from bot.flows import FlowStore, Refusal
from bot.flows.listing import ListingFlow, parse_location
from bot.flows.rental import ACTION as RENTAL
from bot.flows.rental import PROMPT, RentalFlow
from bot.texts import chip, distance, say, won
from market.chat import Message, Sent
from market.db import DatabaseUnavailable
from market.errors import MarketError, RateLimited
from market.limits import Claimed
from market.messages import render
from market.people import locale as locale_copy
from market.people.home import home_of, set_home
from market.people.reviews import rating_label
from market.public_place import dong_at
from market.rentals.kdates import read_dates
from market.service import Market

log = logging.getLogger("billi.bot")
# In a deal room, the person whose typing or press the current work answers (their replies are theirs alone).
_ASKER: ContextVar[int | None] = ContextVar("billi_asker", default=None)
# "12월 5일(토) ~ 12월 6일(일), 2일 빌리고 싶어요" (the date picker's words in a deal room) asks for those dates
WANT = re.compile(r"(?:,\s*\d{1,3}\s*일)?\s*빌리고\s*싶어요[.!~]*\s*$")
PAGE = 5
DEFAULT_NEAR_M = 3000
LOCK_TIMEOUT_S = 30
# Rooms' locks given back, each only by its holder (KEYS[i] held with token ARGV[i]; the library's lock gives back
# the same way, on the same keys).
_UNLOCK = """
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[i] then redis.call('DEL', KEYS[i]) end
end
return #KEYS
"""


class Outlet(Protocol):
    """Where the engine's messages go out (the gateway's chat socket)."""

    async def publish(self, sent: Sent) -> None: ...

    async def announce_room(self, room_id: int, user_ids: list[int]) -> None: ...

    async def update(self, message: Message) -> None: ...

    async def notice(self, user_id: int, room_id: int, code: str, text: str,
                     retry_after: int | None = None) -> None: ...

    async def deal_changed(self, room_id: int) -> None: ...


class BotEngine:
    def __init__(self, market: Market, outlet: Outlet) -> None:
        self.market = market
        self.outlet = outlet
        self.buttons = Buttons(market.redis)
        self.flows = FlowStore(market.redis)
        self._kinds: OrderedDict[int, str] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self._tails: dict[int, asyncio.Task[None]] = {}
        self.rental = RentalFlow(self)
        self._unlock = market.redis.register_script(_UNLOCK)
        self._unlocks: list[tuple[str, str, asyncio.Future[None]]] = []
        self._unlocker: asyncio.Task[None] | None = None
        self._names: dict[str, int] | None = None  # (see _category_names)

    # -- the gateway's hook ------------------------------------------------------------------------
    def flow_key(self, room_id: int, user_id: int) -> str:
        """Where this person's open question in this room is kept (the chat's send gate reads whether it exists,
        in the round trip it makes anyway)."""
        return self.flows.key(room_id, user_id)

    async def on_message(self, room_id: int, message: dict[str, Any], user_id: int,
                         flow_open: bool | None = None) -> None:
        """A stored message. ``flow_open``: whether this person had a question of the bot open in this room when
        they sent it (None: not known, asked here)."""
        text = message.get("text") or ""
        command = message.get("command")
        if isinstance(command, str) and command.startswith("/") and await self._kind(room_id) == "assistant":
            text = command  # a chip pressed in one's own assistant room: its words were shown, its command runs
        image = message.get("image")
        is_image = isinstance(image, dict) and str(image.get("url", "")).startswith("/media/")
        picked = message.get("dates") if isinstance(message.get("dates"), dict) else None
        if not text.lstrip().startswith("/") and picked is None and await self._kind(room_id) != "assistant":
            # people talking to each other in a deal room: only a photo (evidence), an answer the bot asked for,
            # or a sentence like the date picker's "12월 5일(토) ~ 12월 6일(일), 2일 빌리고 싶어요"
            if not is_image and not WANT.search(text) and not (
                    flow_open if flow_open is not None else await self.flows.is_open(room_id, user_id)):
                return
        if is_image:
            work = self._locked(room_id, self._handle_image(room_id, image["url"].removeprefix("/media/"), user_id))
        elif picked is not None:  # the date picker: its exact dates, not a reading of its words
            work = self._locked(room_id, self._picked(room_id, user_id, picked))
        elif isinstance(parsed := commands.parse(text), commands.Command) and parsed.name != "cancel":
            work = self._typed(room_id, text, user_id)  # (it takes the room's lock with the command's count)
        else:
            work = self._locked(room_id, self._handle_text(room_id, text, user_id))
        # Within this process a room's messages are answered in the order they were stored; the Redis lock
        # then keeps other processes out while each is handled.
        before = self._tails.get(room_id)
        task = asyncio.create_task(self._after(before, work))
        self._tails[room_id] = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda t: self._tails.pop(room_id, None) if self._tails.get(room_id) is t else None)

    async def on_action(self, room_id: int, token: str, user_id: int, seq: Any = None,
                        given: Any = None) -> dict[str, Any]:
        """A button press (``seq``: the message it is in; ``given``: what its sheet asked for, e.g. a review's
        stars and words). Every refusal is in the answer, for the presser alone."""
        locale = await self._locale(user_id)
        try:
            press = await self.buttons.press(token, user_id, room_id)
        except ButtonError as e:
            if e.reason in ("button_used", "button_retired"):  # an old copy (another tab): show it spent there too
                await self._retire_token(room_id, seq, token)
            return {"ok": False, "error": {"code": f"bot.{e.reason}", "message": say(e.reason, locale)}}
        answer = await self._locked(room_id, self._handle_press(room_id, user_id, locale, press.action,
                                                                press.payload, given if isinstance(given, dict) else None))
        if press.single:  # spent, whatever came of it
            await self._retire_token(room_id, seq, token)
        if answer is None:
            return {"ok": False, "error": {"code": "service.internal", "message": render("service.internal", locale)}}
        return answer

    async def _retire_token(self, room_id: int, seq: Any, token: str) -> None:
        """Draw a spent button disabled (best effort: the press itself is done)."""
        try:
            edited = await self.market.chat.retire_token(room_id, seq, token)
        except Exception:  # noqa: BLE001 — a redraw that failed must not turn a done press into an error
            log.exception("could not retire a used button", extra={"room": room_id})
            return
        if edited is not None:
            await self.outlet.update(edited)

    @staticmethod
    async def _after(before: asyncio.Task[None] | None, work: Any) -> None:
        if before is not None:
            await asyncio.wait([before])
        await work

    async def tell(self, notes: list[tuple[int, str]]) -> None:
        """Notifications with no conversation of their own, said in each person's assistant room."""
        for user_id, text in notes:
            room = await self.market.chat.assistant_room(user_id)
            await self._post(room.id, text)

    async def welcome(self, room_id: int, user_id: int) -> None:
        """The first words in a person's assistant room: what this is, four chips to start from, and a place to
        set one's 동네. Said once (a second call finds it stored), and only to someone who has not yet said anything
        here — notices may have come first (a bank link, a review), an old hand gets no welcome."""
        if await self.market.db.fetchval("SELECT 1 FROM messages WHERE room_id = %s AND sender_id = %s LIMIT 1",
                                         (room_id, user_id)):
            return
        locale = await self._locale(user_id)
        name = await self.market.db.fetchval("SELECT nickname FROM users WHERE id = %s", (user_id,))
        home = await home_of(self.market.db, user_id)
        text = say("welcome", locale, name=name or "")
        if home is None:
            text += "\n" + say("welcome_home", locale)
        await self._post(room_id, text, client_msg_id="welcome", form=None if home else "home",
                         quick_replies=self._starters(locale))

    @staticmethod
    def _starters(locale: str) -> list[dict[str, str]]:
        return [chip(say("chip_camping_chair", locale), say("camping_chair", locale)),
                chip(say("chip_near", locale), "/주변"), chip(say("chip_category", locale), "/카테고리"),
                chip(say("chip_post", locale), "/등록")]

    async def drain(self) -> None:
        """Wait for replies still being worked on (for an orderly shutdown and for tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- plumbing ----------------------------------------------------------------------------------
    async def _locked(self, room_id: int, work: Any) -> Any:
        """Run one event's work holding the room's lock (across nodes); a failure is logged, not raised."""
        lock = self.market.redis.lock(f"bot:room:{room_id}", timeout=LOCK_TIMEOUT_S, blocking_timeout=LOCK_TIMEOUT_S)
        try:
            async with lock:
                return await work
        except Exception:
            log.exception("bot could not answer", extra={"room": room_id})
            if asyncio.iscoroutine(work):
                work.close()
            return None

    async def _typed(self, room_id: int, text: str, user_id: int) -> None:
        """A typed command, holding the room's lock (across nodes) — claimed in the round trip that counts the
        command and reads the person's open conversation and language, so the lock costs no trip of its own; the
        library's waiting lock when another node holds it, or when Redis is away (it fails there too, as
        before). A failure is logged, not raised."""
        key, token = f"bot:room:{room_id}", secrets.token_hex(16)
        try:
            counted = await self._may_command(room_id, user_id, None, read=self._command_reads(room_id, user_id),
                                              claim=(key, token, LOCK_TIMEOUT_S * 1000))
        except Claimed:  # another node is answering in this room: wait for it, then count
            await self._locked(room_id, self._handle_text(room_id, text, user_id))
            return
        except Exception:
            log.exception("bot could not answer", extra={"room": room_id})
            return
        allowed, (held, _) = counted
        if not allowed:
            return
        if not held:  # counted on this node (Redis away)
            await self._locked(room_id, self._handle_text(room_id, text, user_id, counted=counted))
            return
        try:
            await self._handle_text(room_id, text, user_id, counted=counted)
        except Exception:
            log.exception("bot could not answer", extra={"room": room_id})
        finally:
            try:
                await self.give_back(key, token)
            except Exception:  # noqa: BLE001 — it lapses by itself after LOCK_TIMEOUT_S
                log.exception("could not give back a room's lock", extra={"room": room_id})

    async def give_back(self, key: str, token: str) -> None:
        """Give back a lock claimed with ``token`` (a room's by ``_typed``, a contract's announcement's). The locks
        given back meanwhile in this process go to Redis together, in one command (as the flows' questions do)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._unlocks.append((key, token, future))
        if self._unlocker is None or self._unlocker.done():
            self._unlocker = asyncio.create_task(self._give_back_all())
        await future

    async def _give_back_all(self) -> None:
        while self._unlocks:
            batch, self._unlocks = self._unlocks, []
            try:
                await self._unlock(keys=[key for key, _, _ in batch], args=[token for _, token, _ in batch])
            except Exception as e:  # noqa: BLE001 — every waiting holder hears about it
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(e)
                continue
            for _, _, future in batch:
                if not future.done():
                    future.set_result(None)

    @staticmethod
    def _command_reads(room_id: int, user_id: int) -> list[str]:
        """What a typed command reads with its count: the person's open conversation here, their language."""
        return [FlowStore.key(room_id, user_id), locale_copy.key(user_id)]

    async def _kind(self, room_id: int) -> str:
        kind = self._kinds.get(room_id)
        if kind is None:
            kind = str(await self.market.db.fetchval("SELECT kind FROM rooms WHERE id = %s", (room_id,)) or "")
            self._kinds[room_id] = kind
            if len(self._kinds) > 100_000:
                self._kinds.popitem(last=False)
        return kind

    async def _locale(self, user_id: int) -> str:
        locale = await self.market.db.fetchval("SELECT locale FROM users WHERE id = %s", (user_id,))
        return "en" if locale == "en" else "ko"

    async def _say(self, room_id: int, text: str, client_msg_id: str | None = None, audience: int | None = None,
                   topic: str | None = None, **body: Any) -> Sent:
        """The bot's answer to what someone typed or pressed: in a deal room, for that person alone (a search,
        /내정보, a listing flow are nobody else's business)."""
        return await self._post(room_id, text, client_msg_id=client_msg_id,
                                audience=audience if audience is not None else _ASKER.get(), topic=topic, **body)

    async def _post(self, room_id: int, text: str, client_msg_id: str | None = None, audience: int | None = None,
                    topic: str | None = None, **body: Any) -> Sent:
        """Post the bot's message to the room, or with ``audience`` to that one member of it; with ``topic``
        its buttons stay live until that topic is retired."""
        live = _live(topic, body)
        sent = await self.market.chat.post(room_id, text, body={k: v for k, v in body.items() if v} or None,
                                           client_msg_id=client_msg_id, audience=audience, topic=live)
        await self._posted(room_id, sent, live)
        return sent

    async def _posted(self, room_id: int, sent: Sent, live: str | None) -> None:
        if live and sent.duplicate:
            # A repeat: its buttons were kept live with the message when it was stored — unless that was by a
            # process from before they were (remembering twice changes nothing).
            await self.market.chat.keep_live(room_id, sent.message.seq, live)
        if not sent.duplicate:
            await self.outlet.publish(sent)

    async def say_together(self, room_id: int, lines: list[dict[str, Any]]) -> list[Sent]:
        """Several lines (each ``{text, audience, topic, client_msg_id, **body}``) handed to the message writer
        together, so they are stored in one transaction with consecutive seqs in this order; then, in that order,
        their buttons kept live and each published — so no client sees a later seq before an earlier one."""
        def parts(line: dict[str, Any]) -> tuple[str, int | None, str | None, str | None, Any, dict[str, Any]]:
            rest = dict(line)
            text, audience, topic = rest.pop("text"), rest.pop("audience", None), rest.pop("topic", None)
            cmid, also = rest.pop("client_msg_id", None), rest.pop("also", None)
            return text, audience, _live(topic, rest), cmid, also, rest

        split = [parts(line) for line in lines]
        # Every line's store has ended, stored or failed, before a failure is raised: the writer may take them in
        # two batches, and what rides with one (``also``) is then settled when the caller hears of the failure.
        results = await asyncio.gather(*(
            self.market.chat.post(room_id, text, body={k: v for k, v in body.items() if v} or None,
                                  client_msg_id=cmid, audience=audience, topic=live, also=also)
            for text, audience, live, cmid, also, body in split), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        sent: list[Sent] = results  # type: ignore[assignment]
        for (_, _, live, _, _, _), one in sorted(zip(split, sent), key=lambda pair: pair[1].message.seq):
            await self._posted(room_id, one, live)
        return list(sent)

    async def _refuse(self, room_id: int, user_id: int, code: str, text: str,
                      retry_after: int | None = None) -> None:
        """A typed command's refusal: a toast for the person who typed, never a message in the room (with
        ``retry_after``: the seconds before they may type it again)."""
        await self.outlet.notice(user_id, room_id, code, text, retry_after)

    async def _may_command(self, room_id: int, user_id: int, locale: str | None, *,
                           read: str | list[str] | None = None,
                           claim: tuple[str, str, int] | None = None) -> tuple[bool, tuple[bool, Any]]:
        """Whether the person is within their allowance of typed commands, this one counted; if not, their toast
        (in ``locale``, or theirs read now) says when they may type again. Each command may post cards and query
        the market, so a flood of them is bounded like one of searches. With ``read``, those Redis keys are read in
        the same round trip, with ``claim`` that lock taken first (see ``Limits.take_reading``)."""
        try:
            got = await self.market.limits.take_reading(self.market.limits.command, read, person=user_id,
                                                        claim=claim)
        except RateLimited as e:
            locale = locale or await self._locale(user_id)
            await self._refuse(room_id, user_id, e.code, render(e.code, locale, **e.params),
                               retry_after=e.params["retry_after"])
            return False, (False, None)
        return True, got

    # -- the Voice the flows speak through ---------------------------------------------------------------
    async def locale(self, user_id: int) -> str:
        return await self._locale(user_id)

    async def say(self, room_id: int, text: str, *, audience: int | None = None, topic: str | None = None,
                  client_msg_id: str | None = None, **body: Any) -> Sent:
        """(The flow names its audience itself: None is both people.)"""
        return await self._post(room_id, text, client_msg_id=client_msg_id, audience=audience, topic=topic, **body)

    async def button(self, user_id: int, room_id: int, label: str, action: str, payload: dict[str, Any], *,
                     single_use: bool = True, form: str | None = None, ttl_s: int | None = None) -> dict[str, Any]:
        token = await self.buttons.issue(user_id, room_id, action, payload, single_use=single_use, ttl_s=ttl_s)
        return {"label": label, "token": token, **({"form": form} if form else {})}

    async def retire(self, room_id: int, topic: str, below: int | None = None) -> None:
        """A topic's buttons are done: disabled on every client and in history, and their tokens refused."""
        for message, tokens in await self.market.chat.retire(room_id, topic, below=below):
            await self.buttons.revoke(tokens)
            await self.outlet.update(message)

    async def announce_room(self, room_id: int, user_ids: list[int]) -> None:
        await self.outlet.announce_room(room_id, user_ids)

    async def deal_changed(self, room_id: int) -> None:
        await self.outlet.deal_changed(room_id)

    # -- what the gateway and the market call ------------------------------------------------------------
    async def on_contract_event(self, event: dict[str, Any]) -> None:
        await self.rental.on_event(event)

    async def after_link(self, room_id: int, user_id: int, account: dict[str, Any]) -> None:
        await self.rental.after_link(room_id, user_id, account)

    async def deal_view(self, room_id: int, user_id: int) -> dict[str, Any] | None:
        return await self.rental.deal_view(room_id, user_id)

    # -- text --------------------------------------------------------------------------------------
    async def _handle_text(self, room_id: int, text: str, user_id: int,
                           counted: tuple[bool, tuple[bool, Any]] | None = None) -> None:
        """What someone typed (``counted``: a typed command's count and reads, taken already — see ``_typed``)."""
        if await self._kind(room_id) == "deal":
            _ASKER.set(user_id)  # (this task's own context: the answers below are the typist's)
        parsed = commands.parse(text)
        # (/cancel is never refused: it is the way out of a flow)
        read: tuple[bool, Any] = (False, None)
        locale: str | None = None
        if isinstance(parsed, commands.Command) and parsed.name != "cancel":
            # the person's open conversation and their language, read with the command's count in one round trip
            allowed, read = counted or await self._may_command(room_id, user_id, None,
                                                               read=self._command_reads(room_id, user_id))
            if not allowed:
                return
            if read[0]:
                flow, copy = read[1]
                read = (True, flow)
                # no copy of the language yet: the record's, and the copy made for the next command
                locale = locale_copy.known(copy) or await locale_copy.locale_of(self.market.db, self.market.redis,
                                                                                user_id)
        if locale is None:
            locale = await self._locale(user_id)
        # (the person's open conversation, read with the command's count in one round trip when it was)
        record = await self.flows.read(room_id, user_id, read[1]) if read[0] else await self.flows.load(room_id,
                                                                                                       user_id)
        if record is not None and record.idle:
            await self.flows.clear(room_id, user_id)
            await self._say(room_id, say("flow_timed_out", locale))
            record = None
            if parsed is None:
                return
        if record is not None and record.name == PROMPT:
            if isinstance(parsed, commands.Command) and parsed.name == "cancel":
                await self.flows.clear(room_id, user_id)
                await self._say(room_id, say("cancelled", locale))
                return
            if parsed is None:
                try:
                    await self.rental.prompt(room_id, user_id, locale, record, text)
                except Refusal as e:  # the question stays open
                    await self._refuse(room_id, user_id, e.code, e.text)
                except MarketError as e:
                    await self.flows.clear(room_id, user_id)
                    await self._refuse(room_id, user_id, e.code, render(e.code, locale, field=e.field, **e.params))
                return
            await self.flows.clear(room_id, user_id)  # another command: the question is dropped
            record = None
        if record is not None and (parsed is None or (isinstance(parsed, commands.Command)
                                                      and parsed.name in ("cancel", "help"))):
            flow = ListingFlow(_Turn(self, room_id, user_id, locale), record)
            if isinstance(parsed, commands.Command) and parsed.name == "cancel":
                await self.flows.clear(room_id, user_id)
                await self._say(room_id, say("cancelled", locale))
            elif isinstance(parsed, commands.Command):  # /help inside a flow: what this step needs
                await flow.ask()
            elif await flow.handle_text(text):
                await self.flows.save(room_id, user_id, flow.record)
            else:
                await self.flows.clear(room_id, user_id)
            return
        if isinstance(parsed, commands.Command) and parsed.name == "post":
            record = ListingFlow.start_record()
            await ListingFlow(_Turn(self, room_id, user_id, locale), record).ask()
            await self.flows.save(room_id, user_id, record)
            return
        if parsed is None:
            query = text.strip()
            kind = await self._kind(room_id)
            if query and kind == "assistant":  # a search typed without /검색 counts as the command
                if (await self._may_command(room_id, user_id, locale))[0]:
                    params: dict[str, Any] = {"q": query}
                    if (home := await home_of(self.market.db, user_id)) is not None:
                        params.update(lat=home.lat, lng=home.lng, radius_m=self.market.config.nearby_default_radius_m)
                    await self._search(room_id, user_id, locale, params, query, widen=True)
            elif kind == "deal" and WANT.search(query):  # the date picker's sentence (or someone's own)
                dates = WANT.sub("", query)
                if await self.rental.borrower_here(room_id, user_id):
                    await self._guarded(room_id, user_id, locale, self.rental.rent(room_id, user_id, locale, None,
                                                                                  dates))
            return
        if isinstance(parsed, commands.Unknown):
            hint = say("did_you_mean", locale, command=parsed.suggestion) if parsed.suggestion else ""
            await self._refuse(room_id, user_id, "bot.unknown_command",
                               say("unknown_command", locale, given=parsed.given, hint=hint))
            return
        if isinstance(parsed, commands.BadArgs):
            await self._refuse(room_id, user_id, "bot.bad_args", say("bad_args", locale, reason=say(
                parsed.reason, locale), usage=parsed.spec.usage(locale)))
            return
        await self._guarded(room_id, user_id, locale, self._command(room_id, user_id, locale, parsed))

    async def _picked(self, room_id: int, user_id: int, dates: dict[str, Any]) -> None:
        locale = await self._locale(user_id)
        if await self._kind(room_id) == "deal" and await self.rental.borrower_here(room_id, user_id):
            await self._guarded(room_id, user_id, locale, self.rental.picked(room_id, user_id, locale, dates))

    async def _guarded(self, room_id: int, user_id: int, locale: str, work: Any) -> None:
        """A typed command's work: what it refuses becomes the person's toast."""
        try:
            await work
        except Refusal as e:
            await self._refuse(room_id, user_id, e.code, e.text)
        except MarketError as e:
            await self._refuse(room_id, user_id, e.code, render(e.code, locale, field=e.field, **e.params),
                               retry_after=e.params.get("retry_after"))
        except DatabaseUnavailable as e:  # nothing refused: the person hears to try again shortly
            await self._refuse(room_id, user_id, e.code, render(e.code, locale))

    async def _command(self, room_id: int, user_id: int, locale: str, c: commands.Command) -> None:
        if c.name == "help":
            if c.args["topic"]:
                s = commands.spec(c.args["topic"])
                await self._say(room_id, f"{s.usage(locale)} — {s.summary(locale)}")
                return
            lines = "\n".join(f"{s.usage(locale)} — {s.summary(locale)}" for s in commands.SPECS)
            await self._say(room_id, say("help", locale, lines=lines), quick_replies=[
                chip(say("chip_search", locale, query="텐트"), "/검색 텐트"),
                chip(say("chip_near_place", locale, place="역삼동"), "/주변 역삼동")])
        elif c.name == "search":
            params: dict[str, Any] = {"q": c.args["query"]}
            widen = False
            words = c.args["query"].split()
            where = [w for w in words if places.find(w) and w.endswith(("동", "구", "역"))]
            if where:
                name, (lat, lng) = places.find(where[-1])  # type: ignore[misc]
                params.update(q=" ".join(w for w in words if w not in where) or c.args["query"], lat=lat, lng=lng,
                              radius_m=c.args["radius_m"] or self.market.config.nearby_default_radius_m)
            elif (home := await home_of(self.market.db, user_id)) is not None:  # from my 동네, when I set one
                params.update(lat=home.lat, lng=home.lng,
                              radius_m=c.args["radius_m"] or self.market.config.nearby_default_radius_m)
                widen = not c.args["radius_m"]
            # "/검색 의자 캠핑가구": a word that is exactly a category's name narrows to that category
            kept = params["q"].split()
            named = [(w, self._category_named(w)) for w in kept if self._is_category_name(w)]
            if named and len(named) < len(kept):
                word, cat = named[-1]
                params.update(q=" ".join(w for w in kept if w != word), category=cat)
            await self._search(room_id, user_id, locale, params, params["q"], widen=widen)
        elif c.name == "category":
            name = c.args["name"]
            if not name:
                buttons = [{"label": top.name, "token": await self.buttons.issue(
                    user_id, room_id, "browse", {"category": top.id})} for top in self.market.categories.children(None)]
                await self._say(room_id, say("pick_category", locale), buttons=buttons)
                return
            found = self._category_named(name)
            if found is None:
                raise Refusal(say("unknown_category", locale, name=name[:30]), "bot.unknown_category")
            await self._browse(room_id, user_id, locale, found)
        elif c.name == "home":
            await self._home(room_id, user_id, locale, c.args["place"])
        elif c.name == "near":
            if c.args["place"] is None:  # near my own 동네, or the question for it
                home = await home_of(self.market.db, user_id)
                if home is None:
                    await self._ask_home(room_id, locale)
                    return
                spot = {"lat": home.lat, "lng": home.lng, "place_name": home.name}
            else:
                spot = parse_location(c.args["place"])  # a 동/구 name, or "lat,lng" shared by the widget
            if spot is None:
                raise Refusal(say("unknown_place", locale, place=c.args["place"][:30]), "bot.unknown_place")
            lat, lng = spot["lat"], spot["lng"]
            name = spot["place_name"] or say("here", locale)
            radius = c.args["radius_m"] or DEFAULT_NEAR_M
            await self._near(room_id, user_id, locale, {"lat": lat, "lng": lng, "radius_m": radius}, name)
        elif c.name == "item":
            item = await self._detail(c.args["item_id"], user_id, locale, room_id)
            if item is not None:
                await self._say(room_id, say("item", locale), cards=[await self._card(item, user_id, room_id, locale)])
        elif c.name == "wish":
            item = await self._detail(c.args["item_id"], user_id, locale, room_id)
            if item is not None:
                await self.market.wishes.add(user_id, item["id"])
                await self._say(room_id, say("wished", locale, title=item["title"]))
        elif c.name == "wishes":
            mine = await self.market.wishes.mine(user_id)
            if not mine:
                await self._say(room_id, say("no_wishes", locale))
                return
            cards = [await self._card(i, user_id, room_id, locale) for i in mine[:10]]
            await self._say(room_id, say("wishes", locale), cards=cards)
        elif c.name == "my":
            from market.people.mypage import my_page

            page = await my_page(self.market, user_id)
            mine, wishes = page["items"], page["wishes"]
            cards = []
            for item in mine[:10]:
                card = await self._card(item, user_id, room_id, locale)
                card["buttons"] = [
                    {"label": say("edit", locale), "token": await self.buttons.issue(
                        user_id, room_id, "edit", {"item": item["id"]}, single_use=True)},
                    {"label": say("delete", locale), "token": await self.buttons.issue(
                        user_id, room_id, "delete", {"item": item["id"]}, single_use=True)}]
                cards.append(card)
            trust, account = page["trust"], page["bank_account"]
            on_time = "-" if trust["on_time_rate"] is None else f"{round(trust['on_time_rate'] * 100)}%"
            await self._say(room_id, say(
                "my_page", locale, count=len(mine), wishes=len(wishes), borrowing=len(page["borrowed"]["current"]),
                lending=len(page["lent"]["current"]), rating=self._stars(page["rating"], locale),
                completed=trust["completed"], on_time=on_time, claims=trust["claims"],
                account=f"{account['bank_name']} {account['account']}" if account else say("no_account", locale),
                unread=page["notifications_unread"]), cards=cards,
                quick_replies=[chip(say("chip_wishes", locale), "/찜목록"), chip(say("chip_post", locale), "/등록")])
        elif c.name == "rent":
            await self.rental.rent(room_id, user_id, locale, c.args["item_id"], c.args["dates"])
        elif c.name == "pay":
            await self.rental.pay(room_id, user_id, locale, c.args["arg"])
        elif c.name == "return":
            await self.rental.return_(room_id, user_id, locale)
        elif c.name == "extend":
            await self.rental.extend(room_id, user_id, locale, c.args["dates"])
        elif c.name == "cancel":
            if await self.rental.in_progress(room_id, user_id):
                await self.rental.cancel(room_id, user_id, locale)
            else:
                raise Refusal(say("nothing_to_cancel", locale), "bot.nothing_to_cancel")

    @staticmethod
    def _stars(rating: dict[str, Any], locale: str) -> str:
        return rating_label(rating["stars"], rating["count"], locale)

    async def _ask_home(self, room_id: int, locale: str) -> None:
        """Ask for one's 동네 — with the form only in one's own assistant room: what the form sends (a 동, or where
        one is) would otherwise be a message the other member of a deal room reads."""
        if await self._kind(room_id) == "assistant":
            await self._say(room_id, say("need_home", locale), form="home")
        else:
            await self._say(room_id, say("need_home_elsewhere", locale))

    async def _home(self, room_id: int, user_id: int, locale: str, place: str | None) -> None:
        """/동네 역삼동 (or the widget's "lat,lng" from the browser, kept as its 동): remembered, then what is near it."""
        if place is None:
            home = await home_of(self.market.db, user_id)
            if home is None:
                await self._ask_home(room_id, locale)
            else:
                await self._say(room_id, say("home_is", locale, place=home.name or say("home_here", locale)))
            return
        spot = parse_location(place)
        if spot is None:
            raise Refusal(say("unknown_place", locale, place=place[:30]), "bot.unknown_place")
        name = spot["place_name"] or await asyncio.to_thread(dong_at, spot["lat"], spot["lng"])
        home = await set_home(self.market.db, user_id, name, spot["lat"], spot["lng"])
        shown = home.name or say("home_here", locale)
        await self._say(room_id, say("home_set", locale, place=shown))
        await self._near(room_id, user_id, locale, {"lat": home.lat, "lng": home.lng, "radius_m": DEFAULT_NEAR_M},
                         shown)

    def _category_named(self, name: str) -> int | None:
        """The category a person named: exact name first, then the shallowest one containing it."""
        want = name.replace(" ", "")
        names = self._category_names()
        if want in names:
            return names[want]
        partial = sorted((c for c in self._all_categories() if want in c.name.replace(" ", "")),
                         key=lambda c: c.level)
        return int(partial[0].id) if partial else None

    def _is_category_name(self, word: str) -> bool:
        return word in self._category_names()

    def _category_names(self) -> dict[str, int]:
        """Each category's name without spaces -> the first category (top down) so named. (The tree is read once
        per process, so this is worked out once: every /검색 asks it of each of its words.)"""
        if self._names is None:
            names: dict[str, int] = {}
            for c in self._all_categories():
                names.setdefault(c.name.replace(" ", ""), int(c.id))
            self._names = names
        return self._names

    def _all_categories(self) -> list[Any]:
        out, todo = [], list(self.market.categories.children(None))
        while todo:
            node = todo.pop(0)
            out.append(node)
            todo += self.market.categories.children(node.id)
        return out

    async def _browse(self, room_id: int, user_id: int, locale: str, category_id: int) -> None:
        """A category's items: its sub-categories as buttons, and its listings (every listing answers to the
        names of its categories in search)."""
        category = self.market.categories.get(category_id)
        children = self.market.categories.children(category_id)
        if children:
            buttons = [{"label": c.name, "token": await self.buttons.issue(user_id, room_id, "browse",
                                                                         {"category": c.id})} for c in children]
            await self._say(room_id, say("sub_categories", locale, name=category.name), buttons=buttons)
        words = " ".join(category.name.replace("/", " ").split())
        await self._search(room_id, user_id, locale, {"q": words, "category": category_id}, category.name,
                           browse=category.name)

    async def _detail(self, item_id: int, user_id: int, locale: str, room_id: int) -> dict[str, Any] | None:
        try:
            return await self.market.items.detail(item_id, viewer_id=user_id, count_view=False)
        except MarketError:
            raise Refusal(say("item_missing", locale, number=str(item_id)), "bot.item_missing") from None

    # -- results -----------------------------------------------------------------------------------
    async def _search(self, room_id: int, user_id: int, locale: str, params: dict[str, Any], query: str,
                      cursor: str | None = None, *, widen: bool = False, browse: str | None = None) -> None:
        """A page of results (``widen``: the place came from the person's 동네, so when nothing is near it the
        whole market is searched instead; ``browse``: the category being browsed, which names the results)."""
        result = await self.market.search({**{k: str(v) for k, v in params.items()}, "limit": str(PAGE),
                                           **({"cursor": cursor} if cursor else {})}, owner_ratings=True)
        widened = False
        if not result["items"] and widen and not cursor and "lat" in params:
            params = {k: v for k, v in params.items() if k not in ("lat", "lng", "radius_m")}
            result = await self.market.search({**{k: str(v) for k, v in params.items()}, "limit": str(PAGE)},
                                              owner_ratings=True)
            widened = True
        if not result["items"]:
            if cursor:
                await self._say(room_id, say("no_more", locale))
            elif result["did_you_mean"]:
                await self._say(room_id, say("no_results_suggest", locale, query=query[:40],
                                             suggestion=result["did_you_mean"]),
                                quick_replies=[chip(say("chip_search", locale, query=result["did_you_mean"]),
                                                    f"/검색 {result['did_you_mean']}")])
            else:
                await self._say(room_id, say("no_results", locale, query=query[:40]))
            return
        if browse:
            heading = say("category_results", locale, name=browse)
        elif widened:  # the person asked around their 동네: say that these are from further away
            heading = (say("results_widened_corrected", locale, query=query[:40],
                           suggestion=result["did_you_mean"][:40]) if result.get("corrected")
                       else say("results_widened", locale, query=query[:40]))
        elif result.get("corrected"):
            heading = say("results_corrected", locale, query=query[:40], suggestion=result["did_you_mean"][:40])
        else:
            heading = say("results", locale, query=query[:40])
        await self._results(room_id, user_id, locale, heading, result["items"], result["next_cursor"],
                            {"kind": "search", "params": params, "query": query, "cursor": cursor,
                             **({"browse": browse} if browse else {})},
                            chip=None if cursor or browse else result.get("category"))

    async def _near(self, room_id: int, user_id: int, locale: str, params: dict[str, Any], place: str,
                    cursor: str | None = None) -> None:
        result = await self.market.nearby({**{k: str(v) for k, v in params.items()}, "limit": str(PAGE),
                                           **({"cursor": cursor} if cursor else {})}, owner_ratings=True)
        if not result["items"]:
            key = "no_more" if cursor else "nothing_near"
            await self._say(room_id, say(key, locale, place=place, distance=distance(params["radius_m"])))
            return
        await self._results(room_id, user_id, locale,
                            say("near_results", locale, place=place, distance=distance(params["radius_m"])),
                            result["items"], result["next_cursor"],
                            {"kind": "near", "params": params, "place": place, "cursor": cursor})

    async def _results(self, room_id: int, user_id: int, locale: str, text: str, items: list[dict[str, Any]],
                       next_cursor: str | None, again: dict[str, Any], chip: dict[str, Any] | None = None) -> None:
        if all("owner_rating" in i for i in items):  # read with the cards (one query for the page)
            ratings = {int(i["owner_id"]): i["owner_rating"] for i in items if i.get("owner_id")}
        else:
            ratings = await self.market.reviews.ratings([i["owner_id"] for i in items if i.get("owner_id")])
        async with self.buttons.batch():  # every card's buttons and the page's, in one Redis round trip
            cards = [await self._card(i, user_id, room_id, locale, ratings) for i in items]
            buttons = []
            if next_cursor:
                token = await self.buttons.issue(user_id, room_id, "more", {**again, "cursor": next_cursor},
                                                 single_use=True)
                buttons.append({"label": say("more", locale), "token": token})
            if not again.get("cursor") and again["kind"] in ("search", "near"):
                buttons += await self._filters(room_id, user_id, locale, items, again)
            if chip is not None:  # what the search is mostly about: browse that category
                buttons.append({"label": say("category_chip", locale, name=chip["name"]),
                                "token": await self.buttons.issue(user_id, room_id, "browse",
                                                                  {"category": chip["id"]})})
        await self._say(room_id, text, cards=cards, buttons=buttons)

    async def _filters(self, room_id: int, user_id: int, locale: str, items: list[dict[str, Any]],
                       again: dict[str, Any]) -> list[dict[str, str]]:
        """Buttons that narrow the same search: a price cap, a smaller radius, one of the results' categories."""
        params = again["params"]
        options: list[tuple[str, dict[str, Any]]] = []
        for cap in (5000, 10000):
            if int(params.get("price_max") or 10**9) > cap:
                options.append((say("filter_price", locale, price=won(cap, locale)), {"price_max": cap}))
        if params.get("lat") is not None:
            for radius in (1000, 3000):
                if int(params.get("radius_m") or 6000) > radius:
                    options.append((say("filter_radius", locale, distance=distance(radius)), {"radius_m": radius}))
        if again["kind"] == "search" and not params.get("category"):
            tops: dict[int, str] = {}
            for item in items:
                top = self.market.categories.path(item["category"]["id"])[0]
                tops.setdefault(top.id, top.name)
            if len(tops) > 1:
                options += [(name, {"category": cid}) for cid, name in tops.items()]
        out = []
        for label, change in options:
            token = await self.buttons.issue(user_id, room_id, "filter", {**again, "params": {**params, **change}})
            out.append({"label": label, "token": token})
        return out

    async def _card(self, item: dict[str, Any], user_id: int, room_id: int, locale: str,
                    ratings: dict[int, dict[str, Any]] | None = None) -> dict[str, Any]:
        # (each fact worked out once: a page is five cards, each saying most of them twice — fields and row)
        labels = _card_labels(locale)
        price, deposit = won(item["price_per_day"], locale), won(item["deposit"], locale)
        wishes = item.get("wish_count", 0)
        fields = [[labels["field_price"], price], [labels["field_deposit"], deposit],
                  [labels["field_condition"], item["condition"]], [labels["field_wishes"], str(wishes)]]
        away = distance(item.get("distance_m"))
        if item.get("distance_m") is not None:
            fields.insert(2, [labels["field_distance"], away])
        owner = item.get("owner_id", item.get("owner", {}).get("id"))
        rating = ratings.get(int(owner)) if ratings is not None and owner is not None else (
            await self.market.reviews.rating(int(owner)) if owner is not None else None)
        stars = self._stars(rating, locale) if rating is not None else None
        if rating:
            fields.append([labels["field_rating"], stars])
        buttons = []
        if owner != user_id:
            buttons = [
                {"label": labels["wish"],
                 "token": await self.buttons.issue(user_id, room_id, "wish", {"item": item["id"]}, single_use=True)},
                {"label": labels["ask"],  # (not single-use: it opens the same deal room each time)
                 "token": await self.buttons.issue(user_id, room_id, "ask", {"item": item["id"]})},
            ]
        photo = item.get("thumbnail") or (item.get("photos") or [{}])[0].get("thumbnail")
        place = _place_line(item)
        # What a result row shows (the widget lays it out): the same facts as the fields, as people read them
        posted = item.get("created_at")  # UTC, written without its zone
        row = {"title": item["title"], "place": place,
               "posted_at": posted + "Z" if isinstance(posted, str) and posted[-1:].isdigit() else posted,
               "price": say("per_day", locale, price=price),
               "deposit": say("deposit_line", locale, deposit=deposit),
               "distance": away or None,
               "rating": stars,
               "wishes": int(wishes), "mine": owner == user_id,
               **({"mine_label": labels["mine"]} if owner == user_id else {})}
        return {"item_id": item["id"], "title": f"#{item['id']} {item['title']}", "subtitle": place,
                "image": photo, "fields": fields, "buttons": buttons, "row": row}

    # -- buttons -----------------------------------------------------------------------------------
    async def _handle_image(self, room_id: int, key: str, user_id: int) -> None:
        if await self._kind(room_id) == "deal":
            await self.market.rentals.add_photo(room_id, user_id, key)  # condition evidence, timestamped
            return
        record = await self.flows.load(room_id, user_id)
        if record is None or record.idle or not key.startswith(f"chat/{room_id}/"):
            return
        flow = ListingFlow(_Turn(self, room_id, user_id, await self._locale(user_id)), record)
        await flow.handle_image(key)
        await self.flows.save(room_id, user_id, flow.record)

    async def _handle_press(self, room_id: int, user_id: int, locale: str, action: str,
                            payload: dict[str, Any], given: dict[str, Any] | None = None) -> dict[str, Any]:
        """Carry out a button press; the answer for the presser (``ok``, or the refusal, and what to open)."""
        answer: dict[str, Any] = {"ok": True, "handled": True}
        if await self._kind(room_id) == "deal":
            _ASKER.set(user_id)
        try:
            if action == RENTAL:
                said = await self.rental.press(room_id, user_id, locale, payload, given)
                if said in ("button_not_yours", "button_invalid"):
                    return _refused(f"bot.{said}", say(str(said), locale))
                if isinstance(said, dict):  # e.g. a charge the bank has not answered yet: {pending, message}
                    answer.update(said)
                elif said:
                    answer["message"] = said
            elif action == "flow":
                record = await self.flows.load(room_id, user_id)
                if record is None or record.idle:
                    await self.flows.clear(room_id, user_id)
                    return _refused("bot.flow_stale_button", say("flow_stale_button", locale))
                flow = ListingFlow(_Turn(self, room_id, user_id, locale), record)
                if await flow.handle_press(payload):
                    await self.flows.save(room_id, user_id, flow.record)
                else:
                    await self.flows.clear(room_id, user_id)
            elif action == "browse":
                await self._browse(room_id, user_id, locale, int(payload["category"]))
            elif action == "filter":
                if payload["kind"] == "search":
                    await self._search(room_id, user_id, locale, payload["params"], payload["query"],
                                       browse=payload.get("browse"))
                else:
                    await self._near(room_id, user_id, locale, payload["params"], payload["place"])
            elif action == "more":
                if payload["kind"] == "search":
                    await self._search(room_id, user_id, locale, payload["params"], payload["query"],
                                       payload["cursor"], browse=payload.get("browse"))
                else:
                    await self._near(room_id, user_id, locale, payload["params"], payload["place"], payload["cursor"])
            elif action == "wish":
                item = await self._detail(int(payload["item"]), user_id, locale, room_id)
                if item is not None:
                    count = await self.market.wishes.add(user_id, item["id"])
                    answer.update(message=say("wished", locale, title=item["title"]), item=item["id"], wishes=count)
            elif action == "ask":
                answer.update(await self.open_deal(int(payload["item"]), user_id))
            elif action == "delete":
                item = await self.market.items.detail(int(payload["item"]), viewer_id=user_id, count_view=False)
                await self.market.items.delete(user_id, item["id"])
                await self._say(room_id, say("deleted", locale, title=item["title"]))
            elif action == "edit":
                item = await self.market.items.detail(int(payload["item"]), viewer_id=user_id, count_view=False)
                if item["owner"]["id"] != user_id:
                    return _refused("bot.button_not_yours", say("button_not_yours", locale))
                record = ListingFlow.edit_record(item)
                await ListingFlow(_Turn(self, room_id, user_id, locale), record).ask()
                await self.flows.save(room_id, user_id, record)
            else:
                return _refused("bot.button_invalid", say("button_invalid", locale))
        except Refusal as e:
            return _refused(e.code, e.text)
        except MarketError as e:
            return _refused(e.code, render(e.code, locale, field=e.field, **e.params), e.params.get("retry_after"))
        return answer

    async def open_deal(self, item_id: int, user_id: int) -> dict[str, Any]:
        """문의하기: the deal room of the item and this person, opened at once (created, with each person's
        introduction, on the first inquiry); the answer names the room and a first message to suggest."""
        locale = await self._locale(user_id)
        item = await self.market.items.detail(item_id, viewer_id=user_id, count_view=False)
        deal, created = await self.market.chat.open_deal_room(item_id, user_id)
        suggest = say("first_message", locale, title=item["title"])
        if not created:
            return {"open_room": deal.id, "suggest": suggest, "created": False}
        await self.outlet.announce_room(deal.id, [deal.owner_id, user_id])
        name = await self.market.db.fetchval("SELECT nickname FROM users WHERE id = %s", (user_id,))
        owner_locale = await self._locale(deal.owner_id)
        # The owner: who is asking, with their record, and the item (no buttons: the next step is the other's)
        card = await self._card(item, deal.owner_id, deal.id, owner_locale)
        card["buttons"] = []
        rating, trust = await self.market.reviews.rating(user_id), await self.market.reviews.trust(user_id)
        intro = say("deal_intro", owner_locale, name=name) + "\n" + say(
            "trust_line", owner_locale, name=name, rating=self._stars(rating, owner_locale),
            completed=trust["completed"])
        await self._say(deal.id, intro, cards=[card], audience=deal.owner_id)
        # The person asking: the item with the 대여 요청 button (it opens the date picker)
        mine = await self._card(item, user_id, deal.id, locale)
        mine["buttons"] = await self._date_buttons(user_id, deal.id, item_id, locale)
        await self._say(deal.id, say("deal_welcome", locale, title=item["title"]), cards=[mine], audience=user_id)
        return {"open_room": deal.id, "suggest": suggest, "created": True}

    async def _date_buttons(self, user_id: int, room_id: int, item_id: int, locale: str) -> list[dict[str, Any]]:
        """The borrower's way to a request in one press: 이번 주말 and 다음 주말 open the date picker with those
        dates and their price (one more press sends it); 대여 요청 opens it to choose."""
        today = self.market.rentals.clock.today()
        out = []
        for key, words in (("this_weekend", "이번 주말"), ("next_weekend", "다음 주말")):
            reading = read_dates(words, today)
            if reading is None or reading.start < today:
                continue
            button = await self.button(user_id, room_id, say(key, locale), RENTAL, {"do": "request", "item": item_id},
                                       single_use=False, form="dates")
            out.append({**button, "dates": {"start": reading.start.isoformat(), "end": reading.end.isoformat()}})
        out.append(await self.button(user_id, room_id, say("rent_button", locale), RENTAL,
                                     {"do": "request", "item": item_id}, single_use=False, form="dates"))
        return out


def _refused(code: str, text: str, retry_after: int | None = None) -> dict[str, Any]:
    """A press's refusal, for the presser's ack (``retry_after``: when to press again, if it was too often)."""
    error: dict[str, Any] = {"code": code, "message": text}
    if retry_after is not None:
        error["retry_after"] = retry_after
    return {"ok": False, "error": error}


@functools.cache
def _card_labels(locale: str) -> dict[str, str]:
    """The fixed words of a result card in ``locale`` (labels: no slots to fill)."""
    return {key: say(key, locale) for key in ("field_price", "field_deposit", "field_condition", "field_wishes",
                                              "field_distance", "field_rating", "wish", "ask", "mine")}


def _place_line(item: dict[str, Any]) -> str:
    """A card's place: the item's 동, then the place its owner named when that says more ("역삼동 · 강남역 앞")."""
    dong, named = item.get("dong") or "", item.get("place_name") or ""
    return " · ".join(p for p in dict.fromkeys((dong, named)) if p)


class _Turn:
    """One event's view of the engine, for a flow."""

    def __init__(self, engine: BotEngine, room_id: int, user_id: int, locale: str) -> None:
        self.engine = engine
        self.market = engine.market
        self.room_id = room_id
        self.user_id = user_id
        self.locale = locale

    async def say(self, text: str, **body: Any) -> None:
        await self.engine._say(self.room_id, text, **body)

    async def refuse(self, text: str) -> None:
        await self.engine._refuse(self.room_id, self.user_id, "bot.flow_refused", text)

    async def button(self, label: str, payload: dict[str, Any]) -> dict[str, str]:
        token = await self.engine.buttons.issue(self.user_id, self.room_id, "flow", payload, single_use=True)
        return {"label": label, "token": token}


def _live(topic: str | None, body: dict[str, Any]) -> str | None:
    """The topic a message's buttons stay live under (None: it has no buttons, or no topic)."""
    if topic and (body.get("buttons") or any(c.get("buttons") for c in body.get("cards") or [])):
        return topic
    return None
