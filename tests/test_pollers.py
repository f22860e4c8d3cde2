"""USDC through Circle: the intent, the 30-second poller in its 1-hour window, the webhook.

All on trio's mock clock: `autojump_clock` makes an hour of polling take a moment, and the
times asserted are the trio times at which the fake Circle received each request.
"""

from __future__ import annotations

import io
import itertools
import json
from datetime import timedelta
from pathlib import Path

import trio
import trio.testing
from pypdf import PdfReader

from itinerabot.adapters.circle.budget import Lane
from itinerabot.models import OrderStatus
from itinerabot.payments.usdc.pollers import PollerNursery
from sandbox.circle import (
    expired_script,
    never_paid_script,
    paid_script,
    underpaid_then_paid_script,
)
from sandbox.sns_signer import circle_topic_arn, encode
from tests.circle_spec import validate
from tests.harness import (
    CHAT,
    START,
    USDC_REF,
    Bot,
    Fakes,
    card_payment,
    dump,
    eventually,
    make_settings,
    pay_usdc,
    running_bot,
    status_of,
    store_order,
)


async def test_checks_every_30_seconds_and_stops_at_one_hour(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    fakes = Fakes.make()
    fakes.circle.script_next(never_paid_script())
    async with running_bot(tmp_path, fakes) as bot:
        await trio.sleep(7)  # start off the 30 s grid of anything else
        order_id, intent = await pay_usdc(bot)
        started = trio.current_time()
        await trio.sleep(3600 - 0.001)
        assert bot.rt.pollers.is_running(order_id)
        await trio.sleep(0.002)
        assert not bot.rt.pollers.is_running(order_id)
        await eventually(lambda: any("in time" in t for t in bot.api.sent_texts(CHAT)))
    gets = [round(t - started, 3) for t in fakes.circle_gets(intent)]
    # a check at t = 0, 30, …, 3570: 3600 / 30 = 120 checks; the one due at t = 3600 falls on
    # the window's end, where the scope is cancelled first, so it never happens
    assert gets == [30.0 * k for k in range(120)]
    assert status_of(bot.settings.store.path, order_id) == OrderStatus.AWAITING_PAYMENT
    assert bot.api.sent_documents(CHAT) == []


async def test_pending_then_complete_fulfils_once_after_the_poller_ended(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    fakes = Fakes.make()
    fakes.circle.script_next(paid_script(pending_after=1, paid_after=4))
    async with running_bot(tmp_path, fakes) as bot:
        calls: list[tuple[int, bool]] = []
        # told once the payment is committed (before the USDC side hears of it): by then
        # the poller must be gone
        bot.rt.fulfilment.paid_listeners.insert(
            0, lambda order_id: calls.append((order_id, bot.rt.pollers.is_running(order_id)))
        )
        order_id, intent = await pay_usdc(bot)
        await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1)
        await trio.sleep(300)
        texts = bot.api.sent_texts(CHAT)
    assert calls == [(order_id, False)]  # once, for this order, with the poller gone
    gets = fakes.circle_gets(intent)
    assert len(gets) == 4  # created, pending (address), pending, complete: then no more
    assert [round(b - a, 3) for a, b in itertools.pairwise(gets)] == [30, 30, 30]
    assert sum("send exactly" in t for t in texts) == 1  # the address, told once
    (payment,) = fakes.circle.payments.values()
    pdf = PdfReader(io.BytesIO(bot.api.sent_documents(CHAT)[0].data))
    receipt = "".join("".join(p.extract_text().split()) for p in pdf.pages)
    assert payment["transactionHash"] in receipt and intent in receipt
    assert any(c.method == "sendPhoto" for c in bot.api.calls)  # its QR code
    assert status_of(bot.settings.store.path, order_id) == OrderStatus.DELIVERED


async def test_double_tap_creates_one_intent_and_one_poller(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    fakes = Fakes.make()
    fakes.circle.script_next(never_paid_script())
    async with running_bot(tmp_path, fakes) as bot:
        store_order(bot.settings.store.path, reference=USDC_REF)
        usdc = bot.rt.payments.usdc
        assert usdc is not None
        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(usdc.pay_with_usdc, CHAT, USDC_REF)
        await trio.sleep(1)
        running = bot.rt.pollers.running
    creates = [entry for entry in fakes.circle_log if entry[1] == "POST"]
    assert len(creates) == 1
    assert len(fakes.circle.intent_ids()) == 1
    assert running == 1


async def test_underpaid_is_told_once_then_paid_sends_one_pdf(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    fakes = Fakes.make()
    fakes.circle.script_next(
        underpaid_then_paid_script(pending_after=1, underpaid_after=2, paid_after=6)
    )
    async with running_bot(tmp_path, fakes) as bot:
        await pay_usdc(bot)
        await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1, timeout=600)
        await trio.sleep(120)
        texts = bot.api.sent_texts(CHAT)
    missing = [t for t in texts if "still missing" in t]
    assert len(missing) == 1  # checks 2..5 all show the same underpayment: one message
    assert "5.00 USDC is still missing" in missing[0]
    assert len(bot.api.sent_documents(CHAT)) == 1


async def test_expired_intent_tells_the_user_with_a_way_to_pay_again(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    fakes = Fakes.make()
    fakes.circle.script_next(expired_script(pending_after=1, expired_after=3))
    async with running_bot(tmp_path, fakes) as bot:
        _, intent = await pay_usdc(bot)
        await eventually(lambda: any("expired" in t for t in bot.api.sent_texts(CHAT)))
        keyboard = bot.api.last_keyboard(CHAT)
        await trio.sleep(300)
    assert len(fakes.circle_gets(intent)) == 3
    assert keyboard is not None
    assert keyboard.data_for("Pay with USDC again") == f"pay:usdc:{USDC_REF}"


async def test_bad_answers_do_not_break_the_schedule(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    fakes = Fakes.make()
    fakes.circle.script_next(paid_script(pending_after=1, paid_after=3))
    async with running_bot(tmp_path, fakes) as bot:
        _, intent = await pay_usdc(bot)
        for kind in ("rate_limit", "server_error", "slow", "garbage"):
            fakes.circle.fail_next(kind)
        await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1, timeout=600)
    gets = fakes.circle_gets(intent)
    # four failed checks (429 with Retry-After 1 s, 500, a 10 s timeout, an HTML body), each
    # followed by the next tick as usual, then the three good checks the script needs
    assert len(gets) == 7
    assert [round(b - a, 3) for a, b in itertools.pairwise(gets)] == [30.0] * 6


async def test_webhook_mid_poll_stops_the_poller_and_fulfils_once(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    fakes = Fakes.make()
    fakes.circle.script_next(never_paid_script())
    async with running_bot(tmp_path, fakes) as bot:
        order_id, intent = await pay_usdc(bot)
        await trio.sleep(95)
        # the payment lands; Circle's webhook reports it before the next check
        fakes.circle.set_script(intent, paid_script(pending_after=0, paid_after=0))
        fakes.circle.advance(intent)
        fakes.circle.advance(intent)
        gets_before = len(fakes.circle_gets(intent))
        body = encode(bot.sns.notification(fakes.circle.notification_message(intent)))
        async with bot.web() as web:
            answers = [
                (await web.post("/webhooks/circle", content=body)).status_code for _ in range(3)
            ]
        assert not bot.rt.pollers.is_running(order_id)
        await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1)
        await trio.sleep(600)
    assert answers == [200, 200, 200]
    assert len(fakes.circle_gets(intent)) == gets_before  # no further GETs of this intent
    assert len(bot.api.sent_documents(CHAT)) == 1
    assert status_of(bot.settings.store.path, order_id) == OrderStatus.DELIVERED


async def test_shutdown_mid_poll_then_restart_resumes_with_the_time_left(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    fakes = Fakes.make()
    for _ in range(3):
        fakes.circle.script_next(never_paid_script())
    async with running_bot(tmp_path, fakes) as bot:
        intents = [(await pay_usdc(bot, f"IB-RESUM{i}", chat=CHAT + i))[1] for i in range(3)]
        created = trio.current_time()
        await trio.sleep(1000)
        assert bot.rt.pollers.running == 3
        bot.rt.shutdown()
        with trio.fail_after(1):
            await bot.stopped.wait()
        assert bot.rt.pollers.running == 0
    down_at = trio.current_time()
    await trio.sleep(500)  # the bot is down for 500 s
    async with running_bot(tmp_path, fakes) as bot:
        assert bot.rt.pollers.running == 3
        restarted = trio.current_time()
        fakes.circle.set_script(intents[0], paid_script(pending_after=0, paid_after=0))
        await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1)
        await trio.sleep(created + 3600 - trio.current_time() - 0.001)
        assert bot.rt.pollers.running == 2  # the other two still poll, to the original end
        await trio.sleep(0.002)
        assert bot.rt.pollers.running == 0
    # resumed first checks are spread over one interval (3 pollers: 0, 10, 20 s after the
    # restart), then every 30 s on each one's grid, and none after the original window
    firsts = []
    for intent in intents:
        gets = fakes.circle_gets(intent)
        after = [round(t - restarted, 3) for t in gets if t >= restarted]
        firsts.append(after[0])
        assert not [t for t in gets if down_at < t < restarted]
        assert max(gets) < created + 3600
        assert all(round(b - a, 3) == 30 for a, b in itertools.pairwise(after))
    assert sorted(firsts) == [0, 10, 20]
    assert len(fakes.api.sent_documents()) == 1


async def test_deadline_passed_while_down_is_checked_at_once_on_restart(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    fakes = Fakes.make()
    fakes.circle.script_next(never_paid_script())
    async with running_bot(tmp_path, fakes) as bot:
        order_id, intent = await pay_usdc(bot)
        await trio.sleep(100)
    await trio.sleep(7200)  # down past the window; the payment completes meanwhile
    fakes.circle.set_script(intent, paid_script(pending_after=0, paid_after=0))
    before = len(fakes.circle_gets(intent))
    async with running_bot(tmp_path, fakes) as bot:
        await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1)
        await trio.sleep(300)
    assert len(fakes.circle_gets(intent)) == before + 1
    assert status_of(bot.settings.store.path, order_id) == OrderStatus.DELIVERED


async def test_the_create_request_has_the_shape_circle_expects(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    captured: list[bytes] = []
    fakes = Fakes.make()
    inner = fakes.circle

    async def capture(scope: object, receive: object, send: object) -> None:
        async def rx() -> dict[str, object]:
            message = await receive()  # type: ignore[operator]
            captured.append(message.get("body", b""))
            return message  # type: ignore[no-any-return]

        await inner(scope, rx, send)  # type: ignore[arg-type]

    fakes.circle = capture  # type: ignore[assignment]
    async with running_bot(tmp_path, fakes) as bot:
        await pay_usdc(bot)
    body = json.loads(next(b for b in captured if b.startswith(b"{")))
    validate("PaymentIntentCreationRequest", body)
    assert body["amount"] == {"amount": "10.00", "currency": "USD"}
    assert body["settlementCurrency"] == "USD"
    assert body["paymentMethods"] == [{"type": "blockchain", "chain": "ETH"}]


# ---------------------------------------------------------------- the SNS webhook


async def test_sns_refusals_change_nothing(tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    fakes = Fakes.make()
    fakes.circle.script_next(paid_script(pending_after=100, paid_after=100))
    async with running_bot(tmp_path, fakes) as bot:
        order_id, intent = await pay_usdc(bot)
        bot.rt.pollers.cancel(order_id)  # only the webhook could tell of this payment now
        fakes.circle.set_script(intent, paid_script(pending_after=0, paid_after=0))
        fakes.circle.advance(intent)
        fakes.circle.advance(intent)
        message = fakes.circle.notification_message(intent)
        genuine = bot.sns.notification(message)
        tampered = dict(genuine, Message=message.replace('"paid"', '"paid" '))
        wrong_topic = bot.sns.notification(message, topic_arn=circle_topic_arn("prod"))
        off_amazon = dict(bot.sns.sign(dict(genuine)))
        off_amazon["SigningCertURL"] = "https://sns.us-east-1.example.com/cert.pem"
        cases = {
            "changed byte": encode(tampered),
            "wrong topic": encode(wrong_topic),
            "cert off amazon": encode(off_amazon),
            "unsigned": encode({k: v for k, v in genuine.items() if k != "Signature"}),
            "not json": b"{nope",
        }
        before = dump(bot.settings.store.path)
        async with bot.web() as web:
            answers = {
                k: (await web.post("/webhooks/circle", content=v)).status_code
                for k, v in cases.items()
            }
            head = await web.head("/webhooks/circle")
        after = dump(bot.settings.store.path)
        await trio.sleep(60)
    assert answers == dict.fromkeys(cases, 400)
    assert head.status_code == 200
    assert after == before
    assert bot.api.sent_documents(CHAT) == []
    assert status_of(bot.settings.store.path, order_id) == OrderStatus.AWAITING_PAYMENT
    assert all("example.com" not in url for url in fakes.amazon_requests)


def what_the_webhook_writes(bot: Bot) -> list[tuple[object, ...]]:
    """The store's rows minus the outbox's send status (the sender updates that meanwhile)."""
    rows = dump(bot.settings.store.path)
    outbox = sum(row[0] == "outbox" for row in rows)
    return [row for row in rows if row[0] != "outbox"] + [("outbox rows", outbox)]


async def test_replayed_message_id_is_ignored(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    fakes = Fakes.make()
    fakes.circle.script_next(
        underpaid_then_paid_script(pending_after=0, underpaid_after=0, paid_after=99)
    )
    async with running_bot(tmp_path, fakes) as bot:
        order_id, intent = await pay_usdc(bot)
        bot.rt.pollers.cancel(order_id)  # only the webhook writes from here on
        fakes.circle.advance(intent)
        fakes.circle.advance(intent)
        body = encode(
            bot.sns.notification(
                fakes.circle.notification_message(intent),
                message_id="11111111-2222-3333-4444-555555555555",
            )
        )
        async with bot.web() as web:
            first = await web.post("/webhooks/circle", content=body)
            rows_after_first = what_the_webhook_writes(bot)
            again = await web.post("/webhooks/circle", content=body)
        assert what_the_webhook_writes(bot) == rows_after_first
    assert first.status_code == again.status_code == 200
    assert again.text == "already processed"


async def test_subscription_confirmation_fetches_subscribe_url_only_when_genuine(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with running_bot(tmp_path) as bot:
        genuine = bot.sns.subscription_confirmation()
        forged = dict(genuine, Token="0" * 64)
        async with bot.web() as web:
            bad = await web.post("/webhooks/circle", content=encode(forged))
            good = await web.post("/webhooks/circle", content=encode(genuine))
    confirms = [u for u in bot.fakes.amazon_requests if "ConfirmSubscription" in u]
    assert bad.status_code == 400 and good.status_code == 200
    assert confirms == [genuine["SubscribeURL"]]


async def test_notification_for_an_unknown_intent_is_accepted_and_ignored(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    fakes = Fakes.make()
    async with running_bot(tmp_path, fakes) as bot:
        async with bot.web() as web:
            await web.post("/v1/none")  # nothing at that path
        # an intent Circle knows but this bot never made
        intent = await _foreign_intent(fakes)
        body = encode(bot.sns.notification(fakes.circle.notification_message(intent)))
        async with bot.web() as web:
            r = await web.post("/webhooks/circle", content=body)
    assert r.status_code == 200
    assert bot.api.sent_documents() == []


async def _foreign_intent(fakes: Fakes) -> str:
    import httpx

    from sandbox.serve import InProcessTransport
    from tests.harness import CIRCLE_KEY

    async with httpx.AsyncClient(
        transport=InProcessTransport(fakes.circle), base_url="http://circle.test"
    ) as client:
        r = await client.post(
            "/v1/paymentIntents",
            headers={"Authorization": f"Bearer {CIRCLE_KEY}"},
            json={
                "idempotencyKey": "5c4b7f0e-0d2a-4b7e-9d6e-1f2a3b4c5d6e",
                "amount": {"amount": "3.00", "currency": "USD"},
                "settlementCurrency": "USD",
                "paymentMethods": [{"type": "blockchain", "chain": "ETH"}],
            },
        )
    return str(r.json()["data"]["id"])


async def test_card_payment_stops_the_usdc_poller_of_the_same_order(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:

    fakes = Fakes.make()
    fakes.circle.script_next(never_paid_script())
    async with running_bot(tmp_path, fakes) as bot:
        order_id, intent = await pay_usdc(bot)
        await trio.sleep(45)
        await bot.rt.fulfilment.handle_successful_payment(order_id, card_payment(), source="t")
        assert not bot.rt.pollers.is_running(order_id)
        checks = len(fakes.circle_gets(intent))
        await trio.sleep(600)
    assert len(fakes.circle_gets(intent)) == checks == 2
    assert len(bot.api.sent_documents(CHAT)) == 1


async def test_a_genuine_notification_older_than_its_id_is_remembered_is_refused(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Review (SNS replay): a captured genuine "paid" notification, replayed after its
    MessageId was pruned (store.webhook_ids_retention_days), would be taken again."""
    fakes = Fakes.make()
    fakes.circle.script_next(paid_script(pending_after=0, paid_after=99))
    async with running_bot(tmp_path, fakes) as bot:
        order_id, intent = await pay_usdc(bot)
        bot.rt.pollers.cancel(order_id)  # only the webhook could pay it now
        fakes.circle.advance(intent)
        sent_at = START - timedelta(days=bot.settings.store.webhook_ids_retention_days)
        body = encode(
            bot.sns.notification(fakes.circle.notification_message(intent), timestamp=sent_at)
        )
        before = what_the_webhook_writes(bot)
        async with bot.web() as web:
            answer = await web.post("/webhooks/circle", content=body)
        await trio.sleep(5)
        after = what_the_webhook_writes(bot)
    assert answer.status_code == 400
    assert after == before
    assert bot.api.sent_documents(CHAT) == []


async def test_a_poller_of_another_intent_of_the_order_is_replaced() -> None:
    """USDC review 3: a poller started for an order whose running poller watches another
    intent replaces it (it used to be refused silently, leaving the new intent unwatched);
    one started for the same intent is not started twice."""
    pollers = PollerNursery()
    seen: list[str] = []

    async def poll(intent_id: str) -> None:
        seen.append(intent_id)
        try:
            await trio.sleep_forever()
        finally:
            seen.append(f"{intent_id} ended")

    async with trio.open_nursery() as nursery:
        await nursery.start(pollers.run)
        assert pollers.start(1, poll, "old", watches="old")
        assert not pollers.start(1, poll, "old", watches="old")
        await trio.testing.wait_all_tasks_blocked()
        assert pollers.start(1, poll, "new", watches="new")
        await trio.testing.wait_all_tasks_blocked()
        assert sorted(seen) == ["new", "old", "old ended"]  # the old one was cancelled
        assert pollers.watches(1, "new") and not pollers.watches(1, "old")
        assert pollers.running == 1
        nursery.cancel_scope.cancel()


# --- the request budget: travellers first, intervals stretched evenly -----------------------------


async def test_after_a_429_a_new_travellers_create_and_checks_go_before_the_queued_routine(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    # 40 intents on their 30 s grid at 2 requests/s; a 429 asks for 60 s, so every poller's
    # check queues up. A traveller taps meanwhile: its create starts first when the pause
    # ends, its first checks next (every 1.25 s until the address shows), then the queue.
    settings = make_settings(
        tmp_path, circle={"requests_per_second": 2, "address_check_interval": 1.25}
    )
    fakes = Fakes.make()
    for _ in range(40):
        fakes.circle.script_next(never_paid_script())
    fakes.circle.script_next(never_paid_script(pending_after=2))  # the traveller's
    async with running_bot(tmp_path, fakes, settings=settings) as bot:
        routine = [
            (await pay_usdc(bot, f"IB-ROUT{i:02d}", chat=CHAT + 1 + i))[1] for i in range(40)
        ]
        await trio.sleep(45)  # every address is shown: all checks are routine now
        fakes.circle.retry_after = 60
        fakes.circle.fail_next("rate_limit")
        mark = len(fakes.circle_log)
        budget = bot.rt.payments.usdc._client.budget if bot.rt.payments.usdc else None
        assert budget is not None
        await eventually(lambda: budget.waiting(Lane.ROUTINE) == 40, max_step=0.1)
        refused_at = fakes.circle_log[mark][0]
        resumes = refused_at + 60
        await trio.sleep_until(resumes - 10)  # within the 20 s a tap waits for its create
        tapped = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pay_usdc, bot, USDC_REF, CHAT)
        intent = fakes.circle.intent_ids()[-1]
        await eventually(lambda: any("send exactly" in t for t in bot.api.sent_texts(CHAT)))
        shown = next(
            c.at for c in bot.api.calls_to("sendMessage") if "send exactly" in str(c.params)
        )
        await trio.sleep(60)
    assert tapped < resumes
    creates = [t for t, method, path in fakes.circle_log[mark:] if method == "POST"]
    assert creates == [resumes]  # the first start after the pause
    # its checks: at once (no address yet), then 1.25 s after its creation, on the budget's
    # next start (its 0.5 s grid): the address shows; then routine checks on its 30 s grid
    assert [round(t - resumes, 3) for t in fakes.circle_gets(intent)][:2] == [0.5, 1.5]
    assert shown - resumes <= 2.0  # the traveller sees the address 1.5 s after the pause
    # the 40 queued routine checks follow, in the order they queued, none starved
    after = sorted(t for i in routine for t in fakes.circle_gets(i) if t > resumes)
    assert round(after[0] - resumes, 3) == 1.0 and round(after[39] - resumes, 3) <= 21.0


async def test_over_budget_every_intent_is_checked_at_the_same_stretched_interval(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    # 90 intents at 2 requests/s: 3 checks/s on the 30 s grid is more than the routine 90 %
    # of the budget (1.8/s) can do, so every intent is checked every 90 / 1.8 = 50 s. After a
    # restart the first checks are spread over those 50 s, so nobody queues.
    settings = make_settings(tmp_path, circle={"requests_per_second": 2})
    fakes = Fakes.make()
    for _ in range(90):
        fakes.circle.script_next(never_paid_script())
    async with running_bot(tmp_path, fakes, settings=settings) as bot:
        intents = [(await pay_usdc(bot, f"IB-OVER{i:02d}", chat=CHAT + i))[1] for i in range(90)]
        await trio.sleep(100)
        usdc = bot.rt.payments.usdc
        assert usdc is not None and usdc.check_interval == 50.0
    await trio.sleep(1)  # down for a second
    async with running_bot(tmp_path, fakes, settings=settings) as bot:
        restarted = trio.current_time()
        await trio.sleep(400)
        usdc = bot.rt.payments.usdc
        assert usdc is not None and usdc.check_interval == 50.0
        async with bot.web() as web:
            health = (await web.get("/healthz")).json()
    assert health["usdc_check_interval"] == 50.0
    firsts = []
    for intent in intents:
        gets = [round(t - restarted, 3) for t in fakes.circle_gets(intent) if t >= restarted]
        gets = [t for t in gets if t < 400]
        firsts.append(gets[0])
        assert [round(b - a, 3) for a, b in itertools.pairwise(gets)] == [50.0] * (len(gets) - 1)
        assert len(gets) == 8  # 400 s / 50 s: no intent checked less often than the others
    assert sorted(firsts) == [round(i * 50 / 90, 3) for i in range(90)]
