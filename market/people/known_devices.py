"""Known devices: a browser that has logged in to an account gets a device token signed for that account, and a
log-in that shows it back is throttled on its own (see ``login_throttle``) — so an owner's usual browser is not
locked out by someone guessing at her account from elsewhere.

The token is ``<account id>.<random device id>.<HMAC>`` under a key derived from the server's secret; it proves
only "this browser logged in to this account before", never who is asking, and gives no access by itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

_LABEL = b"billi known device v1"


class KnownDevices:
    """Issues and checks device tokens."""

    def __init__(self, secret: str) -> None:
        self._key = hmac.new(secret.encode(), _LABEL, hashlib.sha256).digest()

    def issue(self, user_id: int, device: str | None = None) -> str:
        """A token for this account: for ``device`` (a browser already known, its token renewed) or a new one."""
        device = device or secrets.token_urlsafe(16)
        return f"{user_id}.{device}.{self._mac(user_id, device)}"

    def decoy(self, user_id: int) -> str:
        """A token of the same shape that no account knows (for answers that must not differ)."""
        return f"{user_id}.{secrets.token_urlsafe(16)}.{secrets.token_urlsafe(32)[:43]}"

    def device_of(self, token: str | None, user_id: int) -> str | None:
        """The device id of a well-signed token for this account, else None (absent, forged, another account's)."""
        if not token or len(token) > 200:
            return None
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != str(user_id) or not parts[1]:
            return None
        if not hmac.compare_digest(parts[2], self._mac(user_id, parts[1])):
            return None
        return parts[1]

    def _mac(self, user_id: int, device: str) -> str:
        digest = hmac.new(self._key, f"{user_id}.{device}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
