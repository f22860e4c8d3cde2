"""Every python-telegram-bot error lands in the project's tree through `convert_error`, the way
httpx tests its httpcore mapping: the classes are walked, not listed by hand, so a class a new
python-telegram-bot adds fails here until it is placed.
"""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from telegram import error as tg_error

from itinerabot.adapters.telegram.client import convert_error
from itinerabot.errors import (
    Conflict,
    InvalidToken,
    OutcomeUnknown,
    PermanentServiceError,
    RateLimited,
    RecipientBlocked,
    ServiceError,
    TransientServiceError,
)


def _caused(exc: tg_error.TelegramError, cause: BaseException | None) -> tg_error.TelegramError:
    """`exc` raised `from cause`, as PTB's HTTPXRequest raises it."""
    exc.__cause__ = cause
    return exc


#: one instance of each PTB error class, as PTB raises it, and the class it must become
EXPECTED: dict[type[tg_error.TelegramError], tuple[tg_error.TelegramError, type[ServiceError]]] = {
    tg_error.TelegramError: (tg_error.TelegramError("something new"), OutcomeUnknown),
    tg_error.RetryAfter: (tg_error.RetryAfter(7), RateLimited),
    tg_error.InvalidToken: (tg_error.InvalidToken("Unauthorized"), InvalidToken),
    tg_error.Conflict: (tg_error.Conflict("terminated by other getUpdates"), Conflict),
    tg_error.Forbidden: (tg_error.Forbidden("bot was blocked by the user"), RecipientBlocked),
    tg_error.BadRequest: (tg_error.BadRequest("chat not found"), PermanentServiceError),
    tg_error.ChatMigrated: (tg_error.ChatMigrated(-100123), PermanentServiceError),
    tg_error.EndPointNotFound: (tg_error.EndPointNotFound("Not Found"), PermanentServiceError),
    tg_error.PassportDecryptionError: (
        tg_error.PassportDecryptionError("bad key"),
        PermanentServiceError,
    ),
    # a 5xx answer PTB has no class for: Telegram answered, so it did not act
    tg_error.NetworkError: (tg_error.NetworkError("Bad Gateway"), TransientServiceError),
    # PTB's TimedOut is httpx's read timeout unless the cause says otherwise: it may have acted
    tg_error.TimedOut: (
        _caused(tg_error.TimedOut(), httpx.ReadTimeout("slow")),
        OutcomeUnknown,
    ),
}


def _all_subclasses(cls: type[tg_error.TelegramError]) -> set[type[tg_error.TelegramError]]:
    found = {cls}
    for sub in cls.__subclasses__():
        found |= _all_subclasses(sub)
    return found


def test_every_telegram_error_class_is_walked_and_placed() -> None:
    """Each class of python-telegram-bot's error hierarchy (walked from TelegramError, only
    PTB's own) becomes the expected class of ours, service "telegram"; a new PTB class fails
    here until it is given a place."""
    ptb_classes = {
        cls
        for cls in _all_subclasses(tg_error.TelegramError)
        if cls.__module__.split(".")[0] == "telegram"
    }
    assert ptb_classes == set(EXPECTED)
    for cls, (exc, expected) in EXPECTED.items():
        assert type(exc) is cls
        converted = convert_error(exc)
        assert type(converted) is expected, cls.__name__
        assert converted.service == "telegram"


@pytest.mark.parametrize("retry_after", [7, timedelta(seconds=7)])
def test_retry_after_keeps_the_seconds_telegram_asked_for(retry_after: int | timedelta) -> None:
    converted = convert_error(tg_error.RetryAfter(retry_after))
    assert isinstance(converted, RateLimited)
    assert converted.retry_after == 7.0
    assert converted.status == 429


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (tg_error.BadRequest("message is not modified"), 400),
        (tg_error.ChatMigrated(-100123), 400),
        (tg_error.EndPointNotFound("Not Found"), 404),
        (tg_error.Forbidden("bot was blocked by the user"), 403),
        (tg_error.Conflict("terminated by other getUpdates"), 409),
        (tg_error.InvalidToken(), 401),
    ],
)
def test_refusals_are_permanent_with_telegrams_status(
    exc: tg_error.TelegramError, status: int
) -> None:
    converted = convert_error(exc)
    assert isinstance(converted, PermanentServiceError)
    assert converted.status == status


@pytest.mark.parametrize(
    ("cause", "expected"),
    [
        # the request never fully left: Telegram cannot have acted
        (httpx.ConnectError("refused"), TransientServiceError),
        (httpx.ConnectTimeout("slow"), TransientServiceError),
        (httpx.PoolTimeout("busy"), TransientServiceError),
        (httpx.WriteError("reset"), TransientServiceError),
        (httpx.WriteTimeout("slow"), TransientServiceError),
        # it went out and no answer came: Telegram may have acted
        (httpx.ReadTimeout("slow"), OutcomeUnknown),
        (httpx.ReadError("reset"), OutcomeUnknown),
        (httpx.RemoteProtocolError("closed"), OutcomeUnknown),
    ],
)
@pytest.mark.parametrize("ptb_class", [tg_error.NetworkError, tg_error.TimedOut])
def test_a_network_failure_says_whether_telegram_may_have_acted(
    ptb_class: type[tg_error.NetworkError],
    cause: httpx.HTTPError,
    expected: type[ServiceError],
) -> None:
    """PTB wraps httpx's error in NetworkError or TimedOut; the httpx cause decides."""
    converted = convert_error(_caused(ptb_class("failed"), cause))
    assert type(converted) is expected


def test_a_network_error_caused_by_an_unreadable_answer_is_transient() -> None:
    """A 5xx whose body PTB could not parse: Telegram answered, so it did not act."""
    unreadable = tg_error.TelegramError("Invalid server response")
    converted = convert_error(_caused(tg_error.NetworkError("Bad Gateway"), unreadable))
    assert type(converted) is TransientServiceError


def test_an_unknown_subclass_still_lands_in_the_tree() -> None:
    """A class a future PTB adds (not yet in EXPECTED) still becomes one of ours, placed by
    its nearest known base: never a raw telegram error escaping the adapter."""

    class SomethingNew(tg_error.TelegramError):
        pass

    class NewRefusal(tg_error.BadRequest):
        pass

    class NewNetworkFailure(tg_error.NetworkError):
        pass

    new = convert_error(SomethingNew("?"))
    # nothing says it was refused before it was acted on: repeating it must be careful
    assert type(new) is OutcomeUnknown
    assert type(convert_error(NewRefusal("no"))) is PermanentServiceError
    lost = _caused(NewNetworkFailure("lost"), httpx.ReadError("reset"))
    assert type(convert_error(lost)) is OutcomeUnknown
    assert isinstance(new, ServiceError) and not isinstance(new, tg_error.TelegramError)


def test_the_message_keeps_telegrams_words() -> None:
    """The converted message is Telegram's description (what the log shows); a refused token
    gets one fixed sentence."""
    blocked = convert_error(tg_error.Forbidden("Forbidden: bot was blocked by the user"))
    assert "bot was blocked by the user" in str(blocked)
    refused = convert_error(tg_error.InvalidToken("Unauthorized"))
    assert str(refused) == "telegram: the bot token was refused (401/404)"
