"""Run-completion webhooks: a signed POST of the finished run to a URL the client named.

LangGraph's server POSTs the run to the `webhook` of a run or a cron when the run completes
(https://langchain-ai.github.io/langgraph/cloud/concepts/webhooks). A URL chosen by a client is
a server-side request forgery waiting to happen, so here:

- the host must be on WEBHOOK_ALLOWED_HOSTS (empty: every webhook is refused), and the scheme
  https unless WEBHOOK_ALLOW_HTTP;
- at delivery the name is resolved once and every address it answers is checked: private,
  loopback, shared (CGNAT), reserved, multicast, unspecified and IPv4-mapped/-translated forms
  of those are refused unless WEBHOOK_ALLOW_PRIVATE_NETWORKS; link-local addresses (169.254/16
  holds the EC2 / EKS instance metadata service, fd00:ec2::254 its IPv6 form,
  https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-retrieval.html) are
  refused always;
- the connection goes to the address that was checked (the URL's host replaced by it, the
  name kept in the Host header and as TLS SNI / certificate name through httpcore's
  `sni_hostname` request extension), so a second DNS answer (rebinding) cannot move it;
  no proxy from the environment, no redirect followed;
- the body is signed as Standard Webhooks specifies (https://www.standardwebhooks.com/verify):
  `webhook-signature: v1,<base64 HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>")>`
  with the key WEBHOOK_SIGNING_SECRET (its UTF-8 bytes, or the decoded base64 after a
  `whsec_` prefix, so the Standard Webhooks libraries verify it);
- 5xx answers, 429, timeouts and connection errors are retried with exponential backoff and
  full jitter, within WEBHOOK_MAX_ATTEMPTS and WEBHOOK_MAX_SECONDS; the webhook-id stays the
  same across attempts so the receiver can drop duplicates.

A log line names the URL's scheme, host and path only: a query string often carries a token.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import json
import random
import socket
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

import httpx
import structlog

from agent_service.core.credentials import RotatingSecret
from agent_service.core.serialization import to_jsonable
from agent_service.metrics import WEBHOOK_DELIVERIES
from agent_service.settings import MIN_API_KEY_LENGTH as MIN_SECRET_CHARS
from agent_service.settings import Settings

log = structlog.get_logger(__name__)

HEADER_ID = "webhook-id"
HEADER_TIMESTAMP = "webhook-timestamp"
HEADER_SIGNATURE = "webhook-signature"
SIGNATURE_VERSION = "v1"
MAX_URL_CHARS = 2048

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) -> the addresses the name resolves to.
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

# Never a webhook target, whatever the settings: the instance metadata service and its kin.
_ALWAYS_REFUSED = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::254/128"),
)
# RFC 6052 NAT64 (the well-known prefix and the local-use one): a v6 address carrying a v4 one.
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
# More v6 forms whose low 32 bits are a v4 address: IPv4-translated (RFC 2765 SIIT,
# ::ffff:0:a.b.c.d) and the deprecated IPv4-compatible form (RFC 4291 2.5.5.1, ::a.b.c.d; :: and
# ::1 are not v4 addresses and are told apart by the checks themselves).
# Never a reachable public target either: their v4 is checked first (its refusal is told),
# then the v6 checks refuse them as reserved.
_V4_TRANSLATED = (ipaddress.ip_network("::ffff:0:0:0/96"), ipaddress.ip_network("::/96"))


class WebhookRejected(ValueError):
    """A webhook URL the service will not call; the message says why (the API answers 422)."""


def _embedded_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in net for net in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refusal(address: IPAddress, settings: Settings) -> str | None:
    """Why `address` may not be a webhook target, or None when it may."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_v4(address)
        if inner is not None:
            why = refusal(inner, settings)
            return None if why is None else f"{why} (inside {address})"
        if int(address) > 1 and any(address in net for net in _V4_TRANSLATED):
            why = refusal(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), settings)
            if why is not None:
                return f"{why} (inside {address})"
    if any(address in net for net in _ALWAYS_REFUSED):
        return f"{address} is link-local (the cloud metadata service lives there)"
    if address.is_multicast:
        return f"{address} is a multicast address"
    if address.is_unspecified:
        return f"{address} is the unspecified address"
    if address.is_global and not address.is_reserved:
        return None
    if settings.webhook_allow_private_networks:
        return None
    kind = "loopback" if address.is_loopback else "private or reserved"
    return f"{address} is a {kind} address (WEBHOOK_ALLOW_PRIVATE_NETWORKS is off)"


def _host_allowed(host: str, allowed: Sequence[str]) -> bool:
    for pattern in allowed:
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                return True
        elif host == pattern.strip("[]"):
            return True
    return False


def _parse(url: str, settings: Settings) -> SplitResult:
    if len(url) > MAX_URL_CHARS:
        raise WebhookRejected(f"webhook URL is longer than {MAX_URL_CHARS} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WebhookRejected(f"webhook is not a valid URL: {exc}") from None
    schemes = ("https", "http") if settings.webhook_allow_http else ("https",)
    if parts.scheme not in schemes:
        prefixes = " or ".join(f"{s}://" for s in schemes)
        raise WebhookRejected(f"webhook URL must start with {prefixes}")
    if parts.username is not None or parts.password is not None:
        raise WebhookRejected("webhook URL must not carry credentials before the host")
    host = (parts.hostname or "").lower()
    if not host:
        raise WebhookRejected("webhook URL has no host")
    if port == 0:
        raise WebhookRejected("webhook URL has port 0")
    allowed = settings.webhook_host_list
    if not allowed:
        raise WebhookRejected(
            "webhooks are disabled on this server (WEBHOOK_ALLOWED_HOSTS is empty)"
        )
    if settings.webhook_signing_secret is None:
        raise WebhookRejected("webhooks are disabled on this server (no WEBHOOK_SIGNING_SECRET)")
    if not _host_allowed(host, allowed):
        raise WebhookRejected(f"webhook host {host[:253]!r} is not in WEBHOOK_ALLOWED_HOSTS")
    return parts


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def check_webhook_url(url: str, settings: Settings) -> str:
    """The URL when the service will call it; raises WebhookRejected saying why not.

    At run creation: names are not resolved here (the answer may change before delivery,
    which checks the addresses again), IP literals are checked at once."""
    parts = _parse(url, settings)
    literal = _literal((parts.hostname or "").lower())
    if literal is not None:
        why = refusal(literal, settings)
        if why is not None:
            raise WebhookRejected(f"webhook target refused: {why}")
    return url


async def system_resolver(host: str, port: int) -> Sequence[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return [str(info[4][0]) for info in infos]


async def _pinned_address(host: str, port: int, settings: Settings, resolve: Resolver) -> str:
    """The one address to connect to, after checking every address the name has."""
    literal = _literal(host)
    if literal is not None:
        answers: Sequence[str] = [str(literal)]
    else:
        try:
            answers = await resolve(host, port)
        except OSError as exc:
            raise WebhookRejected(f"webhook host does not resolve: {exc.strerror or exc}") from None
    if not answers:
        raise WebhookRejected("webhook host resolves to no address")
    addresses: list[IPAddress] = []
    for answer in answers:
        # getaddrinfo may answer "fe80::1%eth0"; the zone never makes an address acceptable.
        address = ipaddress.ip_address(answer.split("%", 1)[0])
        why = refusal(address, settings)
        if why is not None:
            # One bad answer refuses the name: a resolver mixing answers is an attack.
            raise WebhookRejected(f"webhook target refused: {why}")
        addresses.append(address)
    return str(addresses[0])


SECRET_SETTING = "webhook_signing_secret"  # noqa: S105 - the setting's name


# One per Settings object (the process has one; tests make many), kept with it so that its id
# is not reused while the entry lives.
_SECRETS: dict[int, tuple[Settings, RotatingSecret]] = {}


def current_secret(settings: Settings) -> str:
    """WEBHOOK_SIGNING_SECRET as it is now: when its secret file was its source, the file is
    read again (a rotated Secret reaches the pod's file without a restart, as
    `core.credentials` explains); a file gone or too short keeps the value read at start."""
    assert settings.webhook_signing_secret is not None  # _parse refused otherwise
    loaded = settings.webhook_signing_secret.get_secret_value()
    entry = _SECRETS.get(id(settings))
    if entry is None or entry[0] is not settings:
        entry = (settings, RotatingSecret(settings, SECRET_SETTING))
        _SECRETS[id(settings)] = entry
    now = entry[1].current()
    return now if now is not None and len(now) >= MIN_SECRET_CHARS else loaded


def _signing_key(settings: Settings) -> bytes:
    secret = current_secret(settings)
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except ValueError:
            pass
    return secret.encode()


def sign(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value of one delivery."""
    content = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def _safe_url(parts: SplitResult) -> str:
    """The URL without its query, fragment or credentials: what a log line may name."""
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _retry_delay(attempt: int, settings: Settings) -> float:
    """Exponential backoff with full jitter (attempt counts from 1)."""
    ceiling = settings.webhook_retry_initial_seconds * 2 ** (attempt - 1)
    return random.uniform(0, ceiling)  # noqa: S311 - jitter, not a secret


def _record(outcome: str, parts: SplitResult | None, **fields: Any) -> None:
    WEBHOOK_DELIVERIES.labels(outcome=outcome).inc()
    target = None if parts is None else _safe_url(parts)
    if outcome == "delivered":
        log.info("webhook delivered", webhook=target, **fields)
    else:
        log.warning("webhook not delivered", outcome=outcome, webhook=target, **fields)


async def deliver_run_webhook(
    url: str,
    run: Mapping[str, Any],
    settings: Settings,
    *,
    resolver: Resolver | None = None,
    verify: ssl.SSLContext | None = None,
) -> bool:
    """POST the run to `url`, signed; True when the receiver answered 2xx. Never raises.

    `resolver` replaces the system's DNS lookup and `verify` the system's trust store (tests
    with a receiver of their own)."""
    parts: SplitResult | None = None
    try:
        parts = _parse(url, settings)
        return await _deliver(parts, run, settings, resolver or system_resolver, verify)
    except WebhookRejected as exc:
        _record("refused", parts, reason=str(exc))
        return False
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        _record("error", parts, error=type(exc).__name__)
        return False


async def _deliver(
    parts: SplitResult,
    run: Mapping[str, Any],
    settings: Settings,
    resolve: Resolver,
    verify: ssl.SSLContext | None,
) -> bool:
    host = (parts.hostname or "").lower()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    body = json.dumps(to_jsonable(run), separators=(",", ":"), ensure_ascii=False).encode()
    message_id = f"msg_{uuid.uuid4().hex}"
    key = _signing_key(settings)
    deadline = time.monotonic() + settings.webhook_max_seconds
    run_id = str(run.get("run_id", ""))[:64]
    attempt = 0
    last = "failed"
    # A fresh client per delivery: its pool must not hand one host's connection to another.
    async with httpx.AsyncClient(
        follow_redirects=False, trust_env=False, verify=True if verify is None else verify
    ) as client:
        while True:
            attempt += 1
            address = await _pinned_address(host, port, settings, resolve)
            remaining = deadline - time.monotonic()
            timeout = min(settings.webhook_timeout_seconds, max(remaining, 0.001))
            timestamp = int(time.time())
            netloc_host = f"[{address}]" if ":" in address else address
            target = urlunsplit(
                (parts.scheme, f"{netloc_host}:{port}", parts.path or "/", parts.query, "")
            )
            default_port = port == (443 if parts.scheme == "https" else 80)
            host_header = host if default_port else f"{host}:{port}"
            if ":" in host:
                host_header = f"[{host}]" if default_port else f"[{host}]:{port}"
            headers = {
                "host": host_header,
                "content-type": "application/json",
                "user-agent": "agent-service-webhook/1",
                HEADER_ID: message_id,
                HEADER_TIMESTAMP: str(timestamp),
                HEADER_SIGNATURE: sign(key, message_id, timestamp, body),
            }
            try:
                # The whole attempt, slow answers included (httpx's timeouts bound each read,
                # not their sum); the answer's body is never read.
                async with (
                    asyncio.timeout(timeout),
                    client.stream(
                        "POST",
                        target,
                        content=body,
                        headers=headers,
                        timeout=timeout,
                        extensions={"sni_hostname": host},
                    ) as response,
                ):
                    answer: int = response.status_code
            except (httpx.TimeoutException, TimeoutError):
                last, status = "timeout", None
            except httpx.TransportError as exc:
                last, status = "connection_error", None
                log.debug("webhook attempt failed", error=type(exc).__name__)
            else:
                status = answer
                if 200 <= status < 300:
                    _record("delivered", parts, run_id=run_id, attempts=attempt, status=status)
                    return True
                if 300 <= status < 400:
                    _record("redirect_refused", parts, run_id=run_id, status=status)
                    return False
                if status != 429 and status < 500:
                    _record("client_error", parts, run_id=run_id, status=status)
                    return False
                last = "server_error"
            delay = _retry_delay(attempt, settings)
            if attempt >= settings.webhook_max_attempts or time.monotonic() + delay >= deadline:
                _record("failed", parts, run_id=run_id, attempts=attempt, last=last, status=status)
                return False
            await asyncio.sleep(delay)
