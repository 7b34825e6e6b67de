"""Typed keys for what the aiohttp application and its requests hold."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from aiohttp import web

from market.config import Config
from market.people.accounts import User
from market.service import Market

if TYPE_CHECKING:
    from gateway.chat_socket import ChatSocket
    from gateway.client_address import ClientAddresses
    from gateway.http import HttpMetrics

CONFIG = web.AppKey("config", Config)
MARKET = web.AppKey("market", Market)
METRICS: web.AppKey["HttpMetrics"] = web.AppKey("metrics")
CHAT: web.AppKey["ChatSocket"] = web.AppKey("chat")
CLIENT_ADDRESSES: web.AppKey["ClientAddresses"] = web.AppKey("client_addresses")

# Per-request values set by the middlewares.
USER = web.RequestKey("user", Optional[User])
SESSION_TOKEN = web.RequestKey("session_token", Optional[str])
SESSION_VIA_COOKIE = web.RequestKey("session_via_cookie", bool)
REQUEST_ID = web.RequestKey("request_id", str)

SESSION_COOKIE = "billi_session"
DEVICE_COOKIE = "billi_device"  # a known-device token (market.people.known_devices), sent only to /api/auth/
