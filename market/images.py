"""Uploaded images: sniffed by decoding (never trusted by name or header), bounded in bytes and pixels,
re-encoded without metadata (EXIF carries GPS positions) and thumbnailed.

The pixel limit is read from the header before anything is decoded. Decoding happens only in a worker process
(``python -m market.images``, started by ``market.uploads``), never in a gateway process: it reads one image on
stdin and writes the result on stdout in a plain framing (no pickle, so a subverted decoder cannot hand the
gateway code to run), then exits, giving back all the memory the decode took.
"""

from __future__ import annotations

import io
import json
import sys
import warnings
from dataclasses import dataclass
from typing import Any, BinaryIO

from PIL import ExifTags, Image, PngImagePlugin, UnidentifiedImageError

from market.errors import InvalidInput, MarketError, TooLarge, Unsupported

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
MAIN_MAX_SIDE = 1600
THUMB_MAX_SIDE = 400
# How an EXIF orientation is undone (as ImageOps.exif_transpose does), applied to the reduced image only
_ORIENTATION = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
                5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
                8: Image.Transpose.ROTATE_90}
# Text chunks a PNG header may make Pillow inflate (64 MiB by default): metadata we drop anyway
PngImagePlugin.MAX_TEXT_MEMORY = 4 * PngImagePlugin.MAX_TEXT_CHUNK
_ERRORS: dict[str, type[MarketError]] = {"InvalidInput": InvalidInput, "TooLarge": TooLarge,
                                          "Unsupported": Unsupported}


@dataclass(frozen=True, slots=True)
class ProcessedImage:
    main: bytes
    thumb: bytes
    content_type: str
    width: int
    height: int


def too_many_pixels(max_pixels: int) -> TooLarge:
    """The refusal of an image over the pixel limit, naming the limit (1,600만 화소 / 16 megapixels)."""
    megapixels = max_pixels / 1_000_000
    return TooLarge("photo.too_many_pixels", field="photo", man_pixels=max_pixels // 10_000,
                    megapixels=int(megapixels) if megapixels.is_integer() else round(megapixels, 1))


def check_header(data: bytes, *, max_bytes: int, max_pixels: int) -> Image.Image:
    """Open ``data`` reading only its header: refuse what is empty, too many bytes, not one of our formats or
    over ``max_pixels``, before a single pixel is decoded. Returns the opened, not yet decoded, image."""
    if not data:
        raise InvalidInput("photo.none", field="photo")
    if len(data) > max_bytes:
        raise TooLarge("photo.too_large", field="photo", max_mb=max_bytes // (1024 * 1024))
    try:
        with warnings.catch_warnings():
            # Pillow's own fence (Image.MAX_IMAGE_PIXELS) also fires from the header alone
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise too_many_pixels(max_pixels) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise Unsupported("photo.not_image", field="photo") from None
    w, h = img.size
    if w < 1 or h < 1:
        raise Unsupported("photo.not_image", field="photo")
    if w * h > max_pixels:
        raise too_many_pixels(max_pixels)
    return img


def process_image(data: bytes, *, max_bytes: int, max_pixels: int) -> ProcessedImage:
    """Check and re-encode one uploaded image; raises a domain error for anything that is not one.

    The full-size picture exists once: it is reduced before anything else is done to it (JPEGs are even decoded
    at a reduced scale), and orientation and the thumbnail work on the reduced copy."""
    img = check_header(data, max_bytes=max_bytes, max_pixels=max_pixels)
    try:
        img.draft("RGB", (MAIN_MAX_SIDE, MAIN_MAX_SIDE))  # JPEG: decode at 1/2, 1/4 or 1/8 scale when it fits
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img.load()
            orientation = img.getexif().get(ExifTags.Base.Orientation, 1)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise too_many_pixels(max_pixels) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        raise Unsupported("photo.not_image", field="photo") from None
    if img.mode not in ("RGB", "L"):
        img = _on_white(img)
    img.thumbnail((MAIN_MAX_SIDE, MAIN_MAX_SIDE))
    if img.mode != "RGB":
        img = img.convert("RGB")
    if orientation in _ORIENTATION:
        img = img.transpose(_ORIENTATION[orientation])
    thumb = img.copy()
    thumb.thumbnail((THUMB_MAX_SIDE, THUMB_MAX_SIDE))
    return ProcessedImage(_jpeg(img, 85), _jpeg(thumb, 80), "image/jpeg", img.width, img.height)


def _on_white(img: Image.Image) -> Image.Image:
    """Any other mode (transparency, palette, CMYK, 16-bit) as RGB, transparent parts on white. Each full-size
    copy is released as soon as the next one exists."""
    rgba = img if img.mode == "RGBA" else img.convert("RGBA")
    if rgba is not img:
        img.close()
    flat = Image.new("RGB", rgba.size, (255, 255, 255))
    flat.paste(rgba, mask=rgba)  # an RGBA mask means its alpha band, used in place (no copy of it)
    rgba.close()
    return flat


def _jpeg(img: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=quality, optimize=True)  # no exif= argument: metadata dropped
    return out.getvalue()


# -- the worker's side of the pipe ------------------------------------------------------------------
def write_result(out: BinaryIO, result: ProcessedImage | MarketError) -> None:
    """One JSON line (what happened, and the lengths of what follows), then the two JPEGs."""
    if isinstance(result, MarketError):
        head: dict[str, Any] = {"error": type(result).__name__, "code": result.code, "field": result.field,
                                "params": result.params}
        out.write(json.dumps(head).encode() + b"\n")
    else:
        head = {"width": result.width, "height": result.height, "main": len(result.main),
                "thumb": len(result.thumb)}
        out.write(json.dumps(head).encode() + b"\n" + result.main + result.thumb)
    out.flush()


def read_result(raw: bytes) -> ProcessedImage:
    """The gateway's side: what a worker wrote, as a ProcessedImage or the domain error it reported. Anything
    else (a crash, a killed worker) reads as "not an image we can take"."""
    line, _, rest = raw.partition(b"\n")
    try:
        head = json.loads(line)
        if "error" in head:
            error = _ERRORS[head["error"]](str(head["code"]), field=head.get("field"), **dict(head["params"]))
        else:
            main_len, thumb_len = int(head["main"]), int(head["thumb"])
            if main_len + thumb_len != len(rest):
                raise ValueError("truncated")
            return ProcessedImage(rest[:main_len], rest[main_len:], "image/jpeg", int(head["width"]),
                                  int(head["height"]))
    except (ValueError, KeyError, TypeError):
        raise Unsupported("photo.not_image", field="photo") from None
    raise error


def _worker(argv: list[str]) -> None:
    """``python -m market.images MAX_BYTES MAX_PIXELS``: one image in on stdin, one result out on stdout."""
    max_bytes, max_pixels = int(argv[0]), int(argv[1])
    Image.MAX_IMAGE_PIXELS = max_pixels  # Pillow's fence too, for whatever our own header check might not see
    data = sys.stdin.buffer.read(max_bytes + 1)
    try:
        result: ProcessedImage | MarketError = process_image(data, max_bytes=max_bytes, max_pixels=max_pixels)
    except MarketError as e:
        result = e
    del data
    write_result(sys.stdout.buffer, result)


if __name__ == "__main__":
    _worker(sys.argv[1:])
