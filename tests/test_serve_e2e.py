"""End to end: the real `itinerabot serve` subprocess against the sandbox fakes on loopback.

Real time, real sockets, real signals. Each test has a time limit; waits are for events the
fakes record, never fixed sleeps, except where a test shows that something stops happening.
"""

from __future__ import annotations

import io
import random
import re
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path

import pytest
import trio
from pypdf import PdfReader

from sandbox.circle import Step, never_paid_script, paid_script
from sandbox.demo import (
    CARD_TRIP,
    CHECKOUT_PHRASE,
    PAY_CARD,
    PAY_USDC,
    RETURN_TRIP,
    STARS_TRIP,
    USDC_PHRASE,
    USDC_TRIP,
    Sandbox,
    Traveller,
    confirmed_by_hand,
    open_sandbox,
    run_demo,
)
from sandbox.serve import wait_for

pytestmark = pytest.mark.process

POLL = 0.5  # circle.poll_interval of these tests (seconds)


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


@asynccontextmanager
async def sandbox_with_bot(tmp_path: Path, **config: dict[str, object]) -> AsyncIterator[Sandbox]:
    async with open_sandbox(tmp_path) as sandbox:
        await sandbox.start_bot(sandbox.config(**config))
        yield sandbox


async def test_a_purchase_each_way_from_first_message_to_pdf(tmp_path: Path) -> None:
    with trio.fail_after(45):
        result = await run_demo(tmp_path, say=lambda _: None)
    assert result.exit_code == 0, result.bot_log
    assert result.stop_seconds < 1.0
    assert result.violations == []
    assert result.reply_mismatches == []
    card, usdc, stars, both = result.documents
    trips = ((card, CARD_TRIP), (usdc, USDC_TRIP), (stars, STARS_TRIP), (both, RETURN_TRIP))
    for doc, trip in trips:
        reference = doc.file_name.removeprefix("itinerary-").removesuffix(".pdf")
        assert doc.mime_type == "application/pdf"
        text = pdf_text(doc.data)
        assert reference in text
        assert all(name.upper() in text for name in trip.travellers)
        assert all(number in text for number in trip.flight_numbers)
        assert f"{trip.origin}" in text and f"{trip.destination}" in text
    assert "LH 400" not in pdf_text(usdc.data)
    assert "2 × 10.00 USD = 20.00 USD" in pdf_text(both.data)  # priced per traveller
    sources = list(result.confirmations.values())
    assert sources[0] == "stripe:checkout.session.completed"
    assert sources[1] in ("circle-webhook", "circle-poller")
    assert sources[2] == "telegram:successful_payment"
    assert sources[3] == "stripe:checkout.session.completed"
    assert "Traceback" not in result.bot_log


async def test_circle_webhook_never_arrives_the_poller_confirms(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with sandbox_with_bot(tmp_path, circle={"poll_interval": POLL}) as sandbox:
            sandbox.circle.script_next(paid_script(pending_after=1, paid_after=3))
            traveller = Traveller(sandbox.api, 11)
            reference = await traveller.order_itinerary(USDC_TRIP)
            await traveller.pay_with_usdc()
            address = await traveller.deposit_address(reference)
            await traveller.document(reference)
            intent = sandbox.intent_for_address(address)
            await trio.sleep(2 * POLL)  # the poller has stopped: no further checks
            code, _ = await sandbox.stop_bot()
    assert code == 0
    assert sandbox.confirmations() == {reference: "circle-poller"}
    # pending at the 1st check, paid at the 3rd: three checks, then the poller ends
    assert sandbox.circle.gets[intent] == 3
    assert len(traveller.documents(reference)) == 1
    assert sandbox.api.violations == []


async def test_circle_webhook_first_stops_the_poller(tmp_path: Path) -> None:
    interval = 1.0  # room between two checks for the webhook to arrive first
    with trio.fail_after(30):
        async with sandbox_with_bot(tmp_path, circle={"poll_interval": interval}) as sandbox:
            sandbox.circle.script_next(confirmed_by_hand())
            traveller = Traveller(sandbox.api, 12)
            reference = await traveller.order_itinerary(USDC_TRIP)
            await traveller.pay_with_usdc()
            intent = sandbox.intent_for_address(await traveller.deposit_address(reference))
            checks = sandbox.circle.gets[intent]
            await wait_for(lambda: sandbox.circle.gets[intent] > checks, 5, interval=0.01)
            # just after a check: the next one is a whole interval away
            sandbox.circle.advance(intent)
            assert await sandbox.deliver_circle(intent, times=2) == [200, 200]
            await traveller.document(reference)
            checks = sandbox.circle.gets[intent]
            await trio.sleep(2 * interval)
            code, _ = await sandbox.stop_bot()
    assert code == 0
    assert sandbox.confirmations() == {reference: "circle-webhook"}
    assert sandbox.circle.gets[intent] == checks  # the poller stopped with the webhook
    assert len(traveller.documents(reference)) == 1


async def test_sigterm_with_pollers_running_then_restart_resumes(tmp_path: Path) -> None:
    count = 4
    with trio.fail_after(40):
        async with sandbox_with_bot(tmp_path, circle={"poll_interval": POLL}) as sandbox:
            sandbox.circle.script_next(*[never_paid_script(pending_after=1)] * count)
            travellers = [Traveller(sandbox.api, 100 + i) for i in range(count)]
            intents: dict[int, str] = {}

            async def buy(traveller: Traveller) -> None:
                reference = await traveller.order_itinerary(USDC_TRIP)
                await traveller.pay_with_usdc()
                address = await traveller.deposit_address(reference)
                intents[traveller.chat_id] = sandbox.intent_for_address(address)

            async with trio.open_nursery() as nursery:
                for traveller in travellers:
                    nursery.start_soon(buy, traveller)
            gets = sandbox.circle.gets
            before = {i: gets[i] for i in intents.values()}
            await wait_for(lambda: all(gets[i] > before[i] for i in intents.values()), 5)

            code, took = await sandbox.stop_bot()
            assert (code, took < 1.0) == (0, True), (code, took)
            stopped = dict(gets)
            await sandbox.start_bot()
            assert 'msg="pollers resumed" count=4' in sandbox.bot.log
            await wait_for(lambda: all(gets[i] > stopped[i] + 1 for i in intents.values()), 5)

            paid = travellers[0]
            sandbox.circle.set_script(
                intents[paid.chat_id],
                (Step("complete", "paid", Decimal(1), after_checks=0),),
            )
            (document,) = [await paid.document(paid.summary_reference())]
            resumed = dict(gets)
            await wait_for(
                lambda: all(
                    gets[intents[t.chat_id]] > resumed[intents[t.chat_id]] + 1
                    for t in travellers[1:]
                ),
                5,
            )  # the unpaid ones keep polling
            code, took = await sandbox.stop_bot()
    assert (code, took < 1.0) == (0, True), (code, took)
    assert [len(sandbox.api.sent_documents(t.chat_id)) for t in travellers] == [1, 0, 0, 0]
    assert document.file_name == f"itinerary-{paid.summary_reference()}.pdf"
    assert sandbox.api.violations == []


# ---------------------------------------------------------------- crashes


PAYMENT_POINTS = [
    "card: pay pressed",
    "card: paid at Stripe",
    "card: webhook answered",
    "card: PDF delivered",
    "usdc: pay pressed",
    "usdc: address shown",
    "usdc: paid at Circle",
]


class CrashingPurchase:
    """A card purchase then a USDC purchase, with SIGKILL + restart at chosen points.

    At a point where the traveller has just sent an update, the kill comes either while the
    update is still queued at Telegram ("queued") or just after the bot fetched it
    ("fetched", then 0-10 ms), i.e. while it is being handled. Elsewhere it comes at once.
    """

    def __init__(self, sandbox: Sandbox, traveller: Traveller, rng: random.Random) -> None:
        self.sandbox = sandbox
        self.traveller = traveller
        self.rng = rng
        self.plan: dict[str, str] = {}
        self.crashes: list[str] = []

    def choose(self, *, payment: int, dialogue: int) -> None:
        """Pick (seeded) where to crash: `payment` points of the payments, `dialogue` of the
        dialogue walks, each with the moment of the kill."""
        walks = [
            f"{prefix}: answer {i} ({action})"
            for prefix, trip in (("card", CARD_TRIP), ("usdc", USDC_TRIP))
            for i, (action, _, _) in enumerate(trip.answers())
        ]
        for point in self.rng.sample(PAYMENT_POINTS, payment) + self.rng.sample(walks, dialogue):
            self.plan[point] = self.rng.choice(["queued", "fetched"])

    async def point(self, name: str, update_id: int | None = None) -> None:
        mode = self.plan.get(name)
        if mode is None:
            return
        if update_id is None:
            mode = "at once"
        elif mode == "fetched":
            await wait_for(lambda: self._fetched(update_id), 10, interval=0.001)
            await trio.sleep(self.rng.choice([0, 0.003, 0.01]))
        assert await self.sandbox.kill_bot() == -9
        self.crashes.append(f"{name} ({mode})")
        await self.sandbox.start_bot()

    def _fetched(self, update_id: int) -> bool:
        return any(
            call.method == "getUpdates"
            and isinstance(call.result, list)
            and any(u["update_id"] == update_id for u in call.result)
            for call in self.sandbox.api.calls
        )

    async def act(self, name: str, action: str, phrase: str, replies: int = 1) -> str:
        mark, update_id = self.traveller.act(action, replies)
        await self.point(name, update_id)
        return await self.traveller.answer(mark, phrase)

    async def walk(self, prefix: str) -> str:
        trip = CARD_TRIP if prefix == "card" else USDC_TRIP
        for i, (action, phrase, replies) in enumerate(trip.answers()):
            await self.act(f"{prefix}: answer {i} ({action})", action, phrase, replies)
        return self.traveller.summary_reference()

    async def run(self) -> tuple[str, str]:
        sandbox, traveller = self.sandbox, self.traveller
        card = await self.walk("card")
        await self.act("card: pay pressed", f"press:{PAY_CARD}", CHECKOUT_PHRASE, replies=2)
        url = traveller.checkout_url()
        (session,) = [s["id"] for s in sandbox.stripe.sessions.values() if s["url"] == url]
        event = sandbox.stripe.complete(session)
        await self.point("card: paid at Stripe")
        assert await sandbox.deliver_stripe(event) == [200]
        await self.point("card: webhook answered")
        await traveller.document(card)
        await trio.sleep(0.2)  # the sender records the send
        await self.point("card: PDF delivered")

        sandbox.circle.script_next(confirmed_by_hand())
        usdc = await self.walk("usdc")
        await self.act("usdc: pay pressed", f"press:{PAY_USDC}", USDC_PHRASE, replies=2)
        intent = sandbox.intent_for_address(await traveller.deposit_address(usdc))
        await self.point("usdc: address shown")
        sandbox.circle.advance(intent)  # paid at Circle; no webhook: the poller must see it
        await self.point("usdc: paid at Circle")
        await traveller.document(usdc)
        return card, usdc


def dialogue_rows(store: Path, chat_id: int) -> tuple[int, int]:
    """(texts, button answers) the bot queued as answers to updates in `chat_id`.

    Answers to updates carry no order id (payment news does), so a re-handled update would
    add rows here even if Telegram never saw them.
    """
    conn = sqlite3.connect(store)
    query = "SELECT kind, COUNT(*) FROM outbox WHERE chat_id = ? AND order_id IS NULL GROUP BY kind"
    kinds = dict(conn.execute(query, (chat_id,)).fetchall())
    conn.close()
    return kinds.get("text", 0), kinds.get("answer_callback", 0)


@pytest.mark.parametrize("seed", [2, 7])  # together: 6 of the 7 payment points
async def test_sigkill_at_seeded_points_then_restart(tmp_path: Path, seed: int) -> None:
    with trio.fail_after(45):
        async with sandbox_with_bot(tmp_path, circle={"poll_interval": POLL}) as sandbox:
            traveller = Traveller(sandbox.api, 500 + seed)
            purchase = CrashingPurchase(sandbox, traveller, random.Random(seed))
            purchase.choose(payment=3, dialogue=1)
            card, usdc = await purchase.run()
            await trio.sleep(0.5)  # anything sent twice would have arrived by now
            code, _ = await sandbox.stop_bot()
    assert code == 0
    assert len(purchase.crashes) == 4
    # every paid order has exactly one PDF
    assert len(traveller.documents(card)) == 1
    assert len(traveller.documents(usdc)) == 1
    assert len(sandbox.api.sent_documents()) == 2
    # No update handled twice: what the bot queued in answer to updates, per kind...
    texts, presses = dialogue_rows(tmp_path / "itinerabot.sqlite3", traveller.chat_id)
    log = sandbox.api.chat_log(traveller.chat_id)
    assert texts == sum(replies for _, replies in traveller.expected)
    assert presses == sum(log[mark].what.startswith("[pressed") for mark, _ in traveller.expected)
    # ...and what the chat shows after each message. A crash between Telegram's answer and
    # the sender recording it makes the restarted bot send that message again (delivery is
    # at least once: Telegram has no idempotency key); such a copy is counted, not failed.
    # A copy can also land after the traveller's next message (the bot was killed after
    # Telegram took the message and before the sender recorded it): a text of the previous
    # answer found again in this one is such a copy.
    resent, previous = 0, set[str]()
    for message, expected, answer in traveller.replies():
        fresh = [text for text in answer if text not in previous]
        assert len(set(fresh)) == expected, (message, answer)
        resent += len(answer) - len(set(fresh))
        previous = set(fresh)
    print(f"seed {seed}: crashes at {purchase.crashes}; messages sent again: {resent}")
    assert sandbox.api.violations == []
    assert re.findall(r"msg=\"payment confirmed\" order=(\S+)", sandbox.log) == [card, usdc]
