"""The reading of a narrow search's second pass: listings ranked by their best single word among the words it
searches for (related words and its best hits' words) — each listing's score is the largest (word's worth ×
its posting's weight), then nearest, then highest listing number (newest).

Ranked so, the page's listings are among the first ``want`` of each word's list alone: one statement reads those,
with no lookups into the other words' lists and no statistics (the caller weighed the words). In a small circle
(a narrow search's usual place) the words hold few postings: one short statement reads them all, and Python ranks
them — the same page, for a third of the server's time (planning one range scan, not one per word). It never writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from market.filters import Cond
from market.search.cells import _distance_sql, cells_sql
from market.search.documents import FILTERS_JOIN

# (lat, lng, radius in metres) of a search near a point; None: nationwide.
Place = tuple[float, float, int] | None

# A circle this small has its words' postings read whole (300 m in the densest bench district: ~140 listings at
# 1M documents); if they pass this many rows after all, the per-word statement reads the first ``want`` of each.
SMALL_CIRCLE_M = 1_000
SMALL_CIRCLE_ROWS = 1_000


def left_out_sql(n: int) -> str:
    """The condition leaving ``n`` listings out of the postings ``p`` read (its arguments: their numbers), or none.

    On ``p.item_id + 0``, not on the column: ``item_id`` ends every postings index, and a condition on the column
    has the range optimizer cut each key range read at every listing left out — a second pass (five words, two
    tiers, two cells, twelve listings left out) took 0.9 ms to plan and 0.7 ms to run over 96 postings; on
    ``+ 0``, 0.26 and 0.24 ms."""
    return f" AND p.item_id + 0 NOT IN ({', '.join(['%s'] * n)})" if n else ""


def _ranked(rows: Sequence[Mapping[str, Any]], want: int) -> list[tuple[int, int, float | None]]:
    """(listing, best score, distance) from rows of (item_id, score, distance_m), first ``want`` in rank order."""
    best: dict[int, tuple[int, float | None]] = {}
    for r in rows:
        item_id, score = int(r["item_id"]), int(r["score"])
        distance = None if r["distance_m"] is None else float(r["distance_m"])
        if item_id not in best or score > best[item_id][0]:
            best[item_id] = (score, distance)
    ranked = sorted(best.items(), key=lambda x: (-x[1][0], x[1][1] or 0.0, -x[0]))
    return [(item_id, score, distance) for item_id, (score, distance) in ranked[:want]]


def _where(place: Place, narrowed: Cond | None, exclude: Sequence[int]) -> tuple[str, str, list[Any], list[Any]]:
    """(joined source, conditions after the term's, their arguments, the distance's arguments) of one list."""
    source, where, args, distance_args = "", "", [], []
    if place is not None:
        lat, lng, radius = place
        where += f" AND ({cells_sql('p', lat, lng, radius)}) AND {_distance_sql('p')} <= %s"
        distance_args = [lat, lat, lng]
        args += [*distance_args, radius]
    if exclude:
        where += left_out_sql(len(exclude))
        args += list(exclude)
    if narrowed is not None:
        source = FILTERS_JOIN
        where += f" AND {narrowed.sql}"
        args += list(narrowed.args)
    return source, where, args, distance_args


async def best_by_one_word(db: Any, weights: Mapping[str, int], want: int, place: Place, narrowed: Cond | None,
                           exclude: Sequence[int] = ()) -> list[tuple[int, int, float | None]]:
    """The first ``want`` (listing, score, distance) by the listing's best single word of ``weights`` (term key →
    worth per half point), within ``place``, meeting ``narrowed`` (a condition on the document, alias ``i``),
    ``exclude``d listings left out: the first ``want`` of each word's list, in one statement."""
    if not weights or want <= 0:
        return []
    source, where, where_args, distance_args = _where(place, narrowed, exclude)
    if place is not None and place[2] <= SMALL_CIRCLE_M:
        marks = ", ".join(["%s"] * len(weights))
        rows = await db.fetchall(
            f"SELECT p.item_id, p.weight * CASE p.term {' '.join(['WHEN %s THEN %s'] * len(weights))} END AS score,"
            f" {_distance_sql('p')} AS distance_m FROM search_postings p FORCE INDEX (PRIMARY){source}"
            f" WHERE p.term IN ({marks}) AND p.tier IN (0, 1){where} LIMIT %s",
            (*(x for kv in weights.items() for x in kv), *distance_args, *weights, *where_args,
             SMALL_CIRCLE_ROWS + 1))
        if len(rows) <= SMALL_CIRCLE_ROWS:
            return _ranked(rows, want)
    parts, args = [], []
    for term, worth in sorted(weights.items()):
        if place is None:  # each tier's list in the order of its index (weight, then number, descending)
            for tier in (1, 0):
                parts.append(f"(SELECT p.item_id, p.weight * %s AS score, NULL AS distance_m"
                             f" FROM search_postings p FORCE INDEX (ix_search_postings_top){source}"
                             f" WHERE p.term = %s AND p.tier = %s{where}"
                             f" ORDER BY p.weight DESC, p.item_id DESC LIMIT %s)")
                args += [worth, term, tier, *where_args, want]
        else:  # the word's postings in the circle (short key ranges), best, then nearest, then newest
            parts.append(f"(SELECT p.item_id, p.weight * %s AS score, {_distance_sql('p')} AS distance_m"
                         f" FROM search_postings p FORCE INDEX (PRIMARY){source}"
                         f" WHERE p.term = %s AND p.tier IN (0, 1){where}"
                         f" ORDER BY p.weight DESC, distance_m, p.item_id DESC LIMIT %s)")
            args += [worth, *distance_args, term, *where_args, want]
    return _ranked(await db.fetchall(" UNION ALL ".join(parts), tuple(args)), want)


async def best_by_one_word_whole(db: Any, weights: Mapping[str, int], want: int, place: Place,
                                 narrowed: Cond | None, exclude: Sequence[int] = ()
                                 ) -> list[tuple[int, int, float | None]]:
    """``best_by_one_word`` by its definition: every posting of the words read, each listing's largest score."""
    if not weights or want <= 0:
        return []
    source, where, where_args, distance_args = _where(place, narrowed, exclude)
    case = "CASE p.term " + " ".join(["WHEN %s THEN %s"] * len(weights)) + " END"
    distance = "NULL" if place is None else _distance_sql("p")
    rows = await db.fetchall(
        f"SELECT p.item_id, MAX(p.weight * {case}) AS score, MAX({distance}) AS distance_m"
        f" FROM search_postings p{source} WHERE p.term IN ({', '.join(['%s'] * len(weights))}){where}"
        f" GROUP BY p.item_id ORDER BY score DESC, distance_m, p.item_id DESC LIMIT %s",
        (*(x for kv in weights.items() for x in kv), *distance_args, *weights, *where_args, want))
    return [(int(r["item_id"]), int(r["score"]), None if r["distance_m"] is None else float(r["distance_m"]))
            for r in rows]
