"""What the client's transport tests share: one call on either path, and a loopback server that misbehaves.

The emulator serves the API's answers (and spoils their delivery on request); :class:`Loopback`
sends exactly the bytes a test scripts, for what no API would answer: oversize bodies, broken
chunking, a status line that is not HTTP, a TLS certificate nobody trusts.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

from airflow_provider_flink_vvp.api.operations import Credentials, Operation
from airflow_provider_flink_vvp.client import AsyncVVPClient, ClientSettings, VVPClient

PATHS = ("sync", "async")
Behaviour = Callable[[socket.socket], None]


@dataclass
class Outcome:
    """What one call gave: its result or its error, how long it took, and the pauses it asked for."""

    result: Any = None
    error: BaseException | None = None
    elapsed: float = 0.0
    sleeps: list[float] = field(default_factory=list)
    endpoint_pauses: list[float] = field(default_factory=list)


def settings(endpoint: str, **kwargs: Any) -> ClientSettings:
    values: dict[str, Any] = {
        "credentials": Credentials("transport-key", "transport-secret"),
        "timeout": 2.0,
        "retry_limit": 3,
        "retry_delay": 0.01,
    }
    return ClientSettings(endpoint=endpoint, **{**values, **kwargs})


def with_credentials(url: str, credentials: Credentials, **kwargs: Any) -> ClientSettings:
    """Settings carrying credentials their validation might refuse, as a caller that bypassed it would have them."""
    valid = settings(url, **kwargs)
    object.__setattr__(valid, "credentials", credentials)
    return valid


def refused_url() -> str:
    """A loopback URL whose port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def call(path: str, client_settings: ClientSettings, operation: Operation[Any], *, fake_sleep: bool = False) -> Outcome:
    """Make one call on the ``sync`` (requests) or the ``async`` (httpx, shared pool) path.

    :param fake_sleep: record the pauses between attempts (and, async, the shared endpoint's throttling
        pauses, in ``endpoint_pauses``) instead of sleeping them.
    """
    outcome = Outcome()
    started = time.monotonic()
    try:
        if path == "sync":
            client = VVPClient(client_settings)
            if fake_sleep:
                client.sleep = outcome.sleeps.append  # type: ignore[method-assign]
            try:
                outcome.result = client.call(operation)
            finally:
                client.close()
        else:
            outcome.result = asyncio.run(_async_call(client_settings, operation, outcome, fake_sleep))
    except Exception as error:
        outcome.error = error
    outcome.elapsed = time.monotonic() - started
    return outcome


async def _async_call(
    client_settings: ClientSettings, operation: Operation[Any], outcome: Outcome, fake_sleep: bool
) -> Any:
    client = AsyncVVPClient(client_settings)

    async def record(seconds: float) -> None:
        outcome.sleeps.append(seconds)

    async def record_pause(seconds: float) -> None:
        outcome.endpoint_pauses.append(seconds)

    if fake_sleep:
        client.sleep = record  # type: ignore[method-assign]
    try:
        # The shared endpoint looks asyncio.sleep up on each pause.
        with mock.patch.object(asyncio, "sleep", record_pause) if fake_sleep else contextlib.nullcontext():
            return await client.call(operation)
    finally:
        await client.aclose()


def answer(status: int, body: bytes = b"", *headers: str) -> bytes:
    """A whole HTTP/1.1 response that closes its connection."""
    head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class Loopback:
    """An HTTP server on 127.0.0.1 that answers the n-th request with ``script[n]`` (the last one repeats).

    A script item is the bytes to send, or a behaviour that gets the connection. Each connection
    carries one request.

    :param tls: serve TLS with this context.
    """

    def __init__(self, script: Sequence[bytes | Behaviour], *, tls: ssl.SSLContext | None = None) -> None:
        self.script = list(script)
        self.requests: list[bytes] = []
        self._tls = tls
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self._listener.getsockname()[1]}"
        self._closed = threading.Event()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._closed.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with contextlib.suppress(OSError), contextlib.closing(connection):
            connection.settimeout(10)
            if self._tls is not None:
                connection = self._tls.wrap_socket(connection, server_side=True)
            request = _read_request(connection)
            with self._lock:
                self.requests.append(request)
                step = self.script[min(len(self.requests), len(self.script)) - 1]
            if isinstance(step, bytes):
                connection.sendall(step)
            else:
                step(connection)


def _read_request(connection: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")),
        0,
    )
    while len(body) < length:
        body += connection.recv(65536)
    return head


@contextlib.contextmanager
def loopback(script: Sequence[bytes | Behaviour], *, tls: ssl.SSLContext | None = None) -> Iterator[Loopback]:
    server = Loopback(script, tls=tls)
    try:
        yield server
    finally:
        server.close()


def self_signed_tls(directory: Path) -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed certificate for 127.0.0.1, which no client trusts."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context
