"""Keyword search: one interface, two backends (embedded MariaDB postings, Elasticsearch).

The package, along its seams: ``query`` (what a search asks and answers), ``korean`` (the analyser),
``documents`` (what the index holds, the backend contract), ``postings`` and ``cells`` (the embedded index's
keys and map cells), ``embedded`` (the MariaDB backend), ``nationwide`` (its search without a point), ``es`` (the Elasticsearch backend), ``spelling``
(typo correction, "did you mean"), ``related`` (related words learned from the listings), ``feedback`` (the
words a narrow search's best hits share), ``indexer`` (the outbox and reindex). This module re-exports what
callers use.

- ``SearchQuery.parse`` reads untrusted input (text, optional point and radius, the nearby filters, paging).
- ``SearchDoc`` is what the index holds for one item: analysed terms plus the filter fields.
- A backend indexes and removes documents, searches, completes title prefixes and suggests a spelling.
- ``EmbeddedSearch`` keeps the documents in MariaDB with our own postings table (term, tier, map cell, listing):
  a search near a point reads only the postings inside its circle, the most valuable lists first.

Ranking (both backends): text relevance first — a title match weighs more than a description match, which
weighs more than a broader term or the category — then distance, freshness and the owner's rating break
ties. A query none of whose terms any listing has returns nothing. The embedded backend also searches a word one
keystroke off an indexed word as that word (and says so), and fills a narrow page, below every text match,
with listings like its best hits (related words learned from the listings, and the words those hits share).
"""

from market.search import korean
from market.search.cells import CELL_DEG, EARTH_RADIUS_M, cell_of, cell_ranges
from market.search.documents import BODY_WEIGHT, RELATED_WEIGHT, TITLE_WEIGHT, SearchBackend, SearchDoc
from market.search.embedded import HEAD_BOOST, EmbeddedSearch
from market.search.postings import TF_CAP, postings_of, term_key, token, untoken
from market.search.query import (
    MAX_OFFSET,
    MAX_QUERY_CHARS,
    MAX_QUERY_TERMS,
    SearchHit,
    SearchPage,
    SearchQuery,
    decode_offset,
    encode_offset,
)
from market.search.spelling import did_you_mean, edit_distance, jamo

__all__ = [
    "BODY_WEIGHT", "CELL_DEG", "EARTH_RADIUS_M", "HEAD_BOOST", "MAX_OFFSET", "MAX_QUERY_CHARS", "MAX_QUERY_TERMS",
    "RELATED_WEIGHT", "TF_CAP", "TITLE_WEIGHT", "EmbeddedSearch", "SearchBackend", "SearchDoc", "SearchHit",
    "SearchPage", "SearchQuery", "cell_of", "cell_ranges", "decode_offset", "did_you_mean", "edit_distance",
    "encode_offset", "jamo", "korean", "postings_of", "term_key", "token", "untoken",
]
