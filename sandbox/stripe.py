"""Fake Stripe API for Checkout Sessions and Refunds, and correctly signed webhook deliveries.

`FakeStripe` is an ASGI app: point `StripeClient(base_addresses={"api": base})` at it on loopback,
or in process with `in_process_http_client(fake)`. Tests then `complete()` or `expire()` a session
and `deliver_event()` the resulting event, signed with `stripe.WebhookSignature`. Sessions the
bot never created (a Payment Link's, another product's) come from `foreign_session()`. A
session's `amount_total` is its items' quantity × unit_amount; the items are kept (`line_items`,
and `GET /v1/checkout/sessions/{id}/line_items`).
Refunds are created, listed (`GET /v1/refunds?payment_intent=`) and retrieved; idempotency keys
are kept 24 hours of the fake's clock, as Stripe keeps them, then run as new requests.
"""

from __future__ import annotations

import copy
import json
import random
import re
import string
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import httpx
import stripe
import trio

from sandbox.serve import (
    InProcessTransport,
    Receive,
    Scope,
    Send,
    answer_lifespan,
    header,
    read_body,
    send_json,
)

__all__ = [
    "FakeStripe",
    "StripeRequest",
    "decode_form",
    "in_process_http_client",
    "signature_header",
]

JSON = dict[str, Any]

# Top-level parameters of POST /v1/checkout/sessions the fake accepts (Stripe refuses unknown ones).
_SESSION_PARAMS = frozenset(
    {
        "mode", "line_items", "success_url", "cancel_url", "return_url", "ui_mode",
        "client_reference_id", "metadata", "expires_at", "customer", "customer_email",
        "customer_creation", "currency", "locale", "payment_method_types", "payment_intent_data",
        "allow_promotion_codes", "billing_address_collection", "submit_type", "expand",
        "custom_text", "after_expiration", "phone_number_collection", "invoice_creation",
        "automatic_tax", "consent_collection", "custom_fields", "discounts",
        "payment_method_configuration", "shipping_address_collection",
    }
)  # fmt: skip
# Parameters of POST /v1/refunds
_REFUND_PARAMS = frozenset(
    {
        "payment_intent", "charge", "amount", "metadata", "reason", "instructions_email",
        "origin", "refund_application_fee", "reverse_transfer", "expand",
    }
)  # fmt: skip
# Parameters of GET /v1/refunds
_REFUND_LIST_PARAMS = frozenset(
    {"payment_intent", "charge", "limit", "starting_after", "ending_before", "created", "expand"}
)
_REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
#: Stripe keeps an idempotency key (and the answer saved with it) for about 24 hours; a key
#: sent again after that runs as a new request
IDEMPOTENCY_KEY_LIFETIME = 24 * 3600
_CURRENCY_SIGNS = {"usd": "$", "eur": "€", "gbp": "£"}


@dataclass(frozen=True)
class StripeRequest:
    """One request the fake received: headers lower-cased, form decoded into nested dicts."""

    method: str
    path: str
    headers: dict[str, str]
    form: JSON
    status: int


class _StripeError(Exception):
    def __init__(
        self,
        status: int,
        error_type: str,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: JSON = {"error": {"type": error_type, "message": message}}
        if code is not None:
            self.body["error"]["code"] = code
        if param is not None:
            self.body["error"]["param"] = param


@dataclass
class _Charge:
    """What the fake keeps of a paid PaymentIntent: enough to refund it."""

    payment_intent: str
    charge: str
    amount: int
    currency: str
    refunded: int = 0


class FakeStripe:
    """Fake Stripe (Checkout Sessions and Refunds); the instance is the ASGI app.

    `clock` gives wall-clock Unix seconds (created, expires_at, signature timestamps).
    `api_key`, if given, is the only secret key accepted; otherwise any `sk_test_…` key is.
    Objects and events carry `livemode`: true only for a live key (`sk_live_…`).
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        clock: Callable[[], float] = time.time,
        seed: int = 0,
        checkout_url: str = "https://checkout.stripe.com/c/pay/",
    ) -> None:
        self.api_key = api_key
        self.clock = clock
        self.checkout_url = checkout_url
        self.api_version: str = stripe.api_version
        self.livemode = bool(api_key and api_key.startswith(("sk_live_", "rk_live_")))
        self.sessions: dict[str, JSON] = {}
        #: each session's line items as `GET /v1/checkout/sessions/{id}/line_items` lists them
        self.line_items: dict[str, list[JSON]] = {}
        self.refunds: dict[str, JSON] = {}
        self.charges: dict[str, _Charge] = {}  # by PaymentIntent id
        self.requests: list[StripeRequest] = []
        self.events: list[JSON] = []
        #: the status a new refund gets: "succeeded" (cards, usually) or "pending"
        self.refund_status = "succeeded"
        self._idempotent: dict[str, tuple[JSON, JSON]] = {}  # key -> (params, session)
        self._idempotent_refunds: dict[str, tuple[JSON, JSON]] = {}  # key -> (params, answer)
        self._key_saved_at: dict[str, float] = {}  # key -> when its first request ran
        self._faults: list[list[int]] = []  # [status, remaining]
        self._lost_answers = 0
        self._delays: list[list[float]] = []  # [seconds, remaining]
        self._random = random.Random(seed)

    # ------------------------------------------------------------ control

    def fail_next(self, *, status: int = 500, count: int = 1) -> None:
        """Answer the next `count` API requests with `status` (429 rate limit, 5xx api_error)."""
        self._faults.append([status, count])

    def clear_faults(self) -> None:
        """Forget the injected failures, lost and delayed answers still to come."""
        self._faults.clear()
        self._lost_answers = 0
        self._delays.clear()

    def delay_next_answers(self, seconds: float, count: int = 1) -> None:
        """Carry out the next `count` API requests at once, then hold each answer `seconds`
        (trio time) before sending it: a slow network, or a Stripe slow to answer. Longer
        than the client's read timeout, the client gives up (it cannot tell what happened)."""
        self._delays.append([seconds, count])

    def lose_next_answers(self, count: int = 1) -> None:
        """Carry out the next `count` API requests, then answer 500 as if the answer was lost
        on the way back (the caller cannot tell whether Stripe acted)."""
        self._lost_answers += count

    def complete(
        self,
        session_id: str,
        *,
        payment_status: str | None = None,
        discount: int = 0,
        tax: int = 0,
    ) -> JSON:
        """The customer paid: the session is complete; returns checkout.session.completed.

        `payment_status="unpaid"` models a delayed method (bank debit); follow with
        `async_payment_succeeded()` or `async_payment_failed()`. `discount` (a promotion
        code) and `tax` (automatic tax) change `amount_total` as Stripe does; a total of 0
        completes with `no_payment_required` and no PaymentIntent.
        """
        session = self._session(session_id)
        if session["status"] != "open":
            raise ValueError(f"session {session_id} is {session['status']}, not open")
        subtotal = int(session.get("amount_subtotal") or 0)
        total = max(0, subtotal - discount + tax)
        if "amount_total" in session:
            session.update(
                amount_total=total,
                total_details={
                    "amount_discount": discount,
                    "amount_shipping": 0,
                    "amount_tax": tax,
                },
            )
        if payment_status is None:
            payment_status = (
                "paid" if total > 0 or "amount_total" not in session else "no_payment_required"
            )
        intent = None
        if payment_status != "no_payment_required":
            intent = self._new_id("pi_3", 23)
            currency = str(session.get("currency") or "usd")
            self.charges[intent] = _Charge(intent, self._new_id("ch_3", 23), total, currency)
        session.update(
            status="complete",
            payment_status=payment_status,
            payment_intent=intent,
            url=None,
            customer_details={
                "address": None,
                "email": session.get("customer_email") or "traveller@example.com",
                "name": "Sandbox Traveller",
                "phone": None,
                "tax_exempt": "none",
                "tax_ids": [],
            },
        )
        return self.event("checkout.session.completed", session)

    def async_payment_succeeded(self, session_id: str) -> JSON:
        """A delayed payment cleared; returns checkout.session.async_payment_succeeded."""
        session = self._session(session_id)
        session["payment_status"] = "paid"
        return self.event("checkout.session.async_payment_succeeded", session)

    def async_payment_failed(self, session_id: str) -> JSON:
        """A delayed payment failed; returns checkout.session.async_payment_failed."""
        session = self._session(session_id)
        session["payment_status"] = "unpaid"
        return self.event("checkout.session.async_payment_failed", session)

    def expire(self, session_id: str) -> JSON:
        """The session timed out unpaid; returns checkout.session.expired."""
        session = self._session(session_id)
        if session["status"] != "open":
            raise ValueError(f"session {session_id} is {session['status']}, not open")
        session.update(status="expired", url=None)
        return self.event("checkout.session.expired", session)

    def event(self, event_type: str, obj: Mapping[str, Any]) -> JSON:
        """A real-shaped Event carrying a snapshot of `obj`; also kept in `self.events`."""
        event: JSON = {
            "id": self._new_id("evt_", 24),
            "object": "event",
            "api_version": self.api_version,
            "created": int(self.clock()),
            "data": {"object": copy.deepcopy(dict(obj))},
            "livemode": self.livemode,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
        }
        self.events.append(event)
        return event

    def restate(
        self, event: Mapping[str, Any], *, livemode: bool | None = None, **session: Any
    ) -> JSON:
        """A signed-able variant of `event` under a new id, its session's fields changed (say
        `currency="eur"`), for checks Stripe's own flows cannot easily produce. `livemode`
        changes both the event's and the session's flag."""
        obj = {**event["data"]["object"], **session}
        if livemode is not None:
            obj["livemode"] = livemode
        varied = self.event(str(event["type"]), obj)
        varied["livemode"] = event["livemode"] if livemode is None else livemode
        return varied

    def settle_refund(self, refund_id: str, status: str = "succeeded") -> JSON:
        """A pending refund ends (`succeeded` or `failed`); returns refund.updated (Stripe
        also sends refund.failed for a failure; this returns the one event)."""
        refund = self.refunds[refund_id]
        if refund["status"] != "pending":
            raise ValueError(f"refund {refund_id} is {refund['status']}, not pending")
        refund["status"] = status
        if status == "failed":
            self._refund_failed(refund, "expired_or_canceled_card")
        return self.event("refund.updated", refund)

    def return_refund(self, refund_id: str, reason: str = "lost_or_stolen_card") -> JSON:
        """The card's bank sent back a refund that had succeeded: Stripe marks it failed, puts
        the money back on the account's balance, and sends refund.failed (returned)."""
        refund = self.refunds[refund_id]
        if refund["status"] != "succeeded":
            raise ValueError(f"refund {refund_id} is {refund['status']}, not succeeded")
        refund["status"] = "failed"
        self._refund_failed(refund, reason)
        return self.event("refund.failed", refund)

    def _refund_failed(self, refund: JSON, reason: str) -> None:
        refund["failure_reason"] = reason
        refund["failure_balance_transaction"] = self._new_id("txn_3", 23)
        self.charges[refund["payment_intent"]].refunded -= int(refund["amount"])

    def set_metadata(self, session_id: str, metadata: Mapping[str, str]) -> JSON:
        """Update a session's metadata, as `POST /v1/checkout/sessions/{id}` (or the Dashboard)
        may; returns the session."""
        session = self._session(session_id)
        session["metadata"] = {**session.get("metadata", {}), **metadata}
        return copy.deepcopy(session)

    def foreign_session(
        self,
        *,
        amount: int,
        currency: str = "eur",
        metadata: Mapping[str, str] | None = None,
        client_reference_id: str | None = None,
    ) -> JSON:
        """An open session the bot never created, as a Payment Link on the same account makes:
        any amount and currency, and whatever metadata and reference the link carries.
        `complete()` it like any other."""
        form: JSON = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": "1",
                    "price_data": {
                        "currency": currency,
                        "unit_amount": str(amount),
                        "product_data": {"name": "Payment Link product"},
                    },
                }
            ],
            "metadata": dict(metadata or {}),
            "success_url": "https://example.com/thanks",
        }
        if client_reference_id is not None:
            form["client_reference_id"] = client_reference_id
        session = self._create_session(form, None)
        self.sessions[session["id"]]["payment_link"] = self._new_id("plink_1", 23)
        return copy.deepcopy(self.sessions[session["id"]])

    async def deliver_event(
        self,
        event: Mapping[str, Any],
        url: str,
        secret: str,
        *,
        client: httpx.AsyncClient,
        times: int = 1,
    ) -> list[httpx.Response]:
        """POST `event` to the bot's webhook `times` times, each signed afresh like Stripe does.

        The body is Stripe's pretty-printed JSON; the signature covers exactly those bytes.
        Raises whatever httpx raises if the endpoint cannot be reached.
        """
        payload = json.dumps(event, indent=2)
        responses = []
        for _ in range(times):
            signature = signature_header(payload, secret, int(self.clock()))
            responses.append(
                await client.post(
                    url,
                    content=payload.encode("utf-8"),
                    headers={
                        "Content-Type": "application/json; charset=utf-8",
                        "Stripe-Signature": signature,
                        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                    },
                )
            )
        return responses

    # ------------------------------------------------------------ ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method: str = scope["method"]
        path: str = scope["path"]
        body = await read_body(receive)
        headers = {
            bytes(k).decode("latin-1").lower(): bytes(v).decode("latin-1")
            for k, v in scope["headers"]
        }
        form: JSON = {}
        status = 200
        try:
            form = decode_form(body.decode("utf-8") or scope.get("query_string", b"").decode())
            self._authenticate(header(scope, "authorization"))
            self._take_fault()
            key = header(scope, "idempotency-key")
            self._forget_if_expired(key)
            result = self._route(method, path, form, key)
            if self._lost_answers > 0:
                self._lost_answers -= 1
                raise _StripeError(500, "api_error", "Sandbox: the answer was lost.")
        except _StripeError as exc:
            status, result = exc.status, exc.body
        except ValueError as exc:
            status, result = 400, _StripeError(400, "invalid_request_error", str(exc)).body
        self.requests.append(StripeRequest(method, path, headers, form, status))
        request_id = "req_" + "".join(self._random.choices(string.ascii_letters, k=14))
        await self._take_delay()  # done and recorded: only the answer is late
        await send_json(send, status, result, headers=[("request-id", request_id)])

    def _route(self, method: str, path: str, form: JSON, idempotency_key: str | None) -> JSON:
        if path == "/v1/checkout/sessions" and method == "POST":
            self._key_unused_elsewhere(idempotency_key, self._idempotent)
            return self._create_session(form, idempotency_key)
        if path == "/v1/refunds" and method == "POST":
            self._key_unused_elsewhere(idempotency_key, self._idempotent_refunds)
            return self._create_refund(form, idempotency_key)
        if path == "/v1/refunds" and method == "GET":
            return self._list_refunds(form)
        refund = re.fullmatch(r"/v1/refunds/([^/]+)", path)
        if refund is not None and method == "GET":
            found = self.refunds.get(refund.group(1))
            if found is None:
                raise _StripeError(
                    404,
                    "invalid_request_error",
                    f"No such refund: '{refund.group(1)}'",
                    param="id",
                    code="resource_missing",
                )
            return copy.deepcopy(found)
        items = re.fullmatch(r"/v1/checkout/sessions/([^/]+)/line_items", path)
        if items is not None and method == "GET":
            self._session(items.group(1), status=404)
            return {
                "object": "list",
                "data": copy.deepcopy(self.line_items[items.group(1)]),
                "has_more": False,
                "url": path,
            }
        match = re.fullmatch(r"/v1/checkout/sessions/([^/]+)(/expire)?", path)
        if match is not None and method == "GET" and match.group(2) is None:
            return copy.deepcopy(self._session(match.group(1), status=404))
        if match is not None and method == "POST" and match.group(2) is None:
            self._session(match.group(1), status=404)
            for name in form:
                if name != "metadata":
                    raise _StripeError(
                        400,
                        "invalid_request_error",
                        f"Received unknown parameter: {name}",
                        param=name,
                    )
            return self.set_metadata(match.group(1), form.get("metadata") or {})
        if match is not None and method == "POST" and match.group(2):
            session = self._session(match.group(1), status=404)
            if session["status"] != "open":
                raise _StripeError(
                    400,
                    "invalid_request_error",
                    f'Only Checkout Sessions with a status in ["open"] can be expired. '
                    f'This Checkout Session has a status of "{session["status"]}".',
                )
            self.expire(session["id"])
            return copy.deepcopy(session)
        raise _StripeError(
            404, "invalid_request_error", f"Unrecognized request URL ({method}: {path})."
        )

    def _authenticate(self, authorization: str | None) -> None:
        if not authorization or not authorization.startswith("Bearer "):
            raise _StripeError(
                401,
                "invalid_request_error",
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth "
                "(e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
            )
        key = authorization.removeprefix("Bearer ")
        valid = key == self.api_key if self.api_key else key.startswith(("sk_test_", "rk_test_"))
        if not valid:
            raise _StripeError(
                401, "invalid_request_error", f"Invalid API Key provided: {key[:8]}********"
            )

    async def _take_delay(self) -> None:
        if not self._delays:
            return
        delay = self._delays[0]
        delay[1] -= 1
        if delay[1] <= 0:
            self._delays.pop(0)
        await trio.sleep(delay[0])

    def _forget_if_expired(self, key: str | None) -> None:
        """Stripe forgets a key about 24 h after its first request."""
        if key is None or key not in self._key_saved_at:
            return
        if self.clock() - self._key_saved_at[key] >= IDEMPOTENCY_KEY_LIFETIME:
            del self._key_saved_at[key]
            self._idempotent.pop(key, None)
            self._idempotent_refunds.pop(key, None)

    def _take_fault(self) -> None:
        if not self._faults:
            return
        fault = self._faults[0]
        fault[1] -= 1
        if fault[1] <= 0:
            self._faults.pop(0)
        if fault[0] == 429:
            raise _StripeError(
                429,
                "invalid_request_error",
                "Request rate limit exceeded. Learn more about rate limits here "
                "https://stripe.com/docs/rate-limits.",
            )
        raise _StripeError(fault[0], "api_error", "Sandbox: injected server error.")

    # ------------------------------------------------------------ refunds

    def _key_unused_elsewhere(self, key: str | None, here: Mapping[str, Any]) -> None:
        """Stripe's idempotency keys are per account: one key, one endpoint."""
        used = key is not None and key not in here
        if used and (key in self._idempotent or key in self._idempotent_refunds):
            raise _StripeError(
                400,
                "idempotency_error",
                "Keys for idempotent requests can only be used for the same endpoint they were "
                f"first used for ('{key}').",
            )

    def _create_refund(self, form: JSON, idempotency_key: str | None) -> JSON:
        if idempotency_key is not None and idempotency_key in self._idempotent_refunds:
            first_params, first_answer = self._idempotent_refunds[idempotency_key]
            if first_params != form:
                raise _StripeError(
                    400,
                    "idempotency_error",
                    "Keys for idempotent requests can only be used with the same parameters "
                    "they were first used with. Try using a key other than "
                    f"'{idempotency_key}' if you meant to execute a different request.",
                )
            return copy.deepcopy(first_answer)  # Stripe replays the first answer
        for name in form:
            if name not in _REFUND_PARAMS:
                raise _StripeError(
                    400, "invalid_request_error", f"Received unknown parameter: {name}", param=name
                )
        intent = form.get("payment_intent")
        if not intent:
            raise _StripeError(
                400,
                "invalid_request_error",
                "One of the following params should be provided for this request: "
                "payment_intent or charge.",
            )
        paid = self.charges.get(str(intent))
        if paid is None:
            raise _StripeError(
                400,
                "invalid_request_error",
                f"No such payment_intent: '{intent}'",
                param="payment_intent",
                code="resource_missing",
            )
        remaining = paid.amount - paid.refunded
        amount = _integer(form, "amount", default=remaining)
        if amount <= 0:
            raise _StripeError(
                400, "invalid_request_error", "Invalid positive integer", param="amount"
            )
        if remaining == 0:
            raise _StripeError(
                400,
                "invalid_request_error",
                f"Charge {paid.charge} has already been refunded.",
                code="charge_already_refunded",
            )
        if amount > remaining:
            raise _StripeError(
                400,
                "invalid_request_error",
                f"Refund amount ({_money(amount, paid.currency)}) is greater than unrefunded "
                f"amount on charge ({_money(remaining, paid.currency)})",
                param="amount",
                code="amount_too_large",
            )
        reason = form.get("reason")
        if reason is not None and reason not in _REFUND_REASONS:
            raise _StripeError(
                400, "invalid_request_error", f"Invalid reason: {reason}", param="reason"
            )
        paid.refunded += amount
        refund: JSON = {
            "id": self._new_id("re_3", 23),
            "object": "refund",
            "amount": amount,
            "balance_transaction": self._new_id("txn_3", 23),
            "charge": paid.charge,
            "created": int(self.clock()),
            "currency": paid.currency,
            "destination_details": {
                "card": {
                    "reference_status": "pending",
                    "reference_type": "acquirer_reference_number",
                    "type": "refund",
                },
                "type": "card",
            },
            "metadata": dict(form.get("metadata") or {}),
            "payment_intent": paid.payment_intent,
            "reason": reason,
            "receipt_number": None,
            "source_transfer_reversal": None,
            "status": self.refund_status,
            "transfer_reversal": None,
        }
        self.refunds[refund["id"]] = refund
        if idempotency_key is not None:
            self._idempotent_refunds[idempotency_key] = (form, copy.deepcopy(refund))
            self._key_saved_at[idempotency_key] = self.clock()
        return copy.deepcopy(refund)

    def _list_refunds(self, form: JSON) -> JSON:
        """GET /v1/refunds: newest first, filtered by payment_intent or charge, paged."""
        for name in form:
            if name not in _REFUND_LIST_PARAMS:
                raise _StripeError(
                    400, "invalid_request_error", f"Received unknown parameter: {name}", param=name
                )
        limit = _integer(form, "limit", default=10)
        if not 1 <= limit <= 100:
            raise _StripeError(
                400,
                "invalid_request_error",
                "This value must be greater than or equal to 1 and less than or equal to 100.",
                param="limit",
            )
        intent, charge = form.get("payment_intent"), form.get("charge")
        if intent is not None and intent not in self.charges:
            raise _StripeError(
                400,
                "invalid_request_error",
                f"No such payment_intent: '{intent}'",
                param="payment_intent",
                code="resource_missing",
            )
        found = [
            r
            for r in reversed(self.refunds.values())
            if intent in (None, r["payment_intent"]) and charge in (None, r["charge"])
        ]
        after = form.get("starting_after")
        if after is not None:
            ids = [r["id"] for r in found]
            if after not in ids:
                raise _StripeError(
                    400,
                    "invalid_request_error",
                    f"No such refund: '{after}'",
                    param="starting_after",
                    code="resource_missing",
                )
            found = found[ids.index(after) + 1 :]
        return {
            "object": "list",
            "data": copy.deepcopy(found[:limit]),
            "has_more": len(found) > limit,
            "url": "/v1/refunds",
        }

    # ------------------------------------------------------------ sessions

    def _create_session(self, form: JSON, idempotency_key: str | None) -> JSON:
        if idempotency_key is not None and idempotency_key in self._idempotent:
            first_params, first = self._idempotent[idempotency_key]
            if first_params != form:
                raise _StripeError(
                    400,
                    "idempotency_error",
                    "Keys for idempotent requests can only be used with the same parameters "
                    "they were first used with. Try using a key other than "
                    f"'{idempotency_key}' if you meant to execute a different request.",
                )
            return copy.deepcopy(self.sessions[first["id"]])
        for name in form:
            if name not in _SESSION_PARAMS:
                raise _StripeError(
                    400, "invalid_request_error", f"Received unknown parameter: {name}", param=name
                )
        mode = _required(form, "mode")
        if mode not in ("payment", "setup", "subscription"):
            raise _StripeError(400, "invalid_request_error", f"Invalid mode: {mode}", param="mode")
        created = int(self.clock())
        amount, currency = self._line_items_total(form)
        expires_at = _integer(form, "expires_at", default=created + 24 * 3600)
        if not created + 30 * 60 <= expires_at <= created + 24 * 3600:
            raise _StripeError(
                400,
                "invalid_request_error",
                "The `expires_at` timestamp must be between 30 minutes and 24 hours from "
                "Checkout Session creation.",
                param="expires_at",
            )
        session_id = self._new_id("cs_live_a1" if self.livemode else "cs_test_a1", 56)
        session: JSON = {
            "id": session_id,
            "object": "checkout.session",
            "after_expiration": None,
            "allow_promotion_codes": None,
            "amount_subtotal": amount,
            "amount_total": amount,
            "automatic_tax": {"enabled": False, "liability": None, "status": None},
            "billing_address_collection": None,
            "cancel_url": form.get("cancel_url"),
            "client_reference_id": form.get("client_reference_id"),
            "client_secret": None,
            "consent": None,
            "created": created,
            "currency": currency,
            "customer": form.get("customer"),
            "customer_creation": form.get("customer_creation", "if_required"),
            "customer_details": None,
            "customer_email": form.get("customer_email"),
            "expires_at": expires_at,
            "invoice": None,
            "livemode": self.livemode,
            "locale": form.get("locale"),
            "metadata": dict(form.get("metadata") or {}),
            "mode": mode,
            "payment_intent": None,  # set once the customer pays (API versions since 2022-08-01)
            "payment_link": None,
            "payment_method_collection": "if_required",
            "payment_method_types": list(form.get("payment_method_types") or ["card"]),
            "payment_status": "unpaid",
            "status": "open",
            "submit_type": form.get("submit_type"),
            "subscription": None,
            "success_url": form.get("success_url"),
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            "ui_mode": form.get("ui_mode", "hosted"),
            "url": f"{self.checkout_url}{session_id}#fidkdWxOYHwnPyd1blpxYHZxWjA0",
        }
        self.sessions[session_id] = session
        # their ids come from the session's own seed: the ids drawn after stay as they were
        ids = random.Random(session_id)
        self.line_items[session_id] = [_line_item(item, ids) for item in form["line_items"]]
        if idempotency_key is not None:
            self._idempotent[idempotency_key] = (form, session)
            self._key_saved_at[idempotency_key] = self.clock()
        return copy.deepcopy(session)

    def _line_items_total(self, form: JSON) -> tuple[int, str]:
        items = form.get("line_items")
        if not isinstance(items, list) or not items:
            raise _StripeError(
                400,
                "invalid_request_error",
                "You must provide at least one line item.",
                param="line_items",
            )
        total = 0
        currency = ""
        for i, item in enumerate(items):
            where = f"line_items[{i}]"
            if not isinstance(item, dict):
                raise _StripeError(400, "invalid_request_error", f"Invalid {where}", param=where)
            quantity = _integer(item, "quantity", where=where)
            if quantity < 1:
                raise _StripeError(
                    400,
                    "invalid_request_error",
                    "This value must be greater than or equal to 1.",
                    param=f"{where}[quantity]",
                )
            price_data = item.get("price_data")
            if not isinstance(price_data, dict):
                raise _StripeError(
                    400,
                    "invalid_request_error",
                    f"Missing required param: {where}[price_data].",
                    param=f"{where}[price_data]",
                )
            unit_amount = _integer(price_data, "unit_amount", where=f"{where}[price_data]")
            item_currency = str(_required(price_data, "currency", where=f"{where}[price_data]"))
            if not re.fullmatch(r"[a-z]{3}", item_currency):
                raise _StripeError(
                    400,
                    "invalid_request_error",
                    f"Invalid currency: {item_currency}.",
                    param=f"{where}[price_data][currency]",
                )
            if "product" not in price_data:
                product = price_data.get("product_data")
                if not isinstance(product, dict):
                    raise _StripeError(
                        400,
                        "invalid_request_error",
                        f"Missing required param: {where}[price_data][product_data].",
                        param=f"{where}[price_data][product_data]",
                    )
                _required(product, "name", where=f"{where}[price_data][product_data]")
            if currency and item_currency != currency:
                raise _StripeError(
                    400, "invalid_request_error", "All line items must use the same currency."
                )
            currency = item_currency
            total += quantity * unit_amount
        return total, currency

    def _session(self, session_id: str, *, status: int | None = None) -> JSON:
        session = self.sessions.get(session_id)
        if session is None:
            if status is None:
                raise KeyError(session_id)
            raise _StripeError(
                status, "invalid_request_error", f"No such checkout.session: '{session_id}'"
            )
        return session

    def _new_id(self, prefix: str, length: int) -> str:
        alphabet = string.ascii_letters + string.digits
        return prefix + "".join(self._random.choices(alphabet, k=length))


# ---------------------------------------------------------------- helpers


def signature_header(payload: str, secret: str, timestamp: int) -> str:
    """A `Stripe-Signature` header for `payload`, made by stripe-python's own test helper."""
    header_value: str = stripe.WebhookSignature.generate_signature_header(
        payload, secret, timestamp
    )
    return header_value


def in_process_http_client(
    app: Callable[..., Any], http_client: stripe.HTTPXClient | None = None
) -> stripe.HTTPXClient:
    """Route a `stripe.HTTPXClient`'s async requests to `app` in process (no sockets).

    stripe 16's HTTPXClient takes no transport or client argument, so this swaps its private
    `_client_async` (pass the product's own client to redirect it); if a stripe upgrade breaks
    that, use the loopback server (`serve_app`) instead.
    """
    http_client = http_client or stripe.HTTPXClient()
    http_client._client_async = httpx.AsyncClient(transport=InProcessTransport(app))
    return http_client


def decode_form(encoded: str) -> JSON:
    """Decode Stripe's form encoding (`a[b][0][c]=v`) into nested dicts and lists."""
    root: JSON = {}
    for key, value in parse_qsl(encoded, keep_blank_values=True):
        name, _, rest = key.partition("[")
        path = [name] + (rest[:-1].split("][") if rest else [])
        node: JSON = root
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ValueError(f"Invalid array or hash: {key}")
            node = child
        node[path[-1]] = value
    result = _lists_from_indexed(root)
    assert isinstance(result, dict)
    return result


def _lists_from_indexed(node: object) -> object:
    if not isinstance(node, dict):
        return node
    converted = {k: _lists_from_indexed(v) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


def _line_item(item: JSON, ids: random.Random) -> JSON:
    """A line item as Stripe lists it (an `item`: its quantity, unit price and totals), for an
    item `_line_items_total` accepted; its ids drawn from `ids`."""

    def new_id(prefix: str, length: int) -> str:
        return prefix + "".join(ids.choices(string.ascii_letters + string.digits, k=length))

    price_data = item["price_data"]
    quantity, unit_amount = int(item["quantity"]), int(price_data["unit_amount"])
    currency = str(price_data["currency"])
    product = price_data.get("product_data") or {}
    return {
        "id": new_id("li_1", 24),
        "object": "item",
        "amount_discount": 0,
        "amount_subtotal": quantity * unit_amount,
        "amount_tax": 0,
        "amount_total": quantity * unit_amount,
        "currency": currency,
        "description": product.get("name"),
        "price": {
            "id": new_id("price_1", 24),
            "object": "price",
            "active": False,
            "currency": currency,
            "product": price_data.get("product") or new_id("prod_", 14),
            "type": "one_time",
            "unit_amount": unit_amount,
            "unit_amount_decimal": str(unit_amount),
        },
        "quantity": quantity,
    }


def _money(minor: int, currency: str) -> str:
    """An amount as Stripe's error messages write it: `$10.00`."""
    sign = _CURRENCY_SIGNS.get(currency.lower())
    amount = f"{minor / 100:.2f}"
    return f"{sign}{amount}" if sign else f"{amount} {currency.upper()}"


def _required(form: Mapping[str, Any], name: str, *, where: str = "") -> Any:
    param = f"{where}[{name}]" if where else name
    if name not in form or form[name] == "":
        raise _StripeError(
            400, "invalid_request_error", f"Missing required param: {param}.", param=param
        )
    return form[name]


def _integer(
    form: Mapping[str, Any], name: str, *, where: str = "", default: int | None = None
) -> int:
    param = f"{where}[{name}]" if where else name
    if default is not None and name not in form:
        return default
    raw = _required(form, name, where=where)
    try:
        return int(str(raw))
    except ValueError:
        raise _StripeError(
            400, "invalid_request_error", f"Invalid integer: {raw}", param=param
        ) from None
