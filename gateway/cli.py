"""The ``billi`` command: up (everything, locally), serve, migrate, demo-data, archive-chats, reindex, and the
operators' queues (disputes, reports, payouts, transfers).

When a service URL is not configured, ``up`` (and ``migrate`` / ``demo-data``) start that service locally
with its data under ``BILLI_DATA_DIR`` (default ``.billi/``).
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import gc
import json
import logging
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import web

from gateway.local_services import LocalServices, ServiceError
from market.config import Config

if TYPE_CHECKING:
    from market.service import Market

log = logging.getLogger("billi")
T = TypeVar("T")


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"ts": self.formatTime(record), "level": record.levelname, "logger": record.name,
                               "msg": record.getMessage()}
        for key in ("request_id", "room", "status"):
            if hasattr(record, key):
                out[key] = getattr(record, key)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return _json_escaped(json.dumps(out, ensure_ascii=False))


# Characters Python counts as printable that draw nothing: the Hangul fillers, the grapheme joiner and the blank
# braille pattern — a log line showing "빌\u3164리" or a blank name would hide what was really there.
_BLANK = frozenset("\u115f\u1160\u3164\uffa0\u2800\u034f")


def _shown(text: str) -> bool:
    return text.isprintable() and _BLANK.isdisjoint(text)


def _json_escaped(text: str) -> str:
    """JSON text with every invisible character written as a ``\\uXXXX`` escape: Korean stays readable, but a
    bidi control (U+202A–202E, U+2066–2069) or a line/paragraph separator (U+2028/2029) in a nickname can neither
    reorder a line in a terminal nor start one in a tool that splits on them, and a blank filler (U+3164, U+115F,
    U+1160, U+FFA0, U+2800) cannot pass for nothing."""
    if _shown(text):
        return text
    out = []
    for ch in text:
        if ch.isprintable() and ch not in _BLANK:
            out.append(ch)
        elif ord(ch) > 0xFFFF:  # as JSON writes it: a surrogate pair
            code = ord(ch) - 0x10000
            out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
        else:
            out.append(f"\\u{ord(ch):04x}")
    return "".join(out)


def _one_line(text: str) -> str:
    """``text`` with its control and invisible characters written as escapes (``\\n``, ``\\x00``, ``\\u202e``):
    a ``%0a`` in a request path or a CR in a header can never begin a log line of its own (blank fillers are
    escaped too)."""
    if _shown(text):
        return text
    return "".join(ch if ch.isprintable() and ch not in _BLANK else ch.encode("unicode_escape").decode("ascii")
                   for ch in text)


class _LineFormatter(logging.Formatter):
    """The plain format: one line per record whatever its message holds (a traceback still follows on its own
    lines, written by us, not by a client)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return _one_line(super().formatMessage(record))


def setup_logging(config: Config) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(_JsonFormatter() if config.log_json else  # JSON: control and invisible ones escaped
                         _LineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(config.log_level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per bank call would bury what people need


def start_missing_services(config: Config, *, only_database: bool = False) -> tuple[Config, LocalServices]:
    """Start a local service for every URL that is not configured; returns the completed config."""
    services = LocalServices(config.data_dir / "services")
    urls = services.start(mariadb=not config.database_url, redis=not (config.redis_url or only_database),
                          s3=not (config.s3_url or only_database))
    return config.replace(**urls), services


def _run_serving(main: Coroutine[Any, Any, None]) -> None:
    """Run a serving process's loop on uvloop (libuv: less of the process's CPU goes to the loop itself)."""
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


def tune_gc(config: Config) -> None:
    """A serving process allocates many short-lived objects per message; Python's default collector runs
    every 700 allocations. Collect less often, and never again look at what start-up made."""
    if config.gc_gen0_threshold > 0:
        gc.collect()
        gc.freeze()
        gc.set_threshold(config.gc_gen0_threshold, 50, 100)


def _listen(host: str, port: int, what: str, *, any_port: bool) -> socket.socket:
    """A listening socket on ``port``, made before the app so the app knows its real address. With ``any_port`` a
    taken port is replaced, and said, by one the system picks as it binds: no other program can take that one
    between a check and the bind."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    try:
        return socket.create_server((host, port), family=family)
    except OSError as e:
        if e.errno != errno.EADDRINUSE:
            raise
        if not any_port:  # a node keeps its port (what points at it expects it there): say so, no traceback
            raise SystemExit(f"{what}: 포트 {port}을(를) 다른 프로그램이 쓰고 있어요. 그 프로그램을 멈추거나 BILLI_PORT로 다른"
                             f" 포트를 정해 주세요 / port {port} is taken: stop what uses it or set BILLI_PORT") from None
    sock = socket.create_server((host, 0), family=family)
    new = sock.getsockname()[1]
    log.warning("%s: 다른 프로그램이 포트 %d 사용 중이라 포트 %d에서 열어요 / port %d is taken; using %d",
                what, port, new, port, new)
    return sock


async def _serve(config: Config, before: Callable[[], Awaitable[None]] | None = None, *,
                 sandbox: bool = False, any_port: bool = False,
                 final_block: Callable[[str, list[str]], str] | None = None) -> None:
    """Run the gateway until SIGINT/SIGTERM; ``billi up`` (``any_port``) moves off a taken port, a node does not."""
    from gateway.app import create_app

    also: list[str] = []  # the side addresses, said in the final block under the app's
    bank = None
    if sandbox and not config.bank_url:  # the bank is an outside party: locally, our sandbox stands in
        from gateway.sandbox import start_sandbox

        bank = await start_sandbox(_listen(config.host, config.sandbox_port, "sandbox", any_port=True))
        port = bank.addresses[0][1]
        config = config.replace(bank_url=f"http://{config.host}:{port}",
                                naver_auth_url=config.naver_auth_url or f"http://{config.host}:{port}")
        also.append(f"은행·네이버 샌드박스 (테스트용) / bank and Naver sandbox: {config.bank_url}")
    mail = None
    if sandbox and not config.smtp_url:  # nor is a mail provider: mails land here and their links are printed
        from gateway.mail_sink import MailSink

        mail = await MailSink.start("127.0.0.1", echo=True)
        config = config.replace(smtp_url=mail.url)
        also.append(f"메일 (비밀번호 재설정 링크가 이 창에 출력돼요) / mail sink, reset links printed here: {mail.url}")
    sock = _listen(config.host, config.port, "Billi", any_port=any_port)
    config = config.replace(port=sock.getsockname()[1])
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    if before:
        await before()
    site = web.SockSite(runner, sock)
    await site.start()
    tune_gc(config)
    if final_block is not None:
        print(final_block(config.url(), also), flush=True)
    else:
        print(f"\n  빌리마켓이 열렸어요 — open {config.url()}  (채팅 앱 / chat widget: {config.url()}app)\n", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        if bank is not None:
            await bank.cleanup()
        if mail is not None:
            await mail.close()


def ready_block(url: str, *, logins: list[str], password: str | None, also: list[str]) -> str:
    """The block ``billi up`` prints last, once everything answers: where to go, as whom, how to stop — then the
    side addresses (the bank sandbox, the mail sink), which are not where a person starts."""
    rule = "  " + "=" * 72
    lines = ["", rule, "  빌리마켓이 열렸어요 / Billi Market is running", "",
             f"  ▶ 브라우저에서 여세요 / open {url}app"]
    if logins and password:
        lines.append(f"  ▶ 로그인 / log in as {logins[0]}  비밀번호 / password: {password}")
        lines.append(f"    (같은 비밀번호로 / same password: {', '.join(logins[1:])})")
    else:
        lines.append(f"  ▶ 가입하고 시작하세요 / sign up at {url}login")
    if also:
        lines += ["", *(f"    {line}" for line in also)]
    return "\n".join([*lines, "", "  ▶ 끄기 / stop: Ctrl-C", rule, ""])


class DemoProgress:
    """A counter while demo data is made: one line redrawn on a terminal, a line per tenth when the output is
    a file or a pipe (so a log shows it moving too)."""

    def __init__(self, out: Any = None) -> None:
        self.out = out or sys.stdout
        self.tty = bool(getattr(self.out, "isatty", lambda: False)())
        self.started = False
        self.tenth = -1

    def __call__(self, done: int, total: int) -> None:
        if not self.started:
            self.out.write(f"  데모 데이터를 만드는 중 / creating demo data: {total} items\n")
            self.started = True
        if self.tty:
            width = 30
            filled = width * done // max(total, 1)
            self.out.write(f"\r  [{'#' * filled}{'.' * (width - filled)}] {done}/{total}"
                           + ("\n" if done >= total else ""))
        elif (tenth := 10 * done // max(total, 1)) > self.tenth:
            self.out.write(f"  … {done}/{total}\n")
            self.tenth = tenth
        self.out.flush()


def cmd_up(config: Config, args: argparse.Namespace) -> int:
    from market.demo import DEMO_PASSWORD, DEMO_USERS

    config, services = start_missing_services(config)
    try:
        if services.urls:  # the same every time (a port another program took meanwhile is replaced, and said)
            print("  서비스 / services: " + ", ".join(services.urls.values()), flush=True)

        async def prepare() -> None:
            from market.demo import create_demo_data
            from market.service import Market

            async with Market.open(config) as market:
                made = await create_demo_data(market, items=args.items, progress=DemoProgress())
            print(f"  데모 데이터 / demo data: +{made['users']} people, +{made['items']} items", flush=True)

        logins = [] if args.no_demo else [email for email, _ in DEMO_USERS]

        def block(url: str, also: list[str]) -> str:
            return ready_block(url, logins=logins, password=DEMO_PASSWORD, also=also)

        _run_serving(_serve(config, before=None if args.no_demo else prepare, sandbox=True, any_port=True,
                            final_block=block))
    finally:
        services.stop()
    return 0


def cmd_serve(config: Config, args: argparse.Namespace) -> int:
    if not (config.database_url and config.redis_url and config.s3_url):
        print("billi serve에는 BILLI_DATABASE_URL, BILLI_REDIS_URL, BILLI_S3_URL이 필요해요 (로컬에서는 billi up) /"
              " billi serve needs BILLI_DATABASE_URL, BILLI_REDIS_URL and BILLI_S3_URL (or use billi up)",
              file=sys.stderr)
        return 2
    if unset := config.public_defaults():
        names = ", ".join(unset)
        print(f"공개 주소로 여는 노드는 {names}에 기본값을 쓸 수 없어요. 아무도 모르는 긴 값을 정해 주세요"
              f" (모든 노드에 같은 값) / a public node cannot use the published default of {names}: set a long"
              " secret value (the same on every node)", file=sys.stderr)
        return 2
    _run_serving(_serve(config))
    return 0


def cmd_migrate(config: Config, args: argparse.Namespace) -> int:
    from market.db import Database
    from market.migrate import migrate

    config, services = start_missing_services(config, only_database=True)
    try:
        async def run() -> list[int]:
            assert config.database_url
            db = await Database.connect(config.database_url)
            try:
                return await migrate(db)
            finally:
                await db.close()

        applied = asyncio.run(run())
        print(f"applied {len(applied)} migration(s): {applied}" if applied else "schema is up to date")
    finally:
        services.stop()
    return 0


def _with_market(config: Config, work: Callable[[Market], Awaitable[T]]) -> T:
    """Run one piece of market work with every service it needs (started locally when not configured)."""
    from market.service import Market

    config, services = start_missing_services(config)
    try:
        async def run() -> T:
            # maintenance (bulk loads, reindexing, archiving) takes as long as it needs: no statement limit
            async with Market.open(config.replace(db_statement_timeout_ms=0)) as market:
                return await work(market)

        return asyncio.run(run())
    finally:
        services.stop()


def cmd_demo_data(config: Config, args: argparse.Namespace) -> int:
    from market.demo import create_demo_data

    made = _with_market(config, lambda market: create_demo_data(market, items=args.items))
    print(f"created {made['users']} people and {made['items']} items")
    return 0


def cmd_archive_chats(config: Config, args: argparse.Namespace) -> int:
    from datetime import timedelta

    from market.errors import MarketError

    age = timedelta(days=args.older_than_days)
    try:
        done = _with_market(config, lambda market: market.chat.archive.archive_older_than(age))
    except MarketError as e:  # S3 away (past its deadline): messages move only after their segment reads back
        print(f"S3에 연결할 수 없어요 — 옮긴 메시지 없음 ({e.code})", file=sys.stderr)
        return 1
    print(f"archived {done['messages']} message(s) in {done['segments']} segment(s)")
    return 0


def cmd_reindex(config: Config, args: argparse.Namespace) -> int:
    """Rebuild the search index from MariaDB, with a progress bar on the terminal."""
    import time

    started = time.monotonic()

    def progress(done: int, total: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        rate = done / max(time.monotonic() - started, 1e-6)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} ({rate:,.0f} items/s)")
        sys.stderr.flush()

    done = _with_market(config, lambda market: market.indexer.reindex(progress=progress))
    sys.stderr.write("\n")
    elapsed = time.monotonic() - started
    print(f"reindexed {done} item(s) in {elapsed:.1f} s ({done / max(elapsed, 1e-6):,.0f} items/s)")
    return 0


def cmd_sandbox(config: Config, args: argparse.Namespace) -> int:
    from gateway.sandbox import main as sandbox_main

    return sandbox_main(["--host", config.host, "--port", str(args.port or config.sandbox_port),
                         *(["--demo"] if args.demo else [])])


async def _statements(market: Market, c: Any, events: list[dict[str, Any]]) -> None:
    """What each side wrote in the deal room since the dispute began (their statements), for the operator."""
    since = next((e["at"] for e in reversed(events) if e["to_state"] == "DISPUTED"), None)
    if since is None:
        return
    rows = await market.db.fetchall(
        "SELECT sender_id, text, created_at FROM messages WHERE room_id = %s AND sender_kind = 'user'"
        " AND created_at >= %s ORDER BY seq DESC LIMIT 10", (c.room_id, since.rstrip("Z").replace("T", " ")))
    for r in reversed(rows):
        who = "owner" if r["sender_id"] == c.owner_id else "borrower" if r["sender_id"] == c.borrower_id else "?"
        print(f"    {r['created_at']:%m-%d %H:%M} {who}: {r['text'][:200]}")


def cmd_disputes(config: Config, args: argparse.Namespace) -> int:
    """List disputed claims and contested hand-overs, or resolve one: for a claim the owner gets --amount (0 … the
    claim) of the deposit; for a hand-over, --handed yes (the rental runs) or no (cancelled, all refunded)."""
    from market.errors import MarketError

    async def work(market: Market) -> int:
        if args.resolve is None:
            disputes = await market.rentals.disputes()
            if not disputes:
                print("이의 제기된 대여가 없어요 (no disputes).")
            for c in disputes:
                events = await market.rentals.events(c.id)
                if c.claim_kind == "handover":
                    said = next((e for e in reversed(events) if e["kind"] == "handover_objected"), None)
                    by = said["data"].get("by", "?") if said else "?"
                    print(f"#{c.id} item {c.item_id} owner {c.owner_id} borrower {c.borrower_id}: hand-over contested"
                          f" by the {by} — decide with --handed yes|no|not-yet")
                    await _statements(market, c, events)
                    continue
                note = next((e["data"].get("note", "") for e in reversed(events) if e["kind"] == "disputed"), "")
                photos = len(await market.rentals.photos(c.id))
                print(f"#{c.id} item {c.item_id} owner {c.owner_id} borrower {c.borrower_id}: claim {c.claim_amount:,}원"
                      f" of deposit {c.deposit:,}원 — owner: {c.claim_note or '-'} / borrower: {note or '-'}"
                      f" ({photos} photo(s))")
                await _statements(market, c, events)
            return 0
        try:
            if args.handed is not None:
                handed = {"yes": True, "no": False, "not-yet": None}[args.handed]
                c = await market.rentals.resolve_handover(args.resolve, handed, args.note or "")
                print(f"#{c.id} resolved: hand-over {args.handed}; state {c.state}")
                return 0
            c = await market.rentals.resolve(args.resolve, args.amount, args.note or "")
        except MarketError as e:
            print(e.message("ko"), file=sys.stderr)
            return 2
        print(f"#{c.id} resolved: {c.claim_amount:,}원 to the owner; state {c.state}")
        return 0

    if args.resolve is not None and args.amount is None and args.handed is None:
        print("--amount (a claim) or --handed yes|no (a hand-over) is required with --resolve", file=sys.stderr)
        return 2
    return _with_market(config, work)


def cmd_reports(config: Config, args: argparse.Namespace) -> int:
    """The open reports (신고), one line per reported person or item: its reasons, how many people reported it and
    the latest note; ``resolve ID --note`` closes that target's open reports with the operator's note."""
    from market.errors import MarketError

    async def work(market: Market) -> int:
        if args.action == "resolve":
            try:
                closed = await market.reports.resolve(args.id, args.note)
            except MarketError as e:
                print(e.message("ko"), file=sys.stderr)
                return 2
            print(f"#{args.id} resolved: {closed} report(s) closed")
            return 0
        queue = await market.reports.queue()
        if not queue:
            print("열린 신고가 없어요 (no open reports).")
        for r in queue:
            owner = f" (owner {r['owner_id']})" if r["kind"] == "item" else ""
            print(f"#{r['id']} {r['kind']} {r['target_id']} {r['name'] or '-'}{owner}: {', '.join(r['reasons'])}"
                  f" — {r['reporters']}명 신고, latest {r['latest_at']:%m-%d %H:%M}: {r['latest_note'] or '-'}")
        return 0

    return _with_market(config, work)


def cmd_billipay_links(config: Config, args: argparse.Namespace) -> int:
    """Linked bank accounts; with --unverified, those linked before a link needed its owner's own session
    (any of them may have been tied to the wrong person: review each, and unlink the doubtful)."""

    async def work(market: Market) -> int:
        if market.billipay is None:
            print("빌리페이가 설정되지 않았어요 (BilliPay is not configured).", file=sys.stderr)
            return 2
        links = await market.billipay.links(unverified=args.unverified)
        if not links:
            print("확인이 필요한 계좌 연결이 없어요 (no unverified bank links)." if args.unverified
                  else "연결된 계좌가 없어요 (no bank links).")
        for b in links:
            print(f"user {b['user_id']} {b['nickname']} <{b['email'] or '-'}>: {b['bank_name']} {b['account_masked']}"
                  f" holder {b['holder_name']}, linked {b['created_at']:%Y-%m-%d %H:%M}"
                  f" — {'session-verified' if b['verified_at'] else 'UNVERIFIED (no session)'},"
                  f" {'confirmed before paying' if b['confirmed_at'] else 'never confirmed'}")
        return 0

    return _with_market(config, work)


def cmd_payouts(config: Config, args: argparse.Namespace) -> int:
    """Payouts and refunds the bank refused three times (still owed); --retry ID sends one again."""
    from market.errors import MarketError

    async def work(market: Market) -> int:
        if args.retry is not None:
            try:
                tid = await market.rentals.retry_payout(args.retry)
            except MarketError as e:
                print(e.message("ko"), file=sys.stderr)
                return 2
            state = await market.db.fetchval("SELECT state FROM transfers WHERE id = %s", (tid,))
            print(f"#{args.retry} sent again as #{tid}: {state}")
            return 0
        stuck = await market.rentals.stuck_payouts()
        if not stuck:
            print("운영자를 기다리는 정산이 없어요 (no payouts waiting).")
        for t in stuck:
            print(f"#{t['id']} {t['purpose']} user {t['user_id']} {t['amount']:,}원 — refused: {t['message'] or '-'}")
        return 0

    return _with_market(config, work)


def cmd_transfers(config: Config, args: argparse.Namespace) -> int:
    """Bank transfers not settled yet (queued, being sent, unknown); with --review, those still unknown past the
    horizon; with --settle ID --as done|failed, an operator's decision on one (after checking with the bank)."""
    from market.errors import MarketError

    if args.settle is not None and args.as_ is None:
        print("--as done|failed is required with --settle", file=sys.stderr)
        return 2

    async def work(market: Market) -> int:
        if args.settle is not None:
            try:
                await market.rentals.settle_transfer(args.settle, args.as_)
            except MarketError as e:
                print(e.message("ko"), file=sys.stderr)
                return 2
            print(f"#{args.settle} settled as {args.as_}")
            return 0
        states = (("review",) if args.review else ("suspense",) if args.suspense
                  else ("pending", "sending", "unknown", "review"))
        rows = await market.db.fetchall(
            "SELECT id, bank_tran_id, purpose, user_id, direction, amount, state, inquiries, sent_at, message"
            f" FROM transfers WHERE state IN ({', '.join(['%s'] * len(states))}) ORDER BY id", states)
        if not rows:
            print("확인이 필요한 이체가 없어요 (no transfers waiting)." if args.review
                  else "보류 계정에 있는 이체가 없어요 (nothing in suspense)." if args.suspense
                  else "진행 중인 이체가 없어요 (no open transfers).")
        for t in rows:
            sent = f"{t['sent_at']:%Y-%m-%d %H:%M}" if t["sent_at"] else "-"
            print(f"#{t['id']} {t['bank_tran_id']} {t['purpose']} user {t['user_id']} {t['direction']}"
                  f" {t['amount']:,}원 — {t['state']}, sent {sent}, asked {t['inquiries']}x: {t['message'] or '-'}")
        return 0

    return _with_market(config, work)


def cmd_reconcile(config: Config, args: argparse.Namespace) -> int:
    """The platform account's bank statement for one day (default yesterday, Seoul) against our transfers and
    ledger: every difference printed, exit 1 when there is one (2 when the bank could not be asked)."""
    from datetime import date, timedelta

    from market.kftc import BankRefused, BankUnreachable
    from market.rentals.kdates import seoul_today

    try:
        day = date.fromisoformat(args.date) if args.date else seoul_today() - timedelta(days=1)
    except ValueError:
        print("--date takes YYYY-MM-DD", file=sys.stderr)
        return 2

    async def work(market: Market) -> int:
        reconciler = market.scheduler.reconciler
        if reconciler is None:
            print("빌리페이가 설정되지 않았어요 (BilliPay is not configured).", file=sys.stderr)
            return 2
        try:
            diffs = await reconciler.run(day)
        except (BankUnreachable, BankRefused) as e:
            print(f"은행 거래내역을 받지 못했어요 (the bank did not give the statement): {e}", file=sys.stderr)
            return 2
        if not diffs:
            print(f"{day}: 은행 거래내역과 이체 기록이 모두 맞아요 (no differences).")
            return 0
        print(f"{day}: 차이 {len(diffs)}건 ({len(diffs)} difference(s))")
        for d in diffs:
            print(d.line())
        return 1

    return _with_market(config, work)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="billi", description="빌리마켓 Billi Market")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start everything locally: services, demo data, gateway")
    up.add_argument("--items", type=int, default=200, help="demo items to ensure (default 200)")
    up.add_argument("--no-demo", action="store_true", help="skip demo data")
    sub.add_parser("serve", help="run the gateway against configured services")
    sub.add_parser("migrate", help="apply database migrations")
    demo = sub.add_parser("demo-data", help="create the demo neighbourhood (idempotent)")
    demo.add_argument("--items", type=int, default=200)
    archive = sub.add_parser("archive-chats", help="move old chat messages to S3 segments")
    archive.add_argument("--older-than-days", type=float, default=None,
                         help="default: BILLI_CHAT_ARCHIVE_AFTER_DAYS (30)")
    sub.add_parser("reindex", help="rebuild the search index from the database")
    sandbox = sub.add_parser("sandbox", help="run the bank sandbox (KFTC Open Banking protocol) on its own")
    sandbox.add_argument("--port", type=int, default=None, help="default: BILLI_SANDBOX_PORT (8090)")
    sandbox.add_argument("--demo", action="store_true", help="start with a few test people")
    disputes = sub.add_parser("disputes", help="list disputed damage claims, or resolve one")
    disputes.add_argument("--resolve", type=int, metavar="CONTRACT", help="the contract to decide")
    disputes.add_argument("--amount", type=int, help="won the owner gets (0 … the claim)")
    disputes.add_argument("--handed", choices=("yes", "no", "not-yet"),
                          help="a contested hand-over: it happened, it did not (refund), or not yet (both confirm again)")
    disputes.add_argument("--note", default="", help="a note both parties will read")
    reports = sub.add_parser("reports", help="open reports of people and items (신고, an operator's queue)")
    report_actions = reports.add_subparsers(dest="action")
    resolve = report_actions.add_parser("resolve", help="close a report (and the others on the same target)")
    resolve.add_argument("id", type=int, metavar="ID", help="the report's number, as listed")
    resolve.add_argument("--note", required=True, help="what the operator found or did")
    links = sub.add_parser("billipay-links", help="list linked bank accounts (an operator's review)")
    links.add_argument("--unverified", action="store_true",
                       help="only links made without the owner's session (before that was required)")
    payouts = sub.add_parser("payouts", help="payouts the bank refused three times (an operator's queue)")
    payouts.add_argument("--retry", type=int, metavar="ID", help="send that refused payout again")
    transfers = sub.add_parser("transfers", help="bank transfers not settled yet (an operator's view)")
    transfers.add_argument("--review", action="store_true",
                           help="only those still unknown past the horizon (BILLI_BANK_UNKNOWN_HORIZON_H)")
    transfers.add_argument("--suspense", action="store_true",
                           help="transfers recorded failed that the bank carried out after all (money in suspense)")
    transfers.add_argument("--settle", type=int, metavar="ID",
                           help="an operator's decision on an unknown transfer, after checking with the bank")
    transfers.add_argument("--as", dest="as_", choices=("done", "failed"), help="with --settle: what the bank did")
    reconcile = sub.add_parser("reconcile", help="the bank statement of a day against our transfers and ledger")
    reconcile.add_argument("--date", help="YYYY-MM-DD (default: yesterday in Seoul)")
    args = parser.parse_args(argv)
    config = Config.from_env()
    setup_logging(config)
    if getattr(args, "older_than_days", 0) is None:
        args.older_than_days = config.chat_archive_after_days
    handler = {"up": cmd_up, "serve": cmd_serve, "migrate": cmd_migrate, "demo-data": cmd_demo_data,
               "archive-chats": cmd_archive_chats, "reindex": cmd_reindex, "sandbox": cmd_sandbox,
               "disputes": cmd_disputes, "reports": cmd_reports, "billipay-links": cmd_billipay_links,
               "transfers": cmd_transfers, "payouts": cmd_payouts, "reconcile": cmd_reconcile}[args.command]
    try:
        return handler(config, args)
    except ServiceError as e:  # said in words; a traceback adds nothing
        print(e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
