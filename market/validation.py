"""Reading untrusted input into typed values: each reader raises ``InvalidInput`` naming the field.

Used by every entry point of the market (REST bodies, query strings, chat flows), so a rule is written once.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from market.errors import InvalidInput

# Korea's bounding box, Jeju and Dokdo included.
KOREA_LAT = (33.0, 38.7)
KOREA_LNG = (124.5, 132.0)

_MISSING = object()
# Digits 0-9 only (str.isdigit() also takes "²", and int() reads "٣" and "1_000"), commas only between groups of
# three: "1,000" is a thousand, "1,0,0,0" is nobody's way of writing one.
_ASCII_INT = re.compile(r"-?(?:[0-9]{1,18}|[0-9]{1,3}(?:,[0-9]{3}){1,5})")
_ZWJ = "\u200d"  # kept only between emoji (👩‍💻 is three code points joined): elsewhere it hides in a word
_VS16 = "\ufe0f"  # the emoji-style selector that may stand between an emoji and its joiner (❤️‍🔥)
# Letters that draw nothing: the Hangul fillers (a "blank" nickname or a 빌\u3164리 look-alike) and the grapheme
# joiner. They are not format characters, so they need naming.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u034f")
# The blocks where emoji live (an approximation of Unicode's Extended_Pictographic property, which Python's
# unicodedata does not expose); enough to tell an emoji sequence from a joiner hidden between letters.
_PICTOGRAPHIC = ((0x00A9, 0x00A9), (0x00AE, 0x00AE), (0x203C, 0x203C), (0x2049, 0x2049), (0x2122, 0x2122),
                 (0x2139, 0x2139), (0x2194, 0x21AA), (0x231A, 0x23FF), (0x24C2, 0x24C2), (0x25AA, 0x27BF),
                 (0x2934, 0x2935), (0x2B05, 0x2B55), (0x3030, 0x3030), (0x303D, 0x303D), (0x3297, 0x3299),
                 (0x1F000, 0x1FAFF), (0x1FC00, 0x1FFFD))


def only_fields(data: Mapping[str, Any], allowed: Iterable[str]) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise InvalidInput("input.unknown_field", names=", ".join(unknown[:5]))


def clean_text(value: str, *, multiline: bool) -> str:
    """NFC-normalise, drop control and invisible characters (keeping newlines where allowed), trim.

    Invisible characters are the format ones — bidi controls (U+200E/F, U+202A–202E, U+2066–2069), zero-width
    space, word joiner, BOM, zero-width non-joiner — and the blank Hangul fillers: they make a name or a title
    look like another, or reorder what people read. A zero-width joiner stays only inside an emoji sequence."""
    if value.isprintable() and unicodedata.is_normalized("NFC", value) and _BLANK_LETTERS.isdisjoint(value):
        return value.strip()  # the common case, checked in C: nothing to drop
    value = unicodedata.normalize("NFC", value)
    kept: list[str] = []
    for i, ch in enumerate(value):
        if ch == _ZWJ:
            if kept and _joins_emoji(kept[-1], value[i + 1:i + 2]):
                kept.append(ch)
        elif ch in _BLANK_LETTERS:
            continue
        elif ch in "\n\t" and multiline:
            kept.append(ch)
        elif ch in "\r":
            continue
        elif unicodedata.category(ch) in {"Cc", "Cs", "Co", "Cn"}:
            continue
        elif unicodedata.category(ch) == "Cf":
            continue  # invisible format characters (bidi overrides, soft hyphens) spoof what people read
        elif unicodedata.category(ch) in {"Zl", "Zp"}:
            kept.append("\n" if multiline else " ")
        elif ch in "\n\t":
            kept.append(" ")
        else:
            kept.append(ch)
    return "".join(kept).strip()


def _joins_emoji(before: str, after: str) -> bool:
    """Whether a zero-width joiner between ``before`` and ``after`` is part of an emoji sequence."""
    return (before == _VS16 or _pictographic(before)) and bool(after) and _pictographic(after)


def _pictographic(ch: str) -> bool:
    code = ord(ch)
    return any(lo <= code <= hi for lo, hi in _PICTOGRAPHIC)


def text(data: Mapping[str, Any], field: str, *, min_len: int = 1, max_len: int, required: bool = True,
         multiline: bool = False, default: str | None = None) -> str | None:
    raw = data.get(field, _MISSING)
    if raw is _MISSING or raw is None:
        if required:
            raise InvalidInput("input.required", field=field)
        return default
    if not isinstance(raw, str):
        raise InvalidInput("input.not_text", field=field)
    value = clean_text(raw, multiline=multiline)
    if not value and required:
        raise InvalidInput("input.required", field=field)
    if not (min_len <= len(value) <= max_len) and (value or required):
        if min_len <= 1:
            raise InvalidInput("input.text_too_long", field=field, max=max_len)
        raise InvalidInput("input.text_length", field=field, min=min_len, max=max_len)
    return value


def whole_number(raw: Any) -> int | None:
    """``raw`` as an int when it is exactly one — an int, a float with nothing after the point (JSON's ``2039.0``)
    or a string of ASCII digits (``"1,000"`` grouped by threes) — else None. Never rounds ``2039.5`` down to an
    item that exists, never reads ``"1,0,0,0"``, ``"²"``, ``"1_000"`` or ``True``."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        return int(raw) if raw.is_integer() else None
    if isinstance(raw, str) and _ASCII_INT.fullmatch(stripped := raw.strip()):
        return int(stripped.replace(",", ""))
    return None


def integer(data: Mapping[str, Any], field: str, *, lo: int, hi: int, required: bool = True,
            default: int | None = None, money: bool = False) -> int | None:
    raw = data.get(field, _MISSING)
    if raw is _MISSING or raw is None or raw == "":
        if required:
            raise InvalidInput("input.required", field=field)
        return default
    value = whole_number(raw)
    if value is None:
        raise InvalidInput("input.not_integer", field=field)
    if not lo <= value <= hi:
        raise InvalidInput("input.money_range" if money else "input.number_range", field=field, min=lo, max=hi)
    return value


def number(data: Mapping[str, Any], field: str, *, lo: float, hi: float, required: bool = True) -> float | None:
    raw = data.get(field, _MISSING)
    if raw is _MISSING or raw is None or raw == "":
        if required:
            raise InvalidInput("input.required", field=field)
        return None
    if isinstance(raw, bool):
        raise InvalidInput("input.not_number", field=field)
    if isinstance(raw, str):
        try:
            raw = float(raw.strip())
        except ValueError:
            raise InvalidInput("input.not_number", field=field) from None
    if not isinstance(raw, (int, float)) or raw != raw or raw in (float("inf"), float("-inf")):
        raise InvalidInput("input.not_number", field=field)
    value = float(raw)
    if not lo <= value <= hi:
        raise InvalidInput("input.number_range", field=field, min=lo, max=hi)
    return value


def coordinates(data: Mapping[str, Any], *, required: bool = True) -> tuple[float, float] | None:
    """``(lat, lng)`` inside South Korea."""
    lat_raw, lng_raw = data.get("lat"), data.get("lng")
    if lat_raw in (None, "") and lng_raw in (None, "") and not required:
        return None
    lat = number(data, "lat", lo=-90, hi=90)
    lng = number(data, "lng", lo=-180, hi=180)
    assert lat is not None and lng is not None
    if not (KOREA_LAT[0] <= lat <= KOREA_LAT[1] and KOREA_LNG[0] <= lng <= KOREA_LNG[1]):
        raise InvalidInput("input.outside_korea", field="lat")
    return lat, lng


def day(data: Mapping[str, Any], field: str, *, required: bool = True) -> date | None:
    raw = data.get(field, _MISSING)
    if raw is _MISSING or raw is None or raw == "":
        if required:
            raise InvalidInput("input.required", field=field)
        return None
    if isinstance(raw, date):
        return raw
    if not isinstance(raw, str) or len(raw) != 10:
        raise InvalidInput("input.bad_date", field=field)
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput("input.bad_date", field=field) from None


def choice(data: Mapping[str, Any], field: str, choices: Iterable[str], *, required: bool = True,
           default: str | None = None) -> str | None:
    options = list(choices)
    raw = data.get(field, _MISSING)
    if raw is _MISSING or raw is None or raw == "":
        if required:
            raise InvalidInput("input.required", field=field)
        return default
    if not isinstance(raw, str) or raw.strip() not in options:
        raise InvalidInput("input.choice", field=field, choices=", ".join(options))
    return raw.strip()


def choices(data: Mapping[str, Any], field: str, options: Iterable[str]) -> list[str] | None:
    """A comma-separated string or a list, every element one of ``options``."""
    allowed = list(options)
    raw = data.get(field, _MISSING)
    if raw is _MISSING or raw is None or raw == "" or raw == []:
        return None
    parts = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(parts, list) or len(parts) > len(allowed):
        raise InvalidInput("input.choice", field=field, choices=", ".join(allowed))
    out = []
    for p in parts:
        if not isinstance(p, str) or p.strip() not in allowed:
            raise InvalidInput("input.choice", field=field, choices=", ".join(allowed))
        if p.strip() not in out:
            out.append(p.strip())
    return out
