"""Spelling: Hangul spelled out as jamo, an edit distance over it, and "did you mean" for a query that found
nothing. Reads the index only through ``SearchBackend.vocabulary`` / ``near_terms``.
"""

from __future__ import annotations

from market.search import korean
from market.search.documents import SearchBackend
from market.search.query import SearchQuery

# -- "did you mean" --------------------------------------------------------------------------------------

_CHO = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"
_JUNG = "ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ"
_JONG = " ㄱㄲㄳㄴㄵㄶㄷㄹㄺㄻㄼㄽㄾㄿㅀㅁㅂㅄㅅㅆㅇㅈㅊㅋㅌㅍㅎ"


def jamo(text: str) -> str:
    """Hangul syllables spelled out as letters (캠 → ㅋㅐㅁ), so a one-letter typo costs one edit."""
    out = []
    for ch in text:
        code = ord(ch) - 0xAC00
        if 0 <= code < 11172:
            out.append(_CHO[code // 588] + _JUNG[(code % 588) // 28] + _JONG[code % 28].strip())
        else:
            out.append(ch)
    return "".join(out)


def edit_distance(a: str, b: str, cap: int = 3) -> int:
    if abs(len(a) - len(b)) > cap:
        return cap + 1
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
        if min(cur) > cap:
            return cap + 1
        prev = cur
    return prev[-1]


async def did_you_mean(backend: SearchBackend, q: SearchQuery) -> str | None:
    """A query that would find something, for a query that found nothing: spacing first, then spelling."""
    text = q.text
    if not text:
        return None
    # Spacing: written together, or split where the analyser sees word boundaries.
    variants = []
    if " " in text:
        variants.append(text.replace(" ", ""))
    spaced = " ".join(korean.analyze_spaced(text))
    if spaced and spaced != text:
        variants.append(spaced)
    for variant in variants:
        terms = korean.query_terms(variant)
        if terms and terms != list(q.terms):
            counts = await backend.vocabulary(terms)
            if any(counts.values()):
                return variant
    # Spelling: replace each unknown term by the most common indexed term within a small edit distance.
    counts = await backend.vocabulary(list(q.terms))
    fixed, changed = [], False
    for term in q.terms:
        if counts.get(term):
            fixed.append(term)
            continue
        best: tuple[int, int, str] | None = None
        spelled = jamo(term)
        allowed = 1 if len(spelled) <= 4 else 2
        for cand, df in await backend.near_terms(term):
            d = edit_distance(spelled, jamo(cand), allowed)
            if d <= allowed and (best is None or (d, -df) < (best[0], -best[1])):
                best = (d, df, cand)
        if best is not None:
            fixed.append(best[2])
            changed = True
        else:
            fixed.append(term)
    return " ".join(fixed) if changed else None
