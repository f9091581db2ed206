"""A small SMTP server on loopback that keeps what it receives, for the docs examples.

It speaks what ``SMTPEmailBackend`` needs and checks it as a real server would: STARTTLS with
a certificate of its own (made here, trusted through ``SSL_CERT_FILE``, so the client verifies
it as usual), ``AUTH PLAIN`` with one user name and password, and only after TLS, then
``MAIL``, ``RCPT`` and ``DATA``. The standard library's ``smtpd`` is gone from Python 3.12
and deprecated before that.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import ipaddress
import secrets
import socketserver
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from ssl import PROTOCOL_TLS_SERVER, SSLContext

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HOST = "127.0.0.1"


@dataclass
class Received:
    """One message: the envelope and the raw text (dot-stuffing undone)."""

    sender: str
    recipients: list[str]
    data: bytes


@dataclass
class SMTPSink:
    """Where the server is, who may send, and what it received."""

    host: str
    port: int
    username: str
    password: str
    certificate: Path
    messages: list[Received] = field(default_factory=list)


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def reply(self, *lines: str) -> None:
        self.wfile.write("".join(f"{line}\r\n" for line in lines).encode())

    def handle(self) -> None:
        sink = self.server.sink
        tls = authenticated = False
        sender, recipients = "", []
        self.reply("220 localhost ESMTP")
        while line := self.rfile.readline(1000):
            command = line.decode("ascii").rstrip("\r\n")
            verb, _, argument = command.partition(" ")
            verb = verb.upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250-localhost", "250 AUTH PLAIN" if tls else "250 STARTTLS")
            elif verb == "STARTTLS" and not tls:
                self.reply("220 go ahead")
                self.connection = self.server.context.wrap_socket(self.connection, server_side=True)
                self.rfile = self.connection.makefile("rb")
                self.wfile = self.connection.makefile("wb", buffering=0)
                tls = True
            elif verb == "AUTH" and tls:
                mechanism, _, response = argument.partition(" ")
                expected = f"\0{sink.username}\0{sink.password}".encode()
                authenticated = mechanism == "PLAIN" and base64.b64decode(response) == expected
                self.reply("235 welcome" if authenticated else "535 wrong credentials")
            elif verb == "MAIL" and authenticated:
                sender, recipients = argument.partition(":")[2].split()[0].strip("<>"), []
                self.reply("250 ok")
            elif verb == "RCPT" and sender:
                recipients.append(argument.partition(":")[2].strip().strip("<>"))
                self.reply("250 ok")
            elif verb == "DATA" and recipients:
                self.reply("354 end with .")
                data = b""
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data += chunk[1:] if chunk.startswith(b"..") else chunk
                sink.messages.append(Received(sender, recipients, data))
                sender, recipients = "", []
                self.reply("250 queued")
            elif verb in ("RSET", "NOOP"):
                self.reply("250 ok")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("503 not now" if verb in ("AUTH", "MAIL", "RCPT", "DATA") else "502 no")

    def finish(self) -> None:
        super().finish()
        if self.connection is not self.request:  # the TLS socket STARTTLS made
            self.connection.close()


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True

    def __init__(self, sink: SMTPSink, context: SSLContext) -> None:
        super().__init__((HOST, 0), _Handler)
        self.sink, self.context = sink, context


@contextlib.contextmanager
def smtp_sink(directory: Path) -> Iterator[SMTPSink]:
    """Serve on a free port of loopback until the block ends; its certificate in ``directory``."""
    certificate, key = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    self_signed(certificate, key)
    context = SSLContext(PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    sink = SMTPSink(HOST, 0, "app", secrets.token_urlsafe(16), certificate)
    with _Server(sink, context) as server:
        sink.port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, name="smtp sink", daemon=True)
        thread.start()
        try:
            yield sink
        finally:
            server.shutdown()
            thread.join()


def self_signed(certificate: Path, key_file: Path) -> None:
    """Write a certificate for ``localhost`` and 127.0.0.1, valid an hour, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    certificate.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
