"""Real trips end to end: the real `itinerabot serve` process against the sandbox on loopback.
Two travellers on a return trip with a connection each way paid by card, a four-leg trip paid
in USDC, and an order stored before trips had legs, sent again after the store's migration.

Real time, real sockets, short intervals, a time limit on each test; every PDF is read back.
"""

from __future__ import annotations

import io
import json
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import trio
from pypdf import PdfReader

from itinerabot.store.schema import MIGRATIONS
from sandbox.circle import paid_script
from sandbox.demo import MULTI_CITY_TRIP, RETURN_TRIP, Sandbox, Traveller, open_sandbox
from sandbox.serve import wait_for
from tests.harness import query

pytestmark = pytest.mark.process

POLL = 0.5  # circle.poll_interval of these tests (seconds)
PER_TRAVELLER = {"pricing": {"per": "traveller"}}


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def store(sandbox: Sandbox) -> Path:
    return sandbox.workdir / "itinerabot.sqlite3"


async def test_two_travellers_on_a_return_trip_with_connections_pay_twice_the_price_by_card(
    tmp_path: Path,
) -> None:
    with trio.fail_after(40):
        async with open_sandbox(tmp_path) as sandbox:
            await sandbox.start_bot(sandbox.config(**PER_TRAVELLER))
            traveller = Traveller(sandbox.api, 61)
            reference = await traveller.order_itinerary(RETURN_TRIP)
            summary = await traveller.wait_for_text("Please check your itinerary.")
            url = await traveller.pay_by_card()
            (session,) = [s for s in sandbox.stripe.sessions.values() if s["url"] == url]
            event = sandbox.stripe.complete(session["id"])
            assert await sandbox.deliver_stripe(event) == [200]
            received = await traveller.wait_for_text("Payment received")
            document = await traveller.document(reference)
            code, _ = await sandbox.stop_bot()
    assert code == 0
    assert "Travellers (2):\n1. JANE MARY DOE\n2. JOHN O'NEILL" in summary
    assert "Outbound: FRA → DOH → BKK" in summary and "Return: BKK → DOH → FRA" in summary
    assert "Connection at DOH: 2 h 30 min on the ground" in summary
    assert "Connection at DOH: 2 h 25 min on the ground" in summary
    assert f"Price: 500 ⭐ (2 × 250 ⭐) or 20.00 USD (2 × 10.00 USD) · Order {reference}" in summary
    # Checkout asked two travellers at the unit price, and took the total
    (item,) = sandbox.stripe.line_items[session["id"]]
    assert (item["quantity"], item["price"]["unit_amount"], item["currency"]) == (2, 1000, "usd")
    assert (item["amount_total"], session["amount_total"]) == (2000, 2000)
    assert received.startswith(f"Payment received: 20.00 USD by card for order {reference}.")
    assert query(store(sandbox), "SELECT price, quantity, status FROM orders") == [
        ("20.00", 2, "delivered")
    ]
    assert sandbox.confirmations() == {reference: "stripe:checkout.session.completed"}
    # the PDF: every traveller, every flight with its airline, both legs, both layovers
    assert len(traveller.documents(reference)) == 1
    text = pdf_text(document.data)
    for said in (
        reference,
        "Passengers (2)",
        "JANE MARY DOE",
        "JOHN O'NEILL",
        "QR 68 · Qatar Airways",
        "QR 830 · Qatar Airways",
        "QR 831 · Qatar Airways",
        "QR 69 · Qatar Airways",
        "Outbound · FRA → DOH → BKK",
        "Return · BKK → DOH → FRA",
        "Connection in Doha (DOH): 2 h 30 min",
        "Connection in Doha (DOH): 2 h 25 min",
        "2 × 10.00 USD = 20.00 USD",
    ):
        assert said in text, (said, text)
    assert text.index("QR 68") < text.index("QR 830") < text.index("QR 831") < text.index("QR 69")
    assert sandbox.api.violations == []
    assert [c for c in traveller.reply_counts() if c[1] != c[2]] == []


async def test_a_four_leg_trip_for_two_travellers_paid_in_usdc(tmp_path: Path) -> None:
    with trio.fail_after(40):
        async with open_sandbox(tmp_path) as sandbox:
            config = sandbox.config(circle={"poll_interval": POLL}, **PER_TRAVELLER)
            await sandbox.start_bot(config)
            sandbox.circle.script_next(paid_script(pending_after=1, paid_after=3))
            traveller = Traveller(sandbox.api, 62)
            reference = await traveller.order_itinerary(MULTI_CITY_TRIP)
            summary = await traveller.wait_for_text("Please check your itinerary.")
            await traveller.pay_with_usdc()
            address = await traveller.deposit_address(reference)
            asked = await traveller.wait_for_text(f"Order {reference}: send exactly")
            intent = sandbox.circle.intent(sandbox.intent_for_address(address))
            document = await traveller.document(reference)
            code, _ = await sandbox.stop_bot()
    assert code == 0
    for heading in (
        "Leg 1: BER → CDG",
        "Leg 2: CDG → FCO",
        "Leg 3: FCO → ATH",
        "Leg 4: ATH → BER",
    ):
        assert heading in summary
    assert "Connection at" not in summary
    assert f"Price: 500 ⭐ (2 × 250 ⭐) or 20.00 USD (2 × 10.00 USD) · Order {reference}" in summary
    # Circle was asked the total for both travellers, and so was the traveller
    assert intent["amount"] == {"amount": "20.00", "currency": "USD"}
    assert "send exactly 20.00 USDC" in asked
    assert sandbox.confirmations() == {reference: "circle-poller"}
    text = pdf_text(document.data)
    for said in (
        reference,
        "ANNA SCHMIDT",
        "LUKAS SCHMIDT",
        "AF 1735 · Air France",
        "AF 1404 · Air France",
        "AZ 720 · ITA Airways",
        "A3 822 · Aegean Airlines",
        "Leg 1 · BER → CDG",
        "Leg 2 · CDG → FCO",
        "Leg 3 · FCO → ATH",
        "Leg 4 · ATH → BER",
        "Flight 4 of 4",
        "2 × 10.00 USDC = 20.00 USDC",
    ):
        assert said in text, (said, text)
    assert "Connection in" not in text
    assert sandbox.api.violations == []


# ---------------------------------------------------------------- orders stored before legs

OLD_CHAT = 63
OLD_REFERENCE = "IB-4OLD2X"
FRANKFURT = {
    "iata": "FRA",
    "name": "Frankfurt am Main International Airport",
    "city": "Frankfurt am Main",
    "country": "DE",
    "tz": "Europe/Berlin",
}
NEW_YORK = {
    "iata": "JFK",
    "name": "John F Kennedy International Airport",
    "city": "New York",
    "country": "US",
    "tz": "America/New_York",
}
#: a return trip as schema 6 stored it: one passenger, a list of flights, no legs, no airline
OLD_ITINERARY: dict[str, Any] = {
    "passenger": "MARIA SCHNEIDER",
    "flights": [
        {
            "flight_number": "LH 400",
            "origin": FRANKFURT,
            "destination": NEW_YORK,
            "departure_local": "2026-12-10T10:55",
            "arrival_local": "2026-12-10T13:50",
        },
        {
            "flight_number": "LH 401",
            "origin": NEW_YORK,
            "destination": FRANKFURT,
            "departure_local": "2026-12-20T17:45",
            "arrival_local": "2026-12-21T07:35",
        },
    ],
}


def store_of_schema_6_with_a_delivered_order(path: Path) -> None:
    """A store as a `serve` of schema 6 left it (WAL, closed): one order in the old itinerary
    form, paid by card and delivered, written with that schema's own statements."""
    paid = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    for script in MIGRATIONS[:6]:
        conn.executescript(script)
    conn.execute("PRAGMA user_version = 6")
    conn.execute(
        "INSERT INTO orders (id, reference, chat_id, itinerary, price, currency, status,"
        " created_at, paid_at, delivered_at, document_message_id)"
        " VALUES (1, ?, ?, ?, '10.00', 'USD', 'delivered', ?, ?, ?, 900)",
        (
            OLD_REFERENCE,
            OLD_CHAT,
            json.dumps(OLD_ITINERARY),
            "2026-11-20T09:20:00+00:00",
            paid.isoformat(),
            "2026-11-20T09:30:05+00:00",
        ),
    )
    conn.execute(
        "INSERT INTO payments (order_id, method, amount, currency, provider_ref,"
        " provider_payment_id, tx_hash, paid_at, source)"
        " VALUES (1, 'card', '10.00', 'USD', ?, ?, NULL, ?, 'stripe:webhook')",
        ("cs_test_a1OldOrderSession", "pi_3OldOrderPayment", paid.isoformat()),
    )
    conn.close()


async def orders_cli(config: Path, *args: str) -> tuple[int, str, str]:
    """`itinerabot orders --config CONFIG ARGS` in a child process: (exit code, out, err)."""
    done = await trio.run_process(
        [sys.executable, "-m", "itinerabot", "orders", "--config", str(config), *args],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def test_an_order_stored_before_legs_is_sent_again_after_the_migration(
    tmp_path: Path,
) -> None:
    with trio.fail_after(40):
        async with open_sandbox(tmp_path) as sandbox:
            config = sandbox.config()
            store_of_schema_6_with_a_delivered_order(store(sandbox))
            await sandbox.start_bot(config)  # migrates the store to the latest schema
            traveller = Traveller(sandbox.api, OLD_CHAT)
            listed = await traveller.say("/orders", "Your orders, newest first:")
            traveller.act(f"press:PDF {OLD_REFERENCE}", replies=0)
            first = await traveller.document(OLD_REFERENCE)
            stopped, _ = await sandbox.stop_bot()
            # The operator's resend queues a copy for the running bot's sender, which rescans
            # every minute; a bot that starts sends what is queued at once, so it is run here
            # between two runs of the bot.
            resent = await orders_cli(config, "resend", OLD_REFERENCE)
            await sandbox.start_bot()
            await wait_for(lambda: len(traveller.documents(OLD_REFERENCE)) == 2, 15)
            code, _ = await sandbox.stop_bot()
    assert (stopped, code) == (0, 0)
    assert query(store(sandbox), "PRAGMA user_version") == [(len(MIGRATIONS),)]
    assert f"{OLD_REFERENCE} · FRA → JFK → FRA, Thu 10 Dec 2026 · paid, PDF sent" in listed
    assert resent[0] == 0 and resent[2] == "", resent
    assert resent[1].startswith(f"queued a copy of the PDF of {OLD_REFERENCE} for chat {OLD_CHAT}")
    _, second = traveller.documents(OLD_REFERENCE)
    for document in (first, second):
        text = pdf_text(document.data)
        for said in (
            OLD_REFERENCE,
            "Passenger\nMARIA SCHNEIDER",
            "Outbound · FRA → JFK",
            "Return · JFK → FRA",
            "Flight 1 of 2 — LH 400",
            "Flight 2 of 2 — LH 401",
            "Thu 10 Dec 2026 10:55",
            "Mon 21 Dec 2026 07:35",
            "cs_test_a1OldOrderSession",
        ):
            assert said in text, (said, text)
        # the airline was never stored with these flights: the number stands alone
        assert "LH 400 ·" not in text and "Lufthansa" not in text
    assert sandbox.api.violations == []
