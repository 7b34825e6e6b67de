"""Daily reconciliation: the platform account's transaction list at the bank against our transfers and ledger.

Every transfer we send carries a reference on the platform account's side of the statement (``print_ref``: the
nine characters that make its ``bank_tran_id`` unique), so each line of the bank's list names the transfer it
belongs to. For one day (Asia/Seoul, the bank's day) every difference is reported:

- ``missing``: we recorded the transfer done, the bank has no such line;
- ``extra``: the bank has a line that names no transfer of ours;
- ``amount``: the line and the transfer disagree on the amount or the direction;
- ``suspense``: the bank moved money for a transfer we recorded failed (a late answer contradicting ours) — the
  money is moved to the ``suspense`` ledger account and the transfer to ``suspense``, for an operator
  (``billi transfers --suspense``);
- ``ledger``: a done transfer whose ledger movement is missing or of another amount.

Transfers still open (queued, sending, unknown, review) are not differences: their inquiries settle them.
The result of each day is kept (``reconciliations``), so the scheduler runs each day once.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import date, timedelta

from market.billipay import BilliPay
from market.db import Database
from market.kftc import print_ref

log = logging.getLogger("billi.reconcile")


@dataclass(frozen=True, slots=True)
class Difference:
    kind: str  # missing | extra | amount | suspense | ledger
    ref: str
    transfer_id: int | None
    ours: int | None
    bank: int | None
    detail: str

    def line(self) -> str:
        ours = "-" if self.ours is None else f"{self.ours:,}원"
        bank = "-" if self.bank is None else f"{self.bank:,}원"
        who = f"#{self.transfer_id}" if self.transfer_id else "-"
        return f"{self.kind:8} {self.ref:12} transfer {who:>7}  ours {ours:>12}  bank {bank:>12}  {self.detail}"


class Reconciler:
    def __init__(self, db: Database, pay: BilliPay) -> None:
        self.db = db
        self.pay = pay
        self.last: Counter[str] = Counter()  # the last run's differences by kind (for /metrics)

    async def done_on(self, day: date) -> bool:
        return await self.db.fetchval("SELECT 1 FROM reconciliations WHERE day = %s", (day,)) is not None

    async def run(self, day: date) -> list[Difference]:
        # A transfer and its line may fall on neighbouring days (sent at 23:59, booked at 00:01; a date taken
        # from our own clock): the day's lines are matched among the transfers of the day before and after,
        # and the day's transfers among the lines of those days. Only the day's own are reported.
        today = self.pay.clock.today()
        around = {d: await self.pay.statement(d) for d in (day - timedelta(days=1), day + timedelta(days=1))
                  if d <= today}
        lines = await self.pay.statement(day)
        on_day = {d.strftime("%Y%m%d"): {x.ref for x in found if x.ref} for d, found in around.items()}
        elsewhere = {ref for refs in on_day.values() for ref in refs}
        days = [(day + timedelta(days=d)).strftime("%Y%m%d") for d in (-1, 0, 1)]
        near = await self.db.fetchall(
            "SELECT id, bank_tran_id, purpose, user_id, direction, amount, state,"
            " COALESCE(bank_tran_date, LEFT(tran_dtime, 8)) AS day FROM transfers"
            " WHERE COALESCE(bank_tran_date, LEFT(tran_dtime, 8)) IN (%s, %s, %s) AND sent_at IS NOT NULL", days)
        ours = {print_ref(str(r["bank_tran_id"])): r for r in near}
        rows = [r for r in near if r["day"] == days[1]]
        seen: set[str] = set()
        diffs: list[Difference] = []
        for line in lines:
            t = ours.get(line.ref)
            # a neighbouring day's transfer whose line is on its own day already: this one is a second line
            twice = t is not None and t["day"] != days[1] and line.ref in on_day.get(str(t["day"]), set())
            if t is None or line.ref in seen or twice:
                diffs.append(Difference("extra", line.ref or "-", None, None, line.amount,
                                        f"{line.direction} {line.printed!r} at {line.time}"))
                continue
            seen.add(line.ref)
            direction = "withdraw" if line.direction == "in" else "deposit"  # money into the platform account
            if t["state"] == "failed":
                await self.pay.to_suspense(int(t["id"]))
                diffs.append(Difference("suspense", line.ref, int(t["id"]), int(t["amount"]), line.amount,
                                        f"recorded failed, the bank moved it ({t['purpose']})"))
            elif t["state"] == "suspense":
                continue  # found on an earlier day's run; it waits for an operator
            elif line.amount != int(t["amount"]) or direction != t["direction"]:
                diffs.append(Difference("amount", line.ref, int(t["id"]), int(t["amount"]), line.amount,
                                        f"{t['direction']} {t['purpose']}, the bank: {line.direction}"))
        for t in rows:
            ref = print_ref(str(t["bank_tran_id"]))
            if t["state"] == "done" and ref not in seen and ref not in elsewhere:
                diffs.append(Difference("missing", ref, int(t["id"]), int(t["amount"]), None,
                                        f"{t['direction']} {t['purpose']} recorded done"))
        for t in rows:
            if t["state"] != "done":
                continue
            moved = await self.db.fetchval(
                "SELECT COALESCE(SUM(amount), 0) FROM ledger WHERE movement = %s AND amount > 0", (f"t{t['id']}",))
            if int(moved) != int(t["amount"]):
                diffs.append(Difference("ledger", print_ref(str(t["bank_tran_id"])), int(t["id"]), int(t["amount"]),
                                        None, f"ledger movement t{t['id']} holds {int(moved):,}원"))
        self.last = Counter(d.kind for d in diffs)
        await self.db.execute(
            "INSERT INTO reconciliations (day, differences, report) VALUES (%s, %s, %s)"
            " ON DUPLICATE KEY UPDATE differences = VALUES(differences), report = VALUES(report), ran_at = NOW(3)",
            (day, len(diffs), json.dumps([asdict(d) for d in diffs], ensure_ascii=False)))
        if diffs:
            log.warning("reconciliation of %s: %d difference(s): %s", day, len(diffs),
                        "; ".join(d.line() for d in diffs[:20]))
        else:
            log.info("reconciliation of %s: %d line(s), no differences", day, len(lines))
        return diffs
