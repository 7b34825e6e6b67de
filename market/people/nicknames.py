"""What a nickname may be: 2–20 Hangul syllables, Latin letters, digits or underscores — and never one that could
pass for the service, its bot (빌리), its notices or its staff.

A name is compared in a form where look-alikes meet: NFKC (fullwidth ＢＩＬＬＩ → BILLI), accents dropped, case
folded, and the Unicode TR39 confusable *skeleton* (Cyrillic а → a, 0 → o, 1 → l, compatibility jamo ㅂㅣㄹㄹㅣ → 빌리),
with separators ignored and digits either ignored or read as the letters they resemble. It is refused when
- the whole name, or one of its words, is made only of reserved words (``admin``, ``admin_1``, ``빌리봇``,
  ``BilliBot``, ``b0t``, ``알림_공식``); words are split at separators, digits, a lower→upper case change and
  between Hangul and other letters; or
- it contains the service's name or a staff title anywhere (``진짜빌리마켓``, ``빌리마켓짱``, ``동네운영자``).
A name merely starting with 빌리 stays allowed: 빌리다 is an everyday verb (``빌리는곰``), as ``bottle`` and
``badminton`` are everyday words. This module never touches the database.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from market import validation as v
from market.errors import InvalidInput

MIN_LENGTH, MAX_LENGTH = 2, 20
_ALLOWED = re.compile(r"^[0-9A-Za-z_가-힣]{2,20}$")
_CONFUSABLES = Path(__file__).resolve().parent.parent / "data" / "confusables.txt"

# Contained anywhere in a name, these make it pass for the service or its staff.
SERVICE_WORDS = ("빌리마켓", "빌리페이", "billimarket", "billymarket", "billipay", "운영자", "운영진", "운영팀",
                 "관리자", "관리팀", "고객센터")
# A name (or a word of it) made only of these, in any order and number, is the service speaking.
RESERVED_WORDS = SERVICE_WORDS + ("빌리", "billi", "알림", "공지", "공지사항", "공식", "운영", "봇", "bot", "admin",
                                  "어드민", "administrator", "system", "시스템", "notice", "official", "operator",
                                  "support", "staff", "moderator",
                                  # what a staff account would add to 빌리 (빌리정산팀, 빌리상담원, 정산봇); not 지원
                                  # alone, a common given name
                                  "팀", "센터", "센타", "계정", "정산", "상담", "상담원", "보안", "안내", "고객",
                                  "지원팀", "매니저")


def read_nickname(data: Mapping[str, Any], *, required: bool = True) -> str | None:
    """The cleaned nickname in ``data["nickname"]`` (None when absent and not required), or ``InvalidInput``:
    a reserved name is refused as such before the character rule speaks."""
    nickname = v.text(data, "nickname", min_len=MIN_LENGTH, max_len=MAX_LENGTH, required=required)
    if nickname is None:
        return None
    if is_reserved(nickname):
        raise InvalidInput("account.reserved_nickname", field="nickname")
    if not _ALLOWED.match(nickname):
        raise InvalidInput("account.bad_nickname", field="nickname")
    return nickname


def is_reserved(name: str) -> bool:
    """Whether ``name`` could pass for the service, its bot, its notices or its staff (see the module's rule)."""
    plain = _without_marks(unicodedata.normalize("NFKC", v.clean_text(name, multiline=False)))
    whole = "".join(ch for ch in plain if ch.isalnum())
    words = {w for split_digits in (False, True) for w in _words(plain, split_digits=split_digits)}
    reserved, service = _reserved_keys()
    if any(_made_of(key, reserved) for part in {whole, *words} for key in _keys(part)):
        return True
    return any(word in key for key in _keys(whole) for word in service)


def skeleton(text: str) -> str:
    """The UTS #39 skeleton of ``text``: two strings that look alike have the same skeleton."""
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFD", decomposed.translate(_prototypes()))


def _keys(part: str) -> set[str]:
    """The forms of ``part`` compared with reserved words: digits dropped or kept as letters (b0t → bot), case
    folded before the skeleton (ＢＩＬＬＩ → billi) or after it (biIIi: capital I looks like l → billi)."""
    forms = {part, "".join(ch for ch in part if not ch.isdigit())}
    return {_fold(f) for form in forms for f in (form, form.casefold())} - {""}


def _fold(text: str) -> str:
    """Skeleton and case folding, again until nothing changes: a capital I read as l must still meet m → rn
    (BiIIiMarket is billimarket), which one pass of each in either order misses."""
    for _ in range(5):
        folded = skeleton(text).casefold()
        if folded == text:
            break
        text = folded
    return text


def _words(name: str, *, split_digits: bool) -> list[str]:
    """``name`` cut at separators, a lower→upper case change, between Hangul and other letters and, when asked,
    between digits and letters."""
    words: list[str] = []
    current = ""
    for ch in name:
        if not ch.isalnum():
            words.append(current)
            current = ""
            continue
        if current and _boundary(current[-1], ch, split_digits=split_digits):
            words.append(current)
            current = ""
        current += ch
    words.append(current)
    return [w for w in words if w]


def _boundary(before: str, ch: str, *, split_digits: bool) -> bool:
    if before.islower() and ch.isupper():
        return True
    if before.isalpha() and ch.isalpha() and _is_hangul(before) != _is_hangul(ch):
        return True
    return split_digits and before.isdigit() != ch.isdigit()


def _is_hangul(ch: str) -> bool:
    return unicodedata.name(ch, "").startswith("HANGUL")


def _without_marks(text: str) -> str:
    """Accents and other combining marks dropped (ádmín reads as admin); Hangul syllables are left whole."""
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFC", "".join(ch for ch in decomposed if not unicodedata.combining(ch)))


def _made_of(key: str, words: frozenset[str]) -> bool:
    """Whether ``key`` is one or more of ``words`` end to end."""
    ends = [True] + [False] * len(key)
    for end in range(1, len(key) + 1):
        ends[end] = any(ends[start] and key[start:end] in words for start in range(end))
    return ends[-1]


@cache
def _reserved_keys() -> tuple[frozenset[str], tuple[str, ...]]:
    """The compared forms of the reserved words and of the service words."""
    return frozenset(_key_of(RESERVED_WORDS)), tuple(_key_of(SERVICE_WORDS))


def _key_of(words: Iterable[str]) -> list[str]:
    return [_fold(w.casefold()) for w in words]


@cache
def _prototypes() -> dict[int, str]:
    """Unicode's confusables table (``market/data/confusables.txt``) as a ``str.translate`` map."""
    table: dict[int, str] = {}
    for line in _CONFUSABLES.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        source, target = (field.strip() for field in line.split(";")[:2])
        table[int(source, 16)] = "".join(chr(int(cp, 16)) for cp in target.split())
    return table
