"""Run webhooks against a real HTTP receiver on loopback: the signature verifies, failures are
retried, and no answer of DNS, redirect or URL takes a delivery to an address it may not reach.

Names other than IP literals are answered by a resolver stub (the `resolver` argument), since
tests reach loopback only: it lets one name answer differently on each lookup (DNS rebinding)
or answer a forbidden address, without any real DNS.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import hmac
import ipaddress
import ssl
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from agent_service.runs.webhooks import (
    HEADER_ID,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    WebhookRejected,
    check_webhook_url,
    deliver_run_webhook,
    refusal,
)
from agent_service.settings import Settings
from prometheus_client import REGISTRY

SECRET = "webhook-secret-0123456789"
RUN = {"run_id": "1ef0-run", "thread_id": "t-1", "status": "success", "values": {"n": 1}}


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A loopback HTTP server answering each path with the next status of its script."""

    host: str
    port: int = 0
    scripts: dict[str, list[int]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    delay_seconds: float = 0.0

    def serve(self, tls: ssl.SSLContext | None = None) -> ThreadingHTTPServer:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                receiver.received.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                script = receiver.scripts.get(self.path.split("?")[0], [])
                status = script.pop(0) if script else 200
                if receiver.delay_seconds:
                    threading.Event().wait(receiver.delay_seconds)
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("location", "/elsewhere")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer((self.host, self.port), Handler)
        if tls is not None:
            server.socket = tls.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver("127.0.0.1")
    server = found.serve()
    yield found
    server.shutdown()
    server.server_close()


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "webhook_allowed_hosts": "127.0.0.1,hooks.test",
        "webhook_allow_http": True,
        "webhook_allow_private_networks": True,
        "webhook_signing_secret": SECRET,
        "webhook_retry_initial_seconds": 0.01,
        "webhook_timeout_seconds": 2,
    }
    values.update(overrides)
    return Settings(**values)


def stub(*answers: Sequence[str]) -> Any:
    """A resolver answering its lists in turn (the last one again when they run out)."""
    calls: list[str] = []

    async def resolve(host: str, port: int) -> Sequence[str]:
        calls.append(host)
        return answers[min(len(calls), len(answers)) - 1]

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


def count(outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "agent_service_webhook_deliveries_total", {"outcome": outcome}
    )
    return value or 0.0


def deliver(url: str, config: Settings, **kwargs: Any) -> bool:
    return asyncio.run(deliver_run_webhook(url, RUN, config, **kwargs))


def test_the_delivery_is_signed_as_standard_webhooks_verifies(receiver: Receiver) -> None:
    before = count("delivered")
    url = f"http://127.0.0.1:{receiver.port}/hook?token=abc"
    assert deliver(url, settings()) is True
    (got,) = receiver.received
    assert got.path == "/hook?token=abc"
    assert got.headers["content-type"] == "application/json"
    message_id, timestamp = got.headers[HEADER_ID], got.headers[HEADER_TIMESTAMP]
    signed = f"{message_id}.{timestamp}.".encode() + got.body
    expected = base64.b64encode(hmac.new(SECRET.encode(), signed, hashlib.sha256).digest())
    assert got.headers[HEADER_SIGNATURE] == f"v1,{expected.decode()}"
    assert b'"run_id":"1ef0-run"' in got.body
    assert count("delivered") == before + 1


def test_a_whsec_secret_is_the_base64_key_of_the_standard_webhooks_libraries(
    receiver: Receiver,
) -> None:
    key = b"\x00\x01binary-key-material-32-bytes!!"
    secret = "whsec_" + base64.b64encode(key).decode()
    assert deliver(f"http://127.0.0.1:{receiver.port}/", settings(webhook_signing_secret=secret))
    (got,) = receiver.received
    signed = f"{got.headers[HEADER_ID]}.{got.headers[HEADER_TIMESTAMP]}.".encode() + got.body
    digest = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert got.headers[HEADER_SIGNATURE] == f"v1,{digest}"


def test_5xx_answers_are_retried_with_the_same_id_until_2xx(receiver: Receiver) -> None:
    receiver.scripts["/hook"] = [503, 500, 200]
    assert deliver(f"http://127.0.0.1:{receiver.port}/hook", settings()) is True
    assert len(receiver.received) == 3
    assert len({r.headers[HEADER_ID] for r in receiver.received}) == 1


def test_attempts_are_bounded_and_a_4xx_is_not_retried(receiver: Receiver) -> None:
    before = count("failed")
    receiver.scripts["/down"] = [502] * 10
    assert (
        deliver(f"http://127.0.0.1:{receiver.port}/down", settings(webhook_max_attempts=3)) is False
    )
    assert len(receiver.received) == 3
    assert count("failed") == before + 1
    receiver.received.clear()
    receiver.scripts["/gone"] = [404, 200]
    assert deliver(f"http://127.0.0.1:{receiver.port}/gone", settings()) is False
    assert len(receiver.received) == 1


def test_timeouts_and_refused_connections_are_retried_then_given_up(receiver: Receiver) -> None:
    receiver.delay_seconds = 1.0
    config = settings(webhook_timeout_seconds=0.2, webhook_max_attempts=2)
    assert deliver(f"http://127.0.0.1:{receiver.port}/slow", config) is False
    assert len(receiver.received) == 2
    # Nothing listens on port 9 of loopback: a connection error, retried, never raised.
    assert deliver("http://127.0.0.1:9/", settings(webhook_max_attempts=2)) is False


def test_a_redirect_is_never_followed(receiver: Receiver) -> None:
    before = count("redirect_refused")
    receiver.scripts["/moved"] = [302]
    assert deliver(f"http://127.0.0.1:{receiver.port}/moved", settings()) is False
    assert [r.path for r in receiver.received] == ["/moved"]
    assert count("redirect_refused") == before + 1


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",
        "10.1.2.3",
        "::1",
        "127.0.0.1",
        "fd00:ec2::254",
        "::ffff:169.254.169.254",
        "::ffff:10.0.0.1",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "64:ff9b::a9fe:a9fe",
    ],
)
def test_private_and_metadata_answers_are_refused_by_default(address: str) -> None:
    resolve = stub([address])
    before = count("refused")
    assert (
        deliver(
            "https://hooks.test/x", settings(webhook_allow_private_networks=False), resolver=resolve
        )
        is False
    )
    assert count("refused") == before + 1
    # An IP literal is refused already when the run is created.
    literal = f"[{address}]" if ":" in address else address
    config = settings(webhook_allowed_hosts=literal, webhook_allow_private_networks=False)
    with pytest.raises(WebhookRejected, match="refused"):
        check_webhook_url(f"https://{literal}/x", config)


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",
        "fd00:ec2::254",
        "fe80::1%eth0",
        # The metadata address inside IPv6: IPv4-translated (RFC 2765 SIIT) and the deprecated
        # IPv4-compatible form (RFC 4291 2.5.5.1), beside the mapped and NAT64 ones.
        "::ffff:0:a9fe:a9fe",
        "::a9fe:a9fe",
    ],
)
def test_the_metadata_service_stays_refused_when_private_networks_are_allowed(
    address: str,
) -> None:
    # Refused for its address, not for failing to connect (nothing listens there).
    why = refusal(ipaddress.ip_address(address.split("%", 1)[0]), settings())
    assert why is not None
    assert "link-local" in why
    assert deliver("https://hooks.test/", settings(), resolver=stub([address])) is False


def test_one_forbidden_answer_among_several_refuses_the_name(receiver: Receiver) -> None:
    resolve = stub(["127.0.0.1", "169.254.169.254"])
    assert deliver(f"http://hooks.test:{receiver.port}/", settings(), resolver=resolve) is False
    assert receiver.received == []


def test_dns_rebinding_cannot_move_the_connection() -> None:
    """The name answers the checked address first and another one afterwards: the request
    goes to the first, so a second lookup (the attacker's switch) never decides the target.
    Both are loopback addresses here (tests reach nothing else); the address checks that
    would refuse a rebinding target are the refusal tests above."""
    good, evil = Receiver("127.0.0.1"), Receiver("127.0.0.2")
    good_server = good.serve()
    evil.port = good.port
    evil_server = evil.serve()
    try:
        resolve = stub(["127.0.0.1"], ["127.0.0.2"])
        url = f"http://hooks.test:{good.port}/cb"
        assert deliver(url, settings(), resolver=resolve) is True
        assert [r.headers["host"] for r in good.received] == [f"hooks.test:{good.port}"]
        assert evil.received == []
        assert resolve.calls == ["hooks.test"]
    finally:
        for server in (good_server, evil_server):
            server.shutdown()
            server.server_close()


def _certificate(tmp_path: Path, name: str) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_https_to_the_pinned_address_verifies_the_certificate_of_the_name(
    tmp_path: Path,
) -> None:
    """The connection goes to the checked IP, yet TLS sends the name as SNI and verifies the
    certificate against it: a certificate for another name fails the delivery."""
    cert, key = _certificate(tmp_path, "hooks.test")
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    receiver = Receiver("127.0.0.1")
    server = receiver.serve(server_tls)
    trust = ssl.create_default_context(cafile=str(cert))
    try:
        config = settings(webhook_allow_http=False, webhook_allowed_hosts="hooks.test,other.test")
        url = f"https://hooks.test:{receiver.port}/tls"
        assert deliver(url, config, resolver=stub(["127.0.0.1"]), verify=trust) is True
        assert [r.path for r in receiver.received] == ["/tls"]
        wrong = f"https://other.test:{receiver.port}/tls"
        assert deliver(wrong, config, resolver=stub(["127.0.0.1"]), verify=trust) is False
        assert len(receiver.received) == 1
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("url", "overrides", "reason"),
    [
        ("https://hooks.test/", {"webhook_allowed_hosts": ""}, "WEBHOOK_ALLOWED_HOSTS is empty"),
        ("https://hooks.test/", {"webhook_signing_secret": None}, "WEBHOOK_SIGNING_SECRET"),
        ("https://evil.test/", {}, "not in WEBHOOK_ALLOWED_HOSTS"),
        ("https://hooks.test.evil.test/", {}, "not in WEBHOOK_ALLOWED_HOSTS"),
        ("http://hooks.test/", {"webhook_allow_http": False}, "must start with https://"),
        ("ftp://hooks.test/", {}, "must start with"),
        ("https://user:pw@hooks.test/", {}, "credentials"),
        ("https://hooks.test:99999/", {}, "not a valid URL"),
        ("not a url", {}, "must start with"),
        ("https://" + "a" * 3000, {}, "longer than"),
    ],
)
def test_a_url_the_service_will_not_call_is_rejected_saying_why(
    url: str, overrides: dict[str, Any], reason: str
) -> None:
    with pytest.raises(WebhookRejected, match=reason):
        check_webhook_url(url, settings(**overrides))


def test_allowed_hosts_match_names_and_subdomain_wildcards() -> None:
    config = settings(webhook_allowed_hosts="*.example.com, hooks.test", webhook_allow_http=False)
    assert (
        check_webhook_url("https://a.b.example.com/x?y=1", config)
        == "https://a.b.example.com/x?y=1"
    )
    assert check_webhook_url("https://HOOKS.test/", config)
    for refused in ("https://example.com/", "https://badexample.com/"):
        with pytest.raises(WebhookRejected):
            check_webhook_url(refused, config)


def test_no_log_line_carries_the_query_string_or_the_secret(
    receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    from agent_service.server.logging_setup import configure_logging

    configure_logging("DEBUG")
    try:
        receiver.scripts["/q"] = [500, 500]
        url = f"http://127.0.0.1:{receiver.port}/q?token=sekrit-token"
        assert deliver(url, settings(webhook_max_attempts=2)) is False
        assert deliver("https://evil.test/?token=sekrit-token", settings()) is False
    finally:
        configure_logging("WARNING")
    out = capsys.readouterr()
    logged = out.out + out.err
    assert "webhook not delivered" in logged
    assert "sekrit-token" not in logged
    assert SECRET not in logged


def test_addresses_are_judged_by_the_ipaddress_rules() -> None:
    """The refusal list agrees with the standard library's registry view of each address."""
    from agent_service.runs.webhooks import refusal

    strict = settings(webhook_allow_private_networks=False)
    assert refusal(ipaddress.ip_address("93.184.216.34"), strict) is None
    assert refusal(ipaddress.ip_address("2606:2800:220:1::1"), strict) is None
    assert refusal(ipaddress.ip_address("::ffff:93.184.216.34"), strict) is None
    assert refusal(ipaddress.ip_address("192.168.1.1"), strict) is not None


def test_an_answer_trickling_in_is_cut_at_the_attempts_timeout() -> None:
    """Headers sent a byte at a time, each within httpx's per-read timeout, would finish as a
    200 after ~3 s; the attempt as a whole is bounded, so the delivery fails instead."""
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()

    def trickle() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 30 + b"\r\n\r\n":
                if stop.wait(0.1):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        config = settings(webhook_timeout_seconds=0.5, webhook_max_attempts=1)
        assert deliver(f"http://127.0.0.1:{port}/", config) is False
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def test_a_2xx_counts_without_reading_the_answers_body(receiver: Receiver) -> None:
    """The body of the answer is never read: a receiver announcing a large body it never
    sends does not hold the delivery."""
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def announce() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\npartial")
            threading.Event().wait(3)

    thread = threading.Thread(target=announce, daemon=True)
    thread.start()
    try:
        config = settings(webhook_timeout_seconds=1, webhook_max_attempts=1)
        assert deliver(f"http://127.0.0.1:{port}/", config) is True
    finally:
        listener.close()


def test_a_rotated_secret_file_signs_the_next_delivery(
    receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the secret file was the setting's source, it is read again: a Secret rotated
    under the pod signs the next webhook without a restart. A value from elsewhere (an
    environment variable wins over the file) is never replaced by the file."""
    monkeypatch.setattr("agent_service.core.credentials.READ_INTERVAL_SECONDS", 0)
    secret_file = tmp_path / "webhook_signing_secret"
    secret_file.write_text(SECRET + "\n")
    config = settings(secrets_dir=tmp_path)
    rotated = "rotated-secret-abcdefghijkl"
    url = f"http://127.0.0.1:{receiver.port}/"

    def key_of(got: Received) -> str:
        signed = f"{got.headers[HEADER_ID]}.{got.headers[HEADER_TIMESTAMP]}.".encode() + got.body
        for key in (SECRET, rotated):
            digest = base64.b64encode(hmac.new(key.encode(), signed, hashlib.sha256).digest())
            if got.headers[HEADER_SIGNATURE] == f"v1,{digest.decode()}":
                return key
        raise AssertionError("signed with neither key")

    assert deliver(url, config)
    secret_file.write_text(rotated)
    assert deliver(url, config)
    secret_file.write_text("short")  # not a usable secret: the start-up one signs
    assert deliver(url, config)
    # Set from elsewhere at start (the file differed): the file is not its source.
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    (other_dir / "webhook_signing_secret").write_text("from-the-file-0123456789")
    assert deliver(url, settings(secrets_dir=other_dir))
    assert [key_of(r) for r in receiver.received] == [SECRET, rotated, SECRET, SECRET]
