"""The embedded backend: search documents and their postings in MariaDB, ranked by our own weights.

A search near a point reads only the postings inside its circle, the most valuable lists first (MaxScore).
It never analyses listing text: documents come analysed (``SearchDoc``).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import math
import multiprocessing
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

from market import filters as f
from market.categories import Categories
from market.db import Database
from market.geo import PUBLIC_STATUSES, filters_for
from market.search import korean
from market.search.cells import _distance_sql, cell_of, cells_sql
from market.search.documents import FILTERS_JOIN, SearchDoc
from market.search.feedback import FEEDBACK_DOCS, FeedbackDoc, feedback_terms, shared_words
from market.search.filler import SMALL_CIRCLE_M, best_by_one_word, best_by_one_word_whole, left_out_sql
from market.search.nationwide import best_anywhere
from market.search.postings import key_of_token, keys_of_tokens, postings_of, term_key, token, untoken
from market.search.query import MAX_OFFSET, SearchHit, SearchPage, SearchQuery, encode_offset
from market.search.related import MIN_PAIR, listing_pairs, related_terms, similar_words_of_rows
from market.search.spelling import SPELLER_WORDS, Speller, corrected_text, has_lone_jamo

# The head noun of the query (its last noun: 휴대용 *유모차*) counts this many times.
HEAD_BOOST = 1.5
# A narrow search's second pass searches at most this many words (related, then its best hits' words).
SECOND_PASS_TERMS = 5
# A bigram of a query word the analyser may have misread counts this much of a term as rare.
GRAM_BOOST = 0.3
# Terms whose statistics a process keeps between searches (about 200 bytes each).
STATS_KEPT = 50_000
# How long a process trusts its copy of the index's words (its own writes reach it at once; another process's
# after this).
SPELLER_TTL_S = 60.0
# A narrow search's second pass keeps, for this long, the words of the listings it read, the companions of the
# words it looked up and the statistics of the words it weighed (this process's own writes drop them at once).
SECOND_PASS_TTL_S = 60.0
# The most pairs read for a search's words.
PAIRS_READ = 300
# Similar words are learned from this many of the newest listings, again every SIMILAR_REFRESH_S by the node that
# takes the turn (each node asks every SIMILAR_CHECK_S), and at once after a rebuild.
SIMILAR_SAMPLE = 10_000
SIMILAR_REFRESH_S = 3600
SIMILAR_CHECK_S = 60.0


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
    # Read with it when the statement was asked for the page's rows (``columns``): its row of those columns if it
    # could be on the page (None: not read, or the listing is gone), and its document's (created_at, owner_rating)
    # for ordering ties (``_settle_ties``) if another listing found shares its score and distance (None: not read).
    row: dict[str, Any] | None = None
    tie: tuple[Any, Any] | None = None
    # Read with it in a small circle (where a page is often short and filled by a second pass), for one of the
    # statement's best FEEDBACK_DOCS: its document's title, description and related terms, as stored (tokens).
    words: tuple[str, str, str] | None = None


class EmbeddedSearch:
    """Search documents and their postings in MariaDB (see migration 0007), ranked by our own weights.

    A listing's score is Σ over the query's terms of (weight of the term in the listing) × (the term's
    rarity, idf² with idf = log10(1 + N / listings with the term)), the head noun counting 1.5 times; all in
    whole numbers. Near a point, the best page is found without reading every posting in the circle: the
    postings of one term in one tier form a list whose best possible contribution is known in advance. The
    most valuable list's best listings, completed by key lookups, give a floor for the page's last score;
    then only the lists, and in them only the postings, that could reach the floor are read, and every
    listing found is completed by lookups (the MaxScore strategy); filters other than place are checked on each
    posting's document as it is read. Without a point, each list is read best first in chunks until no listing
    left unread can reach the page (``nationwide``); when a tie runs past what was read near a point, or with the
    early stop off, the plain query reads every posting."""

    name = "embedded"

    def __init__(self, db: Database, categories: Categories | None = None, *, early_stop: bool = True,
                 feedback: bool = True) -> None:
        self._db = db
        self._categories = categories
        self._early_stop = early_stop
        self._feedback = feedback  # fill a narrow search's page with listings like its best hits
        # How many reading rounds each search near a point took (0: it read every posting in the circle).
        self.rounds: Counter[int] = Counter()
        # The term statistics last read, so that a search near a point need not read them before its postings:
        # each of its statements reads them again, and a search whose weights or bounds they change starts
        # over from them.
        self._stats: _Stats = {}
        # The index's words, for correcting a query word one keystroke off; rebuilt when this process changed
        # the index, or after SPELLER_TTL_S (another process may have).
        self._speller: Speller | None = None
        self._speller_at = -math.inf
        self._speller_lock = asyncio.Lock()
        # What a narrow search's second pass read: a listing's words; a word's companions (see SECOND_PASS_TTL_S).
        self._words: _Kept[int, FeedbackDoc] = _Kept(20_000)
        self._companions: _Kept[str, list[tuple[str, str, int]]] = _Kept(2_000)
        self._similar: _Kept[str, list[str]] = _Kept(2_000)  # a word's similar words
        self._similar_due = False  # the index was rebuilt: learn them at the next refresh, whoever's turn it is
        self._similar_checked = -math.inf
        self._holder = f"similar-{uuid.uuid4().hex[:12]}"
        self._weighed: _Kept[str | None, tuple[int, int, int]] = _Kept(20_000)  # a word's statistics
        self._generation = 0  # how many times this process changed the index

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
                     _tokens(list(dict.fromkeys(d.title_grams + d.body_grams))), d.title[:60], f"POINT({lng:.7f} {lat:.7f})", c, *d.cat_ids, d.price_per_day, d.deposit,
                     d.condition, d.available_from, d.available_until, d.status, d.owner_rating, d.created_at]
            mine = postings_of(d)
            postings += [(key, tier, c, d.item_id, weight, lat, lng) for key, (tier, weight) in mine.items()]
            new[d.item_id] = (set(d.title_terms) | set(d.body_terms), set(mine))
        vocab, terms = self._deltas(old, new)
        pairs: Counter[tuple[str, str]] = Counter()
        for d in docs:
            now = listing_pairs([term_key(t) for t in d.title_terms + d.related_terms])
            before = old[d.item_id].pairs() if d.item_id in old else set()
            pairs.update(now - before)
            pairs.subtract(before - now)
        tops: dict[str, list[int]] = {}
        for key, tier, *_, weight, _lat, _lng in postings:
            top = tops.setdefault(key, [0, 0])
            top[1 - tier] = max(top[1 - tier], weight)
        async with self._db.transaction() as cur:
            # REPLACE gives a changed document a new FULLTEXT doc id (InnoDB's rule for user-kept FTS_DOC_ID).
            await cur.execute(
                "REPLACE INTO search_docs (item_id, title_terms, body_terms, related_terms, gram_terms, title, location, cell,"
                " cat1_id, cat2_id, cat3_id, price_per_day, deposit, item_condition, available_from,"
                " available_until, status, owner_rating, created_at) VALUES "
                + ", ".join(["(%s, %s, %s, %s, %s, %s, ST_GeomFromText(%s, 4326), %s, %s, %s, %s, %s, %s, %s, %s,"
                             " %s, %s, %s, %s)"] * len(docs)), tuple(rows))
            bands = Counter((key, tier, weight) for key, tier, _c, _i, weight, _lat, _lng in postings)
            await self._delete_postings(cur, [p for s in old.values() for p in s.postings()], bands)
            await self._apply_bands(cur, bands)
            for i in range(0, len(postings), 2000):
                chunk = postings[i:i + 2000]
                await cur.execute(
                    "INSERT INTO search_postings (term, tier, cell, item_id, weight, lat, lng) VALUES "
                    + ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(chunk)), tuple(x for p in chunk for x in p))
            await self._apply_counts(cur, vocab, terms, len(docs) - len(old), tops)
            await self._apply_pairs(cur, pairs)
        self._forget()
        if self._speller is not None:  # the words these listings brought, correctable at once in this process
            self._speller.add(t for t, n in terms.items() if n > 0 and not t.startswith(korean.GRAM_MARK))

    async def remove(self, item_ids: Sequence[int]) -> None:
        if not item_ids:
            return
        old = await self._stored(item_ids)
        if not old:
            return
        vocab, terms = self._deltas(old, {})
        pairs: Counter[tuple[str, str]] = Counter()
        for s in old.values():
            pairs.subtract(s.pairs())
        async with self._db.transaction() as cur:
            await cur.execute(f"DELETE FROM search_docs WHERE item_id IN ({', '.join(['%s'] * len(old))})",
                              tuple(old))
            bands: Counter[tuple[str, int, int]] = Counter()
            await self._delete_postings(cur, [p for s in old.values() for p in s.postings()], bands)
            await self._apply_bands(cur, bands)
            await self._apply_counts(cur, vocab, terms, -len(old), {})
            await self._apply_pairs(cur, pairs)
        self._forget()

    async def _stored(self, item_ids: Sequence[int]) -> dict[int, _Stored]:
        if not item_ids:
            return {}
        rows = await self._db.fetchall(
            f"SELECT item_id, title_terms, body_terms, related_terms, gram_terms, cell FROM search_docs WHERE item_id"
            f" IN ({', '.join(['%s'] * len(item_ids))})", tuple(item_ids))
        return {int(r["item_id"]): _Stored(int(r["item_id"]), r["title_terms"].split(), r["body_terms"].split(),
                                           r["related_terms"].split(), int(r["cell"]), r["gram_terms"].split())
                for r in rows}

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
    async def _delete_postings(cur: Any, keys: list[tuple[str, int, int, int]], bands: Counter[tuple[str, int, int]]
                               ) -> None:
        """Deletes the postings; each one's (term, tier, weight) band counts one less in ``bands``."""
        # Whole primary keys, OR-ed: point lookups, whatever the table's size.
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            await cur.execute(
                "DELETE FROM search_postings WHERE "
                + " OR ".join(["(term = %s AND tier = %s AND cell = %s AND item_id = %s)"] * len(chunk))
                + " RETURNING term, tier, weight", tuple(x for k in chunk for x in k))
            bands.subtract((str(r["term"]), int(r["tier"]), int(r["weight"])) for r in await cur.fetchall())

    @staticmethod
    async def _apply_bands(cur: Any, bands: Counter[tuple[str, int, int]]) -> None:
        changes = sorted((*k, n) for k, n in bands.items() if n)
        for i in range(0, len(changes), 2000):
            chunk = changes[i:i + 2000]
            await cur.execute("INSERT INTO search_bands (term, tier, weight, docs) VALUES "
                              + ", ".join(["(%s, %s, %s, %s)"] * len(chunk))
                              + " ON DUPLICATE KEY UPDATE docs = docs + VALUES(docs)", tuple(x for c in chunk for x in c))

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

    @staticmethod
    async def _apply_pairs(cur: Any, pairs: Counter[tuple[str, str]]) -> None:
        changes = sorted((a, b, n) for (a, b), n in pairs.items() if n)
        for i in range(0, len(changes), 2000):
            chunk = changes[i:i + 2000]
            await cur.execute("INSERT INTO search_pairs (a, b, n) VALUES " + ", ".join(["(%s, %s, %s)"] * len(chunk))
                              + " ON DUPLICATE KEY UPDATE n = n + VALUES(n)", tuple(x for c in chunk for x in c))

    async def related(self, keys: Sequence[str]) -> list[str]:
        """Words the listings use with these (their companions in titles and categories), best first."""
        if not keys:
            return []
        pairs = await self._pairs(keys)
        if not pairs:
            return []
        stats = await self._read_stats({k: k for k in {*keys, *(b for _, b, _ in pairs)}})
        listings = {k: v[0] for k, v in stats.items() if k is not None}
        return related_terms(pairs, listings, stats.get(None, (0, 0, 0))[0], exclude=keys)

    def _forget(self) -> None:
        """Drops what the second pass kept: this process changed the index (a read under way keeps nothing)."""
        self._words.clear()
        self._companions.clear()
        self._weighed.clear()
        self._generation += 1

    async def _hit_words(self, hits: Sequence[_Found]) -> list[FeedbackDoc]:
        """The listings' words, by where they stand (read with the hits, kept from a read of the last
        SECOND_PASS_TTL_S, or read now)."""
        item_ids = [x.item_id for x in hits]
        kept = {x.item_id: _feedback_doc(*x.words) for x in hits if x.words is not None}
        kept.update({i: d for i in item_ids if i not in kept and (d := self._words.get(i)) is not None})
        missing = [i for i in item_ids if i not in kept]
        if missing:
            generation = self._generation
            rows = await self._db.fetchall(
                f"SELECT item_id, title_terms, body_terms, related_terms FROM search_docs WHERE item_id IN"
                f" ({', '.join(['%s'] * len(missing))})", tuple(missing))
            for r in rows:
                kept[int(r["item_id"])] = doc = _feedback_doc(r["title_terms"], r["body_terms"], r["related_terms"])
                if generation == self._generation:
                    self._words.put(int(r["item_id"]), doc)
        return [kept[i] for i in item_ids if i in kept]

    async def _word_stats(self, keys: Mapping[str, str]) -> _Stats:
        """``_read_stats`` of the words a second pass weighs, kept from a read of the last SECOND_PASS_TTL_S."""
        kept: _Stats = {k: v for k in (*keys, None) if (v := self._weighed.get(k)) is not None}
        missing = {k: t for k, t in keys.items() if k not in kept}
        if missing or None not in kept:
            generation = self._generation
            read = await self._read_stats(missing)
            for k, v in read.items():
                kept[k] = v
                if generation == self._generation:
                    self._weighed.put(k, v)
        return kept

    async def _kept_pairs(self, keys: Sequence[str]) -> list[tuple[str, str, int]]:
        """``_pairs`` of the words: each word's own first PAIRS_READ (kept from a read of the last
        SECOND_PASS_TTL_S), the most frequent PAIRS_READ of them all (among which the words' first PAIRS_READ)."""
        kept = {k: p for k in keys if (p := self._companions.get(k)) is not None}
        missing = list(dict.fromkeys(k for k in keys if k not in kept))
        if missing:
            generation = self._generation
            # Each word's list cut on its own, so that it can be kept (a common word has more than PAIRS_READ).
            marks = "SELECT a, b, n FROM search_pairs WHERE a = %s AND n >= %s ORDER BY n DESC, b LIMIT %s"
            rows = await self._db.fetchall(" UNION ALL ".join([f"({marks})"] * len(missing)),
                                           tuple(x for k in missing for x in (k, MIN_PAIR, PAIRS_READ)))
            for k in missing:
                kept[k] = [(str(r["a"]), str(r["b"]), int(r["n"])) for r in rows if str(r["a"]) == k]
                if generation == self._generation:
                    self._companions.put(k, kept[k])
        # Ties at the cut go by the words themselves, not by the order of the query's words.
        return sorted((r for k in dict.fromkeys(keys) for r in kept[k]), key=lambda r: (-r[2], r[0], r[1]))[:PAIRS_READ]

    async def _pairs(self, keys: Sequence[str]) -> list[tuple[str, str, int]]:
        """The most frequent pairs of these words with others (see market/search/related.py)."""
        if not keys:
            return []
        rows = await self._db.fetchall(
            f"SELECT a, b, n FROM search_pairs WHERE a IN ({', '.join(['%s'] * len(keys))}) AND n >= %s"
            " ORDER BY n DESC, a, b LIMIT %s", (*keys, MIN_PAIR, PAIRS_READ))
        return [(str(r["a"]), str(r["b"]), int(r["n"])) for r in rows]

    async def clear(self) -> None:
        self._speller = None
        self._similar_due = True  # (learnt again from what is indexed next, at the refresh ending the rebuild)
        self._similar_checked = -math.inf
        self._forget()
        big = await self._db.fetchval("SELECT COUNT(*) FROM (SELECT 1 FROM search_postings LIMIT 10001) x")
        for table in ("search_docs", "search_postings", "search_vocab", "search_terms", "search_pairs", "search_bands",
                      "search_similar"):
            # TRUNCATE drops a big table at once; a small one is quicker to empty row by row.
            await self._db.execute(f"{'TRUNCATE TABLE' if int(big) > 10_000 else 'DELETE FROM'} {table}")
        await self._db.execute("REPLACE INTO search_stats (id, docs) VALUES (1, 0)")

    async def refresh(self) -> None:
        """A committed document is searchable at once; the similar words are learnt again when due: after a
        rebuild, else every SIMILAR_REFRESH_S by the node whose turn it is (each node asks every SIMILAR_CHECK_S;
        a learning that failed is tried again then)."""
        now = time.monotonic()
        if now - self._similar_checked < SIMILAR_CHECK_S:
            return
        self._similar_checked = now
        if not await self._similar_turn(taken=self._similar_due):
            return
        try:
            await self.learn_similar(own_turn=True)
        except BaseException:  # the turn is given back: this node or another tries again within SIMILAR_CHECK_S
            await self._db.execute("UPDATE leases SET expires_at = NOW(3) - INTERVAL 1 SECOND"
                                   " WHERE name = 'search_similar' AND holder = %s", (self._holder,))
            raise
        self._similar_due = False

    async def _similar_turn(self, *, taken: bool) -> bool:
        """Whether this node learns the similar words now: the turn is free (never taken, or SIMILAR_REFRESH_S
        past), or ``taken`` (a rebuild: taken whoever had it). The turn then lasts SIMILAR_REFRESH_S."""
        if taken:
            await self._db.execute(
                "REPLACE INTO leases (name, holder, expires_at) VALUES ('search_similar', %s,"
                " NOW(3) + INTERVAL %s SECOND)", (self._holder, SIMILAR_REFRESH_S))
            return True
        return bool(await self._db.execute(
            "INSERT INTO leases (name, holder, expires_at) VALUES ('search_similar', %s, NOW(3) + INTERVAL %s SECOND)"
            " ON DUPLICATE KEY UPDATE holder = IF(expires_at < NOW(3), VALUES(holder), holder),"
            " expires_at = IF(expires_at < NOW(3), VALUES(expires_at), expires_at)", (self._holder, SIMILAR_REFRESH_S)))

    async def learn_similar(self, *, own_turn: bool = False) -> int:
        """Learn the similar words from the newest SIMILAR_SAMPLE listings' words (title and description), in a
        worker process of its own (seconds of counting that would hold this process's interpreter), and put them
        in place of the last ones; returns how many words have some. With ``own_turn`` they are put in place only
        while the turn is still this node's (a rebuild that took it meanwhile learns from what it indexed)."""
        rows = await self._db.fetchall("SELECT title_terms, body_terms FROM search_docs ORDER BY item_id DESC"
                                       " LIMIT %s", (SIMILAR_SAMPLE,))
        pairs = [(str(r["title_terms"]), str(r["body_terms"])) for r in rows]
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as worker:
            learnt = await asyncio.get_running_loop().run_in_executor(worker, similar_words_of_rows, pairs)
        found = [(a, b, score) for a, alike in sorted(learnt.items()) for b, score in alike]
        async with self._db.transaction() as cur:
            if own_turn:
                await cur.execute("SELECT holder FROM leases WHERE name = 'search_similar' FOR UPDATE")
                turn = await cur.fetchone()
                if turn is None or turn["holder"] != self._holder:
                    return 0
            await cur.execute("DELETE FROM search_similar")
            for at in range(0, len(found), 1000):
                chunk = found[at:at + 1000]
                await cur.execute("INSERT INTO search_similar (term, similar, score) VALUES "
                                  + ", ".join(["(%s, %s, %s)"] * len(chunk)), tuple(x for row in chunk for x in row))
        self._similar.clear()
        self._generation += 1  # (a read of the old ones under way keeps nothing)
        return len(learnt)

    async def _kept_similar(self, keys: Sequence[str]) -> list[str]:
        """The words' similar words, best first (kept from a read of the last SECOND_PASS_TTL_S, or read now)."""
        kept = {k: s for k in keys if (s := self._similar.get(k)) is not None}
        missing = list(dict.fromkeys(k for k in keys if k not in kept))
        if missing:
            generation = self._generation
            rows = await self._db.fetchall(
                f"SELECT term, similar FROM search_similar WHERE term IN ({', '.join(['%s'] * len(missing))})"
                " ORDER BY term, score DESC, similar", tuple(missing))
            for k in missing:
                kept[k] = [str(r["similar"]) for r in rows if str(r["term"]) == k]
                if generation == self._generation:
                    self._similar.put(k, kept[k])
        return [s for k in keys for s in kept.get(k, [])]

    # -- searching ---------------------------------------------------------------------------------------

    async def search(self, q: SearchQuery, *, columns: str | None = None) -> SearchPage:
        """The page of hits for a query; a query with a word that cannot be right (a lone letter, or a term no
        listing has) is searched as corrected to the indexed words one keystroke away, and says so
        (``did_you_mean``). With ``columns`` (of items alias ``i``), a search near a point reads the rows of the
        hits that could be on its page in its own last statement (``SearchPage.rows``; the caller reads any
        other)."""
        fixed = await self._corrected(q)
        if fixed is None:
            return await self._search(q, columns)
        page = await self._search(fixed, columns)
        return SearchPage(page.hits, page.next_cursor, did_you_mean=fixed.text, rows=page.rows)

    async def _corrected(self, q: SearchQuery) -> SearchQuery | None:
        if not q.text:
            return None
        speller = await self.speller()
        if not has_lone_jamo(q.text) and all(t in speller.df for t in q.terms):
            return None
        # The speller may be behind the index (another process indexed since): trust the index's own counts. A
        # word the analyser may have misread is no typo when listings have every one of its bigrams (에어랩 in
        # 다이슨에어랩).
        grams = {t: korean.query_grams(t) if t in q.text else [] for t in q.terms}
        keys = {term_key(t): t for t in (*q.terms, *(g for gs in grams.values() for g in gs))}
        stats = await self._read_stats(keys) if keys else {}

        def has(t: str) -> bool:
            return stats.get(term_key(t), (0, 0, 0))[0] > 0
        known = {t for t in q.terms if has(t) or (grams[t] and all(has(g) for g in grams[t]))}
        text = corrected_text(speller, q.text, known)
        return q.with_text(text) if text else None

    async def speller(self) -> Speller:
        """The index's words, for spelling correction (rebuilt when stale)."""
        def stale() -> bool:
            return self._speller is None or time.monotonic() - self._speller_at > SPELLER_TTL_S

        if stale():
            async with self._speller_lock:
                if stale():
                    started = time.monotonic()
                    rows = await self._db.fetchall(
                        "SELECT term, docs FROM search_terms WHERE docs > 0 AND term NOT LIKE %s AND term NOT LIKE %s"
                        " ORDER BY docs DESC LIMIT %s", ("#%", korean.GRAM_MARK + "%", SPELLER_WORDS))
                    words = [(str(r["term"]), int(r["docs"])) for r in rows]
                    self._speller = await asyncio.to_thread(Speller, words, korean.aliases())
                    self._speller_at = started
        assert self._speller is not None
        return self._speller

    async def _search(self, q: SearchQuery, columns: str | None = None) -> SearchPage:
        want = q.offset + q.limit + 1
        if q.offset:
            # A later page's statement would carry every listing before it through the rows' windows (1.3-1.5x
            # the statement without them, measured): its cards are read after, by the caller.
            columns = None
        found = await self._found(q, want, columns)
        if 0 < len(found) < want and self._feedback:
            found += await self._more_like(q, found, want)
        page = found[q.offset:q.offset + q.limit]
        hits = [SearchHit(x.item_id, x.score / 2000, x.distance_m) for x in page]
        more = len(found) > q.offset + q.limit and q.offset + q.limit < MAX_OFFSET
        rows = None if columns is None else {x.item_id: x.row for x in page if x.row is not None}
        return SearchPage(hits, encode_offset(q.offset + q.limit) if more else None, rows=rows)

    async def _more_like(self, q: SearchQuery, found: list[_Found], want: int) -> list[_Found]:
        """A narrow search's page filled up, below every text match, with listings sharing the words of its best
        hits (pseudo-relevance feedback: the same kind of thing, the same category), same filters and place; ranked
        by each listing's best single word among them (market/search/filler.py: one statement)."""
        best = sorted(found, key=lambda x: (-x.score, x.distance_m))[:FEEDBACK_DOCS]
        own = [term_key(t) for t in q.terms]
        # The best hits' words and the query's words' companions at once (what this process read of them lately
        # is kept), then all their statistics in one read.
        docs, pairs, similar = await asyncio.gather(self._hit_words(best), self._kept_pairs(own),
                                                    self._kept_similar(own))
        # (only the words enough of the hits share can be chosen from them: the others' statistics are not read)
        shared = shared_words(docs)
        # The words that stand for the query's own come first: the halves of a compound (웨딩드레스: listings that
        # write 웨딩 드레스), then the words used instead of them (침낭: 슬리핑백).
        halves = [k for k in dict.fromkeys(term_key(h) for t in q.terms for h in korean.halves(t)) if k not in own]
        alike = [k for k in dict.fromkeys([*halves, *similar]) if k not in own]
        stats = await self._word_stats({t: t for t in (*own, *alike, *(b for _, b, _ in pairs), *shared)})
        listings = {k: v[0] for k, v in stats.items() if k is not None}
        total = stats.get(None, (0, 0, 0))[0]
        # Words listings use with the query's own, then the words its best hits share.
        terms = list(dict.fromkeys([*alike, *related_terms(pairs, listings, total, exclude=own),
                                    *feedback_terms(shared, listings, total, set(own))]))[:SECOND_PASS_TERMS]
        weights, _ = _weigh(replace(q, head=()), {t: t for t in terms}, stats)
        if not weights:
            return []
        place = (q.lat, q.lng, q.radius_m) if q.lat is not None and q.lng is not None and q.radius_m else None
        narrowed = filters_for(q, self._categories) if _narrowed(q) else None  # type: ignore[arg-type]
        read = best_by_one_word if self._early_stop else best_by_one_word_whole
        second = [_Found(item_id, score, 0, distance)  # type: ignore[arg-type]
                  for item_id, score, distance in await read(self._db, weights, want - len(found), place, narrowed,
                                                             tuple(sorted({*q.exclude, *(x.item_id for x in found)})))]
        if not second:
            return []
        # Below the last text match, in their own order.
        floor, top = min(x.score for x in found), max(x.score for x in second)
        for x in second:
            x.score = max(0, (floor - 1) * x.score // max(top, 1))
        return second

    async def _found(self, q: SearchQuery, want: int, columns: str | None = None) -> list[_Found]:
        """The first ``want`` listings for the query's terms (and bigrams), best first (near a point, with
        ``columns``: each with its row of them when it could be on the page)."""
        keys = {term_key(t): t for t in (*q.terms, *q.grams)}
        if not keys:
            return []
        near = q.lat is not None and q.lng is not None and q.radius_m is not None
        if not near and self._early_stop:  # nationwide: each list best first, planned by its weight bands
            # Its statements read one snapshot (a listing changed meanwhile must not move from the part of a list
            # not read yet to the part already read).
            async with self._db.transaction() as cur:
                snapshot = _Snapshot(cur)
                parts, args = _stats_sql(keys)
                bands_part, bands_args = _bands_sql(keys)
                rows = await snapshot.fetchall(" UNION ALL ".join([*parts, bands_part]), (*args, *bands_args))
                stats = self._keep(keys, rows)
                weights, tops = _weigh(q, keys, stats)
                if not weights:
                    return []
                order = list(keys)
                lists = [(int(r["branch"]), int(r["item_id"]), int(r["score"])) for r in rows if r["branch"] >= 0]
                bands = {(order[b // 2 - 1], b % 2, weight): n for b, weight, n in lists}
                narrowed = filters_for(q, self._categories) if _narrowed(q) else None  # type: ignore[arg-type]
                ranked = await best_anywhere(snapshot, weights, tops, want, narrowed, bands, q.exclude)
                if ranked is None:  # reading best first would read most of the lists: read them whole
                    return await self._best(q, weights, want, snapshot)
            return [_Found(item_id, score, 0, None) for item_id, score in ranked]  # type: ignore[arg-type]
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
                return []
            if not quick:
                break
            try:
                # The last attempt takes the statistics as read (a listing changed since may be missed).
                basis = _Basis(keys, weights, tops) if attempt < 2 else None
                found = await self._best_near(q, weights, tops, want, basis, columns)
                break
            except _Stale as stale:
                stats, kept = stale.stats, False
        if found is None:
            if near:
                self.rounds[0] += 1
            found = await self._best(q, weights, want)
        return found

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

    async def _best(self, q: SearchQuery, weights: dict[str, int], want: int, db: Any = None) -> list[_Found]:
        """The first ``want`` hits by reading every posting of the query's terms (within the circle, if any);
        ``db``: where to read (a transaction's snapshot), the database by default."""
        case = "CASE p.term " + " ".join(["WHEN %s THEN %s"] * len(weights)) + " END"
        args: list[Any] = [x for kv in weights.items() for x in kv]
        where = f"p.term IN ({', '.join(['%s'] * len(weights))}) AND p.tier IN (0, 1){left_out_sql(len(q.exclude))}"
        args += [*weights, *q.exclude]
        conds = [filters_for(q, self._categories)]  # type: ignore[arg-type]
        distance, distance_args = "NULL", ()
        ties = "i.created_at DESC, i.owner_rating DESC, i.item_id DESC"
        if q.lat is not None and q.lng is not None and q.radius_m is not None:
            where += f" AND ({cells_sql('p', q.lat, q.lng, q.radius_m)})"
            distance, distance_args = _distance_sql("g"), (q.lat, q.lat, q.lng)
            conds.append(f.Cond(f"{distance} <= %s", (*distance_args, q.radius_m)))
        else:  # nationwide: the newest first among equals, by number (see market/search/nationwide.py)
            ties = "i.item_id DESC"
        where_sql, where_args = f.where(f.all_of(conds))
        rows = await (db or self._db).fetchall(
            f"SELECT g.item_id, g.score, {distance} AS distance_m FROM ("
            f"SELECT p.item_id, SUM(p.weight * {case}) AS score, MAX(p.lat) AS lat,"
            f" MAX(p.lng) AS lng FROM search_postings p WHERE {where} GROUP BY p.item_id) g"
            f" JOIN search_docs i ON i.item_id = g.item_id {where_sql}"
            f" ORDER BY g.score DESC, distance_m, {ties} LIMIT %s",
            (*distance_args, *args, *where_args, want))
        return [_Found(int(r["item_id"]), int(r["score"]), 0,
                       None if r["distance_m"] is None else float(r["distance_m"])) for r in rows]  # type: ignore[arg-type]

    async def _best_near(self, q: SearchQuery, weights: dict[str, int], tops: dict[tuple[str, int], int],
                         want: int, basis: _Basis | None, columns: str | None = None) -> list[_Found] | None:
        """The first ``want`` hits near a point, reading the postings lists from the most valuable down
        (see the class's note); None in the rare case of a tie running past what was read. With a ``basis``,
        raises _Stale when a statement finds statistics giving other weights or bounds."""
        assert q.lat is not None and q.lng is not None and q.radius_m is not None
        bound = {x: weights[x[0]] * top for x, top in tops.items() if top > 0}  # empty lists are never read
        lists = sorted(bound, key=lambda x: (-bound[x], x))
        if not lists:
            return []
        cells = cells_sql("p", q.lat, q.lng, q.radius_m)
        best = {t: max(b for x, b in bound.items() if x[0] == t) for t in {x[0] for x in lists}}
        # 1. The best listings of the most valuable list, completed by key lookups into the other terms' lists:
        # the page's last hit scores at least as much as the ``want``-th of them.
        term, tier = lists[0]
        # With other terms, a wider sample finds listings that have them too (a higher floor); only the best
        # few of it come back, with the sample's size and its last listing (least weight, farthest).
        sample = max(3 * want, 64) * (1 if len(best) == 1 else 4)
        limit = want + 8
        # In a small circle the page is often short: the statement whose rows make the page reads its best hits'
        # words too, for the second pass (``_more_like``), sparing it a statement. (This first round makes a short
        # page only when it read the one list there is: short, its floor is 0 and every list is worth reading.)
        words = self._feedback and q.radius_m <= SMALL_CIRCLE_M
        # With other terms, a second round mostly follows: the page's rows are read by it (or, when this round
        # was enough after all, by the caller), not built here to be thrown away.
        rows = await self._branches(q, weights, cells, {term: [tier]}, {}, limit, probe=list(best), want=want,
                                    first=sample, basis=basis, columns=columns if len(best) == 1 else None,
                                    words=words and len(lists) == 1)
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
        found = await self._branches(q, weights, cells, tiers, least, limit, probe=list(best), want=want,
                                     basis=basis, columns=columns, words=words)
        if found is None:
            return None
        unique = sorted({x.item_id: x for x in found}.values(), key=lambda x: (-x.score, x.distance_m))
        return await self._settle_ties(unique, want)

    async def _branches(self, q: SearchQuery, weights: dict[str, int], cells: str,
                        tiers: Mapping[str, list[int]], least: Mapping[str, int], limit: int,
                        probe: Sequence[str] = (), want: int = 0, first: int | None = None,
                        basis: _Basis | None = None, columns: str | None = None, words: bool = False
                        ) -> list[_Found] | None:
        """For each term, the listings in the circle (its ``cells``: ``cells_sql``) in its lists of the given tiers
        (with at least weight ``least[term]`` there), best first, then nearest: the first ``limit`` of each. Their
        scores count the term's weight, plus — looked up by key — their postings for the other ``probe`` terms.
        With ``want``: None when a term's listings tied with its ``want``-th run past the ``limit``. With
        ``first``: only the first that many by the term's weight (then nearest) are completed. With a
        ``basis``: the same statement reads the term statistics, and raises _Stale if they no longer give
        the basis's weights and bounds. With ``columns`` (of items alias ``i``) and ``want`` (the query's offset + limit
        + 1), only the listings among their branch's first ``want`` come back (ties included: any of them may be on
        the page); those that can be on the query's page with their row of them (``_Found.row``), those tied with
        another with their tie-breaks (``_Found.tie``), read by the same statement (``_with_rows``). With ``words``,
        the listings among the statement's best FEEDBACK_DOCS come with their document's words (``_Found.words``,
        ``_with_words``)."""
        assert q.lat is not None and q.lng is not None and q.radius_m is not None
        # Filters other than place are checked on each posting's document as the posting is read, so that the
        # lists' bounds and the early stop hold for the listings that pass them.
        narrowed, narrowed_args = "", ()
        if _narrowed(q):
            cond = filters_for(q, self._categories)  # type: ignore[arg-type]
            narrowed, narrowed_args = f" AND {cond.sql}", cond.args
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
                     f" AND ({cells}) AND {distance} <= %s{narrowed}{left_out_sql(len(q.exclude))}")
            where_args = [t, *trs, max(least.get(t, 0), 0), q.lat, q.lat, q.lng, q.radius_m,
                          *narrowed_args, *q.exclude]
            # The primary key holds a list's postings in a circle as short ranges (the planner need not weigh
            # the lookup index for it); a filter reads each one's document by its key.
            source, source_args, extra = "search_postings p FORCE INDEX (PRIMARY)", [], ""
            if narrowed:
                source += FILTERS_JOIN
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
        sql = " UNION ALL ".join(parts)
        if words:
            sql, args = _with_words(sql, args, want)
        if not want:
            columns = None  # (the page is not known)
        if columns is not None:
            sql, args = _with_rows(sql, args, columns, want, (q.offset, q.offset + q.limit))
        rows = await self._db.fetchall(sql, tuple(args))
        if basis is not None:
            stats = self._keep(basis.keys, rows)
            if _weigh(q, basis.keys, stats) != (basis.weights, basis.tops):
                raise _Stale(stats)
            rows = [r for r in rows if r["branch"] >= 0]
        found = [_Found(int(r["item_id"]), int(r["score"]), int(r["weight"]), float(r["distance_m"]),
                        int(r.get("sample") or 0), int(r.get("last_weight") or 0), float(r.get("last_distance") or 0))
                 for r in rows]
        if columns is not None and rows:
            _held(found, rows)
        if words:
            for x, r in zip(found, rows):
                if r["w_title"] is not None:
                    x.words = (r["w_title"], r["w_body"], r["w_related"])
        for branch in range(branches if want else 0):
            mine = [(x, r) for x, r in zip(found, rows) if r["branch"] == branch]
            if not mine:
                continue
            if columns is None:
                size, tail = len(mine), (mine[-1][0].score, mine[-1][0].distance_m)
            else:  # (only the branch's first ``want`` came back; its size and last row beside them)
                first_row = mine[0][1]
                size, tail = int(first_row["branch_rows"]), (int(first_row["tail_score"]),
                                                              float(first_row["tail_distance"]))
            if size == limit and tail == (mine[want - 1][0].score, mine[want - 1][0].distance_m):
                return None  # a tie reaching past the cut: what lies beyond may belong on the page
        return found

    async def _settle_ties(self, ranked: list[_Found], want: int) -> list[_Found]:
        """Listings equal in score and distance (the same place) are ordered newest first, then by rating."""
        edge = ranked[: want + 1]
        shared = {(a.score, a.distance_m) for a, b in itertools.pairwise(edge)
                  if (a.score, a.distance_m) == (b.score, b.distance_m)}
        tied = {x.item_id for x in ranked if (x.score, x.distance_m) in shared}
        if tied:
            # (read with the postings when the statement was asked for the page's rows; else read now)
            extra = {x.item_id: x.tie for x in ranked if x.item_id in tied and x.tie is not None}
            if missing := tied - set(extra):
                rows = await self._db.fetchall(
                    f"SELECT item_id, {_TIE_CREATED.format('d')} AS created_at, owner_rating FROM search_docs d"
                    f" WHERE item_id IN ({', '.join(['%s'] * len(missing))})", tuple(missing))
                extra.update({int(r["item_id"]): (r["created_at"], r["owner_rating"]) for r in rows})
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
    grams: list[str] = field(default_factory=list)  # tokens of the bigrams of misread words (all in tier 0)

    def words(self) -> set[str]:
        return {w for w in (untoken(t) for t in self.title + self.body) if w}

    def keys(self) -> set[str]:
        return {k for k in (key_of_token(t) for t in self.title + self.body + self.related + self.grams) if k}

    def postings(self) -> list[tuple[str, int, int, int]]:
        title = {k for k in (key_of_token(t) for t in self.title) if k}
        return [(k, 1 if k in title else 0, self.cell, self.item_id) for k in sorted(self.keys())]

    def pairs(self) -> set[tuple[str, str]]:
        return listing_pairs([k for k in (key_of_token(t) for t in self.title + self.related) if k])


class _Snapshot:
    """The statements of one transaction (one snapshot), asked as of a Database."""

    def __init__(self, cur: Any) -> None:
        self._cur = cur

    async def fetchall(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        await self._cur.execute(sql, args)
        return list(await self._cur.fetchall())


K = TypeVar("K")
V = TypeVar("V")


class _Kept(Generic[K, V]):
    """Values read lately, each for SECOND_PASS_TTL_S; at most ``size`` (when full, the expired ones are dropped,
    and if that frees nothing, all)."""

    def __init__(self, size: int) -> None:
        self._values: dict[K, tuple[float, V]] = {}
        self._size = size

    def get(self, key: K) -> V | None:
        kept = self._values.get(key)
        return kept[1] if kept is not None and time.monotonic() - kept[0] < SECOND_PASS_TTL_S else None

    def put(self, key: K, value: V) -> V:
        if len(self._values) >= self._size:
            now = time.monotonic()
            self._values = {k: v for k, v in self._values.items() if now - v[0] < SECOND_PASS_TTL_S}
            if len(self._values) >= self._size:
                self._values.clear()
        self._values[key] = (time.monotonic(), value)
        return value

    def clear(self) -> None:
        self._values.clear()


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
    if not keys:
        return [count], []
    return [terms, count], [*keys, *keys]


# When a listing was indexed, as a whole number that orders as the time does (microseconds since 1970): the driver
# reads a number several times faster than a date and time, and only the order matters (``_order``).
_TIE_CREATED = "TIMESTAMPDIFF(MICROSECOND, '1970-01-01', {}.created_at)"


def _with_rows(sql: str, args: list[Any], columns: str, want: int, page: tuple[int, int]
               ) -> tuple[str, list[Any]]:
    """``_branches``' statement ``sql`` with, of each branch, only the listings among its first ``want`` (by score,
    then distance; ties included: no other can be on the page, or tied with one that is); beside them, how many rows
    the branch had (``branch_rows``) and its last one's score and distance (``tail_score``, ``tail_distance``:
    whether a tie runs past its ``limit``). Each listing's first row (``copy`` 1: a listing may be in several
    branches) is joined to its document's tie-breaks (``tie_created``, ``tie_rating``) only when another listing
    shares its score and distance (``peers``), and to its item's ``columns`` (``has_row``: the item was found) only
    when it can be on the page, positions ``page`` = [first, last) of the listings found: fewer than ``last`` are
    better (``at``) and more than ``first`` are better or tied (``upto``). A card is the statement's dearest
    part (a photo and the owner's rating, looked up): none is built for a listing before a deep page's offset, or for
    a listing twice. Each branch's rows still come best first, then nearest, and the statistics' rows last."""
    # The listings found, once each: the partition 0 of ``distinct``.
    distinct = "PARTITION BY h.branch < 0 OR h.copy > 1"
    ranked = f"({distinct} ORDER BY h.score DESC, h.distance_m)"
    tail = "OVER (PARTITION BY u.branch ORDER BY u.score, u.distance_m DESC)"
    first, last = page
    return (f"SELECT STRAIGHT_JOIN r.*, i.id IS NOT NULL AS has_row, {_TIE_CREATED.format('d')} AS tie_created,"
            f" d.owner_rating AS tie_rating, {columns} FROM ("
            f"SELECT h.*, RANK() OVER {ranked} AS at, COUNT(*) OVER {ranked} AS upto,"
            f" COUNT(*) OVER ({distinct}, h.score, h.distance_m) AS peers FROM ("
            f"SELECT r.*, ROW_NUMBER() OVER (PARTITION BY r.branch < 0, r.item_id ORDER BY r.branch) AS copy FROM ("
            f"SELECT u.*, RANK() OVER (PARTITION BY u.branch ORDER BY u.score DESC, u.distance_m) AS place,"
            f" COUNT(*) OVER (PARTITION BY u.branch) AS branch_rows, FIRST_VALUE(u.score) {tail} AS tail_score,"
            f" FIRST_VALUE(u.distance_m) {tail} AS tail_distance FROM ({sql}) u) r"
            " WHERE r.branch < 0 OR r.place <= %s) h) r"
            f" LEFT JOIN search_docs d ON {_FIRST_COPY} AND r.peers > 1 AND d.item_id = r.item_id"
            f" LEFT JOIN items i FORCE INDEX (PRIMARY) ON {_FIRST_COPY} AND r.at <= %s AND r.upto > %s"
            " AND i.id = r.item_id"
            " ORDER BY r.branch < 0, r.branch, r.score DESC, r.distance_m"), [*args, want, last, first]


# A listing's first row in a statement of ``_with_rows`` (the one its tie-breaks and row are read with).
_FIRST_COPY = "r.branch >= 0 AND r.copy = 1"
# Every column a statement of ``_with_rows`` reads besides the caller's ``columns`` (``_held`` tells them apart
# by name, not by place).
_OWN_COLUMNS = frozenset({"branch", "item_id", "score", "weight", "distance_m", "sample", "last_weight",
                          "last_distance", "place", "branch_rows", "tail_score", "tail_distance", "copy", "at", "upto",
                          "peers", "has_row", "tie_created", "tie_rating", "w_rank", "w_rows", "w_title", "w_body",
                          "w_related"})


def _held(found: list[_Found], rows: Sequence[Mapping[str, Any]]) -> None:
    """Gives each listing found the row and tie-breaks a statement of ``_with_rows`` read for it (with its first
    row): its row when it can be on the page, its tie-breaks when it shares its score and distance."""
    columns = [c for c in rows[0] if c not in _OWN_COLUMNS]
    read: dict[int, tuple[dict[str, Any] | None, tuple[Any, Any] | None]] = {}
    for r in rows:
        if r["branch"] >= 0 and r["copy"] == 1:
            read[int(r["item_id"])] = ({c: r[c] for c in columns} if r["has_row"] else None,
                                       (r["tie_created"], r["tie_rating"]) if r["peers"] > 1 else None)
    for x in found:
        if (got := read.get(x.item_id)) is not None:
            x.row, x.tie = got


def _with_words(sql: str, args: list[Any], want: int) -> tuple[str, list[Any]]:
    """``_branches``' statement ``sql`` with, when its rows are fewer than ``want`` (a page short of hits: the second
    pass follows), beside each row among the best FEEDBACK_DOCS (score, then distance) of all branches' rows, its
    document's terms (``w_title``, ``w_body``, ``w_related``; NULL for the others). A listing among the best
    FEEDBACK_DOCS found is there: fewer than FEEDBACK_DOCS (score, distance) pairs are better than its own. Each
    branch's rows still come best first, then nearest, and the statistics' rows last."""
    return (f"SELECT u.*, w.title_terms AS w_title, w.body_terms AS w_body, w.related_terms AS w_related FROM ("
            f"SELECT u.*, DENSE_RANK() OVER (PARTITION BY u.branch < 0 ORDER BY u.score DESC, u.distance_m) AS w_rank,"
            f" COUNT(*) OVER (PARTITION BY u.branch < 0) AS w_rows FROM ({sql}) u) u LEFT JOIN search_docs w"
            f" ON u.branch >= 0 AND u.w_rows < %s AND u.w_rank <= %s AND w.item_id = u.item_id"
            " ORDER BY u.branch < 0, u.branch, u.score DESC, u.distance_m"), [*args, want, FEEDBACK_DOCS]


def _bands_sql(keys: Iterable[str]) -> tuple[str, list[Any]]:
    """A statement (to join with ``_stats_sql``'s) reading how many postings each list of the terms holds at each
    weight: branch = 2 × (the term's place in ``keys``, from 1) + tier, item_id = the weight, score = postings."""
    keys = list(keys)
    marks = ", ".join(["%s"] * len(keys))
    return (f"(SELECT FIELD(term, {marks}) * 2 + tier, weight, docs, 0, NULL FROM search_bands"
            f" WHERE term IN ({marks}) AND docs > 0)"), [*keys, *keys]


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
        boost = HEAD_BOOST if term in q.head else GRAM_BOOST if term.startswith(korean.GRAM_MARK) else 1.0
        weights[k] = max(1, round(1000 * boost * idf * idf))
        tops[(k, 1)], tops[(k, 0)] = top1, top0
    return weights, tops


def _narrowed(q: SearchQuery) -> bool:
    """Whether the query filters on more than place (the postings carry no price, category or dates: their
    documents are read too)."""
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


def _feedback_doc(title: str, body: str, related: str) -> FeedbackDoc:
    """A listing's words from its document's stored tokens."""
    return FeedbackDoc(keys_of_tokens(title), keys_of_tokens(body), keys_of_tokens(related))


def _tokens(terms: list[str]) -> str:
    return " ".join(token(t) for t in terms)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like_prefix(text: str) -> str:
    return _like_escape(text) + "%"
