"""A mail sink for local runs and tests: an SMTP server on the loopback (aiosmtpd) that keeps every mail it is
handed and, when asked to, prints the links in it — so a password-reset link can be followed without a real
mail provider. It stands in for an outside party and shares nothing with the rest of the project.
"""

from __future__ import annotations

import asyncio
import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

_LINK = re.compile(r"https?://\S+")


class MailSink:
    """``await MailSink.start()`` listens on 127.0.0.1 (a free port unless one is given); ``url`` is what
    ``BILLI_SMTP_URL`` should say; ``mails`` holds what arrived, oldest first."""

    def __init__(self, *, echo: bool = False) -> None:
        self.mails: list[EmailMessage] = []
        self._echo = echo
        self._server: asyncio.Server | None = None
        self._arrived = asyncio.Condition()

    @classmethod
    async def start(cls, host: str = "127.0.0.1", port: int = 0, *, echo: bool = False) -> MailSink:
        sink = cls(echo=echo)
        # hostname given: the library would otherwise ask DNS for this machine's name
        sink._server = await asyncio.get_running_loop().create_server(
            lambda: SMTP(sink, hostname="billi-mail-sink"), host, port)
        return sink

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"smtp://{host}:{port}"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """aiosmtpd's hook for a mail fully received."""
        raw = envelope.original_content or envelope.content
        mail: Any = message_from_bytes(raw if isinstance(raw, bytes) else raw.encode(), policy=policy.default)
        async with self._arrived:
            self.mails.append(mail)
            self._arrived.notify_all()
        if self._echo:
            self._print(mail)
        return "250 OK"

    async def wait_for(self, count: int = 1, timeout: float = 10) -> list[EmailMessage]:
        """The mails once at least ``count`` have arrived (an AssertionError after ``timeout`` seconds)."""
        async with self._arrived:
            try:
                await asyncio.wait_for(self._arrived.wait_for(lambda: len(self.mails) >= count), timeout)
            except TimeoutError:
                raise AssertionError(f"expected {count} mail(s), got {len(self.mails)}") from None
        return list(self.mails)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    @staticmethod
    def _print(mail: EmailMessage) -> None:
        links = _LINK.findall(text_of(mail))
        print(f"  ✉ 메일 / mail → {mail['To']}: {mail['Subject']}", flush=True)
        for link in dict.fromkeys(links):
            print(f"      {link}", flush=True)


def text_of(mail: EmailMessage) -> str:
    """The plain-text body of a received mail."""
    part = mail.get_body(preferencelist=("plain",))
    return str(part.get_content()) if part is not None else ""
