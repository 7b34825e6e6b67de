"""Deadlines are UTC in the database whatever the server's own time zone: every connection sets +00:00."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from market.config import Config
from market.db import Database
from market.service import Market
from tests.rentals.helpers import days, item, user


async def test_deadlines_are_the_same_with_the_database_server_in_seoul(market: Market, config: Config) -> None:
    assert config.database_url
    before = await market.db.fetchval("SELECT @@global.time_zone")
    await market.db.execute("SET GLOBAL time_zone = '+09:00'")  # a server set up in Asia/Seoul
    try:
        fresh = await Database.connect(config.database_url, pool_size=1, create=False)  # new connections
        try:
            assert await fresh.fetchval("SELECT @@session.time_zone") == "+00:00"
            now = await fresh.fetchval("SELECT NOW(3)")
            assert abs(now - datetime.now(UTC).replace(tzinfo=None)) < timedelta(minutes=1)
        finally:
            await fresh.close()
        async with Market.open(config, run_migrations=False) as m:
            owner, borrower = await user(m), await user(m)
            c, _ = await m.rentals.request(borrower, await item(m, owner), *days(1, 1))
            assert c.expires_at is not None
            due = datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=m.rentals.rules.request_ttl_s)
            assert abs(c.expires_at - due) < timedelta(minutes=1)
            assert (await m.rentals.tick())["expired"] == 0  # not taken for 9 hours late
            m.rentals.clock.advance(seconds=m.rentals.rules.request_ttl_s - 60)  # the one clock moves …
            assert (await m.rentals.tick())["expired"] == 0
            m.rentals.clock.advance(seconds=120)  # … past the deadline, and only then
            assert (await m.rentals.tick())["expired"] == 1
            # a stored time written with the clock (the event's) and one a connection's NOW() would write agree
            # whatever the server's zone
            stamp = await m.db.fetchval("SELECT created_at FROM contract_events WHERE contract_id = %s"
                                        " AND kind = 'requested'", (c.id,))
            assert abs(stamp - datetime.now(UTC).replace(tzinfo=None)) < timedelta(minutes=1)
    finally:
        await market.db.execute("SET GLOBAL time_zone = %s", (before,))
