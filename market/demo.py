"""Demo data: a believable Seoul neighbourhood — a few people and ~200 items with photos.

Goes through the market's own service (the same rules as any user). Running it twice adds nothing.
"""

from __future__ import annotations

import functools
import io
import logging
import random
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from market.errors import Conflict
from market.items import today
from market.service import Market

log = logging.getLogger("billi.demo")

DEMO_PASSWORD = "billi1234"
DEMO_USERS = [
    ("minji@demo.billi.kr", "민지네캠핑"),
    ("junho@demo.billi.kr", "준호공구함"),
    ("seoyeon@demo.billi.kr", "서연맘"),
    ("hyun@demo.billi.kr", "현이의카메라"),
    ("dami@demo.billi.kr", "다미파티룸"),
    ("taeho@demo.billi.kr", "태호라이더"),
]

# Neighbourhood centroids (lat, lng): enough spread to make "near me" meaningful around Gangnam.
PLACES = [
    ("역삼동", 37.5006, 127.0366), ("삼성동", 37.5140, 127.0565), ("서초동", 37.4919, 127.0093),
    ("논현동", 37.5110, 127.0286), ("잠실동", 37.5080, 127.0830), ("성수동", 37.5446, 127.0559),
    ("합정동", 37.5496, 126.9139), ("연남동", 37.5660, 126.9250), ("이태원동", 37.5346, 126.9946),
    ("목동", 37.5265, 126.8753), ("공덕동", 37.5443, 126.9517), ("신림동", 37.4842, 126.9297),
    ("망원동", 37.5560, 126.9020), ("혜화동", 37.5863, 127.0019), ("여의도동", 37.5219, 126.9245),
    ("대치동", 37.4994, 127.0580), ("방배동", 37.4813, 126.9976), ("개포동", 37.4788, 127.0520),
]

# leaf category name → (titles, price/day range, deposit range)
CATALOG: dict[str, tuple[list[str], tuple[int, int], tuple[int, int]]] = {
    "원터치텐트": (["4인용 원터치 텐트", "콜맨 원터치 텐트 (3~4인)", "그늘막 겸 원터치 텐트"], (8000, 20000), (30000, 100000)),
    "돔텐트": (["스노우피크 돔텐트", "가족용 대형 돔텐트", "2인 백패킹 돔텐트"], (10000, 30000), (50000, 200000)),
    "캠핑의자": (["헬리녹스 체어원", "릴렉스 캠핑의자 2개", "로우 캠핑체어"], (3000, 8000), (10000, 50000)),
    "캠핑테이블": (["롤 캠핑테이블", "IGT 캠핑테이블", "접이식 캠핑 테이블"], (3000, 10000), (10000, 50000)),
    "아이스박스": (["콜맨 쿨러 48L", "캠핑 아이스박스 대형", "소프트 쿨러백"], (3000, 8000), (10000, 30000)),
    "랜턴": (["LED 캠핑 랜턴", "가스 랜턴 세트", "충전식 랜턴 2개"], (2000, 6000), (5000, 30000)),
    "로드자전거": (["카본 로드자전거 54사이즈", "입문용 로드자전거", "자이언트 로드바이크"], (15000, 40000), (100000, 500000)),
    "접이식자전거": (["브롬톤 접이식자전거", "미니벨로 접이식", "출퇴근용 접이식 자전거"], (10000, 25000), (100000, 300000)),
    "전기자전거": (["삼천리 전기자전거", "출퇴근용 전기자전거"], (15000, 30000), (200000, 500000)),
    "골프채": (["골프채 풀세트 (남성용)", "여성용 골프채 세트", "드라이버 단품"], (15000, 40000), (100000, 500000)),
    "스노보드": (["스노보드 데크+바인딩", "여성용 스노보드 세트"], (15000, 30000), (50000, 200000)),
    "DSLR/미러리스": (["소니 A7III 바디", "캐논 R6 + 24-105 렌즈", "후지필름 X-T4"], (25000, 60000), (300000, 1500000)),
    "렌즈": (["시그마 24-70 F2.8", "캐논 50mm 단렌즈", "소니 70-200 GM"], (10000, 40000), (100000, 800000)),
    "액션캠": (["고프로 히어로 11", "인스타360 X3", "DJI 오즈모 액션"], (10000, 25000), (100000, 300000)),
    "드론": (["DJI 미니3 프로", "DJI 매빅 에어2"], (25000, 50000), (300000, 800000)),
    "플레이스테이션": (["PS5 디스크 에디션 + 패드 2개", "플스4 프로 + 게임 3종"], (10000, 25000), (100000, 300000)),
    "닌텐도 스위치": (["닌텐도 스위치 OLED", "스위치 + 마리오카트", "스위치 라이트"], (7000, 15000), (100000, 250000)),
    "VR 기기": (["메타 퀘스트 3", "오큘러스 퀘스트 2"], (15000, 30000), (200000, 400000)),
    "프로젝터": (["빔프로젝터 (풀HD)", "캠핑용 미니 빔프로젝터", "LG 시네빔"], (10000, 30000), (100000, 400000)),
    "블루투스 스피커": (["JBL 파티박스", "마샬 스탠모어", "보스 사운드링크"], (5000, 20000), (50000, 200000)),
    "노트북": (["맥북 에어 M2", "게이밍 노트북", "LG 그램 16"], (15000, 40000), (300000, 1000000)),
    "로봇청소기": (["로보락 로봇청소기", "삼성 비스포크 제트봇"], (8000, 20000), (100000, 300000)),
    "스팀청소기": (["스팀 청소기 (매트리스용)", "카처 스팀 클리너"], (5000, 12000), (30000, 100000)),
    "에어프라이어": (["대용량 에어프라이어", "필립스 에어프라이어"], (3000, 7000), (20000, 50000)),
    "커피머신": (["드롱기 커피머신", "네스프레소 캡슐머신"], (5000, 12000), (50000, 200000)),
    "제습기": (["위닉스 제습기 16L", "LG 휘센 제습기"], (5000, 10000), (50000, 150000)),
    "의류관리기": (["LG 스타일러", "삼성 에어드레서"], (15000, 30000), (200000, 500000)),
    "유모차": (["부가부 폭스 유모차", "휴대용 절충형 유모차", "쌍둥이 유모차"], (5000, 15000), (50000, 300000)),
    "카시트": (["신생아 카시트", "주니어 카시트", "회전형 카시트"], (4000, 10000), (50000, 150000)),
    "아기침대": (["원목 아기침대", "접이식 아기침대"], (4000, 10000), (50000, 150000)),
    "바운서": (["4moms 마마루", "아기 바운서"], (3000, 8000), (30000, 100000)),
    "승용완구": (["아기 붕붕카", "유아 전동차"], (3000, 10000), (20000, 100000)),
    "전동드릴": (["보쉬 전동드릴", "마끼다 충전드릴 세트", "해머드릴"], (5000, 12000), (30000, 100000)),
    "사다리": (["A형 사다리 2m", "접이식 사다리 3단"], (3000, 7000), (20000, 50000)),
    "공구세트": (["가정용 공구세트 100pcs", "자동차 정비 공구세트"], (3000, 8000), (20000, 80000)),
    "고압세척기": (["카처 고압세척기", "충전식 고압세척기"], (8000, 15000), (50000, 150000)),
    "포토부스": (["파티용 포토부스 세트", "폴라로이드 카메라 + 필름"], (10000, 30000), (50000, 200000)),
    "천막": (["3x3 행사용 천막", "캐노피 천막"], (10000, 25000), (50000, 150000)),
    "한복": (["여성 한복 (돌잔치용)", "남성 한복 세트", "아동 한복"], (10000, 25000), (30000, 100000)),
    "정장": (["남성 정장 (면접용) 100", "여성 정장 세트 55"], (10000, 20000), (30000, 100000)),
    "기타": (["야마하 통기타", "펜더 일렉기타 + 앰프", "클래식 기타"], (5000, 15000), (50000, 300000)),
    "키보드/디지털피아노": (["야마하 디지털피아노", "88건반 키보드"], (8000, 20000), (100000, 300000)),
    "보드게임": (["보드게임 5종 세트", "카탄 + 스플렌더"], (3000, 8000), (20000, 50000)),
    "캐리어": (["28인치 캐리어", "기내용 20인치 캐리어", "샘소나이트 캐리어"], (3000, 8000), (30000, 100000)),
    "포켓와이파이": (["일본 포켓와이파이", "유럽 포켓와이파이"], (3000, 6000), (30000, 50000)),
    "이동장/켄넬": (["중형견 켄넬", "고양이 이동장"], (2000, 5000), (10000, 30000)),
}
DESCRIPTIONS = [
    "{title} 빌려드려요. 상태 좋고 깨끗하게 관리했어요. {place} 근처에서 직거래해요.",
    "한두 번 사용했어요. 필요한 분께 저렴하게 빌려드립니다. 주말 대여 환영해요!",
    "구성품 모두 있어요. 사용법 알려드려요. 반납할 때 깨끗이만 부탁드려요 :)",
    "{place}역 근처에서 전달 가능해요. 평일 저녁, 주말 모두 괜찮아요.",
    "캠핑/여행 갈 때 사기엔 아깝잖아요. 필요한 날만 빌려 쓰세요.",
]
# A pictogram per leaf category (Noto Color Emoji), so a newcomer's first screen of results shows what each item is.
PICTOGRAMS = {
    "원터치텐트": "⛺", "돔텐트": "🏕", "캠핑의자": "🪑", "캠핑테이블": "🧺", "아이스박스": "🧊", "랜턴": "🏮",
    "로드자전거": "🚴", "접이식자전거": "🚲", "전기자전거": "🛵", "골프채": "⛳", "스노보드": "🏂",
    "DSLR/미러리스": "📷", "렌즈": "🔭", "액션캠": "📹", "드론": "🚁", "플레이스테이션": "🎮", "닌텐도 스위치": "🕹",
    "VR 기기": "🥽", "프로젝터": "📽", "블루투스 스피커": "🔊", "노트북": "💻", "로봇청소기": "🤖",
    "스팀청소기": "🧹", "에어프라이어": "🍟", "커피머신": "☕", "제습기": "💧", "의류관리기": "🧥", "유모차": "👶",
    "카시트": "🚗", "아기침대": "🛏", "바운서": "🍼", "승용완구": "🧸", "전동드릴": "🪛", "사다리": "🪜",
    "공구세트": "🧰", "고압세척기": "🚿", "포토부스": "📸", "천막": "🎪", "한복": "👘", "정장": "👔", "기타": "🎸",
    "키보드/디지털피아노": "🎹", "보드게임": "🎲", "캐리어": "🧳", "포켓와이파이": "📶", "이동장/켄넬": "🐕",
}
# Debian's fonts-noto-color-emoji (./dev installs it); a bitmap (CBDT) font drawn at its one size, 109, then scaled.
EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
SOFT = [(255, 236, 214), (222, 242, 225), (219, 234, 252), (252, 226, 236), (234, 226, 250), (220, 244, 246),
        (255, 243, 205), (236, 236, 236)]
PHOTO_SIZE = (640, 480)


@functools.lru_cache(maxsize=None)
def _emoji_font(path: Path) -> ImageFont.FreeTypeFont | None:
    return ImageFont.truetype(str(path), 109) if path.is_file() else None


@functools.lru_cache(maxsize=None)
def _pictogram(emoji: str) -> Image.Image | None:
    """The emoji drawn from the colour font and cropped to its ink; None when the font is not installed."""
    font = _emoji_font(EMOJI_FONT)
    if font is None:
        return None
    glyph = Image.new("RGBA", (160, 160), (0, 0, 0, 0))
    ImageDraw.Draw(glyph).text((10, 10), emoji, font=font, embedded_color=True)
    box = glyph.getbbox()
    return glyph.crop(box) if box else None


@functools.lru_cache(maxsize=None)
def _background(tint: int) -> Image.Image:
    w, h = PHOTO_SIZE
    base = SOFT[tint % len(SOFT)]
    img = Image.new("RGB", (w, h), base)
    draw = ImageDraw.Draw(img)
    for y in range(h):  # a soft light from above
        shade = int(28 * y / h)
        draw.line([(0, y), (w, y)], fill=tuple(max(0, c - shade) for c in base))
    draw.ellipse([w // 2 - 170, h - 120, w // 2 + 170, h - 70], fill=tuple(max(0, c - 45) for c in base))  # shadow
    return img


@functools.lru_cache(maxsize=None)
def _placed(kind: str, tilt: int) -> Image.Image | None:
    glyph = _pictogram(PICTOGRAMS.get(kind, "📦"))
    if glyph is None:
        return None
    scale = 300 / max(glyph.size)
    glyph = glyph.resize((round(glyph.width * scale), round(glyph.height * scale)), Image.LANCZOS)
    return glyph.rotate(tilt, resample=Image.BICUBIC, expand=True)


@functools.lru_cache(maxsize=1024)
def _photo(kind: str, tint: int, tilt: int) -> bytes:
    w, h = PHOTO_SIZE
    img = _background(tint).copy()
    glyph = _placed(kind, tilt)
    if glyph is not None:
        img.paste(glyph, ((w - glyph.width) // 2, h - 95 - glyph.height), glyph)
    else:  # no emoji font: a plain shape, still on the soft background
        ink = tuple(max(0, c - 110) for c in SOFT[tint % len(SOFT)])
        ImageDraw.Draw(img).rounded_rectangle([w // 2 - 120, 110, w // 2 + 120, h - 110], radius=36, fill=ink,
                                              outline=(255, 255, 255), width=8)
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=82)
    return out.getvalue()


def demo_photo(rng: random.Random, kind: str = "") -> bytes:
    """A picture of what the item is: its category's pictogram on a soft background (no real photos are shipped);
    a plain shape instead when the emoji font is missing."""
    return _photo(kind, rng.randrange(len(SOFT)), rng.choice((-8, 0, 8)))


async def create_demo_data(market: Market, *, items: int = 200, seed: int = 20261124,
                           progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
    """Ensure the demo people exist and own ``items`` items in all; returns what was created now."""
    if await _complete(market, items):
        return {"users": 0, "items": 0}
    rng = random.Random(seed)
    owners = []
    created_users = 0
    for email, nickname in DEMO_USERS:
        row = await market.db.fetchone("SELECT id FROM users WHERE email = %s", (email,))
        if row is None:
            try:
                session = await market.accounts.sign_up({"email": email, "nickname": nickname,
                                                         "password": DEMO_PASSWORD})
                owners.append(session.user.id)
                created_users += 1
                continue
            except Conflict:
                row = await market.db.fetchone("SELECT id FROM users WHERE email = %s", (email,))
        assert row is not None
        owners.append(row["id"])
    have = int(await market.db.fetchval(
        f"SELECT COUNT(*) FROM items WHERE owner_id IN ({', '.join(['%s'] * len(owners))})", tuple(owners)))
    leaves = {c.name: c.id for c in _leaves(market)}
    kinds = [name for name in CATALOG if name in leaves]
    created_items = 0
    for n in range(items):
        # Draw every item's randomness even when it exists, so item n is the same on every run.
        kind = rng.choice(kinds)
        titles, price_range, deposit_range = CATALOG[kind]
        place, lat, lng = rng.choice(PLACES)
        title = rng.choice(titles)
        fields = {
            "title": title,
            "description": rng.choice(DESCRIPTIONS).format(title=title, place=place.removesuffix("동")),
            "category_id": leaves[kind],
            "price_per_day": rng.randrange(price_range[0], price_range[1] + 1, 500),
            "deposit": rng.randrange(deposit_range[0], deposit_range[1] + 1, 5000),
            "condition": rng.choices(["상", "중", "하"], weights=[6, 3, 1])[0],
            "lat": round(lat + rng.uniform(-0.008, 0.008), 6),
            "lng": round(lng + rng.uniform(-0.01, 0.01), 6),
            "place_name": place,
            "available_from": today().isoformat(),
            "available_until": (today() + timedelta(days=rng.choice([60, 90, 180, 365]))).isoformat(),
        }
        owner = owners[n % len(owners)]
        photos = [demo_photo(rng, kind) for _ in range(rng.randint(1, 3))]
        if n < have:
            continue
        item = await market.items.create(owner, fields)
        await market.items.add_photos(owner, item["id"], photos)
        created_items += 1
        if progress:
            progress(n + 1, items)
    log.info("demo data: %d people and %d items created", created_users, created_items)
    return {"users": created_users, "items": created_items}


async def _complete(market: Market, items: int) -> bool:
    """Whether every demo person is there owning ``items`` items or more: one query instead of the whole pass,
    which draws every item's randomness again (to keep item n the same)."""
    emails = [email for email, _ in DEMO_USERS]
    row = await market.db.fetchone(
        "SELECT COUNT(DISTINCT u.id) AS people, COUNT(i.id) AS items FROM users u LEFT JOIN items i"
        f" ON i.owner_id = u.id WHERE u.email IN ({', '.join(['%s'] * len(emails))})", tuple(emails))
    assert row is not None
    return bool(row["people"] == len(DEMO_USERS) and row["items"] >= items)


def _leaves(market: Market) -> list:  # type: ignore[type-arg]
    out = []
    for top in market.categories.children(None):
        for mid in market.categories.children(top.id):
            out.extend(market.categories.children(mid.id))
    return out
