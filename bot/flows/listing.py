"""Listing an item in chat (/post, /등록): title → category (buttons through the three levels) → description →
photos (uploaded in the chat, or skipped) → price per day → deposit → location → available dates → preview →
publish, edit a field, or cancel. Each answer is checked with the market's own rules and explained in Korean.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any, Protocol

from transitions.extensions.asyncio import AsyncMachine

from bot import places
from bot.flows import FlowRecord
from bot.texts import chip, say, won
from market import validation as v
from market.errors import MarketError
from market.items import DEPOSIT_RANGE, MAX_LISTING_DAYS, PRICE_RANGE, today
from market.messages import render

STEPS = ["title", "category", "description", "photos", "price", "deposit", "location", "dates", "preview"]
EDITABLE = ["title", "category", "description", "photos", "price", "deposit", "location", "dates"]
MAX_PHOTOS = 10


class Turn(Protocol):
    """What a flow may do during one event: speak in the room, issue buttons, use the market."""

    room_id: int
    user_id: int
    locale: str
    market: Any

    async def say(self, text: str, **body: Any) -> None: ...

    async def refuse(self, text: str) -> None: ...  # words for the person alone, never stored (a toast)

    async def button(self, label: str, payload: dict[str, Any]) -> dict[str, str]: ...


class ListingFlow:
    name = "listing"

    def __init__(self, turn: Turn, record: FlowRecord) -> None:
        self.turn = turn
        self.record = record
        self.data = record.data
        self.machine = AsyncMachine(model=self, states=STEPS, initial=record.state, auto_transitions=True,
                                    queued=False)
        self.machine.add_ordered_transitions(STEPS, trigger="advance", loop=False)
        for step in STEPS:
            self.machine.get_state(step).add_callback("enter", "ask")

    @classmethod
    def start_record(cls) -> FlowRecord:
        return FlowRecord(cls.name, "title", {})

    @classmethod
    def edit_record(cls, item: dict[str, Any]) -> FlowRecord:
        """A flow at the preview of an item already listed (its detail), for editing from my page."""
        data = {k: item[k] for k in ("title", "description", "price_per_day", "deposit", "lat", "lng", "place_name",
                                     "available_from", "available_until", "condition")}
        data.update(item_id=item["id"], category_id=item["category"]["id"], photos=[])
        return FlowRecord(cls.name, "preview", data)

    # -- moving on ---------------------------------------------------------------------------------
    async def next(self) -> None:
        if self.data.pop("editing", False) or self.state == "dates":  # type: ignore[attr-defined]
            await self.to_preview()  # type: ignore[attr-defined]
        else:
            await self.advance()  # type: ignore[attr-defined]
        self.record.state = self.state  # type: ignore[attr-defined]

    async def ask(self, *_: Any) -> None:
        """Say what the current step needs (on entering it, and again after a wrong answer)."""
        step = self.state  # type: ignore[attr-defined]
        ko_en = _QUESTIONS[step]
        text = ko_en[1] if self.turn.locale == "en" else ko_en[0]
        buttons: list[dict[str, str]] = []
        if step == "category":
            parent = self.data.get("cat_path", [None])[-1] if self.data.get("cat_path") else None
            buttons = [await self.turn.button(c.name, {"step": step, "pick": c.id})
                       for c in self.turn.market.categories.children(parent)]
        elif step in ("photos", "dates"):
            label = "다음" if step == "photos" and self.data.get("photos") else "건너뛰기"
            buttons = [await self.turn.button(label, {"step": step, "skip": True})]
        elif step == "preview":
            await self.turn.say(text, cards=[self.preview_card()], buttons=[
                await self.turn.button("등록하기", {"step": "preview", "publish": True}),
                *[await self.turn.button(f"{_LABELS[f]} 수정", {"step": "preview", "edit": f}) for f in EDITABLE],
                await self.turn.button("취소", {"step": "preview", "cancel": True}),
            ])
            return
        await self.turn.say(text, buttons=buttons, quick_replies=[chip(say("chip_cancel", self.turn.locale), "/취소")])

    # -- input -------------------------------------------------------------------------------------
    async def handle_text(self, text: str) -> bool:
        """Use a typed answer; returns False when the flow has ended."""
        step = self.state  # type: ignore[attr-defined]
        try:
            if step == "title":
                self.data["title"] = v.text({"title": text}, "title", min_len=2, max_len=60, multiline=False)
            elif step == "category":
                options = self.turn.market.categories.children(
                    self.data["cat_path"][-1] if self.data.get("cat_path") else None)
                chosen = [c for c in options if text.replace(" ", "") in c.name.replace(" ", "")]
                if len(chosen) != 1:
                    await self._again("flow_pick_category")
                    return True
                return await self._pick(chosen[0].id)
            elif step == "description":
                self.data["description"] = v.text({"description": text}, "description", max_len=2000,
                                                  multiline=True)
            elif step == "photos":
                if text.strip() in ("다음", "건너뛰기", "없음", "skip", "next"):
                    await self.next()
                    return True
                await self._again("flow_send_photo")
                return True
            elif step in ("price", "deposit"):
                amount = parse_won(text)
                if amount is None:
                    await self._again("flow_bad_money")
                    return True
                # The market's limits, checked by the market's reader (the same as when the item is saved).
                field, (lo, hi) = (("price_per_day", PRICE_RANGE) if step == "price"
                                   else ("deposit", DEPOSIT_RANGE))
                self.data[field] = v.integer({field: amount}, field, lo=lo, hi=hi, money=True)
            elif step == "location":
                found = parse_location(text)
                if found is None:
                    await self._again("flow_bad_place")
                    return True
                self.data.update(found)
            elif step == "dates":
                span = parse_dates(text, today())
                if span is None:
                    await self._again("flow_bad_dates")
                    return True
                self.data["available_from"], self.data["available_until"] = span
                self.data["dates_changed"] = True
            elif step == "preview":
                await self._again("flow_use_buttons")
                return True
        except MarketError as e:
            await self.turn.refuse(render(e.code, self.turn.locale, field=e.field, **e.params))
            await self.ask()
            return True
        await self.next()
        return True

    async def handle_image(self, key: str) -> None:
        if self.state != "photos":  # type: ignore[attr-defined]
            return
        photos = self.data.setdefault("photos", [])
        if len(photos) >= MAX_PHOTOS:
            await self.turn.refuse(render("photo.too_many", self.turn.locale, max=MAX_PHOTOS))
            return
        photos.append(key)
        await self.turn.say(say("flow_photo_taken", self.turn.locale, count=len(photos)),
                            buttons=[await self.turn.button("다음", {"step": "photos", "skip": True})])

    async def handle_press(self, payload: dict[str, Any]) -> bool:
        """A button of this flow; returns False when the flow has ended."""
        if payload.get("step") != self.state:  # type: ignore[attr-defined]
            await self.turn.refuse(say("flow_stale_button", self.turn.locale))
            return True
        if "pick" in payload:
            return await self._pick(int(payload["pick"]))
        if payload.get("skip"):
            if self.state == "dates":  # type: ignore[attr-defined]
                self.data["available_from"], self.data["available_until"] = today().isoformat(), None
                self.data["dates_changed"] = True
            await self.next()
            return True
        if payload.get("cancel"):
            await self.turn.say(say("cancelled", self.turn.locale))
            return False
        if "edit" in payload and payload["edit"] in EDITABLE:
            self.data["editing"] = True
            if payload["edit"] == "category":
                self.data["cat_path"] = []
            self.machine.set_state(payload["edit"])
            self.record.state = payload["edit"]
            await self.ask()
            return True
        if payload.get("publish"):
            return await self._publish()
        return True

    async def _pick(self, category_id: int) -> bool:
        path = self.data.setdefault("cat_path", [])
        path.append(category_id)
        if self.turn.market.categories.children(category_id):
            await self.ask()  # the next level
            return True
        self.data["category_id"] = category_id
        await self.next()
        return True

    async def _again(self, key: str) -> None:
        await self.turn.refuse(say(key, self.turn.locale))  # what was wrong: a toast; the question again
        await self.ask()

    # -- preview and publish -------------------------------------------------------------------------
    def fields(self) -> dict[str, Any]:
        keep = ("title", "description", "category_id", "price_per_day", "deposit", "lat", "lng", "place_name",
                "available_from", "available_until")
        out = {k: self.data[k] for k in keep if k in self.data}
        out["condition"] = self.data.get("condition", "상")
        return out

    def preview_card(self) -> dict[str, Any]:
        d = self.data
        path = self.turn.market.categories.path(d["category_id"]) if d.get("category_id") else []
        return {"title": d.get("title", ""), "subtitle": " > ".join(c.name for c in path),
                "fields": [["설명", d.get("description", "")[:100]], ["사진", f"{len(d.get('photos', []))}장"],
                           ["일 대여료", won(d.get("price_per_day", 0))], ["보증금", won(d.get("deposit", 0))],
                           ["위치", d.get("place_name", "")], ["대여 가능", lending_span(d.get("available_from"), d.get("available_until"))]],
                "buttons": []}

    async def _publish(self) -> bool:
        market = self.turn.market
        try:
            if self.data.get("item_id"):  # editing a listed item (from my page)
                fields = self.fields()
                if not self.data.get("dates_changed"):
                    fields.pop("available_from", None)  # an old start date stays as it is
                    fields.pop("available_until", None)
                item = await market.items.update(self.turn.user_id, int(self.data["item_id"]), fields)
            else:
                item = await market.items.create(self.turn.user_id, self.fields())
        except MarketError as e:
            await self.turn.refuse(render(e.code, self.turn.locale, field=e.field, **e.params))
            await self.ask()
            return True
        uploads = []
        for key in self.data.get("photos", []):
            stored = await market.store.get(key)
            if stored is not None:
                uploads.append(stored.body)
        if uploads:
            try:
                await market.items.add_photos(self.turn.user_id, item["id"], uploads)
            except MarketError as e:
                await self.turn.refuse(render(e.code, self.turn.locale, field=e.field, **e.params))
        key = "flow_updated" if self.data.get("item_id") else "flow_published"
        await self.turn.say(say(key, self.turn.locale, title=item["title"], number=str(item["id"])))
        return False


_LABELS = {"title": "제목", "category": "카테고리", "description": "설명", "photos": "사진", "price": "대여료",
           "deposit": "보증금", "location": "위치", "dates": "날짜"}
_QUESTIONS = {
    "title": ("물건을 등록해 볼게요. 제목을 알려 주세요. (2~60자, 예: 캠핑 의자 2개)",
              "Let's list your item. What is its title? (2–60 characters)"),
    "category": ("카테고리를 골라 주세요.", "Pick a category."),
    "description": ("물건을 설명해 주세요. 상태, 구성품, 주의할 점을 적어 주시면 좋아요.",
                    "Describe the item: its condition, what comes with it, anything to watch out for."),
    "photos": ("사진을 올려 주세요. 다 올렸으면 '다음'을, 사진이 없으면 '건너뛰기'를 눌러 주세요.",
               "Upload photos, then press Next (or Skip if you have none)."),
    "price": ("하루 대여료는 얼마로 할까요? (예: 5,000원, 5천원)", "What is the price per day? (e.g. 5000)"),
    "deposit": ("보증금은 얼마로 할까요? 없으면 0이라고 보내 주세요.", "What deposit do you ask? Send 0 for none."),
    "location": ("어디에서 주고받을까요? 역삼동처럼 동네 이름을 알려 주세요.",
                 "Where do you hand it over? Name the neighbourhood, e.g. 역삼동."),
    "dates": ("언제부터 빌려줄 수 있나요? 12/24~12/31처럼 알려 주시거나, 오늘부터 계속이면 '건너뛰기'를 눌러 주세요.",
              "From when can you lend it? e.g. 12/24~12/31, or press Skip for from today on."),
    "preview": ("이렇게 등록할까요?", "List it like this?"),
}

_MONEY_UNITS = {"만": 10_000, "천": 1_000, "백": 100}
_DIGIT_RUN = re.compile(r"[0-9,]+")
_GROUPED = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+")


def parse_won(text: str) -> int | None:
    """5000, 5,000원, 5천원, 1만 5천원, ₩5000 → won; None when it is not an amount (commas only between groups
    of three digits: "1,0,0,0" is refused, not read as a thousand)."""
    t = text.strip().replace(" ", "").replace("₩", "").removesuffix("원")
    if any("," in run and not _GROUPED.fullmatch(run) for run in _DIGIT_RUN.findall(t)):
        return None
    t = t.replace(",", "")
    if not t or len(t) > 20:
        return None
    if t.isascii() and t.isdigit():
        return int(t)
    total, number = 0, ""
    for ch in t:
        if ch.isascii() and ch.isdigit():
            number += ch
        elif ch in _MONEY_UNITS:
            total += (int(number) if number else 1) * _MONEY_UNITS[ch]
            number = ""
        else:
            return None
    return total + (int(number) if number else 0)


_LAT_LNG = re.compile(r"^\s*(-?\d{1,3}(?:\.\d+)?)\s*,\s*(-?\d{1,3}(?:\.\d+)?)\s*$")


def lending_span(start: str | None, until: str | None) -> str:
    """"11월 30일부터" (no end), or "12월 24일 ~ 12월 31일" — a listing's dates as people say them."""
    if not start:
        return ""
    a = date.fromisoformat(start)
    if not until:
        return f"{a.month}월 {a.day}일부터"
    b = date.fromisoformat(until)
    return f"{a.month}월 {a.day}일 ~ " + (f"{b.month}월 {b.day}일" if b.year == a.year else
                                         f"{b.year}년 {b.month}월 {b.day}일")


def parse_location(text: str) -> dict[str, Any] | None:
    m = _LAT_LNG.match(text)
    if m:
        lat, lng = float(m.group(1)), float(m.group(2))
        if 33.0 <= lat <= 38.7 and 124.5 <= lng <= 132.0:
            return {"lat": lat, "lng": lng, "place_name": ""}
        return None
    found = places.find(text.strip()[:30])
    if found is None:
        return None
    name, (lat, lng) = found
    return {"lat": lat, "lng": lng, "place_name": name}


_DAY = re.compile(r"^(?:(\d{4})[-./])?(\d{1,2})[-./](\d{1,2})$|^(?:(\d{4})년)?(\d{1,2})월(\d{1,2})일$")


def _day(text: str, now: date) -> date | None:
    m = _DAY.match(text.replace(" ", ""))
    if not m:
        return None
    year, month, day = (m.group(1) or m.group(4)), int(m.group(2) or m.group(5)), int(m.group(3) or m.group(6))
    try:
        d = date(int(year) if year else now.year, month, day)
    except ValueError:
        return None
    if not year and d < now - timedelta(days=30):
        d = d.replace(year=d.year + 1)  # "12/24" said in January means this year's… said in December, next one's
    return d


def parse_dates(text: str, now: date) -> tuple[str, str | None] | None:
    """"오늘부터", "12/24부터", "12/24~12/31", "2026-12-24 ~ 2027-01-05" → (from, until or None)."""
    t = text.strip()
    if t in ("오늘부터", "지금부터", "바로", "계속"):
        return now.isoformat(), None
    if t.endswith("부터"):
        start = _day(t.removesuffix("부터"), now)
        return (start.isoformat(), None) if start and start >= now else None
    if "~" in t:
        a, b = t.split("~", 1)
        start, end = _day(a.strip(), now), _day(b.strip(), now)
        if start is None or end is None or start < now or end < start or end > now + timedelta(days=MAX_LISTING_DAYS):
            return None
        return start.isoformat(), end.isoformat()
    return None
