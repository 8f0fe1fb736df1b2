"""A real IMAP server for the tests of the mailbox job: Debian's Dovecot (``dovecot-imapd``, installed by
``.ci/run`` as nginx is), started in the foreground with a configuration of its own in a temporary folder,
on free local ports — IMAP (clear, and STARTTLS) and IMAPS — with a self-signed certificate for 127.0.0.1.
Each test takes a user of its own and delivers messages to that user's INBOX by IMAP APPEND."""

from __future__ import annotations

import datetime as dt
import imaplib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.hosting import free_port

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USERS = 200  # mailboxes, one per test


def dovecot_missing() -> str | None:
    """Why no Dovecot can be started here (None when it can)."""
    if not Path(DOVECOT).is_file():
        return "Dovecot is not installed (Debian's dovecot-imapd; .ci/run installs it)"
    return None


def _certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
                   .not_valid_after(now + dt.timedelta(days=2))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ip_address("127.0.0.1")),
                                                               x509.DNSName("localhost")]), critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)
    return cert_file, key_file


@dataclass
class ImapServer:
    """A running Dovecot: its IMAP port (clear or STARTTLS), its IMAPS port and the certificate to trust."""

    directory: Path
    port: int
    tls_port: int
    cert_file: Path
    passwords: dict[str, str]
    unused: list[str] = field(default_factory=list)

    def add_user(self) -> str:
        """A mailbox user no test has used yet. The users are written before Dovecot starts: it rereads its
        password file when the file's time changes, which two tests a second apart would not show."""
        name = self.unused.pop(0)
        return name

    @contextmanager
    def client(self, user: str) -> Iterator[imaplib.IMAP4]:
        """A logged-in connection as ``user`` with the INBOX selected."""
        connection = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        try:
            connection.login(user, self.passwords[user])
            connection.select("INBOX")
            yield connection
        finally:
            connection.logout()

    def deliver(self, user: str, raw: bytes) -> None:
        """Put ``raw`` into ``user``'s INBOX, unread."""
        with self.client(user) as connection:
            kind, _ = connection.append("INBOX", None, None, raw)
            assert kind == "OK"

    def unseen(self, user: str) -> int:
        """How many messages of ``user``'s INBOX are unread."""
        with self.client(user) as connection:
            kind, data = connection.search(None, "UNSEEN")
            assert kind == "OK"
            return len((data[0] or b"").split())


def _wait_for(port: int, process: subprocess.Popen[bytes], log: Path, *, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, f"Dovecot exited: {log.read_text() if log.exists() else ''}"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            assert time.monotonic() < deadline, f"Dovecot did not listen on {port} in {timeout:g} s"
            time.sleep(0.1)  # poll the port again


@contextmanager
def running_imap_server() -> Iterator[ImapServer]:
    """Dovecot in the foreground on free local ports, its state in a folder of its own; stopped at the end.

    Not under pytest's temporary folder: that one is private to root (0700), and Dovecot's authentication
    and mail processes run as their own users."""
    directory = Path(tempfile.mkdtemp(prefix="kestrel-dovecot-"))
    directory.chmod(0o755)
    try:
        with _dovecot(directory) as server:
            yield server
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def _dovecot(directory: Path) -> Iterator[ImapServer]:
    for name in ("run", "state", "home"):
        (directory / name).mkdir(parents=True, exist_ok=True)
    (directory / "home").chmod(0o777)  # the mail user (nobody) makes its Maildir there
    passwords = {f"support{number}": f"secret{number}" for number in range(USERS)}
    (directory / "users").write_text("".join(f"{user}:{{PLAIN}}{secret}\n" for user, secret in passwords.items()))
    cert_file, key_file = _certificate(directory)
    port, tls_port = free_port(), free_port()
    log = directory / "dovecot.log"
    config = directory / "dovecot.conf"
    config.write_text(f"""base_dir = {directory}/run
state_dir = {directory}/state
log_path = {log}
instance_name = kestrel-test-{port}
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{cert_file}
ssl_key = <{key_file}
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {directory}/users
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={directory}/home/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
""")
    process = subprocess.Popen([DOVECOT, "-F", "-c", str(config)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.STDOUT)
    try:
        _wait_for(port, process, log)
        _wait_for(tls_port, process, log)
        yield ImapServer(directory, port, tls_port, cert_file, passwords, list(passwords))
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
