"""Related words learned from the listings: the words listings use together with a query's word in their
titles and categories (pointwise mutual information over those co-occurrences), for a narrow search's second
pass — a brand or a model name finds the kind of thing its listings are (스노우피크 → 테이블).

Pure: the embedded backend keeps the pair counts (``search_pairs``) and hands them here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

# A companion must share at least this many listings with the word, be in at least this share of the word's
# listings, and be at least this many times likelier beside it than anywhere.
MIN_PAIR = 3
MIN_SHARE = 0.2
MIN_LIFT = 2.0
RELATED_PER_TERM = 5


# The words of a listing whose pairs are counted: its title's, then its category's and broader ones, this many.
PAIR_TERMS = 8


def listing_pairs(keys: Iterable[str]) -> set[tuple[str, str]]:
    """Both orders of every pair of a listing's first PAIR_TERMS distinct title and category terms."""
    have = list(dict.fromkeys(keys))[:PAIR_TERMS]
    return {(a, b) for a in have for b in have if a != b}


def related_terms(pairs: Iterable[tuple[str, str, int]], listings: Mapping[str, int], total: int,
                  exclude: Sequence[str] = ()) -> list[str]:
    """For each word, its companions most often beside it and much likelier there than anywhere (share × PMI),
    at most RELATED_PER_TERM each, best first; ``exclude``d words (the query's own) never."""
    if total <= 0:
        return []
    best: dict[str, list[tuple[float, str]]] = {}
    for a, b, n in pairs:
        na, nb = listings.get(a, 0), listings.get(b, 0)
        if n < MIN_PAIR or na <= 0 or nb <= 0 or b in exclude:
            continue
        share, lift = n / na, n * total / (na * nb)
        if share >= MIN_SHARE and lift >= MIN_LIFT:
            best.setdefault(a, []).append((share * math.log(lift), b))
    out: list[str] = []
    for a in sorted(best):
        for _, b in sorted(best[a], key=lambda x: (-x[0], x[1]))[:RELATED_PER_TERM]:
            if b not in out:
                out.append(b)
    return out


# Similar words: words used in the same kind of listings instead of one another (침낭 and 슬리핑백, 의자 and 체어,
# 아이스박스 and 쿨러) — second-order: two words are similar when the words around them are, whether or not they
# ever meet. Learned from a sample of the listings' own words (title and description), each listing's first
# SIMILAR_CONTEXT distinct words counting as each other's context, weighted by positive PMI; similarity is the
# cosine of two words' contexts. A word must be in at least SIMILAR_MIN_LISTINGS listings, a similar word at least
# SIMILAR_MIN_COSINE alike and in the same listing as it in at most SIMILAR_MAX_TOGETHER of the rarer one's (a
# word nearly always beside another describes it — 초기화 beside 노트북 — rather than stands for it); each word keeps
# its SIMILAR_PER_TERM most similar. SIMILAR_MAX_TOGETHER was chosen on the tuning half of the labelled queries.
SIMILAR_CONTEXT = 24
SIMILAR_MIN_LISTINGS = 3
SIMILAR_MIN_COSINE = 0.6
SIMILAR_PER_TERM = 3
SIMILAR_MAX_TOGETHER = 0.7
SIMILAR_TOP_CONTEXTS = 40  # each word compared through its strongest contexts only (and each context's words)
SIMILAR_CONTEXT_WORDS = 400


def similar_words(listings: Iterable[Sequence[str]]) -> dict[str, list[tuple[str, float]]]:
    """For each word of these listings (each listing its words in order), the words most similar to it, best
    first, with their cosine. Deterministic: ties go by the words."""
    docs = [list(dict.fromkeys(words))[:SIMILAR_CONTEXT] for words in listings]
    total = len(docs)
    df: dict[str, int] = {}
    for words in docs:
        for w in words:
            df[w] = df.get(w, 0) + 1
    known = {w for w, n in df.items() if n >= SIMILAR_MIN_LISTINGS}
    together: dict[str, dict[str, int]] = {w: {} for w in known}
    for words in docs:
        mine = [w for w in words if w in known]
        for a in mine:
            row = together[a]
            for b in mine:
                if a != b:
                    row[b] = row.get(b, 0) + 1
    # Each word's contexts by positive PMI, its strongest SIMILAR_TOP_CONTEXTS kept (and its whole length, for
    # the cosine); each context's words, strongest first.
    vectors: dict[str, dict[str, float]] = {}
    norms: dict[str, float] = {}
    for a, row in together.items():
        weights = {b: math.log(n * total / (df[a] * df[b])) for b, n in row.items()}
        weights = {b: x for b, x in weights.items() if x > 0}
        if not weights:
            continue
        norms[a] = math.sqrt(sum(x * x for x in weights.values()))
        vectors[a] = dict(sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))[:SIMILAR_TOP_CONTEXTS])
    by_context: dict[str, list[tuple[str, float]]] = {}
    for a, vec in vectors.items():
        for c, x in vec.items():
            by_context.setdefault(c, []).append((a, x))
    for c, words in by_context.items():
        words.sort(key=lambda ax: (-ax[1], ax[0]))
        del words[SIMILAR_CONTEXT_WORDS:]
    out: dict[str, list[tuple[str, float]]] = {}
    for a, vec in vectors.items():
        dots: dict[str, float] = {}
        for c, x in vec.items():
            for b, y in by_context.get(c, ()):
                if b != a:
                    dots[b] = dots.get(b, 0.0) + x * y
        row = together[a]
        best = sorted(((d / (norms[a] * norms[b]), b) for b, d in dots.items()
                       if row.get(b, 0) <= SIMILAR_MAX_TOGETHER * min(df[a], df[b])), key=lambda sb: (-sb[0], sb[1]))
        chosen = [(b, round(s, 4)) for s, b in best[:SIMILAR_PER_TERM] if s >= SIMILAR_MIN_COSINE]
        if chosen:
            out[a] = chosen
    return out


def similar_words_of_rows(rows: Sequence[tuple[str, str]]) -> dict[str, list[tuple[str, float]]]:
    """``similar_words`` of listings given as their documents' stored tokens (title, description): what a worker
    process is handed, so that the serving process neither parses nor counts."""
    from market.search.postings import key_of_token

    return similar_words([[k for k in (key_of_token(t) for t in f"{title} {body}".split()) if k]
                          for title, body in rows])
