"""The Elasticsearch backend's index and request bodies, checked for shape without a cluster (the contract
suite runs them against a real one where BILLI_ELASTICSEARCH_URL is set)."""

from __future__ import annotations

import json
from datetime import date, datetime

from market.search import SearchDoc, SearchQuery
from market.search import es as search_es


def test_the_index_analyses_korean_with_nori_and_maps_location_as_geo_point() -> None:
    body = search_es.index_settings()
    analysis = body["settings"]["analysis"]
    assert analysis["tokenizer"]["ko_tokenizer"]["type"] == "nori_tokenizer"
    assert analysis["tokenizer"]["ko_tokenizer"]["decompound_mode"] == "mixed"
    props = body["mappings"]["properties"]
    assert props["title"]["analyzer"] == "ko_index" and props["description"]["analyzer"] == "ko_index"
    assert props["location"]["type"] == "geo_point"
    assert {props[f]["type"] for f in ("status", "condition", "title_terms")} == {"keyword"}
    synonyms = analysis["filter"]["ko_synonyms"]["synonyms"]
    assert any(line.startswith("의자,") and "체어" in line for line in synonyms)


def test_a_query_with_point_and_filters_has_text_required_and_filters_in_filter_context() -> None:
    q = SearchQuery.parse({"q": "캠핑의자 +\"* @", "lat": "37.5", "lng": "127.0", "radius_m": "3000",
                           "category": "1", "price_max": "9000", "available_from": "2030-01-01"})
    body = search_es.search_body(q)
    fs = body["query"]["function_score"]
    text = fs["query"]["bool"]
    assert text["minimum_should_match"] == 1
    assert {"terms": {"title_terms": ["캠핑", "의자", "캠핑의자"], "boost": 3.0}} in text["should"]
    filters = json.dumps(text["filter"], ensure_ascii=False)
    assert '"geo_distance": {"distance": "3000m"' in filters and '"cat_ids": 1' in filters
    assert '"price_per_day": {"lte": 9000}' in filters and '"available_from": {"lte": "2030-01-01"}' in filters
    assert fs["functions"][0]["gauss"]["location"]["scale"] == "3000m"
    assert body["sort"][0] == "_score" and "_geo_distance" in body["sort"][1]
    # User text travels only as a value of match/terms queries, never in query_string syntax.
    assert "query_string" not in json.dumps(body)


def test_a_query_without_point_sorts_by_score_then_freshness() -> None:
    body = search_es.search_body(SearchQuery.parse({"q": "텐트", "limit": "5", "cursor": None}))
    assert "function_score" not in body["query"] and body["size"] == 6 and body["from"] == 0
    assert body["sort"][:2] == ["_score", {"created_at": "desc"}]


def test_documents_carry_our_terms_and_the_filter_fields() -> None:
    row = {"id": 9, "title": "PS5 대여", "description": "패드 포함", "lat": 37.5, "lng": 127.0, "cat1_id": 40,
           "cat2_id": 46, "cat3_id": 47, "price_per_day": 9000, "deposit": 50000, "item_condition": "상",
           "available_from": date(2030, 1, 1), "available_until": None, "status": "available",
           "created_at": datetime(2030, 1, 1, 9)}
    doc = search_es.document(SearchDoc.build(row, ["디지털/가전", "게임기", "플레이스테이션"]))
    assert doc["location"] == {"lat": 37.5, "lon": 127.0} and doc["cat_ids"] == [40, 46, 47]
    assert "플레이스테이션5" in doc["title_terms"] and "게임기" in doc["related_terms"]
    assert doc["available_until"] is None and doc["created_at"].startswith("2030-01-01T09")
