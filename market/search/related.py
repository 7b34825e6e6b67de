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
