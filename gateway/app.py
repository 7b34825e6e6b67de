"""The application factory: ``create_app(config)`` builds the whole web app (REST, media, pages) around a
Market whose connections open in a cleanup context and close with the app.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from gateway.api import accounts, items, system
from gateway.http import HttpMetrics, errors, headers, observe, sessions
from gateway.keys import CONFIG, MARKET, METRICS
from gateway.routing import Route, openapi, register
from market.config import Config
from market.service import Market

VERSION = "0.1.0"
STATIC_DIR = Path(__file__).resolve().parents[1] / "web_widget" / "static"


def all_routes() -> list[Route]:
    return [*system.ROUTES, *accounts.ROUTES, *items.ROUTES]


def create_app(config: Config) -> web.Application:
    app = web.Application(middlewares=[observe, headers, errors, sessions], client_max_size=1024 * 1024)
    app[CONFIG] = config
    app[METRICS] = HttpMetrics()
    routes = all_routes()
    app[system.OPENAPI] = openapi(routes, title="빌리마켓 Billi Market API", version=VERSION)
    register(app, routes)
    app.router.add_static("/static/", STATIC_DIR, append_version=True)

    async def market_ctx(app: web.Application) -> AsyncIterator[None]:
        async with Market.open(config) as market:
            app[MARKET] = market
            yield

    app.cleanup_ctx.append(market_ctx)
    return app
