"""What the index holds for one item (``SearchDoc``: analysed terms plus the filter fields) and what every
backend offers (``SearchBackend``). Analysis happens here, once per document, never at query time.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from market.search import korean
from market.search.query import SearchPage, SearchQuery

# How a statement reading postings (alias p) joins each one's document (alias i) for the filters besides place:
# through the narrow index holding every column they read (migration 0045), one lookup per posting.
FILTERS_JOIN = " STRAIGHT_JOIN search_docs i FORCE INDEX (ix_search_docs_filters) ON i.item_id = p.item_id"

# Weights of where a term was found; a word said twice in a place counts twice, more often not more.
TITLE_WEIGHT, BODY_WEIGHT, RELATED_WEIGHT = 3.0, 1.0, 0.5


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
    # Bigrams of the words the analyser may have misread (korean.word_grams), of the title and the description.
    title_grams: list[str] = field(default_factory=list)
    body_grams: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, row: Mapping[str, Any], category_names: Sequence[str]) -> SearchDoc:
        """From an ``items`` row (with ``lat``/``lng``); analyses title, description and category names."""
        return cls.build_many([row], [category_names])[0]

    @classmethod
    def build_many(cls, rows: Sequence[Mapping[str, Any]], category_names: Sequence[Sequence[str]]
                   ) -> list[SearchDoc]:
        """``build`` for a batch: the analyser takes all titles and descriptions at once, on all its threads."""
        grams: list[list[str]] = []
        texts = korean.analyze_many([r["title"] for r in rows] + [r["description"] for r in rows], grams)
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
                title_grams=grams[k], body_grams=grams[len(rows) + k],
            ))
        return out


@functools.lru_cache(maxsize=1024)
def _category_terms(name: str) -> tuple[str, ...]:
    return tuple(korean.analyze(name.replace("/", " ")))


class SearchBackend(Protocol):
    name: str

    async def index(self, docs: Sequence[SearchDoc]) -> None: ...

    async def remove(self, item_ids: Sequence[int]) -> None: ...

    async def search(self, q: SearchQuery, *, columns: str | None = None) -> SearchPage:
        """The page of hits; with ``columns`` (of items alias ``i``) a backend may read some hits' rows of them in
        its own statements (``SearchPage.rows``), sparing the caller a read."""
        ...

    async def complete(self, prefix: str, limit: int = 8) -> list[str]: ...

    async def vocabulary(self, terms: Sequence[str]) -> dict[str, int]:
        """How many listings have each term (0 for none)."""
        ...

    async def near_terms(self, term: str) -> list[tuple[str, int]]:
        """Indexed terms spelled like ``term`` (candidates for "did you mean"), with their listing counts."""
        ...

    async def clear(self) -> None: ...

    async def refresh(self) -> None: ...
