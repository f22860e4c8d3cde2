"""A Telegram Stars purchase end to end: the real `itinerabot serve` process against the sandbox
on loopback, from /start to the PDF read back, and the pre-checkout refusals that protect it.

Real time, real sockets, short intervals, a time limit on each test. The fake Bot API sends
`pre_checkout_query` and waits at most Telegram's 10 s for the answer before it charges.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
import trio
from pypdf import PdfReader

from sandbox.demo import CARD_TRIP, STARS_PRICE, Sandbox, Traveller, open_sandbox
from sandbox.telegram import PRE_CHECKOUT_TIMEOUT
from tests.harness import query

pytestmark = pytest.mark.process


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def store(sandbox: Sandbox) -> Path:
    return sandbox.workdir / "itinerabot.sqlite3"


async def test_a_stars_purchase_from_first_message_to_pdf(tmp_path: Path) -> None:
    with trio.fail_after(40):
        async with open_sandbox(tmp_path) as sandbox:
            await sandbox.start_bot()
            api, traveller = sandbox.api, Traveller(sandbox.api, 41)
            reference = await traveller.order_itinerary(CARD_TRIP)
            summary = await traveller.wait_for_text("Please check your itinerary.")
            keyboard = api.last_keyboard(traveller.chat_id)
            assert keyboard is not None

            message_id, invoice = await traveller.pay_with_stars()
            asked = trio.current_time()
            charge = await api.pay_invoice(traveller.chat_id, message_id)
            (answer_call,) = api.calls_to("answerPreCheckoutQuery")
            received = await traveller.wait_for_text("Payment received")
            document = await traveller.document(reference)
            await trio.sleep(0.5)  # nothing else follows
            code, _ = await sandbox.stop_bot()

    assert code == 0
    assert f"Price: {STARS_PRICE} ⭐ or 10.00 USD · Order {reference}" in summary
    assert keyboard.labels()[0] == f"Pay {STARS_PRICE} ⭐"
    # the invoice: Stars, one price item in whole Stars, no provider, the order's own words
    assert invoice["currency"] == "XTR"
    assert invoice["provider_token"] == ""
    assert [p["amount"] for p in invoice["prices"]] == [STARS_PRICE]
    # the payload names the order and the attempt (a token: unique with several writers)
    assert re.fullmatch(rf"{reference}:[A-Za-z0-9_-]{{8}}", invoice["payload"])
    assert invoice["title"] == f"Flight itinerary {reference}"
    for said in ("FRA → JFK", "JANE MARY DOE", "Not a ticket"):
        assert said in invoice["description"]
    # the pre-checkout: accepted within Telegram's 10 s, then charged once
    assert answer_call.params["ok"] is True and answer_call.status == 200
    assert answer_call.at - asked < PRE_CHECKOUT_TIMEOUT
    assert charge is not None
    assert api.star_charges == {charge: {"user_id": 41, "amount": STARS_PRICE, "refunded": False}}
    assert received == (
        f"Payment received: {STARS_PRICE} ⭐ for order {reference}. "
        "Your itinerary PDF is on its way."
    )
    # one PDF, its receipt naming Stars and Telegram's charge id
    assert len(traveller.documents(reference)) == 1
    assert document.mime_type == "application/pdf"
    text = pdf_text(document.data)
    for said in (reference, "JANE MARY DOE", "LH 400", "FRA", "JFK", "Telegram Stars", charge):
        assert said in text, (said, text)
    assert f"{STARS_PRICE} Telegram Stars (XTR)" in text
    assert sandbox.confirmations() == {reference: "telegram:successful_payment"}
    assert query(
        store(sandbox), "SELECT charge_id, payer_id, currency, amount, payload FROM star_payments"
    ) == [(charge, 41, "XTR", STARS_PRICE, invoice["payload"])]
    assert api.violations == []
    assert "Traceback" not in sandbox.log


@pytest.mark.parametrize("paid_by", ["stars", "card"])
async def test_a_pre_checkout_for_an_order_already_paid_is_refused(
    tmp_path: Path, paid_by: str
) -> None:
    """The invoice stays in the chat after the order is paid (by it, or by card): paying it
    again is refused before Telegram charges anything."""
    with trio.fail_after(40):
        async with open_sandbox(tmp_path) as sandbox:
            await sandbox.start_bot()
            api, traveller = sandbox.api, Traveller(sandbox.api, 42)
            reference = await traveller.order_itinerary(CARD_TRIP)
            message_id, _ = await traveller.pay_with_stars()
            if paid_by == "stars":
                assert await api.pay_invoice(traveller.chat_id, message_id) is not None
            else:
                url = await traveller.pay_by_card()
                (session,) = [s["id"] for s in sandbox.stripe.sessions.values() if s["url"] == url]
                assert await sandbox.deliver_stripe(sandbox.stripe.complete(session)) == [200]
            await traveller.document(reference)
            charges = dict(api.star_charges)

            asked = trio.current_time()
            again = await api.pay_invoice(traveller.chat_id, message_id)
            answer_call = api.calls_to("answerPreCheckoutQuery")[-1]
            await trio.sleep(0.5)  # no successful_payment, no second PDF
            code, _ = await sandbox.stop_bot()

    assert code == 0
    assert again is None
    assert answer_call.status == 200 and answer_call.at - asked < PRE_CHECKOUT_TIMEOUT
    assert answer_call.params["ok"] is False
    assert answer_call.params["error_message"] == f"Order {reference} is already paid."
    assert api.star_charges == charges  # nothing charged the second time
    assert len(charges) == (1 if paid_by == "stars" else 0)
    assert len(traveller.documents(reference)) == 1
    assert len(query(store(sandbox), "SELECT charge_id FROM star_payments")) == len(charges)
    assert api.chat_log(traveller.chat_id)[-1].what == (
        f"[checkout refused: Order {reference} is already paid.]"
    )
    assert api.violations == []


async def test_telegram_payment_methods_stars_shows_only_the_stars_button(tmp_path: Path) -> None:
    with trio.fail_after(40):
        async with open_sandbox(tmp_path) as sandbox:
            await sandbox.start_bot(sandbox.config(telegram={"payment_methods": ["stars"]}))
            api, traveller = sandbox.api, Traveller(sandbox.api, 43)
            reference = await traveller.order_itinerary(CARD_TRIP)
            summary = await traveller.wait_for_text("Please check your itinerary.")
            keyboard = api.last_keyboard(traveller.chat_id)
            assert keyboard is not None
            message_id, _ = await traveller.pay_with_stars()
            assert await api.pay_invoice(traveller.chat_id, message_id) is not None
            await traveller.document(reference)
            code, _ = await sandbox.stop_bot()

    assert code == 0
    assert keyboard.labels() == [f"Pay {STARS_PRICE} ⭐", "Edit", "Cancel"]
    assert f"Price: {STARS_PRICE} ⭐ · Order {reference}" in summary
    assert "USD" not in summary.split("Price:")[1]
    assert sandbox.stripe.sessions == {} and sandbox.circle.intent_ids() == []
    assert api.violations == []
