"""Sending e-mail: a message type and backends for the console, SMTP and tests.

```py
from trellis.contrib.mail import EmailMessage, SMTPEmailBackend

mail = SMTPEmailBackend("smtp.example.com", 587, username="app", password="...",
                        use_starttls=True, from_email="Example <noreply@example.com>")
await mail.send(EmailMessage("ann@example.com", "Welcome", "Hello Ann!"))
```

- ``ConsoleEmailBackend`` (the default in development) prints each message to stdout;
  production's default is ``SMTPEmailBackend()``, the machine's own mail server;
- ``SMTPEmailBackend`` speaks SMTP with the standard library's ``smtplib``, in a worker thread
  so the event loop never waits on the network;
- ``MemoryEmailBackend`` keeps the messages in ``.outbox``, for tests.

Any object with ``async send(*messages) -> int`` is a backend (``EmailBackend``). A backend is
also a plugin: ``app.install(SMTPEmailBackend(...))`` sets ``app.state.email``, where batteries
(password reset e-mails) look for it.
"""

from __future__ import annotations

import email.message
import email.utils
import logging
import re
import smtplib
import ssl
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TextIO, runtime_checkable

import anyio.to_thread

if TYPE_CHECKING:
    from trellis.app import App

__all__ = [
    "DEFAULT_FROM_EMAIL",
    "ConsoleEmailBackend",
    "EmailBackend",
    "EmailMessage",
    "MemoryEmailBackend",
    "SMTPEmailBackend",
    "email_backend",
]

log = logging.getLogger("trellis.mail")

#: The sender when neither the message nor the backend names one.
DEFAULT_FROM_EMAIL = "webmaster@localhost"


# A header's name: printable ASCII but the colon (RFC 5322 field-name).
_HEADER_NAME = re.compile(r"[!-9;-~]+")


def _no_line_breaks(name: str, value: str) -> None:
    # A line break in a header is header injection (an extra Bcc:, a second body): refuse it
    # with a message, rather than the email package's generic error at send time. Every
    # break str.splitlines() knows counts (the email package refuses them all: \x0b, \x85,
    # \u2028 ...), not only CR and LF.
    if len(f"{value}x".splitlines()) > 1:
        raise ValueError(f"the {name} of an e-mail cannot contain line breaks: {value!r}")


@dataclass
class EmailMessage:
    """One e-mail: a plain-text body and, optionally, an HTML alternative.

    Args:
        to: The recipient, or a list of them (``"Ann <ann@example.com>"`` works too).
        subject: The subject line.
        text: The plain-text body (always sent: mail clients without HTML show it).
        html: An HTML version of the body, sent as a ``multipart/alternative`` part.
        from_email: The sender; defaults to the backend's ``from_email``.
        reply_to: Where replies go, if not to the sender.
        cc: Carbon-copy recipients.
        bcc: Blind-copy recipients (they receive the message; no header names them).
        headers: Extra headers (``{"X-Campaign": "welcome"}``).

    Raises:
        ValueError: A header value (subject, an address ...) contains a line break.
    """

    to: str | Sequence[str]
    subject: str
    text: str
    html: str | None = None
    from_email: str | None = None
    reply_to: str | None = None
    cc: Sequence[str] = ()
    bcc: Sequence[str] = ()
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.to, str):
            self.to = [self.to]
        else:
            self.to = list(self.to)
        self.cc = list(self.cc)
        self.bcc = list(self.bcc)
        _no_line_breaks("subject", self.subject)
        for address in (*self.to, *self.cc, *self.bcc):
            _no_line_breaks("address", address)
        for name, value in (("sender", self.from_email), ("reply-to", self.reply_to)):
            if value is not None:
                _no_line_breaks(name, value)
        for name, value in self.headers.items():
            if not _HEADER_NAME.fullmatch(name):
                # "Bcc: x@example.com, X-A" as a name would write a Bcc header of its own.
                raise ValueError(
                    f"{name!r} is not a header name: printable ASCII without spaces or ':'"
                )
            _no_line_breaks(f"header {name!r}", value)

    @property
    def recipients(self) -> list[str]:
        """Every address the message goes to: ``to``, ``cc`` and ``bcc``."""
        return [*self.to, *self.cc, *self.bcc]

    def to_mime(self, default_from: str = DEFAULT_FROM_EMAIL) -> email.message.EmailMessage:
        """The message as a standard-library ``email.message.EmailMessage``, ready to send."""
        mime = email.message.EmailMessage()
        mime["Subject"] = self.subject
        mime["From"] = self.from_email or default_from
        mime["To"] = ", ".join(self.to)
        if self.cc:
            mime["Cc"] = ", ".join(self.cc)
        if self.reply_to:
            mime["Reply-To"] = self.reply_to
        mime["Date"] = email.utils.formatdate(localtime=False, usegmt=True)
        mime["Message-ID"] = email.utils.make_msgid()
        for name, value in self.headers.items():
            mime[name] = value
        mime.set_content(self.text)
        if self.html is not None:
            mime.add_alternative(self.html, subtype="html")
        return mime


@runtime_checkable
class EmailBackend(Protocol):
    """What sends e-mail: one async method."""

    async def send(self, *messages: EmailMessage) -> int:
        """Send the messages; return how many were sent."""


class _Plugin:
    """``app.install(backend)`` makes the backend the app's (``app.state.email``)."""

    def setup(self, app: App) -> None:
        """Set ``app.state.email`` to this backend."""
        app.state.email = self


def email_backend(app: App) -> EmailBackend:
    """The app's e-mail backend: ``app.state.email`` if one is installed.

    Otherwise, in debug mode a ``ConsoleEmailBackend``; in production an ``SMTPEmailBackend``
    for the mail server of this machine (``localhost:25``), as other frameworks do: printing
    would put what e-mails carry (password reset links) into the logs.
    """
    backend = getattr(app.state, "email", None)
    if backend is None:
        backend = ConsoleEmailBackend() if app.debug else SMTPEmailBackend()
        app.state.email = backend
    return backend


class ConsoleEmailBackend(_Plugin):
    """Print every message (headers and body) instead of sending it: for development.

    Args:
        stream: Where to write; standard output by default.
        from_email: The sender of messages that name none.
    """

    def __init__(self, stream: TextIO | None = None, *, from_email: str | None = None) -> None:
        self.stream = stream
        self.from_email = from_email or DEFAULT_FROM_EMAIL
        self._lock = threading.Lock()

    async def send(self, *messages: EmailMessage) -> int:
        """Write the messages to the stream, separated by a line of dashes."""
        stream = self.stream if self.stream is not None else sys.stdout
        # PERF: a few kilobytes to a console; not worth a thread hop.
        with self._lock:
            for message in messages:
                stream.write(message.to_mime(self.from_email).as_string())
                stream.write("\n" + "-" * 79 + "\n")
            stream.flush()
        return len(messages)


class MemoryEmailBackend(_Plugin):
    """Keep every message in ``outbox`` instead of sending it: for tests.

    Args:
        from_email: The sender of messages that name none (set on them as they arrive).

    Example:
        ```py
        mail = MemoryEmailBackend()
        app.install(mail)
        ...  # code that sends
        assert mail.outbox[0].subject == "Reset your password"
        ```
    """

    def __init__(self, *, from_email: str | None = None) -> None:
        self.from_email = from_email or DEFAULT_FROM_EMAIL
        self.outbox: list[EmailMessage] = []

    async def send(self, *messages: EmailMessage) -> int:
        """Append the messages to ``outbox`` (their sender filled in)."""
        for message in messages:
            message.to_mime(self.from_email)  # refuse what a real backend would refuse
            if message.from_email is None:
                message.from_email = self.from_email
            self.outbox.append(message)
        return len(messages)

    def clear(self) -> None:
        """Empty the outbox."""
        self.outbox.clear()


class SMTPEmailBackend(_Plugin):
    """Send through an SMTP server, one connection per ``send`` call.

    ``smtplib`` blocks, so each ``send`` runs in a worker thread.

    Args:
        host: The server's host name.
        port: Its port; defaults to 465 with ``use_ssl``, 587 with ``use_starttls``, else 25.
        username: Log in with this user (after STARTTLS when that is on).
        password: The password for ``username``.
        use_starttls: Upgrade the connection to TLS with STARTTLS before anything else
            (port 587); the server's certificate is verified.
        use_ssl: Connect with TLS from the start (port 465).
        timeout: Seconds to wait for the server at each step.
        from_email: The sender of messages that name none.
        ssl_context: The TLS settings; defaults to ``ssl.create_default_context()``
            (certificates and host names verified).
        local_hostname: The name sent with ``EHLO``; defaults to this machine's FQDN.

    Raises:
        ValueError: ``use_starttls`` and ``use_ssl`` are both on.
        smtplib.SMTPException: (from ``send``) the server refused; ``OSError`` when it
            cannot be reached.
    """

    def __init__(
        self,
        host: str = "localhost",
        port: int | None = None,
        *,
        username: str | None = None,
        password: str | None = None,
        use_starttls: bool = False,
        use_ssl: bool = False,
        timeout: float = 10.0,
        from_email: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> None:
        if use_starttls and use_ssl:
            raise ValueError(
                "SMTPEmailBackend: use_starttls and use_ssl exclude each other; use_ssl for"
                " TLS from the start (port 465), use_starttls to upgrade (port 587)"
            )
        if port is None:
            port = 465 if use_ssl else 587 if use_starttls else 25
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.use_starttls = use_starttls
        self.use_ssl = use_ssl
        self.timeout = timeout
        self.from_email = from_email or DEFAULT_FROM_EMAIL
        self.ssl_context = ssl_context
        self.local_hostname = local_hostname

    def __repr__(self) -> str:
        return f"SMTPEmailBackend(host={self.host!r}, port={self.port!r})"

    async def send(self, *messages: EmailMessage) -> int:
        """Send the messages over one SMTP connection; return how many the server took."""
        if not messages:
            return 0
        mimes = [(m.to_mime(self.from_email), m.recipients) for m in messages]
        return await anyio.to_thread.run_sync(self._send_sync, mimes)

    def _connect(self) -> smtplib.SMTP:
        context = self.ssl_context
        if context is None and (self.use_ssl or self.use_starttls):
            context = ssl.create_default_context()
        connection: smtplib.SMTP
        if self.use_ssl:
            connection = smtplib.SMTP_SSL(
                self.host,
                self.port,
                local_hostname=self.local_hostname,
                timeout=self.timeout,
                context=context,
            )
        else:
            connection = smtplib.SMTP(
                self.host, self.port, local_hostname=self.local_hostname, timeout=self.timeout
            )
        try:
            if self.use_starttls:
                connection.starttls(context=context)
                connection.ehlo()
            if self.username is not None:
                connection.login(self.username, self.password or "")
        except BaseException:
            connection.close()
            raise
        return connection

    def _send_sync(self, mimes: list[tuple[email.message.EmailMessage, list[str]]]) -> int:
        connection = self._connect()
        sent = 0
        try:
            for mime, recipients in mimes:
                # Bcc never appears in a header; the envelope carries every recipient.
                connection.send_message(mime, to_addrs=recipients)
                sent += 1
        finally:
            try:
                connection.quit()
            except (smtplib.SMTPException, OSError):
                connection.close()
        log.debug("sent %d message(s) through %s:%s", sent, self.host, self.port)
        return sent
