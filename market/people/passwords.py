"""The rule a new password must meet, wherever one is set (sign-up, change, reset).

It follows NIST SP 800-63B: a length of 8 to 128 characters, no composition rules (they push people to
``Password1!``), and a refusal of the passwords guessers try first — a shipped list of the most common ones
(``market/data/common-passwords.txt``) and the person's own e-mail name or nickname. It never hashes or stores.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from market.errors import InvalidInput

MIN_LENGTH = 8
MAX_LENGTH = 128
_COMMON = Path(__file__).resolve().parent.parent / "data" / "common-passwords.txt"


def check_password(password: Any, *, email: str | None, nickname: str | None, field: str = "password") -> str:
    """``password`` if it may be set for the person with this e-mail and nickname; otherwise ``InvalidInput``
    on ``field`` saying why (too short or long, too common, or their own name)."""
    if not isinstance(password, str) or not password:
        raise InvalidInput("input.required", field=field)
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise InvalidInput("account.weak_password", field=field, min=MIN_LENGTH, max=MAX_LENGTH)
    folded = password.casefold()
    if folded in _common_passwords():
        raise InvalidInput("account.common_password", field=field)
    names = {email.split("@", 1)[0].casefold() if email else "", nickname.casefold() if nickname else ""}
    if folded in names - {""}:
        raise InvalidInput("account.password_is_name", field=field)
    return password


@cache
def _common_passwords() -> frozenset[str]:
    """The shipped list, read once (it is lower-case; compared with the case-folded password)."""
    return frozenset(line.casefold() for line in _COMMON.read_text(encoding="utf-8").splitlines() if line)
