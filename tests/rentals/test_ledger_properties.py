"""Hypothesis drives random sequences of legal and illegal rental actions — by the owner, the borrower and a
stranger, with the bank failing in every way it can (refusing, timing out, committing late) — while the one clock
moves (requests and holds expire, rentals go overdue and collect late fees, returns and claims go unanswered and
settle or go to an operator) and unknown transfers stay unknown across steps until the bank is asked again.

After every step:
- an action the machine's table forbids (a state it does not leave from, a person who may not take it) was
  refused, and a refused action changed nothing — no contract state, no ledger row; an action the table allows
  with nothing else in its way succeeded;
- the ledger sums to zero (every movement is double-entry);
- a contract's escrow holds exactly what was paid while the rental is live, what is left for the claim while one
  is open, and zero once it is over;
- at most one successful payment per contract; and whenever no transfer's outcome is open, the platform's bank
  balance equals escrow + fees + owed + suspense, and each person's bank balance moved by exactly the transfers
  the ledger recorded.
At the end every open transfer is settled (the bank commits, the scheduler asks) and the money adds up again.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from market.errors import MarketError
from market.rentals import EDGES, FINAL
from market.service import Market
from tests.rentals.helpers import Bank, item, ledger_sum, link, user

START = 1_000_000
EXAMPLES = int(os.environ.get("BILLI_PROPERTY_EXAMPLES", "50"))  # CI: 50; before resolving: 500 and more
ACTIONS = ["next"] * 40 + ["request", "accept", "decline", "pay", "cancel", "hand_over", "object_handover",
                           "returned", "object_return", "ok", "claim", "accept_claim", "dispute", "resolve",
                           "resolve_handover", "lost", "extend", "approve_extension", "decline_extension"] + \
          ["time"] * 2 + ["tick"] * 2 + ["inquire", "land"]
WHO = ["right"] * 6 + ["owner", "borrower", "stranger"]
RIGHT = {"request": "borrower", "pay": "borrower", "returned": "borrower", "accept_claim": "borrower",
         "dispute": "borrower", "extend": "borrower", "accept": "owner", "decline": "owner", "ok": "owner",
         "claim": "owner", "lost": "owner", "approve_extension": "owner", "decline_extension": "owner",
         "cancel": "borrower", "hand_over": "owner", "object_handover": "borrower", "object_return": "owner"}
NEXT = {"REQUESTED": "accept", "ACCEPTED": "pay", "PAID": "hand_over", "IN_USE": "returned", "OVERDUE": "returned",
        "CLAIMED": "accept_claim", "DISPUTED": "resolve"}
# The table's edge for each action (the oracle), where the action is one edge.
EDGE = {"accept": "accept", "decline": "decline", "cancel": "cancel", "pay": "pay", "hand_over": "hand_over",
        "object_handover": "object_handover", "object_return": "object_return", "ok": "confirm_ok",
        "claim": "claim", "accept_claim": "accept_claim", "dispute": "dispute", "lost": "report_lost",
        "extend": "request_extension", "approve_extension": "approve_extension",
        "decline_extension": "decline_extension"}
FAILURES = [None] * 6 + ["insufficient", "timeout", "5xx", "processing", "closed", "late"]
step = st.tuples(st.sampled_from(ACTIONS), st.sampled_from(WHO), st.sampled_from(FAILURES), st.booleans(),
                 st.integers(min_value=-5000, max_value=40000), st.sampled_from([1, 2, 6, 12, 30, 80]))
OPEN_TRANSFERS = ("pending", "sending", "unknown", "review")


async def _snapshot(market: Market, cid: int | None) -> tuple[Any, ...]:
    if cid is None:
        return ()
    c = await market.db.fetchone("SELECT state, return_declared_at, ext_end_date, owner_handed_at, borrower_got_at"
                                 " FROM contracts WHERE id = %s", (cid,))
    ledger = await market.db.fetchall("SELECT account, SUM(amount) AS s FROM ledger GROUP BY account ORDER BY account")
    return tuple(c.values()), tuple((r["account"], int(r["s"])) for r in ledger)


async def _do(market: Market, bank: Bank, people: dict[str, int], iid: int, cid: int | None, action: str, who: str,
              failure: str | None, applied: bool, amount: int, hours: int) -> int | None:
    r = market.rentals
    if action == "time":
        r.clock.advance(hours=hours)
        return cid
    if action == "land":
        await bank.land()
        return cid
    if action == "inquire":  # the scheduler asks the bank about every open transfer now
        await market.db.execute("UPDATE transfers SET next_inquiry_at = %s WHERE state IN ('unknown', 'review')",
                                (r.clock.now(),))
        await r.process_transfers()
        return cid
    if action == "tick":
        await r.tick()
        return cid
    if action == "next":
        c = None if cid is None else await r.get(cid)
        action = NEXT.get(c.state if c else "", "request")
        if c and c.state == "RETURNED":
            action = "claim" if amount % 2 else "ok"
        elif c and c.state == "CLAIMED" and amount % 3 == 0:
            action = "dispute"
        elif c and c.state in ("IN_USE", "OVERDUE") and c.return_declared_at is not None:
            who = "owner" if who == "right" else who
            action = "object_return" if amount % 4 == 0 else "returned"
        elif c and c.state == "PAID" and c.owner_handed_at is not None:
            who = "borrower" if who == "right" else who
            action = "object_handover" if amount % 7 == 0 else "hand_over"
        elif c and c.state in ("IN_USE", "OVERDUE") and amount % 11 == 0:
            action = "lost"
        elif c and c.state == "DISPUTED" and c.claim_kind == "handover":
            action = "resolve_handover"
    if who == "right":
        who = RIGHT.get(action, "owner")
    uid = people[who]
    if failure and action in ("pay", "approve_extension", "ok", "lost", "accept_claim", "resolve", "cancel", "claim"):
        path = "withdraw" if action in ("pay", "approve_extension") else "deposit"
        await bank.fail(path, failure, applied=applied, after=1 + amount % 3)
    if action == "request":
        try:
            today = r.clock.today()
            c, _ = await r.request(uid, iid, today + timedelta(days=2), today + timedelta(days=4))
            return c.id
        except MarketError:
            return cid
    if cid is None:
        return None
    c = await r.get(cid)
    before = await _snapshot(market, cid)
    edge = EDGES.get(EDGE.get(action, ""))
    role = c.role(uid) or "stranger"
    # The table's verdict before the call: a state it does not leave from, or a person it does not let, is refused.
    forbidden = edge is not None and (c.state not in edge.sources or role not in edge.roles)
    # … and what it must let through (the table allows it, and no guard, money in flight or bank is in the way).
    now, today = r.clock.now(), r.clock.today()
    open_ext = await market.db.fetchval("SELECT COUNT(*) FROM transfers WHERE purpose = %s AND state IN"
                                        " ('pending','sending','unknown','review')", (f"ext:{cid}",))
    must = ((action == "decline" and role == "owner" and c.state == "REQUESTED")
            or (action == "accept" and role == "owner" and c.state == "REQUESTED" and c.expires_at is not None
                and c.expires_at > now and c.start_date >= today)
            or (action == "dispute" and role == "borrower" and c.state == "CLAIMED")
            or (action == "accept_claim" and role == "borrower" and c.state == "CLAIMED")
            or (action == "ok" and role == "owner" and c.state == "RETURNED" and not open_ext)
            or (action == "lost" and role == "owner" and c.state in ("IN_USE", "OVERDUE"))
            or (action == "object_handover" and c.state == "PAID" and (
                (role == "borrower" and c.owner_handed_at is not None and c.borrower_got_at is None)
                or (role == "owner" and c.borrower_got_at is not None and c.owner_handed_at is None)))
            or (action == "resolve_handover" and c.state == "DISPUTED" and c.claim_kind == "handover"
                and (amount % 3 != 2 or c.start_date >= today))  # (not yet: only before the start)
            or (action == "resolve" and c.state == "DISPUTED" and c.claim_kind in ("damage", "lost")
                and 0 <= amount <= (c.claim_amount or 0))
            or (action == "returned" and role == "owner" and c.state in ("IN_USE", "OVERDUE"))
            or (action == "returned" and role == "borrower" and c.state in ("IN_USE", "OVERDUE")
                and c.return_declared_at is None)
            or (action == "hand_over" and c.state == "PAID" and (
                (role == "owner" and c.owner_handed_at is None) or (role == "borrower" and c.borrower_got_at is None))))
    try:
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
        elif action == "object_handover":
            await r.object_handover(uid, cid)
        elif action == "returned":
            await r.mark_returned(uid, cid)
        elif action == "object_return":
            await r.object_return(uid, cid)
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
        elif action == "resolve_handover":
            await r.resolve_handover(cid, (True, False, None)[amount % 3])
        elif action == "lost":
            await r.report_lost(uid, cid)
        elif action == "extend":
            await r.request_extension(uid, cid, c.end_date + timedelta(days=2))
        elif action == "approve_extension":
            await r.approve_extension(uid, cid)
        elif action == "decline_extension":
            await r.decline_extension(uid, cid)
    except MarketError as e:
        assert not must, f"{action} by the {role} in {c.state} was refused: {e.code}"
        # (a charge the bank refused or did not answer has its consequences by design: told, the extension
        # withdrawn; everything else refused changes nothing)
        if not (action in ("pay", "approve_extension") and e.code.startswith("pay.")):
            assert await _snapshot(market, cid) == before, f"refused {action} ({e.code}) changed something"
        event(f"refused: {action}")
        return cid
    assert not forbidden, f"{action} by the {role} in {c.state} was allowed against the table"
    event(f"done: {action}")
    return cid


async def _check(market: Market, bank: Bank, accounts: dict[str, dict[str, Any]], people: dict[str, int],
                 iid: int) -> None:
    assert not market.rentals.job_failures, market.rentals.job_failures  # no timed edge failed on any row
    assert await ledger_sum(market) == 0
    booked = await market.db.fetchall(  # nothing is booked twice
        "SELECT id, start_date, end_date FROM contracts WHERE item_id = %s AND (state IN ('PAID','IN_USE','OVERDUE')"
        " OR state = 'DISPUTED' AND claim_kind = 'handover')", (iid,))
    for a in booked:
        for b in booked:
            assert a["id"] == b["id"] or a["end_date"] < b["start_date"] or b["end_date"] < a["start_date"], booked
    for c in await market.db.fetchall("SELECT * FROM contracts WHERE item_id = %s", (iid,)):
        escrow = await ledger_sum(market, f"escrow:{c['id']}")
        late_back = int(await market.db.fetchval(  # payments that landed too late and went back
            "SELECT COALESCE(SUM(amount), 0) FROM ledger WHERE contract_id = %s AND movement LIKE 't%%:back'"
            " AND amount > 0", (c["id"],)))
        landed = int(await market.db.fetchval(
            "SELECT COALESCE(SUM(t.amount), 0) FROM transfers t WHERE t.contract_id = %s AND t.direction = 'withdraw'"
            " AND t.state = 'done'", (c["id"],)))
        if c["state"] in FINAL:
            assert escrow == 0, c
        elif c["state"] in ("PAID", "IN_USE", "OVERDUE", "RETURNED") or (
                c["state"] == "DISPUTED" and c["claim_kind"] == "handover"):
            assert escrow == c["rent"] + c["fee"] + c["deposit"] + c["extra_rent"] + c["extra_fee"], c
            assert escrow == landed - late_back, c
        elif c["state"] in ("CLAIMED", "DISPUTED"):  # what nobody disputes left when the claim opened
            assert escrow == c["deposit"] - c["late_fee"], c
        else:
            assert escrow == 0, c
        paid = await market.db.fetchval("SELECT COUNT(*) FROM transfers WHERE purpose = %s AND state = 'done'",
                                        (f"pay:{c['id']}",))
        assert paid <= 1
    held = int(await market.db.fetchval(
        "SELECT COALESCE(SUM(amount), 0) FROM ledger WHERE account LIKE 'escrow:%%' OR account = 'fees'"
        " OR account LIKE 'payable:%%' OR account = 'suspense'"))
    open_ = await market.db.fetchval(
        f"SELECT COUNT(*) FROM transfers WHERE state IN ({', '.join(['%s'] * len(OPEN_TRANSFERS))})"
        " AND sent_at IS NOT NULL", OPEN_TRANSFERS)
    late = await bank.land_count() if open_ == 0 else 1
    if open_ == 0 and late == 0:
        assert await bank.platform() == held
        for who in ("owner", "borrower"):
            moved = int(await market.db.fetchval("SELECT COALESCE(SUM(amount), 0) FROM ledger WHERE account = %s",
                                                 (f"bank:{people[who]}",)))
            assert await bank.balance_of(accounts[who]) == accounts[who]["balance"] + moved


async def _drain(market: Market, bank: Bank) -> None:
    """The end of the story: the bank commits what it sat on, the scheduler asks about every open transfer and
    sends every queued payout."""
    await bank.land()
    for _ in range(4):
        await market.db.execute("UPDATE transfers SET next_inquiry_at = %s WHERE state IN ('unknown', 'review')",
                                (market.rentals.clock.now(),))
        market.rentals.clock.advance(minutes=1)  # past any call still counted as in flight
        await market.rentals.process_transfers()


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=10, max_size=60))
async def test_money_and_the_machine_hold_after_every_step(market: Market, steps: list[Any]) -> None:
    assert market.config.bank_url
    bank = Bank(market.config.bank_url)
    await bank.reset()
    for table in ("ledger", "transfers", "reviews", "contracts"):  # (events and photos go with their contract)
        await market.db.execute(f"DELETE FROM {table}")
    market.rentals.clock.offset = timedelta()
    market.rentals.job_failures.clear()
    people = {"owner": await user(market), "borrower": await user(market), "stranger": await user(market)}
    iid = await item(market, people["owner"], price_per_day=5000, deposit=30000)
    accounts = {"owner": await link(market, bank, people["owner"], 0),
                "borrower": await link(market, bank, people["borrower"], START),
                "stranger": await link(market, bank, people["stranger"], START)}
    cid = None
    for action, who, failure, applied, amount, hours in steps:
        cid = await _do(market, bank, people, iid, cid, action, who, failure, applied, amount, hours)
        await _check(market, bank, accounts, people, iid)
    await _drain(market, bank)
    await _check(market, bank, accounts, people, iid)
    states = {r["state"] for r in await market.db.fetchall("SELECT state FROM contracts WHERE item_id = %s", (iid,))}
    paid = await market.db.fetchval("SELECT COUNT(*) FROM contract_events e JOIN contracts c ON c.id = e.contract_id"
                                    " WHERE c.item_id = %s AND e.kind = 'paid'", (iid,))
    event(f"reached: {'settled' if 'SETTLED' in states else 'paid' if paid else 'less'}")
    for s in states & {"CLAIMED", "DISPUTED", "RETURNED", "OVERDUE"}:
        event(f"ended in {s}")
