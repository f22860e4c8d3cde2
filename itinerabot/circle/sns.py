"""Amazon SNS message verification for Circle's webhooks: shape, topic, certificate, signature.

Pure checks plus one async certificate fetch (cached); any failure raises SnsVerificationError.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import SplitResult, urlsplit

import httpx
import trio
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from itinerabot.circle.errors import SnsVerificationError

__all__ = [
    "CertificateCache",
    "SnsMessage",
    "SnsVerificationError",
    "check_signing_cert_url",
    "check_topic_arn",
    "string_to_sign",
    "verify_sns_message",
]

SnsType = Literal["SubscriptionConfirmation", "UnsubscribeConfirmation", "Notification"]

#: Circle's AWS account publishes its notifications on one topic per environment.
CIRCLE_ACCOUNT = "908968368384"
_SNS_HOST_RE = re.compile(r"sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?")

# Keys signed, in the order AWS signs them; `Subject` only when the message has one.
_SIGNED_KEYS: dict[str, tuple[str, ...]] = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
    "UnsubscribeConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
_OPTIONAL_KEYS = frozenset({"Subject"})
_SIGNATURE_KEYS = ("SignatureVersion", "Signature", "SigningCertURL")
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}


@dataclass(frozen=True, slots=True)
class SnsMessage:
    """A verified SNS message. `message` is the payload (Circle's JSON, as a string)."""

    type: SnsType
    message_id: str
    topic_arn: str
    message: str
    subscribe_url: str | None
    timestamp: datetime
    subject: str | None = None


class CertificateCache:
    """Fetches SNS signing certificates with the given httpx client and keeps them by URL.

    Certificates given to `pin` are used instead of fetching. `now` is the wall clock the
    certificates' validity is checked against; `max_entries` bounds the cache (the oldest is
    dropped). Concurrent requests for one URL share a single fetch.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        fetch_timeout: float = 10.0,
        max_entries: int = 16,
    ) -> None:
        self._http = http
        self._now = now
        self._fetch_timeout = fetch_timeout
        self._max_entries = max_entries
        self._certs: OrderedDict[str, x509.Certificate] = OrderedDict()
        self._pinned: dict[str, x509.Certificate] = {}
        self._locks: dict[str, trio.Lock] = {}
        self.fetches = 0  # how many times a certificate was downloaded

    def pin(self, url: str, pem: bytes) -> None:
        """Use the certificate `pem` for `url` from now on, without ever fetching it.

        For hosts that cannot reach Amazon, and the demo. `url` must still pass
        `check_signing_cert_url`; validity dates are checked at each use as for fetched ones.
        Raises ValueError for a URL off Amazon's SNS hosts or a PEM that is not a certificate.
        """
        try:
            check_signing_cert_url(url)
        except SnsVerificationError as exc:
            raise ValueError(f"cannot pin {url!r}: {exc.reason}") from None
        try:
            self._pinned[url] = x509.load_pem_x509_certificate(pem)
        except ValueError as exc:
            raise ValueError(f"cannot pin {url!r}: not a PEM certificate") from exc

    async def public_key(self, url: str) -> rsa.RSAPublicKey:
        """The RSA key of the certificate at `url` (already checked with check_signing_cert_url).

        Raises SnsVerificationError if it cannot be fetched (retryable on network errors,
        timeouts and 5xx), is not a PEM certificate, has no RSA key, or is not valid now.
        """
        cert = self._pinned.get(url) or self._certs.get(url)
        if cert is None:
            lock = self._locks.setdefault(url, trio.Lock())
            try:
                async with lock:
                    cert = self._certs.get(url)
                    if cert is None:
                        cert = await self._fetch(url)
                        self._remember(url, cert)
            finally:
                if not lock.statistics().tasks_waiting:
                    self._locks.pop(url, None)
        now = self._now()
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            self._certs.pop(url, None)  # a renewed certificate may be served next time
            raise SnsVerificationError("signing certificate is expired or not yet valid")
        key = cert.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise SnsVerificationError("signing certificate does not hold an RSA key")
        return key

    async def _fetch(self, url: str) -> x509.Certificate:
        self.fetches += 1
        try:
            response = await self._http.get(url, timeout=self._fetch_timeout)
        except httpx.RequestError as exc:
            raise SnsVerificationError(
                f"signing certificate could not be fetched ({exc.__class__.__name__})",
                retryable=True,
            ) from exc
        if response.status_code != 200:
            raise SnsVerificationError(
                f"signing certificate fetch answered HTTP {response.status_code}",
                retryable=response.status_code >= 500,
            )
        try:
            return x509.load_pem_x509_certificate(response.content)
        except ValueError as exc:
            raise SnsVerificationError("signing certificate is not a PEM certificate") from exc

    def _remember(self, url: str, cert: x509.Certificate) -> None:
        self._certs[url] = cert
        while len(self._certs) > self._max_entries:
            self._certs.popitem(last=False)


async def verify_sns_message(
    body: bytes, *, environment: str, certs: CertificateCache
) -> SnsMessage:
    """Verify an SNS POST body for Circle's topic in `environment` ("sandbox" or "prod").

    Checks, cheapest first: JSON object of strings, known Type, required keys, signature
    version 1 (SHA1withRSA) or 2 (SHA256withRSA), TopicArn is Circle's, SigningCertURL (and
    SubscribeURL) are https on an Amazon SNS host, then the signature against the certificate.
    Raises SnsVerificationError for anything wrong; nothing is fetched for a message that fails
    the checks before the signature.
    """
    fields = parse_sns_body(body)
    kind = fields["Type"]
    check_topic_arn(fields["TopicArn"], environment=environment)
    cert_url = fields["SigningCertURL"]
    check_signing_cert_url(cert_url)
    subscribe_url = fields.get("SubscribeURL")
    if kind != "Notification" and subscribe_url is not None:
        _check_sns_https_url(subscribe_url, "SubscribeURL")
    hash_factory = _HASHES.get(fields["SignatureVersion"])
    if hash_factory is None:
        raise SnsVerificationError(f"unknown SignatureVersion {fields['SignatureVersion']!r}")
    try:
        signature = base64.b64decode(fields["Signature"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SnsVerificationError("Signature is not base64") from exc
    timestamp = _timestamp(fields["Timestamp"])
    key = await certs.public_key(cert_url)
    try:
        key.verify(signature, string_to_sign(fields).encode(), padding.PKCS1v15(), hash_factory())
    except InvalidSignature as exc:
        raise SnsVerificationError("signature does not match") from exc
    return SnsMessage(
        type=kind,
        message_id=fields["MessageId"],
        topic_arn=fields["TopicArn"],
        message=fields["Message"],
        subscribe_url=subscribe_url if kind != "Notification" else None,
        timestamp=timestamp,
        subject=fields.get("Subject"),
    )


def parse_sns_body(body: bytes) -> dict[str, Any]:
    """Decode the JSON body and check the keys its Type needs. Raises SnsVerificationError.

    Returns the object with a null `Subject` dropped (AWS signs only a present Subject).
    """
    try:
        decoded = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SnsVerificationError("body is not JSON") from exc
    if not isinstance(decoded, dict):
        raise SnsVerificationError("body is not a JSON object")
    fields = dict(decoded)
    if fields.get("Subject", "") is None:
        del fields["Subject"]
    kind = fields.get("Type")
    if kind not in _SIGNED_KEYS:
        raise SnsVerificationError(f"unknown Type {kind!r}")
    required = [k for k in _SIGNED_KEYS[kind] if k not in _OPTIONAL_KEYS]
    required += _SIGNATURE_KEYS
    missing = [k for k in required if k not in fields]
    if missing:
        raise SnsVerificationError(f"{kind} lacks {', '.join(missing)}")
    wrong = [k for k in (*_SIGNED_KEYS[kind], *_SIGNATURE_KEYS) if k in fields]
    wrong = [k for k in wrong if not isinstance(fields[k], str)]
    if wrong:
        raise SnsVerificationError(f"{', '.join(wrong)} is not a string")
    return fields


def string_to_sign(fields: Mapping[str, Any]) -> str:
    """The canonical text AWS signs: "Key\\nValue\\n" for each signed key present, in order."""
    keys = _SIGNED_KEYS[fields["Type"]]
    return "".join(f"{k}\n{fields[k]}\n" for k in keys if k in fields)


def check_topic_arn(topic_arn: str, *, environment: str) -> None:
    """Refuse any topic but Circle's notifications topic for `environment`, in any region."""
    if environment not in ("sandbox", "prod"):
        raise ValueError(f"unknown Circle environment {environment!r}")
    pattern = rf"arn:aws:sns:[a-z0-9-]+:{CIRCLE_ACCOUNT}:{environment}_platform-notifications-topic"
    if not re.fullmatch(pattern, topic_arn):
        raise SnsVerificationError(f"TopicArn {topic_arn!r} is not Circle's {environment} topic")


def check_signing_cert_url(url: str) -> None:
    """Refuse a SigningCertURL that is not https on an Amazon SNS host with a .pem path."""
    parts = _check_sns_https_url(url, "SigningCertURL")
    if not parts.path.endswith(".pem"):
        raise SnsVerificationError("SigningCertURL does not name a .pem file")


def _check_sns_https_url(url: str, what: str) -> SplitResult:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise SnsVerificationError(f"{what} is not a URL") from exc
    if parts.scheme != "https":
        raise SnsVerificationError(f"{what} is not https")
    if parts.username is not None or parts.password is not None or port not in (None, 443):
        raise SnsVerificationError(f"{what} has credentials or an unusual port")
    if parts.hostname is None or not _SNS_HOST_RE.fullmatch(parts.hostname):
        raise SnsVerificationError(f"{what} is not on an Amazon SNS host")
    if parts.fragment:
        raise SnsVerificationError(f"{what} has a fragment")
    return parts


def _timestamp(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise SnsVerificationError("Timestamp is not ISO-8601") from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
