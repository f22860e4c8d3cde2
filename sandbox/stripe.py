"""Fake Stripe API for Checkout Sessions, and correctly signed webhook deliveries to the bot.

`FakeStripe` is an ASGI app: point `StripeClient(base_addresses={"api": base})` at it on loopback,
or in process with `in_process_http_client(fake)`. Tests then `complete()` or `expire()` a session
and `deliver_event()` the resulting event, signed with `stripe.WebhookSignature`.
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
        self, status: int, error_type: str, message: str, *, param: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: JSON = {"error": {"type": error_type, "message": message}}
        if param is not None:
            self.body["error"]["param"] = param


class FakeStripe:
    """Fake Stripe (Checkout Sessions only); the instance is the ASGI app.

    `clock` gives wall-clock Unix seconds (created, expires_at, signature timestamps).
    `api_key`, if given, is the only secret key accepted; otherwise any `sk_test_…` key is.
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
        self.sessions: dict[str, JSON] = {}
        self.requests: list[StripeRequest] = []
        self.events: list[JSON] = []
        self._idempotent: dict[str, tuple[JSON, JSON]] = {}  # key -> (params, session)
        self._faults: list[list[int]] = []  # [status, remaining]
        self._random = random.Random(seed)

    # ------------------------------------------------------------ control

    def fail_next(self, *, status: int = 500, count: int = 1) -> None:
        """Answer the next `count` API requests with `status` (429 rate limit, 5xx api_error)."""
        self._faults.append([status, count])

    def complete(self, session_id: str, *, payment_status: str = "paid") -> JSON:
        """The customer paid: the session is complete; returns checkout.session.completed.

        `payment_status="unpaid"` models a delayed method (bank debit); follow with
        `async_payment_succeeded()` or `async_payment_failed()`.
        """
        session = self._session(session_id)
        if session["status"] != "open":
            raise ValueError(f"session {session_id} is {session['status']}, not open")
        session.update(
            status="complete",
            payment_status=payment_status,
            payment_intent=self._new_id("pi_", 24),
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
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
        }
        self.events.append(event)
        return event

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
            result = self._route(method, path, form, header(scope, "idempotency-key"))
        except _StripeError as exc:
            status, result = exc.status, exc.body
        except ValueError as exc:
            status, result = 400, _StripeError(400, "invalid_request_error", str(exc)).body
        self.requests.append(StripeRequest(method, path, headers, form, status))
        request_id = "req_" + "".join(self._random.choices(string.ascii_letters, k=14))
        await send_json(send, status, result, headers=[("request-id", request_id)])

    def _route(self, method: str, path: str, form: JSON, idempotency_key: str | None) -> JSON:
        if path == "/v1/checkout/sessions" and method == "POST":
            return self._create_session(form, idempotency_key)
        match = re.fullmatch(r"/v1/checkout/sessions/([^/]+)(/expire)?", path)
        if match is not None and method == "GET" and match.group(2) is None:
            return copy.deepcopy(self._session(match.group(1), status=404))
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
        session_id = self._new_id("cs_test_a1", 56)
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
            "livemode": False,
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
        if idempotency_key is not None:
            self._idempotent[idempotency_key] = (form, session)
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
