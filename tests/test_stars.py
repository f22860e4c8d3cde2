"""Telegram Stars through the running bot, on trio's mock clock: the pre-checkout answer in
time whatever else is slow, exactly one PDF per order however the payment is reported, and
the refusals and records a traveller or an operator sees when something does not add up.
"""

from __future__ import annotations

import dataclasses
import itertools
import sqlite3
import threading
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import trio

from itinerabot.config import Settings
from itinerabot.i18n import texts_for
from itinerabot.messages import Invoice
from itinerabot.models import Itinerary, OrderStatus
from itinerabot.payments.stars.invoice import issue_invoice
from itinerabot.pdf import sample_order
from itinerabot.store import orders as order_rows
from itinerabot.store.db import connect
from sandbox.telegram import FakeBotApi
from tests.harness import (
    CHAT,
    ONE_WAY,
    START,
    Bot,
    Fakes,
    Traveller,
    anomalies,
    deliver,
    eventually,
    hold_write_lock_until,
    make_settings,
    query,
    running_bot,
    status_of,
)

PRICE = 250
RECEIVED = f"Payment received: {PRICE} ⭐ for order"
CARD_RECEIVED = "Payment received: 10.00 USD by card for order"
CHECKOUT = "on Stripe's secure checkout page"
NOT_MATCHED = "could not match it to an order awaiting it"
#: Telegram cancels a purchase whose pre-checkout query is not answered within this (seconds)
TELEGRAM_WAITS = 10.0
OTHER_USER = 777_001


def said(bot: Bot, fragment: str) -> int:
    """How many messages the traveller's chat got that contain `fragment`."""
    return sum(fragment in text for text in bot.api.sent_texts(CHAT))


def stars_settings(tmp_path: Path, **sections: dict[str, Any]) -> Settings:
    return make_settings(tmp_path, stars={"price": PRICE}, **sections)


class Shop:
    """One traveller's order with a Stars invoice in the chat."""

    def __init__(self, bot: Bot, traveller: Traveller, summary: int, invoice: int) -> None:
        self.bot = bot
        self.traveller = traveller
        self.summary = summary  # the summary's message id (its buttons)
        self.invoice = invoice  # the invoice's message id
        params = bot.api.invoices[(traveller.chat, invoice)]
        self.payload = str(params["payload"])
        self.reference = self.payload.split(":")[0]

    @classmethod
    async def open(cls, bot: Bot, chat: int = CHAT) -> Shop:
        """Walk the one-way trip to its summary and tap "Pay 250 ⭐"."""
        traveller = Traveller(bot, chat)
        await traveller.walk(ONE_WAY)
        summary = traveller.last_keyboard_id()
        await traveller.presses(f"Pay {PRICE}", summary)
        invoice = bot.api.last_invoice(chat)
        assert invoice is not None, bot.api.transcript(chat)
        return cls(bot, traveller, summary, invoice[0])

    @property
    def order_id(self) -> int:
        ((order_id,),) = query(
            self.path, "SELECT id FROM orders WHERE reference = ?", self.reference
        )
        return int(order_id)

    @property
    def path(self) -> Path:
        return self.bot.settings.store.path

    def status(self) -> OrderStatus:
        return status_of(self.path, self.order_id)

    def said(self, fragment: str) -> int:
        """How many messages the chat got that contain `fragment`."""
        return sum(fragment in text for text in self.bot.api.sent_texts(self.traveller.chat))

    def documents(self) -> int:
        return len(self.bot.api.sent_documents(self.traveller.chat))

    async def pay_by_card(self) -> str:
        """Tap "Pay by card" on the summary; returns the Checkout Session's id."""
        await self.traveller.presses("Pay by card", self.summary)
        await eventually(lambda: self.said(CHECKOUT) == 1)
        (session,) = self.bot.stripe.sessions  # the one page Stripe made
        return str(session)


def payment_updates(api: FakeBotApi) -> list[dict[str, Any]]:
    """The `successful_payment` updates the bot fetched, as Telegram sent them."""
    return [
        update
        for call in api.calls_to("getUpdates")
        if call.status == 200 and isinstance(call.result, list)
        for update in call.result
        if "successful_payment" in update.get("message", {})
    ]


async def refused(shop: Shop, user: dict[str, Any] | None = None) -> str:
    """Pay the shop's invoice, expecting the bot to refuse it at pre-checkout: nothing is
    charged, nothing more is recorded; returns what Telegram shows the payer."""
    api = shop.bot.api
    charges, paid = dict(api.star_charges), query(shop.path, "SELECT * FROM star_payments")
    paying = trio.current_time()
    assert await api.pay_invoice(CHAT, shop.invoice, user=user) is None
    answer = api.calls_to("answerPreCheckoutQuery")[-1]
    assert answer.status == 200 and answer.at - paying == 0, answer.at - paying
    assert answer.params["ok"] is False
    assert api.star_charges == charges
    assert query(shop.path, "SELECT * FROM star_payments") == paid
    return str(answer.params["error_message"])


# ---------------------------------------------------------------- the answer, in time


async def test_pre_checkout_is_answered_while_the_store_is_locked_and_the_chat_is_stuck(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Another process holds the store's write lock: the chat's /help, sent just before the
    payment, cannot commit. The pre-checkout query that follows it is answered ok all the
    same, while the lock is still held (the lock is let go only once Telegram has the
    answer: an answer that waited for the writer would never come). Then the purchase
    completes: one "Payment received", one PDF, and /help answered after all.

    While the bot's writer thread waits for the lock, the mock clock stands still (see
    `StillWhileThreadsWork`), so the answer comes at the very trio time of the tap; what
    shows it waits for no writer is that it comes before the lock is let go. (A check that
    runs past 4 s cannot be staged this way: in WAL mode nothing another process can do
    blocks the bot's reader while the bot holds its connections; `PRAGMA
    locking_mode=EXCLUSIVE` then fails to take its lock.)"""
    async with running_bot(tmp_path, settings=stars_settings(tmp_path)) as bot:
        shop = await Shop.open(bot)
        api = bot.api
        taken, held = threading.Event(), list[bool]()
        holder = threading.Thread(
            target=hold_write_lock_until,
            args=(shop.path, lambda: bool(api.pre_checkout_answers), taken, held),
        )
        holder.start()
        await trio.to_thread.run_sync(taken.wait)
        paying = trio.current_time()
        # no checkpoint between the two: Telegram hands the bot both in one getUpdates
        api.user_command(CHAT, "/help")
        charge = await api.pay_invoice(CHAT, shop.invoice)
        await trio.to_thread.run_sync(holder.join)
        (answer,) = api.calls_to("answerPreCheckoutQuery")
        await eventually(lambda: shop.documents() == 1)
        await trio.sleep(30)  # anything sent twice would be sent by now
        help_sent = [c for c in api.calls_to("sendMessage") if "PDF itinerary" in str(c.params)]
        assert held == [True]  # answered while the writer was stuck behind the lock
        assert answer.params["ok"] is True and answer.status == 200
        assert answer.at - paying == 0, answer.at - paying
        assert charge is not None and charge in api.star_charges
        assert (shop.said(RECEIVED), shop.documents()) == (1, 1)
        assert help_sent and api.calls.index(answer) < api.calls.index(help_sent[-1])
        assert shop.status() == OrderStatus.DELIVERED


PROVIDER_DELAY = 19.0  # Stripe answers the Checkout Session 19 s late (the limit is 20 s)


async def test_pre_checkout_is_answered_at_once_while_the_chat_waits_for_a_slow_stripe(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """The traveller taps "Pay by card", Stripe takes 19 s to make the page, and meanwhile
    the traveller pays the Stars invoice instead: Telegram gets ok at once (the query waits
    neither for the chat nor for Stripe), and the PDF comes."""
    async with running_bot(tmp_path, settings=stars_settings(tmp_path)) as bot:
        shop = await Shop.open(bot)
        api = bot.api
        bot.stripe.delay_next_answers(PROVIDER_DELAY, count=1)
        tapped = trio.current_time()
        await shop.traveller.presses("Pay by card", shop.summary)
        paying = trio.current_time()
        charge = await api.pay_invoice(CHAT, shop.invoice)
        (answer,) = api.calls_to("answerPreCheckoutQuery")
        page_waiting = shop.said(CHECKOUT) == 0
        await eventually(lambda: shop.documents() == 1)
        await trio.sleep(60)  # Stripe's page has come and gone
        transcript = api.transcript(CHAT)
    assert page_waiting
    assert paying - tapped < 2  # "Preparing your payment…", then the tap on the invoice
    assert answer.params["ok"] is True
    assert answer.at - paying == 0, answer.at - paying
    assert charge is not None
    assert (shop.said(RECEIVED), shop.documents()) == (1, 1), transcript


@pytest.mark.parametrize(
    ("fault", "again_after"),
    [
        pytest.param({"status": 502}, 0.5, id="bad-gateway"),
        pytest.param({"status": 502, "drop": True}, 0.5, id="connection-dropped"),
        pytest.param({"status": 429, "retry_after": 2}, 2.0, id="too-many-requests"),
    ],
)
async def test_the_answer_is_sent_again_after_a_network_fault(
    tmp_path: Path, autojump_clock: trio.abc.Clock, fault: dict[str, Any], again_after: float
) -> None:
    """The first answer is lost on the way to Telegram: the desk sends it again half a
    second later (after a 429, when Telegram says), and Telegram has ok well within its
    10 s; the purchase completes."""
    async with running_bot(tmp_path, settings=stars_settings(tmp_path)) as bot:
        shop = await Shop.open(bot)
        bot.api.fail_next("answerPreCheckoutQuery", **fault)
        paying = trio.current_time()
        charge = await bot.api.pay_invoice(CHAT, shop.invoice)
        await eventually(lambda: shop.documents() == 1)
    lost, sent = bot.api.calls_to("answerPreCheckoutQuery")
    assert lost.status != 200 and sent.status == 200
    assert sent.params == lost.params and sent.params["ok"] is True
    assert sent.at - lost.at == again_after
    assert sent.at - paying == again_after
    assert charge is not None
    assert (shop.said(RECEIVED), shop.documents()) == (1, 1)


async def test_an_answer_that_cannot_get_through_is_given_up_before_telegram_cancels(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Every answer fails: the desk tries every half second and stops 8 s after the query
    arrived (16 tries: a 17th would get through, and charge a purchase Telegram is about to
    cancel). Nothing is charged and the order still awaits payment; the next tap on the
    invoice works."""
    async with running_bot(tmp_path, settings=stars_settings(tmp_path)) as bot:
        shop = await Shop.open(bot)
        bot.api.fail_next("answerPreCheckoutQuery", status=502, count=16)
        paying = trio.current_time()
        first = await bot.api.pay_invoice(CHAT, shop.invoice)
        gave_up = trio.current_time()
        tries = bot.api.calls_to("answerPreCheckoutQuery")
        await trio.sleep(5)
        status = shop.status()
        second = await bot.api.pay_invoice(CHAT, shop.invoice)
        await eventually(lambda: shop.documents() == 1)
    assert first is None and gave_up - paying == TELEGRAM_WAITS
    assert [c.at - paying for c in tries] == [i / 2 for i in range(16)]
    assert status == OrderStatus.AWAITING_PAYMENT
    assert second is not None and list(bot.api.star_charges) == [second]
    assert (shop.said(RECEIVED), shop.documents()) == (1, 1)


async def test_a_check_that_fails_refuses_try_again_and_the_bot_keeps_running(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """The order check raises (here: an invoice row the code cannot read, as a hand edit
    might leave it): the query is refused with "try again" within Telegram's 10 s and the
    bot keeps serving the chat (the error used to end `serve`, and the query, fetched again
    at every start, ended it again). Once the row is right, the next tap pays."""
    async with running_bot(tmp_path, settings=stars_settings(tmp_path)) as bot:
        shop = await Shop.open(bot)
        conn = sqlite3.connect(shop.path, isolation_level=None)
        conn.execute("UPDATE star_invoices SET created_at = 'yesterday'")
        why = await refused(shop)
        help_text = await shop.traveller.says("/help")
        conn.execute("UPDATE star_invoices SET created_at = ?", (START.isoformat(),))
        conn.close()
        assert await bot.api.pay_invoice(CHAT, shop.invoice) is not None
        await eventually(lambda: shop.documents() == 1)
    assert why == "We could not check your order just now. Please try again in a moment."
    assert "PDF itinerary" in help_text
    assert (shop.said(RECEIVED), shop.documents()) == (1, 1)


# ---------------------------------------------------------------- the payment, once


async def test_a_payment_reported_twice_gives_one_pdf_even_across_a_restart(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Telegram delivers the same `successful_payment` again under a new update id, once
    while the bot runs and once after a restart: the charge is recorded once, and the
    traveller gets one "Payment received" and one PDF."""
    fakes, settings = Fakes.make(), stars_settings(tmp_path)
    async with running_bot(tmp_path, fakes, settings=settings) as bot:
        shop = await Shop.open(bot)
        charge = await bot.api.pay_invoice(CHAT, shop.invoice)
        await eventually(lambda: shop.documents() == 1)
        (update,) = payment_updates(bot.api)
        again = bot.api.resend_update(update)
        await eventually(lambda: bot.rt.longpoll.handled(int(again["update_id"])))
        await trio.sleep(30)  # a second PDF would be sent by now
        first_run = (shop.said(RECEIVED), shop.documents())
    async with running_bot(tmp_path, fakes, settings=settings) as bot:
        shop.bot = bot
        late = bot.api.resend_update(update)
        await eventually(lambda: bot.rt.longpoll.handled(int(late["update_id"])))
        await trio.sleep(30)
        charges = query(shop.path, "SELECT charge_id, order_id FROM star_payments")
    assert charge is not None
    assert first_run == (1, 1)
    assert (shop.said(RECEIVED), shop.documents()) == (1, 1)
    assert charges == [(charge, shop.order_id)]
    assert query(shop.path, "SELECT COUNT(*) FROM extra_payments") == [(0,)]
    assert anomalies(bot) == []
    assert bot.api.violations == []


async def test_stars_charged_after_the_traveller_cancelled_still_deliver_the_pdf(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Telegram charged the Stars (its pre-checkout was answered while the order awaited
    payment), and the traveller's "Cancel" reached the bot first: money taken wins over the
    cancel, the order is paid and its PDF sent."""
    async with running_bot(tmp_path, settings=stars_settings(tmp_path)) as bot:
        shop = await Shop.open(bot)
        await shop.traveller.presses("Cancel", shop.summary)
        cancelled = shop.status()
        bot.api.successful_payment(CHAT, payload=shop.payload, amount=PRICE)
        await eventually(lambda: shop.documents() == 1)
        await trio.sleep(30)
    assert cancelled == OrderStatus.CANCELLED
    assert (shop.said(RECEIVED), shop.documents(), shop.status()) == (
        1,
        1,
        OrderStatus.DELIVERED,
    )
    assert query(shop.path, "SELECT COUNT(*) FROM extra_payments") == [(0,)]


WRONG: dict[str, tuple[dict[str, Any], str]] = {
    "wrong-amount": ({"amount": PRICE - 1}, "amount_or_currency"),
    "wrong-currency": ({"currency": "USD", "amount": 1000}, "amount_or_currency"),
    "unknown-payload": ({"payload": "IB-NOSUCH:1"}, "unknown_payload"),
}


@pytest.mark.parametrize("case", list(WRONG))
async def test_a_payment_that_does_not_match_its_invoice_pays_nothing(
    tmp_path: Path, autojump_clock: trio.abc.Clock, case: str
) -> None:
    """A `successful_payment` of another amount, in another currency, or for an invoice the
    bot never sent: no PDF, the order still awaits payment, an anomaly says why for the
    operator, and the traveller is told the payment will be looked into. Paying the real
    invoice afterwards still works, and the charge that paid nothing is given back once
    (the anomaly settled, the traveller told)."""
    changes, reason = WRONG[case]
    async with running_bot(tmp_path, settings=stars_settings(tmp_path)) as bot:
        shop = await Shop.open(bot)
        paid: dict[str, Any] = {"payload": shop.payload, "amount": PRICE, "currency": "XTR"}
        paid |= changes
        update = bot.api.successful_payment(CHAT, **paid)
        charge = update["message"]["successful_payment"]["telegram_payment_charge_id"]
        await eventually(lambda: shop.said(NOT_MATCHED) == 1)
        await trio.sleep(30)
        status, documents = shop.status(), shop.documents()
        (anomaly,) = anomalies(bot)
        told = [t for t in bot.api.sent_texts(CHAT) if NOT_MATCHED in t]
        await bot.api.pay_invoice(CHAT, shop.invoice)
        await eventually(lambda: shop.documents() == 1)
        # stars.refunds: automatic gives the charge back at the next round (every 60 s)
        await eventually(lambda: shop.said("We gave back your payment") == 1)
        await trio.sleep(120)
        given_back = [c.params for c in bot.api.calls_to("refundStarPayment")]
        settled = anomalies(bot)
    assert given_back == [{"user_id": CHAT, "telegram_payment_charge_id": charge}]
    assert bot.api.star_charges[charge]["refunded"] is True
    assert settled == [] and shop.said("We gave back your payment") == 1
    assert (status, documents) == (OrderStatus.AWAITING_PAYMENT, 0)
    assert (anomaly.source, anomaly.provider_ref, anomaly.reason) == ("telegram", charge, reason)
    assert anomaly.detail["payload"] == paid["payload"]
    assert (anomaly.detail["amount"], anomaly.detail["currency"]) == (
        paid["amount"],
        paid["currency"],
    )
    assert anomaly.order_id == (None if case == "unknown-payload" else shop.order_id)
    assert len(told) == 1 and f"We received your payment of {paid['amount']}" in told[0]
    assert "refund it if it paid for nothing" in told[0]
    assert (shop.said(RECEIVED), shop.documents()) == (1, 1)


async def test_a_payment_whose_write_sqlite_refuses_is_given_back_and_the_bot_keeps_serving(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """SQLite refuses the payment row a Stars charge writes (a trigger's ABORT, as a schema
    check would): a bug in our data, refused again at every start. The charge is kept as an
    anomaly and given back at the next round, the traveller reads a plain sentence, and the
    chat and the bot go on (the error used to stop serve at every start)."""
    async with running_bot(tmp_path, settings=stars_settings(tmp_path)) as bot:
        shop = await Shop.open(bot)
        conn = sqlite3.connect(shop.path, isolation_level=None)
        conn.execute(
            "CREATE TRIGGER refuse_payment BEFORE INSERT ON payments"
            " BEGIN SELECT RAISE(ABORT, 'refused by trigger'); END"
        )
        conn.close()
        charge = await bot.api.pay_invoice(CHAT, shop.invoice)
        await eventually(lambda: shop.said("something went wrong") == 1)
        kept = [(a.provider_ref, a.reason) for a in anomalies(bot)]
        await eventually(lambda: shop.said("We gave back your payment") == 1, timeout=61)
        help_text = await shop.traveller.says("/help")
        stopped = bot.stopped.is_set()
    assert charge is not None
    assert kept == [(charge, "not_recorded")]
    assert [c.params for c in bot.api.calls_to("refundStarPayment")] == [
        {"user_id": CHAT, "telegram_payment_charge_id": charge}
    ]
    assert anomalies(bot) == []  # settled once given back
    assert "PDF itinerary" in help_text and not stopped
    assert (shop.status(), shop.documents(), shop.said(RECEIVED)) == (
        OrderStatus.AWAITING_PAYMENT,
        0,
        0,
    )


async def test_with_operator_refunds_a_charge_that_paid_nothing_is_still_given_back(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """`stars.refunds: operator` keeps second payments for the operator's decision, but a
    charge that paid for nothing has no decision to make (and `orders refund` reaches only
    orders' payments): it goes back within a minute in either mode."""
    settings = make_settings(tmp_path, stars={"price": PRICE, "refunds": "operator"})
    async with running_bot(tmp_path, settings=settings) as bot:
        shop = await Shop.open(bot)
        update = bot.api.successful_payment(CHAT, payload=shop.payload, amount=PRICE - 1)
        charge = update["message"]["successful_payment"]["telegram_payment_charge_id"]
        await eventually(lambda: shop.said("We gave back your payment") == 1, timeout=61)
    assert bot.api.star_charges[charge]["refunded"] is True
    assert anomalies(bot) == []


async def test_a_charge_given_back_that_cannot_be_recorded_is_settled_at_a_later_round(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Telegram refunds a charge that paid nothing, but the store refuses to settle its
    anomaly (a trigger's ABORT, as a full disk or a held lock would fail it): the bot keeps
    serving (the refund service used to end, and serve with it, at every start), and once the
    store takes writes again a later round settles it: Telegram says it is refunded already,
    and the traveller is told once."""
    async with running_bot(tmp_path, settings=stars_settings(tmp_path)) as bot:
        shop = await Shop.open(bot)
        conn = sqlite3.connect(shop.path, isolation_level=None)
        conn.execute(
            "CREATE TRIGGER refuse_settling BEFORE UPDATE ON anomalies"
            " BEGIN SELECT RAISE(ABORT, 'refused by trigger'); END"
        )
        update = bot.api.successful_payment(CHAT, payload=shop.payload, amount=PRICE - 1)
        charge = update["message"]["successful_payment"]["telegram_payment_charge_id"]
        await eventually(lambda: len(bot.api.calls_to("refundStarPayment")) == 1, timeout=61)
        await trio.sleep(1)
        unsettled = [a.provider_ref for a in anomalies(bot)]
        help_text = await shop.traveller.says("/help")
        stopped = bot.stopped.is_set()
        conn.execute("DROP TRIGGER refuse_settling")
        conn.close()
        await eventually(lambda: shop.said("We gave back your payment") == 1, timeout=61)
        await trio.sleep(120)
        asked = len(bot.api.calls_to("refundStarPayment"))
    assert unsettled == [charge] and "PDF itinerary" in help_text and not stopped
    assert asked == 2  # the second answer: CHARGE_ALREADY_REFUNDED, which settles it
    assert bot.api.star_charges[charge]["refunded"] is True
    assert anomalies(bot) == [] and shop.said("We gave back your payment") == 1


async def test_a_payment_sqlite_refuses_even_to_keep_is_skipped_with_an_apology(
    tmp_path: Path, autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """SQLite refuses the charge's own row (star_payments), so it cannot be kept as an anomaly
    either: the update is still skipped with an apology, the chat goes on, and the log holds
    what the operator needs to refund it by hand."""
    async with running_bot(tmp_path, settings=stars_settings(tmp_path)) as bot:
        shop = await Shop.open(bot)
        conn = sqlite3.connect(shop.path, isolation_level=None)
        conn.execute(
            "CREATE TRIGGER refuse_charge BEFORE INSERT ON star_payments"
            " BEGIN SELECT RAISE(ABORT, 'refused by trigger'); END"
        )
        conn.close()
        charge = await bot.api.pay_invoice(CHAT, shop.invoice)
        await eventually(lambda: shop.said("something went wrong") == 1)
        help_text = await shop.traveller.says("/help")
        stopped = bot.stopped.is_set()
    (record,) = [r for r in caplog.records if "refund it by hand" in r.getMessage()]
    assert (record.charge, record.payer_id, record.amount) == (charge, CHAT, PRICE)  # type: ignore[attr-defined]
    assert "PDF itinerary" in help_text and not stopped
    assert query(shop.path, "SELECT COUNT(*) FROM star_payments") == [(0,)]


# ---------------------------------------------------------------- the invoice's words

#: nine flights: FRA → IST → DXB → DEL → BKK → SIN → SYD → AKL → HNL → LAX
HOPS = ["FRA", "IST", "DXB", "DEL", "BKK", "SIN", "SYD", "AKL", "HNL", "LAX"]
LONG_NAME = (
    "КОНСТАНТИНОПОЛЬСКАЯ-ЩЕРБАКОВА-ВОСКРЕСЕНСКАЯ АЛЕКСАНДРА-ЕЛИЗАВЕТА "
    "ВЛАДИМИРОВНА-СВЯТОСЛАВОВНА ФОН ГОГЕНЦОЛЛЕРН-ЗИГМАРИНГЕН"
)
DISCLAIMER = {"en": "Not a ticket or a reservation.", "ru": "Это не билет и не бронь."}
FOR = {"en": ", for ", "ru": ", для "}


def around_the_world(passenger: str, hops: list[str]) -> Itinerary:
    """A trip through `hops`, a day between flights (the model takes any number of flights)."""
    first = sample_order()[0].itinerary.flights[0]
    flights = []
    for n, (origin, destination) in enumerate(itertools.pairwise(hops)):
        leaves = first.departure_local + timedelta(days=n)
        flights.append(
            dataclasses.replace(
                first,
                flight_number=f"XX {100 + n}",
                origin=dataclasses.replace(first.origin, iata=origin),
                destination=dataclasses.replace(first.destination, iata=destination),
                departure_local=leaves,
                arrival_local=leaves + timedelta(hours=3),
            )
        )
    return Itinerary(passengers=(passenger,), legs=((*flights,),))


@pytest.mark.parametrize("language", ["en", "ru"])
@pytest.mark.parametrize("passenger", [LONG_NAME, "ANNA LI", LONG_NAME * 3])
@pytest.mark.parametrize("rounds", [1, 4])
def test_a_long_route_or_name_is_shortened_but_never_the_disclaimer(
    tmp_path: Path, language: str, passenger: str, rounds: int
) -> None:
    """Telegram takes 255 characters of description: nine flights and a long Russian name
    used to be cut at the end, the "not a ticket" sentence with them. Now the route keeps its
    first and last airports and the name what room is left; the sentence is whole."""
    conn = connect(tmp_path / "bot.sqlite3")
    trip = around_the_world(passenger, HOPS * rounds)
    conn.execute("BEGIN")
    order_rows.insert_order(
        conn,
        reference="IB-WORLD9",
        chat_id=CHAT,
        itinerary=trip,
        price=Decimal("10.00"),
        currency="USD",
        created_at=START,
    )
    invoice = issue_invoice(conn, texts_for(language), CHAT, "IB-WORLD9", PRICE, START)
    conn.execute("COMMIT")
    conn.close()
    assert isinstance(invoice, Invoice)
    about = invoice.description
    assert len(about) <= 255, len(about)
    assert about.endswith(DISCLAIMER[language]), about
    assert "FRA → IST" in about and "→ LAX," in about
    if rounds > 1:  # 39 flights: stops are left out of the middle, never the last
        assert " → … → LAX," in about
    day = trip.flights[0].departure_local.date().isoformat()
    assert day in about
    named = FOR[language]
    name = about[about.rindex(named) + len(named) : about.rindex(". " + DISCLAIMER[language])]
    if passenger == "ANNA LI":  # a short name is never shortened
        assert name == "ANNA LI"
    else:  # at least half the room the route and the name share
        assert len(name) >= 60 and name.endswith("…") and passenger.startswith(name[:-1])


def extra_payments(shop: Shop) -> list[tuple[Any, ...]]:
    return query(
        shop.path,
        "SELECT method, kind, amount, currency, provider_ref FROM extra_payments"
        " WHERE order_id = ?",
        shop.order_id,
    )


async def test_stars_paid_after_the_card_are_owed_back_and_the_traveller_told(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """The traveller has the invoice and the card page open; the card payment lands first,
    then Telegram reports the Stars payment (checked while the order still awaited it). One
    PDF; the Stars are recorded as a second payment owed back, the traveller is told they
    will be refunded, and (stars.refunds: automatic, the default) they are: one
    refundStarPayment of that charge to the payer, and the traveller told once."""
    async with running_bot(tmp_path, settings=stars_settings(tmp_path)) as bot:
        shop = await Shop.open(bot)
        session = await shop.pay_by_card()
        assert await deliver(bot, bot.stripe.complete(session)) == [200]
        await eventually(lambda: shop.documents() == 1)
        update = bot.api.successful_payment(CHAT, payload=shop.payload, amount=PRICE)
        charge = update["message"]["successful_payment"]["telegram_payment_charge_id"]
        await eventually(lambda: shop.said("second payment") == 1)
        await trio.sleep(60)
        told = [t for t in bot.api.sent_texts(CHAT) if "second payment" in t]
    assert extra_payments(shop) == [("stars", "second", str(PRICE), "XTR", charge)]
    assert told == [
        f"We received a second payment of {PRICE} ⭐ for order {shop.reference}, which was "
        "already paid. The Stars will be refunded to your Telegram account."
    ]
    assert (shop.said(CARD_RECEIVED), shop.said(RECEIVED), shop.documents()) == (1, 0, 1)
    assert anomalies(bot) == []
    refunds = [c.params for c in bot.api.calls_to("refundStarPayment") if c.status == 200]
    assert refunds == [{"user_id": CHAT, "telegram_payment_charge_id": charge}]
    assert bot.api.star_charges[charge]["refunded"] is True
    assert shop.said(f"We refunded {PRICE} ⭐ for order {shop.reference}") == 1


async def test_a_second_stars_refund_cut_off_by_a_stop_is_asked_again_at_the_next_start(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Telegram's answer to the automatic refund is lost and the bot stops before asking
    again: the next start asks once more, Telegram says it was refunded already, and the
    refund is recorded as done with the traveller told once."""
    fakes = Fakes.make()
    settings = stars_settings(tmp_path)
    async with running_bot(tmp_path, fakes, settings=settings) as bot:
        shop = await Shop.open(bot)
        session = await shop.pay_by_card()
        assert await deliver(bot, bot.stripe.complete(session)) == [200]
        await eventually(lambda: shop.documents() == 1)
        fakes.api.fail_next("refundStarPayment", drop=True)
        update = fakes.api.successful_payment(CHAT, payload=shop.payload, amount=PRICE)
        charge = update["message"]["successful_payment"]["telegram_payment_charge_id"]
        await eventually(lambda: len(fakes.api.calls_to("refundStarPayment")) == 1)
        # Telegram refunded, then the connection broke before its answer reached the bot,
        # which stops before its retry 5 s later
        fakes.api.star_charges[charge]["refunded"] = True
    async with running_bot(tmp_path, fakes, settings=settings) as bot:
        await eventually(lambda: said(bot, "We refunded") == 1)
        await trio.sleep(60)
        assert said(bot, "We refunded") == 1
    statuses = [c.status for c in fakes.api.calls_to("refundStarPayment")]
    assert statuses == [-1, 400]
    assert query(tmp_path / "bot.sqlite3", "SELECT status FROM refunds") == [("succeeded",)]


async def test_a_card_paid_after_the_stars_is_owed_back_and_the_traveller_told(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """The other way round: Stars first, then the card page opened before is paid too. One
    PDF; the card payment is recorded as owed back, and the traveller told."""
    async with running_bot(tmp_path, settings=stars_settings(tmp_path)) as bot:
        shop = await Shop.open(bot)
        session = await shop.pay_by_card()
        await bot.api.pay_invoice(CHAT, shop.invoice)
        await eventually(lambda: shop.documents() == 1)
        completed = bot.stripe.complete(session)
        assert await deliver(bot, completed) == [200]
        await eventually(lambda: shop.said("second payment") == 1)
        await trio.sleep(60)
        told = [t for t in bot.api.sent_texts(CHAT) if "second payment" in t]
    assert extra_payments(shop) == [("card", "second", "10.00", "USD", session)]
    assert told == [
        f"We received a second payment of 10.00 USD for order {shop.reference}, which was "
        "already paid. It will be refunded to your card."
    ]
    assert (shop.said(RECEIVED), shop.said(CARD_RECEIVED), shop.documents()) == (1, 0, 1)
    assert shop.said("We refunded 10.00 USD to your card") == 1  # the card refund service


# ---------------------------------------------------------------- refusals at pre-checkout


async def test_an_invoice_of_a_paid_order_is_refused(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with running_bot(tmp_path, settings=stars_settings(tmp_path)) as bot:
        shop = await Shop.open(bot)
        await bot.api.pay_invoice(CHAT, shop.invoice)
        await eventually(lambda: shop.documents() == 1)
        why = await refused(shop)
        await trio.sleep(30)
    assert why == f"Order {shop.reference} is already paid."
    assert (shop.said(RECEIVED), shop.documents()) == (1, 1)


async def test_an_invoice_of_a_cancelled_order_is_refused(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with running_bot(tmp_path, settings=stars_settings(tmp_path)) as bot:
        shop = await Shop.open(bot)
        await shop.traveller.presses("Cancel", shop.summary)
        assert shop.status() == OrderStatus.CANCELLED
        why = await refused(shop)
    assert why == f"Order {shop.reference} was cancelled. Send /start for a new one."
    assert shop.documents() == 0


async def test_an_invoice_the_store_does_not_know_is_refused(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """The store was replaced (restored from a backup older than the invoice): the invoice
    still in the chat names nothing the bot knows."""
    fakes = Fakes.make()
    async with running_bot(tmp_path, fakes, settings=stars_settings(tmp_path)) as bot:
        shop = await Shop.open(bot)
    restored = tmp_path / "restored"
    restored.mkdir()
    async with running_bot(restored, fakes, settings=stars_settings(restored)) as bot:
        shop.bot = bot
        why = await refused(shop)
    assert why == "This invoice is not one of ours any more. Send /orders or /start for a new one."
    assert fakes.api.sent_documents() == []


async def test_an_invoice_paid_by_another_user_is_refused(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Someone who is not the order's traveller pays its invoice: refused, and the order's
    own traveller can still pay it."""
    async with running_bot(tmp_path, settings=stars_settings(tmp_path)) as bot:
        shop = await Shop.open(bot)
        why = await refused(shop, user={"id": OTHER_USER, "first_name": "Stranger"})
        status = shop.status()
        assert await bot.api.pay_invoice(CHAT, shop.invoice) is not None
        await eventually(lambda: shop.documents() == 1)
    assert why == "This invoice belongs to another traveller's order."
    assert status == OrderStatus.AWAITING_PAYMENT


@pytest.mark.parametrize(
    "asked",
    [
        pytest.param({"amount": PRICE + 50}, id="another-amount"),
        pytest.param({"currency": "EUR"}, id="another-currency"),
    ],
)
async def test_a_query_for_another_price_than_the_invoice_is_refused(
    tmp_path: Path, autojump_clock: trio.abc.Clock, asked: dict[str, Any]
) -> None:
    """Telegram asks about the invoice's payload with another total or currency than the
    invoice the bot sent and stored (as if it were altered on the way): refused."""
    async with running_bot(tmp_path, settings=stars_settings(tmp_path)) as bot:
        shop = await Shop.open(bot)
        key = (CHAT, shop.invoice)
        sent = bot.api.invoices[key]
        (price,) = sent["prices"]
        bot.api.invoices[key] = {
            **sent,
            "currency": asked.get("currency", sent["currency"]),
            "prices": [{**price, "amount": asked.get("amount", price["amount"])}],
        }
        why = await refused(shop)
        status = shop.status()
    assert why == "This invoice does not match the order's price. Ask for a new invoice."
    assert status == OrderStatus.AWAITING_PAYMENT
    assert shop.documents() == 0


# ---------------------------------------------------------------- a restart, and the settings


async def test_a_restart_between_the_payment_and_the_pdf_still_delivers_it_once(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """The Stars payment is recorded and "Payment received" sent, but every sendDocument
    fails, and the bot is stopped before the PDF got through. The next start sends it:
    one PDF, one "Payment received", the charge recorded once."""
    fakes, settings = Fakes.make(), stars_settings(tmp_path)
    async with running_bot(tmp_path, fakes, settings=settings) as bot:
        shop = await Shop.open(bot)
        fakes.api.fail_share(["sendDocument"], 1.0, status=502)
        charge = await fakes.api.pay_invoice(CHAT, shop.invoice)
        await eventually(lambda: fakes.api.faults_injected["sendDocument:502"] >= 2)
        before = (shop.said(RECEIVED), shop.documents(), shop.status())
    fakes.api.fail_share(["sendDocument"], 0.0)
    async with running_bot(tmp_path, fakes, settings=settings) as bot:
        shop.bot = bot
        await eventually(lambda: shop.documents() == 1)
        await trio.sleep(60)
    assert before == (1, 0, OrderStatus.PAID)
    assert (shop.said(RECEIVED), shop.documents(), shop.status()) == (1, 1, OrderStatus.DELIVERED)
    assert query(shop.path, "SELECT charge_id FROM star_payments") == [(charge,)]
    assert fakes.api.violations == []


async def test_a_stars_only_shop_offers_only_stars_and_refuses_an_old_card_button(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """The owner follows Telegram's rule strictly (`telegram.payment_methods: [stars]`): a
    new summary shows only "Pay 250 ⭐"; "Pay by card" on a summary shown before the change
    is answered politely, and no Checkout Session is made."""
    fakes = Fakes.make()
    async with running_bot(tmp_path, fakes, settings=stars_settings(tmp_path)) as bot:
        old = Traveller(bot, CHAT)
        await old.walk(ONE_WAY)
        old_summary = old.last_keyboard_id()
    strict = stars_settings(tmp_path, telegram={"payment_methods": ["stars"]})
    async with running_bot(tmp_path, fakes, settings=strict) as bot:
        old.bot = bot
        await old.presses("Pay by card", old_summary)
        new = Traveller(bot, CHAT + 1)
        await new.walk(ONE_WAY)
        labels = new.labels()
        summary = fakes.api.sent_texts(new.chat)[-1]
    assert labels == [f"Pay {PRICE} ⭐", "Edit", "Cancel"]
    assert f"Price: {PRICE} ⭐ ·" in summary and "USD" not in summary
    assert fakes.api.callback_answers[old.callback_ids[-1]].get("text") == (
        "Card payment is not available at the moment."
    )
    assert fakes.stripe.sessions == {}
