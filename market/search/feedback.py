"""Pseudo-relevance feedback (RM3-style): the words the best hits of a narrow search share, for a second pass
that fills the rest of the page with listings like them — the same kind of thing, the same category.

Pure: the embedded backend reads the hits' terms and the terms' listing counts and hands them here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# How many of the best hits speak for the query, and how many of their words the second pass searches for.
FEEDBACK_DOCS = 10
FEEDBACK_TERMS = 4
# A word must be in this share of those hits (a title counts whole, a category half, a description a quarter).
MIN_SHARE = 0.3
# Where a word was found in a hit, as evidence that the hit is about it.
_PLACE = {"title": 1.0, "related": 0.5, "body": 0.25}


@dataclass(frozen=True, slots=True)
class FeedbackDoc:
    """A best hit's terms, by where they stand."""

    title: Sequence[str]
    body: Sequence[str]
    related: Sequence[str]


def shared_words(docs: Sequence[FeedbackDoc]) -> dict[str, float]:
    """The words in at least MIN_SHARE of the hits, each with its share of them (by where it stands): the only
    words ``feedback_terms`` can choose, so the only ones whose listing counts it needs."""
    # A word only ever in descriptions is in less than MIN_SHARE of them (a quarter a hit): only the words of some
    # title or category are counted there (a description holds most of a listing's words).
    counted = None if MIN_SHARE <= _PLACE["body"] else {t for d in docs for t in (*d.title, *d.related)}
    share: dict[str, float] = {}
    for d in docs:
        title = dict.fromkeys(d.title)
        related = dict.fromkeys(t for t in d.related if t not in title)
        body = [t for t in dict.fromkeys(d.body) if t not in title and t not in related
                and (counted is None or t in counted)]
        for words, place in ((title, "title"), (related, "related"), (body, "body")):
            w = _PLACE[place] / len(docs)
            for t in words:
                share[t] = share.get(t, 0.0) + w
    return {t: s for t, s in share.items() if s >= MIN_SHARE}


def feedback_terms(shared: Mapping[str, float], listings: Mapping[str, int], total: int,
                   exclude: set[str]) -> list[str]:
    """The words the hits share (``shared_words``), rarest-and-most-shared first: each word's share of the hits
    times its idf; words in ``exclude`` (the query's own), or that no listing has, are left out."""
    if not shared or total <= 0:
        return []
    scored = []
    for t, s in shared.items():
        n = listings.get(t, 0)
        if t in exclude or n <= 0 or n >= total:
            continue
        scored.append((s * math.log10(1 + total / n), t))
    return [t for _, t in sorted(scored, key=lambda x: (-x[0], x[1]))[:FEEDBACK_TERMS]]
