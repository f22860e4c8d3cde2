"""Fake Circle payment-intents API: intents that follow a script, faults on demand, SNS envelopes.

`FakeCircle` is an ASGI app answering `/v1/paymentIntents` (create, get, list, expire, refund),
`/v1/payments/{id}` (payments and refunds) and `/v1/notifications/subscriptions` with the shapes
of ../shared/reference/circle-openapi.json. Each intent walks its `Script` (created → pending
with an address → complete/paid, or underpaid, expired, never paid) as it is checked or as trio
time passes. Like Circle's, an intent expires 8 hours after creation (`expiresOn`), and once it
has ended (complete, expired, failed, refunded) no scripted payment lands on it any more. A
crypto refund is `pending` until its `RefundScript` (or `settle_refund`) makes it `paid` or
`failed`.
"""

from __future__ import annotations

import collections
import copy
import json
import math
import random
import re
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any, Literal, get_args
from urllib.parse import parse_qsl

import trio

from itinerabot.config import Chain
from sandbox.serve import (
    Receive,
    Scope,
    Send,
    answer_lifespan,
    header,
    read_body,
    send_bytes,
    send_json,
)

__all__ = [
    "FakeCircle",
    "FaultKind",
    "RefundScript",
    "Script",
    "Step",
    "expired_script",
    "late_paid_script",
    "never_paid_script",
    "paid_script",
    "underpaid_then_expired_script",
    "underpaid_then_paid_script",
]

JSON = dict[str, Any]

FaultKind = Literal["rate_limit", "server_error", "slow", "garbage"]
FAULT_KINDS: tuple[FaultKind, ...] = ("rate_limit", "server_error", "slow", "garbage")

_CHAINS = frozenset(get_args(Chain))
_CENT = Decimal("0.01")
#: latest statuses after which an intent takes no further payment
_ENDED = frozenset({"complete", "expired", "failed", "refunded"})
#: Circle's default lifetime of a payment intent
INTENT_LIFETIME = 8 * 3600.0


@dataclass(frozen=True)
class Step:
    """One change of an intent, applied once it has been checked `after_checks` times or
    `after_seconds` of trio time have passed since creation (whichever is set and comes first).

    `paid_share` sets amountPaid to that share of the amount (1 = paid in full).
    The first `pending` step also reveals the deposit address.
    """

    status: str
    context: str | None = None
    paid_share: Decimal | None = None
    after_checks: int | None = None
    after_seconds: float | None = None


Script = tuple[Step, ...]


@dataclass(frozen=True)
class RefundScript:
    """What happens to a crypto refund once asked: it becomes `status` ("paid": sent on
    chain, with a transactionHash; "failed", with `error_code`) `after_seconds` of trio time
    after it was asked, seen by the next request about it. With `after_seconds` None it stays
    `pending` until `FakeCircle.settle_refund`.
    """

    status: Literal["paid", "failed"] = "paid"
    after_seconds: float | None = None
    error_code: str = "payment_failed"


def paid_script(
    *, pending_after: float = 1, paid_after: float = 3, by_time: bool = False
) -> Script:
    """created → pending (address) at check `pending_after` → complete/paid at check `paid_after`.

    With `by_time`, the numbers are seconds of trio time since creation instead of checks.
    """
    return (
        _step("pending", pending_after, by_time),
        _step("complete", paid_after, by_time, context="paid", paid_share=Decimal(1)),
    )


def late_paid_script(paid_at: float, *, pending_after: float = 1) -> Script:
    """pending (address) `pending_after` seconds after creation, paid in full `paid_at`
    seconds after creation (trio time): for a payment made long after the poll window."""
    return paid_script(pending_after=pending_after, paid_after=paid_at, by_time=True)


def underpaid_then_paid_script(
    *,
    pending_after: float = 1,
    underpaid_after: float = 2,
    paid_after: float = 4,
    share_first: Decimal = Decimal("0.5"),
    by_time: bool = False,
) -> Script:
    """pending → pending/underpaid (`share_first` of the amount) → complete/paid."""
    return (
        _step("pending", pending_after, by_time),
        _step("pending", underpaid_after, by_time, context="underpaid", paid_share=share_first),
        _step("complete", paid_after, by_time, context="paid", paid_share=Decimal(1)),
    )


def underpaid_then_expired_script(
    *,
    pending_after: float = 1,
    underpaid_after: float = 2,
    expired_after: float = 5,
    share_first: Decimal = Decimal("0.5"),
    by_time: bool = False,
) -> Script:
    """pending → pending/underpaid (`share_first` of the amount arrives) → expired: money
    arrived that pays nothing."""
    return (
        _step("pending", pending_after, by_time),
        _step("pending", underpaid_after, by_time, context="underpaid", paid_share=share_first),
        _step("expired", expired_after, by_time),
    )


def expired_script(
    *, pending_after: float = 1, expired_after: float = 5, by_time: bool = False
) -> Script:
    """pending → expired, nothing paid."""
    return (_step("pending", pending_after, by_time), _step("expired", expired_after, by_time))


def never_paid_script(*, pending_after: float = 1, by_time: bool = False) -> Script:
    """pending for ever."""
    return (_step("pending", pending_after, by_time),)


def _step(
    status: str,
    when: float,
    by_time: bool,
    *,
    context: str | None = None,
    paid_share: Decimal | None = None,
) -> Step:
    if by_time:
        return Step(status, context, paid_share, after_seconds=when)
    return Step(status, context, paid_share, after_checks=int(when))


@dataclass
class _Intent:
    body: JSON
    script: Script
    created_at: float  # trio time
    idempotency_key: str
    expires_at: float  # trio time
    expires_on: str  # the same moment on the wall clock, shown from the first pending step
    applied: int = 0
    checks: int = 0

    @property
    def ended(self) -> bool:
        return str(self.body["timeline"][0]["status"]) in _ENDED


@dataclass
class _FaultPlan:
    share: float = 0.0
    kinds: tuple[FaultKind, ...] = FAULT_KINDS
    methods: frozenset[str] = frozenset({"GET", "POST"})
    queued: collections.deque[FaultKind] = field(default_factory=collections.deque)


class _CircleError(Exception):
    def __init__(self, status: int, code: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body: JSON = {"code": code, "message": message, **extra}


def _utc_now() -> datetime:
    return datetime.now(UTC)


class FakeCircle:
    """Fake Circle API (payment intents, notification subscriptions); the instance is the app.

    `clock` gives the wall-clock datetimes written into intents; scripts run on trio time and
    check counts. Faults are drawn from `random.Random(seed)`, so a run is repeatable.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        clock: Callable[[], datetime] = _utc_now,
        seed: int = 0,
        default_script: Script | None = None,
        client_id: str = "f1397191-56e6-42fd-be86-0a7b9bd91522",
        merchant_wallet_id: str = "1000216185",
        max_page_size: int = 50,
        retry_after: int = 1,
        slow_seconds: float = 120.0,
        intent_lifetime: float = INTENT_LIFETIME,
        refund_script: RefundScript | None = None,
    ) -> None:
        self.api_key = api_key
        self.clock = clock
        self.client_id = client_id
        self.merchant_wallet_id = merchant_wallet_id
        self.default_script: Script = default_script or paid_script()
        self.max_page_size = max_page_size
        self.retry_after = retry_after
        self.slow_seconds = slow_seconds
        self.intent_lifetime = intent_lifetime
        #: what happens to a refund asked when no `script_next_refunds` is queued
        self.refund_script = refund_script or RefundScript()
        self.requests_total = 0
        self.list_calls = 0
        self.gets: collections.Counter[str] = collections.Counter()
        self.checks: collections.Counter[str] = collections.Counter()
        self.faults_injected: collections.Counter[str] = collections.Counter()
        self.subscriptions: list[JSON] = []
        self.payments: dict[str, JSON] = {}  # crypto payments by id, with transactionHash
        #: crypto refunds by id, as they stand now, plus the request's destination
        self.refunds: dict[str, JSON] = {}
        #: refund id by the idempotency key it was asked with
        self.refund_keys: dict[str, str] = {}
        #: refund id → (its script, the trio time it was asked)
        self._refund_plans: dict[str, tuple[RefundScript, float]] = {}
        self._next_refund_scripts: collections.deque[RefundScript] = collections.deque()
        #: (trio time, intent id) of each expire request for a known intent (even refused)
        self.expire_requests: list[tuple[float, str]] = []
        self._expiry_refusals: dict[str, int] = {}
        self._intents: dict[str, _Intent] = {}
        self._by_key: dict[str, str] = {}
        self._next_scripts: collections.deque[Script] = collections.deque()
        self._faults = _FaultPlan()
        self._random = random.Random(seed)

    # ------------------------------------------------------------ control

    def script_next(self, *scripts: Script) -> None:
        """The next created intents follow these scripts, in order (then `default_script`)."""
        self._next_scripts.extend(scripts)

    def set_script(self, intent_id: str, script: Script) -> None:
        """Replace the rest of an intent's script (steps already applied stay applied)."""
        intent = self._intents[intent_id]
        intent.script = tuple(intent.script[: intent.applied]) + tuple(script)

    def advance(self, intent_id: str) -> JSON:
        """Apply the intent's next step now, whatever its trigger; returns the intent."""
        intent = self._intents[intent_id]
        if intent.applied < len(intent.script):
            self._apply(intent, intent.script[intent.applied])
        return self.intent(intent_id)

    def refuse_expiry(self, intent_id: str, *, count: int = 1) -> None:
        """Answer the next `count` expire requests of the intent 409 (it stays open)."""
        self._expiry_refusals[intent_id] = count

    def forget(self, intent_id: str) -> None:
        """Circle no longer knows the intent: 404 from now on."""
        del self._intents[intent_id]

    def misstate_amount(self, intent_id: str, amount: Decimal) -> None:
        """Circle's record of the intent shows `amount` instead of what was asked."""
        self._intents[intent_id].body["amount"]["amount"] = f"{amount:.2f}"

    def intent_paid_more(self, intent_id: str, amount_paid: Decimal) -> None:
        """More USDC lands on the intent's address: its `amountPaid` is now `amount_paid`."""
        self._intents[intent_id].body["amountPaid"]["amount"] = f"{amount_paid:.2f}"

    def keep_open(self, intent_id: str) -> None:
        """Circle is slow to close the intent: it stays open past its `expiresOn`."""
        self._intents[intent_id].expires_at = math.inf

    def script_next_refunds(self, *scripts: RefundScript) -> None:
        """The next refunds asked follow these scripts, in order (then `refund_script`)."""
        self._next_refund_scripts.extend(scripts)

    def settle_refund(
        self,
        refund_id: str,
        status: Literal["paid", "failed"] = "paid",
        *,
        error_code: str = "payment_failed",
    ) -> JSON:
        """Make a pending refund `paid` or `failed` (with `error_code`) now; returns it as
        `GET /v1/payments/{id}` shows it."""
        self._conclude_refund(refund_id, RefundScript(status, error_code=error_code))
        return self.refund(refund_id)

    def refund(self, refund_id: str) -> JSON:
        """A copy of the refund as `GET /v1/payments/{id}` shows it (raises KeyError)."""
        return {
            k: copy.deepcopy(v) for k, v in self.refunds[refund_id].items() if k != "destination"
        }

    def intent(self, intent_id: str) -> JSON:
        """A copy of the intent as the API would show it (raises KeyError)."""
        return copy.deepcopy(self._intents[intent_id].body)

    def intent_ids(self) -> list[str]:
        """Every intent id, oldest first."""
        return list(self._intents)

    def latest_status(self, intent_id: str) -> str:
        """The status of the intent's newest timeline entry."""
        return str(self._intents[intent_id].body["timeline"][0]["status"])

    def fail_next(self, kind: FaultKind, *, count: int = 1) -> None:
        """Answer the next `count` API requests with fault `kind`."""
        self._faults.queued.extend([kind] * count)

    def fault_share(
        self,
        share: float,
        *,
        kinds: Sequence[FaultKind] = FAULT_KINDS,
        methods: Collection[str] = ("GET", "POST"),
    ) -> None:
        """From now on answer a seeded-random `share` (0..1) of requests with one of `kinds`.

        rate_limit: 429 with Retry-After; server_error: 500; slow: answer after
        `slow_seconds` (beyond any sane client timeout); garbage: 200 with a non-JSON body.
        """
        self._faults.share = share
        self._faults.kinds = tuple(kinds)
        self._faults.methods = frozenset(methods)

    # ------------------------------------------------------------ SNS notifications

    def notification_message(self, intent_id: str) -> str:
        """The SNS `Message` string Circle sends when the intent changes."""
        return json.dumps(
            {
                "clientId": self.client_id,
                "notificationType": "paymentIntents",
                "version": 1,
                "customAttributes": {"clientId": self.client_id},
                "paymentIntent": self.intent(intent_id),
            }
        )

    def notification_envelope(
        self,
        intent_id: str,
        *,
        region: str = "us-east-1",
        environment: str = "sandbox",
        message_id: str | None = None,
    ) -> dict[str, str]:
        """The unsigned SNS Notification for the intent; sns_signer adds the Signature."""
        topic = f"arn:aws:sns:{region}:908968368384:{environment}_platform-notifications-topic"
        now = self.clock().astimezone(UTC)
        return {
            "Type": "Notification",
            "MessageId": message_id or str(self._uuid()),
            "TopicArn": topic,
            "Message": self.notification_message(intent_id),
            "Timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
            "SignatureVersion": "1",
            "SigningCertURL": f"https://sns.{region}.amazonaws.com/"
            "SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem",
            "UnsubscribeURL": f"https://sns.{region}.amazonaws.com/?Action=Unsubscribe"
            f"&SubscriptionArn={topic}:{self._uuid()}",
        }

    # ------------------------------------------------------------ ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        self.requests_total += 1
        method: str = scope["method"]
        body = await read_body(receive)
        fault = self._draw_fault(method)
        if fault is not None:
            self.faults_injected[fault] += 1
            if fault == "slow":
                await trio.sleep(self.slow_seconds)
            elif fault == "rate_limit":
                await send_json(
                    send,
                    429,
                    {"code": 429, "message": "Too many requests."},
                    headers=[("retry-after", str(self.retry_after))],
                )
                return
            elif fault == "server_error":
                await send_json(send, 500, {"code": -1, "message": "Something went wrong."})
                return
            else:
                await send_bytes(
                    send,
                    200,
                    b"<html><body>502 Bad Gateway</body></html>",
                    content_type="text/html",
                )
                return
        request_id = str(self._uuid())
        try:
            self._authenticate(header(scope, "authorization"))
            status, payload = self._route(method, scope["path"], scope, body)
        except _CircleError as exc:
            status, payload = exc.status, exc.body
        await send_json(send, status, payload, headers=[("x-request-id", request_id)])

    def _draw_fault(self, method: str) -> FaultKind | None:
        plan = self._faults
        if plan.queued:
            return plan.queued.popleft()
        if plan.share > 0 and method in plan.methods and self._random.random() < plan.share:
            return self._random.choice(plan.kinds)
        return None

    def _authenticate(self, authorization: str | None) -> None:
        key = (authorization or "").removeprefix("Bearer ")
        if not authorization or not authorization.startswith("Bearer ") or not key:
            raise _CircleError(401, 401, "Malformed authorization.")
        if self.api_key is not None and key != self.api_key:
            raise _CircleError(401, 401, "Malformed key. Does it contain three parts?")

    def _route(self, method: str, path: str, scope: Scope, body: bytes) -> tuple[int, JSON]:
        if path == "/v1/paymentIntents" and method == "POST":
            return self._create(_json_body(body))
        if path == "/v1/paymentIntents" and method == "GET":
            query = dict(parse_qsl(bytes(scope.get("query_string", b"")).decode()))
            return 200, {"data": self._list(query)}
        match = re.fullmatch(r"/v1/paymentIntents/([^/]+)", path)
        if match is not None and method == "GET":
            return 200, {"data": self._get(match.group(1))}
        match = re.fullmatch(r"/v1/paymentIntents/([^/]+)/expire", path)
        if match is not None and method == "POST":
            return 201, {"data": self._expire(match.group(1))}
        match = re.fullmatch(r"/v1/paymentIntents/([^/]+)/refund", path)
        if match is not None and method == "POST":
            return 201, {"data": self._refund(match.group(1), _json_body(body))}
        match = re.fullmatch(r"/v1/payments/([^/]+)", path)
        if match is not None and method == "GET":
            payment_id = match.group(1)
            if payment_id in self.refunds:  # a refund is a CryptoPayment of type refund
                self._run_due_refund(payment_id)
                return 200, {"data": self.refund(payment_id)}
            payment = self.payments.get(payment_id)
            if payment is None:
                raise _CircleError(404, 404, "Not found.")
            return 200, {"data": copy.deepcopy(payment)}
        if path == "/v1/notifications/subscriptions" and method == "POST":
            return 200, {"data": self._subscribe(_json_body(body))}
        if path == "/v1/notifications/subscriptions" and method == "GET":
            return 200, {"data": copy.deepcopy(self.subscriptions)}
        raise _CircleError(404, 404, "Not found.")

    # ------------------------------------------------------------ payment intents

    def _create(self, request: JSON) -> tuple[int, JSON]:
        problems = _creation_problems(request)
        if problems:
            raise _CircleError(400, 2, "Invalid entity.", errors=problems)
        key = str(request["idempotencyKey"])
        if key in self._by_key:
            return 201, {"data": self.intent(self._by_key[key])}
        intent_id = str(self._uuid())
        now = self._now()
        currency = request["amount"]["currency"]
        amount = Decimal(request["amount"]["amount"]).quantize(_CENT)
        body: JSON = {
            "id": intent_id,
            "amount": {"amount": str(amount), "currency": currency},
            "amountPaid": {"amount": "0.00", "currency": currency},
            "amountRefunded": {"amount": "0.00", "currency": currency},
            "settlementCurrency": request["settlementCurrency"],
            "paymentMethods": [
                {"type": m["type"], "chain": m["chain"]} for m in request["paymentMethods"]
            ],
            "fees": [],
            "paymentIds": [],
            "refundIds": [],
            "timeline": [{"status": "created", "time": now}],
            "createDate": now,
            "updateDate": now,
            "merchantWalletId": request.get("merchantWalletId", self.merchant_wallet_id),
        }
        script = self._next_scripts.popleft() if self._next_scripts else self.default_script
        expires = self.clock().astimezone(UTC) + timedelta(seconds=self.intent_lifetime)
        created = trio.current_time()
        self._intents[intent_id] = _Intent(
            body, script, created, key, created + self.intent_lifetime, _iso(expires)
        )
        self._by_key[key] = intent_id
        return 201, {"data": copy.deepcopy(body)}

    def _get(self, intent_id: str) -> JSON:
        intent = self._intents.get(intent_id)
        if intent is None:
            raise _CircleError(404, 404, "Not found.")
        self.gets[intent_id] += 1
        self._check(intent)
        return copy.deepcopy(intent.body)

    def _list(self, query: dict[str, str]) -> list[JSON]:
        """Newest first; filters on the latest timeline entry; pages by intent id.

        Filtering sees each intent as it was before this call; the intents returned count as
        checked and show any step that check triggers.
        """
        self.list_calls += 1
        for intent in self._intents.values():
            self._run_due_steps(intent)
        rows = list(reversed(self._intents.values()))
        if "status" in query:
            rows = [i for i in rows if i.body["timeline"][0]["status"] == query["status"]]
        if "context" in query:
            rows = [i for i in rows if i.body["timeline"][0].get("context") == query["context"]]
        if "from" in query:
            rows = [i for i in rows if i.body["createDate"] >= query["from"]]
        if "to" in query:
            rows = [i for i in rows if i.body["createDate"] <= query["to"]]
        try:
            size = min(self.max_page_size, max(1, int(query.get("pageSize", self.max_page_size))))
        except ValueError:
            raise _CircleError(400, 2, "Invalid pageSize.") from None
        ids = [i.body["id"] for i in rows]
        if "pageAfter" in query and query["pageAfter"] in ids:
            page = rows[ids.index(query["pageAfter"]) + 1 :][:size]
        elif "pageBefore" in query and query["pageBefore"] in ids:
            page = rows[: ids.index(query["pageBefore"])][-size:]
        else:
            page = rows[:size]
        for intent in page:
            self._check(intent)
        return [copy.deepcopy(i.body) for i in page]

    def _check(self, intent: _Intent) -> None:
        intent.checks += 1
        self.checks[intent.body["id"]] += 1
        self._run_due_steps(intent)

    def _run_due_steps(self, intent: _Intent) -> None:
        now = trio.current_time()
        elapsed = now - intent.created_at
        while intent.applied < len(intent.script) and not intent.ended:
            step = intent.script[intent.applied]
            due = (step.after_checks is not None and intent.checks >= step.after_checks) or (
                step.after_seconds is not None and elapsed >= step.after_seconds
            )
            if not due:
                break
            timed = step.after_seconds is not None and (
                intent.created_at + step.after_seconds < intent.expires_at
            )
            if now >= intent.expires_at and not timed:
                break  # the intent expired before this step could happen
            self._apply(intent, step)
        if now >= intent.expires_at and not intent.ended:
            self._add_entry(intent, {"status": "expired", "time": intent.expires_on})

    def _expire(self, intent_id: str) -> JSON:
        intent = self._intents.get(intent_id)
        if intent is None:
            raise _CircleError(404, 404, "Not found.")
        self.expire_requests.append((trio.current_time(), intent_id))
        if self._expiry_refusals.get(intent_id, 0) > 0:
            self._expiry_refusals[intent_id] -= 1
            raise _CircleError(409, 3, "Try again later.")
        self._run_due_steps(intent)
        if intent.ended:
            raise _CircleError(400, 2, "The payment intent has already ended.")
        self._add_entry(intent, {"status": "expired", "time": self._now()})
        return copy.deepcopy(intent.body)

    def _refund(self, intent_id: str, request: JSON) -> JSON:
        """A crypto refund: at least one settled payment, at most what is left to refund;
        the intent becomes `refunded` and takes no new payment. Same key, same answer."""
        intent = self._intents.get(intent_id)
        if intent is None:
            raise _CircleError(404, 404, "Not found.")
        problems = _refund_problems(request)
        if problems:
            raise _CircleError(400, 2, "Invalid entity.", errors=problems)
        key = str(request["idempotencyKey"])
        if key in self.refund_keys:
            known = self.refund_keys[key]
            self._run_due_refund(known)
            return self.refund(known)
        self._run_due_steps(intent)
        body = intent.body
        paid = Decimal(body["amountPaid"]["amount"])
        refunded = Decimal(body["amountRefunded"]["amount"])
        amount = Decimal(request["toAmount"]["amount"]).quantize(_CENT)
        if paid <= 0:
            raise _CircleError(400, 2, "The payment intent has no settled payment to refund.")
        if amount > paid - refunded:
            raise _CircleError(400, 2, "The refund amount exceeds the amount left to refund.")
        now = self._now()
        refund_id = str(self._uuid())
        method = body["paymentMethods"][0]
        refund: JSON = {
            "id": refund_id,
            "type": "refund",
            "status": "pending",
            "amount": {"currency": request["amount"]["currency"]},
            "merchantId": self.client_id,
            "merchantWalletId": self.merchant_wallet_id,
            "paymentIntentId": intent_id,
            "settlementAmount": {"amount": str(amount), "currency": "USD"},
            "depositAddress": {"chain": method["chain"], "address": method.get("address", "")},
            "createDate": now,
            "updateDate": now,
        }
        self.refunds[refund_id] = {**refund, "destination": dict(request["destination"])}
        self.refund_keys[key] = refund_id
        script = self._next_refund_scripts.popleft() if self._next_refund_scripts else None
        self._refund_plans[refund_id] = (script or self.refund_script, trio.current_time())
        body["amountRefunded"]["amount"] = str(refunded + amount)
        body["refundIds"].append(refund_id)
        self._add_entry(intent, {"status": "refunded", "time": now})
        return copy.deepcopy(refund)

    def _run_due_refund(self, refund_id: str) -> None:
        script, asked_at = self._refund_plans[refund_id]
        due = script.after_seconds is not None
        if due and trio.current_time() >= asked_at + (script.after_seconds or 0.0):
            self._conclude_refund(refund_id, script)

    def _conclude_refund(self, refund_id: str, script: RefundScript) -> None:
        """A pending refund becomes `paid` (with its transaction) or `failed` (with
        `errorCode`, the field Circle's other money objects give their failure reason in;
        the spec's CryptoPayment names none). A failed refund sent nothing, so its amount may
        be refunded again. A concluded refund does not change any more."""
        refund = self.refunds[refund_id]
        if refund["status"] != "pending":
            return
        refund["status"] = script.status
        refund["updateDate"] = self._now()
        if script.status == "paid":
            refund["transactionHash"] = "0x" + "".join(
                self._random.choices("0123456789abcdef", k=64)
            )
            return
        refund["errorCode"] = script.error_code
        amounts = self._intents[refund["paymentIntentId"]].body["amountRefunded"]
        back = Decimal(refund["settlementAmount"]["amount"])
        amounts["amount"] = str(Decimal(amounts["amount"]) - back)

    def _apply(self, intent: _Intent, step: Step) -> None:
        body = intent.body
        now = self._now()
        methods = body["paymentMethods"]
        if step.status == "pending" and methods and "address" not in methods[0]:
            for method in methods:
                method["address"] = "0x" + "".join(self._random.choices("0123456789abcdef", k=40))
            body["expiresOn"] = intent.expires_on
            body["fees"] = [
                {"type": "blockchainLeaseFee", "amount": "0.00", "currency": "USD"},
            ]
        if step.paid_share is not None:
            amount = Decimal(body["amount"]["amount"])
            paid = (amount * step.paid_share).quantize(_CENT, rounding=ROUND_DOWN)
            body["amountPaid"]["amount"] = str(paid)
            payment_id = str(self._uuid())
            body["paymentIds"].append(payment_id)
            self.payments[payment_id] = {
                "id": payment_id,
                "type": "payment",
                "merchantId": self.client_id,
                "merchantWalletId": self.merchant_wallet_id,
                "amount": {"amount": str(paid), "currency": "USD"},
                "status": "paid",
                "paymentIntentId": body["id"],
                "transactionHash": "0x" + "".join(self._random.choices("0123456789abcdef", k=64)),
                "createDate": now,
                "updateDate": now,
            }
        entry: JSON = {"status": step.status, "time": now}
        if step.context is not None:
            entry["context"] = step.context
        self._add_entry(intent, entry)
        intent.applied += 1

    def _add_entry(self, intent: _Intent, entry: JSON) -> None:
        intent.body["timeline"].insert(0, entry)  # newest first, as Circle's docs show it
        intent.body["updateDate"] = entry["time"]

    def _subscribe(self, request: JSON) -> JSON:
        endpoint = request.get("endpoint")
        if not isinstance(endpoint, str) or not endpoint:
            raise _CircleError(
                400, 2, "Invalid entity.", errors=[_problem("endpoint", "may not be empty")]
            )
        subscription: JSON = {
            "id": str(self._uuid()),
            "endpoint": endpoint,
            "subscriptionDetails": [
                {
                    "url": f"arn:aws:sns:{region}:908968368384:"
                    f"sandbox_platform-notifications-topic:{self._uuid()}",
                    "status": "pending",
                }
                for region in ("us-east-1", "us-west-2")
            ],
        }
        self.subscriptions.append(subscription)
        return copy.deepcopy(subscription)

    def _now(self) -> str:
        return _iso(self.clock())

    def _uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self._random.getrandbits(128), version=4)


# ---------------------------------------------------------------- helpers


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json_body(body: bytes) -> JSON:
    try:
        decoded = json.loads(body or b"{}")
    except ValueError:
        raise _CircleError(400, 2, "Invalid entity. Malformed JSON.") from None
    if not isinstance(decoded, dict):
        raise _CircleError(400, 2, "Invalid entity. Expected a JSON object.")
    return decoded


def _problem(location: str, message: str) -> JSON:
    return {
        "error": "invalid_value",
        "message": f"{location} {message}",
        "location": location,
        "invalidValue": None,
        "constraints": {},
    }


def _refund_problems(request: JSON) -> list[JSON]:
    """What Circle would refuse in a CryptoRefundCreationRequest."""
    problems: list[JSON] = []
    try:
        uuid.UUID(str(request.get("idempotencyKey")))
    except ValueError:
        problems.append(_problem("idempotencyKey", "must be a UUID"))
    destination = request.get("destination")
    if not isinstance(destination, dict) or not destination.get("address"):
        problems.append(_problem("destination.address", "may not be empty"))
    elif destination.get("chain") not in _CHAINS:
        problems.append(_problem("destination.chain", "is not supported"))
    amount = request.get("amount")
    if not isinstance(amount, dict) or amount.get("currency") not in ("USD", "ETH", "BTC"):
        problems.append(_problem("amount.currency", "is not a supported currency"))
    to_amount = request.get("toAmount")
    if not isinstance(to_amount, dict) or to_amount.get("currency") not in ("USD", "ETH", "BTC"):
        problems.append(_problem("toAmount.currency", "is not a supported currency"))
    else:
        try:
            if Decimal(str(to_amount.get("amount"))) <= 0:
                problems.append(_problem("toAmount.amount", "must be greater than 0"))
        except InvalidOperation:
            problems.append(_problem("toAmount.amount", "must be a decimal string"))
    return problems


def _creation_problems(request: JSON) -> list[JSON]:
    """What Circle would refuse in a transient PaymentIntentCreationRequest."""
    problems: list[JSON] = []
    try:
        uuid.UUID(str(request.get("idempotencyKey")))
    except ValueError:
        problems.append(_problem("idempotencyKey", "must be a UUID"))
    amount = request.get("amount")
    if not isinstance(amount, dict):
        problems.append(_problem("amount", "may not be null"))
    else:
        try:
            if Decimal(str(amount.get("amount"))) <= 0:
                problems.append(_problem("amount.amount", "must be greater than 0"))
        except InvalidOperation:
            problems.append(_problem("amount.amount", "must be a decimal string"))
        if amount.get("currency") not in ("USD", "EUR", "ETH", "BTC"):
            problems.append(_problem("amount.currency", "is not a supported currency"))
    if request.get("settlementCurrency") not in ("USD", "EUR", "BTC", "ETH"):
        problems.append(_problem("settlementCurrency", "is not a supported currency"))
    methods = request.get("paymentMethods")
    if not isinstance(methods, list) or not methods:
        problems.append(_problem("paymentMethods", "may not be empty"))
    else:
        for i, m in enumerate(methods):
            if not isinstance(m, dict) or m.get("type") != "blockchain":
                problems.append(_problem(f"paymentMethods[{i}].type", "must be blockchain"))
            elif m.get("chain") not in _CHAINS:
                problems.append(_problem(f"paymentMethods[{i}].chain", "is not supported"))
    if request.get("type", "transient") != "transient":
        problems.append(_problem("type", "only transient intents are faked"))
    return problems
