"""E-mail: messages, the console and memory backends, and SMTP against a real SMTP server.

The SMTP server is a small asyncio responder written here (EHLO, STARTTLS, AUTH PLAIN/LOGIN,
MAIL, RCPT, DATA, RSET, QUIT); ``SMTPEmailBackend`` talks to it with ``smtplib`` from a worker
thread, over loopback TCP, plain, upgraded with STARTTLS, and TLS from the start.
"""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import io
import smtplib
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from smtp_sink import self_signed
from trellis import App
from trellis.contrib.mail import (
    ConsoleEmailBackend,
    EmailBackend,
    EmailMessage,
    MemoryEmailBackend,
    SMTPEmailBackend,
    email_backend,
)

# -- messages ------------------------------------------------------------------------------


def test_message_to_mime() -> None:
    message = EmailMessage(
        "ann@example.com",
        "Hello",
        "Plain body é",
        html="<p>HTML body</p>",
        from_email="Site <site@example.com>",
        reply_to="help@example.com",
        cc=["cc@example.com"],
        bcc=["hidden@example.com"],
        headers={"X-Campaign": "welcome"},
    )
    assert message.to == ["ann@example.com"]
    assert message.recipients == ["ann@example.com", "cc@example.com", "hidden@example.com"]
    mime = message.to_mime()
    assert mime["Subject"] == "Hello"
    assert mime["From"] == "Site <site@example.com>"
    assert mime["To"] == "ann@example.com"
    assert mime["Cc"] == "cc@example.com"
    assert mime["Reply-To"] == "help@example.com"
    assert mime["X-Campaign"] == "welcome"
    assert mime["Bcc"] is None  # never in a header
    assert mime["Message-ID"] and mime["Date"]
    assert mime.get_content_type() == "multipart/alternative"
    text, html = mime.iter_parts()
    assert text.get_content().strip() == "Plain body é"
    assert html.get_content_type() == "text/html"


def test_message_without_html_is_plain_text_and_takes_the_default_sender() -> None:
    mime = EmailMessage(["a@example.com", "b@example.com"], "Hi", "Body").to_mime("me@example.com")
    assert mime.get_content_type() == "text/plain"
    assert mime["To"] == "a@example.com, b@example.com"
    assert mime["From"] == "me@example.com"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"subject": "Hi\r\nBcc: victim@example.com"},
        {"subject": "Hi\nthere"},
        {"to": "ann@example.com\r\nBcc: victim@example.com"},
        {"cc": ["x@example.com\n"]},
        {"bcc": ["x@example.com\r"]},
        {"from_email": "me@example.com\nBcc: x"},
        {"reply_to": "x\r\n"},
        {"headers": {"X-A": "b\r\nBcc: x"}},
        {"subject": "Hi\u2028there"},
        {"subject": "Hi\x0bthere"},
        {"to": "ann@example.com\x85"},
    ],
)
def test_header_injection_is_refused(kwargs: dict[str, object]) -> None:
    values: dict[str, object] = {"to": "ann@example.com", "subject": "Hi", "text": "Body"}
    values.update(kwargs)
    with pytest.raises(ValueError, match="line breaks"):
        EmailMessage(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["Bcc: victim@example.com, X-A", "X A", "X-A\r\nBcc", "", "Ä"])
def test_header_names_are_checked(name: str) -> None:
    with pytest.raises(ValueError, match="is not a header name"):
        EmailMessage("ann@example.com", "Hi", "Body", headers={name: "x"})
    assert EmailMessage("a@example.com", "Hi", "Body", headers={"X-Campaign": "welcome"})


# -- console and memory ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_console_backend_writes_the_message() -> None:
    out = io.StringIO()
    backend = ConsoleEmailBackend(out, from_email="site@example.com")
    sent = await backend.send(
        EmailMessage("ann@example.com", "First", "One"),
        EmailMessage("bob@example.com", "Second", "Two", html="<b>Two</b>"),
    )
    assert sent == 2
    text = out.getvalue()
    assert "Subject: First" in text and "To: ann@example.com" in text
    assert "From: site@example.com" in text
    assert "Subject: Second" in text and "<b>Two</b>" in text
    assert text.count("-" * 79) == 2


@pytest.mark.anyio
async def test_console_backend_defaults_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    await ConsoleEmailBackend().send(EmailMessage("ann@example.com", "Hi", "Body text"))
    captured = capsys.readouterr().out
    assert "Subject: Hi" in captured and "Body text" in captured


@pytest.mark.anyio
async def test_memory_backend_keeps_an_outbox() -> None:
    backend = MemoryEmailBackend(from_email="site@example.com")
    assert isinstance(backend, EmailBackend)
    message = EmailMessage("ann@example.com", "Hi", "Body")
    assert await backend.send(message) == 1
    assert backend.outbox == [message]
    assert backend.outbox[0].from_email == "site@example.com"
    backend.clear()
    assert backend.outbox == []


def test_backends_are_plugins() -> None:
    app = App(debug=True)
    assert isinstance(email_backend(app), ConsoleEmailBackend)  # the default in development
    # production never prints what e-mails carry: the machine's mail server by default
    production = email_backend(App(debug=False, secret_key="k3Jx9-Q2vLr8TzWm5NpYd4HsBcF7gUaE"))
    assert isinstance(production, SMTPEmailBackend)
    assert (production.host, production.port) == ("localhost", 25)
    memory = MemoryEmailBackend()
    other = App(debug=True)
    assert other.install(memory) is memory
    assert email_backend(other) is memory
    assert other.state.email is memory


def test_smtp_options() -> None:
    assert SMTPEmailBackend().port == 25
    assert SMTPEmailBackend(use_starttls=True).port == 587
    assert SMTPEmailBackend(use_ssl=True).port == 465
    assert SMTPEmailBackend("mx", 2525).port == 2525
    assert repr(SMTPEmailBackend("mx", 2525)) == "SMTPEmailBackend(host='mx', port=2525)"
    with pytest.raises(ValueError, match="exclude each other"):
        SMTPEmailBackend(use_ssl=True, use_starttls=True)


# -- a real SMTP server ----------------------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_to: list[str]
    data: bytes
    tls: bool
    user: str | None

    def message(self) -> email.message.EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, email.message.EmailMessage)
        return parsed


@dataclass
class SMTPServer:
    """A small SMTP server: enough of RFC 5321 for smtplib, and a transcript of the talk."""

    users: dict[str, str] = field(default_factory=dict)
    starttls: ssl.SSLContext | None = None
    refuse: set[str] = field(default_factory=set)
    received: list[Received] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tls = writer.get_extra_info("ssl_object") is not None
        user: str | None = None
        mail_from: str | None = None
        rcpt: list[str] = []

        async def reply(*lines: str) -> None:
            for i, line in enumerate(lines):
                sep = " " if i == len(lines) - 1 else "-"
                writer.write(f"{line[:3]}{sep}{line[4:]}\r\n".encode())
            await writer.drain()

        await reply("220 test.example ESMTP ready")
        try:
            while line := await reader.readline():
                command = line.decode().rstrip("\r\n")
                verb = command.split(" ", 1)[0].upper()
                self.commands.append(verb)
                if verb == "EHLO":
                    features = ["250 test.example"]
                    if self.starttls is not None and not tls:
                        features.append("250 STARTTLS")
                    if self.users:
                        features.append("250 AUTH PLAIN LOGIN")
                    features.append("250 8BITMIME")
                    await reply(*features)
                elif verb == "HELO":
                    await reply("250 test.example")
                elif verb == "STARTTLS" and self.starttls is not None and not tls:
                    await reply("220 go ahead")
                    try:
                        await writer.start_tls(self.starttls)
                    except (ssl.SSLError, ConnectionError):
                        return  # the client refused our certificate
                    tls = True
                    user, mail_from, rcpt = None, None, []
                elif verb == "AUTH":
                    parts = command.split()
                    if parts[1].upper() == "PLAIN":
                        if len(parts) > 2:
                            blob = parts[2]
                        else:
                            await reply("334 ")
                            blob = (await reader.readline()).decode().strip()
                        _, name, password = base64.b64decode(blob).decode().split("\0")
                    else:  # LOGIN
                        await reply("334 " + base64.b64encode(b"Username:").decode())
                        name = base64.b64decode(await reader.readline()).decode()
                        await reply("334 " + base64.b64encode(b"Password:").decode())
                        password = base64.b64decode(await reader.readline()).decode()
                    if self.users.get(name) == password:
                        user = name
                        await reply("235 authenticated")
                    else:
                        await reply("535 authentication failed")
                elif verb == "MAIL":
                    if self.users and user is None:
                        await reply("530 authentication required")
                        continue
                    mail_from = command.split(":", 1)[1].split()[0].strip("<>")
                    rcpt = []
                    await reply("250 ok")
                elif verb == "RCPT":
                    address = command.split(":", 1)[1].strip().strip("<>")
                    if address in self.refuse:
                        await reply("550 no such user")
                    else:
                        rcpt.append(address)
                        await reply("250 ok")
                elif verb == "DATA":
                    await reply("354 end with <CRLF>.<CRLF>")
                    chunks = []
                    while (chunk := await reader.readline()) != b".\r\n":
                        chunks.append(chunk[1:] if chunk.startswith(b"..") else chunk)
                    assert mail_from is not None
                    self.received.append(Received(mail_from, rcpt, b"".join(chunks), tls, user))
                    await reply("250 queued")
                elif verb == "RSET":
                    mail_from, rcpt = None, []
                    await reply("250 ok")
                elif verb == "NOOP":
                    await reply("250 ok")
                elif verb == "QUIT":
                    await reply("221 bye")
                    break
                else:
                    await reply("502 not implemented")
        finally:
            writer.close()


@dataclass
class Certificate:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    self_signed(cert_path, key_path)
    return Certificate(cert_path, key_path)


async def _serve(server: SMTPServer, tls: ssl.SSLContext | None = None) -> asyncio.Server:
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0, ssl=tls)
    server.port = listener.sockets[0].getsockname()[1]
    return listener


@pytest.fixture
async def smtp() -> AsyncIterator[SMTPServer]:
    server = SMTPServer()
    listener = await _serve(server)
    async with listener:
        yield server


@pytest.mark.anyio
async def test_smtp_conversation(smtp: SMTPServer) -> None:
    backend = SMTPEmailBackend("127.0.0.1", smtp.port, from_email="site@example.com", timeout=5)
    sent = await backend.send(
        EmailMessage(
            "ann@example.com",
            "Reset your password",
            "Open the link\n.\nto go on",  # a lone dot: must be escaped on the wire
            html="<p>Open the link</p>",
            bcc=["audit@example.com"],
        ),
        EmailMessage("bob@example.com", "Second", "Two", from_email="other@example.com"),
    )
    assert sent == 2
    first, second = smtp.received
    assert first.mail_from == "site@example.com"
    assert first.rcpt_to == ["ann@example.com", "audit@example.com"]  # Bcc in the envelope
    message = first.message()
    assert message["Subject"] == "Reset your password"
    assert message["To"] == "ann@example.com"
    assert message["Bcc"] is None
    text, html = message.iter_parts()
    assert text.get_content().replace("\r\n", "\n") == "Open the link\n.\nto go on\n"
    assert "<p>Open the link</p>" in html.get_content()
    assert second.mail_from == "other@example.com" and second.rcpt_to == ["bob@example.com"]
    # one connection for both, closed politely
    assert smtp.commands.count("EHLO") == 1 and smtp.commands[-1] == "QUIT"
    assert not first.tls


@pytest.mark.anyio
async def test_smtp_login() -> None:
    server = SMTPServer(users={"app": "s3cret"})
    async with await _serve(server):
        backend = SMTPEmailBackend("127.0.0.1", server.port, username="app", password="s3cret")
        assert await backend.send(EmailMessage("ann@example.com", "Hi", "Body")) == 1
        assert server.received[0].user == "app"

        wrong = SMTPEmailBackend("127.0.0.1", server.port, username="app", password="nope")
        with pytest.raises(smtplib.SMTPAuthenticationError):
            await wrong.send(EmailMessage("ann@example.com", "Hi", "Body"))
        assert len(server.received) == 1


@pytest.mark.anyio
async def test_smtp_starttls(certificate: Certificate) -> None:
    server = SMTPServer(users={"app": "pw"}, starttls=certificate.server_context())
    async with await _serve(server):
        backend = SMTPEmailBackend(
            "127.0.0.1",
            server.port,
            username="app",
            password="pw",
            use_starttls=True,
            ssl_context=certificate.client_context(),
        )
        assert await backend.send(EmailMessage("ann@example.com", "Hi", "Body")) == 1
    received = server.received[0]
    assert received.tls and received.user == "app"
    # the login happened after the upgrade: EHLO, STARTTLS, EHLO, AUTH
    assert server.commands[:4] == ["EHLO", "STARTTLS", "EHLO", "AUTH"]


@pytest.mark.anyio
async def test_smtp_starttls_verifies_the_certificate(certificate: Certificate) -> None:
    server = SMTPServer(starttls=certificate.server_context())
    async with await _serve(server):
        backend = SMTPEmailBackend("127.0.0.1", server.port, use_starttls=True)  # system CAs
        with pytest.raises(ssl.SSLCertVerificationError):
            await backend.send(EmailMessage("ann@example.com", "Hi", "Body"))
    assert server.received == []


@pytest.mark.anyio
async def test_smtp_over_tls(certificate: Certificate) -> None:
    server = SMTPServer()
    async with await _serve(server, tls=certificate.server_context()):
        backend = SMTPEmailBackend(
            "127.0.0.1", server.port, use_ssl=True, ssl_context=certificate.client_context()
        )
        assert await backend.send(EmailMessage("ann@example.com", "Hi", "Body")) == 1
    assert server.received[0].tls


@pytest.mark.anyio
async def test_smtp_refused_recipient(smtp: SMTPServer) -> None:
    smtp.refuse.add("nobody@example.com")
    backend = SMTPEmailBackend("127.0.0.1", smtp.port)
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        await backend.send(EmailMessage("nobody@example.com", "Hi", "Body"))
    assert smtp.received == []
    assert smtp.commands[-1] == "QUIT"  # the connection is still closed politely


@pytest.mark.anyio
async def test_smtp_unreachable() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    backend = SMTPEmailBackend("127.0.0.1", port, timeout=2)
    with pytest.raises(OSError):
        await backend.send(EmailMessage("ann@example.com", "Hi", "Body"))


@pytest.mark.anyio
async def test_smtp_send_nothing_connects_to_nothing() -> None:
    assert await SMTPEmailBackend("127.0.0.1", 1).send() == 0


@pytest.mark.anyio
async def test_smtp_does_not_block_the_event_loop(smtp: SMTPServer) -> None:
    # The server runs on this loop: a blocking client would deadlock it.
    backend = SMTPEmailBackend("127.0.0.1", smtp.port, timeout=5)
    results = await asyncio.gather(
        *(backend.send(EmailMessage(f"u{i}@example.com", "Hi", "Body")) for i in range(5))
    )
    assert results == [1] * 5
    assert sorted(r.rcpt_to[0] for r in smtp.received) == [f"u{i}@example.com" for i in range(5)]
