"""Amazon SNS message verification for Circle's webhooks: shape, topic, certificate, signature.

Pure checks plus one async certificate fetch (cached); any failure raises SnsVerificationError.
Whatever the body, nothing else is raised: it comes from anyone on the internet.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar
from urllib.parse import SplitResult, urlsplit

import httpx
import trio
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from itinerabot.adapters.circle.errors import SnsVerificationError

__all__ = [
    "CertificateCache",
    "SnsMessage",
    "SnsVerificationError",
    "check_signing_cert_url",
    "check_signing_certificate",
    "check_topic_arn",
    "string_to_sign",
    "verify_sns_message",
]

SnsType = Literal["SubscriptionConfirmation", "UnsubscribeConfirmation", "Notification"]

#: Circle's AWS account publishes its notifications on one topic per environment.
CIRCLE_ACCOUNT = "908968368384"
#: The name Amazon's SNS signing certificate is issued to, in every region.
SNS_CERTIFICATE_NAME = "sns.amazonaws.com"
#: The organisation of the CAs that issue it (Amazon Trust Services: "Amazon RSA 2048 M0x").
SNS_CERTIFICATE_ISSUER_ORG = "Amazon"

# The SNS endpoints only: sns.<region>.amazonaws.com, and .amazonaws.com.cn for the China
# regions. A region is <area>[-gov]-<direction>-<n> (us-east-1, us-gov-west-1, cn-north-1).
# Other hosts under amazonaws.com serve other people's files under Amazon's certificate:
# sns.s3.amazonaws.com is an S3 bucket named "sns" (so are s3-external-1, s3-website-…).
_DIRECTION = "(?:central|north|south|east|west|northeast|northwest|southeast|southwest)"
_SNS_HOST_RE = re.compile(
    rf"sns\.(?:(?!cn-)[a-z]{{2}}(?:-gov)?-{_DIRECTION}-[0-9]{{1,2}}\.amazonaws\.com"
    rf"|cn-{_DIRECTION}-[0-9]{{1,2}}\.amazonaws\.com\.cn)"
)
# The path SNS serves its certificates at; nothing else on the endpoint is a certificate.
_CERT_PATH_RE = re.compile(r"/SimpleNotificationService-[0-9A-Za-z]+\.pem")
#: Longest excerpt of a sender's value quoted in a refusal (it ends up in a log line).
_QUOTE_MAX = 60

# Keys signed, in the order AWS signs them; `Subject` only when the message has one.
_SUBSCRIPTION_KEYS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)
_SIGNED_KEYS: dict[str, tuple[str, ...]] = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": _SUBSCRIPTION_KEYS,
    "UnsubscribeConfirmation": _SUBSCRIPTION_KEYS,
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

    def now(self) -> datetime:
        """The wall clock certificates (and message ages) are checked against."""
        return self._now()

    def pin(self, url: str, pem: bytes) -> None:
        """Use the certificate `pem` for `url` from now on, without ever fetching it.

        For hosts that cannot reach Amazon, and the demo. `url` must still pass
        `check_signing_cert_url` and the certificate `check_signing_certificate`; validity
        dates are checked at each use as for fetched ones. Raises ValueError for a URL off
        Amazon's SNS hosts, a PEM that is not a certificate, or one that is not Amazon SNS's.
        """
        try:
            check_signing_cert_url(url)
        except SnsVerificationError as exc:
            raise ValueError(f"cannot pin {url!r}: {exc.reason}") from None
        try:
            cert = x509.load_pem_x509_certificate(pem)
        except ValueError as exc:
            raise ValueError(f"cannot pin {url!r}: not a PEM certificate") from exc
        try:
            check_signing_certificate(cert)
        except SnsVerificationError as exc:
            raise ValueError(f"cannot pin {url!r}: {exc.reason}") from None
        self._pinned[url] = cert

    async def public_key(self, url: str) -> rsa.RSAPublicKey:
        """The RSA key of the certificate at `url` (already checked with check_signing_cert_url).

        Raises SnsVerificationError if it cannot be fetched (retryable on network errors,
        timeouts and 5xx), is not a PEM certificate, is not Amazon SNS's signing certificate
        (`check_signing_certificate`), or is not valid now.
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
        except httpx.InvalidURL as exc:  # not an HTTPError; check_signing_cert_url should stop it
            raise SnsVerificationError("SigningCertURL is not a URL httpx accepts") from exc
        if response.status_code != 200:
            raise SnsVerificationError(
                f"signing certificate fetch answered HTTP {response.status_code}",
                retryable=response.status_code >= 500,
            )
        try:
            cert = x509.load_pem_x509_certificate(response.content)
        except ValueError as exc:
            raise SnsVerificationError("signing certificate is not a PEM certificate") from exc
        check_signing_certificate(cert)  # before it is cached: a refusal is never remembered
        return cert

    def _remember(self, url: str, cert: x509.Certificate) -> None:
        self._certs[url] = cert
        while len(self._certs) > self._max_entries:
            self._certs.popitem(last=False)


async def verify_sns_message(
    body: bytes,
    *,
    environment: str,
    certs: CertificateCache,
    max_age: timedelta | None = None,
) -> SnsMessage:
    """Verify an SNS POST body for Circle's topic in `environment` ("sandbox" or "prod").

    Checks, cheapest first: a UTF-8 JSON object whose signed keys are strings, known Type,
    required keys, signature version 1 (SHA1withRSA) or 2 (SHA256withRSA), TopicArn is
    Circle's, SigningCertURL (and SubscribeURL) are https on an Amazon SNS endpoint, then the
    certificate is Amazon SNS's and the signature matches it. Raises SnsVerificationError for
    anything wrong, and nothing else whatever the body; nothing is fetched for a message that
    fails the checks before the signature. A message whose Timestamp is older than `max_age`
    (by the certificates' clock) is refused: past the time its MessageId is remembered, a
    captured genuine message could otherwise be replayed.
    """
    fields = parse_sns_body(body)
    kind = fields["Type"]
    check_topic_arn(fields["TopicArn"], environment=environment)
    cert_url = fields["SigningCertURL"]
    check_signing_cert_url(cert_url)
    subscribe_url = fields.get("SubscribeURL")
    if kind != "Notification" and subscribe_url is not None:
        _check_sns_https_url(subscribe_url, "SubscribeURL")
    hash_factory, signature = _signature(fields)
    timestamp = _timestamp(fields["Timestamp"])
    if max_age is not None and timestamp < certs.now() - max_age:
        raise SnsVerificationError(f"message is older than {max_age.days} days (a replay?)")
    _check_signature(await certs.public_key(cert_url), fields, hash_factory, signature)
    return SnsMessage(
        type=kind,
        message_id=fields["MessageId"],
        topic_arn=fields["TopicArn"],
        message=fields["Message"],
        subscribe_url=subscribe_url if kind != "Notification" else None,
        timestamp=timestamp,
        subject=fields.get("Subject"),
    )


def _signature(fields: Mapping[str, Any]) -> tuple[Callable[[], hashes.HashAlgorithm], bytes]:
    """The hash of the message's SignatureVersion and its decoded Signature. Raises
    SnsVerificationError for an unknown version or a Signature that is not base64."""
    hash_factory = _HASHES.get(fields["SignatureVersion"])
    if hash_factory is None:
        raise SnsVerificationError(f"unknown SignatureVersion {_quote(fields['SignatureVersion'])}")
    try:
        return hash_factory, base64.b64decode(fields["Signature"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SnsVerificationError("Signature is not base64") from exc


def _check_signature(
    key: rsa.RSAPublicKey,
    fields: Mapping[str, Any],
    hash_factory: Callable[[], hashes.HashAlgorithm],
    signature: bytes,
) -> None:
    """Raises SnsVerificationError unless `signature` signs the message's fields with `key`."""
    try:
        key.verify(signature, string_to_sign(fields).encode(), padding.PKCS1v15(), hash_factory())
    except InvalidSignature as exc:
        raise SnsVerificationError("signature does not match") from exc


def parse_sns_body(body: bytes) -> dict[str, Any]:
    """Decode the JSON body and check the keys its Type needs. Raises SnsVerificationError.

    Refuses a body that is not UTF-8, not JSON, nested too deeply for the parser, not an
    object, of an unknown or non-string Type, or whose signed keys are missing, not strings
    or not encodable (a lone surrogate escape). Returns the object with a null `Subject`
    dropped (AWS signs only a present Subject).
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SnsVerificationError("body is not UTF-8") from exc
    try:
        decoded = json.loads(text)
    except RecursionError as exc:  # json's parser recurses once per nested [ or {
        raise SnsVerificationError("body is nested too deeply") from exc
    except ValueError as exc:  # also numbers over Python's 4300-digit limit
        raise SnsVerificationError("body is not JSON") from exc
    if not isinstance(decoded, dict):
        raise SnsVerificationError("body is not a JSON object")
    fields = dict(decoded)
    if fields.get("Subject", "") is None:
        del fields["Subject"]
    kind = fields.get("Type")
    if not isinstance(kind, str) or kind not in _SIGNED_KEYS:
        raise SnsVerificationError(f"unknown Type {_quote(kind)}")
    required = [k for k in _SIGNED_KEYS[kind] if k not in _OPTIONAL_KEYS]
    required += _SIGNATURE_KEYS
    missing = [k for k in required if k not in fields]
    if missing:
        raise SnsVerificationError(f"{kind} lacks {', '.join(missing)}")
    present = [k for k in (*_SIGNED_KEYS[kind], *_SIGNATURE_KEYS) if k in fields]
    wrong = [k for k in present if not isinstance(fields[k], str)]
    if wrong:
        raise SnsVerificationError(f"{', '.join(wrong)} is not a string")
    unencodable = [k for k in present if not _encodable(fields[k])]
    if unencodable:
        raise SnsVerificationError(f"{', '.join(unencodable)} is not valid Unicode")
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
        raise SnsVerificationError(
            f"TopicArn {_quote(topic_arn)} is not Circle's {environment} topic"
        )


def check_signing_cert_url(url: str) -> None:
    """Refuse a SigningCertURL that is not https on an Amazon SNS endpoint host, at the path
    SNS serves its certificates at (/SimpleNotificationService-<id>.pem), without a query."""
    parts = _check_sns_https_url(url, "SigningCertURL")
    if not _CERT_PATH_RE.fullmatch(parts.path) or parts.query:
        raise SnsVerificationError(
            "SigningCertURL is not an SNS certificate path (/SimpleNotificationService-<id>.pem)"
        )


def check_signing_certificate(cert: x509.Certificate) -> None:
    """Refuse a certificate that is not Amazon SNS's signing certificate.

    SNS signs with a certificate issued to sns.amazonaws.com (its only subject CN and, when
    it names hosts, among its DNS names) by an Amazon CA (issuer O=Amazon); it is not a CA
    itself and holds an RSA key of at least 2048 bits. The URL check says where a certificate
    came from; this one says the file there is the signing certificate, not some other
    certificate that happens to be served from an Amazon host. Raises SnsVerificationError.
    """
    try:
        names = _attributes(cert.subject, NameOID.COMMON_NAME)
        issuers = _attributes(cert.issuer, NameOID.ORGANIZATION_NAME)
        constraints = _extension(cert, x509.BasicConstraints)
        alt_names = _extension(cert, x509.SubjectAlternativeName)
        key = cert.public_key()
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as exc:
        raise SnsVerificationError("signing certificate cannot be read") from exc
    if names != [SNS_CERTIFICATE_NAME]:
        shown = _quote(", ".join(names))
        raise SnsVerificationError(f"signing certificate is issued to {shown}, not Amazon SNS")
    if alt_names is not None and SNS_CERTIFICATE_NAME not in alt_names.get_values_for_type(
        x509.DNSName
    ):
        raise SnsVerificationError(f"signing certificate does not name {SNS_CERTIFICATE_NAME}")
    if issuers != [SNS_CERTIFICATE_ISSUER_ORG]:
        shown = _quote(", ".join(issuers))
        raise SnsVerificationError(f"signing certificate is issued by {shown}, not Amazon")
    if constraints is not None and constraints.ca:
        raise SnsVerificationError("signing certificate is a CA certificate")
    if not isinstance(key, rsa.RSAPublicKey):
        raise SnsVerificationError("signing certificate does not hold an RSA key")
    if key.key_size < 2048:
        raise SnsVerificationError(f"signing certificate holds a {key.key_size}-bit key")


_Ext = TypeVar("_Ext", bound=x509.ExtensionType)


def _attributes(name: x509.Name, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(a.value) for a in name.get_attributes_for_oid(oid)]


def _extension(cert: x509.Certificate, kind: type[_Ext]) -> _Ext | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


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


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _quote(value: object) -> str:
    """A sender's value for a refusal (refusals are logged): a string's repr, cut short; for
    anything else its JSON type only (the repr of a deeply nested list could recurse too far)."""
    if not isinstance(value, str):
        return f"<{type(value).__name__}>"
    text = repr(value)
    return text if len(text) <= _QUOTE_MAX else text[: _QUOTE_MAX - 1] + "…"
