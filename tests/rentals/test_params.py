"""What guards and column expressions may name (``Machine.params``): the clock, every rule by its field name, the
values given — the rules' values worked out once per rules object, and a new one's used at once."""

from __future__ import annotations

from dataclasses import asdict, replace

from market.service import Market


async def test_params_name_every_rule_and_follow_a_change_of_the_rules(market: Market) -> None:
    rentals = market.rentals
    p = rentals.params(7, "owner", item=3)
    assert {k: p[k] for k in asdict(rentals.rules)} == asdict(rentals.rules)
    assert p["id"] == 7 and p["role"] == "owner" and p["item"] == 3 and p["today"] == rentals.clock.today()
    before = rentals.rules
    rentals.rules = replace(before, max_open_requests=before.max_open_requests + 5, request_ttl_s=11)
    try:
        q = rentals.params()
        assert q["max_open_requests"] == before.max_open_requests + 5 and q["request_ttl_s"] == 11
        q["request_ttl_s"] = 99  # (a caller's own copy: the next one is untouched)
        assert rentals.params()["request_ttl_s"] == 11
    finally:
        rentals.rules = before
    assert rentals.params()["max_open_requests"] == before.max_open_requests
