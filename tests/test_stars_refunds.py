"""`itinerabot orders refund` for Telegram Stars, as an operator meets it: a traveller pays
in Stars through the running bot and the fake Bot API, and the command (in a worker thread,
its own trio run, as in its own process) refunds the charge with `refundStarPayment` on the
same store and the same fake, reached over loopback.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import trio
import yaml

from itinerabot.models import OrderStatus
from itinerabot.operator.attention import STUCK_AFTER, Attention, needs_attention
from itinerabot.store.db import connect
from sandbox.serve import ASGIApp, Receive, Scope, Send, drop_connection
from sandbox.telegram import DEFAULT_TOKEN, FakeBotApi
from tests.harness import (
    CHAT,
    ONE_WAY,
    Bot,
    Traveller,
    button,
    deliver,
    eventually,
    make_settings,
    on_loopback,
    orders,
    query,
    running_bot,
    status_of,
)

PRICE = 250
REFUND = "refundStarPayment"
TOLD = "We refunded 250 ⭐ for order {ref}: the Stars are back in your Telegram account."


def operator_config(tmp_path: Path, telegram_base: str) -> Path:
    """The operator's config: the bot's token and store, Telegram at `telegram_base`. Stars
    need nothing else to be refunded."""
    raw = {
        "telegram": {"token": DEFAULT_TOKEN, "api_base": telegram_base},
        "store": {"path": str(tmp_path / "bot.sqlite3")},
        "stars": {"price": PRICE},
    }
    path = tmp_path / "operator.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@asynccontextmanager
async def telegram_for_the_operator(tmp_path: Path, app: ASGIApp) -> AsyncIterator[Path]:
    """The fake Bot API (or `app` in front of it) on loopback for the operator's command;
    yields the command's config file."""
    async with on_loopback(app) as url:
        yield operator_config(tmp_path, url)


def the_reference(bot: Bot) -> str:
    ((reference,),) = query(bot.settings.store.path, "SELECT reference FROM orders")
    return str(reference)


async def summary(bot: Bot) -> Traveller:
    """A traveller who typed a one-way trip and sees its summary with the pay buttons."""
    t = Traveller(bot)
    await t.walk(ONE_WAY)
    return t


async def pays_in_stars(bot: Bot) -> tuple[str, str]:
    """The traveller pays the order in Stars as Telegram runs it (invoice, pre-checkout,
    successful_payment) and gets the PDF; the order's reference and the charge id."""
    t = await summary(bot)
    await t.presses(f"Pay {PRICE}")
    invoice = bot.api.last_invoice(CHAT)
    assert invoice is not None
    charge = await bot.api.pay_invoice(CHAT, invoice[0])
    assert charge is not None
    await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1)
    return the_reference(bot), charge


async def pays_by_card_then_in_stars(bot: Bot) -> tuple[str, str]:
    """The traveller opens a Stars invoice and a card page, pays by card (the PDF arrives),
    then Telegram reports the Stars payment too (its pre-checkout had passed while the
    order awaited payment): owed back as a second payment. The reference and the charge."""
    t = await summary(bot)
    summary_id = t.last_keyboard_id()
    await t.presses(f"Pay {PRICE}", summary_id)
    invoice = bot.api.last_invoice(CHAT)
    assert invoice is not None
    card = bot.rt.payments.card
    assert card is not None
    reference = the_reference(bot)
    url = button((await card.pay_by_card(CHAT, reference))[0]).url
    (session,) = [s["id"] for s in bot.stripe.sessions.values() if s["url"] == url]
    assert await deliver(bot, bot.stripe.complete(session)) == [200]
    await eventually(lambda: len(bot.api.sent_documents(CHAT)) == 1)
    update = bot.api.successful_payment(CHAT, payload=invoice[1]["payload"], amount=PRICE)
    charge = str(update["message"]["successful_payment"]["telegram_payment_charge_id"])
    await eventually(lambda: bool(extra_payments(bot)))
    return reference, charge


def refunds(bot: Bot) -> list[tuple[object, ...]]:
    """(extra payment, method, provider_ref, amount, currency, status, error) of each refund."""
    return query(
        bot.settings.store.path,
        "SELECT extra_payment_id, method, provider_ref, amount, currency, status, error"
        " FROM refunds ORDER BY id",
    )


def extra_payments(bot: Bot) -> list[tuple[object, ...]]:
    return query(
        bot.settings.store.path,
        "SELECT id, method, kind, amount, currency, provider_ref FROM extra_payments",
    )


def refund_calls(bot: Bot) -> list[tuple[int, dict[str, object]]]:
    """(status, params) of every refundStarPayment that reached the fake Bot API."""
    return [(c.status, dict(c.params)) for c in bot.api.calls_to(REFUND)]


def listed_later(bot: Bot, later: timedelta) -> list[Attention]:
    """What `orders` lists `later` after the last refund's last update (the command's
    clock is the real one, so the wait is not on trio's)."""
    conn = connect(bot.settings.store.path)
    try:
        (updated,) = conn.execute("SELECT MAX(updated_at) FROM refunds").fetchone()
        return needs_attention(conn, datetime.fromisoformat(updated) + later)
    finally:
        conn.close()


def told(bot: Bot) -> list[str]:
    return [text for text in bot.api.sent_texts(CHAT) if "Stars are back" in text]


# ------------------------------------------------------------------ the order's own payment


async def test_a_stars_payment_is_refunded_once_and_the_traveller_told(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], autojump_clock: trio.abc.Clock
) -> None:
    settings = make_settings(tmp_path, stars={"price": PRICE})
    async with running_bot(tmp_path, settings=settings) as bot:
        ref, charge = await pays_in_stars(bot)
        async with telegram_for_the_operator(tmp_path, bot.api) as config:
            unchosen = await orders(capsys, config, "refund", ref, "--yes")
            code, out, err = await orders(capsys, config, "refund", ref, "--payment", "--yes")
            again = await orders(capsys, config, "refund", ref, "--payment", "--yes")
        await eventually(lambda: bool(told(bot)))
        await trio.sleep(120)  # the sender's next rescans find nothing more to tell
        shown = await orders(capsys, config, "show", ref)
        listed = await orders(capsys, config)
    assert unchosen == (
        1,
        "",
        f"order {ref} has no extra payment owed back; to refund the payment of the order"
        " itself, add --payment\n",
    )
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"refund 250 XTR of the payment of {ref} (250 XTR by stars, {charge}) through Telegram",
        "refund #1 of 250 XTR: succeeded",
        "the running bot tells the traveller within 60 seconds",
    ]
    assert refund_calls(bot) == [
        (200, {"user_id": CHAT, "telegram_payment_charge_id": charge}),
    ]
    assert bot.api.star_charges[charge]["refunded"] is True
    assert refunds(bot) == [(None, "stars", charge, "250", "XTR", "succeeded", None)]
    assert told(bot) == [TOLD.format(ref=ref)]
    # the repeat is refused before anything is stored or asked
    assert again == (1, "", f"the payment of {ref} (250 XTR) is refunded already\n")
    assert len(refund_calls(bot)) == 1 and len(refunds(bot)) == 1
    assert shown[0] == 0
    lines = shown[1].splitlines()
    payment = lines.index("Payment")
    assert lines[payment + 1].startswith("  stars 250 XTR at ")
    assert lines[payment + 1].endswith(f": Telegram charge {charge}")
    (refund_line,) = [line for line in lines if line.startswith("  #1 250 XTR")]
    assert refund_line.startswith(f"  #1 250 XTR of the payment by stars ({charge}): succeeded,")
    assert listed == (0, "nothing needs attention\n", "")
    assert status_of(bot.settings.store.path, 1) == OrderStatus.DELIVERED
    assert bot.api.violations == []


async def test_only_a_whole_stars_payment_can_be_refunded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], autojump_clock: trio.abc.Clock
) -> None:
    settings = make_settings(tmp_path, stars={"price": PRICE})
    async with running_bot(tmp_path, settings=settings) as bot:
        ref, charge = await pays_in_stars(bot)
        async with telegram_for_the_operator(tmp_path, bot.api) as config:
            part = await orders(capsys, config, "refund", ref, "--payment", "--amount", "100")
            more = await orders(capsys, config, "refund", ref, "--payment", "--amount", "251")
            address = await orders(
                capsys, config, "refund", ref, "--payment", "--address", "0xab", "--chain", "ETH"
            )
            nothing_asked = (refund_calls(bot), refunds(bot))
            whole = await orders(
                capsys, config, "refund", ref, "--payment", "--amount", "250", "--yes"
            )
    whole_only = (
        f"Telegram refunds a Stars payment whole: the payment of {ref} is 250 XTR; leave out"
        " --amount to refund all of it\n"
    )
    assert part == (1, "", whole_only)
    assert more == (1, "", whole_only)
    assert address == (
        1,
        "",
        "--address and --chain are for USDC refunds; Stars go back to the Telegram account"
        " that paid them\n",
    )
    assert nothing_asked == ([], [])
    assert whole[0] == 0 and whole[1].splitlines()[1] == "refund #1 of 250 XTR: succeeded"
    assert refund_calls(bot) == [(200, {"user_id": CHAT, "telegram_payment_charge_id": charge})]


# ------------------------------------------------------------------ a second payment


async def test_stars_paid_after_a_card_payment_are_given_back_in_the_travellers_language(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], autojump_clock: trio.abc.Clock
) -> None:
    settings = make_settings(tmp_path, stars={"price": PRICE, "refunds": "operator"})
    async with running_bot(tmp_path, settings=settings) as bot:
        ref, charge = await pays_by_card_then_in_stars(bot)
        told_in_russian = (
            f"Мы вернули 250 ⭐ за заказ {ref}: звёзды снова на вашем счёте в Telegram."
        )
        # the traveller's app is in Russian from now on
        bot.api.set_profile(CHAT, language_code="ru")
        await Traveller(bot).says("/help")
        async with telegram_for_the_operator(tmp_path, bot.api) as config:
            listed = await orders(capsys, config)
            code, out, err = await orders(capsys, config, "refund", ref, "--yes")
            again = await orders(capsys, config, "refund", ref, "--extra", "1", "--yes")
        await eventually(lambda: told_in_russian in bot.api.sent_texts(CHAT))
        await trio.sleep(120)  # the sender's next rescans find nothing more to tell
        after = await orders(capsys, config)
    assert extra_payments(bot) == [(1, "stars", "second", "250", "XTR", charge)]
    (owed,) = listed[1].splitlines()
    assert owed.endswith(
        f"  {ref}  second payment #1 of 250 XTR by stars ({charge}) is owed back"
        f"  → itinerabot orders refund {ref} --extra 1"
    )
    assert (code, err) == (0, "")
    assert out.splitlines()[:2] == [
        f"refund 250 XTR of the second payment #1 of {ref} (250 XTR by stars, {charge})"
        " through Telegram",
        "refund #1 of 250 XTR: succeeded",
    ]
    assert refund_calls(bot) == [(200, {"user_id": CHAT, "telegram_payment_charge_id": charge})]
    assert bot.api.star_charges[charge]["refunded"] is True
    assert bot.stripe.refunds == {}  # the card payment pays the order and stays
    assert refunds(bot) == [(1, "stars", charge, "250", "XTR", "succeeded", None)]
    assert bot.api.sent_texts(CHAT).count(told_in_russian) == 1
    assert again == (1, "", f"the second payment #1 of {ref} (250 XTR) is refunded already\n")
    assert len(refund_calls(bot)) == 1
    assert after == (0, "nothing needs attention\n", "")
    assert status_of(bot.settings.store.path, 1) == OrderStatus.DELIVERED


# ------------------------------------------------------------------ answers lost or refused


def answer_lost_once(api: FakeBotApi, method: str) -> ASGIApp:
    """The Bot API through a connection that breaks after Telegram carried out the first
    `method` call: the call takes effect, its answer never arrives."""
    lost = False

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal lost
        if scope["type"] == "http" and str(scope["path"]).endswith(f"/{method}") and not lost:
            lost = True

            async def nowhere(message: object) -> None:
                pass

            await api(scope, receive, nowhere)
            await drop_connection(send)
        await api(scope, receive, send)

    return app


def dropped(api: FakeBotApi) -> ASGIApp:
    api.fail_next(REFUND, drop=True)  # the connection breaks before Telegram acts
    return api


def bad_gateway(api: FakeBotApi) -> ASGIApp:
    api.fail_next(REFUND, status=502)
    return api


def taken_then_dropped(api: FakeBotApi) -> ASGIApp:
    return answer_lost_once(api, REFUND)


@pytest.mark.parametrize(
    ("lose", "first_error", "statuses"),
    [
        (dropped, "telegram: no answer, the request may have been taken", [-1, 200]),
        (bad_gateway, "telegram: Bad Gateway", [502, 200]),
        # Telegram refunded on the first call; the second is told CHARGE_ALREADY_REFUNDED
        (taken_then_dropped, "telegram: no answer, the request may have been taken", [200, 400]),
    ],
)
async def test_a_refund_whose_answer_was_lost_is_completed_by_running_the_command_again(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    autojump_clock: trio.abc.Clock,
    lose: Callable[[FakeBotApi], ASGIApp],
    first_error: str,
    statuses: list[int],
) -> None:
    settings = make_settings(tmp_path, stars={"price": PRICE})
    async with running_bot(tmp_path, settings=settings) as bot:
        ref, charge = await pays_in_stars(bot)
        async with telegram_for_the_operator(tmp_path, lose(bot.api)) as config:
            first = await orders(capsys, config, "refund", ref, "--payment", "--yes")
            stuck = refunds(bot)
            listed = listed_later(bot, STUCK_AFTER)
            second = await orders(capsys, config, "refund", ref, "--payment", "--yes")
        await eventually(lambda: bool(told(bot)))
        await trio.sleep(120)
    code, out, err = first
    assert code == 1
    assert out.splitlines()[1] == (
        "refund #1 of 250 XTR: still requested, Telegram gave no answer; run the same command"
        " again (Telegram refunds a charge once at most)"
    )
    assert err.startswith(first_error)
    ((extra, method, _, _, _, status, error),) = stuck
    assert (extra, method, status) == (None, "stars", "requested")
    assert str(error).startswith(first_error)
    (unanswered,) = listed
    assert unanswered.what == "refund #1 of 250 XTR was asked of Telegram with no answer recorded"
    assert unanswered.action == (
        f"itinerabot orders refund {ref} --payment (asks Telegram again: it refunds a charge"
        " once at most)"
    )
    code, out, err = second
    assert (code, err) == (0, "")
    assert out.splitlines()[:2] == [
        f"refund 250 XTR of the payment of {ref} (250 XTR by stars, {charge}) through Telegram"
        " (asking again for refund #1)",
        "refund #1 of 250 XTR: succeeded",
    ]
    assert [status for status, _ in refund_calls(bot)] == statuses
    assert bot.api.star_charges[charge]["refunded"] is True
    assert refunds(bot) == [(None, "stars", charge, "250", "XTR", "succeeded", None)]
    assert told(bot) == [TOLD.format(ref=ref)]


async def test_a_refund_telegram_refuses_is_failed_listed_and_can_be_asked_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], autojump_clock: trio.abc.Clock
) -> None:
    settings = make_settings(tmp_path, stars={"price": PRICE})
    async with running_bot(tmp_path, settings=settings) as bot:
        ref, charge = await pays_in_stars(bot)
        bot.api.fail_next(REFUND, status=400, description="Bad Request: CHARGE_NOT_FOUND")
        async with telegram_for_the_operator(tmp_path, bot.api) as config:
            refused = await orders(capsys, config, "refund", ref, "--payment", "--yes")
            listed = await orders(capsys, config)
            retried = await orders(capsys, config, "refund", ref, "--payment", "--yes")
        await eventually(lambda: bool(told(bot)))
    assert refused[0] == 1
    assert refused[1].splitlines()[1] == "refund #1 of 250 XTR: failed: telegram: Charge_not_found"
    (line,) = listed[1].splitlines()
    assert line.endswith(
        f"  {ref}  refund #1 of 250 XTR by stars failed: telegram: Charge_not_found"
        f"  → itinerabot orders refund {ref} --payment"
    )
    assert retried[0] == 0
    assert retried[1].splitlines()[1] == "refund #2 of 250 XTR: succeeded"
    assert [status for status, _ in refund_calls(bot)] == [400, 200]
    assert bot.api.star_charges[charge]["refunded"] is True
    assert [row[5] for row in refunds(bot)] == ["failed", "succeeded"]
    assert told(bot) == [TOLD.format(ref=ref)]
