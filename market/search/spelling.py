"""Spelling: Hangul spelled out as jamo or keystrokes, edit distances over them, the ``Speller`` that corrects
a query word against the index's vocabulary (one keystroke wrong, missing, extra or swapped), and "did you
mean" for a query that found nothing. Holds no connection: a backend gives the Speller its vocabulary.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

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


# -- correcting a query word -----------------------------------------------------------------------------

# Compound vowels and finals are two keys on a Korean keyboard (ㅘ = ㅗ + ㅏ, ㄳ = ㄱ + ㅅ).
_TWO_KEYS = {"ㅘ": "ㅗㅏ", "ㅙ": "ㅗㅐ", "ㅚ": "ㅗㅣ", "ㅝ": "ㅜㅓ", "ㅞ": "ㅜㅔ", "ㅟ": "ㅜㅣ", "ㅢ": "ㅡㅣ",
             "ㄳ": "ㄱㅅ", "ㄵ": "ㄴㅈ", "ㄶ": "ㄴㅎ", "ㄺ": "ㄹㄱ", "ㄻ": "ㄹㅁ", "ㄼ": "ㄹㅂ", "ㄽ": "ㄹㅅ",
             "ㄾ": "ㄹㅌ", "ㄿ": "ㄹㅍ", "ㅀ": "ㄹㅎ", "ㅄ": "ㅂㅅ"}
# A word this short (in keystrokes), or of one Hangul syllable, is never corrected: one key away from it lie
# too many other words.
MIN_KEYS = 3
# Words the Speller keeps at most (each costs its keystrokes + 1 index entries).
SPELLER_WORDS = 200_000


# Letters as NFKC writes them (conjoining jamo) → as typed alone (compatibility jamo).
_CONJOINING = {**{0x1100 + i: c for i, c in enumerate(_CHO)}, **{0x1161 + i: c for i, c in enumerate(_JUNG)},
               **{0x11A8 + i: c for i, c in enumerate(_JONG[1:])}}


def keystrokes(text: str) -> str:
    """The keys typed for a text on a 2-beolsik keyboard (캠 → ㅋㅐㅁ, 과 → ㄱㅗㅏ); other characters as they are."""
    return "".join(_TWO_KEYS.get(ch, ch) for ch in jamo(text.translate(_CONJOINING)))


def has_lone_jamo(text: str) -> bool:
    """Whether a word holds a letter not joined into a syllable (캠ㅍ이): a sure sign of a typo."""
    return any(0x3131 <= ord(ch) <= 0x3163 or 0x1100 <= ord(ch) <= 0x11FF for ch in text)


def keystroke_distance(a: str, b: str, cap: int = 1) -> int:
    """Edits (a key changed, missing, extra, or two neighbours swapped) between two key strings; over ``cap``:
    cap + 1."""
    if abs(len(a) - len(b)) > cap:
        return cap + 1
    rows = [list(range(len(b) + 1))]
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(rows[-1][j] + 1, cur[j - 1] + 1, rows[-1][j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], rows[-2][j - 2] + 1)
        if min(cur) > cap:
            return cap + 1
        rows = [rows[-1], cur]
    return rows[-1][-1]


class Speller:
    """The index's words, found again from a word one keystroke off (a symmetric-delete index: every word is
    filed under itself and under each of its one-key-shorter forms, so a lookup is a few dictionary reads).

    ``words`` maps a word to how many listings have it; ``aliases`` maps other spellings (synonyms) to the
    word they stand for, so a typo of a variant (px5 for ps5) is still found."""

    def __init__(self, words: Iterable[tuple[str, int]], aliases: Iterable[tuple[str, str]] = ()) -> None:
        self.df: dict[str, int] = {}
        for word, df in words:
            if df > 0 and len(self.df) < SPELLER_WORDS:
                self.df[word] = df
        self._spelled: dict[str, tuple[str, int]] = {}  # keys → (the word it stands for, its listings)
        self._deletes: dict[str, list[str]] = {}  # keys, or keys less one → the keys of words filed there
        self._aliases: dict[str, list[str]] = {}
        for alias, word in aliases:
            self._aliases.setdefault(word, []).append(alias)
        for word, df in self.df.items():
            self._file_word(word, df)

    def add(self, words: Iterable[str]) -> None:
        """One more listing has each of these words (the index just took it in)."""
        for word in words:
            if word.startswith("#") or (word not in self.df and len(self.df) >= SPELLER_WORDS):
                continue
            self.df[word] = self.df.get(word, 0) + 1
            self._file_word(word, self.df[word])

    def _file_word(self, word: str, df: int) -> None:
        self._file(word, word, df)
        for alias in self._aliases.get(word, ()):
            if alias not in self.df:
                self._file(alias, alias, df)  # corrected to the alias as written (px5 → ps5)

    def _file(self, spelling: str, word: str, df: int) -> None:
        keys = keystrokes(spelling)
        if len(keys) < MIN_KEYS:
            return
        if keys not in self._spelled:
            for variant in _one_shorter(keys, include_self=True):
                self._deletes.setdefault(variant, []).append(keys)
        if keys not in self._spelled or self._spelled[keys][1] <= df:
            self._spelled[keys] = (word, df)

    def __len__(self) -> int:
        return len(self.df)

    def correct(self, word: str) -> str | None:
        """The most common indexed word one keystroke away from ``word`` (None if there is none, or if ``word``
        is itself indexed)."""
        keys = keystrokes(word)
        if len(keys) < MIN_KEYS or (len(word) < 2 and not word.isascii()) or word in self.df or keys in self._spelled:
            return None
        best: tuple[int, str] | None = None  # the most common of the words one key away
        seen: set[str] = set()
        for variant in _one_shorter(keys, include_self=True):
            for cand in self._deletes.get(variant, ()):
                if cand in seen or cand == keys:
                    continue
                seen.add(cand)
                if keystroke_distance(keys, cand) <= 1:
                    target, df = self._spelled[cand]
                    if best is None or (df, target) > best:
                        best = (df, target)
        return best[1] if best else None


def _one_shorter(keys: str, *, include_self: bool) -> set[str]:
    out = {keys[:i] + keys[i + 1:] for i in range(len(keys))}
    if include_self:
        out.add(keys)
    return out


def corrected_text(speller: Speller, text: str, known: Iterable[str] = ()) -> str | None:
    """``text`` with each word that cannot be right — a lone letter in it (캠ㅍ이), or a term no listing has
    (테늩를 → 테늩, 캠핑의지) — replaced by the most common indexed word one keystroke away; None
    when nothing changed. ``known``: terms to take as right whatever the Speller holds."""
    have = set(known)
    # Terms of the whole text no listing has (the analyser may read a word alone differently: 제스기 → nothing).
    strange = [t for t in _terms(text) if t not in have and t not in speller.df]
    out, changed = [], False
    for word in text.split():
        terms = _terms(word)
        unknown = sorted((t for t in terms if t not in have and t not in speller.df), key=len, reverse=True)
        if not unknown and not has_lone_jamo(word) and not any(t in word.lower() for t in strange):
            out.append(word)
            continue
        fix = None
        # The word as typed, then without a particle or ending (one or two letters) left on it; its terms only
        # when the index knows none of them (a term the analyser derived, like a broader word, may be unknown
        # while the word is right).
        typed = word.lower()
        derived = unknown if len(unknown) == len(terms) else []
        for candidate in (typed, typed[:-1], typed[:-2], *derived):
            fix = speller.correct(candidate)
            if fix:
                break
        out.append(fix or word)
        changed = changed or fix is not None
    return " ".join(out) if changed else None


@functools.lru_cache(maxsize=8192)
def _terms(text: str) -> list[str]:
    # Typos repeat (the same slip, many people): the analyser reads each text once.
    return korean.query_terms(text)
