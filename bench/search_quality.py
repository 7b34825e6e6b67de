"""Search relevance on a labelled set: our embedded search vs the naive LIKE baseline.

Indexes the listings (default: bench/data/search_eval/listings.jsonl, shipped with the repository) with the
real analyser and the embedded MariaDB backend, runs every labelled query over all listings (no geo, date or
price filter), and writes
nDCG@10 and recall@50 (capped at min(50, relevant), as the set's README defines it) to
bench/results/search_quality.md (named after the benchmark). The last line printed is
``search_quality: ndcg10=<x> recall50=<y> baseline_ndcg10=<b>`` (the whole query set), and the report ends with
it. The report also shows the tuning and held-out halves of the queries and a typo version of them.

It also stands in for queries the project has never seen: the same queries again, in a process of their own whose
tables of synonyms, broader terms and brand names lost every entry that names a word of any query (what was written
for these queries does not carry over to others) — what the general methods (words learnt from the listings,
feedback, halves of compounds, bigrams of misread words, typo correction) find on their own.

    python bench/search_quality.py [--listings FILE] [--queries FILE] [--typo-seeds 21,7,99] [--details]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import platform
import subprocess
import sys
import time
from datetime import date, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._services import bench_database  # noqa: E402
from bench._typos import typo_query  # noqa: E402
from market.db import Database, DatabaseTarget, drop_database  # noqa: E402
from market.migrate import migrate  # noqa: E402
from market.search import EmbeddedSearch, SearchDoc, SearchQuery, korean  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT / "bench" / "data" / "search_eval"
RESULTS = Path(__file__).resolve().parent / "results" / "search_quality.md"
TOP = 50


def ndcg10(ranked: list[int], grades: dict[int, int]) -> float:
    dcg = sum(grades.get(doc, 0) / math.log2(rank + 2) for rank, doc in enumerate(ranked[:10]))
    ideal = sorted(grades.values(), reverse=True)[:10]
    idcg = sum(g / math.log2(rank + 2) for rank, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall50(ranked: list[int], grades: dict[int, int]) -> float:
    found = sum(1 for doc in ranked[:TOP] if doc in grades)
    return found / min(TOP, len(grades))


def listing_row(listing: dict[str, object]) -> dict[str, object]:
    """A listing as an items row (the set has no place, price or dates; search here uses none of them)."""
    return {"id": listing["id"], "title": listing["title"], "description": listing["description"],
            "lat": 37.5, "lng": 127.0, "cat1_id": 1, "cat2_id": 1, "cat3_id": 1, "price_per_day": 1000,
            "deposit": 0, "item_condition": "상", "available_from": date(2026, 1, 1), "available_until": None,
            "status": "available", "created_at": datetime(2026, 1, 1)}


def listing_docs(listings: list[dict[str, object]]) -> list[SearchDoc]:
    return SearchDoc.build_many([listing_row(x) for x in listings], [[str(x["category"])] for x in listings])


async def run(url: str, listings: list[dict[str, object]], queries: list[dict[str, object]]) -> dict[str, object]:
    target = DatabaseTarget.parse(url)
    await drop_database(target)
    db = await Database.connect(url)
    try:
        await migrate(db)
        backend = EmbeddedSearch(db)
        started = time.perf_counter()
        korean.warm_up()
        docs = listing_docs(listings)
        analysed = time.perf_counter()
        for i in range(0, len(docs), 500):
            await backend.index(docs[i:i + 500])
        await backend.learn_similar()  # (as the rebuild of `billi reindex` ends)
        indexed = time.perf_counter()
        postings = int(await db.fetchval("SELECT COUNT(*) FROM search_postings"))
        grams = int(await db.fetchval("SELECT COUNT(*) FROM search_postings WHERE term LIKE %s",
                                      (korean.GRAM_MARK + "%",)))
        gram_docs = int(await db.fetchval("SELECT COUNT(*) FROM search_docs WHERE gram_terms <> ''"))
        await db.execute("CREATE TABLE baseline (id BIGINT PRIMARY KEY, title TEXT, description TEXT)"
                         " DEFAULT CHARSET=utf8mb4")
        for i in range(0, len(listings), 500):
            chunk = listings[i:i + 500]
            await db.execute("INSERT INTO baseline VALUES " + ", ".join(["(%s, %s, %s)"] * len(chunk)),
                             tuple(v for x in chunk for v in (x["id"], x["title"], x["description"])))
        per_query = []
        for q in queries:
            grades = {int(k): int(g) for k, g in q["relevant"].items()}  # type: ignore[union-attr]
            page = await backend.search(SearchQuery.parse({"q": q["query"], "limit": TOP}, max_limit=TOP))
            ours = [h.item_id for h in page.hits]
            like = "%" + str(q["query"]).replace("%", "\\%").replace("_", "\\_") + "%"
            base = [int(r["id"]) for r in await db.fetchall(
                "SELECT id FROM baseline WHERE title LIKE %s OR description LIKE %s ORDER BY id LIMIT %s",
                (like, like, TOP))]
            per_query.append({"qid": q["qid"], "query": q["query"], "relevant": len(grades),
                              "ndcg10": ndcg10(ours, grades), "recall50": recall50(ours, grades),
                              "base_ndcg10": ndcg10(base, grades), "base_recall50": recall50(base, grades),
                              "terms": list(SearchQuery.parse({"q": q["query"]}).terms),
                              "misses": [d for d in ours[:10] if d not in grades]})
        return {"per_query": per_query, "analyse_s": analysed - started, "index_s": indexed - analysed,
                "postings": postings, "gram_postings": grams, "gram_docs": gram_docs}
    finally:
        await db.close()


def without_entries_naming(queries: list[dict[str, object]]) -> tuple[int, int]:
    """Drop from the analyser's hand tables every entry that names a word of these queries (a synonym group whose
    word or any spelling is in one, a broader term's key, a brand name), before anything is analysed. Returns how
    many synonym groups and broader entries went."""
    texts = [korean.normalize(str(q["query"])).replace(" ", "") for q in queries]

    def named(word: str) -> bool:
        word = korean.normalize(word).replace(" ", "")
        return any(word in text for text in texts)

    assert korean._kiwi is None, "the analyser already holds the tables' words"
    groups = [c for c, spellings in korean.SYNONYMS.items() if named(c) or any(named(v) for v in spellings)]
    for c in groups:
        del korean.SYNONYMS[c]
    broader = [b for b in korean.BROADER if named(b)]
    for b in broader:
        del korean.BROADER[b]
    korean._CANON.clear()
    for c, spellings in korean.SYNONYMS.items():
        korean._CANON[c] = c
        for v in spellings:
            korean._CANON[v.replace(" ", "")] = c
    korean._HEADS[:] = sorted({x for x in korean._CANON if len(x) >= 2 and not x.isascii()} | set(korean.BROADER),
                              key=len, reverse=True)
    korean._PROPER = frozenset(x for x in korean._PROPER if not named(x))
    return len(groups), len(broader)


def split(qid: str) -> str:
    """The half a query belongs to, decided by its id alone: "tuning" (tune on these) or "held-out"."""
    return "tuning" if hashlib.blake2b(qid.encode(), digest_size=1).digest()[0] % 2 == 0 else "held-out"


def with_typos(queries: list[dict[str, object]], seed: int) -> list[dict[str, object]]:
    """Each query with one keyboard typo in its longest word (see bench/_typos.py), same labels."""
    return [{**q, "query": typo_query(str(q["query"]), seed)} for q in queries]


def means(rows: list[dict[str, object]]) -> dict[str, float]:
    keys = ("ndcg10", "recall50", "base_ndcg10", "base_recall50")
    return {k: sum(float(r[k]) for r in rows) / len(rows) if rows else 0.0 for k in keys}  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listings", type=Path, default=EVAL / "listings.jsonl")
    parser.add_argument("--queries", type=Path, default=EVAL / "queries_dev.jsonl")
    parser.add_argument("--typo-seeds", default="21,7,99",
                        help="seeds of the typo versions of the queries (the first one's figures are shown per query)")
    parser.add_argument("--details", action="store_true", help="print each query's figures")
    parser.add_argument("--stand-in", action="store_true", help=argparse.SUPPRESS)  # (the run without the entries)
    args = parser.parse_args()
    listings = [json.loads(line) for line in args.listings.read_text(encoding="utf-8").splitlines() if line.strip()]
    queries = [json.loads(line) for line in args.queries.read_text(encoding="utf-8").splitlines() if line.strip()]
    seeds = [int(s) for s in args.typo_seeds.split(",") if s.strip()]
    if args.stand_in:  # (a process of its own: the analyser is built from the reduced tables)
        dropped = without_entries_naming(queries)
        with bench_database("billi_bench_search_quality_unseen") as url:
            found = asyncio.run(run(url, listings, queries + with_typos(queries, seeds[0])))["per_query"]
        assert isinstance(found, list)
        print(json.dumps({"dropped": dropped, "clean": means(found[:len(queries)]),
                          "typo": means(found[len(queries):])}))
        return
    typoed = [q for seed in seeds for q in with_typos(queries, seed)]
    with bench_database("billi_bench_search_quality") as url:
        result = asyncio.run(run(url, listings, queries + typoed))
    stand_in = json.loads(subprocess.run(
        [sys.executable, __file__, "--listings", str(args.listings), "--queries", str(args.queries),
         "--typo-seeds", str(seeds[0]), "--stand-in"], check=True, capture_output=True, text=True
    ).stdout.splitlines()[-1])
    every = result["per_query"]
    assert isinstance(every, list)
    n = len(queries)
    rows, typo_rows = every[:n], every[n:2 * n]
    other_seeds = {seed: every[(2 + k) * n:(3 + k) * n] for k, seed in enumerate(seeds[1:])}
    for r, t in zip(rows, typo_rows):
        r["typo"] = t
    halves = {h: [r for r in rows if split(str(r["qid"])) == h] for h in ("tuning", "held-out")}
    mean = means(rows)

    def ratio(part: list[dict[str, object]]) -> float:
        return means(part)["ndcg10"] / mean["ndcg10"] if mean["ndcg10"] else 0.0
    if args.details:
        for r in rows:
            t = r["typo"]
            print(f"{r['qid']} {r['query']:<20} {r['terms']} ndcg={r['ndcg10']:.3f} recall={r['recall50']:.3f}"
                  f" misses={r['misses']} | {t['query']} {t['terms']} ndcg={t['ndcg10']:.3f}"
                  f" recall={t['recall50']:.3f}")
    summary = (f"search_quality: ndcg10={mean['ndcg10']:.3f} recall50={mean['recall50']:.3f}"
               f" baseline_ndcg10={mean['base_ndcg10']:.3f}")

    def line(name: str, part: list[dict[str, object]]) -> str:
        m = means(part)
        return (f"| {name} | {len(part)} | {m['ndcg10']:.3f} | {m['recall50']:.3f} | {m['base_ndcg10']:.3f} |"
                f" {m['base_recall50']:.3f} |")

    lines = [
        "# Search relevance: embedded search vs LIKE",
        "",
        f"- listings: `{args.listings.name}` ({len(listings)}), queries: `{args.queries.name}` ({len(queries)})",
        "- ours: Kiwi morphological analysis (compounds split and kept, particles and endings dropped, synonyms,"
        " broader terms and category names at a lower weight), our postings table in MariaDB: per term"
        " title ×3, description ×1 (each counted at most twice), broader/category ×0.5, times idf²"
        " (idf = log10(1 + N/df)), the query's head noun ×1.5; a word the analyser may have misread (unknown, a"
        " particle inside it, a determiner before nouns, or noun + particle that it also reads as one noun) also as"
        " the bigrams of the word as written (title 1, description 0.5; ×0.3 in the query); a search short of a page"
        " filled, below its text matches, by the halves of its compound words, the words listings use instead of its"
        " own (learnt from the listings: the same words around them), related words and its best hits' words",
        "- baseline: `title LIKE '%query%' OR description LIKE '%query%'` (ordered by id)",
        "- halves: a query's half is decided by its id alone (blake2b of the qid, even → tuning); tune on the"
        " tuning half only — the held-out half shows over-fitting",
        "- typo sets: every query with one typo in its longest word (a keystroke changed to a neighbouring key,"
        f" dropped, or swapped with the next; bench/_typos.py), same labels; seeds {', '.join(map(str, seeds))}"
        f" (the per-query table shows seed {seeds[0]})",
        f"- indexing: analysis {result['analyse_s']:.1f} s, writes {result['index_s']:.1f} s for {len(listings)}"
        f" listings ({len(listings) / (result['analyse_s'] + result['index_s']):.0f} listings/s);"
        f" Python {platform.python_version()}",
        f"- index size: {result['postings']:,} postings rows, of which {result['gram_postings']:,} bigrams of words"
        f" the analyser may have misread ({result['gram_docs']:,} listings have any; without them"
        f" {result['postings'] - result['gram_postings']:,} rows, +"
        f"{100 * result['gram_postings'] / max(1, result['postings'] - result['gram_postings']):.1f}%)",
        "",
        "| queries | n | nDCG@10 | recall@50 | LIKE nDCG@10 | LIKE recall@50 |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        line("dev, whole", rows),
        line("dev, tuning half", halves["tuning"]),
        line("dev, held-out half", halves["held-out"]),
        line(f"typo (seed {seeds[0]}), whole", typo_rows),
        line(f"typo (seed {seeds[0]}), tuning half", [r["typo"] for r in halves["tuning"]]),
        line(f"typo (seed {seeds[0]}), held-out half", [r["typo"] for r in halves["held-out"]]),
        *(line(f"typo (seed {seed}), whole", part) for seed, part in other_seeds.items()),
        "",
        "- typo / clean nDCG@10 (target ≥ 0.90): "
        + ", ".join(f"seed {seed} {ratio(part):.2f}" for seed, part in [(seeds[0], typo_rows), *other_seeds.items()]),
        "",
        "A stand-in for queries never seen: the same queries in a process whose hand tables lost every entry naming a"
        f" word of any query ({stand_in['dropped'][0]} of {len(korean.SYNONYMS)} synonym"
        f" groups, {stand_in['dropped'][1]} broader terms; the targets on unseen queries: nDCG@10 ≥ 0.96, recall@50"
        " ≥ 0.85, with one typo ≥ 0.85 / ≥ 0.70):",
        "",
        "| queries | n | nDCG@10 | recall@50 |",
        "| --- | ---: | ---: | ---: |",
        f"| dev, without their entries | {n} | {stand_in['clean']['ndcg10']:.3f} |"
        f" {stand_in['clean']['recall50']:.3f} |",
        f"| typo (seed {seeds[0]}), without their entries | {n} | {stand_in['typo']['ndcg10']:.3f} |"
        f" {stand_in['typo']['recall50']:.3f} |",
        "",
        "## Per query",
        "",
        "| qid | half | query | labelled | nDCG@10 | recall@50 | LIKE nDCG@10 | LIKE recall@50 | with a typo |"
        " typo nDCG@10 | typo recall@50 |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for r in rows:
        t = r["typo"]
        lines.append(f"| {r['qid']} | {split(str(r['qid']))} | {r['query']} | {r['relevant']} | {r['ndcg10']:.3f} |"
                     f" {r['recall50']:.3f} | {r['base_ndcg10']:.3f} | {r['base_recall50']:.3f} | {t['query']} |"
                     f" {t['ndcg10']:.3f} | {t['recall50']:.3f} |")
    lines += ["", summary]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(summary)


if __name__ == "__main__":
    main()
