"""The market's public service: one object the gateway and the bot are handed, built from a Config.

``Market.open`` connects to MariaDB, Redis and S3 (applying migrations first) and closes them on exit.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from market import redis_client
from market.billipay import BilliPay
from market.categories import Categories
from market.chat import Chat
from market.chat.archive import ChatArchive
from market.clock import Clock
from market.config import Config
from market.db import Database
from market.errors import NotFound
from market.geo import NearbyQuery, nearby
from market.items import Items, card_columns
from market.kftc import KftcClient
from market.limits import Limits
from market.migrate import migrate
from market.people.account_deletion import AccountDeletion
from market.people.accounts import Accounts
from market.people.blocks import Blocks
from market.people.mail import Mailer
from market.people.naver import NaverLogin
from market.people.notifications import Notifications
from market.people.password_reset import PasswordResets
from market.people.reports import Reports
from market.people.reviews import Reviews
from market.public_place import shown_distance
from market.reconcile import Reconciler
from market.rentals import Rentals, Rules
from market.scheduler import Scheduler
from market.search import EmbeddedSearch, SearchBackend, SearchQuery, did_you_mean
from market.search.indexer import SearchIndexer
from market.storage import BlobStore
from market.uploads import Uploads
from market.wishes import Wishes

# Every photo we store is "<items|profiles|chat>/<id>/<name>.<ext>" (see items.py, accounts.py, chat/rooms.py); any
# other key — empty or extra segments, a NUL, "²" for a room number, "../" — names nothing served under /media/.
_MEDIA_KEY = re.compile(r"(items|profiles|chat)/([1-9][0-9]{0,17})/[A-Za-z0-9_-]{1,64}\.[a-z]{3,4}")
PUBLIC_MEDIA = frozenset({"items", "profiles"})
# A search's page is "about" a category when this share of its items is in it (the chip in /검색).
MAIN_CATEGORY_SHARE = 0.6


async def open_search_backend(stack: AsyncExitStack, config: Config, db: Database,
                              categories: Categories) -> SearchBackend:
    """Elasticsearch when a cluster is configured, else the embedded MariaDB backend."""
    if config.elasticsearch_url:
        from market.search.es import ElasticsearchSearch

        es = ElasticsearchSearch(config.elasticsearch_url, config.elasticsearch_index)
        stack.push_async_callback(es.close)
        await es.ensure_index()
        return es
    return EmbeddedSearch(db, categories)


@dataclass
class Market:
    config: Config
    db: Database
    redis: aioredis.Redis
    store: BlobStore
    categories: Categories
    accounts: Accounts
    items: Items
    wishes: Wishes
    chat: Chat
    search_backend: SearchBackend
    indexer: SearchIndexer
    billipay: BilliPay | None
    rentals: Rentals
    scheduler: Scheduler
    notifications: Notifications
    reviews: Reviews
    naver: NaverLogin | None
    password_resets: PasswordResets
    deletion: AccountDeletion
    uploads: Uploads
    blocks: Blocks
    reports: Reports
    limits: Limits
    _checks: dict[str, asyncio.Task[Any]] = field(default_factory=dict)  # readiness checks still waiting

    @classmethod
    @asynccontextmanager
    async def open(cls, config: Config, *, run_migrations: bool = True) -> AsyncIterator[Market]:
        if not (config.database_url and config.redis_url and config.s3_url):
            raise RuntimeError("the market needs database, Redis and S3 URLs (billi up starts local ones)")
        async with AsyncExitStack() as stack:
            db = await Database.connect(config.database_url, pool_size=config.db_pool_size,
                                        statement_timeout_s=config.db_statement_timeout_ms / 1000 or None,
                                        connect_timeout_s=config.db_connect_timeout_ms / 1000)
            stack.push_async_callback(db.close)
            if run_migrations:
                await migrate(db)
            # A blocking pool: under a burst, commands wait for a free connection instead of failing.
            # A pooled connection that died with a restarted Redis is replaced and the command sent again once,
            # so the first requests after Redis returns do not fail; a frozen Redis is an error after the timeout,
            # not a request that hangs (chat then counts on the node). (market.redis_client: the same, cheaper.)
            redis = redis_client.connect(config.redis_url, max_connections=config.redis_pool_size,
                                         timeout_s=config.redis_timeout_ms / 1000)
            stack.push_async_callback(redis.aclose)
            store = await BlobStore.open(stack, url=config.s3_url, bucket=config.s3_bucket,
                                         access_key=config.s3_access_key, secret_key=config.s3_secret_key,
                                         region=config.s3_region, timeout_s=config.s3_timeout_ms / 1000)
            categories = await Categories.load(db)
            uploads = Uploads(redis, workers=config.image_workers, queue=config.image_queue,
                              rate_limit=config.upload_rate_limit, rate_window_s=config.upload_rate_window_s,
                              max_bytes=config.max_upload_bytes, max_pixels=config.max_image_pixels)
            limits = Limits(redis, config)
            items = Items(db, redis, store, categories, config, uploads)
            chat = Chat(db, redis, store, rate_limit=config.chat_rate_limit, rate_window_s=config.chat_rate_window_s,
                        uploads=uploads, limits=limits,
                        archive=ChatArchive(db, store, segment_size=config.chat_archive_segment_size))
            stack.push_async_callback(chat.writer.stop)
            backend = await open_search_backend(stack, config, db, categories)
            indexer = SearchIndexer(db, backend, categories)
            items.on_change = indexer.poke
            billipay = None
            clock = Clock()  # every deadline of a contract and its transfers reads this one
            if config.bank_url:
                client = KftcClient(config.bank_url, config.bank_client_id, config.bank_client_secret,
                                    timeout_s=config.bank_timeout_ms / 1000)
                stack.push_async_callback(client.close)
                billipay = BilliPay(db, redis, client, token_secret=config.token_key,
                                    platform_account=config.bank_platform_account,
                                    timeout_s=config.bank_timeout_ms / 1000,
                                    unknown_horizon_h=config.bank_unknown_horizon_h,
                                    platform_fintech_use_num=config.bank_platform_fintech_use_num,
                                    platform_inquiry_token=config.bank_platform_inquiry_token, clock=clock)
            notifications = Notifications(db, inquiry_window_s=config.inquiry_notice_window_s)
            chat.notifications = notifications
            rentals = Rentals(db, chat, billipay, Rules.from_config(config), notifications, clock)
            scheduler = Scheduler(db, rentals, config.scheduler_interval_ms / 1000,
                                  Reconciler(db, billipay) if billipay else None)
            mailer = Mailer(config.smtp_url, config.mail_from, require_tls=config.smtp_require_tls)
            stack.push_async_callback(mailer.drain)
            accounts = Accounts(db, redis, store, config, uploads, limits)
            stack.callback(accounts.close)
            chat.sessions = accounts.session_from_db
            resets = PasswordResets(db, redis, accounts, mailer, config, limits)
            stack.push_async_callback(resets.drain)
            naver = None
            if config.naver_auth_url:
                naver = NaverLogin(db, redis, accounts, auth_url=config.naver_auth_url,
                                   api_url=config.naver_api_url or config.naver_auth_url,
                                   client_id=config.naver_client_id, client_secret=config.naver_client_secret)
                stack.push_async_callback(naver.close)
            yield cls(config, db, redis, store, categories, accounts, items, Wishes(db, items), chat, backend,
                      indexer, billipay, rentals, scheduler, notifications, Reviews(db, notifications), naver,
                      resets, AccountDeletion(db, accounts, items, store, notifications, chat.archive), uploads, Blocks(db),
                      Reports(db, redis, rate_limit=config.report_rate_limit), limits)

    async def nearby(self, params: Mapping[str, Any], *, owner_ratings: bool = False) -> dict[str, Any]:
        """Nearest items around a point with filters; ``params`` is untrusted input. The page and its cards are
        one query (with ``owner_ratings``, each card's ``owner_rating`` too)."""
        query = NearbyQuery.parse(params, default_radius_m=self.config.nearby_default_radius_m,
                                  max_radius_m=self.config.nearby_max_radius_m)
        page = await nearby(self.db, query, self.categories, columns=card_columns(owner_ratings))
        return {"items": await self.items.cards(page.hits, page.rows), "next_cursor": page.next_cursor,
                "radius_m": query.radius_m}

    async def search(self, params: Mapping[str, Any], *, owner_ratings: bool = False) -> dict[str, Any]:
        """Keyword search with the nearby filters; ``params`` is untrusted input. An empty result carries a
        "did you mean" suggestion when a nearby spelling or spacing would find something; a result the backend
        found for a corrected spelling carries the correction (``did_you_mean``) and ``corrected``. With
        ``owner_ratings`` each card has its owner's rating (``owner_rating``), read with the cards."""
        query = SearchQuery.parse(params, default_radius_m=self.config.nearby_default_radius_m,
                                  max_radius_m=self.config.nearby_max_radius_m)
        columns = card_columns(owner_ratings)
        # (the embedded backend reads most pages' card rows in its own last statement: the rest are read here)
        page = await self.search_backend.search(query, columns=columns)
        cards = await self.items.cards_by_ids([h.item_id for h in page.hits], owner_ratings=owner_ratings,
                                              rows=page.rows)
        hit = {h.item_id: h for h in page.hits}
        shown = []
        for card in cards:
            if card["status"] not in ("available", "reserved", "rented"):
                continue  # changed a moment ago; the index catches up
            distance = hit[card["id"]].distance_m
            card["distance_m"] = None if distance is None else shown_distance(distance)
            shown.append(card)
        # A backend that corrected a word searched for the correction: the hits are for it ("corrected").
        suggestion = page.did_you_mean
        if suggestion is None and not page.hits and query.offset == 0:
            suggestion = await did_you_mean(self.search_backend, query)
        return {"items": shown, "next_cursor": page.next_cursor, "query": query.text, "terms": list(query.terms),
                "did_you_mean": suggestion, "corrected": page.did_you_mean is not None, "radius_m": query.radius_m,
                "category": self._main_category(shown) if query.category_id is None else None}

    def _main_category(self, cards: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The category most of a page's items are in (their own, else a broader one they share), for a chip
        that browses it; None when no category holds at least MAIN_CATEGORY_SHARE of them."""
        if not cards:
            return None
        paths = [self.categories.path(card["category"]["id"]) for card in cards]
        for depth in (2, 1, 0):  # the narrowest shared level first
            counts = Counter(path[min(depth, len(path) - 1)].id for path in paths)
            cid, n = counts.most_common(1)[0]
            if n >= MAIN_CATEGORY_SHARE * len(cards):
                return {"id": cid, "name": self.categories.get(cid).name}
        return None

    async def complete(self, prefix: object, limit: int = 8) -> list[str]:
        """Titles for the words typed so far (autocomplete)."""
        if not isinstance(prefix, str):
            return []
        return await self.search_backend.complete(" ".join(prefix.split())[:60], limit)

    async def media_access(self, key: str, user_id: int | None) -> str | None:
        """Who may read a stored object: "public" (item and profile photos), "members" (a chat image, for
        that room's members) or None (nobody through the media path)."""
        shape = _MEDIA_KEY.fullmatch(key)
        if shape is None:
            return None
        if shape.group(1) in PUBLIC_MEDIA:
            return "public"
        if user_id is None:
            return None
        try:
            await self.chat.room(int(shape.group(2)), user_id)
        except NotFound:
            return None
        return "members"

    async def readiness(self) -> dict[str, bool]:
        """Whether each backing service answers, each within the configured deadline: a service that does not
        answer in time is "down", and its check is left running — the next readiness call waits on the same check
        instead of piling up new ones — until it is over 30 s old."""
        async def database() -> bool:
            return bool(await self.db.fetchval("SELECT 1") == 1)

        async def redis() -> bool:
            return bool(await self.redis.ping())

        async def s3() -> bool:
            await self.store.ping()
            return True

        loop = asyncio.get_running_loop()
        for name, check in (("database", database), ("redis", redis), ("s3", s3)):
            task = self._checks.get(name)
            if task is not None and not task.done() and loop.time() - getattr(task, "started", 0) > 30:
                task.cancel()  # stuck for long: give up on it (the driver drops that connection) and ask anew
            if task is None or task.done():
                task = asyncio.create_task(check())
                task.started = loop.time()  # type: ignore[attr-defined]
                task.add_done_callback(lambda t: t.cancelled() or t.exception())  # (read, never "unretrieved")
                self._checks[name] = task
        await asyncio.wait(list(self._checks.values()), timeout=self.config.ready_check_timeout_ms / 1000)
        out = {}
        for name, task in self._checks.items():
            out[name] = task.done() and not task.cancelled() and task.exception() is None and bool(task.result())
        return out
