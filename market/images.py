"""Uploaded images: sniffed by decoding (never trusted by name or header), bounded in bytes and pixels,
re-encoded without metadata (EXIF carries GPS positions) and thumbnailed.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from market.errors import InvalidInput, TooLarge, Unsupported

ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF"})
MAIN_MAX_SIDE = 1600
THUMB_MAX_SIDE = 400


@dataclass(frozen=True, slots=True)
class ProcessedImage:
    main: bytes
    thumb: bytes
    content_type: str
    width: int
    height: int


def process_image(data: bytes, *, max_bytes: int, max_pixels: int) -> ProcessedImage:
    """Check and re-encode one uploaded image; raises a domain error for anything that is not one."""
    if not data:
        raise InvalidInput("photo.none", field="photo")
    if len(data) > max_bytes:
        raise TooLarge("photo.too_large", field="photo", max_mb=max_bytes // (1024 * 1024))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            if img.format not in ALLOWED_FORMATS:
                raise Unsupported("photo.not_image", field="photo")
            w, h = img.size
            if w * h > max_pixels or w < 1 or h < 1:
                raise TooLarge("photo.too_many_pixels", field="photo")
            img.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError,
            Image.DecompressionBombWarning):
        raise Unsupported("photo.not_image", field="photo") from None
    img = ImageOps.exif_transpose(img)
    if img.mode not in ("RGB", "L"):
        rgba = img.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        img = flat
    elif img.mode == "L":
        img = img.convert("RGB")
    main = img.copy()
    main.thumbnail((MAIN_MAX_SIDE, MAIN_MAX_SIDE))
    thumb = img.copy()
    thumb.thumbnail((THUMB_MAX_SIDE, THUMB_MAX_SIDE))
    return ProcessedImage(_jpeg(main, 85), _jpeg(thumb, 80), "image/jpeg", main.width, main.height)


def _jpeg(img: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=quality, optimize=True)  # no exif= argument: metadata dropped
    return out.getvalue()
