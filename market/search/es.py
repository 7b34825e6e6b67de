"""The Elasticsearch search backend, for deployments that outgrow one database.

The index holds each item's title and description under the ``nori`` Korean analyser, the terms our own
analyser made (the same synonyms, compounds and broader terms the embedded backend uses), a ``geo_point``,
and keyword / number / date fields for the filters. A query must match text; the score is text relevance
(title above description above broader terms) times a gentle distance decay; distance, freshness and the
owner's rating break ties.

Only the official async client talks to the cluster; the request bodies are built by pure functions below so
their shape is tested without one. No user text is ever put into a query string syntax: it travels as the
value of ``match`` / ``terms`` queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from market.search import korean
from market.search.documents import BODY_WEIGHT, RELATED_WEIGHT, TITLE_WEIGHT, SearchDoc
from market.search.query import MAX_OFFSET, SearchHit, SearchPage, SearchQuery, encode_offset


def index_settings() -> dict[str, Any]:
    synonyms = [", ".join([canon, *(v for v in variants if " " not in v)]) for canon, variants in
                korean.SYNONYMS.items()]
    return {
        "settings": {
            "number_of_shards": 1,
            "analysis": {
                "tokenizer": {
                    "ko_tokenizer": {"type": "nori_tokenizer", "decompound_mode": "mixed",
                                     "discard_punctuation": True},
                },
                "filter": {
                    "ko_pos": {"type": "nori_part_of_speech",
                               "stoptags": ["E", "IC", "J", "MAG", "MAJ", "MM", "SP", "SSC", "SSO", "SC", "SE",
                                            "XPN", "XSA", "XSN", "XSV", "UNA", "NA", "VSV", "VV", "VA", "VX",
                                            "VCP", "VCN"]},
                    "ko_synonyms": {"type": "synonym_graph", "synonyms": synonyms, "lenient": True},
                    "ko_stop": {"type": "stop", "stopwords": sorted(korean.STOPWORDS)},
                },
                "analyzer": {
                    "ko_index": {"type": "custom", "tokenizer": "ko_tokenizer",
                                 "filter": ["lowercase", "ko_pos", "ko_stop"]},
                    "ko_search": {"type": "custom", "tokenizer": "ko_tokenizer",
                                  "filter": ["lowercase", "ko_pos", "ko_synonyms", "ko_stop"]},
                    "terms_ws": {"type": "custom", "tokenizer": "whitespace"},
                },
            },
        },
        "mappings": {
            "dynamic": "strict",
            "properties": {
                "item_id": {"type": "long"},
                "title": {"type": "text", "analyzer": "ko_index", "search_analyzer": "ko_search",
                          "fields": {"prefix": {"type": "search_as_you_type"}}},
                "description": {"type": "text", "analyzer": "ko_index", "search_analyzer": "ko_search"},
                "title_terms": {"type": "keyword"},
                "body_terms": {"type": "keyword"},
                "related_terms": {"type": "keyword"},
                "all_terms": {"type": "text", "analyzer": "terms_ws"},
                "location": {"type": "geo_point"},
                "cat_ids": {"type": "integer"},
                "price_per_day": {"type": "integer"},
                "deposit": {"type": "integer"},
                "condition": {"type": "keyword"},
                "available_from": {"type": "date"},
                "available_until": {"type": "date"},
                "status": {"type": "keyword"},
                "owner_rating": {"type": "float"},
                "created_at": {"type": "date"},
            },
        },
    }


def document(d: SearchDoc) -> dict[str, Any]:
    return {
        "item_id": d.item_id, "title": d.title, "description": d.description, "title_terms": d.title_terms,
        "body_terms": d.body_terms, "related_terms": d.related_terms,
        "all_terms": " ".join(d.title_terms + d.body_terms),
        "location": {"lat": d.lat, "lon": d.lng}, "cat_ids": list(d.cat_ids), "price_per_day": d.price_per_day,
        "deposit": d.deposit, "condition": d.condition, "available_from": d.available_from.isoformat(),
        "available_until": d.available_until.isoformat() if d.available_until else None, "status": d.status,
        "owner_rating": d.owner_rating, "created_at": d.created_at.isoformat(),
    }


def search_body(q: SearchQuery) -> dict[str, Any]:
    """The request body of one search (the caller skips the call when the query has no terms)."""
    terms = list(q.terms)
    should: list[dict[str, Any]] = [
        {"terms": {"title_terms": terms, "boost": TITLE_WEIGHT}},
        {"terms": {"body_terms": terms, "boost": BODY_WEIGHT}},
        {"terms": {"related_terms": terms, "boost": RELATED_WEIGHT}},
        {"match": {"title": {"query": q.text, "boost": TITLE_WEIGHT}}},
        {"match": {"description": {"query": q.text, "boost": BODY_WEIGHT}}},
    ]
    if q.head:
        should.append({"terms": {"title_terms": list(q.head), "boost": TITLE_WEIGHT}})
    filters: list[dict[str, Any]] = [{"terms": {"status": list(q.statuses)}}]
    if q.category_id is not None:
        filters.append({"term": {"cat_ids": q.category_id}})
    for field, lo, hi in (("price_per_day", q.price_min, q.price_max), ("deposit", q.deposit_min, q.deposit_max)):
        bounds = {k: v for k, v in (("gte", lo), ("lte", hi)) if v is not None}
        if bounds:
            filters.append({"range": {field: bounds}})
    if q.conditions:
        filters.append({"terms": {"condition": list(q.conditions)}})
    if q.available_from or q.available_until:
        start = (q.available_from or q.available_until).isoformat()  # type: ignore[union-attr]
        end = (q.available_until or q.available_from).isoformat()  # type: ignore[union-attr]
        filters.append({"range": {"available_from": {"lte": start}}})
        filters.append({"bool": {"should": [{"bool": {"must_not": {"exists": {"field": "available_until"}}}},
                                            {"range": {"available_until": {"gte": end}}}],
                                 "minimum_should_match": 1}})
    text_query: dict[str, Any] = {"bool": {"should": should, "minimum_should_match": 1, "filter": filters}}
    sort: list[Any] = ["_score"]
    query: dict[str, Any] = text_query
    if q.lat is not None and q.lng is not None and q.radius_m is not None:
        point = {"lat": q.lat, "lon": q.lng}
        filters.append({"geo_distance": {"distance": f"{q.radius_m}m", "location": point}})
        query = {"function_score": {
            "query": text_query,
            "functions": [{"gauss": {"location": {"origin": point, "scale": f"{q.radius_m}m", "decay": 0.8}}}],
            "boost_mode": "multiply",
        }}
        sort.append({"_geo_distance": {"location": point, "order": "asc", "unit": "m"}})
    sort += [{"created_at": "desc"}, {"owner_rating": {"order": "desc", "missing": "_last"}},
             {"item_id": "desc"}]
    return {"query": query, "sort": sort, "from": q.offset, "size": q.limit + 1, "_source": False,
            "fields": ["item_id"], "track_total_hits": False}


def complete_body(prefix: str, limit: int) -> dict[str, Any]:
    return {
        "query": {"bool": {
            "must": {"multi_match": {"query": prefix, "type": "bool_prefix",
                                     "fields": ["title.prefix", "title.prefix._2gram", "title.prefix._3gram"]}},
            "filter": {"term": {"status": "available"}},
        }},
        "size": limit * 3, "_source": ["title"],
    }


def vocabulary_body(terms: Sequence[str]) -> dict[str, Any]:
    return {"size": 0, "query": {"terms": {"all_terms": list(terms)}},
            "aggs": {f"t{i}": {"filter": {"term": {"all_terms": t}}} for i, t in enumerate(terms)}}


def near_terms_body(term: str) -> dict[str, Any]:
    return {"size": 0, "suggest": {"near": {"text": term, "term": {
        "field": "all_terms", "suggest_mode": "always", "max_edits": 2, "size": 20, "min_word_length": 1}}}}


class ElasticsearchSearch:
    name = "elasticsearch"

    def __init__(self, url: str, index: str) -> None:
        from elasticsearch import AsyncElasticsearch

        self._es = AsyncElasticsearch(url, request_timeout=10)
        self._index = index

    async def close(self) -> None:
        await self._es.close()

    async def ensure_index(self) -> None:
        if not await self._es.indices.exists(index=self._index):
            body = index_settings()
            await self._es.indices.create(index=self._index, settings=body["settings"], mappings=body["mappings"])

    async def index(self, docs: Sequence[SearchDoc]) -> None:
        if not docs:
            return
        operations: list[dict[str, Any]] = []
        for d in docs:
            operations += [{"index": {"_index": self._index, "_id": str(d.item_id)}}, document(d)]
        result = await self._es.bulk(operations=operations)
        if result.get("errors"):
            raise RuntimeError("the search cluster refused some documents")

    async def remove(self, item_ids: Sequence[int]) -> None:
        if not item_ids:
            return
        operations = [{"delete": {"_index": self._index, "_id": str(i)}} for i in item_ids]
        await self._es.bulk(operations=operations)

    async def search(self, q: SearchQuery, *, columns: str | None = None) -> SearchPage:
        # (the cluster holds no items' rows: ``columns`` are the caller's to read)
        if not q.terms:
            return SearchPage([], None)
        result = await self._es.search(index=self._index, body=search_body(q))
        hits = []
        for h in result["hits"]["hits"]:
            distance = None
            if q.lat is not None and len(h.get("sort", [])) > 1:
                distance = float(h["sort"][1])
            hits.append(SearchHit(int(h["_id"]), float(h.get("_score") or h["sort"][0] or 0.0), distance))
        more = len(hits) > q.limit and q.offset + q.limit < MAX_OFFSET
        return SearchPage(hits[: q.limit], encode_offset(q.offset + q.limit) if more else None)

    async def complete(self, prefix: str, limit: int = 8) -> list[str]:
        if not prefix.strip():
            return []
        result = await self._es.search(index=self._index, body=complete_body(prefix.strip(), limit))
        out: list[str] = []
        for h in result["hits"]["hits"]:
            title = h["_source"]["title"]
            if title not in out:
                out.append(title)
        return out[:limit]

    async def vocabulary(self, terms: Sequence[str]) -> dict[str, int]:
        if not terms:
            return {}
        result = await self._es.search(index=self._index, body=vocabulary_body(terms))
        return {t: int(result["aggregations"][f"t{i}"]["doc_count"]) for i, t in enumerate(terms)}

    async def near_terms(self, term: str) -> list[tuple[str, int]]:
        result = await self._es.search(index=self._index, body=near_terms_body(term))
        options = result["suggest"]["near"][0]["options"] if result["suggest"]["near"] else []
        return [(o["text"], int(o["freq"])) for o in options]

    async def clear(self) -> None:
        await self._es.indices.delete(index=self._index, ignore_unavailable=True)
        await self.ensure_index()

    async def refresh(self) -> None:
        await self._es.indices.refresh(index=self._index)
