"""The application factory: ``create_app(config)`` builds the whole web app (REST, media, pages) around a
Market whose connections open in a cleanup context and close with the app.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web

from bot.engine import BotEngine
from gateway.api import accounts, items, pages, rentals, rooms, safety, search, social, system
from gateway.chat_socket import ChatSocket, build_server, close_server
from gateway.client_address import ClientAddresses
from gateway.http import HttpMetrics, errors, headers, observe, sessions, without_server_banner
from gateway.keys import CHAT, CLIENT_ADDRESSES, CONFIG, MARKET, METRICS
from gateway.routing import Route, openapi, register
from gateway.static_files import static_file
from market.config import Config
from market.search import korean
from market.service import Market
from web_widget.assets import catalogue

log = logging.getLogger("billi.gateway")
VERSION = "0.1.0"


def all_routes() -> list[Route]:
    return [*system.ROUTES, *accounts.ROUTES, *items.ROUTES, *rooms.ROUTES, *search.ROUTES, *rentals.ROUTES,
            *social.ROUTES, *safety.ROUTES, *pages.ROUTES]


def create_app(config: Config) -> web.Application:
    app = web.Application(middlewares=[observe, headers, errors, sessions], client_max_size=1024 * 1024)
    app[CONFIG] = config
    app[METRICS] = HttpMetrics()
    app[CLIENT_ADDRESSES] = ClientAddresses(config.trusted_proxies)
    without_server_banner(app)
    routes = all_routes()
    app[system.OPENAPI] = openapi(routes, title="빌리마켓 Billi Market API", version=VERSION)
    register(app, routes)
    catalogue()  # hash and compress the static files now, not on the first visitor's request
    app.router.add_get("/static/{path:.+}", static_file)

    sio = build_server(config)
    sio.attach(app)

    async def market_ctx(app: web.Application) -> AsyncIterator[None]:
        async with Market.open(config) as market:
            app[MARKET] = market
            chat = ChatSocket(sio, market)
            engine = BotEngine(market, chat)
            chat.bot = engine
            market.rentals.on_event = engine.on_contract_event
            app[METRICS].watch_scheduler(market.rentals.job_failures)
            app[METRICS].watch_uploads(market.uploads)
            if market.scheduler.reconciler is not None:
                app[METRICS].watch_reconciliation(market.scheduler.reconciler)
            market.notifications.on_new = chat.push_badges
            market.notifications.on_post = engine.tell
            app[CHAT] = chat
            scheduler = asyncio.create_task(market.scheduler.run())
            sweeper = asyncio.create_task(chat.sweep_forever(config.session_sweep_interval_ms / 1000))
            try:
                yield
            finally:
                sweeper.cancel()
                market.scheduler.stop()
                try:
                    await asyncio.wait_for(asyncio.shield(scheduler), timeout=30)
                except TimeoutError:
                    scheduler.cancel()
                await close_server(sio)
                await engine.drain()

    async def archive_ctx(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(_archive_forever(app))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def indexer_ctx(app: web.Application) -> AsyncIterator[None]:
        await asyncio.to_thread(korean.warm_up)  # load the analyser before the first search, not during it
        indexer = app[MARKET].indexer
        task = asyncio.create_task(indexer.run(config.search_index_interval_ms / 1000))
        yield
        indexer.stop()  # let the round in progress finish (see SearchIndexer.run)
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=30)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.cleanup_ctx.append(market_ctx)
    app.cleanup_ctx.append(archive_ctx)
    app.cleanup_ctx.append(indexer_ctx)
    return app


async def _archive_forever(app: web.Application) -> None:
    """Move old chat messages to S3 now and then; a failure is logged and retried next round."""
    config = app[CONFIG]
    while True:
        await asyncio.sleep(config.chat_archive_interval_s)
        try:
            await app[MARKET].chat.archive.archive_older_than(timedelta(days=config.chat_archive_after_days))
        except Exception:
            log.exception("chat archive round failed; will retry")
