"""market.db's one-loop row reader against PyMySQL's own ``MySQLResult._read_row_from_packet`` (left unpatched:
market.db replaces aiomysql's copy only): random rows of every length prefix (< 251, NULL as 251 or 255, 252, 253
and 254), empty values, binary ones (no encoding), multi-byte UTF-8, converters, rows that end early and rows cut
short anywhere. The same values and packet position; where the driver fails on a broken row, so does the reader
(a cut length prefix: its exception may be another kind than the driver's ``struct.error``)."""

from __future__ import annotations

import random
import struct
from typing import Any

import aiomysql.connection
import pymysql.connections
import pytest
from pymysql.protocol import MysqlPacket

from market import db

_ORIGINAL = pymysql.connections.MySQLResult._read_row_from_packet
_CONVERTERS: list[tuple[str | None, Any]] = [(None, None), ("utf8", None), ("utf8", int), ("ascii", None),
                                             ("utf8", str.upper), (None, bytes.hex)]


class _Result:
    def __init__(self, converters: list[tuple[str | None, Any]]) -> None:
        self.converters = converters


def _lenenc(n: int, rnd: random.Random) -> bytes:
    if n < 251 and rnd.random() < 0.7:
        return bytes([n])
    if n < 1 << 16 and rnd.random() < 0.6:
        return b"\xfc" + struct.pack("<H", n)
    if n < 1 << 24 and rnd.random() < 0.6:
        return b"\xfd" + struct.pack("<I", n)[:3]
    return b"\xfe" + struct.pack("<Q", n)


def _value(conv: tuple[str | None, Any], rnd: random.Random) -> bytes | None:
    encoding, converter = conv
    if rnd.random() < 0.15:
        return None
    if converter is int:
        return str(rnd.randint(-10**12, 10**12)).encode()
    if encoding == "ascii":
        return "".join(rnd.choice("0123456789-: .") for _ in range(rnd.randint(0, 30))).encode()
    if encoding is None:
        size = rnd.choice([0, 1, 250, 251, 252, 300, 70000]) if rnd.random() < 0.3 else rnd.randint(0, 40)
        return rnd.randbytes(size)
    size = rnd.choice([0, 1, 90, 130, 22000]) if rnd.random() < 0.2 else rnd.randint(0, 30)
    return "".join(rnd.choice("ab{}%가나다빌리🙂\x00") for _ in range(size)).encode()


def _row(rnd: random.Random) -> tuple[list[tuple[str | None, Any]], bytes]:
    convs = [rnd.choice(_CONVERTERS) for _ in range(rnd.randint(1, 12))]
    parts = []
    for conv in convs:
        v = _value(conv, rnd)
        parts.append(rnd.choice([b"\xfb", b"\xfb", b"\xff"]) if v is None else _lenenc(len(v), rnd) + v)
    if rnd.random() < 0.1:  # a row that ends early (fewer values than columns)
        parts = parts[:rnd.randint(0, len(parts))]
    return convs, b"".join(parts)


def _run(reader: Any, convs: list[tuple[str | None, Any]], data: bytes, start: int) -> tuple[Any, ...]:
    packet = MysqlPacket(data, "utf8")
    packet._position = start
    try:
        return "ok", reader(_Result(convs), packet), packet._position
    except Exception as e:  # noqa: BLE001 (compared below)
        return "error", type(e).__name__


def _same(convs: list[tuple[str | None, Any]], data: bytes, start: int = 0) -> None:
    old = _run(_ORIGINAL, convs, data, start)
    new = _run(db._read_row_from_packet, convs, data, start)
    if old[0] == "ok":
        assert new == old, (convs, data)
    else:
        assert new[0] == "error", (convs, data, old, new)


def test_the_reader_replaces_aiomysqls_only() -> None:
    assert aiomysql.connection.MySQLResult._read_row_from_packet is db._read_row_from_packet
    assert _ORIGINAL is not db._read_row_from_packet


@pytest.mark.parametrize("data", [
    b"", b"\xfb", b"\xff", b"\x00", b"\xfa" + b"x" * 250, b"\xfc\xfb\x00" + b"y" * 251, b"\xfc\x00\x00",
    b"\xfd\x00\x00\x01" + b"z" * 65536, b"\xfe" + struct.pack("<Q", 3) + b"abc", b"\xfe" + struct.pack("<Q", 0),
    b"\x03ab", b"\xfc\x05", b"\xfc", b"\xfd\x01\x00", b"\xfe\x01\x00\x00", b"\xfe" + b"\xff" * 8 + b"x",
    b"\x02\xea\xb0", b"\x02\xff\xfe", b"\xfb\xfb\xfb", b"\x01a\xfb\xff\x00\x00",
])
def test_length_prefixes_nulls_and_broken_rows(data: bytes) -> None:
    for convs in ([(None, None)] * 3, [("utf8", None)] * 3, [("utf8", int), (None, None), ("ascii", str.upper)]):
        _same(convs, data)


def test_random_rows_whole_cut_short_and_read_from_the_packets_position() -> None:
    rnd = random.Random(20261201)
    for _ in range(1500):
        convs, data = _row(rnd)
        _same(convs, data)
        if data:
            _same(convs, data[:rnd.randrange(len(data))])  # cut anywhere, a length prefix included
        _same(convs, b"\x05junk" + data, start=5)
