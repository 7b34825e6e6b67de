"""Mail out: the few mails the market sends (password-reset links), through the SMTP server ``BILLI_SMTP_URL``
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


class Mailer:
    """Sends plain-text mails. ``smtp://[user:password@]host[:port]`` (STARTTLS whenever the server offers it) or
    ``smtps://…`` (TLS from the start); without a URL nothing is sent and a warning says so."""

    def __init__(self, smtp_url: str | None, sender: str) -> None:
        self._url = smtp_url
        self._sender = sender

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
            if parts.username:
                smtp.login(unquote(parts.username), unquote(parts.password or ""))
            smtp.send_message(message)
