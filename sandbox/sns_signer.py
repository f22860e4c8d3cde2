"""A stand-in for Amazon SNS: a test key, and a certificate shaped like SNS's, that sign messages.

The certificate is issued, as Amazon's is, to sns.amazonaws.com by a CA of organisation
"Amazon", here a sandbox CA made once per process. For tests and the demo sandbox only. The
canonical string is built here from the AWS docs on its own, not borrowed from the product, so
a test of the verifier is a real cross-check.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

DEFAULT_CERT_URL = (
    "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem"
)
DEFAULT_REGION = "us-east-1"
#: what Amazon's SNS signing certificate is issued to
SNS_CERTIFICATE_NAME = "sns.amazonaws.com"

_NOTIFICATION_KEYS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_CONFIRMATION_KEYS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)


def circle_topic_arn(environment: str = "sandbox", region: str = DEFAULT_REGION) -> str:
    """The ARN of Circle's notifications topic, as SNS puts it in `TopicArn`."""
    return f"arn:aws:sns:{region}:908968368384:{environment}_platform-notifications-topic"


@dataclass(frozen=True)
class SnsSigner:
    """Signs SNS messages with `private_key`; `certificate` is served at `cert_url`."""

    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate
    cert_url: str = DEFAULT_CERT_URL

    @classmethod
    def generate(
        cls,
        *,
        cert_url: str = DEFAULT_CERT_URL,
        not_before: datetime | None = None,
        valid_for: timedelta = timedelta(days=365),
        common_name: str = SNS_CERTIFICATE_NAME,
        self_signed: bool = False,
    ) -> SnsSigner:
        """A fresh 2048-bit RSA key and a certificate for it, like Amazon's SNS signing one.

        By default the certificate is issued to `common_name` sns.amazonaws.com (subject CN
        and DNS name) by the sandbox's "Amazon" CA. Another `common_name`, or `self_signed`
        (issuer = subject, no organisation), makes a certificate the verifier must refuse.
        """
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        start = not_before or datetime.now(UTC) - timedelta(days=1)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        ca_key, ca_name = (key, subject) if self_signed else _sandbox_ca()
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + valid_for)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        return cls(private_key=key, certificate=cert, cert_url=cert_url)

    @property
    def cert_pem(self) -> bytes:
        """The certificate in PEM, as Amazon serves it at `SigningCertURL`."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def certificate_transport(self) -> httpx.MockTransport:
        """An httpx transport serving the certificate at `cert_url` and 404 everywhere else."""

        def handler(request: httpx.Request) -> httpx.Response:
            if str(request.url) == self.cert_url:
                return httpx.Response(200, content=self.cert_pem)
            return httpx.Response(404)

        return httpx.MockTransport(handler)

    def notification(
        self,
        message: str,
        *,
        topic_arn: str | None = None,
        message_id: str | None = None,
        subject: str | None = None,
        timestamp: datetime | None = None,
        signature_version: str = "2",
    ) -> dict[str, str]:
        """A signed `Notification` carrying `message` (Circle's JSON payload as a string)."""
        fields = {
            "Type": "Notification",
            "MessageId": message_id or str(uuid.uuid4()),
            "TopicArn": topic_arn or circle_topic_arn(),
            "Message": message,
            "Timestamp": _sns_time(timestamp),
            "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
        }
        if subject is not None:
            fields["Subject"] = subject
        return self.sign(fields, signature_version=signature_version)

    def subscription_confirmation(
        self,
        *,
        topic_arn: str | None = None,
        message_id: str | None = None,
        token: str = "2336412f37fb687f5d51e6e2425dacbba6ed41c2e7a5d6b8c1b1c4d1e5f0a1b2",
        subscribe_url: str | None = None,
        timestamp: datetime | None = None,
        signature_version: str = "2",
        kind: str = "SubscriptionConfirmation",
    ) -> dict[str, str]:
        """A signed `SubscriptionConfirmation` (or `UnsubscribeConfirmation` with `kind`)."""
        arn = topic_arn or circle_topic_arn()
        fields = {
            "Type": kind,
            "MessageId": message_id or str(uuid.uuid4()),
            "Token": token,
            "TopicArn": arn,
            "Message": f"You have chosen to subscribe to the topic {arn}.\n"
            "To confirm the subscription, visit the SubscribeURL included in this message.",
            "SubscribeURL": subscribe_url
            or (
                f"https://sns.{DEFAULT_REGION}.amazonaws.com/?Action=ConfirmSubscription"
                f"&TopicArn={arn}&Token={token}"
            ),
            "Timestamp": _sns_time(timestamp),
        }
        return self.sign(fields, signature_version=signature_version)

    def sign(self, fields: dict[str, str], *, signature_version: str = "2") -> dict[str, str]:
        """Return `fields` with SignatureVersion, Signature and SigningCertURL added.

        Version "1" signs with SHA1withRSA, "2" with SHA256withRSA (PKCS#1 v1.5), as SNS does.
        """
        algorithm: hashes.HashAlgorithm = (
            hashes.SHA1() if signature_version == "1" else hashes.SHA256()
        )
        keys = _NOTIFICATION_KEYS if fields["Type"] == "Notification" else _CONFIRMATION_KEYS
        text = "".join(f"{k}\n{fields[k]}\n" for k in keys if k in fields)
        signature = self.private_key.sign(text.encode(), padding.PKCS1v15(), algorithm)
        return {
            **fields,
            "SignatureVersion": signature_version,
            "Signature": base64.b64encode(signature).decode(),
            "SigningCertURL": self.cert_url,
        }


@cache
def _sandbox_ca() -> tuple[rsa.RSAPrivateKey, x509.Name]:
    """The sandbox's stand-in for Amazon's issuing CA ("Amazon RSA 2048 M0x", O=Amazon, C=US):
    its key and name, made once per process (a certificate of its own is never needed)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Amazon"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Sandbox Amazon RSA 2048 M01"),
        ]
    )
    return key, name


def encode(fields: dict[str, Any]) -> bytes:
    """The HTTP body SNS would POST for `fields`."""
    return json.dumps(fields).encode()


def _sns_time(moment: datetime | None) -> str:
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
