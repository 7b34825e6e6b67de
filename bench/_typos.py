"""One typo per query, made the way fingers make them on a 2-beolsik (or QWERTY) keyboard.

The query's longest word is typed out key by key (캠핑 → ㅋㅐㅁㅍㅣㅇ; ㅘ is ㅗ + ㅏ, ㄳ is ㄱ + ㅅ); one keystroke is
changed to a neighbouring key, dropped, or swapped with the next one; the keys are put back together as a
Korean keyboard would compose them. Seeded: the same query and seed always give the same typo.
Bench-only: nothing in the product reads this.
"""

from __future__ import annotations

import random

# The keys as laid out: rows staggered as on a real keyboard (x offsets 0, 0.25, 0.75).
_ROWS_KO = ("ㅂㅈㄷㄱㅅㅛㅕㅑㅐㅔ", "ㅁㄴㅇㄹㅎㅗㅓㅏㅣ", "ㅋㅌㅊㅍㅠㅜㅡ")
_ROWS_EN = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_STAGGER = (0.0, 0.25, 0.75)
_SHIFTED = {"ㅃ": "ㅂ", "ㅉ": "ㅈ", "ㄸ": "ㄷ", "ㄲ": "ㄱ", "ㅆ": "ㅅ", "ㅒ": "ㅐ", "ㅖ": "ㅔ"}

_CHO = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"
_JUNG = "ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ"
_JONG = ["", "ㄱ", "ㄲ", "ㄳ", "ㄴ", "ㄵ", "ㄶ", "ㄷ", "ㄹ", "ㄺ", "ㄻ", "ㄼ", "ㄽ", "ㄾ", "ㄿ", "ㅀ", "ㅁ", "ㅂ",
         "ㅄ", "ㅅ", "ㅆ", "ㅇ", "ㅈ", "ㅊ", "ㅋ", "ㅌ", "ㅍ", "ㅎ"]
_VOWEL_PAIRS = {("ㅗ", "ㅏ"): "ㅘ", ("ㅗ", "ㅐ"): "ㅙ", ("ㅗ", "ㅣ"): "ㅚ", ("ㅜ", "ㅓ"): "ㅝ", ("ㅜ", "ㅔ"): "ㅞ",
                ("ㅜ", "ㅣ"): "ㅟ", ("ㅡ", "ㅣ"): "ㅢ"}
_FINAL_PAIRS = {("ㄱ", "ㅅ"): "ㄳ", ("ㄴ", "ㅈ"): "ㄵ", ("ㄴ", "ㅎ"): "ㄶ", ("ㄹ", "ㄱ"): "ㄺ", ("ㄹ", "ㅁ"): "ㄻ",
                ("ㄹ", "ㅂ"): "ㄼ", ("ㄹ", "ㅅ"): "ㄽ", ("ㄹ", "ㅌ"): "ㄾ", ("ㄹ", "ㅍ"): "ㄿ", ("ㄹ", "ㅎ"): "ㅀ",
                ("ㅂ", "ㅅ"): "ㅄ"}
_SPLIT = {v: k for k, v in {**_VOWEL_PAIRS, **_FINAL_PAIRS}.items()}
_VOWELS = set(_JUNG)


def _positions() -> dict[str, tuple[int, float]]:
    out = {}
    for rows in (_ROWS_KO, _ROWS_EN):
        for r, row in enumerate(rows):
            for c, key in enumerate(row):
                out[key] = (r, c + _STAGGER[r])
    for shifted, base in _SHIFTED.items():
        out[shifted] = out[base]
    return out


_POS = _positions()


def neighbours(key: str) -> list[str]:
    """Keys next to ``key`` on its keyboard (same row ±1, or the row above/below within a key's width)."""
    if key not in _POS:
        return []
    r, x = _POS[key]
    rows = _ROWS_KO if 0x3131 <= ord(key) <= 0x318E else _ROWS_EN
    out = []
    for other_r, row in enumerate(rows):
        for c, other in enumerate(row):
            ox = c + _STAGGER[other_r]
            if other != key and abs(other_r - r) <= 1 and abs(ox - x) <= (1.0 if other_r == r else 0.8):
                out.append(other)
    return out


def keystrokes(word: str) -> list[str]:
    """The keys typed for a word (compound vowels and finals as their two keys)."""
    out: list[str] = []
    for ch in word:
        code = ord(ch) - 0xAC00
        if 0 <= code < 11172:
            parts = [_CHO[code // 588], _JUNG[(code % 588) // 28], _JONG[code % 28]]
        else:
            parts = [ch]
        for p in parts:
            if p:
                out.extend(_SPLIT.get(p, (p,)))
    return out


def compose(keys: list[str]) -> str:
    """Keys put together as a 2-beolsik keyboard does (a final consonant moves on when a vowel follows)."""
    out: list[str] = []
    cho = jung = jong = ""

    def flush() -> None:
        nonlocal cho, jung, jong
        if cho and jung:
            out.append(chr(0xAC00 + _CHO.index(cho) * 588 + _JUNG.index(jung) * 28 + _JONG.index(jong)))
        else:
            out.append(cho + jung + jong)
        cho = jung = jong = ""

    for k in keys:
        if k in _VOWELS:
            if cho and not jung:
                jung = k
            elif jong:
                first, moved = _SPLIT.get(jong, ("", jong))
                jong = first
                flush()
                cho, jung = moved, k
            elif jung and (jung, k) in _VOWEL_PAIRS:
                jung = _VOWEL_PAIRS[(jung, k)]
            else:
                if cho or jung:
                    flush()
                jung = k
        elif k in _CHO:
            if cho and jung and not jong and k in _JONG:
                jong = k
            elif jong and (jong, k) in _FINAL_PAIRS:
                jong = _FINAL_PAIRS[(jong, k)]
            else:
                if cho or jung:
                    flush()
                cho = k
        else:
            if cho or jung:
                flush()
            out.append(k)
    if cho or jung:
        flush()
    return "".join(out)


def typo(word: str, rng: random.Random) -> str:
    """``word`` with one keystroke changed to a neighbouring key, dropped, or swapped with the next."""
    keys = keystrokes(word)
    for _ in range(50):
        edit = rng.choice(("change", "drop", "swap"))
        i = rng.randrange(len(keys))
        typed = list(keys)
        if edit == "change":
            near = [n for n in neighbours(keys[i]) if (n in _VOWELS) == (keys[i] in _VOWELS)] \
                or neighbours(keys[i])
            if not near:
                continue
            typed[i] = rng.choice(near)
        elif edit == "drop":
            if len(keys) < 3:
                continue
            del typed[i]
        else:
            if i + 1 >= len(keys) or keys[i] == keys[i + 1]:
                continue
            typed[i], typed[i + 1] = typed[i + 1], typed[i]
        out = compose(typed)
        if out != word:
            return out
    return word


def typo_query(text: str, seed: int | str) -> str:
    """The query with one typo in its longest word (the first of equals); the same seed, the same typo."""
    words = text.split()
    if not words:
        return text
    i = max(range(len(words)), key=lambda k: (len(words[k]), -k))
    words[i] = typo(words[i], random.Random(f"typo:{seed}:{text}"))
    return " ".join(words)
