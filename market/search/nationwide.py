"""A search without a point (nationwide): the best page without reading every posting of its terms.

Nationwide, equal scores are ordered newest first by listing number (listings are numbered as they are
created), so each postings list read in index order — weight, then listing number, both descending (migration
0037) — yields its listings in the order the page wants them among equals. Lists are read in chunks, the most
valuable side by side; every listing read is completed by key lookups into the other terms' lists, so its score is
whole. A listing not read yet can score at most Σ over terms of (the term's worth × its lists' weight at their
cursor), and reading stops when that bound cannot reach the page's last hit (score, then number).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from market.filters import Cond
from market.search.documents import FILTERS_JOIN
from market.search.filler import left_out_sql

# Postings read from one list in its first chunk; each further chunk of that list is CHUNK_GROWTH times larger.
FIRST_CHUNK = 64
CHUNK_GROWTH = 4
# With the lists' weight bands known, a band's rest up to this many postings is read in one go.
BAND_READ = 4096
# No chunk is larger; and once the postings read and about to be read pass this share of all the terms' postings,
# the search gives up reading best first (its caller reads them whole, in one statement: cheaper than chunks).
CHUNK_MAX = 16_384
WHOLE_SHARE = 0.5


@dataclass(slots=True)
class _Cursor:
    """Where the reading of one postings list stands: the last (weight, listing) read; None before the first."""

    top: int  # the largest weight the list has held
    weight: int | None = None
    item_id: int | None = None
    chunk: int = FIRST_CHUNK
    done: bool = False  # every posting read (or every one that passes the filters)
    at_weight: int = 0  # postings read so far at ``weight``

    @property
    def reach(self) -> int:
        """The largest weight a posting not read yet can have."""
        return 0 if self.done else self.top if self.weight is None else self.weight


async def best_anywhere(db: Any, weights: Mapping[str, int], tops: Mapping[tuple[str, int], int],
                        want: int, narrowed: Cond | None,
                        bands: Mapping[tuple[str, int, int], int] | None = None,
                        exclude: Sequence[int] = ()) -> list[tuple[int, int]] | None:
    """The first ``want`` (listing, score) pairs for the terms' ``weights`` (term key → worth per half point),
    best score first, then highest listing number. ``tops``: (term, tier) → that list's largest weight ever.
    ``narrowed``: a condition on the listing's document (alias ``i``) every hit must meet. ``bands``: (term,
    tier, weight) → how many postings the list holds at that weight (a plan only: what is read decides).
    ``exclude``: listings left out. ``db``: anything with Database.fetchall (one transaction's snapshot). None
    when reading best first would read most of the lists (``WHOLE_SHARE``)."""
    cursors = {x: _Cursor(top) for x, top in tops.items() if top > 0 and x[0] in weights}
    terms = sorted(weights)
    scores: dict[int, int] = {}
    total = sum(bands.values()) if bands else 0
    read = 0
    while True:
        ranked = sorted(scores.items(), key=lambda x: (-x[1], -x[0]))
        if len(ranked) >= want and _settled(ranked[want - 1], weights, cursors):
            return ranked[:want]
        open_lists = [x for x, c in cursors.items() if not c.done]
        if not open_lists:
            return ranked[:want]
        # Each round reads, in one statement, the next chunk of every list that gives its term the most an
        # unread listing could have from it: only they lower that listing's bound. Reading them side by side
        # (chunks growing) costs at most a few times what reading only the best of them would, and which is
        # best is not known in advance (a list whose postings all weigh the same lowers nothing until its end).
        most = {t: max(weights[t] * cursors[x].reach for x in open_lists if x[0] == t) for t in {x[0] for x in open_lists}}
        chosen = [x for x in open_lists if weights[x[0]] * cursors[x].reach == most[x[0]]]
        sizes = {x: cursors[x].chunk for x in chosen}
        if bands is not None and scores:
            # Knowing how many postings each list holds at its cursor's weight, the one that gets below that
            # weight soonest is read, past its last posting there (or a growing chunk of it, when even that one
            # holds many).
            left = {x: bands.get((*x, cursors[x].reach), 0) - cursors[x].at_weight for x in chosen}
            # A list past what its band counted (counts behind the postings) is read in growing chunks.
            best = min(chosen, key=lambda x: (left[x] if left[x] >= 0 else math.inf, x))
            whole = left[best] + 1
            sizes = {best: whole if 0 < whole <= BAND_READ else cursors[best].chunk}
            chosen = [best]
        if total and read + sum(sizes.values()) > WHOLE_SHARE * total:
            return None
        rows = await _chunks(db, weights, terms, {x: (cursors[x], sizes[x]) for x in chosen}, narrowed, exclude,
                             want)
        for n, lst in enumerate(chosen):
            cursor = cursors[lst]
            mine = [r for r in rows if r["list"] == n]
            for r in mine:
                scores[int(r["item_id"])] = int(r["score"])
            last = next((r for r in mine if r["from_end"] == 1), None)
            taken = int(last["taken"]) if last is not None else 0
            if last is not None:
                weight = int(last["weight"])
                at_last = int(last["at_weight"])
                # Read in order, the chunk's rows all weigh as much as its last when that is the cursor's weight.
                cursor.at_weight = cursor.at_weight + at_last if weight == cursor.weight else at_last
                cursor.weight, cursor.item_id = weight, int(last["item_id"])
            read += taken
            if taken < sizes[lst]:
                cursor.done = True
            elif sizes[lst] == cursor.chunk:
                cursor.chunk = min(cursor.chunk * CHUNK_GROWTH, CHUNK_MAX)


def _settled(last: tuple[int, int], weights: Mapping[str, int], cursors: Mapping[tuple[str, int], _Cursor]) -> bool:
    """Whether no listing left unread can rank before ``last`` (listing, score) on the page."""
    item_id, score = last
    reach: dict[str, int] = {}
    for (term, _), c in cursors.items():
        reach[term] = max(reach.get(term, 0), weights[term] * c.reach)
    bound = sum(reach.values())
    if bound != score:
        return bound < score
    # An unread listing scoring exactly ``score`` has, for every term worth something to it, a posting at the
    # cursor's weight of a list that gives that term its reach; if for some term every such list has started,
    # the listing lies after those cursors there: a lower number than theirs, so it ranks after ``last`` when
    # ``last`` has a higher number than every one of them.
    for term, most in reach.items():
        if most == 0:
            continue
        at = [c for (t, _), c in cursors.items() if t == term and weights[t] * c.reach == most]
        if all(c.item_id is not None for c in at) and item_id > max(c.item_id for c in at):  # type: ignore[type-var]
            return True
    return False


async def _chunks(db: Any, weights: Mapping[str, int], terms: list[str],
                  lists: Mapping[tuple[str, int], tuple[_Cursor, int]], narrowed: Cond | None,
                  exclude: Sequence[int], want: int) -> list[dict[str, Any]]:
    """The next ``size`` postings of each list in index order (``list``: its place in ``lists``), in one statement;
    each listing's whole score completed by key lookups. Of each chunk only what the reading needs comes back:
    its ``want`` best listings (score, then number: no other can be on the page) and its last posting
    (``from_end`` = 1), which carries the postings read (``taken``) and how many of them weigh as much as it."""
    parts, args = [], []
    for n, ((term, tier), (cursor, size)) in enumerate(lists.items()):
        others = [u for u in terms if u != term]
        added = "".join(f" + COALESCE(n{k}.weight, 0) * %s" for k in range(len(others)))
        joins = "".join(f" LEFT JOIN search_postings n{k} FORCE INDEX (ix_search_postings_probe)"
                        f" ON n{k}.term = %s AND n{k}.cell = p.cell AND n{k}.item_id = p.item_id"
                        for k in range(len(others)))
        source = "search_postings p FORCE INDEX (ix_search_postings_top)"
        where, where_args = "p.term = %s AND p.tier = %s", [term, tier]
        if cursor.weight is not None:
            where += " AND (p.weight < %s OR (p.weight = %s AND p.item_id < %s))"
            where_args += [cursor.weight, cursor.weight, cursor.item_id]
        if exclude:
            where += left_out_sql(len(exclude))
            where_args += list(exclude)
        if narrowed is not None:
            source += FILTERS_JOIN
            where += f" AND {narrowed.sql}"
            where_args += list(narrowed.args)
        chunk = (f"SELECT p.item_id, p.weight, p.weight * %s{added} AS score FROM {source}{joins}"
                 f" WHERE {where} ORDER BY p.weight DESC, p.item_id DESC LIMIT %s")
        parts.append(f"(SELECT {n} AS list, c.* FROM (SELECT c.*,"
                     f" ROW_NUMBER() OVER (ORDER BY c.score DESC, c.item_id DESC) AS best,"
                     f" ROW_NUMBER() OVER (ORDER BY c.weight, c.item_id) AS from_end,"
                     f" COUNT(*) OVER () AS taken, COUNT(*) OVER (PARTITION BY c.weight) AS at_weight"
                     f" FROM ({chunk}) c) c WHERE c.best <= %s OR c.from_end = 1)")
        args += [weights[term], *(weights[u] for u in others), *others, *where_args, size, want]
    return await db.fetchall(" UNION ALL ".join(parts), tuple(args))
