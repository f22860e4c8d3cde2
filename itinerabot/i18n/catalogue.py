"""The traveller's sentences in their language: `Texts` translates through the gettext catalogue.

English is the source (the msgids are the English sentences); other languages are read from
`itinerabot/locale/<lang>/LC_MESSAGES/messages.po` once, in memory, so no compiled .mo is needed.
"""

from __future__ import annotations

import functools
import gettext
import io
from importlib import resources
from typing import Final

from babel.dates import get_day_names, get_month_names
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

#: the languages a traveller can pick, by code, each named in itself
LANGUAGES: Final = {"en": "English", "ru": "Русский"}
DEFAULT: Final = "en"
DOMAIN: Final = "messages"


def N_(message: str) -> str:
    """Mark `message` for extraction without translating it (it is translated where used)."""
    return message


class Texts:
    """The sentences of one language: gettext/ngettext, then `str.format` with the values."""

    def __init__(self, language: str, translations: gettext.NullTranslations) -> None:
        self.language = language
        self._translations = translations

    def gettext(self, message: str, /, **values: object) -> str:
        """`message` in this language, its `{placeholders}` filled from `values`.

        Raises KeyError if the message names a placeholder `values` lacks.
        """
        text = self._translations.gettext(message)
        return text.format(**values) if values else text

    def ngettext(self, singular: str, plural: str, n: int, /, **values: object) -> str:
        """The plural form for `n` in this language (Russian has three), filled from `values`.

        Raises KeyError if the message names a placeholder `values` lacks.
        """
        text = self._translations.ngettext(singular, plural, n)
        return text.format(**values) if values else text

    def pgettext(self, context: str, message: str, /, **values: object) -> str:
        """`message` as meant in `context` (one English word, two meanings), filled from `values`.

        Raises KeyError if the message names a placeholder `values` lacks.
        """
        text = self._translations.pgettext(context, message)
        return text.format(**values) if values else text

    def weekday(self, index: int) -> str:
        """The short name of weekday `index` (0 is Monday), from the CLDR data: `Thu`, `чт`."""
        return str(get_day_names("abbreviated", locale=self.language)[index])

    def month(self, number: int) -> str:
        """The short name of month `number` (1 is January), from the CLDR data: `Dec`, `дек.`."""
        return str(get_month_names("abbreviated", locale=self.language)[number])


def choose(chosen: str | None, seen: str | None) -> str:
    """The chat's language: its explicit pick, else what its app reports, else English.

    `ru-RU` and `ru` both mean `ru`; a language without a catalogue falls back to English.
    """
    for code in (chosen, seen):
        base = (code or "").replace("_", "-").partition("-")[0].casefold()
        if base in LANGUAGES:
            return base
    return DEFAULT


@functools.cache
def texts_for(language: str) -> Texts:
    """The `Texts` of `language` (English for an unknown code), read once and kept.

    Raises OSError or babel's errors if a shipped catalogue cannot be read (a packaging bug).
    """
    if language not in LANGUAGES or language == DEFAULT:
        return Texts(DEFAULT, gettext.NullTranslations())
    return Texts(language, _load(language))


def english() -> Texts:
    """The default language, which needs no catalogue."""
    return texts_for(DEFAULT)


def _catalogue_path(language: str) -> resources.abc.Traversable:
    """Where the `.po` file of `language` is shipped."""
    return resources.files("itinerabot") / "locale" / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def _load(language: str) -> gettext.GNUTranslations:
    with _catalogue_path(language).open("rb") as po:
        catalog = read_po(po, locale=language, domain=DOMAIN)
    mo = io.BytesIO()
    write_mo(mo, catalog)  # fuzzy entries are left out, as msgfmt does
    mo.seek(0)
    return gettext.GNUTranslations(mo)
