"""English short names of the countries airports are in, by ISO 3166-1 alpha-2 code: the CLDR's
(Babel's locale data), written out ("and", not "&") and without "SAR China" for Hong Kong and
Macao.
"""

from __future__ import annotations

import functools
from typing import Final

from babel import Locale

_OWN: Final[dict[str, str]] = {"HK": "Hong Kong", "MO": "Macao"}


def country_name(code: str) -> str:
    """The English short name of an ISO 3166-1 alpha-2 code; the code itself when unknown."""
    upper = code.upper()
    name = _OWN.get(upper) or _cldr_names().get(upper)
    return name.replace(" & ", " and ") if name else code


@functools.cache
def _cldr_names() -> dict[str, str]:
    names = Locale.parse("en").territories
    return {k: v for k, v in names.items() if len(k) == 2 and k.isalpha() and k != "ZZ"}
