"""The catalogue: every sentence in the code is in the template and translated into Russian, with
the same placeholders and all three plural forms; every entry renders in both languages."""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from itinerabot.i18n import DEFAULT, LANGUAGES, choose, english, texts_for

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "itinerabot"
TEMPLATE = PACKAGE / "locale" / "messages.pot"
OTHERS = [code for code in LANGUAGES if code != DEFAULT]

Key = tuple[str | None, str]  # (context, msgid)
CYRILLIC = re.compile("[а-яё]", re.IGNORECASE)
#: sentences with no word to translate: the same in Russian
NO_WORDS = {"PDF {reference}", "{time} UTC on {day} {month}"}


def key_of(message: Message) -> Key:
    msgid = message.id[0] if isinstance(message.id, tuple | list) else message.id
    return message.context, msgid


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def extracted() -> dict[Key, tuple[str, ...]]:
    """What pybabel finds in the code with the project's mapping: key → msgid (and plural)."""
    with open(ROOT / "babel.cfg") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)  # type: ignore[no-untyped-call]
    found: dict[Key, tuple[str, ...]] = {}
    for _, _, message, _, context in extract_from_dir(
        str(PACKAGE), method_map, options_map, strip_comment_tags=True
    ):
        ids = tuple(message) if isinstance(message, tuple) else (message,)
        assert all(ids), f"an extracted message has an empty part: {ids}"
        found[(context, ids[0])] = ids
    return found


def catalogue(language: str) -> Catalog:
    with open(PACKAGE / "locale" / language / "LC_MESSAGES" / "messages.po", "rb") as po:
        return read_po(po, locale=language)


def entries(catalog: Catalog) -> dict[Key, Message]:
    return {key_of(m): m for m in catalog if m.id}


def test_the_template_holds_exactly_what_the_code_says() -> None:
    with open(TEMPLATE, "rb") as pot:
        template = entries(read_po(pot))
    code = extracted()
    assert len(code) > 150  # the extractor really found the sentences
    missing = sorted(k[1] for k in code.keys() - template.keys())
    stale = sorted(k[1] for k in template.keys() - code.keys())
    assert (missing, stale) == ([], []), "run `make texts` and translate what is new"
    for key, ids in code.items():
        message = template[key]
        assert (tuple(message.id) if message.pluralizable else (message.id,)) == ids


@pytest.mark.parametrize("language", OTHERS)
def test_every_message_is_translated_with_the_same_placeholders(language: str) -> None:
    catalog = catalogue(language)
    translated = entries(catalog)
    problems: list[str] = []
    for key, ids in extracted().items():
        message = translated.get(key)
        if message is None or message.fuzzy:
            problems.append(f"untranslated: {key}")
            continue
        string = message.string
        forms = [string] if isinstance(string, str) else list(string or ())
        if len(ids) == 2 and len(forms) != catalog.num_plurals:
            problems.append(f"{len(forms)} of {catalog.num_plurals} plural forms: {key}")
        expected = set().union(*(placeholders(i) for i in ids))
        for form in forms:
            if not form.strip():
                problems.append(f"empty: {key}")
            elif placeholders(form) != expected:
                problems.append(f"placeholders {placeholders(form)} ≠ {expected}: {key}")
    assert problems == []


def test_russian_has_three_plural_forms() -> None:
    catalog = catalogue("ru")
    assert catalog.num_plurals == 3
    texts = texts_for("ru")
    forms = [texts.ngettext("{offset} day", "{offset} days", n, offset=n) for n in (1, 3, 5, 21)]
    assert forms == ["1 день", "3 дня", "5 дней", "21 день"]
    assert english().ngettext("{offset} day", "{offset} days", 1, offset=1) == "1 day"


@pytest.mark.parametrize("language", list(LANGUAGES))
def test_every_entry_renders_with_sample_values(language: str) -> None:
    """No sentence leaves a `{…}` unfilled or fails to format, in any plural form."""
    texts = texts_for(language)
    for (context, _), ids in extracted().items():
        values = {name: "X" for i in ids for name in placeholders(i)}
        if len(ids) == 2:
            rendered = [texts.ngettext(ids[0], ids[1], n, **values) for n in (0, 1, 2, 5, 21)]
        elif context is not None:
            rendered = [texts.pgettext(context, ids[0], **values)]
        else:
            rendered = [texts.gettext(ids[0], **values)]
        for text in rendered:
            assert "{" not in text and "}" not in text, (language, ids[0], text)
            if language == "ru" and ids[0] not in NO_WORDS:
                assert CYRILLIC.search(text), f"not Russian: {text}"


def test_english_is_the_source_and_unchanged() -> None:
    texts = english()
    assert texts.gettext("That step is already done.") == "That step is already done."
    assert texts.weekday(3) == "Thu" and texts.month(12) == "Dec"
    assert texts_for("ru").weekday(3) == "чт"


@pytest.mark.parametrize(
    ("chosen", "seen", "language"),
    [
        (None, None, "en"),
        (None, "ru", "ru"),
        (None, "ru-RU", "ru"),
        (None, "RU_ru", "ru"),
        (None, "de", "en"),
        (None, "", "en"),
        ("en", "ru", "en"),  # the traveller's pick wins over the app's
        ("ru", "en-GB", "ru"),
        ("xx", "ru", "ru"),  # a pick we no longer offer falls back to the app's
    ],
)
def test_the_language_is_the_pick_else_the_apps_else_english(
    chosen: str | None, seen: str | None, language: str
) -> None:
    assert choose(chosen, seen) == language
    assert texts_for(choose(chosen, seen)).language == language


def test_an_unknown_language_reads_english() -> None:
    assert texts_for("de").language == "en"
    assert texts_for("de").gettext("Cancel") == "Cancel"
    assert texts_for("ru").gettext("Cancel") == "Отменить"


def _bare_strings(tree: ast.AST) -> set[str]:
    """Names assigned a plain string literal (not marked with N_), anywhere in `tree`."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def test_every_sentence_handed_to_the_translator_is_one_the_extractor_sees() -> None:
    """A sentence kept in a variable (`sent = "Order … is paid"; t.gettext(sent)`) is never
    extracted, so it is never translated and the tests above cannot see it. Every message
    given to gettext/ngettext/pgettext is a literal, or a name marked with N_ (a constant
    assigned a bare string, here or in another module, fails)."""
    trees = {
        path: ast.parse(path.read_text(), str(path))
        for path in PACKAGE.rglob("*.py")
        if "pdf" not in path.relative_to(PACKAGE).parts
    }
    bare = set().union(*(_bare_strings(tree) for tree in trees.values()))
    unseen = []
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"gettext", "ngettext", "pgettext"}
            ):
                continue
            messages = node.args[1:2] if node.func.attr == "pgettext" else node.args[:2]
            if node.func.attr == "gettext":
                messages = node.args[:1]
            for arg in messages:
                name = arg.id if isinstance(arg, ast.Name) else getattr(arg, "attr", None)
                if name in bare:
                    unseen.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}")
    assert unseen == []
