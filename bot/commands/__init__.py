"""Slash-command grammar: one entry per command, with its Korean aliases, usage and argument rules.

``parse(text)`` never raises: it returns a ``Command`` (name and checked arguments), ``Unknown`` (with the
closest command name when the text looks like a typo: /serch → /search) or ``BadArgs`` (the reason and the
command's usage). Text that does not start with ``/`` is not a command (``None``).
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

MAX_COMMAND_CHARS = 300
MAX_RADIUS_M = 50_000


@dataclass(frozen=True, slots=True)
class Spec:
    name: str
    aliases: tuple[str, ...]
    usage_ko: str
    usage_en: str
    summary_ko: str
    summary_en: str

    def usage(self, locale: str) -> str:
        return self.usage_en if locale == "en" else self.usage_ko

    def summary(self, locale: str) -> str:
        return self.summary_en if locale == "en" else self.summary_ko


SPECS: tuple[Spec, ...] = (
    Spec("help", ("도움말", "도움"), "/도움말 [명령어]", "/help [command]", "할 수 있는 일과 사용법", "what I can do"),
    Spec("search", ("검색", "찾기"), "/검색 <키워드> [반경, 예: 3km] [동네]", "/search <keyword> [radius, e.g. 3km] [place]",
         "키워드로 물건 찾기", "find items by keyword"),
    Spec("near", ("주변", "근처"), "/주변 [동네] [거리, 예: 1km]", "/near [place] [distance, e.g. 1km]",
         "동네 주변 물건 보기", "items near a place"),
    Spec("home", ("동네", "내동네"), "/동네 <동 이름>", "/home <neighbourhood>", "내 동네 정하기 (주변 물건과 검색에 써요)",
         "set your neighbourhood (for nearby items and searches)"),
    Spec("category", ("카테고리", "분류"), "/카테고리 [이름]", "/category [name]", "카테고리별로 보기",
         "browse by category"),
    Spec("item", ("물품", "물건"), "/물품 <번호>", "/item <number>", "물건 자세히 보기", "show one item"),
    Spec("wish", ("찜",), "/찜 <번호>", "/wish <number>", "물건 찜하기", "add an item to your wishes"),
    Spec("wishes", ("찜목록",), "/찜목록", "/wishes", "찜한 물건 보기", "your wishes"),
    Spec("post", ("등록", "올리기"), "/등록", "/post", "물건 등록하기 (질문에 답하면 돼요)", "list an item, step by step"),
    Spec("my", ("내정보", "마이페이지"), "/내정보", "/my", "내 물건, 찜, 내 정보 보기", "your items, wishes and page"),
    Spec("rent", ("대여", "빌리기"), "/대여 [번호] <날짜, 예: 12/24~12/26, 내일부터 3일>",
         "/rent [number] <dates, e.g. 12/24~12/26>", "대여 요청 (거래방에서는 번호 없이)",
         "request a rental (no number needed in a deal room)"),
    Spec("pay", ("결제",), "/결제 [link]", "/pay [link]", "수락된 대여를 빌리페이로 결제 (link: 계좌 연결)",
         "pay an accepted rental with BilliPay (link: link a bank account)"),
    Spec("return", ("반납",), "/반납", "/return", "반납 완료 / 반납 받음 알리기", "say the item is back"),
    Spec("extend", ("연장",), "/연장 <새 반납일>", "/extend <new end date>", "대여 기간 연장 요청", "ask for a longer rental"),
    Spec("cancel", ("취소",), "/취소", "/cancel", "하던 일 멈추기", "stop what we are doing"),
)
_BY_WORD: dict[str, Spec] = {}
for _spec in SPECS:
    for _word in (_spec.name, *_spec.aliases):
        _BY_WORD[_word] = _spec


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Unknown:
    given: str
    suggestion: str | None


@dataclass(frozen=True, slots=True)
class BadArgs:
    spec: Spec
    reason: str  # a key of bot.texts.TEXTS


Parsed = Command | Unknown | BadArgs

_DISTANCE = re.compile(r"^(\d{1,6}(?:\.\d{1,3})?)\s*(km|킬로|킬로미터|m|미터)$", re.IGNORECASE)
_NUMBER = re.compile(r"^#?(\d{1,18})(?:번)?$")


def spec(name: str) -> Spec:
    return _BY_WORD[name]


def parse(text: Any) -> Parsed | None:
    if not isinstance(text, str):
        return None
    text = text.strip()
    if not text.startswith("/") or len(text) < 2:
        return None
    words = text[:MAX_COMMAND_CHARS].split()
    head = words[0][1:].lower()
    s = _BY_WORD.get(head)
    if s is None:
        return Unknown("/" + words[0][1:40], nearest(head))
    rest = words[1:]
    if s.name in ("help",):
        topic = rest[0].lstrip("/").lower() if rest else None
        return Command("help", {"topic": _BY_WORD[topic].name if topic in _BY_WORD else None})
    if s.name == "home":
        return Command("home", {"place": " ".join(rest)[:40] or None})
    if s.name == "category":
        return Command("category", {"name": " ".join(rest)[:40] or None})
    if s.name in ("wishes", "cancel", "post", "my", "return"):
        return Command(s.name)
    if s.name == "pay":
        return Command("pay", {"arg": "link" if rest and rest[0].lower() in ("link", "연결", "계좌") else None})
    if s.name in ("rent", "extend"):
        m = _NUMBER.match(rest[0]) if rest and s.name == "rent" else None
        dates = " ".join(rest[1:] if m else rest)
        if not dates:
            return BadArgs(s, "need_dates")
        return Command(s.name, {"item_id": int(m.group(1)) if m else None, "dates": dates[:80]})
    if s.name in ("item", "wish"):
        m = _NUMBER.match(rest[0]) if len(rest) == 1 else None
        if m is None:
            return BadArgs(s, "bad_item_number")
        return Command(s.name, {"item_id": int(m.group(1))})
    # search and near: words, an optional distance, and (near) a place
    radius = None
    others = []
    for w in rest:
        d = parse_distance(w)
        if d is False:
            return BadArgs(s, "bad_distance")
        if d is None:
            others.append(w)
        else:
            radius = d
    if s.name == "near":  # no place: the person's own 동네 (or a question for it)
        return Command("near", {"place": " ".join(others) or None, "radius_m": radius})
    if not others:
        return BadArgs(s, "need_keyword")
    return Command("search", {"query": " ".join(others), "radius_m": radius})


def nearest(word: str) -> str | None:
    """The command a mistyped one was probably meant to be, spelt the way the person spells: "/검삭" → "/검색",
    "/serch" → "/search". Korean is compared letter by letter (검삭 and 검색 differ in one vowel, not in a whole
    syllable)."""
    given = _letters(word)
    if not given:
        return None
    hangul = any("가" <= ch <= "힣" for ch in word)
    words = [w for w in _BY_WORD if any("가" <= ch <= "힣" for ch in w) == hangul]
    scored = [(difflib.SequenceMatcher(None, given, _letters(w)).ratio(), w) for w in words]
    score, best = max(scored, default=(0.0, ""))
    return "/" + best if score >= 0.6 else None


def _letters(word: str) -> str:
    """A word with each Hangul syllable split into its letters (NFD), so a typo costs one letter, not one
    syllable."""
    return unicodedata.normalize("NFD", word.lower())


def parse_distance(word: str) -> int | None | bool:
    """Metres for "3km" / "500m" / "2킬로"; None when the word is not a distance; False when out of range."""
    m = _DISTANCE.match(word.strip())
    if m is None:
        return None
    value = float(m.group(1))
    metres = value * 1000 if m.group(2).lower() in ("km", "킬로", "킬로미터") else value
    if not 100 <= metres <= MAX_RADIUS_M:
        return False
    return int(metres)
