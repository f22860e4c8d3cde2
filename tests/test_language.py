"""The traveller's language: Russian for an app set to Russian, from /start through payment to
the PDF over the real running bot, and /language switching to English; /language and /orders in
the pure dialogue."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import trio

from itinerabot.dialogue import step
from itinerabot.dialogue.types import (
    AnswerCallback,
    ButtonPress,
    ChooseLanguage,
    CommandMessage,
    Context,
    RemoveButtons,
    SendText,
)
from itinerabot.i18n import texts_for
from itinerabot.models import Order, OrderStatus
from itinerabot.pdf import sample_order
from itinerabot.store import languages
from itinerabot.store.db import connect
from tests.harness import CHAT, START, Bot, deliver, eventually, make_settings, running_bot

JSON = dict[str, Any]
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
OUTBOUND_DAY = (START + timedelta(days=30)).date()

# ---------------------------------------------------------------- the pure dialogue


def context(language: str = "en", orders: tuple[Order, ...] = ()) -> Context:
    return Context(
        now=NOW,
        price=Decimal("10.00"),
        currency="USD",
        new_reference="IB-7K3Q9P",
        orders=orders,
        texts=texts_for(language),
    )


def texts_of(replies: tuple[Any, ...]) -> list[str]:
    return [r.text for r in replies if isinstance(r, SendText)]


def test_language_offers_each_language_named_in_itself() -> None:
    outcome = step(None, CommandMessage("language"), context("ru"))
    (reply,) = outcome.replies
    assert isinstance(reply, SendText)
    assert reply.text == "На каком языке мне писать? Выберите:"
    buttons = [(b.text, b.data) for row in reply.keyboard for b in row]
    assert buttons == [("English", "lang:en"), ("Русский", "lang:ru")]
    assert outcome.actions == ()


def test_picking_a_language_stores_it_and_answers_in_it() -> None:
    state = step(None, CommandMessage("start"), context("ru")).state
    press = ButtonPress("lang:en", callback_id="cb1", message_id=77)
    outcome = step(state, press, context("ru"))
    assert outcome.actions == (ChooseLanguage("en"),)
    assert outcome.replies[:2] == (AnswerCallback("cb1"), RemoveButtons(77))
    assert texts_of(outcome.replies) == [
        "From now on I write in English.\nPlease type the passenger name as in the passport."
    ]
    assert outcome.state == state  # the dialogue stays at its question
    back = step(state, ButtonPress("lang:ru", "cb2", 78), context("en"))
    assert back.actions == (ChooseLanguage("ru"),)
    assert texts_of(back.replies)[0].startswith("Теперь я пишу по-русски.\n")


def test_an_unknown_language_button_changes_nothing() -> None:
    outcome = step(None, ButtonPress("lang:xx", "cb1", 5), context())
    assert outcome.actions == ()
    assert outcome.replies == (AnswerCallback("cb1", "That step is already done."),)


def orders(count: int) -> tuple[Order, ...]:
    itinerary = sample_order()[0].itinerary
    return tuple(
        Order(n, f"IB-{n:06d}", 42, itinerary, Decimal("10.00"), "USD", OrderStatus.DELIVERED, NOW)
        for n in range(count, 0, -1)
    )


def test_orders_lists_twenty_and_says_when_there_are_more() -> None:
    # the handler hands in one more than /orders lists, so it knows there are more
    said = texts_of(step(None, CommandMessage("orders"), context(orders=orders(21))).replies)[0]
    lines = said.splitlines()
    assert lines[0] == "Your latest 20 orders, newest first (older ones are not shown):"
    assert lines[1].startswith("IB-000021 ·") and lines[20].startswith("IB-000002 ·")
    assert "IB-000001" not in said
    said = texts_of(step(None, CommandMessage("orders"), context(orders=orders(20))).replies)[0]
    assert said.splitlines()[0] == "Your orders, newest first:"
    assert said.count("\nIB-") == 20
    said = texts_of(step(None, CommandMessage("orders"), context("ru", orders(21))).replies)[0]
    assert said.startswith("Ваши последние 20 заказов, сначала новые")


# ---------------------------------------------------------------- end to end, in Russian


async def move(bot: Bot, enqueue: Callable[[], JSON]) -> str:
    """Enqueue one update, wait until the bot handled it and sent what it queued; the texts
    it sent in answer, joined by newlines."""
    before = len(bot.api.sent_texts(CHAT))
    update_id = int(enqueue()["update_id"])
    with trio.fail_after(60):
        while not (bot.rt.longpoll.handled(update_id) and bot.rt.sender.busy == 0):  # noqa: ASYNC110
            await trio.sleep(1.0)
    return "\n".join(bot.api.sent_texts(CHAT)[before:])


async def says(bot: Bot, text: str) -> str:
    if text.startswith("/"):
        return await move(bot, lambda: bot.api.user_command(CHAT, text))
    return await move(bot, lambda: bot.api.user_text(CHAT, text))


async def presses(bot: Bot, label: str) -> str:
    return await move(bot, lambda: bot.api.press_button(CHAT, label))


def stored_language(bot: Bot) -> tuple[str | None, str | None]:
    conn = connect(bot.settings.store.path)
    try:
        return languages.get(conn, CHAT)
    finally:
        conn.close()


def press_starting(bot: Bot, start: str) -> str:
    """The label of the button on the latest keyboard that starts with `start`."""
    keyboard = bot.api.last_keyboard(CHAT)
    assert keyboard is not None
    (label,) = [label for label in keyboard.labels() if label.startswith(start)]
    return label


async def test_a_russian_app_is_answered_in_russian_through_payment_then_switches(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Two travellers priced each, FRA → DOH → BKK with a connection at Doha on an airline the
    bot does not know, paid by card: every question, button and answer in Russian."""
    settings = make_settings(tmp_path, pricing={"per": "traveller"})
    async with running_bot(tmp_path, settings=settings) as bot:
        api = bot.api
        api.set_profile(CHAT, language_code="ru-RU")
        said = await says(bot, "/start")
        assert said.startswith("Здравствуйте! За 10.00 USD с пассажира я составлю маршрут")
        assert "Имя пассажира, как в паспорте" in said
        said = await says(bot, "Jane Mary Doe")
        assert "Пассажир: JANE MARY DOE" in said
        assert "Летит ли по этому маршруту кто-то ещё?" in said
        assert api.last_keyboard(CHAT).labels() == [  # type: ignore[union-attr]
            "Добавить ещё пассажира",
            "Нет, перейти к рейсам",
        ]
        said = await presses(bot, "Добавить ещё пассажира")
        assert said.startswith("Пассажир 2: имя, как в паспорте")
        assert "Пассажир: JOHN DOE" in await says(bot, "John Doe")
        said = await presses(bot, "Нет, перейти к рейсам")
        assert said.startswith("2 пассажира.") and "Рейс – аэропорт вылета?" in said
        assert "Откуда: FRA ·" in await says(bot, "frankfurt")
        assert "Куда: DOH ·" in await says(bot, "DOH")
        said = await says(bot, "qr68")
        assert "Номер рейса: QR 68 · Qatar Airways" in said and "дата вылета" in said
        said = await says(bot, "1 1 1")
        assert said.startswith("Не могу прочитать «1 1 1» как дату.")
        assert "время вылета" in await says(bot, OUTBOUND_DAY.isoformat())
        assert "Вылет: " in await says(bot, "13:15")
        said = await says(bot, "22:30")
        assert "Рейс прилетает в DOH " in said and "Что дальше?" in said
        assert api.last_keyboard(CHAT).labels() == [  # type: ignore[union-attr]
            "Стыковочный рейс из DOH",
            "Следующий участок маршрута",
            "Готово: показать сводку",
        ]
        said = await presses(bot, "Стыковочный рейс из DOH")
        assert said.startswith("Рейс 2 из DOH – аэропорт прилёта?")
        assert "Куда: BKK ·" in await says(bot, "BKK")
        said = await says(bot, "ZZ 836")  # a code the airline list does not know
        assert "я не знаю авиакомпанию с кодом ZZ" in said
        assert api.last_keyboard(CHAT).labels() == ["Пропустить: только номер рейса"]  # type: ignore[union-attr]
        said = await says(bot, "Air Example")
        assert said.startswith("Авиакомпания: Air Example") and "дата вылета" in said
        said = await presses(bot, press_starting(bot, "В тот же день, "))
        assert "Рейс 2 (пересадка в DOH) – время вылета" in said
        said = await says(bot, "22:45")
        assert said.startswith("Тогда после прилёта предыдущего рейса остаётся только 15 мин")
        assert "на пересадку нужно не меньше 30 мин" in said
        assert "Вылет: " in await says(bot, "23:40")
        assert "на следующий день" in await says(bot, "09:50 +1")
        summary = await presses(bot, "Готово: показать сводку")
        assert "Пожалуйста, проверьте маршрут." in summary
        assert "Пассажиры (2):\n1. JANE MARY DOE\n2. JOHN DOE" in summary
        assert "В одну сторону: FRA → DOH → BKK" in summary
        assert "Рейс 1 QR 68 · Qatar Airways" in summary
        assert "Пересадка в DOH: 1 ч 10 мин между рейсами\nРейс 2 ZZ 836 · Air Example" in summary
        assert "Время в пути: 6 ч 10 мин" in summary  # Doha and Bangkok keep one offset
        assert "Цена: 20.00 USD (2 × 10.00 USD) · Заказ IB-" in summary
        assert "Это не авиабилет и не бронирование" in summary
        assert api.last_keyboard(CHAT).labels() == [  # type: ignore[union-attr]
            "Оплатить картой",
            "Оплатить в USDC",
            "Изменить",
            "Отменить",
        ]
        said = await presses(bot, "Оплатить картой")
        assert said.startswith("Готовлю оплату…")  # first; the page follows when Stripe answers
        reference = summary.split("Заказ ")[1].split()[0]
        page = (
            f"Заказ {reference}: оплатите 20.00 USD (2 × 10.00 USD) на защищённой странице"
            " оплаты Stripe."
        )
        await eventually(lambda: api.sent_texts(CHAT)[-1].startswith(page))
        keyboard = api.last_keyboard(CHAT)
        assert keyboard is not None and keyboard.labels() == ["Оплатить 20.00 USD картой"]
        (session,) = bot.stripe.sessions.values()
        before = len(api.sent_texts(CHAT))
        assert await deliver(bot, bot.stripe.complete(session["id"])) == [200]
        await eventually(lambda: len(api.sent_documents(CHAT)) == 1 and bot.rt.sender.busy == 0)
        (received,) = api.sent_texts(CHAT)[before:]
        assert received == (
            f"Оплата получена: 20.00 USD картой за заказ {reference}. PDF с маршрутом уже в пути."
        )
        (document,) = api.sent_documents(CHAT)
        assert document.data.startswith(b"%PDF")  # the PDF itself stays English
        assert document.file_name == f"itinerary-{reference}.pdf"
        assert document.caption == (
            f"Маршрут перелётов {reference} для JANE MARY DOE и ещё 1 пассажира (PDF)."
            " Не является авиабилетом."
        )
        said = await says(bot, "/orders")
        assert said.startswith("Ваши заказы, сначала новые:")
        assert "FRA → DOH → BKK" in said and "оплачен, PDF отправлен" in said
        assert stored_language(bot) == (None, "ru-RU")

        said = await says(bot, "/language")
        assert said == "На каком языке мне писать? Выберите:"
        said = await presses(bot, "English")
        assert said == (
            "From now on I write in English.\n"
            "Use the buttons under the summary: pay, edit or cancel."
        )
        said = await says(bot, "/orders")  # the app still says Russian: the pick wins
        assert said.startswith("Your orders, newest first:") and "paid, PDF sent" in said
        assert (await says(bot, "/start")).startswith("Hello! I make a PDF itinerary")
        assert stored_language(bot) == ("en", "ru-RU")
    assert api.violations == []
