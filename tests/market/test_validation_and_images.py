"""Reading untrusted values, and deciding what is an image."""

from __future__ import annotations

import io
import unicodedata
import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from market import validation as v
from market.errors import InvalidInput, MarketError, TooLarge, Unsupported
from market.images import process_image
from market.migrate import available, split_statements
from tests.conftest import image_bytes


@given(st.text(max_size=200))
def test_cleaned_text_has_no_control_characters(raw: str) -> None:
    cleaned = v.clean_text(raw, multiline=False)
    for ch in cleaned:
        category = unicodedata.category(ch)
        assert category[0] != "C" or ch == "\u200d", repr(ch)  # a joiner stays only inside emoji sequences
        assert category not in {"Zl", "Zp"}
    assert cleaned == cleaned.strip()


def test_bidi_overrides_are_removed_but_emoji_joiners_kept() -> None:
    assert v.clean_text("evil\u202eexe.jpg", multiline=False) == "evilexe.jpg"
    family = "\U0001F468\u200d\U0001F469\u200d\U0001F467"
    assert v.clean_text(f"  {family} 캠핑\r\n의자\t ", multiline=True) == f"{family} 캠핑\n의자"


@given(st.one_of(st.integers(), st.floats(allow_nan=True), st.text(max_size=30), st.booleans(), st.none(),
                 st.lists(st.integers(), max_size=3)))
def test_money_reader_returns_an_int_in_range_or_a_clear_error(raw: object) -> None:
    try:
        value = v.integer({"deposit": raw}, "deposit", lo=0, hi=10_000_000, money=True)
    except InvalidInput as e:
        assert e.field == "deposit" and e.message()
    else:
        assert isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 10_000_000


def test_money_reader_accepts_korean_style_thousands() -> None:
    assert v.integer({"p": "5,000"}, "p", lo=0, hi=10**6) == 5000


@pytest.mark.parametrize("raw", ["²", "5²", "١٢", "１２", "--5", "-", "1e3", "0x10"])
def test_superscripts_and_other_digit_forms_are_not_numbers(raw: str) -> None:
    """Regression: "²".isdigit() is True but int("²") raises; it once escaped as a 500."""
    with pytest.raises(InvalidInput) as e:
        v.integer({"p": raw}, "p", lo=-10**6, hi=10**6)
    assert e.value.code == "input.not_integer"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF"])
def test_real_images_of_each_format_are_accepted_and_become_jpeg(fmt: str) -> None:
    out = process_image(image_bytes(fmt, (2000, 1000)), max_bytes=10 << 20, max_pixels=40_000_000)
    assert out.content_type == "image/jpeg" and (out.width, out.height) == (1600, 800)
    assert Image.open(io.BytesIO(out.thumb)).size == (400, 200)


def test_a_transparent_png_is_flattened_on_white() -> None:
    buf = io.BytesIO()
    Image.new("RGBA", (10, 10), (0, 0, 0, 0)).save(buf, format="PNG")
    out = process_image(buf.getvalue(), max_bytes=1 << 20, max_pixels=10**6)
    assert Image.open(io.BytesIO(out.main)).getpixel((5, 5)) >= (250, 250, 250)


@pytest.mark.parametrize("data,error", [
    (b"", InvalidInput),
    (b"%PDF-1.7 not an image", Unsupported),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, Unsupported),  # a PNG signature with garbage behind it
    (image_bytes("JPEG")[:60], Unsupported),  # truncated
    (image_bytes("BMP"), Unsupported),  # an image, but not a format we take
    (b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>", Unsupported),
])
def test_things_that_are_not_acceptable_images_are_refused(data: bytes, error: type[MarketError]) -> None:
    with pytest.raises(error):
        process_image(data, max_bytes=1 << 20, max_pixels=10**6)


def test_oversized_files_and_pixel_bombs_are_refused_before_decoding() -> None:
    with pytest.raises(TooLarge) as e:
        process_image(image_bytes(), max_bytes=100, max_pixels=10**6)
    assert e.value.code == "photo.too_large"
    bomb = image_bytes("PNG", (5000, 5000), (0, 0, 0), optimize=True)  # small file, 25 Mpx
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(TooLarge) as e:
            process_image(bomb, max_bytes=10 << 20, max_pixels=1_000_000)
    assert e.value.code == "photo.too_many_pixels"


def test_migrations_are_numbered_and_split_into_statements() -> None:
    migrations = available()
    assert [m.version for m in migrations] == sorted({m.version for m in migrations})
    assert split_statements("CREATE TABLE a (x INT); -- a comment; here\nINSERT INTO a VALUES (';');") == [
        "CREATE TABLE a (x INT)", "INSERT INTO a VALUES (';')"]
