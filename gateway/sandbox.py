"""The outside parties' sandbox: an HTTP server that speaks the KFTC Open Banking protocol and Naver login
(``../shared/KFTC.md``) with test people, accounts and balances, for development and tests. It stands in for
outside parties only.

Naver: ``/oauth2.0/authorize`` (a consent page with test profiles; 취소 answers ``error=access_denied``),
``/oauth2.0/token`` (codes work once and for 60 s; a bad one gets HTTP 200 with ``invalid_request``; refresh and
delete grants), ``/v1/nid/me`` (401 ``024``/``028`` without a good token); ``POST /sandbox/naver/people`` adds a
profile, ``POST /sandbox/naver/expire_codes`` ages every code past its life.

Run it with ``billi sandbox`` (``billi up`` and the tests start it too). Besides the bank's own paths it has a
control API for tests and demos, under ``/sandbox/``:

- ``POST /sandbox/people {"name", "balance", "holder"?}`` → a person with one account (held in ``holder``'s name
  when given): ``user_seq_no``, ``fintech_use_num``;
- ``GET /sandbox/balances`` → every account's balance, and the platform account's;
- ``POST /sandbox/fail {"path": "withdraw|deposit|result|token|me", "mode": …, "applied": bool, "times": n}``
  makes the next ``n`` calls of that path fail: ``insufficient`` (bank 453), ``closed`` (415), ``limit`` (455),
  ``refused`` (A0002 with bank 400), ``processing`` (A0001), ``timeout`` (A0007), ``hang`` (no answer for
  ``hang_s`` seconds), ``5xx`` (HTTP 500), ``expired_token`` (the access token
  used has expired: O0003 now and whenever it is used again; a refreshed one works). For ``processing``/``timeout``/``hang``/``5xx``
  ``applied`` says whether the money really moved — the transfer result inquiry tells the truth either way;
  ``429`` (an HTTP 429 from a proxy) and ``odd`` (A0000 with no bank code) answer oddly after the transfer
  did or did not happen (``applied``); ``late`` (withdraw/deposit, with ``after``: n): a timeout now, and the result inquiry answers "no such
  transaction" (bank code ``NOT_FOUND``) n times before the transfer lands (``applied``) or is refused; ``never``
  (withdraw/deposit): a timeout now, and the bank never has it (every inquiry: no such transaction); for
  ``result``, ``internal`` answers A0003. The inquiry also answers "no such transaction" when asked with a day
  other than the one the transfer was sent on (``org_bank_tran_date``), as a real bank does;
- ``POST /sandbox/land`` makes every "late" transfer land now (the bank commits on its own time);
- ``GET /v2.0/account/transaction_list/fin_num`` lists the platform account's movements (fintech number
  ``PLATFORM_FINTECH``, the inquiry-scope token ``PLATFORM_INQUIRY_TOKEN``), ten lines a page; and
  ``POST /sandbox/statement {"op": "drop" | "extra" | "amend", "amount"?}`` makes that list differ from the
  truth as a reconciliation must catch: ``drop`` loses the last line, ``extra`` adds a deposit nobody sent us
  (``amount``, printed ``printed`` or ``김아무개``, on ``date`` yyyyMMdd or today), ``amend`` changes the last line's amount by ``amount`` (default 1000);
- ``POST /sandbox/reset`` forgets everything.

State lives in this process's memory: the sandbox is a stand-in, not part of the platform.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import secrets
import socket
import string
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from market.rentals.kdates import SEOUL

CLIENT_ID = "billi-sandbox-client"
CLIENT_SECRET = "billi-sandbox-secret"
CLIENT_USE_CODE = "M202600001"
NAVER_CLIENT_ID = "billi-naver-client"
NAVER_CLIENT_SECRET = "billi-naver-secret"
NAVER_CODE_TTL_S = 60
NAVER_DEMO = (("네이버빌리", "naver.billi@example.com", "김네이버"), ("민지", "minji.naver@example.com", "이민지"))
PLATFORM_ACCOUNT = "1002003004005"
PLATFORM_FINTECH = "199000000000000000000001"  # the platform account, as the transaction list knows it
PLATFORM_INQUIRY_TOKEN = "billi-sandbox-platform-inquiry"  # the platform account's inquiry-scope token
STATEMENT_PAGE = 10
PLATFORM_START_BALANCE = 0
USER_TOKEN_S = 7_776_000
BANKS = [("004", "KB국민은행"), ("088", "신한은행"), ("020", "우리은행"), ("081", "하나은행"), ("090", "카카오뱅크")]
_DIGITS = string.digits


NOT_FOUND = "599"  # the sandbox's bank code for "no such transaction" in a transfer result inquiry (not final)


def _now_dtm() -> str:
    return datetime.now(SEOUL).strftime("%Y%m%d%H%M%S%f")[:17]


def _api_tran_id() -> str:
    return "SB" + secrets.token_hex(9).upper()


@dataclass
class SbAccount:
    fintech_use_num: str
    bank_code: str
    bank_name: str
    account_num: str
    holder: str
    balance: int

    @property
    def masked(self) -> str:
        return self.account_num[:-4] + "****"


@dataclass
class SbPerson:
    user_seq_no: str
    name: str
    accounts: list[SbAccount]


@dataclass
class Rule:
    mode: str
    applied: bool
    times: int
    after: int = 1  # "late": how many result inquiries answer "no such transaction" before it lands


@dataclass
class Bank:
    people: dict[str, SbPerson] = field(default_factory=dict)
    by_fintech: dict[str, SbAccount] = field(default_factory=dict)
    codes: dict[str, tuple[str, str]] = field(default_factory=dict)  # code → (user_seq_no, redirect_uri)
    tokens: dict[str, tuple[str, str, str]] = field(  # token → (kind, user_seq_no, scope)
        default_factory=lambda: {PLATFORM_INQUIRY_TOKEN: ("user", "platform", "inquiry")})
    statement: list[dict[str, str]] = field(default_factory=list)  # the platform account's movements
    expired: set[str] = field(default_factory=set)  # user access tokens past their life
    refresh: dict[str, str] = field(default_factory=dict)  # refresh token → user_seq_no
    transfers: dict[str, dict[str, Any]] = field(default_factory=dict)  # bank_tran_id → record
    platform_balance: int = PLATFORM_START_BALANCE
    rules: dict[str, list[Rule]] = field(default_factory=dict)
    hang_s: float = 30.0
    naver_people: dict[str, dict[str, str]] = field(default_factory=dict)  # id → profile
    naver_codes: dict[str, tuple[str, str, float]] = field(default_factory=dict)  # code → (id, redirect, made)
    naver_tokens: dict[str, str] = field(default_factory=dict)  # access or refresh token → id

    def add_naver(self, nickname: str, email: str, name: str) -> dict[str, str]:
        pid = secrets.token_hex(16)
        profile = {"id": pid, "nickname": nickname, "name": name, "email": email,
                   "profile_image": "", "gender": "U", "age": "20-29"}
        self.naver_people[pid] = profile
        return profile

    def rule(self, path: str) -> Rule | None:
        queue = self.rules.get(path) or []
        if not queue:
            return None
        r = queue[0]
        r.times -= 1
        if r.times <= 0:
            queue.pop(0)
        return r

    def add_person(self, name: str, balance: int, holder: str | None = None) -> SbPerson:
        seq = "".join(secrets.choice(_DIGITS) for _ in range(10))
        code, bank_name = BANKS[len(self.people) % len(BANKS)]
        fin = "".join(secrets.choice(_DIGITS) for _ in range(24))
        acct = SbAccount(fin, code, bank_name, "".join(secrets.choice(_DIGITS) for _ in range(12)), holder or name,
                         balance)
        person = SbPerson(seq, name, [acct])
        self.people[seq] = person
        self.by_fintech[fin] = acct
        return person


def _ok(**body: Any) -> dict[str, Any]:
    return {"api_tran_id": _api_tran_id(), "api_tran_dtm": _now_dtm(), "rsp_code": "A0000", "rsp_message": "",
            **body}


def _consent_page(title: str, heading: str, ask: str, fields: Any, options: str, yes: str,
                  no: str) -> web.Response:
    """A consent page: the request's own fields carried along hidden, a choice of person, agree / refuse."""
    hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(str(v))}">'
                     for k, v in fields.items())
    page = (f'<!doctype html><meta charset="utf-8"><title>{title}</title><h1>{heading}</h1><p>{ask}</p>'
            f'<form method="post">{hidden}{options}'
            f'<button name="consent" value="yes">{yes}</button> '
            f'<button name="consent" value="no">{no}</button></form>')
    return web.Response(text=page, content_type="text/html")


def _err(code: str, message: str) -> web.Response:
    return web.json_response({"api_tran_id": _api_tran_id(), "api_tran_dtm": _now_dtm(), "rsp_code": code,
                              "rsp_message": message})


DEMO_PEOPLE = (("김빌리", 1_000_000), ("이나눔", 1_000_000), ("박이웃", 300_000), ("최잔액", 1_000))


def create_sandbox_app(hang_s: float = 30.0, *, demo: bool = False) -> web.Application:
    """The sandbox bank; ``demo`` starts it with a few test people to pick on the consent page."""
    app = web.Application()
    bank = Bank(hang_s=hang_s)
    if demo:
        for name, balance in DEMO_PEOPLE:
            bank.add_person(name, balance)
        for nickname, email, name in NAVER_DEMO:
            bank.add_naver(nickname, email, name)
    app["bank"] = bank

    def bearer(request: web.Request, scope: str) -> tuple[str, str] | web.Response:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return _err("O0001", "인증 요청 파라미터 오류")
        found = bank.tokens.get(auth[7:])
        if found is None:
            return _err("O0002", "Access Token 거부")
        kind, seq, scopes = found
        if scope not in scopes.split():
            return _err("O0011", "허용되지 않은 scope")
        return kind, seq

    # -- OAuth ---------------------------------------------------------------------------------------
    async def authorize(request: web.Request) -> web.StreamResponse:
        q = request.query if request.method == "GET" else await request.post()
        if q.get("client_id") != CLIENT_ID or q.get("response_type") != "code" or not q.get("redirect_uri"):
            return web.Response(status=400, text="O0001 인증 요청 파라미터 오류")
        redirect, state = str(q["redirect_uri"]), str(q.get("state", ""))
        if request.method == "GET":
            options = "".join(
                f'<label><input type="radio" name="user_seq_no" value="{html.escape(p.user_seq_no)}"'
                f'{" checked" if i == 0 else ""}> {html.escape(p.name)} ({html.escape(p.accounts[0].bank_name)}'
                f' {html.escape(p.accounts[0].masked)})</label><br>' for i, p in enumerate(bank.people.values()))
            return _consent_page("오픈뱅킹 샌드박스 — 계좌 연결 동의", "계좌 연결 동의",
                                 "빌리마켓이 출금이체와 조회를 요청합니다.", q, options,
                                 "동의하고 연결", "거부")
        if q.get("consent") != "yes":
            target = redirect + "?" + urlencode({"error": "access_denied", "error_description": "user denied",
                                                 "state": state})
            raise web.HTTPFound(target)
        seq = str(q.get("user_seq_no", ""))
        if seq not in bank.people:
            return web.Response(status=400, text="사용자를 골라 주세요")
        code = secrets.token_urlsafe(16)
        bank.codes[code] = (seq, redirect)
        raise web.HTTPFound(redirect + "?" + urlencode({"code": code, "scope": q.get("scope", ""),
                                                        "client_info": q.get("client_info", ""), "state": state}))

    async def token(request: web.Request) -> web.Response:
        rule = bank.rule("token")
        if rule and rule.mode == "5xx":
            return web.Response(status=500)
        form = await request.post()
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return _err("O0001", "클라이언트 인증 실패")
        grant = form.get("grant_type")
        if grant == "client_credentials":
            if form.get("scope") != "oob":
                return _err("O0011", "허용되지 않은 scope")
            tok = secrets.token_urlsafe(24)
            bank.tokens[tok] = ("platform", "", "oob")
            return web.json_response({"access_token": tok, "token_type": "Bearer", "expires_in": 7_776_000,
                                      "scope": "oob", "client_use_code": CLIENT_USE_CODE})
        if grant == "authorization_code":
            found = bank.codes.pop(str(form.get("code", "")), None)
            if found is None or found[1] != form.get("redirect_uri"):
                return _err("O0001", "인증 요청 파라미터 오류 (code)")
            seq = found[0]
        elif grant == "refresh_token":
            seq = bank.refresh.get(str(form.get("refresh_token", "")), "")
            if not seq:
                return _err("O0001", "인증 요청 파라미터 오류 (refresh_token)")
        else:
            return _err("O0001", "인증 요청 파라미터 오류 (grant_type)")
        tok, ref = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        bank.tokens[tok] = ("user", seq, "login inquiry transfer")
        bank.refresh[ref] = seq
        return web.json_response({"access_token": tok, "token_type": "Bearer", "expires_in": USER_TOKEN_S,
                                  "refresh_token": ref, "scope": "login inquiry transfer", "user_seq_no": seq})

    # -- inquiry -------------------------------------------------------------------------------------
    async def user_me(request: web.Request) -> web.Response:
        who = bearer(request, "login")
        if isinstance(who, web.Response):
            return who
        person = bank.people.get(request.query.get("user_seq_no", ""))
        if person is None or person.user_seq_no != who[1]:
            return _err("A0004", "요청전문 포맷 에러 (user_seq_no)")
        return web.json_response(_ok(user_seq_no=person.user_seq_no, user_name=person.name,
                                     res_cnt=str(len(person.accounts)), res_list=[
            {"fintech_use_num": a.fintech_use_num, "account_alias": "", "bank_code_std": a.bank_code,
             "bank_name": a.bank_name, "account_num_masked": a.masked, "account_holder_name": a.holder,
             "transfer_agree_yn": "Y", "inquiry_agree_yn": "Y"} for a in person.accounts]))

    async def balance(request: web.Request) -> web.Response:
        who = bearer(request, "inquiry")
        if isinstance(who, web.Response):
            return who
        acct = bank.by_fintech.get(request.query.get("fintech_use_num", ""))
        if acct is None:
            return _err("A0002", "no such account")
        return web.json_response(_ok(bank_tran_id=request.query.get("bank_tran_id", ""), balance_amt=str(acct.balance),
                                     available_amt=str(acct.balance), bank_rsp_code="000"))

    # -- transfers -----------------------------------------------------------------------------------
    def bank_refusal(rule: Rule | None) -> tuple[str, str] | None:
        table = {"insufficient": ("453", "잔액부족"), "closed": ("415", "해지계좌"), "limit": ("455", "한도초과"),
                 "refused": ("400", "거래불가")}
        return table.get(rule.mode) if rule else None

    async def move(rule: Rule | None, record: dict[str, Any], ok_body: dict[str, Any], acct: SbAccount,
                   amount: int, printed: str) -> web.Response:
        """Move ``amount`` into ``acct`` (negative: out of it) against the platform account — unless a scripted
        failure says the money did not move — and answer, or fail to answer, as the rule says. Money that moves
        is a line of the platform account's statement, printed as the request asked."""
        def land() -> None:
            if rule is None or rule.applied:
                acct.balance += amount
                bank.platform_balance -= amount
                record["result"] = "000"
                bank.statement.append({
                    "tran_date": record["date"], "tran_time": datetime.now(SEOUL).strftime("%H%M%S"),
                    "inout_type": "입금" if amount < 0 else "출금", "tran_type": "이체", "print_content": printed,
                    "tran_amt": str(abs(amount)), "after_balance_amt": str(bank.platform_balance),
                    "branch_name": ""})
            else:
                record["result"] = "400"

        if rule is not None and rule.mode == "late":  # known to the bank only later: a timeout now, and the
            record["late"] = [rule.after, land]      # result inquiry says "no such transaction" until it lands
            return _err("A0007", "시간초과")
        if rule is not None and rule.mode == "never":  # lost on the way: a timeout now, and the bank never has it
            bank.transfers.pop(str(record.get("tid")), None)
            return _err("A0007", "시간초과")
        land()
        if rule is None:
            return web.json_response(ok_body)
        return await answer_unknown(rule, ok_body)

    def bad_tran_id(tid: str) -> web.Response | None:
        if not tid.startswith(CLIENT_USE_CODE + "U") or len(tid) != 20:
            return _err("A0004", "요청전문 포맷 에러 (bank_tran_id)")
        if tid in bank.transfers:
            return _err("A0326", "거래고유번호 중복")
        return None

    async def answer_unknown(rule: Rule, ok_body: dict[str, Any]) -> web.Response:
        if rule.mode == "hang":
            await asyncio.sleep(bank.hang_s)
            return web.json_response(ok_body)
        if rule.mode == "5xx":
            return web.Response(status=503, text="Service Unavailable")
        if rule.mode == "429":  # a proxy in front of the bank refusing the answer, not the transfer
            return web.json_response({"error": "too many requests"}, status=429)
        if rule.mode == "odd":  # A0000 but no bank code: not an answer we can take either way
            return web.json_response({"api_tran_id": _api_tran_id(), "api_tran_dtm": _now_dtm(), "rsp_code": "A0000"})
        code = "A0001" if rule.mode == "processing" else "A0007"
        return _err(code, "처리중" if code == "A0001" else "시간초과")

    async def withdraw(request: web.Request) -> web.Response:
        who = bearer(request, "transfer")
        if isinstance(who, web.Response):
            return who
        body = await request.json()
        tid = str(body.get("bank_tran_id", ""))
        if not body.get("recv_client_account_num") or body.get("cntr_account_num") != PLATFORM_ACCOUNT:
            return _err("A0004", "요청전문 포맷 에러 (recv_client)")
        if (bad := bad_tran_id(tid)) is not None:
            return bad
        acct = bank.by_fintech.get(str(body.get("fintech_use_num", "")))
        person = bank.people.get(who[1])
        if acct is None or person is None or acct not in person.accounts:
            return _err("A0002", "출금계좌 오류")
        amount = int(str(body.get("tran_amt", "0")) or 0)
        rule = bank.rule("withdraw")
        token = request.headers.get("Authorization", "")[7:]
        if rule and rule.mode == "expired_token":  # this access token has expired (only a refreshed one works)
            bank.expired.add(token)
        if token in bank.expired:
            return _err("O0003", "Access Token 만료")
        date = datetime.now(SEOUL).strftime("%Y%m%d")  # the bank's own day, whatever the request says
        refusal = bank_refusal(rule) or (("453", "잔액부족") if acct.balance < amount else None)
        record = {"kind": "withdraw", "amount": amount, "date": date, "fintech": acct.fintech_use_num, "tid": tid}
        bank.transfers[tid] = record
        ok_body = _ok(bank_tran_id=tid, bank_tran_date=date, bank_rsp_code="000", bank_rsp_message="",
                      tran_amt=str(amount), account_num_masked=acct.masked, wd_limit_remain_amt="5000000")
        if refusal:
            record["result"] = refusal[0]
            return web.json_response({**ok_body, "rsp_code": "A0002", "rsp_message": "참가기관 에러",
                                      "bank_rsp_code": refusal[0], "bank_rsp_message": refusal[1]})
        return await move(rule, record, ok_body, acct, -amount, str(body.get("dps_print_content", ""))[:20])

    async def deposit(request: web.Request) -> web.Response:
        who = bearer(request, "oob")
        if isinstance(who, web.Response):
            return who
        body = await request.json()
        items = body.get("req_list") or []
        if len(items) != 1 or body.get("cntr_account_num") != PLATFORM_ACCOUNT:
            return _err("A0004", "요청전문 포맷 에러")
        item = items[0]
        tid = str(item.get("bank_tran_id", ""))
        if (bad := bad_tran_id(tid)) is not None:
            return bad
        acct = bank.by_fintech.get(str(item.get("fintech_use_num", "")))
        amount = int(str(item.get("tran_amt", "0")) or 0)
        date = datetime.now(SEOUL).strftime("%Y%m%d")
        rule = bank.rule("deposit")
        refusal = bank_refusal(rule) or (("412", "계좌없음") if acct is None else None) or (
            ("453", "잔액부족") if bank.platform_balance < amount else None)
        record = {"kind": "deposit", "amount": amount, "date": date, "fintech": item.get("fintech_use_num"),
                  "tid": tid}
        bank.transfers[tid] = record
        res = {"tran_no": "1", "bank_tran_id": tid, "bank_tran_date": date, "bank_rsp_code": "000",
               "bank_rsp_message": "", "tran_amt": str(amount),
               "account_num_masked": acct.masked if acct else ""}
        ok_body = _ok(res_cnt="1", res_list=[res])
        if refusal:
            record["result"] = refusal[0]
            return web.json_response({**ok_body, "rsp_code": "A0009", "rsp_message": "일부 처리 실패",
                                      "res_list": [{**res, "bank_rsp_code": refusal[0],
                                                    "bank_rsp_message": refusal[1]}]})
        assert acct is not None
        return await move(rule, record, ok_body, acct, amount, str(body.get("wd_print_content", ""))[:20])

    async def result(request: web.Request) -> web.Response:
        who = bearer(request, "oob")
        if isinstance(who, web.Response):
            return who
        rule = bank.rule("result")
        if rule and rule.mode in ("5xx", "hang", "timeout", "internal"):
            if rule.mode == "hang":
                await asyncio.sleep(bank.hang_s)
            if rule.mode == "internal":
                return _err("A0003", "내부 오류")
            return web.Response(status=503) if rule.mode != "timeout" else _err("A0007", "시간초과")
        body = await request.json()
        out = []
        for item in body.get("req_list") or []:
            record = bank.transfers.get(str(item.get("org_bank_tran_id", "")))
            if record is not None and record.get("late"):
                left, land = record["late"]
                if left > 0:
                    record["late"][0] -= 1
                    record = None  # not known yet
                else:
                    del record["late"]
                    land()
            if record is not None and str(item.get("org_bank_tran_date", "")) != record["date"]:
                record = None  # asked with another day than it was sent: no such transaction that day
            if record is None or str(item.get("org_tran_amt")) != str(record["amount"]):
                code, msg = NOT_FOUND, "거래내역 없음"
            else:
                code = record["result"]
                msg = "정상처리" if code == "000" else "처리불가"
            out.append({"tran_no": item.get("tran_no", "1"), "bank_tran_id": item.get("org_bank_tran_id"),
                        "bank_tran_date": record["date"] if record else "", "bank_rsp_code": code,
                        "bank_rsp_message": msg, "tran_amt": item.get("org_tran_amt")})
        return web.json_response(_ok(res_cnt=str(len(out)), res_list=out))

    async def transaction_list(request: web.Request) -> web.Response:
        who = bearer(request, "inquiry")
        if isinstance(who, web.Response):
            return who
        q = request.query
        if who[1] != "platform" or q.get("fintech_use_num") != PLATFORM_FINTECH:
            return _err("A0002", "조회 권한이 없는 계좌")
        if not q.get("bank_tran_id") or bad_tran_id(str(q["bank_tran_id"])) is not None:
            return _err("A0004", "요청전문 포맷 에러 (bank_tran_id)")
        bank.transfers[str(q["bank_tran_id"])] = {"kind": "inquiry"}  # ids are single-use here too
        lo, hi = str(q.get("from_date", "")), str(q.get("to_date", ""))
        kind = {"I": ("입금",), "O": ("출금",)}.get(str(q.get("inquiry_type", "A")), ("입금", "출금"))
        lines = [x for x in bank.statement if lo <= x["tran_date"] <= hi and x["inout_type"] in kind]
        if q.get("sort_order") == "D":
            lines.reverse()
        start = int(q.get("befor_inquiry_trace_info") or 0)
        page = lines[start:start + STATEMENT_PAGE]
        more = start + STATEMENT_PAGE < len(lines)
        return web.json_response(_ok(bank_tran_id=q["bank_tran_id"], fintech_use_num=PLATFORM_FINTECH,
                                     page_record_cnt=str(len(page)), next_page_yn="Y" if more else "N",
                                     befor_inquiry_trace_info=str(start + STATEMENT_PAGE) if more else "",
                                     res_list=page))

    # -- Naver login (nid.naver.com and openapi.naver.com) ------------------------------------------
    async def naver_authorize(request: web.Request) -> web.StreamResponse:
        q = request.query if request.method == "GET" else await request.post()
        if q.get("client_id") != NAVER_CLIENT_ID or q.get("response_type") != "code" or not q.get("redirect_uri"):
            return web.Response(status=400, text="invalid_request")
        redirect, state = str(q["redirect_uri"]), str(q.get("state", ""))
        if request.method == "GET":
            options = "".join(
                f'<label><input type="radio" name="naver_id" value="{html.escape(p["id"])}"'
                f'{" checked" if i == 0 else ""}> {html.escape(p["nickname"])} ({html.escape(p["email"])})</label><br>'
                for i, p in enumerate(bank.naver_people.values()))
            return _consent_page("네이버 아이디로 로그인 — 샌드박스", "네이버 아이디로 로그인",
                                 "빌리마켓이 별명, 이메일, 이름을 요청합니다.", q, options,
                                 "동의하기", "취소")
        if q.get("consent") != "yes":
            raise web.HTTPFound(redirect + "?" + urlencode({"error": "access_denied",
                                                            "error_description": "Canceled By User",
                                                            "state": state}))
        pid = str(q.get("naver_id", ""))
        if pid not in bank.naver_people:
            return web.Response(status=400, text="사용자를 골라 주세요")
        code = secrets.token_urlsafe(12)
        bank.naver_codes[code] = (pid, redirect, time.monotonic())
        raise web.HTTPFound(redirect + "?" + urlencode({"code": code, "state": state}))

    async def naver_token(request: web.Request) -> web.Response:
        q = dict(request.query)
        if request.method == "POST":
            q.update({k: str(v) for k, v in (await request.post()).items()})
        if q.get("client_id") != NAVER_CLIENT_ID or q.get("client_secret") != NAVER_CLIENT_SECRET:
            return web.json_response({"error": "invalid_client", "error_description": "client authentication failed"})
        grant = q.get("grant_type")
        if grant == "authorization_code":
            found = bank.naver_codes.pop(q.get("code", ""), None)
            if found is None or time.monotonic() - found[2] > NAVER_CODE_TTL_S:
                return web.json_response({"error": "invalid_request",
                                          "error_description": "no valid data in session"})
            pid = found[0]
        elif grant == "refresh_token":
            pid = bank.naver_tokens.get(q.get("refresh_token", ""), "")
            if not pid:
                return web.json_response({"error": "invalid_request", "error_description": "invalid refresh_token"})
            access = secrets.token_urlsafe(24)
            bank.naver_tokens[access] = pid
            return web.json_response({"access_token": access, "token_type": "bearer", "expires_in": "3600"})
        elif grant == "delete":
            bank.naver_tokens.pop(q.get("access_token", ""), None)
            return web.json_response({"access_token": q.get("access_token", ""), "result": "success"})
        else:
            return web.json_response({"error": "unsupported_grant_type", "error_description": "grant_type"})
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        bank.naver_tokens[access] = pid
        bank.naver_tokens[refresh] = pid
        return web.json_response({"access_token": access, "refresh_token": refresh, "token_type": "bearer",
                                  "expires_in": "3600"})

    async def naver_me(request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        if not auth.lower().startswith("bearer "):
            return web.json_response({"resultcode": "028", "message": "Authentication header not exists"},
                                     status=401)
        pid = bank.naver_tokens.get(auth[7:])
        if pid is None or pid not in bank.naver_people:
            return web.json_response({"resultcode": "024", "message": "Authentication failed"}, status=401)
        return web.json_response({"resultcode": "00", "message": "success", "response": bank.naver_people[pid]})

    async def naver_people(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response(bank.add_naver(str(body.get("nickname", "네이버사용자"))[:40],
                                                str(body.get("email", "someone@example.com"))[:100],
                                                str(body.get("name", "이름"))[:40]))

    async def naver_expire(request: web.Request) -> web.Response:
        for code, (pid, redirect, _made) in list(bank.naver_codes.items()):
            bank.naver_codes[code] = (pid, redirect, 0.0)
        return web.json_response({"ok": True})

    # -- control -------------------------------------------------------------------------------------
    async def people(request: web.Request) -> web.Response:
        body = await request.json()
        holder = body.get("holder")  # an account held in someone else's name (a family member's, a company's)
        person = bank.add_person(str(body.get("name", "테스트"))[:20], int(body.get("balance", 1_000_000)),
                                 str(holder)[:20] if holder else None)
        acct = person.accounts[0]
        return web.json_response({"user_seq_no": person.user_seq_no, "name": person.name,
                                  "fintech_use_num": acct.fintech_use_num, "account_num": acct.account_num,
                                  "bank_name": acct.bank_name, "balance": acct.balance})

    async def balances(request: web.Request) -> web.Response:
        return web.json_response({"platform": bank.platform_balance, "accounts": {
            a.fintech_use_num: a.balance for a in bank.by_fintech.values()}, "people": {
            p.user_seq_no: sum(a.balance for a in p.accounts) for p in bank.people.values()},
            "transfers": len(bank.transfers), "late": sum(1 for r in bank.transfers.values() if r.get("late"))})

    async def fail(request: web.Request) -> web.Response:
        body = await request.json()
        path = str(body.get("path"))
        if path not in ("withdraw", "deposit", "result", "token", "me"):
            return web.json_response({"error": "unknown path"}, status=400)
        bank.rules.setdefault(path, []).append(
            Rule(str(body.get("mode")), bool(body.get("applied", False)), int(body.get("times", 1)),
                 int(body.get("after", 1))))
        if "hang_s" in body:
            bank.hang_s = float(body["hang_s"])
        return web.json_response({"ok": True})

    async def land(request: web.Request) -> web.Response:
        """Every "late" transfer lands now, as a real bank commits on its own time (not when asked)."""
        landed = 0
        for record in bank.transfers.values():
            if record.get("late"):
                record.pop("late")[1]()
                landed += 1
        return web.json_response({"landed": landed})

    async def statement(request: web.Request) -> web.Response:
        """Make the platform account's transaction list differ from the truth, for a reconciliation to catch."""
        body = await request.json()
        op, amount = str(body.get("op")), int(body.get("amount", 1000))
        if op == "drop" and bank.statement:
            return web.json_response({"dropped": bank.statement.pop()})
        if op == "extra":
            bank.statement.append({"tran_date": str(body.get("date") or datetime.now(SEOUL).strftime("%Y%m%d")),
                                   "tran_time": datetime.now(SEOUL).strftime("%H%M%S"), "inout_type": "입금",
                                   "tran_type": "이체", "print_content": str(body.get("printed") or "김아무개")[:20],
                                   "tran_amt": str(amount),
                                   "after_balance_amt": str(bank.platform_balance), "branch_name": ""})
            return web.json_response({"added": bank.statement[-1]})
        if op == "amend" and bank.statement:
            line = bank.statement[-1]
            line["tran_amt"] = str(int(line["tran_amt"]) + amount)
            return web.json_response({"amended": line})
        return web.json_response({"error": "nothing to do"}, status=400)

    async def reset(request: web.Request) -> web.Response:
        fresh = Bank(hang_s=hang_s)
        for name in fresh.__dataclass_fields__:
            setattr(bank, name, getattr(fresh, name))
        return web.json_response({"ok": True})

    app.router.add_route("*", "/oauth/2.0/authorize", authorize)
    app.router.add_post("/oauth/2.0/token", token)
    app.router.add_get("/v2.0/user/me", user_me)
    app.router.add_get("/v2.0/account/list", user_me)
    app.router.add_get("/v2.0/account/balance/fin_num", balance)
    app.router.add_post("/v2.0/transfer/withdraw/fin_num", withdraw)
    app.router.add_post("/v2.0/transfer/deposit/fin_num", deposit)
    app.router.add_post("/v2.0/transfer/result", result)
    app.router.add_get("/v2.0/account/transaction_list/fin_num", transaction_list)
    app.router.add_post("/sandbox/statement", statement)
    app.router.add_post("/sandbox/people", people)
    app.router.add_get("/sandbox/balances", balances)
    app.router.add_post("/sandbox/fail", fail)
    app.router.add_post("/sandbox/reset", reset)
    app.router.add_post("/sandbox/land", land)
    app.router.add_route("*", "/oauth2.0/authorize", naver_authorize)
    app.router.add_route("*", "/oauth2.0/token", naver_token)
    app.router.add_get("/v1/nid/me", naver_me)
    app.router.add_post("/sandbox/naver/people", naver_people)
    app.router.add_post("/sandbox/naver/expire_codes", naver_expire)
    app.router.add_get("/healthz", lambda r: web.json_response({"ok": True}))
    return app


async def start_sandbox(sock: socket.socket, *, demo: bool = True) -> web.AppRunner:
    """The sandbox served on an already listening socket (``billi up`` picks its port)."""
    runner = web.AppRunner(create_sandbox_app(demo=demo), access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return runner


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="billi sandbox", description="오픈뱅킹 샌드박스 (bank sandbox)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--demo", action="store_true", help="start with a few test people")
    args = parser.parse_args(argv)
    web.run_app(create_sandbox_app(demo=args.demo), host=args.host, port=args.port, print=None, access_log=None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
