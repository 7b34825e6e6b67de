"""What a search asks and what it answers: ``SearchQuery.parse`` reads untrusted input (text, optional point
and radius, the nearby filters, paging); hits, pages and their cursors. No index or database here.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from market import validation as v
from market.errors import InvalidInput
from market.geo import PUBLIC_STATUSES, read_filters
from market.search import korean

MAX_QUERY_CHARS = 200
MAX_QUERY_TERMS = 12
MAX_QUERY_GRAMS = 8
MAX_OFFSET = 500


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
    # Bigrams of the query words the analyser may have misread (korean.word_grams), searched at a lower weight.
    grams: tuple[str, ...] = ()
    # Listings a search leaves out (a second pass: those already on the page). Set by the backend, never parsed.
    exclude: tuple[int, ...] = ()

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
        terms, head, grams = _analysed(text)
        point = v.coordinates(data, required=False)
        radius = None
        if point is not None:
            radius = v.integer(data, "radius_m", lo=100, hi=max_radius_m, required=False,
                               default=default_radius_m) or default_radius_m
        filters = read_filters(data)
        limit = v.integer(data, "limit", lo=1, hi=max_limit, required=False, default=20) or 20
        return cls(text=text, terms=terms, head=head, lat=point[0] if point else None,
                   lng=point[1] if point else None, radius_m=radius, **filters, limit=limit,
                   offset=decode_offset(data.get("cursor")), grams=grams)

    def with_text(self, text: str) -> SearchQuery:
        """The same search for other words (a spelling correction), analysed as ``parse`` would."""
        text = " ".join(text.split())[:MAX_QUERY_CHARS]
        terms, head, grams = _analysed(text)
        return replace(self, text=text, terms=terms, head=head, grams=grams)


def _analysed(text: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """A query's terms, the terms of its head noun, and the bigrams of its words the analyser may have misread."""
    terms = tuple(korean.query_terms(text))[:MAX_QUERY_TERMS] if text else ()
    head = tuple(t for t in korean.head_terms(text) if t in terms) if len(terms) > 1 else ()
    grams = tuple(dict.fromkeys(korean.query_grams(text)))[:MAX_QUERY_GRAMS] if text else ()
    return terms, head, grams


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
    # Asked for ``columns``: the rows of them a backend read for some of the hits in its own statements (listing →
    # row); the caller reads the others. None: none read.
    rows: dict[int, dict[str, Any]] | None = None


# -- cursors ---------------------------------------------------------------------------------------------

def encode_offset(offset: int) -> str:
    # (json.dumps({"o": offset}) written out: the same text, without the encoder's machinery for every page)
    return base64.urlsafe_b64encode(f'{{"o": {int(offset)}}}'.encode()).decode().rstrip("=")


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
