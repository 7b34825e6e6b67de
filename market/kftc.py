"""An httpx client for the KFTC Open Banking API v2.0 (see ``../shared/KFTC.md``).

Every protocol constant (paths, codes, field names) is in this module, so correcting one is a one-line change.
The client knows the protocol, not our rules: it returns the bank's answers as ``BankAnswer`` and raises
``BankUnreachable`` when no answer came (a timeout, a dropped connection, HTTP 5xx) — for a transfer that
means "outcome unknown", which only the transfer result inquiry may settle.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import httpx

SEOUL = ZoneInfo("Asia/Seoul")  # the bank's clock (tran_dtime, bank dates)


AUTHORIZE = "/oauth/2.0/authorize"
TOKEN = "/oauth/2.0/token"
USER_ME = "/v2.0/user/me"
ACCOUNT_LIST = "/v2.0/account/list"
BALANCE = "/v2.0/account/balance/fin_num"
WITHDRAW = "/v2.0/transfer/withdraw/fin_num"
DEPOSIT = "/v2.0/transfer/deposit/fin_num"
RESULT = "/v2.0/transfer/result"
TRANSACTION_LIST = "/v2.0/account/transaction_list/fin_num"
INQUIRY_SCOPE = "inquiry"
PRINT_PREFIX = "빌리"  # our transfers' reference on the platform account's statement: 빌리 + 9 characters

OK = "A0000"
PROCESSING = "A0001"
TIMEOUT = "A0007"
BANK_OK = "000"
INTERNAL = "A0003"
UNKNOWN_CODES = frozenset({PROCESSING, TIMEOUT, INTERNAL})  # the transfer may or may not have happened
# Bank codes a transfer result inquiry may answer that settle a transfer as refused. Anything else that is not
# BANK_OK ("no such transaction" — it may still land —, "processing", codes we do not know) is not final.
FINAL_REFUSALS = frozenset({"400", "412", "415", "453", "454", "455", "456"})
# Answers to a transfer call that refuse the request before it is processed (bad token, format, scope,
# unregistered account): nothing moved.
NOT_PROCESSED = frozenset({"O0001", "O0002", "O0003", "O0010", "O0011", "A0004", "A0322"})
TOKEN_CODES = frozenset({"O0002", "O0003"})
USER_SCOPE = "login inquiry transfer"
PLATFORM_SCOPE = "oob"
_ID_CHARS = string.ascii_uppercase + string.digits


def tran_dtime(now: datetime | None = None) -> str:
    return (now or datetime.now(SEOUL)).astimezone(SEOUL).strftime("%Y%m%d%H%M%S")


def new_bank_tran_id(client_use_code: str) -> str:
    """Our 10-character client_use_code + 'U' + 9 random upper-case letters or digits."""
    return client_use_code + "U" + "".join(secrets.choice(_ID_CHARS) for _ in range(9))


def print_ref(bank_tran_id: str) -> str:
    """What a transfer prints on the platform account's side of the statement: the part of its bank_tran_id that
    makes it unique, so each line of the bank's transaction list names the transfer it belongs to."""
    return PRINT_PREFIX + bank_tran_id[-9:]


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One line of the platform account's transaction list: money ``in`` or ``out``, and our reference when the
    printed text is one (else ``""``)."""

    day: str
    time: str
    direction: str
    amount: int
    printed: str
    balance: int

    @property
    def ref(self) -> str:
        p = self.printed
        return p if p.startswith(PRINT_PREFIX) and len(p) == len(PRINT_PREFIX) + 9 else ""


class BankUnreachable(Exception):
    """No answer from the bank (timeout, connection error, HTTP 5xx)."""


class BankNotReached(BankUnreachable):
    """The connection to the bank was never made (refused, no route, connect timeout): nothing was sent."""


class BankRefused(Exception):
    """An OAuth step failed (bad code, bad token, …)."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class BankAnswer:
    """A transfer's answer: ``ok``, ``unknown`` (ask the result later) or a refusal with its codes."""

    rsp_code: str
    bank_rsp_code: str
    message: str
    bank_tran_date: str | None
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.rsp_code == OK and self.bank_rsp_code == BANK_OK

    @property
    def unknown(self) -> bool:
        return self.rsp_code in UNKNOWN_CODES


@dataclass(frozen=True, slots=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_in: int
    user_seq_no: str
    scope: str


@dataclass(frozen=True, slots=True)
class Account:
    fintech_use_num: str
    bank_name: str
    account_num_masked: str
    holder_name: str


class KftcClient:
    def __init__(self, base_url: str, client_id: str, client_secret: str, *, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self._secret = client_secret
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout_s)

    async def close(self) -> None:
        await self._http.aclose()

    def authorize_url(self, redirect_uri: str, state: str) -> str:
        query = urlencode({"response_type": "code", "client_id": self.client_id, "redirect_uri": redirect_uri,
                           "scope": USER_SCOPE, "state": state, "auth_type": "0",
                           "client_info": "billi"})
        return f"{self.base_url}{AUTHORIZE}?{query}"

    # -- tokens ------------------------------------------------------------------------------------
    async def exchange_code(self, code: str, redirect_uri: str) -> Tokens:
        body = await self._token({"code": code, "redirect_uri": redirect_uri, "grant_type": "authorization_code"})
        return _tokens(body)

    async def refresh(self, refresh_token: str) -> Tokens:
        body = await self._token({"refresh_token": refresh_token, "scope": USER_SCOPE,
                                  "grant_type": "refresh_token"})
        return _tokens(body)

    async def platform_token(self) -> tuple[str, str, int]:
        """(access_token, client_use_code, expires_in) of the 2-legged token (scope oob)."""
        body = await self._token({"scope": PLATFORM_SCOPE, "grant_type": "client_credentials"})
        return str(body["access_token"]), str(body["client_use_code"]), int(body.get("expires_in") or 0)

    async def _token(self, form: dict[str, str]) -> dict[str, Any]:
        body = await self._call("POST", TOKEN, data={**form, "client_id": self.client_id,
                                                     "client_secret": self._secret})
        if "access_token" not in body:
            raise BankRefused(str(body.get("rsp_code", "O0001")), str(body.get("rsp_message", "")))
        return body

    # -- inquiry -----------------------------------------------------------------------------------
    async def accounts(self, token: str, user_seq_no: str) -> tuple[str, list[Account]]:
        """The person's name and accounts (``/v2.0/user/me``)."""
        body = await self._call("GET", USER_ME, token=token, params={"user_seq_no": user_seq_no})
        if body.get("rsp_code") != OK:
            raise BankRefused(str(body.get("rsp_code")), str(body.get("rsp_message", "")))
        return str(body.get("user_name", "")), [
            Account(str(a["fintech_use_num"]), str(a.get("bank_name", "")), str(a.get("account_num_masked", "")),
                    str(a.get("account_holder_name", ""))) for a in body.get("res_list", [])]

    async def balance(self, token: str, bank_tran_id: str, fintech_use_num: str) -> int:
        body = await self._call("GET", BALANCE, token=token, params={
            "bank_tran_id": bank_tran_id, "fintech_use_num": fintech_use_num, "tran_dtime": tran_dtime()})
        if body.get("rsp_code") != OK:
            raise BankRefused(str(body.get("rsp_code")), str(body.get("rsp_message", "")))
        return int(body["balance_amt"])

    # -- transfers ---------------------------------------------------------------------------------
    async def withdraw(self, token: str, *, bank_tran_id: str, dtime: str, fintech_use_num: str, amount: int,
                       platform_account: str, client_name: str, client_num: str, memo: str) -> BankAnswer:
        body = await self._call("POST", WITHDRAW, token=token, json={
            "bank_tran_id": bank_tran_id, "cntr_account_type": "N", "cntr_account_num": platform_account,
            "dps_print_content": print_ref(bank_tran_id), "fintech_use_num": fintech_use_num,
            "wd_print_content": memo[:7],
            "tran_amt": str(amount), "tran_dtime": dtime, "req_client_name": client_name[:20],
            "req_client_fintech_use_num": fintech_use_num, "req_client_num": client_num,
            "transfer_purpose": "ST", "recv_client_name": "빌리마켓", "recv_client_bank_code": "097",
            "recv_client_account_num": platform_account})
        return _answer(body, body)

    async def deposit(self, token: str, *, bank_tran_id: str, dtime: str, fintech_use_num: str, amount: int,
                      platform_account: str, client_name: str, client_num: str, memo: str) -> BankAnswer:
        body = await self._call("POST", DEPOSIT, token=token, json={
            "cntr_account_type": "N", "cntr_account_num": platform_account, "wd_pass_phrase": "NONE",
            "wd_print_content": print_ref(bank_tran_id), "name_check_option": "off", "tran_dtime": dtime,
            "req_cnt": "1",
            "req_list": [{"tran_no": "1", "bank_tran_id": bank_tran_id, "fintech_use_num": fintech_use_num,
                          "print_content": "빌리페이", "tran_amt": str(amount), "req_client_name": client_name[:20],
                          "req_client_num": client_num, "transfer_purpose": "TR"}]})
        item = (body.get("res_list") or [{}])[0]
        return _answer(body, item)

    async def result(self, token: str, *, withdraw: bool, bank_tran_id: str, bank_tran_date: str,
                     amount: int) -> BankAnswer:
        body = await self._call("POST", RESULT, token=token, json={
            "check_type": "1" if withdraw else "2", "tran_dtime": tran_dtime(), "req_cnt": "1",
            "req_list": [{"tran_no": "1", "org_bank_tran_id": bank_tran_id, "org_bank_tran_date": bank_tran_date,
                          "org_tran_amt": str(amount)}]})
        item = (body.get("res_list") or [{}])[0]
        return _answer(body, item)

    async def transaction_list(self, token: str, *, bank_tran_id: str, fintech_use_num: str, day: str,
                               trace: str | None = None) -> tuple[list[StatementLine], str | None]:
        """One page of an account's transactions on ``day`` (yyyyMMdd), oldest first, and the trace of the next
        page (None on the last). Needs a token with the ``inquiry`` scope for that account."""
        params = {"bank_tran_id": bank_tran_id, "fintech_use_num": fintech_use_num, "inquiry_type": "A",
                  "inquiry_base": "D", "from_date": day, "to_date": day, "sort_order": "A", "tran_dtime": tran_dtime()}
        if trace:
            params["befor_inquiry_trace_info"] = trace
        body = await self._call("GET", TRANSACTION_LIST, token=token, params=params)
        if body.get("rsp_code") != OK:
            raise BankRefused(str(body.get("rsp_code")), str(body.get("rsp_message", "")))
        lines = [StatementLine(str(r.get("tran_date", "")), str(r.get("tran_time", "")),
                               "in" if r.get("inout_type") == "입금" else "out", int(str(r.get("tran_amt") or 0)),
                               str(r.get("print_content", "")), int(str(r.get("after_balance_amt") or 0)))
                 for r in body.get("res_list") or []]
        more = body.get("next_page_yn") == "Y" and body.get("befor_inquiry_trace_info")
        return lines, str(body["befor_inquiry_trace_info"]) if more else None

    async def _call(self, method: str, path: str, *, token: str | None = None, **kw: Any) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            resp = await self._http.request(method, path, headers=headers, **kw)
        except (httpx.ConnectError, httpx.ConnectTimeout) as e:  # never connected: the request never left
            raise BankNotReached(type(e).__name__) from None
        except httpx.HTTPError as e:  # a timeout after sending, a dropped answer: it may have been done
            raise BankUnreachable(type(e).__name__) from None
        if resp.status_code != 200:  # KFTC answers everything, errors too, with 200: anything else is not it
            raise BankUnreachable(f"HTTP {resp.status_code}")
        try:
            body = resp.json()
        except ValueError:
            raise BankUnreachable("unreadable answer") from None
        if not isinstance(body, dict):
            raise BankUnreachable("unreadable answer")
        return body


def _tokens(body: dict[str, Any]) -> Tokens:
    return Tokens(str(body["access_token"]), str(body.get("refresh_token", "")), int(body.get("expires_in") or 0),
                  str(body.get("user_seq_no", "")), str(body.get("scope", "")))


def _answer(top: dict[str, Any], item: dict[str, Any]) -> BankAnswer:
    rsp = str(top.get("rsp_code", ""))
    if rsp == "A0009":  # one item of a list failed: the item's bank code tells which way
        rsp = "A0002"
    return BankAnswer(rsp, str(item.get("bank_rsp_code", "")),
                      str(item.get("bank_rsp_message") or top.get("rsp_message", "")),
                      item.get("bank_tran_date") or None, top)
