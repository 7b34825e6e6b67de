"""What a narrow search's second pass reads of its best hits, read quickly: the same words as by definition."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from market.search.feedback import MIN_SHARE, FeedbackDoc, shared_words
from market.search.postings import key_of_token, keys_of_tokens, token

# Terms as the analyser gives them, and what else a stored string could hold: long terms (hashed tokens), a space
# inside a term, an empty one.
_TERMS = st.one_of(st.sampled_from(["텐트", "캠핑", "의자", "ps5", "고프로", "텐", "a", "x" * 41, "헬리녹스" * 4]),
                   st.text(min_size=0, max_size=12))
_JUNK = st.sampled_from(["", "w", "wzz", "w6", "wff", "h", "x12", "hab12", "w c3a9"])


def _defined(tokens: str) -> list[str]:
    return [k for k in (key_of_token(t) for t in tokens.split()) if k]


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(terms=st.lists(_TERMS, max_size=12), junk=st.lists(_JUNK, max_size=2), gap=st.sampled_from([" ", "  "]))
def test_a_stored_token_string_reads_as_its_tokens_one_by_one(terms: list[str], junk: list[str], gap: str) -> None:
    plain = " ".join(token(t) for t in terms)
    assert keys_of_tokens(plain) == _defined(plain)
    mixed = gap.join([*(token(t) for t in terms), *junk])
    assert keys_of_tokens(mixed) == _defined(mixed)
    assert keys_of_tokens(" " + plain) == _defined(" " + plain) and keys_of_tokens(plain + " ") == _defined(plain)


def test_the_quick_reading_is_the_whole_string_at_once_and_a_space_in_a_term_is_still_one_term() -> None:
    assert keys_of_tokens(" ".join(token(t) for t in ["캠핑", "의자", "ps5"])) == ["캠핑", "의자", "ps5"]
    assert keys_of_tokens(" ".join(token(t) for t in ["캠핑 의자", "텐트"])) == ["캠핑 의자", "텐트"]
    assert keys_of_tokens("") == [] and keys_of_tokens("wc3") == []  # (a cut UTF-8 letter is no word)


def _shared_by_definition(docs: list[FeedbackDoc]) -> dict[str, float]:
    place = {"title": 1.0, "related": 0.5, "body": 0.25}
    share: dict[str, float] = {}
    for d in docs:
        best: dict[str, float] = {}
        for where, terms in (("title", d.title), ("related", d.related), ("body", d.body)):
            for t in terms:
                best[t] = max(best.get(t, 0.0), place[where])
        for t, w in best.items():
            share[t] = share.get(t, 0.0) + w / len(docs)
    return {t: s for t, s in share.items() if s >= MIN_SHARE}


_WORDS = st.lists(st.sampled_from(["텐트", "캠핑", "의자", "드릴", "체어원", "가벼워요", "코베아", "랜턴"]), max_size=6)


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(docs=st.lists(st.builds(FeedbackDoc, title=_WORDS, body=_WORDS, related=_WORDS), max_size=10))
def test_the_words_hits_share_are_those_of_the_definition_in_its_order(docs: list[FeedbackDoc]) -> None:
    got = shared_words(docs)
    assert list(got.items()) == list(_shared_by_definition(docs).items())
