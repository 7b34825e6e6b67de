"""Naver login (네이버 아이디로 로그인), OAuth 2.0 — see ``../shared/KFTC.md`` (Naver part).

``start`` keeps a random single-use ``state`` in Redis for a few minutes (with what it is for: logging in, or
linking Naver to the logged-in account); ``finish`` takes it back exactly once, exchanges the code, reads the
profile (``/v1/nid/me``; the stable key is ``response.id``), revokes the token (we keep none) and then logs the
linked person in, links, or creates an account — asking for a nickname first when Naver's is taken or unfit
(unfit includes a name that poses as the service: ``market.people.nicknames`` decides, as for every sign-up).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import pymysql
import redis.asyncio as aioredis

from market.db import Database
from market.errors import Conflict, Forbidden, InvalidInput, NotFound, Unavailable
from market.people.accounts import Accounts, Session
from market.people.nicknames import is_reserved

AUTHORIZE = "/oauth2.0/authorize"
TOKEN = "/oauth2.0/token"
ME = "/v1/nid/me"
STATE_TTL_S = 10 * 60
PENDING_TTL_S = 15 * 60
_NICK = re.compile(r"^[0-9A-Za-z가-힣_.\-]{2,20}$")


@dataclass(frozen=True, slots=True)
class NaverResult:
    """What happened: ``logged_in`` / ``created`` (with a session), ``linked``, or ``need_nickname`` (with a
    pending sign-up token to finish with a nickname)."""

    action: str
    session: Session | None = None
    pending: str | None = None
    suggested: str | None = None


class NaverLogin:
    def __init__(self, db: Database, redis: aioredis.Redis, accounts: Accounts, *, auth_url: str, api_url: str,
                 client_id: str, client_secret: str, timeout_s: float = 10.0) -> None:
        self.db = db
        self.redis = redis
        self.accounts = accounts
        self.auth_url = auth_url.rstrip("/")
        self.client_id = client_id
        self._secret = client_secret
        self._auth = httpx.AsyncClient(base_url=self.auth_url, timeout=timeout_s)
        self._api = httpx.AsyncClient(base_url=api_url.rstrip("/"), timeout=timeout_s)

    async def close(self) -> None:
        await self._auth.aclose()
        await self._api.aclose()

    async def start(self, redirect_uri: str, *, browser: str, link_to: int | None = None) -> str:
        """Naver's consent page. ``browser`` is a secret the gateway also keeps in a cookie of the browser that
        asked: only that browser can finish (else an attacker's half-finished callback link, opened by someone
        else, would log them in as the attacker)."""
        state = secrets.token_urlsafe(24)
        await self.redis.set(f"naver:state:{state}", json.dumps({"link_to": link_to, "redirect": redirect_uri,
                                                                 "browser": _digest(browser)}), ex=STATE_TTL_S)
        return f"{self.auth_url}{AUTHORIZE}?" + urlencode({"response_type": "code", "client_id": self.client_id,
                                                            "redirect_uri": redirect_uri, "state": state})

    async def finish(self, state: Any, code: Any, *, browser: str | None, error: Any = None,
                     session_user: int | None = None, session_hash: str | None = None) -> NaverResult:
        """Naver's redirect back, in the browser that started (``browser``: its cookie); another browser is
        refused without using the state up. A link is recorded with the session it was added from
        (``session_hash``), so that a password change or reset can undo links added from other sessions."""
        if not isinstance(state, str) or not 16 <= len(state) <= 64:
            raise InvalidInput("naver.bad_state")
        key = f"naver:state:{state}"
        raw = await self.redis.get(key)
        if raw is None:
            raise InvalidInput("naver.bad_state")
        bound = json.loads(raw)
        if not browser or not secrets.compare_digest(_digest(browser), str(bound.get("browser", ""))):
            raise Forbidden("naver.other_browser")
        if await self.redis.getdel(key) != raw:
            raise InvalidInput("naver.bad_state")
        if bound["link_to"] is not None and bound["link_to"] != session_user:
            raise InvalidInput("naver.bad_state")
        if error:
            raise Conflict("naver.denied")
        if not isinstance(code, str) or not 0 < len(code) <= 300:
            raise InvalidInput("naver.bad_code")
        profile = await self._profile(code, state)
        subject = str(profile.get("id") or "")
        if not subject or len(subject) > 128:
            raise Unavailable("naver.unreachable")
        owner = await self.db.fetchval("SELECT user_id FROM login_links WHERE provider = 'naver' AND subject = %s",
                                       (subject,))
        if bound["link_to"] is not None:
            if owner is not None and owner != bound["link_to"]:
                raise Conflict("naver.linked_elsewhere")
            if owner is None:
                try:
                    await self.db.execute("INSERT INTO login_links (provider, subject, user_id, linked_in_session)"
                                          " VALUES ('naver', %s, %s, %s)", (subject, bound["link_to"], session_hash))
                except pymysql.err.IntegrityError:
                    raise Conflict("naver.already_linked") from None
            return NaverResult("linked")
        if owner is not None:
            return NaverResult("logged_in", await self.accounts.session_for(int(owner)))
        nickname = str(profile.get("nickname") or "")[:20]
        reserved = is_reserved(nickname)
        fits = _NICK.match(nickname) is not None and not reserved
        if fits and await self.db.fetchval("SELECT id FROM users WHERE nickname = %s", (nickname,)) is None:
            try:
                return NaverResult("created", await self._create(subject, nickname, profile))
            except Conflict:
                pass  # taken a moment ago: ask
        pending = secrets.token_urlsafe(24)
        await self.redis.set(f"naver:pending:{pending}", json.dumps({"subject": subject, "profile": profile}),
                             ex=PENDING_TTL_S)
        # A Naver nickname that poses as the service is never offered back: the person picks another.
        return NaverResult("need_nickname", pending=pending, suggested=None if reserved else nickname or None)

    async def complete(self, pending: Any, nickname: Any) -> Session:
        """Finish a Naver sign-up with the nickname the person chose."""
        if not isinstance(pending, str) or not 0 < len(pending) <= 64:
            raise InvalidInput("naver.bad_state")
        if not isinstance(nickname, str):
            raise InvalidInput("account.bad_nickname", field="nickname")
        if is_reserved(nickname):
            raise InvalidInput("account.reserved_nickname", field="nickname")
        if not _NICK.match(nickname.strip()):
            raise InvalidInput("account.bad_nickname", field="nickname")
        raw = await self.redis.get(f"naver:pending:{pending}")
        if raw is None:
            raise InvalidInput("naver.bad_state")
        body = json.loads(raw)
        session = await self._create(body["subject"], nickname.strip(), body["profile"])
        await self.redis.delete(f"naver:pending:{pending}")
        return session

    async def unlink(self, user_id: int) -> None:
        row = await self.db.fetchone("SELECT password_hash FROM users WHERE id = %s", (user_id,))
        if row is None:
            raise NotFound("account.not_found")
        if not row["password_hash"]:
            raise Conflict("naver.last_login_method")
        if not await self.db.execute("DELETE FROM login_links WHERE provider = 'naver' AND user_id = %s", (user_id,)):
            raise NotFound("naver.not_linked")

    async def linked(self, user_id: int) -> bool:
        return await self.db.fetchval("SELECT 1 FROM login_links WHERE provider = 'naver' AND user_id = %s",
                                      (user_id,)) is not None

    async def _create(self, subject: str, nickname: str, profile: dict[str, Any]) -> Session:
        async with self.db.transaction() as cur:
            if await self._subject_taken(cur, subject):
                raise Conflict("naver.linked_elsewhere")
            try:
                await cur.execute("INSERT INTO users (email, nickname, password_hash) VALUES (NULL, %s, NULL)",
                                  (nickname,))
            except pymysql.err.IntegrityError:
                raise Conflict("account.nickname_taken", field="nickname") from None
            user_id = int(cur.lastrowid)
            await cur.execute("INSERT INTO login_links (provider, subject, user_id) VALUES ('naver', %s, %s)",
                              (subject, user_id))
        return await self.accounts.session_for(user_id)

    @staticmethod
    async def _subject_taken(cur: Any, subject: str) -> bool:
        await cur.execute("SELECT 1 FROM login_links WHERE provider = 'naver' AND subject = %s FOR UPDATE", (subject,))
        return await cur.fetchone() is not None

    async def _profile(self, code: str, state: str) -> dict[str, Any]:
        try:
            resp = await self._auth.post(TOKEN, params={"grant_type": "authorization_code", "client_id": self.client_id,
                                                        "client_secret": self._secret, "code": code, "state": state})
            token = resp.json()
            if resp.status_code >= 500 or not isinstance(token, dict):
                raise Unavailable("naver.unreachable")
            if "access_token" not in token:  # Naver answers a bad or reused code with HTTP 200 and "error"
                raise InvalidInput("naver.bad_code")
            me = await self._api.get(ME, headers={"Authorization": f"Bearer {token['access_token']}"})
            body = me.json()
            if me.status_code != 200 or body.get("resultcode") != "00":
                raise Unavailable("naver.unreachable")
            await self._auth.post(TOKEN, params={"grant_type": "delete", "client_id": self.client_id,
                                                 "client_secret": self._secret,
                                                 "access_token": token["access_token"], "service_provider": "NAVER"})
        except (httpx.HTTPError, ValueError):
            raise Unavailable("naver.unreachable") from None
        return dict(body.get("response") or {})


def _digest(secret: str) -> str:
    return hashlib.sha256(("billi-naver-browser:" + secret).encode()).hexdigest()
