"""Shared by the rental tests: the bank sandbox's control API and a way to link a person's account through
the real OAuth redirect dance, all over HTTP."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from market.config import Config
from market.rentals.kdates import seoul_today
from market.service import Market
from tests.conftest import item_fields

CALLBACK = "http://127.0.0.1:9/billipay/callback"  # never fetched: the test reads the redirect itself


class Bank:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    async def _call(self, method: str, path: str, **kw: Any) -> Any:
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as http:
            resp = await http.request(method, path, **kw)
            resp.raise_for_status()
            return resp.json()

    async def person(self, name: str, balance: int, holder: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "balance": balance}
        if holder:
            body["holder"] = holder
        return await self._call("POST", "/sandbox/people", json=body)  # type: ignore[no-any-return]

    async def balances(self) -> dict[str, Any]:
        return await self._call("GET", "/sandbox/balances")  # type: ignore[no-any-return]

    async def balance_of(self, person: dict[str, Any]) -> int:
        return int((await self.balances())["people"][person["user_seq_no"]])

    async def platform(self) -> int:
        return int((await self.balances())["platform"])

    async def fail(self, path: str, mode: str, *, applied: bool = False, times: int = 1,
                   hang_s: float | None = None, after: int = 1) -> None:
        body: dict[str, Any] = {"path": path, "mode": mode, "applied": applied, "times": times, "after": after}
        if hang_s is not None:
            body["hang_s"] = hang_s
        await self._call("POST", "/sandbox/fail", json=body)

    async def statement(self, op: str, **kw: Any) -> dict[str, Any]:
        """Make the platform account's transaction list differ from the truth (drop / extra / amend)."""
        return await self._call("POST", "/sandbox/statement", json={"op": op, **kw})  # type: ignore[no-any-return]

    async def reset(self) -> None:
        await self._call("POST", "/sandbox/reset")

    async def land_count(self) -> int:
        """How many transfers the bank is still sitting on (``late``: they land later)."""
        return int((await self.balances())["late"])

    async def land(self) -> int:
        """The bank commits every "late" transfer now."""
        return int((await self._call("POST", "/sandbox/land"))["landed"])

    async def consent(self, authorize_url: str, person: dict[str, Any], *, deny: bool = False) -> dict[str, str]:
        """Press the consent page's button as ``person``; returns the query the bank redirects back with."""
        parts = urlsplit(authorize_url)
        form = {k: v[0] for k, v in parse_qs(parts.query).items()}
        async with httpx.AsyncClient(timeout=30) as http:
            page = await http.get(authorize_url)
            assert page.status_code == 200 and "동의" in page.text
            resp = await http.post(f"{parts.scheme}://{parts.netloc}{parts.path}", data={
                **form, "user_seq_no": person["user_seq_no"], "consent": "no" if deny else "yes"})
        assert resp.status_code == 302, resp.text
        back = urlsplit(resp.headers["location"])
        return {k: v[0] for k, v in parse_qs(back.query).items()}


async def link(market: Market, bank: Bank, user_id: int, balance: int, name: str = "테스트", *,
               confirmed: bool = True, holder: str | None = None) -> dict[str, Any]:
    """A sandbox person with ``balance`` won whose account is linked to ``user_id`` the way a person does it
    (the bank's redirect comes back in their own session); ``confirmed``: they have also confirmed it the way
    the first payment's card asks them to, so later payments go straight through."""
    assert market.billipay is not None
    person = await bank.person(name, balance, holder=holder)
    url = await market.billipay.start_link(user_id, CALLBACK)
    back = await bank.consent(url, person)
    await market.billipay.finish_link(back["state"], back["code"], session_user=user_id)
    if confirmed:
        await confirm(market, user_id)
    return person


async def confirm(market: Market, user_id: int) -> None:
    """The person confirms their newly linked account (what pressing 결제 on the confirmation card records)."""
    assert market.billipay is not None
    shown = await market.billipay.first_use(user_id)
    assert shown is not None
    async with market.db.transaction() as cur:
        await market.billipay.confirm_first_use(cur, user_id, shown["check"])


_n = iter(range(1, 10**6))


async def user(market: Market, nickname: str | None = None) -> int:
    n = next(_n)
    session = await market.accounts.sign_up({"email": f"renter{n}@example.com", "nickname": nickname or f"대여자{n}",
                                             "password": "rent4you"})
    return int(session.user.id)


async def item(market: Market, owner_id: int, **over: Any) -> int:
    made = await market.items.create(owner_id, item_fields(**over))
    return int(made["id"])


def days(start: int, length: int) -> tuple[date, date]:
    """A range starting ``start`` days from today (Seoul), ``length`` days long."""
    s = seoul_today() + timedelta(days=start)
    return s, s + timedelta(days=length - 1)


async def inquiries_due(market: Market) -> None:
    """Time passes: every unknown transfer's next inquiry is due."""
    await market.db.execute("UPDATE transfers SET next_inquiry_at = NOW(3) - INTERVAL 1 SECOND WHERE state = 'unknown'")


async def accepted(market: Market, bank: Bank, balance: int = 1_000_000) -> tuple[int, int, dict[str, Any]]:
    """An accepted request (in two days, for two days) whose borrower has a linked, confirmed account holding
    ``balance``; returns (contract id, borrower, the borrower's sandbox person)."""
    owner, borrower = await user(market), await user(market)
    acct = await link(market, bank, borrower, balance, "손님")
    c, _ = await market.rentals.request(borrower, await item(market, owner), *days(2, 2))
    await market.rentals.accept(owner, c.id)
    return c.id, borrower, acct


async def paid_rental(market: Market, bank: Bank, start: int = 0, length: int = 1) -> tuple[int, int, int]:
    """A paid rental (both people with linked, confirmed accounts); returns (contract id, owner, borrower)."""
    owner, borrower = await user(market), await user(market)
    await link(market, bank, owner, 0, "주인")
    await link(market, bank, borrower, 1_000_000, "손님")
    c, _ = await market.rentals.request(borrower, await item(market, owner), *days(start, length))
    await market.rentals.accept(owner, c.id)
    await market.rentals.pay_now(borrower, c.id)
    return c.id, owner, borrower


async def linked_balance(market: Market, bank: Bank, user_id: int) -> int:
    """What the bank holds in the account this person has linked."""
    fintech = await market.db.fetchval("SELECT fintech_use_num FROM bank_links WHERE user_id = %s", (user_id,))
    return int((await bank.balances())["accounts"][fintech])


async def ledger_sum(market: Market, account: str | None = None) -> int:
    if account is None:
        return int(await market.db.fetchval("SELECT COALESCE(SUM(amount), 0) FROM ledger"))
    return int(await market.db.fetchval("SELECT COALESCE(SUM(amount), 0) FROM ledger WHERE account = %s",
                                        (account,)))


async def settled(market: Market, bank: Bank, owner: int | None = None, borrower: int | None = None,
                  *, late_days: int = 0) -> tuple[int, int, int]:
    """A rental taken all the way to SETTLED; returns (contract id, owner, borrower)."""
    owner = owner or await user(market)
    borrower = borrower or await user(market)
    iid = await item(market, owner)
    await link(market, bank, owner, 0)
    await link(market, bank, borrower, 1_000_000)
    c, _ = await market.rentals.request(borrower, iid, *days(0, 1))
    await market.rentals.accept(owner, c.id)
    await market.rentals.pay_now(borrower, c.id)
    await market.rentals.hand_over(owner, c.id)
    await market.rentals.hand_over(borrower, c.id)
    if late_days:
        await market.db.execute("UPDATE contracts SET start_date = start_date - INTERVAL %s DAY, end_date = end_date"
                                " - INTERVAL %s DAY WHERE id = %s", (late_days, late_days, c.id))
    await market.rentals.mark_returned(borrower, c.id)
    await market.rentals.mark_returned(owner, c.id)
    await market.rentals.confirm_ok(owner, c.id)
    return c.id, owner, borrower


async def billi(config: Config, *args: str, exit_code: int = 0) -> str:
    """Run the ``billi`` command against the test's own services, as an operator would; its output (and its
    stderr when it is expected to fail)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BILLI_")}
    env.update(BILLI_DATABASE_URL=config.database_url or "", BILLI_REDIS_URL=config.redis_url or "",
               BILLI_S3_URL=config.s3_url or "", BILLI_S3_BUCKET=config.s3_bucket, BILLI_BANK_URL=config.bank_url or "")
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway.cli", *args, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == exit_code, err.decode()
    return (out if exit_code == 0 else out + err).decode()
