"""What every browser test uses: a gateway process of its own and Debian's Chromium (never a downloaded one)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, async_playwright

from market.config import Config
from market.service import Market
from tests.browser.helpers import ARGS, CHROMIUM
from tests.e2e.nodes import Node, start_node


@pytest.fixture
async def node(config: Config, market: Market) -> AsyncIterator[Node]:
    n = start_node(config)
    yield n
    n.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        await b.close()
