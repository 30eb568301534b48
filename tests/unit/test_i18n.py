"""The one message catalogue: every error code and every ``msg()`` template has an
English and a Chinese text, the Chinese keeps the template's fields, and
``Accept-Language`` picks the language."""

from __future__ import annotations

import string

import pytest
from babel.messages.pofile import read_po

from gateway.errors import AuthenticationError, SqlSyntaxError
from gateway.i18n import DOMAIN, Language, msg, negotiate, translate, translations
from tests.unit.i18n_support import PACKAGE, catalogue_messages, error_classes

PO = PACKAGE / "locale" / "zh_CN" / "LC_MESSAGES" / f"{DOMAIN}.po"


def _fields(text: str) -> set[tuple[str, str | None, str | None]]:
    return {
        (name, conversion, spec)
        for _, name, spec, conversion in string.Formatter().parse(text)
        if name is not None
    }


def _catalogue() -> dict[str, str]:
    with PO.open("rb") as po:
        catalog = read_po(po, locale="zh_CN", domain=DOMAIN)
    return {
        m.id: m.string
        for m in catalog
        if m.id and not m.fuzzy and isinstance(m.id, str) and isinstance(m.string, str)
    }


def test_every_message_and_every_error_title_has_a_chinese_text() -> None:
    chinese = _catalogue()
    missing = sorted(t for t in catalogue_messages() if not chinese.get(t))
    assert not missing, "run scripts/messages.py and translate:\n" + "\n".join(missing)


def test_every_error_code_has_both_languages() -> None:
    for cls in error_classes():
        assert cls.title and cls.code
        assert translate(cls.title, Language.EN) == cls.title
        zh = translate(cls.title, Language.ZH)
        assert zh != cls.title and any("\u4e00" <= ch <= "\u9fff" for ch in zh), cls


def test_translations_keep_the_fields_of_their_template() -> None:
    for template, text in _catalogue().items():
        assert _fields(text) == _fields(template), template


def test_the_catalogue_holds_no_message_the_code_no_longer_uses() -> None:
    stale = set(_catalogue()) - set(catalogue_messages())
    assert not stale, "run scripts/messages.py: " + ", ".join(sorted(stale))


def test_a_message_renders_in_english_and_in_chinese_with_nested_messages() -> None:
    inner = msg("Table {table} is not shared with you.", table="population.people")
    outer = msg("Table {table} is refused: {reason}.", table="t.x", reason=inner)
    assert str(outer) == "Table t.x is refused: Table population.people is not shared with you.."
    assert translate(outer, Language.ZH) == "拒绝访问表 t.x：表 population.people 未向您共享。。"


def test_an_error_keeps_english_detail_and_its_message() -> None:
    error = AuthenticationError("token expired")
    assert error.detail.startswith("The credentials are missing")
    assert error.message is AuthenticationError.PUBLIC_DETAIL
    assert error.internal_detail == "token expired"
    plain = SqlSyntaxError("not a message")
    assert plain.message is None and plain.detail == "not a message"


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (None, Language.EN),
        ("", Language.EN),
        ("zh-CN", Language.ZH),
        ("zh", Language.ZH),
        ("zh-Hans-CN;q=0.8, en;q=0.5", Language.ZH),
        ("en-US,en;q=0.9,zh-CN;q=0.8", Language.EN),
        ("en;q=0.2, zh-CN;q=0.9", Language.ZH),
        ("fr, zh;q=0.1", Language.ZH),
        ("fr, de", Language.EN),
        ("zh;q=0", Language.EN),
        ("zh;q=bogus, en", Language.EN),
        ("*", Language.EN),
    ],
)
def test_accept_language_negotiation(header: str | None, language: Language) -> None:
    assert negotiate(header) is language


def test_the_catalogue_is_compiled_once() -> None:
    assert translations(Language.ZH) is translations(Language.ZH)
