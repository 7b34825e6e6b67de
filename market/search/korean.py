"""Korean text analysis for search: one Kiwi morphological analyser per process.

``analyze(text)`` turns a title, a description or a query into search terms:

- nouns (common, proper), foreign words, numbers and roots are kept; particles, endings and verbs are dropped
  ("캠핑의자를 빌리고 싶어요" → 캠핑, 의자, 캠핑의자);
- a compound is split and also kept whole (캠핑의자 → 캠핑, 의자, 캠핑의자), and a long noun the analyser did
  not split gives up a known head noun at its end (릴렉스체어 → 체어 → 의자);
- Latin letters and digits written together become one lower-case term (PS5, ps 5 → ps5; A7M3 → a7m3);
- synonyms and spelling variants map to one canonical term (체어 → 의자, 플스5 → 플레이스테이션5);
- words that every rental listing uses (대여, 빌려요, 하루 …) carry no meaning for search and are dropped.

``related(terms)`` adds broader terms for a listing (플레이스테이션5 → 게임기, 콘솔), so a search for the kind of
thing finds the particular things. Both the embedded and the Elasticsearch backends index these terms.

The dictionaries below are product vocabulary for a second-hand rental market, not tuned to any query set.
"""

from __future__ import annotations

import bisect
import functools
import re
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

# Parts of speech that carry meaning for search (Sejong tags as Kiwi uses them).
_NOUNS = {"NNG", "NNP", "XR"}
_ALNUM = {"SL", "SN"}

# One canonical term per group; every other spelling maps to it.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "의자": ("체어", "체아"),
    "플레이스테이션": ("플스", "ps", "playstation", "플레이스테이숀"),
    "플레이스테이션5": ("플스5", "ps5", "playstation5"),
    "플레이스테이션4": ("플스4", "ps4", "playstation4"),
    "닌텐도": ("nintendo",),
    "스위치": ("switch",),
    "엑스박스": ("xbox", "엑박"),
    "노트북": ("랩탑", "laptop", "notebook"),
    "카메라": ("camera", "캠"),
    "디에스엘알": ("dslr",),
    "프로젝터": ("projector", "빔", "빔프로젝터", "프로젝트"),
    "스피커": ("speaker",),
    "블루투스": ("bluetooth",),
    "자전거": ("바이크", "bike", "bicycle", "바이시클"),
    "캠핑": ("camping", "캠프"),
    "바베큐": ("바비큐", "bbq", "비비큐"),
    "그릴": ("grill",),
    "아이스박스": ("쿨러", "cooler", "아이스쿨러", "쿨러박스"),
    "다이슨": ("dyson",),
    "소니": ("sony",),
    "캐논": ("canon", "케논"),
    "니콘": ("nikon",),
    "후지필름": ("fujifilm", "후지"),
    "고프로": ("gopro",),
    "보쉬": ("bosch",),
    "마끼다": ("마키타", "makita"),
    "디월트": ("dewalt",),
    "드릴": ("drill", "드라이버드릴", "임팩드릴", "임팩트드릴"),
    "헬리녹스": ("helinox",),
    "스노우피크": ("스노피크", "snowpeak"),
    "코베아": ("kovea",),
    "콜맨": ("coleman",),
    "제습기": ("dehumidifier",),
    "가습기": ("humidifier",),
    "커피머신": ("커피메이커", "에스프레소머신", "커피기계", "coffeemachine"),
    "정장": ("수트", "슈트", "suit"),
    "웨딩드레스": ("웨딩 드레스", "wedding dress"),
    "드레스": ("dress",),
    "한복": ("hanbok",),
    "사다리": ("ladder",),
    "카시트": ("car seat", "carseat", "카싯"),
    "골프채": ("골프클럽", "골프 클럽", "golf club"),
    "골프": ("golf",),
    "보드게임": ("board game", "boardgame"),
    "랜턴": ("랜턴등", "lantern", "렌턴"),
    "침낭": ("슬리핑백", "sleeping bag", "sleepingbag"),
    "천막": ("캐노피", "그늘막", "canopy"),
    "스키": ("ski",),
    "스노보드": ("보드복", "snowboard", "스노우보드"),
    "아이패드": ("ipad",),
    "맥북": ("macbook",),
    "게임기": ("게임 콘솔",),
    "전동차": ("붕붕카", "유아전동차", "전동 자동차"),
    "유아": ("아동", "키즈", "어린이", "유아용", "아동용"),
    "공기청정기": ("공청기", "공기 청정기"),
    "청소기": ("vacuum", "클리너"),
    "냉장고": ("refrigerator",),
    "세탁기": ("washer",),
    "전자레인지": ("전자렌지", "렌지"),
    "에어프라이어": ("에어 프라이어", "에어후라이어", "airfryer"),
    "선풍기": ("서큘레이터",),
    "모니터": ("monitor",),
    "키보드": ("keyboard",),
    "마우스": ("mouse",),
    "태블릿": ("tablet", "타블렛", "탭"),
    "스마트폰": ("휴대폰", "핸드폰", "smartphone", "폰"),
    "헤드폰": ("headphone", "헤드셋", "headset"),
    "이어폰": ("earphone", "이어버드", "earbuds"),
    "마이크": ("mic", "microphone", "마이크로폰"),
    "앰프": ("amp", "amplifier"),
    "기타": ("guitar",),
    "피아노": ("piano", "디지털피아노"),
    "킥보드": ("킥 보드", "scooter"),
    "전동킥보드": ("전동 킥보드", "e스쿠터"),
    "캐리어": ("여행가방", "여행 가방", "수트케이스", "suitcase"),
    "유모차": ("스트롤러", "유아차"),
    "아기띠": ("힙시트", "베이비캐리어"),
    "텐트": ("tent", "텐투"),
    "타프": ("tarp",),
    "매트": ("mat", "매트리스"),
    "해먹": ("hammock",),
    "버너": ("burner", "스토브"),
    "코펠": ("쿠커", "캠핑냄비"),
    "파라솔": ("parasol",),
    "책": ("도서", "교재", "book"),
    "공구": ("tool", "툴"),
    "망치": ("hammer", "해머"),
    "톱": ("saw",),
    "미러리스": ("mirrorless",),
}

# A broader term a listing also answers to: "the kind of thing" → "this particular thing".
BROADER: dict[str, tuple[str, ...]] = {
    "플레이스테이션": ("게임기",),
    "플레이스테이션5": ("게임기", "플레이스테이션"),
    "플레이스테이션4": ("게임기", "플레이스테이션"),
    "엑스박스": ("게임기",),
    "닌텐도": ("게임기",),
    "미러리스": ("카메라",),
    "디에스엘알": ("카메라",),
    "캐논": ("카메라",),
    "니콘": ("카메라",),
    "후지필름": ("카메라",),
    "고프로": ("카메라", "액션캠"),
    "액션캠": ("카메라",),
    "캠코더": ("카메라",),
    "드릴": ("공구",),
    "그라인더": ("공구",),
    "직쏘": ("공구", "톱"),
    "원형톱": ("공구", "톱"),
    "샌더": ("공구",),
    "텐트": ("캠핑",),
    "타프": ("캠핑",),
    "침낭": ("캠핑",),
    "랜턴": ("캠핑",),
    "야전침대": ("캠핑", "코트"),
    "맥북": ("노트북",),
    "그램": ("노트북",),
    "유모차": ("유아",),
    "카시트": ("유아",),
    "바운서": ("유아",),
    "전동차": ("유아",),
    "턴테이블": ("음향",),
}

# Words in nearly every rental listing or request: they tell nothing about the thing.
STOPWORDS = frozenset({
    "대여", "렌탈", "렌트", "대여료", "렌탈료", "대여비", "빌림", "하루", "일일", "원", "만원", "천원", "가능", "문의",
    "상태", "사용", "사용감", "제품", "물건", "물품", "거래", "직거래", "필요", "기간", "협의", "연락", "주말", "평일",
    "근처", "동네", "이웃", "분", "때", "것", "수", "정도", "개", "번", "일", "주", "달", "한", "두", "좀", "혹시",
    "단기", "장기", "급구", "구해요", "구함", "삽니다", "팝니다", "신품", "새것", "새", "중고", "저렴", "가격", "네고",
    "보증금", "대여중", "예약", "사진", "말씀", "부탁", "감사", "안녕", "확인", "반납", "세탁", "깨끗", "최대한",
})

_CANON: dict[str, str] = {}
for _canon, _variants in SYNONYMS.items():
    _CANON[_canon] = _canon
    for _v in _variants:
        _CANON[_v.replace(" ", "")] = _canon

# Known head nouns a long unsplit noun may end with (릴렉스체어 → 체어), longest first.
_HEADS = sorted({k for k in _CANON if len(k) >= 2 and not k.isascii()} | set(BROADER), key=len, reverse=True)

MAX_SPACING_CHARS = 200
# Brand names among the vocabulary (proper nouns for the analyser).
_PROPER = frozenset({"닌텐도", "소니", "캐논", "니콘", "후지필름", "고프로", "보쉬", "마끼다", "디월트", "헬리녹스",
                     "스노우피크", "코베아", "콜맨", "다이슨", "엑스박스", "플레이스테이션", "플레이스테이션5",
                     "플레이스테이션4", "마키타", "스노피크", "엑박", "플스", "플스5", "플스4"})
_lock = threading.Lock()
_kiwi: Any = None


def kiwi() -> Any:
    """The process's one analyser (building it takes ~1 s and ~500 MB once used)."""
    global _kiwi
    if _kiwi is None:
        with _lock:
            if _kiwi is None:
                from kiwipiepy import Kiwi

                k = Kiwi()
                # Our vocabulary as user words, so 고프로 stays one noun (not 고 + 프로) and 체어 is never split.
                for word in sorted(set(_CANON) | set(BROADER)):
                    if not word.isascii() and " " not in word:
                        k.add_user_word(word, "NNP" if word in _PROPER else "NNG", 0)
                _kiwi = k
    return _kiwi


def warm_up() -> None:
    """Load the model now rather than on the first search (its first analysis loads lazily)."""
    analyze("캠핑의자를 빌려요 PS5")


def normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def canonical(term: str) -> str:
    return _CANON.get(term, term)


@functools.lru_cache(maxsize=65536)
def _heads(noun: str) -> tuple[str, ...]:
    """Known nouns at the end or start of a long noun the analyser kept whole."""
    if len(noun) < 3 or noun.isascii():
        return ()
    out = []
    for head in _HEADS:
        if len(head) < len(noun) and (noun.endswith(head) or noun.startswith(head)):
            out.append(head)
    return tuple(out)


@functools.lru_cache(maxsize=8192)
def halves(noun: str) -> tuple[str, ...]:
    """A Hangul noun of four or more syllables as two nouns of two or more syllables that the analyser knows on
    their own (웨딩드레스 → 웨딩, 드레스; the longer second half tried first), or nothing. A narrow search's second
    pass also looks for them: listings that write the compound as two words."""
    if not 4 <= len(noun) <= MAX_HALVES_CHARS or not all("가" <= ch <= "힣" for ch in noun) or noun in _CANON \
            or noun in BROADER:  # (a word of our own tables is whole: 미러리스 is no 미러 + 리스)
        return ()
    for cut in range(2, len(noun) - 1):
        first, second = noun[:cut], noun[cut:]
        if _known_noun(first) and _known_noun(second):
            both = tuple(t for t in dict.fromkeys((canonical(first), canonical(second))) if t not in STOPWORDS)
            return both if len(both) == 2 else ()
    return ()


MAX_HALVES_CHARS = 10  # (a longer word is no compound of two nouns: not cut, each cut asks the analyser twice)


@functools.lru_cache(maxsize=65536)
def _known_noun(word: str) -> bool:
    toks = kiwi().tokenize(word)
    return len(toks) == 1 and toks[0].tag in ("NNG", "NNP") and toks[0].form == word and toks[0].id != _unknown_id()


def _words(text: str, tokens: Iterable[Any]) -> list[list[tuple[str, str]]]:
    """Tokens grouped by written word (split at spaces in the text).

    A noun sharing its syllable with what follows (팝니다 read as 파 + 이 + ㅂ니다, all in one syllable) is a
    misread verb: it is tagged so that it is not a term."""
    starts = [m.start() for m in re.finditer(r"\S+", text)]
    groups: dict[int, list[tuple[str, str, int]]] = {}
    for tok in tokens:
        word = bisect.bisect_right(starts, tok.start) - 1
        groups.setdefault(word, []).append((tok.form, tok.tag, tok.start, tok.start + tok.len))
    out = []
    for _, toks in sorted(groups.items()):
        out.append([(f, "X" if t in _NOUNS and nxt_start < end else t)
                    for (f, t, _, end), (_, _, nxt_start, _) in zip(toks, toks[1:] + [("", "", 10**9, 0)])])
    return out


_CLEAN = re.compile(r"[^0-9a-z가-힣ㄱ-ㅎ]+")


MAX_TEXT_CHARS = 5000


def analyze(text: str) -> list[str]:
    """Search terms of a text, in order, repeated as often as they occur (term frequency counts)."""
    text = normalize(text)[:MAX_TEXT_CHARS]
    if not text.strip():
        return []
    return _terms(text, kiwi().tokenize(text))


def analyze_many(texts: Sequence[str], grams: list[list[str]] | None = None) -> list[list[str]]:
    """``analyze`` for many texts at once: the analyser works through them on all its threads. With ``grams``
    (an empty list), it receives each text's n-gram terms (see ``word_grams``) from the same analysis."""
    clean = [normalize(t)[:MAX_TEXT_CHARS] for t in texts]
    todo = [i for i, t in enumerate(clean) if t.strip()]
    out: list[list[str]] = [[] for _ in clean]
    if grams is not None:
        grams[:] = [[] for _ in clean]
    for i, tokens in zip(todo, kiwi().tokenize([clean[i] for i in todo])):
        tokens = list(tokens)
        out[i] = _terms(clean[i], tokens)
        if grams is not None:
            grams[i] = _grams(clean[i], tokens)
    return out


# Words the analyser may have misread also match as the character bigrams of the word as written, marked with
# this prefix so that they never meet a real term (the bigram 캠핑 of 캠핑카 is not the word 캠핑).
GRAM_MARK = "~"


def word_grams(text: str) -> list[str]:
    """The n-gram terms of a text: for each written word the analyser does not know, or reads as a noun and a
    particle, the bigrams of the word as written (each once per word). Every other word gives none, so the
    index holds n-grams only where the analysis may be wrong."""
    text = normalize(text)[:MAX_TEXT_CHARS]
    return _grams(text, list(kiwi().tokenize(text))) if text.strip() else []


def _grams(text: str, tokens: Sequence[Any]) -> list[str]:
    written = re.findall(r"\S+", text)
    starts = [m.start() for m in re.finditer(r"\S+", text)]
    groups: dict[int, list[Any]] = {}
    for tok in tokens:
        groups.setdefault(bisect.bisect_right(starts, tok.start) - 1, []).append(tok)
    out: list[str] = []
    for w, toks in sorted(groups.items()):
        word = _CLEAN.sub("", written[w]) if w >= 0 else ""
        if len(word) >= 3 and not word.isascii() and _misread(word, toks):
            out += [GRAM_MARK + g for g in dict.fromkeys(word[i:i + 2] for i in range(len(word) - 1))]
    return out


def _misread(word: str, toks: Sequence[Any]) -> bool:
    """Whether the analyser may have got a written word wrong: a noun it does not know (an unknown brand or
    loanword), a particle in the middle of the word (다이슨에어랩 read as 다이슨 + 에 + …), a determiner before nouns
    (고프로 read as 고 + 프로), or a word read as a noun and a one-syllable particle that it also reads, nearly as
    likely, as one noun (마이크로: 마이크 + 로)."""
    unknown = _unknown_id()
    if any(t.tag in _NOUNS and t.id == unknown for t in toks):
        return True
    tags = [t.tag for t in toks]
    if any(a.startswith("J") and any(b in _NOUNS for b in tags[i + 1:]) for i, a in enumerate(tags)):
        return True
    # A determiner and nouns in one word, when the analyser nearly as well reads its first syllable as no
    # determiner: a brand or model name cut at a syllable that can be one (고프로: 고 + 프로, 맨프로토: 맨 + 프로 + 토,
    # 매빅3: 매 + 빅 + 3). Written as one word, 새제품, 한세트, 여러개 are read as a determiner with no doubt.
    content = [tag for tag in tags if not tag.startswith("S")]
    if (len(content) >= 2 and content[0] == "MM" and all(tag in _NOUNS or tag == "NNB" for tag in content[1:])
            and _determiner_doubtful(word)):
        return True
    return (len(toks) == 2 and tags[0] in _NOUNS and tags[1].startswith("J") and toks[1].len == 1
            and _one_noun_too(word))


# How much less likely (in the analyser's log score) the reading as one noun may be than the best reading.
ONE_NOUN_MARGIN = 8.0
# How much less likely a reading whose first syllable is no determiner may be, for a determiner to be in doubt.
DETERMINER_MARGIN = 3.0


@functools.lru_cache(maxsize=65536)
def _determiner_doubtful(word: str) -> bool:
    readings = kiwi().analyze(word, top_n=4)
    best = readings[0][1]
    return any(toks and toks[0].tag != "MM" and best - score <= DETERMINER_MARGIN for toks, score in readings[1:])


@functools.lru_cache(maxsize=65536)
def _one_noun_too(word: str) -> bool:
    readings = kiwi().analyze(word, top_n=3)
    best = readings[0][1]
    return any(len(toks) == 1 and toks[0].tag in _NOUNS and toks[0].form == word and best - score <= ONE_NOUN_MARGIN
               for toks, score in readings)


@functools.lru_cache(maxsize=1)
def _unknown_id() -> int:
    """The morpheme id the analyser gives a noun it does not know."""
    return int(kiwi().tokenize("쀍뷁퓱")[0].id)


def _terms(text: str, tokens: Iterable[Any]) -> list[str]:
    out: list[str] = []
    previous = ""  # the last noun of the previous written word, for two-word names (슬리핑 백 → 침낭)
    for word in _words(text, tokens):
        first = next((_CLEAN.sub("", f) for f, t in word if t in _NOUNS or t in _ALNUM), "")
        if previous and first and (previous + first) in _CANON:
            _emit(out, previous + first)
        nouns = [_CLEAN.sub("", f) for f, t in word if t in _NOUNS or t in _ALNUM]
        previous = nouns[-1] if nouns and word[-1][1] in _NOUNS | _ALNUM else ""
        run: list[str] = []  # consecutive nouns in one written word: a compound
        alnum = ""
        for form, tag in word + [("", "")]:
            form = _CLEAN.sub("", form)
            if tag in _ALNUM and form:
                alnum += form
                continue
            if alnum:
                _emit(out, alnum)
                letters = alnum.rstrip("0123456789")
                if letters != alnum and len(letters) >= 2 and letters.isalpha():
                    _emit(out, letters)  # ps5 also answers to ps
                run.append(alnum)
                alnum = ""
            if tag in _NOUNS and form:
                _emit(out, form)
                for head in _heads(form):
                    _emit(out, head)
                run.append(form)
                continue
            if len(run) > 1:
                _emit(out, "".join(run))
            run = []
    return out


def _emit(out: list[str], term: str) -> None:
    term = canonical(term)
    if term and term not in STOPWORDS and not term.isdigit() and not (len(term) == 1 and term.isascii()):
        out.append(term)


def analyze_spaced(text: str) -> list[str]:
    """The text's words with the analyser's spacing (캠핑의자대여 → 캠핑의자 대여)."""
    text = normalize(text)[:MAX_SPACING_CHARS]
    return kiwi().space(text).split() if text.strip() else []


def aliases() -> list[tuple[str, str]]:
    """Every other spelling of a canonical term, with it (플스5 → 플레이스테이션5), written as one word."""
    return [(alias, canon) for alias, canon in _CANON.items() if alias != canon]


def related(terms: Iterable[str]) -> list[str]:
    """Broader terms for a listing's terms (each once), not already among them."""
    have = set(terms)
    out: list[str] = []
    for t in have:
        for b in BROADER.get(t, ()):
            if b not in have and b not in out:
                out.append(b)
    return out


def head_terms(text: str) -> list[str]:
    """The terms of the last written word that has any (the head noun of a Korean phrase)."""
    return list(_head_terms(text))


def query_terms(text: str) -> list[str]:
    """A query's distinct terms, in order."""
    return list(_query_terms(text))


# Queries repeat (the popular ones most of all) and the analyser is the costliest step of a search's CPU:
# each query text is analysed once per process while it stays among the recent ones.
@functools.lru_cache(maxsize=8192)
def _head_terms(text: str) -> tuple[str, ...]:
    for word in reversed(normalize(text).split()):
        terms = analyze(word)
        if terms:
            return tuple(terms)
    return ()


@functools.lru_cache(maxsize=8192)
def _query_terms(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(analyze(text)))


def query_grams(text: str) -> list[str]:
    """``word_grams`` of a query's words (analysed once per process, as its terms are)."""
    return list(_query_grams(text))


@functools.lru_cache(maxsize=8192)
def _query_grams(text: str) -> tuple[str, ...]:
    return tuple(word_grams(text))
