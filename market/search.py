"""Keyword search: one interface, two backends (embedded MariaDB FULLTEXT, Elasticsearch).

- ``SearchQuery.parse`` reads untrusted input (text, optional point and radius, the nearby filters, paging).
- ``SearchDoc`` is what the index holds for one item: analysed terms plus the filter fields.
- A backend indexes and removes documents, searches, completes title prefixes and suggests a spelling.
- ``EmbeddedSearch`` keeps the documents in MariaDB: terms in FULLTEXT indexes, one SQL statement per search
  matching text, map cells, category, price, availability and the exact radius together.

Ranking (both backends): text relevance first — a title match weighs more than a description match, which
weighs more than a broader term or the category — then distance, freshness and the owner's rating break
ties. A query none of whose terms any listing has returns nothing.
"""

from __future__ import annotations

import base64
import functools
import binascii
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from market import filters as f
from market import korean
from market import validation as v
from market.categories import Categories
from market.db import Database
from market.errors import InvalidInput
from market.geo import PUBLIC_STATUSES, bounding_box, filters_for, read_filters

MAX_QUERY_CHARS = 200
MAX_QUERY_TERMS = 12
MAX_OFFSET = 500
# Weights of where a term was found.
TITLE_WEIGHT, BODY_WEIGHT, RELATED_WEIGHT = 3.0, 1.0, 0.5
# The map cells (for narrowing a radius search inside the FULLTEXT index): 0.05° of latitude (~5.6 km) by
# 0.05° of longitude (~4.4 km in Korea). A radius needing more cells than this is checked by distance only.
CELL_DEG = 0.05
MAX_CELLS = 64


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
    """A term as stored in the FULLTEXT index: a letter, then its UTF-8 in hex (a hash when very long).

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


def cell(lat: float, lng: float) -> str:
    return f"g{math.floor(lat / CELL_DEG)}x{math.floor(lng / CELL_DEG)}".replace("-", "m")


def cells_around(lat: float, lng: float, radius_m: float) -> list[str] | None:
    min_lng, min_lat, max_lng, max_lat = bounding_box(lat, lng, radius_m)
    rows = range(math.floor(min_lat / CELL_DEG), math.floor(max_lat / CELL_DEG) + 1)
    cols = range(math.floor(min_lng / CELL_DEG), math.floor(max_lng / CELL_DEG) + 1)
    if len(rows) * len(cols) > MAX_CELLS:
        return None
    return [f"g{r}x{c}".replace("-", "m") for r in rows for c in cols]


def category_token(category_id: int) -> str:
    # At least InnoDB's minimum token length (3) even for category 1.
    return f"cat{category_id}"


class EmbeddedSearch:
    """Search documents in MariaDB (table ``search_docs``), ranked by InnoDB's FULLTEXT relevance."""

    name = "embedded"

    def __init__(self, db: Database, categories: Categories | None = None) -> None:
        self._db = db
        self._categories = categories

    async def index(self, docs: Sequence[SearchDoc]) -> None:
        if not docs:
            return
        # REPLACE gives a changed document a new FULLTEXT doc id (InnoDB's rule for user-kept FTS_DOC_ID).
        rows: list[Any] = []
        for d in docs:
            match = [token(t) for t in d.title_terms + d.body_terms + d.related_terms]
            match += [cell(d.lat, d.lng)] + [category_token(c) for c in d.cat_ids]
            rows += [d.item_id, " ".join(match), _tokens(d.title_terms), _tokens(d.body_terms),
                     _tokens(d.related_terms), d.title[:60], f"POINT({d.lng:.7f} {d.lat:.7f})", *d.cat_ids,
                     d.price_per_day, d.deposit, d.condition, d.available_from, d.available_until, d.status,
                     d.owner_rating, d.created_at]
        vocab_changes = await self._vocab_delta(docs)
        async with self._db.transaction() as cur:
            await cur.execute(
                "REPLACE INTO search_docs (item_id, match_terms, title_terms, body_terms, related_terms, title,"
                " location, cat1_id, cat2_id, cat3_id, price_per_day, deposit, item_condition, available_from,"
                " available_until, status, owner_rating, created_at) VALUES "
                + ", ".join(["(%s, %s, %s, %s, %s, %s, ST_GeomFromText(%s, 4326), %s, %s, %s, %s, %s, %s, %s, %s,"
                             " %s, %s, %s)"] * len(docs)), tuple(rows))
            await self._apply_vocab(cur, vocab_changes)

    async def _vocab_delta(self, docs: Sequence[SearchDoc]) -> dict[str, int]:
        """+1 for each term a document gains, -1 for each it loses (the vocabulary counts listings)."""
        old = await self._stored_terms([d.item_id for d in docs])
        delta: dict[str, int] = {}
        for d in docs:
            new = set(d.title_terms) | set(d.body_terms)
            before = old.get(d.item_id, set())
            for t in new - before:
                delta[t] = delta.get(t, 0) + 1
            for t in before - new:
                delta[t] = delta.get(t, 0) - 1
        return delta

    async def _stored_terms(self, item_ids: Sequence[int]) -> dict[int, set[str]]:
        if not item_ids:
            return {}
        rows = await self._db.fetchall(
            f"SELECT item_id, title_terms, body_terms FROM search_docs WHERE item_id IN"
            f" ({', '.join(['%s'] * len(item_ids))})", tuple(item_ids))
        out: dict[int, set[str]] = {}
        for r in rows:
            terms = {untoken(t) for t in (r["title_terms"] + " " + r["body_terms"]).split()}
            out[int(r["item_id"])] = {t for t in terms if t}
        return out

    @staticmethod
    async def _apply_vocab(cur: Any, delta: dict[str, int]) -> None:
        changes = sorted((t, n) for t, n in delta.items() if n and len(t) <= 40)
        if not changes:
            return
        await cur.execute(
            "INSERT INTO search_vocab (term, df) VALUES " + ", ".join(["(%s, %s)"] * len(changes))
            + " ON DUPLICATE KEY UPDATE df = df + VALUES(df)",
            tuple(x for change in changes for x in change))

    async def remove(self, item_ids: Sequence[int]) -> None:
        if not item_ids:
            return
        old = await self._stored_terms(item_ids)
        delta: dict[str, int] = {}
        for terms in old.values():
            for t in terms:
                delta[t] = delta.get(t, 0) - 1
        async with self._db.transaction() as cur:
            await cur.execute(f"DELETE FROM search_docs WHERE item_id IN ({', '.join(['%s'] * len(item_ids))})",
                              tuple(item_ids))
            await self._apply_vocab(cur, delta)

    async def search(self, q: SearchQuery) -> SearchPage:
        if not q.terms:
            return SearchPage([], None)
        words = " ".join(token(t) for t in q.terms)
        must = f"+({words})"
        # Korean puts the head of a phrase last (휴대용 유모차, 캠핑 랜턴): a listing with it ranks first.
        ranked = " ".join((">" if t in q.head else "") + token(t) for t in q.terms)
        conds = [filters_for(q, self._categories)]  # type: ignore[arg-type]
        if q.category_id is not None:
            must += f" +{category_token(q.category_id)}"
        distance_sql, distance_args = "NULL", ()
        if q.lat is not None and q.lng is not None and q.radius_m is not None:
            cells = cells_around(q.lat, q.lng, q.radius_m)
            if cells:
                must += f" +({' '.join(cells)})"
            distance_sql, distance_args = "ST_Distance_Sphere(i.location, POINT(%s, %s))", (q.lng, q.lat)
            conds.append(f.Cond("ST_Distance_Sphere(i.location, POINT(%s, %s)) <= %s", (q.lng, q.lat, q.radius_m)))
        where = f.Cond("MATCH (i.match_terms) AGAINST (%s IN BOOLEAN MODE)", (must,)) & f.all_of(conds)
        where_sql, where_args = f.where(where)
        rows = await self._db.fetchall(
            # LEAST: InnoDB's relevance is infinite while its row-count estimate is 0 (a table just emptied
            # and refilled); capping it keeps the arithmetic finite.
            "SELECT i.item_id, ROUND(%s * LEAST(MATCH (i.title_terms) AGAINST (%s IN BOOLEAN MODE), 1e6)"
            " + %s * LEAST(MATCH (i.body_terms) AGAINST (%s IN BOOLEAN MODE), 1e6)"
            " + %s * LEAST(MATCH (i.related_terms) AGAINST (%s IN BOOLEAN MODE), 1e6), 4) AS score,"
            f" {distance_sql} AS distance_m"
            f" FROM search_docs i {where_sql}"
            " ORDER BY score DESC, distance_m, i.created_at DESC, i.owner_rating DESC, i.item_id DESC"
            " LIMIT %s, %s",
            (TITLE_WEIGHT, ranked, BODY_WEIGHT, ranked, RELATED_WEIGHT, words, *distance_args, *where_args,
             q.offset, q.limit + 1))
        hits = [SearchHit(int(r["item_id"]), float(r["score"]),
                          None if r["distance_m"] is None else float(r["distance_m"])) for r in rows]
        more = len(hits) > q.limit and q.offset + q.limit < MAX_OFFSET
        return SearchPage(hits[: q.limit], encode_offset(q.offset + q.limit) if more else None)

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

    async def clear(self) -> None:
        await self._db.execute("DELETE FROM search_docs")
        await self._db.execute("DELETE FROM search_vocab")

    async def refresh(self) -> None:
        """Nothing to do: a committed document is searchable."""


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
