"""Password guessing costs the guesser, not the owner: an address that keeps failing waits longer each time
(429 + Retry-After, before any password is checked), wherever it claims to come from; the owner, from an
address that has not been failing, still gets in; and argon2 work is bounded (503 + Retry-After at once) while
the rest of the gateway keeps answering."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp.test_utils import TestClient, TestServer
from argon2 import PasswordHasher

from gateway.app import create_app
from gateway.keys import CONFIG, MARKET
from market.config import Config
from tests.conftest import _clean, sign_up
from tests.faults.test_redis_restart import OwnRedis

WRONG = "guess1234"
RIGHT = "rent4you"  # conftest's sign_up password


@asynccontextmanager
async def gateway(config: Config, **settings: Any) -> AsyncIterator[TestClient]:
    """An in-process gateway with some settings of its own (clean tables and Redis, like the ``client`` fixture)."""
    await _clean(config)
    async with TestClient(TestServer(create_app(config.replace(**settings)))) as client:
        yield client


@asynccontextmanager
async def from_address(client: TestClient, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client whose connections come from ``address`` (any 127.x.y.z reaches the loopback gateway)."""
    base = str(client.make_url("/"))
    async with httpx.AsyncClient(base_url=base, transport=httpx.AsyncHTTPTransport(local_address=address),
                                 headers={"Origin": base.rstrip("/")}, timeout=30) as http:
        yield http


async def log_in(http: httpx.AsyncClient | TestClient, email: str, password: str,
                 headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any], str | None]:
    """Status, body and Retry-After of one log-in."""
    body = {"email": email, "password": password}
    if isinstance(http, httpx.AsyncClient):
        resp = await http.post("/api/auth/login", json=body, headers=headers)
        return resp.status_code, resp.json(), resp.headers.get("Retry-After")
    async with http.post("/api/auth/login", json=body, headers=headers) as r:
        return r.status, await r.json(), r.headers.get("Retry-After")


@pytest.fixture
def argon2_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every password verification argon2 does (the real one still runs)."""
    calls: list[str] = []
    real = PasswordHasher.verify

    def counted(self: PasswordHasher, stored: str | bytes, password: str | bytes) -> bool:
        calls.append(str(password))
        return real(self, stored, password)

    monkeypatch.setattr(PasswordHasher, "verify", counted)
    return calls


async def test_the_owner_logs_in_from_a_fresh_address_while_a_guesser_of_the_account_waits(
        client: TestClient) -> None:
    await sign_up(client, email="owner@example.com")
    async with from_address(client, "127.0.0.2") as guesser, from_address(client, "127.0.0.3") as owner:
        for _ in range(5):  # the test config allows 5 failures from one address at one account
            status, _, _ = await log_in(guesser, "owner@example.com", WRONG)
            assert status == 401
        status, body, retry_after = await log_in(guesser, "owner@example.com", RIGHT)
        assert status == 429  # even the right password: this address has been guessing
        assert retry_after is not None and int(retry_after) >= 1
        assert body["error"]["code"] == "account.login_throttled"
        assert body["error"]["message"].startswith("로그인 시도가 너무 많아요.") and "초 뒤" in body["error"]["message"]

        status, body, _ = await log_in(owner, "owner@example.com", RIGHT)
        assert status == 200, body
        assert body["user"]["email"] == "owner@example.com"


async def test_many_guessing_addresses_slow_the_account_but_its_owner_still_gets_in(config: Config) -> None:
    async with gateway(config, login_account_max_failures=4) as client:
        await sign_up(client, email="target@example.com")
        guessers = [f"127.0.1.{n}" for n in range(1, 8)]  # 7 addresses, one guess each: the account's 4 and 3 more
        for address in guessers:
            async with from_address(client, address) as http:
                status, _, _ = await log_in(http, "target@example.com", WRONG)
                assert status == 401
        async with from_address(client, guessers[0]) as http:
            status, _, retry_after = await log_in(http, "target@example.com", WRONG)
            assert status == 429  # one guess from this address, but the account is being guessed at from everywhere
            assert retry_after is not None and int(retry_after) >= 1
        async with from_address(client, "127.0.2.1") as owner:
            status, body, _ = await log_in(owner, "target@example.com", RIGHT)
            assert status == 200, body


async def test_one_address_trying_many_accounts_waits_longer_each_time_and_costs_no_hashing(
        config: Config, argon2_calls: list[str]) -> None:
    async with gateway(config, login_address_max_failures=5) as client:
        for n in range(5):  # this address may fail 5 times across accounts before it must wait
            status, _, _ = await log_in(client, f"someone{n}@example.com", WRONG)
            assert status == 401
        waits: list[int] = []
        for n in range(3):
            if waits:  # wait as told: then one more wrong guess is heard, and costs a longer wait
                await asyncio.sleep(waits[-1])
                status, _, _ = await log_in(client, f"yet{n}@example.com", WRONG)
                assert status == 401
            hashed = len(argon2_calls)
            status, body, retry_after = await log_in(client, f"another{n}@example.com", WRONG)
            assert status == 429, body
            assert retry_after is not None
            assert body["error"]["message"] == f"로그인 시도가 너무 많아요. {retry_after}초 뒤 다시 시도해 주세요."
            assert len(argon2_calls) == hashed  # answered before any password work
            waits.append(int(retry_after))
        assert waits[0] >= 1 and waits[1] > waits[0] and waits[2] > waits[1]


async def test_a_forged_x_forwarded_for_from_an_untrusted_peer_is_ignored(config: Config) -> None:
    async with gateway(config, login_address_max_failures=5) as client:
        for n in range(5):
            forged = {"X-Forwarded-For": f"203.0.113.{n + 1}"}  # a new "address" every time
            status, _, _ = await log_in(client, f"someone{n}@example.com", WRONG, forged)
            assert status == 401
        status, _, retry_after = await log_in(client, "someone@example.com", WRONG,
                                              {"X-Forwarded-For": "198.51.100.1"})
        assert status == 429 and retry_after is not None  # counted under the real peer all along
        await sign_up(client, email="bystander@example.com")
        async with from_address(client, "127.0.0.4") as other:
            status, body, _ = await log_in(other, "bystander@example.com", RIGHT)
            assert status == 200, body


async def test_behind_a_trusted_proxy_the_address_it_saw_counts_and_the_clients_own_entries_do_not(
        config: Config) -> None:
    async with gateway(config, trusted_proxies="127.0.0.0/8") as client:
        await sign_up(client, email="owner@example.com")
        for n in range(5):  # the guesser writes a new address of its own to the left each time
            hops = {"X-Forwarded-For": f"192.0.2.{n + 1}, 203.0.113.7"}
            status, _, _ = await log_in(client, "owner@example.com", WRONG, hops)
            assert status == 401
        status, _, retry_after = await log_in(client, "owner@example.com", RIGHT,
                                              {"X-Forwarded-For": "192.0.2.99, 203.0.113.7"})
        assert status == 429 and retry_after is not None
        status, body, _ = await log_in(client, "owner@example.com", RIGHT, {"X-Forwarded-For": "198.51.100.20"})
        assert status == 200, body  # the owner, seen by the proxy at another address


async def test_argon2_beyond_its_bound_is_refused_at_once_while_the_gateway_answers(
        config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    started, release = threading.Semaphore(0), threading.Event()
    real = PasswordHasher.verify

    def slow(self: PasswordHasher, stored: str | bytes, password: str | bytes) -> bool:
        started.release()
        release.wait(30)  # held until the test has seen the others refused
        return real(self, stored, password)

    async with gateway(config, password_hash_concurrency=1) as client:
        await sign_up(client, email="busy@example.com")
        monkeypatch.setattr(PasswordHasher, "verify", slow)
        try:
            first = asyncio.create_task(log_in(client, "busy@example.com", RIGHT))
            assert await asyncio.to_thread(started.acquire, True, 30)  # one hash running
            others = [asyncio.create_task(log_in(client, "busy@example.com", RIGHT)) for _ in range(5)]
            refused = []
            for answer in asyncio.as_completed(others, timeout=30):  # one may queue; the rest must not wait
                refused.append(await answer)
                if len(refused) == 4:
                    break
            assert not release.is_set() and not first.done()  # all answered while the first hash still ran
            for status, body, retry_after in refused:
                assert status == 503 and retry_after == "1"
                assert body["error"]["code"] == "account.busy"
                assert body["error"]["message"].startswith("지금 로그인하거나 가입하는 분이 많아요.")
            async with client.get("/healthz") as resp:
                assert resp.status == 200
        finally:
            release.set()
        assert (await first)[0] == 200
        assert sorted(a[0] for a in await asyncio.gather(*others)) == [200, 503, 503, 503, 503]


async def test_the_owner_on_her_usual_browser_gets_in_while_her_account_is_hammered_from_everywhere(
        config: Config) -> None:
    async with gateway(config, login_account_max_failures=4) as client:
        await sign_up(client, email="owner@example.com")
        async with from_address(client, "127.0.3.1") as browser, from_address(client, "127.0.3.1") as other_browser:
            status, body, _ = await log_in(browser, "owner@example.com", RIGHT)
            assert status == 200, body
            assert "billi_device" in browser.cookies  # her usual browser is now known to her account
            status, _, _ = await log_in(browser, "owner@example.com", WRONG)
            assert status == 401  # she mistypes once
            for n in range(1, 8):  # meanwhile the account is guessed at from many addresses
                async with from_address(client, f"127.0.1.{n}") as guesser:
                    await log_in(guesser, "owner@example.com", WRONG)
            status, body, _ = await log_in(browser, "owner@example.com", RIGHT)
            assert status == 200, body  # judged by her browser's own failures, not the account's

            status, _, retry_after = await log_in(other_browser, "owner@example.com", WRONG)
            assert status == 401  # an unknown browser at her address, failing here …
            status, _, retry_after = await log_in(other_browser, "owner@example.com", RIGHT)
            assert status == 429 and retry_after is not None  # … waits with the account
            forged = browser.cookies["billi_device"].rsplit(".", 1)[0] + ".forged"
            other_browser.cookies.set("billi_device", forged, path="/api/auth/")
            status, _, _ = await log_in(other_browser, "owner@example.com", RIGHT)
            assert status == 429  # a token not signed by us is no known device


async def test_parallel_guesses_are_counted_before_the_password_is_checked(
        config: Config, argon2_calls: list[str]) -> None:
    async with gateway(config, password_hash_concurrency=20) as client:
        await sign_up(client, email="target@example.com")
        hashed = len(argon2_calls)
        answers = await asyncio.gather(*(log_in(client, "target@example.com", WRONG) for _ in range(15)))
        statuses = sorted(status for status, _, _ in answers)
        assert statuses == [401] * 5 + [429] * 10  # the pair's allowance (5), however fast the guesses came
        assert len(argon2_calls) - hashed == 5


async def test_parallel_wrong_current_passwords_are_counted_before_they_are_checked(
        config: Config, argon2_calls: list[str]) -> None:
    async with gateway(config, password_hash_concurrency=20) as client:
        person = await sign_up(client)
        hashed = len(argon2_calls)
        answers = await asyncio.gather(*(person.call("POST", "/api/me/password",
                                                     json={"current": WRONG, "new": "a new one 1234"})
                                         for _ in range(12)))
        statuses = sorted(status for status, _ in answers)
        assert statuses == [400] * 5 + [429] * 7, answers  # the allowance (5), however fast the guesses came
        assert len(argon2_calls) - hashed == 5


async def test_a_wait_for_a_locked_password_is_told_in_seconds_and_whole_minutes(client: TestClient) -> None:
    import redis.asyncio as aioredis

    person = await sign_up(client)
    r = aioredis.from_url(client.app[CONFIG].redis_url)
    try:
        for left_s, minutes in ((5, 1), (60, 1), (61, 2), (250, 5)):
            await r.set(f"billi:password-fail:{person.id}", 5, ex=left_s)
            async with client.post("/api/me/password", json={"current": RIGHT, "new": "a new one 1234"},
                                   headers=person.auth) as resp:
                body = await resp.json()
                assert resp.status == 429, body
                assert resp.headers["Retry-After"] == str(left_s)
                assert body["error"]["message"] == f"비밀번호를 너무 많이 틀렸어요. {minutes}분 뒤에 다시 시도해 주세요."
    finally:
        await r.aclose()


async def test_cycling_through_the_64s_of_one_ipv6_48_gives_no_fresh_allowances(config: Config) -> None:
    async with gateway(config, trusted_proxies="127.0.0.0/8", login_address_max_failures=1,
                       login_max_failures=50, login_account_max_failures=1000) as client:
        # one /64 is allowed 1 failure, a /56 4 and a /48 16: a new /56 (and /64) for every guess
        for n in range(16):
            forwarded = {"X-Forwarded-For": f"2001:db8:42:{n:02x}00::1"}
            status, _, _ = await log_in(client, f"someone{n}@example.com", WRONG, forwarded)
            assert status == 401
        status, _, retry_after = await log_in(client, "another@example.com", WRONG,
                                              {"X-Forwarded-For": "2001:db8:42:ff00::1"})
        assert status == 429 and retry_after is not None  # the /48 has had its allowance
        status, _, _ = await log_in(client, "another@example.com", WRONG, {"X-Forwarded-For": "2001:db8:43::1"})
        assert status == 401  # the next /48 has not


async def test_with_redis_away_log_in_answers_503_and_checks_no_password_and_sign_up_still_works(
        config: Config, tmp_path: Path, argon2_calls: list[str]) -> None:
    own = OwnRedis(tmp_path)
    own.start()
    try:
        async with gateway(config, redis_url=own.url) as client:
            await sign_up(client, email="owner@example.com")
            own.kill()
            hashed = len(argon2_calls)
            for _ in range(3):
                status, body, retry_after = await log_in(client, "owner@example.com", WRONG)
                assert status == 503, body
                assert body["error"]["code"] == "service.unavailable"
                assert body["error"]["message"] == "지금은 서비스를 쓸 수 없어요. 잠시 뒤에 다시 시도해 주세요."
                assert retry_after is not None and int(retry_after) >= 1
            assert len(argon2_calls) == hashed  # no password checked unthrottled
            async with client.post("/api/auth/signup", json={
                    "email": "new@example.com", "nickname": "새이웃", "password": "rent4you"}) as resp:
                body = await resp.json()
                assert resp.status == 201, body  # sign-ups are counted on this node meanwhile (market.limits)
            client.session.cookie_jar.clear()  # (the sign-up's session cookie)
            async with client.post("/api/auth/password-reset", json={"email": "owner@example.com"}) as resp:
                body = await resp.json()
                assert resp.status == 503 and body["error"]["code"] == "service.unavailable", body
                assert "Retry-After" in resp.headers  # (uncounted, an address could be flooded with mails)
    finally:
        if own.proc is not None and own.proc.poll() is None:
            own.kill()


# -- known devices -------------------------------------------------------------------------------------------------
async def _hammer(client: TestClient, email: str, addresses: int) -> None:
    """Wrong guesses at ``email``, one from each of ``addresses`` addresses."""
    for n in range(1, addresses + 1):
        async with from_address(client, f"127.0.1.{n}") as guesser:
            status, _, _ = await log_in(guesser, email, WRONG)
            assert status in (401, 429)


@pytest.mark.parametrize("token", [
    "1.abc.\xe9", "1.AAAAAAAAAAAAAAAAAAAAAA." + "\xe9" * 43, "1.\uff21AAAAAAAAAAAAAAAAAAAAA." + "A" * 43,
    "1.AAAAAAAAAAAAAAAAAAAAAA." + "A" * 42 + "\n", "01.AAAAAAAAAAAAAAAAAAAAAA." + "A" * 43, "1.a.b.c", "", "\x00",
    "1." * 100, "٣.AAAAAAAAAAAAAAAAAAAAAA." + "A" * 43])
def test_a_device_token_of_any_other_shape_is_simply_no_known_device(token: str) -> None:
    from market.people.known_devices import KnownDevices

    devices = KnownDevices("a secret")
    assert devices.device_of(token, 1, 0) is None
    assert devices.device_of(token, 3, 0) is None
    good = devices.issue(1, 0)
    assert devices.device_of(good, 1, 0) == good.split(".")[1]
    assert devices.device_of(good, 2, 0) is None and devices.device_of(good, 1, 1) is None


async def test_a_malformed_device_cookie_tells_no_one_who_has_an_account_and_the_try_still_counts(
        client: TestClient) -> None:
    victim = await sign_up(client, "표적", "victim@example.com")
    answers: dict[str, list[tuple[int, Any]]] = {}
    for email in ("victim@example.com", "nobody@example.com"):
        for cookie in (f'billi_device="{victim.id}.abc.\\351"',  # a non-ASCII MAC part (was a 500: an oracle)
                       f'billi_device="{victim.id}.AAAAAAAAAAAAAAAAAAAAAA.{"é" * 43}"',
                       f"billi_device={victim.id}.{'A' * 22}.{'A' * 43}.x",
                       f"billi_device={victim.id}.{'A' * 22}.{'A' * 43}",  # the right shape, not ours
                       "billi_device=garbage"):
            async with client.post("/api/auth/login", json={"email": email, "password": WRONG},
                                   headers={"Cookie": cookie}) as r:
                answers.setdefault(email, []).append((r.status, (await r.json())["error"]["code"]))
    assert answers["victim@example.com"] == answers["nobody@example.com"] == [(401, "account.bad_login")] * 5
    redis = client.app[MARKET].redis
    for email in ("victim@example.com", "nobody@example.com"):  # every try counted against the account, alike
        account = hashlib.sha256(email.encode()).hexdigest()[:32]
        assert await redis.get(f"billi:login:fail:acct:{account}") == "5"


@pytest.mark.parametrize("ending", ["logout-everywhere", "password change", "password reset"])
async def test_whatever_ends_every_session_voids_every_device_token(config: Config, ending: str) -> None:
    async with gateway(config, login_account_max_failures=4) as client:
        owner = await sign_up(client, email="owner@example.com")
        async with from_address(client, "127.0.3.1") as browser:
            status, body, _ = await log_in(browser, "owner@example.com", RIGHT)
            assert status == 200, body
            password = RIGHT if ending == "logout-everywhere" else "a new one 1234"
            if ending == "logout-everywhere":  # from another session, so this browser keeps its cookie
                status, body = await owner.call("POST", "/api/auth/logout-everywhere")
            elif ending == "password change":
                status, body = await owner.call("POST", "/api/me/password", json={"current": RIGHT, "new": password})
            else:  # a reset link opened in another browser, which is known to the account from then on
                market = client.app[MARKET]
                await market.password_resets.request({"email": "owner@example.com"})
                await market.db.execute("UPDATE password_resets SET token_hash = SHA2(%s, 256)", ("t" * 43,))
                async with client.post("/api/auth/password-reset/confirm",
                                       json={"token": "t" * 43, "password": password}) as resp:
                    status, body = resp.status, await resp.json()
                    assert "billi_device" in resp.cookies
            assert status == 200, body
            assert "billi_device" in browser.cookies
            status, _, _ = await log_in(browser, "owner@example.com", WRONG)
            assert status == 401
            await _hammer(client, "owner@example.com", 7)
            status, _, retry_after = await log_in(browser, "owner@example.com", password)
            assert status == 429 and retry_after is not None  # no longer a known device: it waits with the account


async def test_a_password_change_gives_the_browser_that_made_it_a_new_device_token(config: Config) -> None:
    async with gateway(config, login_account_max_failures=4) as client:
        await sign_up(client, email="owner@example.com")
        async with from_address(client, "127.0.3.1") as browser:
            status, body, _ = await log_in(browser, "owner@example.com", RIGHT)
            assert status == 200, body
            before = browser.cookies["billi_device"]
            resp = await browser.post("/api/me/password", json={"current": RIGHT, "new": "a new one 1234"})
            assert resp.status_code == 200, resp.text
            assert browser.cookies["billi_device"] != before
            status, _, _ = await log_in(browser, "owner@example.com", WRONG)
            assert status == 401
            await _hammer(client, "owner@example.com", 7)
            status, body, _ = await log_in(browser, "owner@example.com", "a new one 1234")
            assert status == 200, body  # known under the new password's epoch


async def test_logging_out_forgets_the_device_too(client: TestClient) -> None:
    await sign_up(client, email="owner@example.com")
    async with from_address(client, "127.0.3.1") as browser:
        status, body, _ = await log_in(browser, "owner@example.com", RIGHT)
        assert status == 200, body
        assert "billi_device" in browser.cookies
        resp = await browser.post("/api/auth/logout")
        assert resp.status_code == 200
        assert "billi_device" not in browser.cookies  # the next person at a shared browser is nobody's device


async def test_a_guesser_filling_an_ipv6_48_keeps_out_no_known_device_in_it(config: Config) -> None:
    async with gateway(config, trusted_proxies="127.0.0.0/8", login_address_max_failures=1,
                       login_max_failures=50, login_account_max_failures=1000) as client:
        await sign_up(client, email="owner@example.com")
        home = {"X-Forwarded-For": "2001:db8:42:ff00::1"}
        async with from_address(client, "127.0.3.1") as browser, from_address(client, "127.0.3.2") as new_phone:
            status, body, _ = await log_in(browser, "owner@example.com", RIGHT, home)
            assert status == 200, body
            for n in range(16):  # a guesser takes the /48's allowance, a new /56 for every guess
                forwarded = {"X-Forwarded-For": f"2001:db8:42:{n:02x}00::1"}
                status, _, _ = await log_in(client, f"someone{n}@example.com", WRONG, forwarded)
                assert status == 401
            status, _, _ = await log_in(new_phone, "owner@example.com", RIGHT, home)
            assert status == 429  # a browser not known to the account waits with the /48, as before
            status, body, _ = await log_in(browser, "owner@example.com", RIGHT, home)
            assert status == 200, body  # her usual browser is judged by its own /64 and its own failures


async def test_a_password_try_given_back_after_its_window_passed_leaves_no_counter_behind(
        client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from market.errors import Unavailable

    person = await sign_up(client)
    market = client.app[MARKET]
    key = f"billi:password-fail:{person.id}"

    async def busy_once_the_window_passed(stored: str, password: str) -> bool:
        await market.redis.delete(key)  # the window ends while the try waits for hashing, which is then busy
        raise Unavailable("account.busy", retry_after=1)

    monkeypatch.setattr(market.accounts._passwords, "verify", busy_once_the_window_passed)
    status, body = await person.call("POST", "/api/me/password", json={"current": WRONG, "new": "a new one 1234"})
    assert status == 503 and body["error"]["code"] == "account.busy"
    assert await market.redis.exists(key) == 0  # (was -1, kept for good: a free wrong guess)
