"""The widget's static files as the browser gets them: each under a content-hashed name (``app.js`` →
``app.3f2a9c1b.js``, so it may be cached for a year), compressed once with brotli and gzip when the process starts.
Nothing here knows HTTP; the gateway picks the encoding and writes the headers.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import brotli

STATIC_DIR = Path(__file__).resolve().parent / "static"
PREFIX = "/static/"
# Served under fixed names of their own (a service worker's address may not change; other sites include
# widget.js; the manifest is linked from every page): never hashed, their references to other files rewritten.
FIXED = {"sw.js": "/sw.js", "manifest.webmanifest": "/manifest.webmanifest", "widget.js": "/widget.js"}
TYPES = {".js": "text/javascript", ".css": "text/css", ".webmanifest": "application/manifest+json",
         ".json": "application/json", ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon",
         ".woff2": "font/woff2", ".txt": "text/plain"}
COMPRESSIBLE = {".js", ".css", ".webmanifest", ".json", ".svg", ".txt"}
_REFERENCE = re.compile(r"/static/([A-Za-z0-9_./-]+)")


@dataclass(frozen=True, slots=True)
class Asset:
    """One file: where it is served, its bytes in each encoding we have (``""`` is the file itself), its tag."""

    name: str  # relative to static/, as templates name it: "app.js", "vendor/socket.io.min.js"
    url: str  # "/static/app.3f2a9c1b.js" (or the fixed address)
    content_type: str
    bodies: dict[str, bytes]  # "" (identity), "br", "gzip" — a compressed one only when it is smaller
    etag: str

    def body(self, encoding: str) -> bytes:
        return self.bodies[encoding]


class Catalogue:
    """Every static file by its public address and by its plain name."""

    def __init__(self, assets: list[Asset]) -> None:
        self._by_name = {a.name: a for a in assets}
        self._by_url = {a.url: a for a in assets}

    def url(self, name: str) -> str:
        """The address to write in a page for ``name`` ("app.js"); an unknown name is a bug in a template."""
        return self._by_name[name].url

    def at(self, url: str) -> Asset | None:
        """The file served at ``url`` (its hashed address or its fixed one)."""
        return self._by_url.get(url)

    def named(self, name: str) -> Asset | None:
        """A file by its plain name ("app.js"), for an old page still asking for ``/static/app.js``."""
        return None if name in FIXED else self._by_name.get(name)

    def __iter__(self) -> Iterator[Asset]:
        return iter(self._by_name.values())


def hashed_name(name: str, digest: str) -> str:
    """``vendor/socket.io.min.js`` → ``vendor/socket.io.min.<digest>.js`` (the hash before the last suffix)."""
    head, dot, ext = name.rpartition(".")
    return f"{head}.{digest}.{ext}" if dot and "/" not in ext else f"{name}.{digest}"


def _encode(body: bytes, suffix: str) -> dict[str, bytes]:
    bodies = {"": body}
    if suffix in COMPRESSIBLE:
        for encoding, packed in (("br", brotli.compress(body, quality=11)), ("gzip", gzip.compress(body, 9, mtime=0))):
            if len(packed) < len(body):
                bodies[encoding] = packed
    return bodies


def build(root: Path = STATIC_DIR) -> Catalogue:
    """Hash and compress every file under ``root`` (dot-files skipped). The fixed-name files are done last, with
    each ``/static/<name>`` they mention replaced by that file's hashed address, so a service worker's shell and
    the manifest's icons always name the files this build serves."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and not any(s.startswith(".") for s in
                                                                       p.relative_to(root).parts))
    urls: dict[str, str] = {}
    assets: list[Asset] = []
    fixed: list[Path] = []
    for path in files:
        name = path.relative_to(root).as_posix()
        if name in FIXED:
            fixed.append(path)
            continue
        body = path.read_bytes()
        digest = hashlib.sha256(body).hexdigest()[:8]
        urls[name] = PREFIX + hashed_name(name, digest)
        assets.append(Asset(name, urls[name], TYPES.get(path.suffix, "application/octet-stream"),
                            _encode(body, path.suffix), f'"{digest}"'))
    for path in fixed:
        name = path.name
        text = _REFERENCE.sub(lambda m: urls.get(m.group(1), m.group(0)), path.read_text(encoding="utf-8"))
        body = text.encode()
        digest = hashlib.sha256(body).hexdigest()[:8]
        assets.append(Asset(name, FIXED[name], TYPES[path.suffix], _encode(body, path.suffix), f'"{digest}"'))
    return Catalogue(assets)


@functools.cache
def catalogue() -> Catalogue:
    """This process's catalogue, built on first use (the gateway asks at start-up): files do not change while
    it runs, and brotli's best setting takes a moment we spend once."""
    return build()
