"""A document as the embedded backend's postings and FULLTEXT tokens hold it: term keys, tokens, weights.
Pure functions: no database.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter

from market.search.documents import BODY_WEIGHT, RELATED_WEIGHT, TITLE_WEIGHT, SearchDoc

TF_CAP = 2
# A bigram of a misread word (korean.word_grams), in half points: in the title, in the description. Every
# bigram posting is in tier 0, so that the index can take one back knowing only its key.
GRAM_TITLE_WEIGHT, GRAM_BODY_WEIGHT = 2, 1


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


def key_of_token(tok: str) -> str | None:
    if tok.startswith("h"):
        return "#" + tok[1:]
    return untoken(tok)


def keys_of_tokens(tokens: str) -> list[str]:
    """``key_of_token`` of each space-separated token that has a key, in order. Stored tokens (``token``) are
    decoded at once when every one is a plain term ("w" and whole bytes in hex, one space apart): a second pass
    reads ten listings' words, and one ``bytes.fromhex`` of them all takes half the time of one a token."""
    if _PLAIN_TOKENS.fullmatch(tokens):
        try:
            words = bytes.fromhex(tokens[1:].replace(" w", "20")).decode().split(" ")
        except ValueError:  # (bytes that are no UTF-8: each token is read on its own)
            pass
        else:
            if len(words) == tokens.count(" ") + 1:  # (else a term held a space: one word a token, read so)
                return words
    return [k for k in (key_of_token(t) for t in tokens.split()) if k]


_PLAIN_TOKENS = re.compile(r"w(?:[0-9a-fA-F]{2})+(?: w(?:[0-9a-fA-F]{2})+)*")


def postings_of(doc: SearchDoc) -> dict[str, tuple[int, int]]:
    """A document's postings: term key → (tier, weight in half points).

    The weight is where the term appears — 3 in the title, 1 in the description (each counted at most
    ``TF_CAP`` times), 0.5 among the related terms — doubled, so that every score is a whole number and two
    listings that score the same compare equal. Tier 1 holds the terms of the title. The bigrams of misread
    words weigh less (GRAM_TITLE_WEIGHT, GRAM_BODY_WEIGHT), all in tier 0."""
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
    title_grams = set(doc.title_grams)
    for gram in dict.fromkeys([*doc.title_grams, *doc.body_grams]):
        w = GRAM_TITLE_WEIGHT * (gram in title_grams) + GRAM_BODY_WEIGHT * (gram in doc.body_grams)
        out[term_key(gram)] = (0, w)
    return out
