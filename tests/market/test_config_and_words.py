"""Configuration from the environment, the message catalogue and Korean particles."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from market.config import Config
from market.errors import InvalidInput
from market.geo import decode_cursor
from market.messages import CATALOGUE, particle, render


def test_config_reads_billi_variables_and_keeps_defaults() -> None:
    cfg = Config.from_env({"BILLI_PORT": "9000", "BILLI_COOKIE_SECURE": "true", "BILLI_DATA_DIR": "/tmp/x",
                           "BILLI_S3_URL": "", "OTHER": "ignored"})
    assert cfg.port == 9000 and cfg.cookie_secure is True and cfg.data_dir == Path("/tmp/x")
    assert cfg.s3_url is None and cfg.nearby_default_radius_m == 6000


def test_config_refuses_nonsense_values() -> None:
    with pytest.raises(ValueError, match="BILLI_PORT"):
        Config.from_env({"BILLI_PORT": "eighty"})


def test_secrets_never_show_in_the_config_repr() -> None:
    cfg = Config.from_env({"BILLI_DATABASE_URL": "mysql://billi:hunter2@db:3306/billi",
                           "BILLI_S3_SECRET_KEY": "s3cr3t-value"})
    text = repr(cfg) + str(cfg.describe())
    assert "hunter2" not in text and "s3cr3t-value" not in text
    assert "mysql://billi:***@db:3306/billi" in text


def test_a_public_deployment_must_set_its_own_token_key() -> None:
    assert Config().public_defaults() == []  # on one's own machine the default works
    assert Config(public_url="https://billi.example/").public_defaults() == ["BILLI_TOKEN_KEY"]
    assert Config(cookie_secure=True).public_defaults() == ["BILLI_TOKEN_KEY"]
    assert Config(public_url="https://billi.example/", token_key="x" * 40).public_defaults() == []


@pytest.mark.parametrize("word,josa,expected", [
    ("제목", "을", "을"), ("보증금", "은", "은"), ("카테고리", "을", "를"), ("하루 대여료", "은", "는"),
    ("이메일", "이", "이"), ("닉네임", "과", "과"), ("서울", "으로", "로"), ("강남역", "으로", "으로"),
    ("부산", "으로", "으로"), ("3", "은", "은"), ("5", "을", "를"), ("PS5", "을", "를"),
])
def test_particles_follow_the_last_syllable(word: str, josa: str, expected: str) -> None:
    assert particle(word, josa) == expected


def test_every_message_has_korean_and_english() -> None:
    for key, (ko, en) in CATALOGUE.items():
        assert ko and en, key
        assert any("가" <= ch <= "힣" for ch in ko), key
    assert render("input.required", "ko", field="deposit") == "보증금을 입력해 주세요."
    assert render("input.required", "en", field="deposit") == "Please enter the deposit."
    assert render("no.such.key") == render("service.internal")


@given(st.one_of(st.text(max_size=300), st.integers(), st.none(), st.binary().map(lambda b: b.hex())))
def test_any_cursor_text_is_either_read_or_refused_cleanly(raw: object) -> None:
    try:
        value = decode_cursor(raw)
    except InvalidInput as e:
        assert e.code == "input.bad_cursor"
    else:
        assert value is None or (isinstance(value[0], int) and isinstance(value[1], int))
