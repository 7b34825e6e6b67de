"""Known devices: a browser that has logged in to an account gets a device token signed for that account, and a
log-in that shows it back is throttled on its own (see ``login_throttle``) — so an owner's usual browser is not
locked out by someone guessing at her account from elsewhere.

The token is ``<account id>.<random device id>.<HMAC>`` under a key derived from the server's secret, the MAC
covering the account's ``auth_epoch`` too: whatever ends all of a person's sessions (a password change or reset,
log-out everywhere, deletion) voids every device token of the account. It proves only "this browser logged in to
this account since", never who is asking, and gives no access by itself. A token of any other shape is simply no
known device — it must never make an answer differ.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

_LABEL = b"billi known device v2"  # (v1 tokens, without the epoch, are no longer known)
# an account id, secrets.token_urlsafe(16), an unpadded url-safe base64 SHA-256: ASCII only, nothing else
_SHAPE = re.compile(r"([1-9][0-9]{0,19})\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})", re.ASCII)


class KnownDevices:
    """Issues and checks device tokens."""

    def __init__(self, secret: str) -> None:
        self._key = hmac.new(secret.encode(), _LABEL, hashlib.sha256).digest()

    def issue(self, user_id: int, epoch: int, device: str | None = None) -> str:
        """A token for this account at its ``auth_epoch``: for ``device`` (a browser already known, its token
        renewed) or a new one."""
        device = device or secrets.token_urlsafe(16)
        return f"{user_id}.{device}.{self._mac(user_id, epoch, device)}"

    def device_of(self, token: str | None, user_id: int, epoch: int) -> str | None:
        """The device id of a well-signed token for this account at this ``auth_epoch``, else None (absent,
        malformed, forged, another account's, or from before its sessions were all ended)."""
        found = _SHAPE.fullmatch(token) if isinstance(token, str) else None
        if found is None or found[1] != str(user_id):
            return None
        if not hmac.compare_digest(found[3].encode("ascii"), self._mac(user_id, epoch, found[2]).encode("ascii")):
            return None
        return found[2]

    def _mac(self, user_id: int, epoch: int, device: str) -> str:
        digest = hmac.new(self._key, f"{user_id}.{epoch}.{device}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
