"""Messages in the caller's language: the one message catalogue and ``Accept-Language``.

English is the source language: a message's English text is its gettext ``msgid``. The
translations live in the package, ``gateway/locale/<locale>/LC_MESSAGES/gateway.po`` (one
``.po`` file per language, read with Babel and compiled in memory on first use, so there
is no build step and no binary file to keep in step with its source).

Two kinds of text are translated: error titles (the ``title`` of every class in
gateway/errors.py, used as msgids as they are) and details built with :func:`msg`::

    raise AccessDeniedError(msg("Table {table} is not shared with you.", table=name))

A :class:`Message` keeps its template and parameters, so the problem renderer can put
it into the caller's language at the last moment; ``str(message)`` is the English text
(logs, the audit record and the CLI stay English). Parameters are names and numbers
(tables, purposes, limits, times), inserted untranslated; a parameter that is itself a
Message is translated too. Templates must be literal strings so that ``pybabel extract
-k msg`` finds them; tests/unit/test_i18n.py checks every one has a translation.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from enum import StrEnum
from gettext import NullTranslations
from importlib import resources

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

__all__ = ["DOMAIN", "Language", "Message", "msg", "negotiate", "translate", "translations"]

#: The gettext domain of the gateway's catalogue (the ``.po`` files' name).
DOMAIN = "gateway"


class Language(StrEnum):
    """The languages the gateway answers in, as BCP 47 tags (``Content-Language``)."""

    EN = "en"
    ZH = "zh-CN"

    @property
    def locale(self) -> str:
        """The gettext locale directory of the language (``zh_CN``)."""
        return self.value.replace("-", "_")


@dataclass(frozen=True, slots=True)
class Message:
    """A text for people: an English ``template`` with ``{name}`` fields and their values."""

    template: str
    params: tuple[tuple[str, object], ...] = ()

    def __str__(self) -> str:
        return self.render(NullTranslations())

    def render(self, catalogue: NullTranslations) -> str:
        """The message in the language of ``catalogue`` (the template itself when the
        catalogue has no translation of it)."""
        values = {
            name: value.render(catalogue) if isinstance(value, Message) else value
            for name, value in self.params
        }
        return catalogue.gettext(self.template).format(**values)


def msg(template: str, /, **params: object) -> Message:
    """A translatable message. ``template`` must be a literal (it is the msgid)."""
    return Message(template, tuple(params.items()))


def negotiate(accept_language: str | None) -> Language:
    """The language to answer in for an ``Accept-Language`` header (RFC 9110 §12.5.4):
    the first of the client's ranges, by weight, that the gateway has; English when none
    is (or the header is missing or unreadable). Any ``zh`` range means Chinese: the
    catalogue is simplified Chinese, which a ``zh-TW`` reader also reads better than
    English."""
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate((accept_language or "").split(",")):
        tag, _, params = item.strip().partition(";")
        weight = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if tag and weight > 0:
            ranked.append((-weight, position, tag.strip().lower()))
    for _, _, tag in sorted(ranked):
        primary = tag.split("-", 1)[0]
        if primary == "zh":
            return Language.ZH
        if primary == "en" or tag == "*":
            return Language.EN
    return Language.EN


@functools.cache
def translations(language: Language) -> NullTranslations:
    """The catalogue of ``language``, compiled from its ``.po`` file once per process
    (immutable afterwards). English has no file: its texts are the msgids."""
    if language is Language.EN:
        return NullTranslations()
    source = resources.files("gateway") / "locale" / language.locale / "LC_MESSAGES"
    with (source / f"{DOMAIN}.po").open("rb") as po:
        catalog = read_po(po, locale=language.locale, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def translate(text: str | Message, language: Language) -> str:
    """``text`` in ``language``: a Message rendered with the catalogue, a plain string
    (an error title) looked up as a msgid."""
    catalogue = translations(language)
    if isinstance(text, Message):
        return text.render(catalogue)
    return catalogue.gettext(text)
