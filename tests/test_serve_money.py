"""The money promise end to end: the real `itinerabot serve` process against the sandbox on
loopback: a Telegram outage mid-payment, a USDC payment after the poll window with no
webhook, a foreign Stripe session. Real time, short intervals, a time limit on each test.
"""

from __future__ import annotations

import copy
import sqlite3
from pathlib import Path

import pytest
import trio

from sandbox.circle import paid_script
from sandbox.demo import CARD_TRIP, USDC_TRIP, Sandbox, Traveller, open_sandbox

pytestmark = pytest.mark.process

#: the methods a Telegram outage takes down (getUpdates too: the whole Bot API is gone)
BOT_API = ("getUpdates", "sendMessage", "sendDocument", "sendPhoto", "editMessageReplyMarkup")


def anomalies(sandbox: Sandbox) -> list[tuple[str, str]]:
    conn = sqlite3.connect(sandbox.workdir / "itinerabot.sqlite3")
    rows = conn.execute("SELECT source, reason FROM anomalies").fetchall()
    conn.close()
    return [(str(a), str(b)) for a, b in rows]


async def test_a_25_second_telegram_outage_during_a_payment_still_delivers_once(
    tmp_path: Path,
) -> None:
    """Findings 6 and 8: with the old 20 attempts (or 3) the PDF was given up for good."""
    with trio.fail_after(60):
        async with open_sandbox(tmp_path) as sandbox:
            await sandbox.start_bot(sandbox.config(sender={"backoff_cap": 2}))
            traveller = Traveller(sandbox.api, 31)
            reference = await traveller.order_itinerary(CARD_TRIP)
            url = await traveller.pay_by_card()
            (session,) = [s["id"] for s in sandbox.stripe.sessions.values() if s["url"] == url]
            sandbox.api.fail_share(BOT_API, 1.0, status=502)
            outage_began = trio.current_time()
            assert await sandbox.deliver_stripe(sandbox.stripe.complete(session)) == [200]
            await trio.sleep(25)
            failed_sends = sandbox.api.faults_injected["sendMessage:502"]
            sandbox.api.fail_share(BOT_API, 0.0)
            document = await traveller.document(reference)
            arrived = trio.current_time() - outage_began
            await trio.sleep(3)  # nothing else follows
            code, _ = await sandbox.stop_bot()
    assert code == 0
    assert failed_sends >= 5  # it kept trying through the outage, every ≤ 2 s
    assert 25 <= arrived < 25 + 2 + 1
    assert len(traveller.documents(reference)) == 1
    assert document.file_name == f"itinerary-{reference}.pdf"
    assert "send failed for good" not in sandbox.log


async def test_a_usdc_payment_after_the_poll_window_is_delivered_without_a_webhook(
    tmp_path: Path,
) -> None:
    """Finding 2: after the window nothing looked again, so a late payment was never seen."""
    with trio.fail_after(60):
        async with open_sandbox(tmp_path) as sandbox:
            config = sandbox.config(
                circle={"poll_interval": 1, "poll_window": 4, "late_check_interval": 5}
            )
            await sandbox.start_bot(config)
            # pending (with the address) at once; paid 9 s after the intent was made
            sandbox.circle.script_next(paid_script(pending_after=0, paid_after=9, by_time=True))
            traveller = Traveller(sandbox.api, 32)
            reference = await traveller.order_itinerary(USDC_TRIP)
            await traveller.pay_with_usdc()
            await traveller.deposit_address(reference)
            await traveller.wait_for_text("not seen a confirmed USDC payment")
            document = await traveller.document(reference)
            code, _ = await sandbox.stop_bot()
    assert code == 0
    assert len(traveller.documents(reference)) == 1
    assert document.file_name == f"itinerary-{reference}.pdf"
    (source,) = sandbox.confirmations().values()
    assert source == "circle-late-check"


async def test_a_foreign_stripe_session_naming_the_order_delivers_nothing(
    tmp_path: Path,
) -> None:
    """Finding 1: a signed session the bot never created (1 EUR cent) delivered a PDF."""
    with trio.fail_after(60):
        async with open_sandbox(tmp_path) as sandbox:
            await sandbox.start_bot()
            traveller = Traveller(sandbox.api, 33)
            reference = await traveller.order_itinerary(CARD_TRIP)
            url = await traveller.pay_by_card()
            (ours,) = [s for s in sandbox.stripe.sessions.values() if s["url"] == url]
            # another Checkout on the same Stripe account (a Payment Link, say), paid, that
            # names our order in its metadata and reference
            foreign = copy.deepcopy(ours)
            foreign.update(
                id="cs_test_a1ForeignPaymentLinkSession000000000000000000000000",
                amount_subtotal=1,
                amount_total=1,
                currency="eur",
                status="complete",
                payment_status="paid",
                payment_intent="pi_3ForeignPaymentIntent0000",
                url=None,
            )
            event = sandbox.stripe.event("checkout.session.completed", foreign)
            assert await sandbox.deliver_stripe(event, times=2) == [200, 200]
            await trio.sleep(3)
            code, _ = await sandbox.stop_bot()
    assert code == 0
    assert traveller.documents(reference) == []
    assert sandbox.confirmations() == {}
    assert ("stripe", "unknown_session") in anomalies(sandbox)
    warnings = [line for line in sandbox.log.splitlines() if " WARNING " in line]
    assert any("cs_test_a1Foreign" in line for line in warnings), warnings
