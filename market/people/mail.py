"""Mail out: the few mails the market sends (password-reset links, a warning that someone tried to sign up with
an address already taken), through the SMTP server ``BILLI_SMTP_URL``
names, with the standard library's client run off the event loop.

It never logs a mail's address or text: a reset link is a key to an account.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

log = logging.getLogger("billi.mail")
_TIMEOUT_S = 10


@dataclass(frozen=True, slots=True)
class Mail:
    to: str
    subject: str
    text: str


class InsecureServer(Exception):
    """The mail server offers no STARTTLS while ``BILLI_SMTP_REQUIRE_TLS`` is set: nothing was sent."""


class Mailer:
    """Sends plain-text mails. ``smtp://[user:password@]host[:port]`` (STARTTLS whenever the server offers it; with
    ``require_tls``, never without it) or ``smtps://…`` (TLS from the start); without a URL nothing is sent and a
    warning says so."""

    def __init__(self, smtp_url: str | None, sender: str, *, require_tls: bool = False) -> None:
        self._url = smtp_url
        self._sender = sender
        self._require_tls = require_tls
        self._sending: set[asyncio.Task[None]] = set()

    def send_soon(self, mail: Mail, what: str) -> None:
        """Send after the answer (so its time tells nothing); a failure is logged as ``what`` not sent."""
        task = asyncio.create_task(self._send_logged(mail, what))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def drain(self) -> None:
        """Wait for the mails still going out (at shutdown)."""
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)

    async def _send_logged(self, mail: Mail, what: str) -> None:
        try:
            await self.send(mail)
        except Exception:  # noqa: BLE001 — nothing waits on it
            log.exception("%s could not be sent", what)

    async def send(self, mail: Mail) -> None:
        if not self._url:
            log.warning("no mail server is configured (BILLI_SMTP_URL): a mail was not sent")
            return
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message.set_content(mail.text)
        await asyncio.to_thread(self._deliver, message)

    def _deliver(self, message: EmailMessage) -> None:
        parts = urlsplit(self._url or "")
        secure = parts.scheme == "smtps"
        host, port = parts.hostname or "127.0.0.1", parts.port or (465 if secure else 25)
        context = ssl.create_default_context()
        # local_hostname given: smtplib would otherwise ask DNS for this machine's name
        smtp = (smtplib.SMTP_SSL(host, port, timeout=_TIMEOUT_S, local_hostname="localhost", context=context)
                if secure else smtplib.SMTP(host, port, timeout=_TIMEOUT_S, local_hostname="localhost"))
        with smtp:
            smtp.ehlo()
            if not secure and smtp.has_extn("starttls"):
                smtp.starttls(context=context)
                smtp.ehlo()
            elif not secure and self._require_tls:
                raise InsecureServer(f"{host}:{port} offers no STARTTLS (BILLI_SMTP_REQUIRE_TLS)")
            if parts.username:
                smtp.login(unquote(parts.username), unquote(parts.password or ""))
            smtp.send_message(message)
