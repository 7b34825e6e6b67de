"""Demo items' photos show what the item is: the category's pictogram (Noto Color Emoji, which ./dev installs) on a
soft background, and a plain shape when the font is missing."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest
from PIL import Image

from market import demo


def _image(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    assert img.format == "JPEG"
    return img.convert("RGB")


def _differs(a: Image.Image, b: Image.Image) -> float:
    """The mean absolute difference of two pictures, 0–255."""
    small_a, small_b = a.resize((64, 48)).tobytes(), b.resize((64, 48)).tobytes()
    return sum(abs(x - y) for x, y in zip(small_a, small_b)) / len(small_a)


@pytest.fixture(autouse=True)
def fresh_caches() -> None:
    for cached in (demo._emoji_font, demo._pictogram, demo._placed, demo._photo):
        cached.cache_clear()


def test_every_demo_category_has_a_pictogram_the_font_draws() -> None:
    assert demo.EMOJI_FONT.is_file(), "fonts-noto-color-emoji is not installed (./dev installs it)"
    assert set(demo.CATALOG) <= set(demo.PICTOGRAMS)
    for kind in demo.CATALOG:
        glyph = demo._pictogram(demo.PICTOGRAMS[kind])
        assert glyph is not None and glyph.width > 60 and glyph.height > 60, kind
        colours = glyph.convert("RGB").getcolors(maxcolors=1 << 16)
        assert colours is None or len(colours) > 8, f"{kind}: drawn in colour, not a blank box"


def test_a_photo_is_its_categorys_pictogram_on_a_soft_background() -> None:
    rng = random.Random(7)
    chair, tent, chair_again = (_image(demo.demo_photo(random.Random(7), k)) for k in ("캠핑의자", "원터치텐트", "캠핑의자"))
    assert chair.size == (640, 480)
    assert _differs(chair, chair_again) == 0  # the same draw, the same picture
    assert _differs(chair, tent) > 3  # another category, another picture
    corner = chair.getpixel((5, 5))
    assert min(corner) > 180  # soft, light background
    centre = chair.crop((220, 120, 420, 380)).getcolors(maxcolors=1 << 16)
    assert centre is None or len(centre) > 50  # something drawn in the middle
    assert demo.demo_photo(rng, "캠핑의자")


def test_without_the_emoji_font_a_plain_shape_is_drawn(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(demo, "EMOJI_FONT", tmp_path / "missing.ttf")
    photo = _image(demo.demo_photo(random.Random(7), "캠핑의자"))
    assert photo.size == (640, 480)
    corner, middle = photo.getpixel((5, 5)), photo.getpixel((320, 240))
    assert sum(middle) < sum(corner) - 150  # the shape, darker than the background
