"""Amazon SNS verification of Circle webhooks, with a test key and a certificate shaped like SNS's.

The certificate (issued to sns.amazonaws.com by the sandbox's "Amazon" CA) is served by an
httpx.MockTransport at an Amazon-looking URL; the signer builds its canonical string on its own
(sandbox/sns_signer.py), so acceptance is a real cross-check.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import trio

from itinerabot.adapters.circle.errors import SnsVerificationError
from itinerabot.adapters.circle.sns import (
    CertificateCache,
    SnsMessage,
    check_signing_certificate,
    check_topic_arn,
    parse_sns_body,
    string_to_sign,
    verify_sns_message,
)
from itinerabot.adapters.circle.status import Outcome, parse_payment_intent_notification
from sandbox.sns_signer import DEFAULT_CERT_URL, SnsSigner, circle_topic_arn, encode
from tests.circle_spec import payment_intent, timeline_entry, validate

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
PAID_INTENT = payment_intent(
    amount_paid="10.00", timeline=[timeline_entry("complete", "2026-06-01T11:59:00Z", "paid")]
)
CIRCLE_MESSAGE = json.dumps(
    {
        "clientId": "c60d2d5b-203c-45bb-9f6e-93641d40a599",
        "notificationType": "paymentIntents",
        "version": 1,
        "paymentIntent": PAID_INTENT,
    }
)


@pytest.fixture(scope="module")
def signer() -> SnsSigner:
    return SnsSigner.generate(not_before=NOW - timedelta(days=30))


class CertServer:
    """Serves one PEM at one URL and counts fetches; `handler` can be swapped per test."""

    def __init__(self, signer: SnsSigner) -> None:
        self.signer = signer
        self.fetches = 0
        self.delay = 0.0
        self.handler: Callable[[httpx.Request], Awaitable[httpx.Response]] = self.serve

    async def serve(self, request: httpx.Request) -> httpx.Response:
        if self.delay:
            await trio.sleep(self.delay)
        if str(request.url) == self.signer.cert_url:
            return httpx.Response(200, content=self.signer.cert_pem)
        return httpx.Response(404)

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.fetches += 1
        return await self.handler(request)


@pytest.fixture
def server(signer: SnsSigner) -> CertServer:
    return CertServer(signer)


@pytest.fixture
def certs(server: CertServer) -> CertificateCache:
    return CertificateCache(
        httpx.AsyncClient(transport=httpx.MockTransport(server)), now=lambda: NOW
    )


async def verify(
    fields: dict[str, Any], certs: CertificateCache, environment: str = "sandbox"
) -> SnsMessage:
    with trio.fail_after(10):
        return await verify_sns_message(encode(fields), environment=environment, certs=certs)


async def refused(
    fields: dict[str, Any] | bytes,
    certs: CertificateCache,
    match: str,
    environment: str = "sandbox",
) -> SnsVerificationError:
    body = fields if isinstance(fields, bytes) else encode(fields)
    with trio.fail_after(10), pytest.raises(SnsVerificationError, match=match) as info:
        await verify_sns_message(body, environment=environment, certs=certs)
    return info.value


# --- genuine messages ----------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1", "2"])
async def test_genuine_notification_is_accepted(
    signer: SnsSigner, certs: CertificateCache, version: str
) -> None:
    validate("PaymentIntent", PAID_INTENT)
    fields = signer.notification(
        CIRCLE_MESSAGE, message_id="m-1", timestamp=NOW, signature_version=version
    )
    message = await verify(fields, certs)
    assert message == SnsMessage(
        type="Notification",
        message_id="m-1",
        topic_arn=circle_topic_arn("sandbox"),
        message=CIRCLE_MESSAGE,
        subscribe_url=None,
        timestamp=NOW,
    )
    view = parse_payment_intent_notification(message.message)
    assert view is not None and view.outcome is Outcome.PAID


async def test_notification_with_a_subject_and_in_prod(
    signer: SnsSigner, certs: CertificateCache
) -> None:
    fields = signer.notification(
        CIRCLE_MESSAGE, subject="paymentIntents", topic_arn=circle_topic_arn("prod", "eu-west-1")
    )
    message = await verify(fields, certs, environment="prod")
    assert message.subject == "paymentIntents"
    await refused(fields, certs, "TopicArn", environment="sandbox")


async def test_null_subject_counts_as_absent(signer: SnsSigner, certs: CertificateCache) -> None:
    fields = signer.notification(CIRCLE_MESSAGE)
    await verify({**fields, "Subject": None}, certs)


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize("kind", ["SubscriptionConfirmation", "UnsubscribeConfirmation"])
async def test_genuine_confirmations_are_accepted(
    signer: SnsSigner, certs: CertificateCache, version: str, kind: str
) -> None:
    fields = signer.subscription_confirmation(signature_version=version, kind=kind)
    message = await verify(fields, certs)
    assert message.type == kind
    assert message.subscribe_url == fields["SubscribeURL"]
    assert message.subscribe_url.startswith("https://sns.us-east-1.amazonaws.com/?Action=")


def test_string_to_sign_follows_the_aws_docs() -> None:
    fields = {
        "Type": "Notification",
        "MessageId": "id-1",
        "TopicArn": "arn:t",
        "Subject": "subj",
        "Message": "hello\nworld",
        "Timestamp": "2026-06-01T12:00:00.000Z",
        "UnsubscribeURL": "https://example.org/",
        "SignatureVersion": "2",
    }
    assert string_to_sign(fields) == (
        "Message\nhello\nworld\nMessageId\nid-1\nSubject\nsubj\n"
        "Timestamp\n2026-06-01T12:00:00.000Z\nTopicArn\narn:t\nType\nNotification\n"
    )
    confirmation = {
        "Type": "SubscriptionConfirmation",
        "MessageId": "id-2",
        "Token": "tok",
        "TopicArn": "arn:t",
        "Message": "m",
        "SubscribeURL": "https://s/",
        "Timestamp": "t",
    }
    assert string_to_sign(confirmation) == (
        "Message\nm\nMessageId\nid-2\nSubscribeURL\nhttps://s/\nTimestamp\nt\nToken\ntok\n"
        "TopicArn\narn:t\nType\nSubscriptionConfirmation\n"
    )


# --- forgeries and mistakes ----------------------------------------------------------------------


@pytest.mark.parametrize("key", ["Message", "MessageId", "Timestamp", "Signature"])
async def test_a_changed_byte_is_refused(
    signer: SnsSigner, certs: CertificateCache, key: str
) -> None:
    fields = signer.notification(CIRCLE_MESSAGE, timestamp=NOW)
    value = fields[key]
    i = len(value) // 2
    changed = value[:i] + ("A" if value[i] != "A" else "B") + value[i + 1 :]
    await refused({**fields, key: changed}, certs, "signature|Signature|Timestamp")


async def test_a_changed_byte_anywhere_in_the_signed_text_is_refused(
    signer: SnsSigner, certs: CertificateCache
) -> None:
    fields = signer.notification('{"notificationType": "paymentIntents"}', timestamp=NOW)
    body = encode(fields)
    start = body.index(b"paymentIntents")
    for offset in range(len(b"paymentIntents")):
        forged = bytearray(body)
        forged[start + offset] ^= 0x01
        await refused(bytes(forged), certs, "signature does not match")


async def test_a_subject_added_or_removed_is_refused(
    signer: SnsSigner, certs: CertificateCache
) -> None:
    plain = signer.notification(CIRCLE_MESSAGE)
    await refused({**plain, "Subject": "x"}, certs, "signature does not match")
    with_subject = signer.notification(CIRCLE_MESSAGE, subject="x")
    del with_subject["Subject"]
    await refused(with_subject, certs, "signature does not match")


async def test_a_message_signed_by_another_key_is_refused(certs: CertificateCache) -> None:
    impostor = SnsSigner.generate(not_before=NOW - timedelta(days=1))  # same cert URL
    await refused(impostor.notification(CIRCLE_MESSAGE), certs, "signature does not match")


async def test_a_v2_message_relabelled_v1_is_refused(
    signer: SnsSigner, certs: CertificateCache
) -> None:
    fields = signer.notification(CIRCLE_MESSAGE, signature_version="2")
    await refused({**fields, "SignatureVersion": "1"}, certs, "signature does not match")


@pytest.mark.parametrize(
    "topic_arn",
    [
        "arn:aws:sns:us-east-1:123456789012:sandbox_platform-notifications-topic",
        "arn:aws:sns:us-east-1:908968368384:prod_platform-notifications-topic",
        "arn:aws:sns:us-east-1:908968368384:sandbox_platform-notifications-topic-x",
        "arn:aws:sns:us-east-1:908968368384:sandbox_platform-notifications-topic\n",
        "arn:aws:sqs:us-east-1:908968368384:sandbox_platform-notifications-topic",
    ],
)
async def test_a_wrong_topic_is_refused_without_fetching(
    signer: SnsSigner, certs: CertificateCache, server: CertServer, topic_arn: str
) -> None:
    fields = signer.notification(CIRCLE_MESSAGE, topic_arn=topic_arn)  # genuinely signed
    await refused(fields, certs, "TopicArn")
    assert server.fetches == 0


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem", "not https"),
        ("https://sns.us-east-1.amazonaws.com.evil.example/cert.pem", "Amazon SNS host"),
        ("https://evil.example/sns.us-east-1.amazonaws.com/cert.pem", "Amazon SNS host"),
        ("https://sns.us-east-1.amazonaws.com@evil.example/cert.pem", "credentials"),
        ("https://user@sns.us-east-1.amazonaws.com/cert.pem", "credentials"),
        ("https://sns.us-east-1.amazonaws.com:8443/cert.pem", "port"),
        ("https://s3.amazonaws.com/cert.pem", "Amazon SNS host"),
        ("https://sns.us-east-1.amazonaws.com/cert.txt", ".pem"),
        ("https://sns.us-east-1.amazonaws.com/cert.pem", "certificate path"),
        ("https://sns.us-east-1.amazonaws.com/x/SimpleNotificationService-1.pem", "path"),
        ("https://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem?a=b", "path"),
        ("file:///etc/ssl/cert.pem", "not https"),
        ("https://[::1/cert.pem", "not a URL"),
    ],
)
async def test_a_certificate_off_amazons_hosts_is_refused_without_fetching(
    signer: SnsSigner, certs: CertificateCache, server: CertServer, url: str, why: str
) -> None:
    fields = signer.notification(CIRCLE_MESSAGE)
    await refused({**fields, "SigningCertURL": url}, certs, why)
    assert server.fetches == 0


async def test_a_subscribe_url_off_amazons_hosts_is_refused(
    signer: SnsSigner, certs: CertificateCache
) -> None:
    fields = signer.subscription_confirmation(subscribe_url="https://evil.example/confirm")
    await refused(fields, certs, "SubscribeURL")


@pytest.mark.parametrize(
    "host",
    [
        "sns.us-east-1.amazonaws.com",
        "sns.us-west-2.amazonaws.com",
        "sns.eu-central-1.amazonaws.com",
        "sns.ap-southeast-2.amazonaws.com",
        "sns.us-gov-west-1.amazonaws.com",
        "sns.cn-north-1.amazonaws.com.cn",
        "sns.cn-northwest-1.amazonaws.com.cn",
    ],
)
async def test_the_regional_sns_hosts_are_accepted(
    signer: SnsSigner, server: CertServer, host: str
) -> None:
    """Finding 5: the strict host pattern still takes every real SNS endpoint."""
    regional = SnsSigner(
        signer.private_key,
        signer.certificate,
        cert_url=f"https://{host}/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem",
    )
    server.signer = regional
    certs = CertificateCache(
        httpx.AsyncClient(transport=httpx.MockTransport(server)), now=lambda: NOW
    )
    await verify(regional.notification(CIRCLE_MESSAGE), certs)
    assert server.fetches == 1


@pytest.mark.parametrize(
    "host",
    [
        "sns.s3.amazonaws.com",  # the S3 bucket named "sns", under Amazon's own TLS certificate
        "sns.s3-external-1.amazonaws.com",
        "sns.s3.us-east-1.amazonaws.com",
        "sns.s3-us-west-2.amazonaws.com",
        "sns.s3-website-us-east-1.amazonaws.com",
        "sns.s3.dualstack.us-east-1.amazonaws.com",
        "sns.execute-api.amazonaws.com",
        "sns.us-east-1.amazonaws.com.cn",  # .com.cn is for the China regions only
        "sns.cn-north-1.amazonaws.com",
        "sns.amazonaws.com",
    ],
)
async def test_a_certificate_on_an_s3_host_is_refused_before_any_fetch(host: str) -> None:
    """Finding 5: a notification signed by whoever put a certificate in an S3 bucket is refused.

    The forger's message is genuinely signed and their certificate, shaped like SNS's, is
    served at the URL; the old host pattern accepted sns.s3.amazonaws.com and so the PDF.
    """
    forger = SnsSigner.generate(
        not_before=NOW - timedelta(days=1),
        cert_url=f"https://{host}/SimpleNotificationService-0123456789abcdef.pem",
    )
    server = CertServer(forger)
    certs = CertificateCache(
        httpx.AsyncClient(transport=httpx.MockTransport(server)), now=lambda: NOW
    )
    await refused(forger.notification(CIRCLE_MESSAGE), certs, "not on an Amazon SNS host")
    assert server.fetches == 0


@pytest.mark.parametrize("version", ["0", "3", "", "2 "])
async def test_an_unknown_signature_version_is_refused(
    signer: SnsSigner, certs: CertificateCache, version: str
) -> None:
    fields = signer.notification(CIRCLE_MESSAGE)
    await refused({**fields, "SignatureVersion": version}, certs, "SignatureVersion")


@pytest.mark.parametrize(
    ("kind", "key"),
    [
        ("Notification", k)
        for k in (
            "Type",
            "MessageId",
            "TopicArn",
            "Message",
            "Timestamp",
            "Signature",
            "SignatureVersion",
            "SigningCertURL",
        )
    ]
    + [("SubscriptionConfirmation", k) for k in ("SubscribeURL", "Token", "Message")],
)
async def test_missing_fields_are_refused(
    signer: SnsSigner, certs: CertificateCache, server: CertServer, kind: str, key: str
) -> None:
    if kind == "Notification":
        fields = signer.notification(CIRCLE_MESSAGE)
    else:
        fields = signer.subscription_confirmation()
    del fields[key]
    await refused(fields, certs, "lacks|Type")
    assert server.fetches == 0


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"not json", "not JSON"),
        (b"\xff", "not UTF-8"),
        (b"[]", "not a JSON object"),
        (b'{"Type": "Gossip"}', "unknown Type"),
    ],
)
async def test_bodies_that_are_not_sns_messages_are_refused(
    certs: CertificateCache, body: bytes, why: str
) -> None:
    await refused(body, certs, why)


async def test_non_string_fields_are_refused(signer: SnsSigner, certs: CertificateCache) -> None:
    fields = signer.notification(CIRCLE_MESSAGE)
    await refused({**fields, "Message": {"nested": True}}, certs, "not a string")


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b'{"Type": ["Notification"]}', "unknown Type <list>"),
        (b'{"Type": {"Notification": 1}}', "unknown Type <dict>"),
        (b'{"Type": 1e999}', "unknown Type <float>"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"Type": "Notification", "x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", "deeply"),
        (b'{"Type": ' + b"9" * 5000 + b"}", "not JSON"),  # over Python's int-parsing limit
        (b'{"Type": "Notification"\xc3\x28}', "not UTF-8"),
        (b"\xef\xbb\xbf{}", "not JSON"),  # a byte-order mark
        (b"", "not JSON"),
    ],
)
async def test_hostile_bodies_are_refused_not_crashed_on(
    certs: CertificateCache, server: CertServer, body: bytes, why: str
) -> None:
    """Finding 9: a non-string Type, deep nesting, huge numbers and bad UTF-8 are refusals
    (SnsVerificationError, so the route answers 400), never another exception (a 500)."""
    await refused(body, certs, why)
    assert server.fetches == 0


async def test_a_lone_surrogate_is_refused_before_any_fetch(
    signer: SnsSigner, certs: CertificateCache, server: CertServer
) -> None:
    """Finding 9: "\\ud800" is valid JSON but no UTF-8; it used to fail at the signature."""
    fields = signer.notification(CIRCLE_MESSAGE)
    await refused({**fields, "Message": "paid \ud800"}, certs, "Message is not valid Unicode")
    assert server.fetches == 0


def test_a_refusal_quotes_at_most_a_short_excerpt() -> None:
    """Finding 9: a refusal is one log line; a 60 KB Type or TopicArn must not make it 60 KB."""
    with pytest.raises(SnsVerificationError) as info:
        parse_sns_body(json.dumps({"Type": "N" * 60_000}).encode())
    assert len(info.value.reason) < 100
    with pytest.raises(SnsVerificationError) as info:
        check_topic_arn("arn:aws:sns:" + "x" * 60_000, environment="sandbox")
    assert len(info.value.reason) < 100


async def test_a_signature_that_is_not_base64_is_refused(
    signer: SnsSigner, certs: CertificateCache
) -> None:
    fields = signer.notification(CIRCLE_MESSAGE)
    await refused({**fields, "Signature": "!!not base64!!"}, certs, "base64")


# --- the certificate -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("not_before", "valid_for"),
    [
        (NOW - timedelta(days=400), timedelta(days=365)),  # expired 35 days ago
        (NOW + timedelta(days=1), timedelta(days=365)),  # not valid yet
    ],
)
async def test_a_certificate_outside_its_validity_is_refused(
    not_before: datetime, valid_for: timedelta
) -> None:
    stale = SnsSigner.generate(not_before=not_before, valid_for=valid_for)
    certs = CertificateCache(
        httpx.AsyncClient(transport=stale.certificate_transport()), now=lambda: NOW
    )
    await refused(stale.notification(CIRCLE_MESSAGE), certs, "expired or not yet valid")


@pytest.mark.parametrize(
    ("impostor", "why"),
    [
        ({"self_signed": True}, "issued by '', not Amazon"),  # the sandbox's old certificate
        ({"common_name": "s3.amazonaws.com"}, "issued to 's3.amazonaws.com'"),
        ({"common_name": "*.s3.amazonaws.com"}, "issued to '\\*.s3.amazonaws.com'"),
        ({"common_name": "sns.amazonaws.com.evil.example"}, "not Amazon SNS"),
    ],
)
async def test_a_certificate_that_is_not_the_sns_signing_certificate_is_refused(
    impostor: dict[str, Any], why: str
) -> None:
    """Finding 5: a message correctly signed with a certificate served from an SNS URL, but
    not Amazon SNS's signing certificate (issued to sns.amazonaws.com by Amazon), is refused,
    and the refusal is not cached."""
    other = SnsSigner.generate(not_before=NOW - timedelta(days=1), **impostor)
    server = CertServer(other)
    certs = CertificateCache(
        httpx.AsyncClient(transport=httpx.MockTransport(server)), now=lambda: NOW
    )
    for _ in range(2):
        error = await refused(other.notification(CIRCLE_MESSAGE), certs, why)
        assert not error.retryable
    assert server.fetches == 2


def test_the_sandbox_certificate_is_shaped_like_amazons(signer: SnsSigner) -> None:
    """Finding 5: what the check asks of a certificate, said in the terms of X.509."""
    cert = signer.certificate
    assert cert.subject.rfc4514_string() == "CN=sns.amazonaws.com"
    assert "O=Amazon" in cert.issuer.rfc4514_string().split(",")
    assert cert.issuer != cert.subject
    check_signing_certificate(cert)


async def test_the_certificate_is_fetched_once_and_cached(
    signer: SnsSigner, certs: CertificateCache, server: CertServer
) -> None:
    for version in ("1", "2", "2"):
        await verify(signer.notification(CIRCLE_MESSAGE, signature_version=version), certs)
    await verify(signer.subscription_confirmation(), certs)
    assert server.fetches == 1
    assert certs.fetches == 1


async def test_concurrent_messages_share_one_fetch(
    signer: SnsSigner, certs: CertificateCache, server: CertServer, autojump_clock: trio.abc.Clock
) -> None:
    server.delay = 2.0
    accepted: list[SnsMessage] = []

    async def one() -> None:
        accepted.append(await verify(signer.notification(CIRCLE_MESSAGE), certs))

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(one)
    assert len(accepted) == 5
    assert server.fetches == 1
    assert trio.current_time() == 2.0


async def test_a_certificate_that_expires_while_cached_is_refused(
    signer: SnsSigner, server: CertServer
) -> None:
    clock = [NOW]
    certs = CertificateCache(
        httpx.AsyncClient(transport=httpx.MockTransport(server)), now=lambda: clock[0]
    )
    await verify(signer.notification(CIRCLE_MESSAGE), certs)
    clock[0] = signer.certificate.not_valid_after_utc + timedelta(seconds=1)
    await refused(signer.notification(CIRCLE_MESSAGE), certs, "expired")


async def test_a_missing_certificate_is_refused_for_good(
    signer: SnsSigner, certs: CertificateCache
) -> None:
    elsewhere = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-other.pem"
    fields = signer.notification(CIRCLE_MESSAGE)
    error = await refused({**fields, "SigningCertURL": elsewhere}, certs, "HTTP 404")
    assert not error.retryable


@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.Response(503)],
)
async def test_an_unreachable_certificate_is_retryable(
    signer: SnsSigner, certs: CertificateCache, server: CertServer, failure: Any
) -> None:
    async def broken(request: httpx.Request) -> httpx.Response:
        if isinstance(failure, httpx.Response):
            return failure
        raise failure

    server.handler = broken
    error = await refused(signer.notification(CIRCLE_MESSAGE), certs, "signing certificate")
    assert error.retryable
    server.handler = server.serve  # Amazon is back: the same message now verifies
    await verify(signer.notification(CIRCLE_MESSAGE), certs)


async def test_a_certificate_that_is_not_pem_is_refused(
    signer: SnsSigner, certs: CertificateCache, server: CertServer
) -> None:
    async def garbage(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"-----BEGIN CERTIFICATE-----\nnope\n")

    server.handler = garbage
    await refused(signer.notification(CIRCLE_MESSAGE), certs, "not a PEM certificate")


def test_the_default_cert_url_is_on_an_sns_host() -> None:
    assert DEFAULT_CERT_URL.startswith("https://sns.us-east-1.amazonaws.com/")


async def test_a_pinned_certificate_is_used_without_fetching(
    signer: SnsSigner, server: CertServer
) -> None:
    certs = CertificateCache(
        httpx.AsyncClient(transport=httpx.MockTransport(server)), now=lambda: NOW
    )
    certs.pin(signer.cert_url, signer.cert_pem)
    await verify(signer.notification(CIRCLE_MESSAGE), certs)
    impostor = SnsSigner.generate(not_before=NOW - timedelta(days=1))
    await refused(impostor.notification(CIRCLE_MESSAGE), certs, "signature does not match")
    assert server.fetches == 0


def test_only_amazon_urls_and_real_certificates_can_be_pinned(signer: SnsSigner) -> None:
    certs = CertificateCache(httpx.AsyncClient(transport=signer.certificate_transport()))
    with pytest.raises(ValueError, match="Amazon SNS host"):
        certs.pin("https://evil.example/cert.pem", signer.cert_pem)
    with pytest.raises(ValueError, match="Amazon SNS host"):
        certs.pin("https://sns.s3.amazonaws.com/SimpleNotificationService-1.pem", signer.cert_pem)
    with pytest.raises(ValueError, match="not a PEM certificate"):
        certs.pin(signer.cert_url, b"garbage")
    self_signed = SnsSigner.generate(self_signed=True)
    with pytest.raises(ValueError, match="not Amazon"):
        certs.pin(signer.cert_url, self_signed.cert_pem)


async def test_a_genuine_message_older_than_its_id_is_remembered_is_refused(
    signer: SnsSigner, certs: CertificateCache, server: CertServer
) -> None:
    """Review (SNS replay): once a MessageId is pruned (store.webhook_ids_retention_days), a
    captured genuine message could be replayed; its signed Timestamp now ends that."""
    max_age = timedelta(days=29)
    old = signer.notification(CIRCLE_MESSAGE, timestamp=NOW - timedelta(days=30))
    with trio.fail_after(10), pytest.raises(SnsVerificationError, match="older than 29 days"):
        await verify_sns_message(encode(old), environment="sandbox", certs=certs, max_age=max_age)
    assert server.fetches == 0  # refused before any certificate is fetched
    recent = signer.notification(CIRCLE_MESSAGE, timestamp=NOW - timedelta(days=28))
    message = await verify_sns_message(
        encode(recent), environment="sandbox", certs=certs, max_age=max_age
    )
    assert message.message == CIRCLE_MESSAGE
