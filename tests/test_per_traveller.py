"""A price per traveller charges the whole party on every payment path: Stripe is asked for the
travellers at the unit price, Circle and Telegram for the total; a payment of one traveller's
price pays nothing. Orders are stored as the handler stores them (`price` the total).
"""

from __future__ import annotations

import dataclasses
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe
import trio
import yaml

from itinerabot.i18n import texts_for
from itinerabot.messages import Invoice, Text
from itinerabot.models import Itinerary, OrderStatus
from itinerabot.operator.format import price_text
from itinerabot.payments.stars.invoice import DESCRIPTION_MAX, issue_invoice
from itinerabot.pdf import sample_order
from itinerabot.store import orders as order_rows
from itinerabot.store.db import connect
from sandbox.circle import paid_script, underpaid_then_expired_script
from sandbox.serve import InProcessTransport
from sandbox.stripe import in_process_http_client
from sandbox.telegram import DEFAULT_TOKEN, FakeBotApi
from tests.harness import (
    CARD_REF,
    CHAT,
    START,
    STRIPE_KEY,
    USDC_REF,
    Bot,
    Fakes,
    anomalies,
    button,
    deliver,
    eventually,
    make_settings,
    orders,
    query,
    running_bot,
    status_of,
    text_of,
)

UNIT = Decimal("10.00")  # pricing.price, per traveller
STARS_EACH = 250  # stars.price, per traveller
TWO = ("JANE MARY DOE", "JOHN DOE")
STARS_REF = "IB-STAR22"
DISCLAIMER = "Not a ticket or a reservation."


def party(*passengers: str) -> Itinerary:
    """The sample return trip (FRA → JFK → FRA) for these travellers."""
    return dataclasses.replace(sample_order()[0].itinerary, passengers=passengers)


def add_order(
    conn: sqlite3.Connection,
    reference: str,
    passengers: tuple[str, ...],
    quantity: int,
    chat_id: int = CHAT,
) -> int:
    """An order awaiting payment, stored as the handler stores it: the total price, and the
    quantity it is made of (the travellers when priced per traveller, else 1)."""
    conn.execute("BEGIN")
    order_id = order_rows.insert_order(
        conn,
        reference=reference,
        chat_id=chat_id,
        itinerary=party(*passengers),
        price=UNIT * quantity,
        currency="USD",
        created_at=START,
        quantity=quantity,
    )
    conn.execute("COMMIT")
    return order_id


def store_party_order(
    path: Path, reference: str, passengers: tuple[str, ...] = TWO, quantity: int = 2
) -> int:
    conn = connect(path)
    try:
        return add_order(conn, reference, passengers, quantity)
    finally:
        conn.close()


# ---------------------------------------------------------------- card: Stripe Checkout


async def checkout(bot: Bot, reference: str) -> tuple[str, str, str]:
    """Tap "pay by card" for the stored order; the chat's message text, its button's label,
    and the id of the session the button opens."""
    card = bot.rt.payments.card
    assert card is not None
    (message,) = await card.pay_by_card(CHAT, reference)
    (session_id,) = [
        s["id"] for s in bot.stripe.sessions.values() if s["url"] == button(message).url
    ]
    return text_of(message), button(message).text, session_id


async def listed_line_items(bot: Bot, session_id: str) -> list[Any]:
    """The session's line items as stripe-python reads them from Stripe's list endpoint."""
    client = stripe.StripeClient(
        STRIPE_KEY,
        http_client=in_process_http_client(bot.stripe),
        base_addresses={"api": "http://stripe.test"},
    )
    items = await client.v1.checkout.sessions.line_items.list_async(session_id)
    return list(items.data)


@pytest.mark.parametrize(
    ("passengers", "quantity", "told"),
    [
        pytest.param(
            TWO,
            2,
            f"Order {CARD_REF}: pay 20.00 USD (2 × 10.00 USD) on Stripe's secure checkout page.",
            id="per-traveller",
        ),
        pytest.param(
            TWO,
            1,
            f"Order {CARD_REF}: pay 10.00 USD on Stripe's secure checkout page.",
            id="per-document",
        ),
    ],
)
async def test_stripe_is_asked_for_each_traveller_at_the_unit_price_and_paid_the_total(
    tmp_path: Path,
    autojump_clock: trio.abc.Clock,
    passengers: tuple[str, ...],
    quantity: int,
    told: str,
) -> None:
    """Two travellers priced per traveller: one line item of quantity 2 at 10.00, so Stripe's
    page shows 2 × 10.00 and charges 20.00, which pays the order. Priced per document, the
    same party is one item at 10.00. The chat is told the total, and the product says how
    many travellers the itinerary is for."""
    async with running_bot(tmp_path) as bot:
        path = bot.settings.store.path
        order_id = store_party_order(path, CARD_REF, passengers, quantity)
        text, label, session_id = await checkout(bot, CARD_REF)
        (create,) = [r for r in bot.stripe.requests if r.method == "POST"]
        items = await listed_line_items(bot, session_id)
        *_, again = await checkout(bot, CARD_REF)  # a second tap: the same page
        assert await deliver(bot, bot.stripe.complete(session_id)) == [200]
        await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1)
    total = 1000 * quantity
    (asked,) = create.form["line_items"]
    assert (asked["quantity"], asked["price_data"]["unit_amount"]) == (str(quantity), "1000")
    product = asked["price_data"]["product_data"]
    assert product["name"].startswith(f"Flight itinerary PDF {CARD_REF}")
    assert product["name"].endswith(", price per traveller") is (quantity > 1)
    assert "for 2 travellers" in product["description"]
    assert product["description"].endswith("Not an airline ticket or reservation.")
    (item,) = items
    assert (item.quantity, item.price.unit_amount, item.amount_total) == (quantity, 1000, total)
    assert bot.stripe.sessions[session_id]["amount_total"] == total
    assert text.startswith(told)
    assert again == session_id
    assert label == f"Pay {UNIT * quantity:.2f} USD by card"
    assert status_of(path, order_id) == OrderStatus.DELIVERED
    assert query(path, "SELECT method, amount, currency FROM payments") == [
        ("card", f"{UNIT * quantity:.2f}", "USD")
    ]
    assert anomalies(bot) == []


async def test_a_session_that_charged_one_travellers_price_pays_nothing(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """The order is 2 × 10.00. The bot's own session completed for 10.00 (a promotion code
    took 10.00 off), and a Payment Link session of 10.00 names the order: neither pays it.
    Each is an anomaly filed under the order with what was charged and what was expected;
    no PDF is sent."""
    async with running_bot(tmp_path) as bot:
        path = bot.settings.store.path
        order_id = store_party_order(path, CARD_REF)
        *_, session_id = await checkout(bot, CARD_REF)
        discounted = bot.stripe.complete(session_id, discount=1000)
        link = bot.stripe.foreign_session(
            amount=1000, currency="usd", metadata={"order_reference": CARD_REF}
        )
        linked = bot.stripe.complete(link["id"])
        assert await deliver(bot, discounted) == [200]
        assert await deliver(bot, linked) == [200]
        await trio.sleep(60)
        found = {a.provider_ref: a for a in anomalies(bot)}
    assert bot.stripe.sessions[session_id]["amount_total"] == 1000
    assert (found[session_id].reason, found[link["id"]].reason) == ("amount", "unknown_session")
    assert {a.order_id for a in found.values()} == {order_id}
    detail = found[session_id].detail
    assert (detail["amount_total"], detail["expected_amount_total"]) == (1000, 2000)
    assert status_of(path, order_id) == OrderStatus.AWAITING_PAYMENT
    assert query(path, "SELECT COUNT(*) FROM payments") == [(0,)]
    assert bot.api.sent_documents(CHAT) == []


# ---------------------------------------------------------------- USDC: Circle


async def pay_usdc_for_party(bot: Bot, quantity: int) -> tuple[int, str]:
    """Store a two-traveller order of `quantity` units and tap "pay with USDC"."""
    order_id = store_party_order(bot.settings.store.path, USDC_REF, quantity=quantity)
    usdc = bot.rt.payments.usdc
    assert usdc is not None
    (message,) = await usdc.pay_with_usdc(CHAT, USDC_REF)
    assert f"Paying {UNIT * quantity:.2f} USDC on" in text_of(message)
    (intent,) = bot.circle.intent_ids()
    return order_id, intent


@pytest.mark.parametrize("quantity", [2, 1])
async def test_circle_is_asked_for_the_total_and_the_total_pays(
    tmp_path: Path, autojump_clock: trio.abc.Clock, quantity: int
) -> None:
    """The payment intent asks the order's total (20.00 for two travellers priced per
    traveller, 10.00 per document); the traveller is told to send exactly that, and it pays."""
    fakes = Fakes.make()
    fakes.circle.script_next(paid_script(pending_after=1, paid_after=3))
    async with running_bot(tmp_path, fakes) as bot:
        order_id, intent = await pay_usdc_for_party(bot, quantity)
        await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1)
        texts = bot.api.sent_texts(CHAT)
    total = f"{UNIT * quantity:.2f}"
    assert fakes.circle.intent(intent)["amount"] == {"amount": total, "currency": "USD"}
    assert any(f"send exactly {total} USDC" in t for t in texts)
    assert status_of(bot.settings.store.path, order_id) == OrderStatus.DELIVERED
    assert query(bot.settings.store.path, "SELECT amount FROM payments") == [(total,)]


async def test_one_travellers_price_in_usdc_is_told_missing_and_pays_nothing(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """10.00 of the 20.00 arrives, then the intent expires: the traveller is told 10.00 is
    missing, then that the 10.00 will be sent back; the order stays unpaid and the 10.00 is
    owed back (as any underpayment)."""
    fakes = Fakes.make()
    fakes.circle.script_next(
        underpaid_then_expired_script(pending_after=1, underpaid_after=2, expired_after=4)
    )
    async with running_bot(tmp_path, fakes) as bot:
        path = bot.settings.store.path
        order_id, intent = await pay_usdc_for_party(bot, 2)
        await eventually(lambda: any("send it back" in t for t in bot.api.sent_texts(CHAT)))
        texts = bot.api.sent_texts(CHAT)
    assert any(
        t.startswith(f"Order {USDC_REF}: 10.00 USDC of 20.00 arrived. 10.00 USDC is still missing")
        for t in texts
    )
    assert any("expired with 10.00 USDC of 20.00 received" in t for t in texts)
    assert query(path, "SELECT kind, amount, provider_ref FROM extra_payments") == [
        ("partial", "10.00", intent)
    ]
    assert status_of(path, order_id) == OrderStatus.AWAITING_PAYMENT
    assert bot.api.sent_documents(CHAT) == []


async def test_an_intent_complete_at_one_travellers_price_pays_nothing(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Circle's record of the intent says 10.00, complete and paid in full (an intent made for
    the unit price): it does not pay a 20.00 order. Refused as an anomaly, the 10.00 owed
    back, the traveller told."""
    fakes = Fakes.make()
    fakes.circle.script_next(paid_script(pending_after=1, paid_after=3))
    async with running_bot(tmp_path, fakes) as bot:
        path = bot.settings.store.path
        order_id, intent = await pay_usdc_for_party(bot, 2)
        fakes.circle.misstate_amount(intent, UNIT)
        await eventually(
            lambda: any("Circle confirmed 10.00 USDC" in t for t in bot.api.sent_texts(CHAT))
        )
        await trio.sleep(120)
        texts = bot.api.sent_texts(CHAT)
    (told,) = [t for t in texts if "Circle confirmed 10.00 USDC" in t]
    assert "does not pay its price of 20.00 USDC" in told
    assert query(path, "SELECT DISTINCT reason FROM anomalies") == [("amount_or_currency",)]
    assert query(path, "SELECT kind, amount FROM extra_payments") == [("partial", "10.00")]
    assert status_of(path, order_id) == OrderStatus.AWAITING_PAYMENT
    assert bot.api.sent_documents(CHAT) == []


# ---------------------------------------------------------------- Stars: Telegram


def stars_invoice(tmp_path: Path, passengers: tuple[str, ...], quantity: int, lang: str) -> Any:
    """The invoice `issue_invoice` makes for a stored order, and the amount its row keeps."""
    conn = connect(tmp_path / "bot.sqlite3")
    try:
        add_order(conn, STARS_REF, passengers, quantity)
        conn.execute("BEGIN")
        invoice = issue_invoice(conn, texts_for(lang), CHAT, STARS_REF, STARS_EACH, START)
        conn.execute("COMMIT")
        ((kept,),) = conn.execute("SELECT amount FROM star_invoices").fetchall()
    finally:
        conn.close()
    assert isinstance(invoice, Invoice)
    return invoice, kept


@pytest.mark.parametrize(
    ("passengers", "quantity", "amount", "label", "for_whom"),
    [
        (TWO, 2, 500, "Itinerary PDF, 2 travellers", "for 2 travellers: JANE MARY DOE, JOHN DOE."),
        (TWO, 1, 250, "Itinerary PDF", "for 2 travellers: JANE MARY DOE, JOHN DOE."),
        (("ANNA LI",), 1, 250, "Itinerary PDF", "for ANNA LI."),
    ],
)
def test_the_stars_invoice_asks_the_price_of_each_traveller_and_names_them(
    tmp_path: Path,
    passengers: tuple[str, ...],
    quantity: int,
    amount: int,
    label: str,
    for_whom: str,
) -> None:
    invoice, kept = stars_invoice(tmp_path, passengers, quantity, "en")
    assert (invoice.amount, kept, invoice.label) == (amount, amount, label)
    assert invoice.description == (
        "PDF itinerary of the flights you entered: FRA → JFK → FRA, from 2026-12-10, "
        f"{for_whom} Not a ticket or a reservation."
    )


def test_nine_long_names_are_shortened_by_whole_names_never_the_disclaimer(
    tmp_path: Path,
) -> None:
    """Nine travellers with long names do not fit Telegram's 255 characters: names are left
    out from the end (the sentence says there are nine), whole names kept; the "not a ticket"
    sentence is whole."""
    names = tuple(f"ALEKSANDRA-ELIZAVETA KONSTANTINOPOLSKAYA-{n}" for n in range(1, 10))
    invoice, _ = stars_invoice(tmp_path, names, 9, "en")
    about = invoice.description
    assert len(about) <= DESCRIPTION_MAX, len(about)
    assert about.endswith(". " + DISCLAIMER), about
    assert "FRA → JFK → FRA, from 2026-12-10, for 9 travellers: " in about
    listed = about[about.index(names[0]) : about.rindex(". " + DISCLAIMER)]
    assert listed.endswith(", …"), listed
    kept = listed.removesuffix(", …").split(", ")
    assert 1 <= len(kept) < 9 and list(names[: len(kept)]) == kept


async def bot_sent_pay_button(api: FakeBotApi, reference: str, label: str) -> int:
    """The message with the order's "Pay … ⭐" button, as the bot sent it under the order's
    summary (a Bot API sendMessage); returns its message id."""
    markup = {"inline_keyboard": [[{"text": label, "callback_data": f"pay:stars:{reference}"}]]}
    async with httpx.AsyncClient(
        transport=InProcessTransport(api), base_url="http://telegram.test"
    ) as client:
        answer = await client.post(
            f"/bot{DEFAULT_TOKEN}/sendMessage",
            json={"chat_id": CHAT, "text": f"Order {reference}", "reply_markup": markup},
        )
    return int(answer.json()["result"]["message_id"])


async def test_stars_for_two_travellers_ask_twice_the_price_and_one_price_pays_nothing(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """The traveller taps "Pay ⭐" for a two-traveller order priced per traveller: Telegram is
    sent an invoice of 2 × 250 = 500 Stars, labelled for 2 travellers. A payment of 250
    reported for it pays nothing (an anomaly, given back); paying the invoice's 500 delivers
    the PDF once."""
    settings = make_settings(tmp_path, stars={"price": STARS_EACH}, pricing={"per": "traveller"})
    async with running_bot(tmp_path, settings=settings) as bot:
        path = bot.settings.store.path
        order_id = store_party_order(path, STARS_REF)
        summary = await bot_sent_pay_button(bot.api, STARS_REF, "Pay 500 ⭐")
        bot.api.user_press(CHAT, summary, f"pay:stars:{STARS_REF}")
        await eventually(lambda: bot.api.last_invoice(CHAT) is not None)
        found = bot.api.last_invoice(CHAT)
        assert found is not None
        invoice_id, sent = found
        short = bot.api.successful_payment(CHAT, payload=str(sent["payload"]), amount=STARS_EACH)
        await eventually(lambda: len(anomalies(bot)) == 1)
        (wrong,) = anomalies(bot)
        unpaid = status_of(path, order_id)
        charge = await bot.api.pay_invoice(CHAT, invoice_id)
        await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1)
        # stars.refunds: automatic gives the charge that paid nothing back (every 60 s)
        await eventually(lambda: bot.api.calls_to("refundStarPayment") != [])
        await trio.sleep(60)
        given_back = [c.params for c in bot.api.calls_to("refundStarPayment")]
    assert sent["currency"] == "XTR"
    assert sent["prices"] == [{"label": "Itinerary PDF, 2 travellers", "amount": 500}]
    assert "for 2 travellers: JANE MARY DOE, JOHN DOE." in str(sent["description"])
    assert (wrong.reason, wrong.detail["amount"], wrong.order_id) == (
        "amount_or_currency",
        STARS_EACH,
        order_id,
    )
    assert unpaid == OrderStatus.AWAITING_PAYMENT
    short_charge = short["message"]["successful_payment"]["telegram_payment_charge_id"]
    assert given_back == [{"user_id": CHAT, "telegram_payment_charge_id": short_charge}]
    assert charge is not None and charge != short_charge
    assert query(path, "SELECT amount, currency FROM payments") == [("500", "XTR")]
    assert status_of(path, order_id) == OrderStatus.DELIVERED
    assert len(bot.api.sent_documents(CHAT)) == 1


# ---------------------------------------------------------------- the operator's view


@pytest.mark.parametrize(
    ("total", "quantity", "shown"),
    [
        (Decimal("20.00"), 2, "20.00 USD (2 × 10.00 USD)"),
        (Decimal("90.00"), 9, "90.00 USD (9 × 10.00 USD)"),
        (Decimal("10.00"), 1, "10.00 USD"),
    ],
)
def test_the_operator_sees_the_total_and_what_it_is_made_of(
    total: Decimal, quantity: int, shown: str
) -> None:
    assert price_text(total, "USD", quantity) == shown


async def test_orders_show_prints_the_total_its_units_and_every_traveller(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], autojump_clock: trio.abc.Clock
) -> None:
    """`itinerabot orders show` of a two-traveller order priced per traveller and paid by card:
    the price line says 20.00 USD (2 × 10.00 USD), each traveller has a line, and the payment
    is the 20.00 Stripe charged."""
    settings = make_settings(tmp_path, pricing={"per": "traveller"})
    raw = {
        "telegram": {"token": DEFAULT_TOKEN},
        "store": {"path": str(settings.store.path)},
        "stars": {"price": STARS_EACH},
    }
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(raw))
    async with running_bot(tmp_path, settings=settings) as bot:
        store_party_order(bot.settings.store.path, CARD_REF)
        *_, session_id = await checkout(bot, CARD_REF)
        assert await deliver(bot, bot.stripe.complete(session_id)) == [200]
        await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1)
        code, out, err = await orders(capsys, config, "show", CARD_REF)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[1] == f"  chat {CHAT}, price 20.00 USD (2 × 10.00 USD)"
    assert lines[3:5] == ["  passenger JANE MARY DOE", "  passenger JOHN DOE"]
    payment = lines[lines.index("Payment") + 1]
    assert payment.startswith("  card 20.00 USD at ")


def test_a_stars_total_over_telegrams_limit_is_refused_with_a_clear_answer(
    tmp_path: Path,
) -> None:
    """The shop raised stars.price after a nine-traveller order was made: no invoice Telegram
    would refuse is stored or sent; the traveller is told to choose another way to pay."""
    conn = connect(tmp_path / "bot.sqlite3")
    try:
        add_order(conn, STARS_REF, TWO, 9)
        conn.execute("BEGIN")
        answer = issue_invoice(conn, texts_for("en"), CHAT, STARS_REF, 11_112, START)
        conn.execute("COMMIT")
        invoices = conn.execute("SELECT COUNT(*) FROM star_invoices").fetchone()[0]
    finally:
        conn.close()
    assert isinstance(answer, Text) and invoices == 0
    assert "at most 100000 Stars" in answer.text and "would need 100008" in answer.text
