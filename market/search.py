"""Keyword search: one interface, two backends (embedded MariaDB FULLTEXT, Elasticsearch).

- ``SearchQuery.parse`` reads untrusted input (text, optional point and radius, the nearby filters, paging).
- ``SearchDoc`` is what the index holds for one item: analysed terms plus the filter fields.
- A backend indexes and removes documents, searches, completes title prefixes and suggests a spelling.
- ``EmbeddedSearch`` keeps the documents in MariaDB with our own postings table (term, tier, map cell, listing):
  a search near a point reads only the postings inside its circle, the most valuable lists first.

Ranking (both backends): text relevance first — a title match weighs more than a description match, which
weighs more than a broader term or the category — then distance, freshness and the owner's rating break
ties. A query none of whose terms any listing has returns nothing.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import itertools
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from market import filters as f
from market import korean
from market import validation as v
from market.categories import Categories
from market.db import Database
from market.errors import InvalidInput
from market.geo import PUBLIC_STATUSES, filters_for, read_filters

MAX_QUERY_CHARS = 200
MAX_QUERY_TERMS = 12
MAX_OFFSET = 500
# Weights of where a term was found; a word said twice in a place counts twice, more often not more.
TITLE_WEIGHT, BODY_WEIGHT, RELATED_WEIGHT = 3.0, 1.0, 0.5
TF_CAP = 2
# The head noun of the query (its last noun: 휴대용 *유모차*) counts this many times.
HEAD_BOOST = 1.5
# Terms whose statistics a process keeps between searches (about 200 bytes each).
STATS_KEPT = 50_000


@dataclass(frozen=True, slots=True)
class SearchQuery:
    text: str
    terms: tuple[str, ...]
    head: tuple[str, ...] = ()  # the terms of the query's last noun (the head of the phrase)
    lat: float | None = None
    lng: float | None = None
    radius_m: int | None = None
    category_id: int | None = None
    price_min: int | None = None
    price_max: int | None = None
    deposit_min: int | None = None
    deposit_max: int | None = None
    conditions: tuple[str, ...] | None = None
    available_from: date | None = None
    available_until: date | None = None
    statuses: tuple[str, ...] = PUBLIC_STATUSES
    limit: int = 20
    offset: int = 0

    @classmethod
    def parse(cls, data: Mapping[str, Any], *, default_radius_m: int = 6000, max_radius_m: int = 50_000,
              max_limit: int = 50) -> SearchQuery:
        raw = data.get("q", "")
        if raw is None:
            raw = ""
        if not isinstance(raw, str):
            raise InvalidInput("search.bad_query", field="q")
        # A very long query is cut, not refused: the first words are what the person meant.
        text = " ".join(raw.split())[:MAX_QUERY_CHARS]
        terms = tuple(korean.query_terms(text))[:MAX_QUERY_TERMS] if text else ()
        head = tuple(t for t in korean.head_terms(text) if t in terms) if len(terms) > 1 else ()
        point = v.coordinates(data, required=False)
        radius = None
        if point is not None:
            radius = v.integer(data, "radius_m", lo=100, hi=max_radius_m, required=False,
                               default=default_radius_m) or default_radius_m
        filters = read_filters(data)
        limit = v.integer(data, "limit", lo=1, hi=max_limit, required=False, default=20) or 20
        return cls(text=text, terms=terms, head=head, lat=point[0] if point else None,
                   lng=point[1] if point else None, radius_m=radius, **filters, limit=limit,
                   offset=decode_offset(data.get("cursor")))


@dataclass(frozen=True, slots=True)
class SearchHit:
    item_id: int
    score: float
    distance_m: float | None = None


@dataclass(frozen=True, slots=True)
class SearchPage:
    hits: list[SearchHit]
    next_cursor: str | None
    did_you_mean: str | None = None


@dataclass(frozen=True, slots=True)
class SearchDoc:
    """One item as the search index holds it."""

    item_id: int
    title: str
    title_terms: list[str]
    body_terms: list[str]
    related_terms: list[str]
    lat: float
    lng: float
    cat_ids: tuple[int, int, int]
    price_per_day: int
    deposit: int
    condition: str
    available_from: date
    available_until: date | None
    status: str
    created_at: datetime
    owner_rating: float | None = None
    category_names: list[str] = field(default_factory=list)
    description: str = ""

    @classmethod
    def build(cls, row: Mapping[str, Any], category_names: Sequence[str]) -> SearchDoc:
        """From an ``items`` row (with ``lat``/``lng``); analyses title, description and category names."""
        return cls.build_many([row], [category_names])[0]

    @classmethod
    def build_many(cls, rows: Sequence[Mapping[str, Any]], category_names: Sequence[Sequence[str]]
                   ) -> list[SearchDoc]:
        """``build`` for a batch: the analyser takes all titles and descriptions at once, on all its threads."""
        texts = korean.analyze_many([r["title"] for r in rows] + [r["description"] for r in rows])
        out = []
        for k, (row, names) in enumerate(zip(rows, category_names)):
            title_terms, body_terms = texts[k], texts[len(rows) + k]
            cat_terms = [t for name in names for t in _category_terms(name)]
            own = set(title_terms) | set(body_terms)
            related = [t for t in dict.fromkeys(cat_terms) if t not in own]
            related += [t for t in korean.related(own | set(related)) if t not in related]
            out.append(cls(
                item_id=int(row["id"]), title=row["title"], title_terms=title_terms, body_terms=body_terms,
                related_terms=related, lat=float(row["lat"]), lng=float(row["lng"]),
                cat_ids=(int(row["cat1_id"]), int(row["cat2_id"]), int(row["cat3_id"])),
                price_per_day=int(row["price_per_day"]), deposit=int(row["deposit"]),
                condition=row["item_condition"], available_from=row["available_from"],
                available_until=row["available_until"], status=row["status"], created_at=row["created_at"],
                owner_rating=row.get("owner_rating"), category_names=list(names), description=row["description"],
            ))
        return out


@functools.lru_cache(maxsize=1024)
def _category_terms(name: str) -> tuple[str, ...]:
    return tuple(korean.analyze(name.replace("/", " ")))


class SearchBackend(Protocol):
    name: str

    async def index(self, docs: Sequence[SearchDoc]) -> None: ...

    async def remove(self, item_ids: Sequence[int]) -> None: ...

    async def search(self, q: SearchQuery) -> SearchPage: ...

    async def complete(self, prefix: str, limit: int = 8) -> list[str]: ...

    async def vocabulary(self, terms: Sequence[str]) -> dict[str, int]:
        """How many listings have each term (0 for none)."""
        ...

    async def near_terms(self, term: str) -> list[tuple[str, int]]:
        """Indexed terms spelled like ``term`` (candidates for "did you mean"), with their listing counts."""
        ...

    async def clear(self) -> None: ...

    async def refresh(self) -> None: ...


# -- cursors ---------------------------------------------------------------------------------------------

def encode_offset(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def decode_offset(raw: object) -> int:
    if raw is None or raw == "":
        return 0
    if not isinstance(raw, str) or len(raw) > 100:
        raise InvalidInput("input.bad_cursor", field="cursor")
    try:
        offset = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))["o"]
    except (ValueError, TypeError, KeyError, binascii.Error):
        raise InvalidInput("input.bad_cursor", field="cursor") from None
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= MAX_OFFSET:
        raise InvalidInput("input.bad_cursor", field="cursor")
    return offset


# -- the embedded backend --------------------------------------------------------------------------------

def token(term: str) -> str:
    """A term as stored in the title FULLTEXT index: a letter, then its UTF-8 in hex (a hash when very long).

    Only [0-9a-z] reach MATCH … AGAINST, so no query can carry a FULLTEXT operator, and a hex prefix is a term
    prefix (for completion)."""
    raw = term.encode()
    if len(raw) <= 40:
        return "w" + raw.hex()
    return "h" + hashlib.blake2b(raw, digest_size=12).hexdigest()


def untoken(tok: str) -> str | None:
    if tok.startswith("w"):
        try:
            return bytes.fromhex(tok[1:]).decode()
        except ValueError:
            return None
    return None


def term_key(term: str) -> str:
    """A term as the postings hold it: itself, or (over 40 bytes) the same hash its token carries."""
    raw = term.encode()
    if len(raw) <= 40:
        return term
    return "#" + hashlib.blake2b(raw, digest_size=12).hexdigest()


def _key_of_token(tok: str) -> str | None:
    if tok.startswith("h"):
        return "#" + tok[1:]
    return untoken(tok)


def postings_of(doc: SearchDoc) -> dict[str, tuple[int, int]]:
    """A document's postings: term key → (tier, weight in half points).

    The weight is where the term appears — 3 in the title, 1 in the description (each counted at most
    ``TF_CAP`` times), 0.5 among the related terms — doubled, so that every score is a whole number and two
    listings that score the same compare equal. Tier 1 holds the terms of the title."""
    title, body, related = Counter(doc.title_terms), Counter(doc.body_terms), set(doc.related_terms)
    out: dict[str, tuple[int, int]] = {}
    for term in dict.fromkeys([*doc.title_terms, *doc.body_terms, *doc.related_terms]):
        w = (TITLE_WEIGHT * min(title[term], TF_CAP) + BODY_WEIGHT * min(body[term], TF_CAP)
             + RELATED_WEIGHT * (term in related))
        key = term_key(term)
        tier = 1 if title[term] else 0
        if key in out:  # two long terms with one hash: keep the stronger
            tier, w = max(out[key], (tier, int(w * 2)))
            out[key] = (tier, w)
            continue
        out[key] = (tier, int(w * 2))
    return out


# The map cells postings are filed under: CELL_DEG by CELL_DEG (~550 m north–south, ~440 m east–west in Korea),
# numbered west to east along a row, row after row, so the cells a circle covers are one key range per row.
CELL_DEG = 0.005
CELL_ROWS, CELL_COLS = 36_000, 72_000
EARTH_RADIUS_M = 6_370_986.0  # the sphere of MariaDB's ST_Distance_Sphere


def _row(lat: float) -> int:
    return min(max(math.floor((lat + 90.0) / CELL_DEG), 0), CELL_ROWS - 1)


def _col(lng: float) -> int:
    return min(max(math.floor((lng + 180.0) / CELL_DEG), 0), CELL_COLS - 1)


def cell_of(lat: float, lng: float) -> int:
    return _row(lat) * CELL_COLS + _col(lng)


def cell_ranges(lat: float, lng: float, radius_m: float) -> list[tuple[int, int]]:
    """The cells holding every point within ``radius_m`` of (lat, lng): one (first, last) cell range per row.

    Per row, the widest longitude span the circle can reach there comes from the haversine formula at the row's
    latitude nearest the centre; a metre of margin covers rounding and the distance formula (see ``_distance_sql``)."""
    r = (radius_m + 1.0) / EARTH_RADIUS_M
    dlat = math.degrees(r)
    hav_r = math.sin(r / 2) ** 2
    cos_centre = math.cos(math.radians(lat))
    out = []
    for row in range(_row(lat - dlat), _row(lat + dlat) + 1):
        south, north = row * CELL_DEG - 90.0, (row + 1) * CELL_DEG - 90.0
        nearest = min(max(lat, south), north)
        hav_dlat = math.sin(math.radians(nearest - lat) / 2) ** 2
        cos_row = min(math.cos(math.radians(south)), math.cos(math.radians(north)))
        room = (hav_r - hav_dlat) / max(cos_centre * cos_row, 1e-12)
        if room < 0:
            continue
        if room >= 1:
            first, last = 0, CELL_COLS - 1
        else:
            dlng = math.degrees(2 * math.asin(math.sqrt(room)))
            first, last = _col(lng - dlng), _col(lng + dlng)
        out.append((row * CELL_COLS + first, row * CELL_COLS + last))
    return out


def _distance_sql(alias: str) -> str:
    """Metres from (%s lat, %s lat, %s lng) to ``alias``.lat/lng on ST_Distance_Sphere's sphere, by the
    equirectangular formula at the mean latitude: within 0.3 m of the great-circle distance up to 50 km (the
    largest radius), and fewer functions per row than the haversine formula."""
    return (f"{EARTH_RADIUS_M:.1f} * RADIANS(SQRT(POW({alias}.lat - %s, 2)"
            f" + POW(COS(RADIANS(({alias}.lat + %s) / 2)) * ({alias}.lng - %s), 2)))")


# Term key → (listings with it, its largest posting weight in tier 1, in tier 0); the key None → (all listings, 0, 0).
_Stats = dict[str | None, tuple[int, int, int]]


class _Stale(Exception):
    """The statistics a search started from no longer give the weights and bounds it used."""

    def __init__(self, stats: _Stats) -> None:
        super().__init__("term statistics changed")
        self.stats = stats


@dataclass(frozen=True, slots=True)
class _Basis:
    """What a search's weights and bounds came from: checked against the statistics each statement reads."""

    keys: Mapping[str, str]  # term key → query term
    weights: Mapping[str, int]
    tops: Mapping[tuple[str, int], int]


@dataclass(slots=True)
class _Found:
    """A listing a search found: its score, its weight in the list it was found in, how far it is."""

    item_id: int
    score: int
    weight: int
    distance_m: float
    # Round 1 only: how many listings the sample held, and its last one's weight and distance.
    sample: int = 0
    last_weight: int = 0
    last_distance: float = 0.0


class EmbeddedSearch:
    """Search documents and their postings in MariaDB (see migration 0007), ranked by our own weights.

    A listing's score is Σ over the query's terms of (weight of the term in the listing) × (the term's
    rarity, idf² with idf = log10(1 + N / listings with the term)), the head noun counting 1.5 times; all in
    whole numbers. Near a point, the best page is found without reading every posting in the circle: the
    postings of one term in one tier form a list whose best possible contribution is known in advance. The
    most valuable list's best listings, completed by key lookups, give a floor for the page's last score;
    then only the lists, and in them only the postings, that could reach the floor are read, and every
    listing found is completed by lookups (the MaxScore strategy). With filters other than place, without a
    point, or when a tie runs past what was read, the plain query reads every posting."""

    name = "embedded"

    def __init__(self, db: Database, categories: Categories | None = None, *, early_stop: bool = True) -> None:
        self._db = db
        self._categories = categories
        self._early_stop = early_stop
        # How many reading rounds each search near a point took (0: it read every posting in the circle).
        self.rounds: Counter[int] = Counter()
        # The term statistics last read, so that a search near a point need not read them before its postings:
        # each of its statements reads them again, and a search whose weights or bounds they change starts
        # over from them.
        self._stats: _Stats = {}

    # -- writing -----------------------------------------------------------------------------------------

    async def index(self, docs: Sequence[SearchDoc]) -> None:
        docs = list({d.item_id: d for d in docs}.values())
        if not docs:
            return
        old = await self._stored([d.item_id for d in docs])
        rows: list[Any] = []
        postings: list[Any] = []
        new: dict[int, tuple[set[str], set[str]]] = {}
        for d in docs:
            lat, lng = round(d.lat, 7), round(d.lng, 7)
            c = cell_of(lat, lng)
            rows += [d.item_id, _tokens(d.title_terms), _tokens(d.body_terms), _tokens(d.related_terms),
                     d.title[:60], f"POINT({lng:.7f} {lat:.7f})", c, *d.cat_ids, d.price_per_day, d.deposit,
                     d.condition, d.available_from, d.available_until, d.status, d.owner_rating, d.created_at]
            mine = postings_of(d)
            postings += [(key, tier, c, d.item_id, weight, lat, lng) for key, (tier, weight) in mine.items()]
            new[d.item_id] = (set(d.title_terms) | set(d.body_terms), set(mine))
        vocab, terms = self._deltas(old, new)
        tops: dict[str, list[int]] = {}
        for key, tier, *_, weight, _lat, _lng in postings:
            top = tops.setdefault(key, [0, 0])
            top[1 - tier] = max(top[1 - tier], weight)
        async with self._db.transaction() as cur:
            # REPLACE gives a changed document a new FULLTEXT doc id (InnoDB's rule for user-kept FTS_DOC_ID).
            await cur.execute(
                "REPLACE INTO search_docs (item_id, title_terms, body_terms, related_terms, title, location, cell,"
                " cat1_id, cat2_id, cat3_id, price_per_day, deposit, item_condition, available_from,"
                " available_until, status, owner_rating, created_at) VALUES "
                + ", ".join(["(%s, %s, %s, %s, %s, ST_GeomFromText(%s, 4326), %s, %s, %s, %s, %s, %s, %s, %s, %s,"
                             " %s, %s, %s)"] * len(docs)), tuple(rows))
            await self._delete_postings(cur, [p for s in old.values() for p in s.postings()])
            for i in range(0, len(postings), 2000):
                chunk = postings[i:i + 2000]
                await cur.execute(
                    "INSERT INTO search_postings (term, tier, cell, item_id, weight, lat, lng) VALUES "
                    + ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(chunk)), tuple(x for p in chunk for x in p))
            await self._apply_counts(cur, vocab, terms, len(docs) - len(old), tops)

    async def remove(self, item_ids: Sequence[int]) -> None:
        if not item_ids:
            return
        old = await self._stored(item_ids)
        if not old:
            return
        vocab, terms = self._deltas(old, {})
        async with self._db.transaction() as cur:
            await cur.execute(f"DELETE FROM search_docs WHERE item_id IN ({', '.join(['%s'] * len(old))})",
                              tuple(old))
            await self._delete_postings(cur, [p for s in old.values() for p in s.postings()])
            await self._apply_counts(cur, vocab, terms, -len(old), {})

    async def _stored(self, item_ids: Sequence[int]) -> dict[int, _Stored]:
        if not item_ids:
            return {}
        rows = await self._db.fetchall(
            f"SELECT item_id, title_terms, body_terms, related_terms, cell FROM search_docs WHERE item_id IN"
            f" ({', '.join(['%s'] * len(item_ids))})", tuple(item_ids))
        return {int(r["item_id"]): _Stored(int(r["item_id"]), r["title_terms"].split(), r["body_terms"].split(),
                                           r["related_terms"].split(), int(r["cell"])) for r in rows}

    @staticmethod
    def _deltas(old: Mapping[int, _Stored], new: Mapping[int, tuple[set[str], set[str]]]
                ) -> tuple[dict[str, int], dict[str, int]]:
        """Changes to the listing counts: of title and description words (for "did you mean"), and of every
        posting's term (for rarity), from what the index held to ``new`` (listing → its words, its posting
        keys). +1 for a term a listing gains, -1 for one it loses."""
        vocab: dict[str, int] = {}
        terms: dict[str, int] = {}
        for item_id in set(old) | set(new):
            before = old[item_id].words() if item_id in old else set()
            before_keys = old[item_id].keys() if item_id in old else set()
            after, after_keys = new.get(item_id, (set(), set()))
            for counts, gained, lost in ((vocab, after - before, before - after),
                                         (terms, after_keys - before_keys, before_keys - after_keys)):
                for t in gained:
                    counts[t] = counts.get(t, 0) + 1
                for t in lost:
                    counts[t] = counts.get(t, 0) - 1
        return vocab, terms

    @staticmethod
    async def _delete_postings(cur: Any, keys: list[tuple[str, int, int, int]]) -> None:
        # Whole primary keys, OR-ed: point lookups, whatever the table's size.
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            await cur.execute(
                "DELETE FROM search_postings WHERE "
                + " OR ".join(["(term = %s AND tier = %s AND cell = %s AND item_id = %s)"] * len(chunk)),
                tuple(x for k in chunk for x in k))

    @staticmethod
    async def _apply_counts(cur: Any, vocab: dict[str, int], terms: dict[str, int], docs: int,
                            tops: dict[str, list[int]]) -> None:
        changes = sorted((t, n) for t, n in vocab.items() if n and len(t) <= 40)
        if changes:
            await cur.execute(
                "INSERT INTO search_vocab (term, df) VALUES " + ", ".join(["(%s, %s)"] * len(changes))
                + " ON DUPLICATE KEY UPDATE df = df + VALUES(df)", tuple(x for change in changes for x in change))
        keys = sorted(k for k in set(terms) | set(tops) if terms.get(k) or k in tops)
        if keys:
            await cur.execute(
                "INSERT INTO search_terms (term, docs, top1, top0) VALUES "
                + ", ".join(["(%s, %s, %s, %s)"] * len(keys))
                + " ON DUPLICATE KEY UPDATE docs = docs + VALUES(docs), top1 = GREATEST(top1, VALUES(top1)),"
                " top0 = GREATEST(top0, VALUES(top0))",
                tuple(x for k in keys for x in (k, terms.get(k, 0), *tops.get(k, (0, 0)))))
        if docs:
            await cur.execute("INSERT INTO search_stats (id, docs) VALUES (1, %s)"
                              " ON DUPLICATE KEY UPDATE docs = docs + VALUES(docs)", (docs,))

    async def clear(self) -> None:
        big = await self._db.fetchval("SELECT COUNT(*) FROM (SELECT 1 FROM search_postings LIMIT 10001) x")
        for table in ("search_docs", "search_postings", "search_vocab", "search_terms"):
            # TRUNCATE drops a big table at once; a small one is quicker to empty row by row.
            await self._db.execute(f"{'TRUNCATE TABLE' if int(big) > 10_000 else 'DELETE FROM'} {table}")
        await self._db.execute("REPLACE INTO search_stats (id, docs) VALUES (1, 0)")

    async def refresh(self) -> None:
        """Nothing to do: a committed document is searchable."""

    # -- searching ---------------------------------------------------------------------------------------

    async def search(self, q: SearchQuery) -> SearchPage:
        keys = {term_key(t): t for t in q.terms}
        if not keys:
            return SearchPage([], None)
        want = q.offset + q.limit + 1
        near = q.lat is not None and q.lng is not None and q.radius_m is not None and not _narrowed(q)
        quick = near and self._early_stop
        stats = self._kept(keys) if quick else None
        kept = stats is not None
        found = None
        for attempt in range(3):
            if stats is None:
                stats = await self._read_stats(keys)
            weights, tops = _weigh(q, keys, stats)
            if not weights:
                if kept:  # no listing has these terms, as this process last read: read again
                    stats, kept = None, False
                    continue
                return SearchPage([], None)
            if not quick:
                break
            try:
                # The last attempt takes the statistics as read (a listing changed since may be missed).
                basis = _Basis(keys, weights, tops) if attempt < 2 else None
                found = await self._best_near(q, weights, tops, want, basis)
                break
            except _Stale as stale:
                stats, kept = stale.stats, False
        if found is None:
            if near:
                self.rounds[0] += 1
            found = await self._best(q, weights, want)
        hits = [SearchHit(x.item_id, x.score / 2000, x.distance_m) for x in found[q.offset:]]
        more = len(hits) > q.limit and q.offset + q.limit < MAX_OFFSET
        return SearchPage(hits[: q.limit], encode_offset(q.offset + q.limit) if more else None)

    async def _read_stats(self, keys: Mapping[str, str]) -> _Stats:
        parts, args = _stats_sql(keys)
        return self._keep(keys, await self._db.fetchall(" UNION ALL ".join(parts), tuple(args)))

    def _keep(self, keys: Mapping[str, str], rows: Sequence[Mapping[str, Any]]) -> _Stats:
        """Remembers the statistics in rows from ``_stats_sql`` (a term not found: no listing has it); returns
        them whole."""
        order = list(keys)
        stats: _Stats = {k: (0, 0, 0) for k in order}
        for r in rows:
            if r["branch"] < 0:
                key = None if r["branch"] == STATS_COUNT else order[-int(r["branch"]) - 1]
                stats[key] = (int(r["item_id"]), int(r["score"]), int(r["weight"]))
        if len(self._stats) + len(stats) > STATS_KEPT:
            self._stats.clear()
        self._stats.update(stats)
        return stats

    def _kept(self, keys: Mapping[str, str]) -> _Stats | None:
        """The statistics last read for every term and the listing count, if this process has them all."""
        if None not in self._stats or any(k not in self._stats for k in keys):
            return None
        return {k: self._stats[k] for k in (*keys, None)}

    async def _best(self, q: SearchQuery, weights: dict[str, int], want: int) -> list[_Found]:
        """The first ``want`` hits by reading every posting of the query's terms (within the circle, if any)."""
        case = "CASE p.term " + " ".join(["WHEN %s THEN %s"] * len(weights)) + " END"
        args: list[Any] = [x for kv in weights.items() for x in kv]
        where = f"p.term IN ({', '.join(['%s'] * len(weights))}) AND p.tier IN (0, 1)"
        args += list(weights)
        conds = [filters_for(q, self._categories)]  # type: ignore[arg-type]
        distance, distance_args = "NULL", ()
        if q.lat is not None and q.lng is not None and q.radius_m is not None:
            ranges = cell_ranges(q.lat, q.lng, q.radius_m)
            where += " AND (" + " OR ".join(["p.cell BETWEEN %s AND %s"] * len(ranges)) + ")"
            args += [x for r in ranges for x in r]
            distance, distance_args = _distance_sql("g"), (q.lat, q.lat, q.lng)
            conds.append(f.Cond(f"{distance} <= %s", (*distance_args, q.radius_m)))
        where_sql, where_args = f.where(f.all_of(conds))
        rows = await self._db.fetchall(
            f"SELECT g.item_id, g.score, {distance} AS distance_m FROM ("
            f"SELECT p.item_id, SUM(p.weight * {case}) AS score, MAX(p.lat) AS lat,"
            f" MAX(p.lng) AS lng FROM search_postings p WHERE {where} GROUP BY p.item_id) g"
            f" JOIN search_docs i ON i.item_id = g.item_id {where_sql}"
            " ORDER BY g.score DESC, distance_m, i.created_at DESC, i.owner_rating DESC, i.item_id DESC LIMIT %s",
            (*distance_args, *args, *where_args, want))
        return [_Found(int(r["item_id"]), int(r["score"]), 0,
                       None if r["distance_m"] is None else float(r["distance_m"])) for r in rows]  # type: ignore[arg-type]

    async def _best_near(self, q: SearchQuery, weights: dict[str, int], tops: dict[tuple[str, int], int],
                         want: int, basis: _Basis | None) -> list[_Found] | None:
        """The first ``want`` hits near a point, reading the postings lists from the most valuable down
        (see the class's note); None in the rare case of a tie running past what was read. With a ``basis``,
        raises _Stale when a statement finds statistics giving other weights or bounds."""
        assert q.lat is not None and q.lng is not None and q.radius_m is not None
        bound = {x: weights[x[0]] * top for x, top in tops.items() if top > 0}  # empty lists are never read
        lists = sorted(bound, key=lambda x: (-bound[x], x))
        if not lists:
            return []
        ranges = cell_ranges(q.lat, q.lng, q.radius_m)
        best = {t: max(b for x, b in bound.items() if x[0] == t) for t in {x[0] for x in lists}}
        # 1. The best listings of the most valuable list, completed by key lookups into the other terms' lists:
        # the page's last hit scores at least as much as the ``want``-th of them.
        term, tier = lists[0]
        # With other terms, a wider sample finds listings that have them too (a higher floor); only the best
        # few of it come back, with the sample's size and its last listing (least weight, farthest).
        sample = max(3 * want, 64) * (1 if len(best) == 1 else 4)
        limit = want + 8
        rows = await self._branches(q, weights, ranges, {term: [tier]}, {}, limit, probe=list(best), want=want,
                                    first=sample, basis=basis)
        if rows is None:
            return None  # a tie running past what came back
        floor, edge = _cut(rows, want)
        # 2. The lists that together could lift a listing to the floor are read, term by term; a listing found
        # there is completed with key lookups into the other terms' lists. A listing only in the lists left
        # out cannot reach the floor.
        chosen = set(lists)
        if floor > 0:
            total = 0
            for x in reversed(lists):
                if total + bound[x] >= floor:
                    chosen = {y for y in lists if bound[y] >= bound[x]}
                    break
                total += bound[x]
        tiers: dict[str, list[int]] = {}
        for t, tr in sorted(chosen, key=lambda x: (-weights[x[0]], x)):  # the rarest term first
            tiers.setdefault(t, []).append(tr)
        # A listing in term t's chosen lists needs at least this weight there to reach the floor. What it can
        # have from another term: at most that term's best — or, for a term whose branch comes earlier, the
        # best of its lists not chosen (were the listing in a chosen one, that earlier branch finds it).
        unread = {t: max((b for x, b in bound.items() if x[0] == t and x not in chosen), default=0) for t in best}
        least, earlier = {}, set()
        for t in list(tiers):
            other = sum(unread[u] if u in earlier else best[u] for u in best if u != t)
            least[t] = -(-(floor - other) // weights[t])
            earlier.add(t)
            if least[t] > max(tops[(t, tr)] for tr in tiers[t]):
                del tiers[t]  # no posting of its chosen lists weighs enough: nothing to read
        whole = not rows or rows[0].sample < sample  # the sample held every listing of the list in the circle
        reach = weights[term] * rows[0].last_weight + sum(best[u] for u in best if u != term) if rows else 0
        if chosen == {lists[0]} and (whole or reach < floor or (reach == floor and rows[0].last_distance > edge)):
            # The first round already holds every listing of the one list worth reading that could reach the
            # page, with its whole score: those it left out weigh less there (or as much, and lie farther).
            self.rounds[1] += 1
            return await self._settle_ties(sorted(rows, key=lambda x: (-x.score, x.distance_m)), want)
        if not tiers:
            return None  # bounds that no listing meets (statistics behind the postings): read everything
        self.rounds[2] += 1
        found = await self._branches(q, weights, ranges, tiers, least, limit, probe=list(best), want=want,
                                     basis=basis)
        if found is None:
            return None
        unique = sorted({x.item_id: x for x in found}.values(), key=lambda x: (-x.score, x.distance_m))
        return await self._settle_ties(unique, want)

    async def _branches(self, q: SearchQuery, weights: dict[str, int], ranges: list[tuple[int, int]],
                        tiers: Mapping[str, list[int]], least: Mapping[str, int], limit: int,
                        probe: Sequence[str] = (), want: int = 0, first: int | None = None,
                        basis: _Basis | None = None) -> list[_Found] | None:
        """For each term, the listings in the circle in its lists of the given tiers (with at least weight
        ``least[term]`` there), best first, then nearest: the first ``limit`` of each. Their scores count the
        term's weight, plus — looked up by key — their postings for the other ``probe`` terms.
        With ``want``: None when a term's listings tied with its ``want``-th run past the ``limit``. With
        ``first``: only the first that many by the term's weight (then nearest) are completed. With a
        ``basis``: the same statement reads the term statistics, and raises _Stale if they no longer give
        the basis's weights and bounds."""
        assert q.lat is not None and q.lng is not None and q.radius_m is not None
        cells = " OR ".join(["p.cell BETWEEN %s AND %s"] * len(ranges))
        cell_args = [x for r in ranges for x in r]
        distance = _distance_sql("p")
        parts, args = [], []
        for t, trs in tiers.items():
            others = [u for u in probe if u != t]
            added = "".join(f" + COALESCE(n{k}.weight, 0) * %s" for k in range(len(others)))
            # One lookup per other term, whatever its tier (a listing has one posting per term).
            joins = "".join(f" LEFT JOIN search_postings n{k} FORCE INDEX (ix_search_postings_probe)"
                            f" ON n{k}.term = %s AND n{k}.cell = p.cell AND n{k}.item_id = p.item_id"
                            for k in range(len(others)))
            where = (f"p.term = %s AND p.tier IN ({', '.join(['%s'] * len(trs))}) AND p.weight >= %s"
                     f" AND ({cells}) AND {distance} <= %s")
            where_args = [t, *trs, max(least.get(t, 0), 0), *cell_args, q.lat, q.lat, q.lng, q.radius_m]
            # The primary key holds a list's postings in a circle as short ranges (the planner need not weigh
            # the lookup index for it).
            source, source_args, extra = "search_postings p FORCE INDEX (PRIMARY)", [], ""
            if first is not None:  # the term's best postings only, then their lookups
                edge = "OVER (ORDER BY s.weight, s.distance_m DESC)"
                source = (f"(SELECT s.*, COUNT(*) OVER () AS sample, FIRST_VALUE(s.weight) {edge} AS last_weight,"
                          f" FIRST_VALUE(s.distance_m) {edge} AS last_distance FROM ("
                          f"SELECT p.item_id, p.cell, p.weight, p.lat, p.lng, {distance} AS distance_m"
                          f" FROM {source} WHERE {where} ORDER BY p.weight DESC, distance_m LIMIT %s) s) p")
                source_args = [q.lat, q.lat, q.lng, *where_args, first]
                where, where_args = "TRUE", []
                extra = ", p.sample, p.last_weight, p.last_distance"
            parts.append(
                f"(SELECT {len(parts)} AS branch, p.item_id, p.weight * %s{added} AS score, p.weight,"
                f" {distance} AS distance_m{extra} FROM {source}{joins}"
                f" WHERE {where} ORDER BY score DESC, distance_m LIMIT %s)")
            args += [weights[t], *(weights[u] for u in others), q.lat, q.lat, q.lng, *source_args, *others,
                     *where_args, limit]
        branches = len(parts)
        if basis is not None:  # the statistics, in the same snapshot as the postings
            stats_parts, stats_args = _stats_sql(basis.keys, extra=3 if first is not None else 0)
            parts += stats_parts
            args += stats_args
        rows = await self._db.fetchall(" UNION ALL ".join(parts), tuple(args))
        if basis is not None:
            stats = self._keep(basis.keys, rows)
            if _weigh(q, basis.keys, stats) != (basis.weights, basis.tops):
                raise _Stale(stats)
            rows = [r for r in rows if r["branch"] >= 0]
        found = [_Found(int(r["item_id"]), int(r["score"]), int(r["weight"]), float(r["distance_m"]),
                        int(r.get("sample") or 0), int(r.get("last_weight") or 0), float(r.get("last_distance") or 0))
                 for r in rows]
        for branch in range(branches if want else 0):
            mine = [x for x, r in zip(found, rows) if r["branch"] == branch]
            if len(mine) == limit and (mine[-1].score, mine[-1].distance_m) == (mine[want - 1].score,
                                                                              mine[want - 1].distance_m):
                return None  # a tie reaching past the cut: what lies beyond may belong on the page
        return found

    async def _settle_ties(self, ranked: list[_Found], want: int) -> list[_Found]:
        """Listings equal in score and distance (the same place) are ordered newest first, then by rating."""
        edge = ranked[: want + 1]
        shared = {(a.score, a.distance_m) for a, b in itertools.pairwise(edge)
                  if (a.score, a.distance_m) == (b.score, b.distance_m)}
        tied = {x.item_id for x in ranked if (x.score, x.distance_m) in shared}
        if tied:
            rows = await self._db.fetchall(
                f"SELECT item_id, created_at, owner_rating FROM search_docs WHERE item_id IN"
                f" ({', '.join(['%s'] * len(tied))})", tuple(tied))
            extra = {int(r["item_id"]): (r["created_at"], r["owner_rating"]) for r in rows}
            ranked = sorted(ranked, key=functools.cmp_to_key(lambda a, b: _order(a, b, extra)))
        return ranked[:want]

    # -- completion, "did you mean" ----------------------------------------------------------------------

    async def complete(self, prefix: str, limit: int = 8) -> list[str]:
        raw = korean.normalize(prefix).strip()
        if not raw:
            return []
        # The last word is still being typed: match it as a prefix of the stored words, as typed (not
        # analysed: "캠" is the start of 캠핑, not the word 캠), and the words before it whole.
        last = raw.split()[-1]
        last = "".join(ch for ch in last if ch.isalnum() and not 0x3131 <= ord(ch) <= 0x318E)  # no lone jamo
        if not last:
            return []
        head = korean.query_terms(" ".join(raw.split()[:-1]))
        query = " ".join(f"+{token(t)}" for t in head) + f" +{token(last)}*"
        rows = await self._db.fetchall(
            "SELECT title, MATCH (title_terms) AGAINST (%s IN BOOLEAN MODE) AS score FROM search_docs"
            " WHERE MATCH (title_terms) AGAINST (%s IN BOOLEAN MODE) AND status = 'available'"
            " ORDER BY score DESC, created_at DESC LIMIT 200", (query, query))
        rows += await self._db.fetchall(
            "SELECT title, 0 AS score FROM search_docs WHERE title LIKE %s AND status = 'available'"
            " ORDER BY title LIMIT 50", (_like_prefix(raw),))
        out: list[str] = []
        for r in sorted(rows, key=lambda r: (not r["title"].lower().startswith(raw), -float(r["score"]))):
            if r["title"] not in out:
                out.append(r["title"])
            if len(out) >= limit:
                break
        return out

    async def vocabulary(self, terms: Sequence[str]) -> dict[str, int]:
        if not terms:
            return {}
        rows = await self._db.fetchall(
            f"SELECT term, df FROM search_vocab WHERE term IN ({', '.join(['%s'] * len(terms))})", tuple(terms))
        have = {r["term"]: int(r["df"]) for r in rows}
        return {t: have.get(t, 0) for t in terms}

    async def near_terms(self, term: str) -> list[tuple[str, int]]:
        if not term or len(term) > 40:
            return []
        n = len(term)
        rows = await self._db.fetchall(
            "SELECT term, df FROM search_vocab WHERE df > 0 AND CHAR_LENGTH(term) BETWEEN %s AND %s"
            " AND (term LIKE %s OR term LIKE %s) ORDER BY df DESC LIMIT 2000",
            (max(1, n - 1), n + 1, _like_prefix(term[0]), "%" + _like_escape(term[-1])))
        return [(r["term"], int(r["df"])) for r in rows]


@dataclass(frozen=True, slots=True)
class _Stored:
    """What the index holds of a listing, enough to take back its postings and counts."""

    item_id: int
    title: list[str]  # tokens
    body: list[str]
    related: list[str]
    cell: int

    def words(self) -> set[str]:
        return {w for w in (untoken(t) for t in self.title + self.body) if w}

    def keys(self) -> set[str]:
        return {k for k in (_key_of_token(t) for t in self.title + self.body + self.related) if k}

    def postings(self) -> list[tuple[str, int, int, int]]:
        title = {k for k in (_key_of_token(t) for t in self.title) if k}
        return [(k, 1 if k in title else 0, self.cell, self.item_id) for k in sorted(self.keys())]


STATS_COUNT = -1000  # the row of ``_stats_sql`` that holds the listing count


def _stats_sql(keys: Iterable[str], extra: int = 0) -> tuple[list[str], list[Any]]:
    """Statements (to join with UNION ALL) reading the terms' statistics in the columns of a search's rows:
    branch = -(the term's place in ``keys``, from 1), item_id = listings with it, score = top1, weight = top0;
    and the listing count in the row of branch STATS_COUNT. ``extra`` more columns, NULL."""
    keys = list(keys)
    marks, blank = ", ".join(["%s"] * len(keys)), ", NULL" * extra
    terms = (f"(SELECT -FIELD(term, {marks}) AS branch, docs AS item_id, top1 AS score, top0 AS weight,"
             f" NULL AS distance_m{blank} FROM search_terms WHERE term IN ({marks}))")
    count = f"(SELECT {STATS_COUNT}, docs, 0, 0, NULL{blank} FROM search_stats WHERE id = 1)"
    return [terms, count], [*keys, *keys]


def _weigh(q: SearchQuery, keys: Mapping[str, str], stats: _Stats
           ) -> tuple[dict[str, int], dict[tuple[str, int], int]]:
    """Each query term key that listings have → its worth per half point of posting weight (boost × idf² ×
    1000, whole); and each (term, tier) → the largest posting weight that list has ever held."""
    total = stats.get(None, (0, 0, 0))[0]
    weights, tops = {}, {}
    for k, term in keys.items():
        docs, top1, top0 = stats.get(k, (0, 0, 0))
        if docs <= 0:
            continue
        idf = math.log10(1 + max(total, docs) / docs)
        weights[k] = max(1, round(1000 * (HEAD_BOOST if term in q.head else 1.0) * idf * idf))
        tops[(k, 1)], tops[(k, 0)] = top1, top0
    return weights, tops


def _narrowed(q: SearchQuery) -> bool:
    """Whether the query filters on more than place (the postings carry no price, category or dates)."""
    return (q.category_id is not None or q.conditions is not None or set(q.statuses) != set(PUBLIC_STATUSES)
            or any(x is not None for x in (q.price_min, q.price_max, q.deposit_min, q.deposit_max,
                                           q.available_from, q.available_until)))


def _cut(found: list[_Found], want: int) -> tuple[int, float]:
    """(score, distance) of the ``want``-th best found so far — the page's last hit can only be better.
    (0, ∞) while fewer were found."""
    if len(found) < want:
        return 0, math.inf
    last = sorted(found, key=lambda x: (-x.score, x.distance_m))[want - 1]
    return last.score, last.distance_m


def _order(a: _Found, b: _Found, extra: Mapping[int, tuple[Any, Any]]) -> int:
    """Score, then distance, then (for listings at one place) newest, best rated, highest id first."""
    ka, kb = (-a.score, a.distance_m), (-b.score, b.distance_m)
    if ka != kb:
        return -1 if ka < kb else 1
    (ca, ra), (cb, rb) = extra.get(a.item_id, (None, None)), extra.get(b.item_id, (None, None))
    for x, y in ((ca, cb), (ra, rb), (a.item_id, b.item_id)):
        if x != y:
            if x is None or (y is not None and x < y):
                return 1
            return -1
    return 0


def _tokens(terms: list[str]) -> str:
    return " ".join(token(t) for t in terms)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like_prefix(text: str) -> str:
    return _like_escape(text) + "%"


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
