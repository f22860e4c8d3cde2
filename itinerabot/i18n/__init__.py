"""The traveller's language: which one a chat reads, and its sentences from the catalogue."""

from itinerabot.i18n.catalogue import DEFAULT, LANGUAGES, N_, Texts, choose, english, texts_for

__all__ = ["DEFAULT", "LANGUAGES", "N_", "Texts", "choose", "english", "texts_for"]
