"""The scheduler never stops for everyone because of one contract: reminder marks cannot overflow, each job runs
on its own, a row that fails is logged, counted in /metrics and passed over, and the money jobs go first."""

from __future__ import annotations

from datetime import timedelta

from aiohttp.test_utils import TestClient

from gateway.keys import MARKET
from market.rentals.kdates import seoul_today
from market.service import Market
from tests.rentals.helpers import Bank, paid_rental


async def _in_use(market: Market, bank: Bank) -> tuple[int, int, int]:
    cid, owner, borrower = await paid_rental(market, bank)
    await market.rentals.hand_over(owner, cid)
    await market.rentals.hand_over(borrower, cid)
    return cid, owner, borrower


async def _returned_long_ago(market: Market, bank: Bank) -> int:
    cid, owner, borrower = await _in_use(market, bank)
    await market.rentals.mark_returned(borrower, cid)
    await market.rentals.mark_returned(owner, cid)
    await market.db.execute("UPDATE contracts SET returned_at = returned_at - INTERVAL 80 HOUR WHERE id = %s", (cid,))
    return cid


async def test_one_broken_contract_never_stops_the_scheduler(client: TestClient) -> None:
    market = client.app[MARKET]
    bank = Bank(market.config.bank_url)
    # A rental 13 days overdue (a day before it counts as lost), with the daily reminders of the 13 days before
    # today already written the old way.
    late, _, _ = await _in_use(market, bank)
    await market.db.execute("UPDATE contracts SET state = 'OVERDUE', start_date = start_date - INTERVAL 14 DAY,"
                            " end_date = end_date - INTERVAL 13 DAY, reminders = %s WHERE id = %s",
                            (",".join(f"overdue_{seoul_today() - timedelta(days=d)}" for d in range(13, 0, -1)), late))
    # A returned rental whose amounts no longer add up (its settlement raises), and a sound one.
    broken = await _returned_long_ago(market, bank)
    await market.db.execute("UPDATE contracts SET deposit = deposit + 1 WHERE id = %s", (broken,))
    sound = await _returned_long_ago(market, bank)

    done = await market.rentals.tick()

    assert (await market.rentals.get(sound)).state == "SETTLED" and done["settled"] == 1
    assert (await market.rentals.get(broken)).state == "RETURNED"
    kinds = [e["kind"] for e in await market.rentals.events(late)]
    assert kinds.count("still_overdue") == 1  # today's reminder went out
    assert (await market.rentals.tick())["reminded"] == 0  # and only once
    async with client.get("/metrics") as resp:
        text = await resp.text()
    assert 'billi_scheduler_failures_total{job="auto_settle"} 2.0' in text  # the broken row, in each round
