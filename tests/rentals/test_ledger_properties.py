"""Hypothesis drives random sequences of legal and illegal rental actions — by the owner, the borrower and a
stranger, with the bank failing in every way it can — and after every step checks the money invariants:

- the ledger sums to zero (every movement is double-entry);
- a contract's escrow holds exactly what was paid while the rental is live, and zero once it is over;
- the platform's bank balance equals escrow + fees + what is owed to people (the ledger tells the bank's truth);
- nobody is charged twice: at most one successful payment per contract, and each person's bank balance moved
  by exactly the transfers the ledger recorded.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from market.errors import MarketError
from market.rentals import FINAL
from market.service import Market
from tests.rentals.helpers import Bank, days, item, ledger_sum, link, user

START = 1_000_000
ACTIONS = ["next"] * 12 + ["request", "accept", "decline", "pay", "cancel", "hand_over", "returned", "ok",
           "claim", "accept_claim", "dispute", "resolve", "lost", "extend", "approve_extension",
           "decline_extension", "tick"]
WHO = ["right"] * 6 + ["owner", "borrower", "stranger"]
RIGHT = {"request": "borrower", "pay": "borrower", "returned": "borrower", "accept_claim": "borrower",
         "dispute": "borrower", "extend": "borrower", "accept": "owner", "decline": "owner", "ok": "owner",
         "claim": "owner", "lost": "owner", "approve_extension": "owner", "decline_extension": "owner",
         "cancel": "borrower", "hand_over": "owner", "resolve": "owner", "tick": "owner"}
NEXT = {"REQUESTED": "accept", "ACCEPTED": "pay", "PAID": "hand_over", "IN_USE": "returned", "OVERDUE": "returned",
        "CLAIMED": "accept_claim", "DISPUTED": "resolve"}
FAILURES = [None, None, None, "insufficient", "timeout", "5xx", "processing", "closed"]
step = st.tuples(st.sampled_from(ACTIONS), st.sampled_from(WHO), st.sampled_from(FAILURES), st.booleans(),
                 st.integers(min_value=-5000, max_value=40000))


async def _do(market: Market, bank: Bank, people: dict[str, int], iid: int, cid: int | None,
              action: str, who: str, failure: str | None, applied: bool, amount: int) -> int | None:
    r = market.rentals
    if action == "next":
        state = None if cid is None else (await r.get(cid)).state
        action = NEXT.get(state or "", "request")
        if state == "RETURNED":
            action = "claim" if amount % 2 else "ok"
        elif state == "CLAIMED" and amount % 3 == 0:
            action = "dispute"
        elif state == "PAID" and (await r.get(cid)).owner_handed_at is not None:  # type: ignore[arg-type]
            who = "borrower" if who == "right" else who
    if who == "right":
        who = RIGHT[action]
    uid = people[who]
    if failure and action in ("pay", "approve_extension", "ok", "lost", "accept_claim", "resolve", "cancel"):
        path = "withdraw" if action in ("pay", "approve_extension") else "deposit"
        await bank.fail(path, failure, applied=applied)
    try:
        if action == "request":
            c, _ = await r.request(uid, iid, *days(2, 3))
            return c.id
        if cid is None:
            return None
        c = await r.get(cid)
        if action == "accept":
            await r.accept(uid, cid)
        elif action == "decline":
            await r.decline(uid, cid)
        elif action == "pay":
            await r.pay_now(uid, cid)
        elif action == "cancel":
            await r.cancel(uid, cid)
        elif action == "hand_over":
            await r.hand_over(uid, cid)
        elif action == "returned":
            await r.mark_returned(uid, cid)
        elif action == "ok":
            await r.confirm_ok(uid, cid)
        elif action == "claim":
            await r.claim(uid, cid, amount, "흠집")
        elif action == "accept_claim":
            await r.accept_claim(uid, cid)
        elif action == "dispute":
            await r.dispute(uid, cid, "아니에요")
        elif action == "resolve":
            await r.resolve(cid, amount)
        elif action == "lost":
            await r.report_lost(uid, cid)
        elif action == "extend":
            await r.request_extension(uid, cid, c.end_date + (c.end_date - c.start_date))
        elif action == "approve_extension":
            await r.approve_extension(uid, cid)
        elif action == "decline_extension":
            await r.decline_extension(uid, cid)
        elif action == "tick":
            await r.tick()
    except MarketError:
        pass  # refused: the invariants below say nothing changed that should not have
    return cid


async def _recover(market: Market) -> None:
    """What the scheduler does: settle unknown transfers by inquiry, send queued payouts."""
    for _ in range(3):
        await market.db.execute("UPDATE transfers SET next_inquiry_at = NOW(3) - INTERVAL 1 SECOND"
                                " WHERE state = 'unknown'")  # (time passes: every inquiry is due)
        await market.rentals.process_transfers()


async def _check(market: Market, bank: Bank, accounts: dict[str, dict[str, Any]], people: dict[str, int],
                 iid: int) -> None:
    assert await ledger_sum(market) == 0
    for c in await market.db.fetchall("SELECT * FROM contracts WHERE item_id = %s", (iid,)):
        escrow = await ledger_sum(market, f"escrow:{c['id']}")
        if c["state"] in FINAL:
            assert escrow == 0, c
        elif c["state"] in ("PAID", "IN_USE", "OVERDUE", "RETURNED"):
            assert escrow == c["rent"] + c["fee"] + c["deposit"] + c["extra_rent"] + c["extra_fee"], c
        elif c["state"] in ("CLAIMED", "DISPUTED"):  # what nobody disputes left when the claim opened
            assert escrow == c["deposit"] - c["late_fee"], c
        else:
            assert escrow == 0, c
        paid = await market.db.fetchval("SELECT COUNT(*) FROM transfers WHERE purpose = %s AND state = 'done'",
                                        (f"pay:{c['id']}",))
        assert paid <= 1
    held = int(await market.db.fetchval(
        "SELECT COALESCE(SUM(amount), 0) FROM ledger WHERE account LIKE 'escrow:%%' OR account = 'fees'"
        " OR account LIKE 'payable:%%'"))
    unknown = await market.db.fetchval("SELECT COUNT(*) FROM transfers WHERE state = 'unknown'")
    if unknown == 0:
        assert await bank.platform() == held
        for who in ("owner", "borrower"):
            moved = int(await market.db.fetchval("SELECT COALESCE(SUM(amount), 0) FROM ledger WHERE account = %s",
                                                 (f"bank:{people[who]}",)))
            assert await bank.balance_of(accounts[who]) == accounts[who]["balance"] + moved


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=5, max_size=25))
async def test_money_invariants_hold_after_every_step(market: Market, steps: list[Any]) -> None:
    assert market.config.bank_url
    bank = Bank(market.config.bank_url)
    await bank._call("POST", "/sandbox/reset")
    await market.db.execute("DELETE FROM ledger")
    await market.db.execute("DELETE FROM transfers")
    people = {"owner": await user(market), "borrower": await user(market), "stranger": await user(market)}
    iid = await item(market, people["owner"], price_per_day=5000, deposit=30000)
    accounts = {"owner": await link(market, bank, people["owner"], 0),
                "borrower": await link(market, bank, people["borrower"], START),
                "stranger": await link(market, bank, people["stranger"], START)}
    cid = None
    for action, who, failure, applied, amount in steps:
        cid = await _do(market, bank, people, iid, cid, action, who, failure, applied, amount)
        await _recover(market)
        await _check(market, bank, accounts, people, iid)
    reached = await market.db.fetchval("SELECT GROUP_CONCAT(DISTINCT e.kind) FROM contract_events e"
                                       " JOIN contracts c ON c.id = e.contract_id WHERE c.item_id = %s", (iid,))
    event(f"reached: {'settled' if reached and 'settled' in reached else 'paid' if reached and 'paid' in reached else 'less'}")
