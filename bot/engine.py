"""The bot engine: every stored user message and every button press reaches it; it answers in the room.

- A slash-command anywhere (``/검색 텐트``), or free text in a person's assistant room (taken as a search),
  is parsed by ``bot.commands`` and handled here with the market's public service.
- Replies are bot messages with cards, buttons and quick replies (DESIGN §3), stored like any message and
  sent to the room through the gateway's ``Outlet``.
- Button tokens (``bot.buttons``) are bound to the person and the room; state-changing ones are single-use.
- One room's events are handled one at a time, on any number of gateway nodes (a Redis lock per room).
  Handling runs after the sender's message is acknowledged, so the bot never slows a person's send.

A conversation flow (``bot.flows``: listing an item with /등록) takes the person's messages and button
presses in that room until it ends; its state is saved in Redis after every event.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Any, Protocol

from bot import commands, places
from bot.buttons import ButtonError, Buttons
from bot.flows import FlowStore
from bot.flows.listing import ListingFlow, parse_location
from bot.rentals import PROMPT, RentalDesk
from bot.texts import distance, say, won
from market.chat import Sent
from market.errors import MarketError
from market.messages import render
from market.service import Market

log = logging.getLogger("billi.bot")
PAGE = 5
DEFAULT_NEAR_M = 3000
LOCK_TIMEOUT_S = 30


class Outlet(Protocol):
    """Where the engine's messages go out (the gateway's chat socket)."""

    async def publish(self, sent: Sent) -> None: ...

    async def announce_room(self, room_id: int, user_ids: list[int]) -> None: ...


class BotEngine:
    def __init__(self, market: Market, outlet: Outlet) -> None:
        self.market = market
        self.outlet = outlet
        self.buttons = Buttons(market.redis)
        self.flows = FlowStore(market.redis)
        self._kinds: OrderedDict[int, str] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self._tails: dict[int, asyncio.Task[None]] = {}
        self.desk = RentalDesk(self)

    # -- the gateway's hook ------------------------------------------------------------------------
    async def on_message(self, room_id: int, message: dict[str, Any], user_id: int) -> None:
        text = message.get("text") or ""
        image = message.get("image")
        is_image = isinstance(image, dict) and str(image.get("url", "")).startswith("/media/")
        if not text.lstrip().startswith("/") and await self._kind(room_id) != "assistant":
            # people talking to each other in a deal room: only a photo (evidence) or an answer the bot asked for
            if not is_image and not await self.market.redis.exists(self.flows.key(room_id, user_id)):
                return
        if is_image:
            work = self._handle_image(room_id, image["url"].removeprefix("/media/"), user_id)
        else:
            work = self._handle_text(room_id, text, user_id)
        # Within this process a room's messages are answered in the order they were stored; the Redis lock
        # then keeps other processes out while each is handled.
        before = self._tails.get(room_id)
        task = asyncio.create_task(self._after(before, self._locked(room_id, work)))
        self._tails[room_id] = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda t: self._tails.pop(room_id, None) if self._tails.get(room_id) is t else None)

    async def on_action(self, room_id: int, token: str, user_id: int) -> dict[str, Any]:
        locale = await self._locale(user_id)
        try:
            press = await self.buttons.press(token, user_id, room_id)
        except ButtonError as e:
            return {"ok": False, "error": {"code": f"bot.{e.reason}", "message": say(e.reason, locale)}}
        refused = await self._locked(room_id, self._handle_press(room_id, user_id, locale, press.action,
                                                                 press.payload))
        if refused:
            return {"ok": False, "error": {"code": f"bot.{refused}", "message": say(refused, locale)}}
        return {"ok": True, "handled": True}

    @staticmethod
    async def _after(before: asyncio.Task[None] | None, work: Any) -> None:
        if before is not None:
            await asyncio.wait([before])
        await work

    async def tell(self, notes: list[tuple[int, str]]) -> None:
        """Notifications with no conversation of their own, said in each person's assistant room."""
        for user_id, text in notes:
            room = await self.market.chat.assistant_room(user_id)
            await self._say(room.id, text)

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
                   **body: Any) -> Sent:
        """Post the bot's message to the room, or with ``audience`` to that one member of it."""
        sent = await self.market.chat.post(room_id, text, body={k: v for k, v in body.items() if v} or None,
                                           client_msg_id=client_msg_id, audience=audience)
        if not sent.duplicate:
            await self.outlet.publish(sent)
        return sent

    # -- text --------------------------------------------------------------------------------------
    async def _handle_text(self, room_id: int, text: str, user_id: int) -> None:
        locale = await self._locale(user_id)
        parsed = commands.parse(text)
        record = await self.flows.load(room_id, user_id)
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
                    await self.desk.prompt(room_id, user_id, locale, record, text)
                except MarketError as e:
                    await self.flows.clear(room_id, user_id)
                    await self._say(room_id, render(e.code, locale, field=e.field, **e.params), audience=user_id)
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
            if query and await self._kind(room_id) == "assistant":
                await self._search(room_id, user_id, locale, {"q": query}, query)
            return
        if isinstance(parsed, commands.Unknown):
            hint = say("did_you_mean", locale, command=parsed.suggestion) if parsed.suggestion else ""
            await self._say(room_id, say("unknown_command", locale, given=parsed.given, hint=hint),
                            quick_replies=[parsed.suggestion or "/help"], audience=user_id)
            return
        if isinstance(parsed, commands.BadArgs):
            await self._say(room_id, say("bad_args", locale, reason=say(parsed.reason, locale),
                                         usage=parsed.spec.usage(locale)), audience=user_id)
            return
        try:
            await self._command(room_id, user_id, locale, parsed)
        except MarketError as e:
            await self._say(room_id, render(e.code, locale, field=e.field, **e.params), audience=user_id)

    async def _command(self, room_id: int, user_id: int, locale: str, c: commands.Command) -> None:
        if c.name == "help":
            if c.args["topic"]:
                s = commands.spec(c.args["topic"])
                await self._say(room_id, f"{s.usage(locale)} — {s.summary(locale)}")
                return
            lines = "\n".join(f"{s.usage(locale)} — {s.summary(locale)}" for s in commands.SPECS)
            await self._say(room_id, say("help", locale, lines=lines), quick_replies=["/검색 텐트", "/주변 역삼동"])
        elif c.name == "search":
            params: dict[str, Any] = {"q": c.args["query"]}
            words = c.args["query"].split()
            where = [w for w in words if places.find(w) and w.endswith(("동", "구", "역"))]
            if where:
                name, (lat, lng) = places.find(where[-1])  # type: ignore[misc]
                params.update(q=" ".join(w for w in words if w not in where) or c.args["query"], lat=lat, lng=lng,
                              radius_m=c.args["radius_m"] or self.market.config.nearby_default_radius_m)
            # "/검색 의자 캠핑가구": a word that is exactly a category's name narrows to that category
            kept = params["q"].split()
            named = [(w, self._category_named(w)) for w in kept if self._is_category_name(w)]
            if named and len(named) < len(kept):
                word, cat = named[-1]
                params.update(q=" ".join(w for w in kept if w != word), category=cat)
            await self._search(room_id, user_id, locale, params, params["q"])
        elif c.name == "category":
            name = c.args["name"]
            if not name:
                buttons = [{"label": top.name, "token": await self.buttons.issue(
                    user_id, room_id, "browse", {"category": top.id})} for top in self.market.categories.children(None)]
                await self._say(room_id, say("pick_category", locale), buttons=buttons)
                return
            found = self._category_named(name)
            if found is None:
                await self._say(room_id, say("unknown_category", locale, name=name[:30]),
                                quick_replies=["/카테고리"])
                return
            await self._browse(room_id, user_id, locale, found)
        elif c.name == "near":
            spot = parse_location(c.args["place"])  # a 동/구 name, or "lat,lng" shared by the widget
            if spot is None:
                await self._say(room_id, say("unknown_place", locale, place=c.args["place"][:30]))
                return
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
            from market.mypage import my_page

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
                unread=page["notifications_unread"]), cards=cards, quick_replies=["/찜목록", "/등록"])
        elif c.name == "rent":
            await self.desk.rent(room_id, user_id, locale, c.args["item_id"], c.args["dates"])
        elif c.name == "pay":
            await self.desk.pay(room_id, user_id, locale, c.args["arg"])
        elif c.name == "return":
            await self.desk.return_(room_id, user_id, locale)
        elif c.name == "extend":
            await self.desk.extend(room_id, user_id, locale, c.args["dates"])
        elif c.name == "cancel":
            if not await self.desk.cancel(room_id, user_id, locale):
                await self._say(room_id, say("nothing_to_cancel", locale))

    @staticmethod
    def _stars(rating: dict[str, Any], locale: str) -> str:
        if not rating["count"]:
            return say("no_rating", locale)
        return f"★{rating['stars']:.1f} ({rating['count']})"

    def _category_named(self, name: str) -> int | None:
        """The category a person named: exact name first, then the shallowest one containing it."""
        want = name.replace(" ", "")
        tree = self._all_categories()
        exact = [c for c in tree if c.name.replace(" ", "") == want]
        if exact:
            return int(exact[0].id)
        partial = sorted((c for c in tree if want in c.name.replace(" ", "")), key=lambda c: c.level)
        return int(partial[0].id) if partial else None

    def _is_category_name(self, word: str) -> bool:
        return any(c.name.replace(" ", "") == word for c in self._all_categories())

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
        await self._search(room_id, user_id, locale, {"q": words, "category": category_id}, category.name)

    async def _detail(self, item_id: int, user_id: int, locale: str, room_id: int) -> dict[str, Any] | None:
        try:
            return await self.market.items.detail(item_id, viewer_id=user_id, count_view=False)
        except MarketError:
            await self._say(room_id, say("item_missing", locale, number=str(item_id)))
            return None

    # -- results -----------------------------------------------------------------------------------
    async def _search(self, room_id: int, user_id: int, locale: str, params: dict[str, Any], query: str,
                      cursor: str | None = None) -> None:
        result = await self.market.search({**{k: str(v) for k, v in params.items()}, "limit": str(PAGE),
                                           **({"cursor": cursor} if cursor else {})})
        if not result["items"]:
            if cursor:
                await self._say(room_id, say("no_more", locale))
            elif result["did_you_mean"]:
                await self._say(room_id, say("no_results_suggest", locale, query=query[:40],
                                             suggestion=result["did_you_mean"]),
                                quick_replies=[f"/검색 {result['did_you_mean']}"])
            else:
                await self._say(room_id, say("no_results", locale, query=query[:40]))
            return
        await self._results(room_id, user_id, locale, say("results", locale, query=query[:40]), result["items"],
                            result["next_cursor"], {"kind": "search", "params": params, "query": query,
                                                    "cursor": cursor})

    async def _near(self, room_id: int, user_id: int, locale: str, params: dict[str, Any], place: str,
                    cursor: str | None = None) -> None:
        result = await self.market.nearby({**{k: str(v) for k, v in params.items()}, "limit": str(PAGE),
                                           **({"cursor": cursor} if cursor else {})})
        if not result["items"]:
            key = "no_more" if cursor else "nothing_near"
            await self._say(room_id, say(key, locale, place=place, distance=distance(params["radius_m"])))
            return
        await self._results(room_id, user_id, locale,
                            say("near_results", locale, place=place, distance=distance(params["radius_m"])),
                            result["items"], result["next_cursor"],
                            {"kind": "near", "params": params, "place": place, "cursor": cursor})

    async def _results(self, room_id: int, user_id: int, locale: str, text: str, items: list[dict[str, Any]],
                       next_cursor: str | None, again: dict[str, Any]) -> None:
        ratings = await self.market.reviews.ratings([i["owner_id"] for i in items if i.get("owner_id")])
        cards = [await self._card(i, user_id, room_id, locale, ratings) for i in items]
        buttons = []
        if next_cursor:
            token = await self.buttons.issue(user_id, room_id, "more", {**again, "cursor": next_cursor},
                                             single_use=True)
            buttons.append({"label": say("more", locale), "token": token})
        if not again.get("cursor") and again["kind"] in ("search", "near"):
            buttons += await self._filters(room_id, user_id, locale, items, again)
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
        fields = [[say("field_price", locale), won(item["price_per_day"], locale)],
                  [say("field_deposit", locale), won(item["deposit"], locale)],
                  [say("field_condition", locale), item["condition"]],
                  [say("field_wishes", locale), str(item.get("wish_count", 0))]]
        if item.get("distance_m") is not None:
            fields.insert(2, [say("field_distance", locale), distance(item["distance_m"])])
        owner = item.get("owner_id", item.get("owner", {}).get("id"))
        rating = ratings.get(int(owner)) if ratings is not None and owner is not None else (
            await self.market.reviews.rating(int(owner)) if owner is not None else None)
        if rating and rating["count"]:
            fields.append([say("field_rating", locale), self._stars(rating, locale)])
        buttons = []
        if item.get("owner_id", item.get("owner", {}).get("id")) != user_id:
            buttons = [
                {"label": say("wish", locale),
                 "token": await self.buttons.issue(user_id, room_id, "wish", {"item": item["id"]}, single_use=True)},
                {"label": say("ask", locale),
                 "token": await self.buttons.issue(user_id, room_id, "ask", {"item": item["id"]}, single_use=True)},
            ]
        photo = item.get("thumbnail") or (item.get("photos") or [{}])[0].get("thumbnail")
        return {"item_id": item["id"], "title": f"#{item['id']} {item['title']}", "subtitle": item.get("place_name", ""),
                "image": photo, "fields": fields, "buttons": buttons}

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
                            payload: dict[str, Any]) -> str | None:
        """Carry out a button press; returns why it was refused, if it was."""
        try:
            if action.startswith("r_"):
                return await self.desk.press(room_id, user_id, locale, action, payload)
            if action == "flow":
                record = await self.flows.load(room_id, user_id)
                if record is None or record.idle:
                    await self.flows.clear(room_id, user_id)
                    return "flow_stale_button"
                flow = ListingFlow(_Turn(self, room_id, user_id, locale), record)
                if await flow.handle_press(payload):
                    await self.flows.save(room_id, user_id, flow.record)
                else:
                    await self.flows.clear(room_id, user_id)
            elif action == "browse":
                await self._browse(room_id, user_id, locale, int(payload["category"]))
            elif action == "filter":
                if payload["kind"] == "search":
                    await self._search(room_id, user_id, locale, payload["params"], payload["query"])
                else:
                    await self._near(room_id, user_id, locale, payload["params"], payload["place"])
            elif action == "more":
                if payload["kind"] == "search":
                    await self._search(room_id, user_id, locale, payload["params"], payload["query"],
                                       payload["cursor"])
                else:
                    await self._near(room_id, user_id, locale, payload["params"], payload["place"], payload["cursor"])
            elif action == "wish":
                item = await self._detail(int(payload["item"]), user_id, locale, room_id)
                if item is not None:
                    await self.market.wishes.add(user_id, item["id"])
                    await self._say(room_id, say("wished", locale, title=item["title"]))
            elif action == "ask":
                await self._ask(room_id, user_id, locale, int(payload["item"]))
            elif action == "delete":
                item = await self.market.items.detail(int(payload["item"]), viewer_id=user_id, count_view=False)
                await self.market.items.delete(user_id, item["id"])
                await self._say(room_id, say("deleted", locale, title=item["title"]))
            elif action == "edit":
                item = await self.market.items.detail(int(payload["item"]), viewer_id=user_id, count_view=False)
                if item["owner"]["id"] != user_id:
                    return "button_not_yours"
                record = ListingFlow.edit_record(item)
                await ListingFlow(_Turn(self, room_id, user_id, locale), record).ask()
                await self.flows.save(room_id, user_id, record)
        except MarketError as e:
            await self._say(room_id, render(e.code, locale, field=e.field, **e.params), audience=user_id)
        return None

    async def _ask(self, room_id: int, user_id: int, locale: str, item_id: int) -> None:
        item = await self._detail(item_id, user_id, locale, room_id)
        if item is None:
            return
        deal, created = await self.market.chat.open_deal_room(item_id, user_id)
        if not created:
            await self._say(room_id, say("deal_opened", locale, title=item["title"]))
            return
        await self.outlet.announce_room(deal.id, [deal.owner_id, user_id])
        name = await self.market.db.fetchval("SELECT nickname FROM users WHERE id = %s", (user_id,))
        owner_locale = await self._locale(deal.owner_id)
        card = await self._card(item, deal.owner_id, deal.id, owner_locale)
        card["buttons"] = [{"label": say("rent_button", locale), "token": await self.buttons.issue(
            user_id, deal.id, "r_request", {"item": item_id}, single_use=False)}]
        rating, trust = await self.market.reviews.rating(user_id), await self.market.reviews.trust(user_id)
        intro = say("deal_intro", owner_locale, name=name) + "\n" + say(
            "trust_line", owner_locale, name=name, rating=self._stars(rating, owner_locale),
            completed=trust["completed"])
        await self._say(deal.id, intro, cards=[card])
        await self._say(room_id, say("deal_opened", locale, title=item["title"]))


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

    async def button(self, label: str, payload: dict[str, Any]) -> dict[str, str]:
        token = await self.engine.buttons.issue(self.user_id, self.room_id, "flow", payload, single_use=True)
        return {"label": label, "token": token}
