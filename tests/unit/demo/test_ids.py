"""Check characters of ID numbers, credit codes, organisation codes and bank cards."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.demo.ids import (
    CREDIT_CODE_CHARSET,
    credit_code_check_char,
    id_number_check_char,
    is_valid_bank_card,
    is_valid_credit_code,
    is_valid_id_number,
    is_valid_organization_code,
    luhn_check_digit,
    organization_code_check_char,
)

# Published examples: the GB 11643-1999 standard's own example and a widely quoted one.
VALID_IDS = ["11010519491231002X", "440524188001010014"]
# The example from the task and the public registration of Huawei Technologies Co., Ltd.
VALID_CREDIT_CODES = ["91350100M000100Y43", "914403001922038216"]
VALID_CARDS = ["4111111111111111", "5500000000000004", "6222600260001072444"]


def _substitutions(s: str, alphabet: str) -> list[str]:
    return [s[:i] + c + s[i + 1 :] for i in range(len(s)) for c in alphabet if c != s[i]]


def _transpositions(s: str) -> list[str]:
    return [s[:i] + s[i + 1] + s[i] + s[i + 2 :] for i in range(len(s) - 1) if s[i] != s[i + 1]]


@pytest.mark.parametrize("number", VALID_IDS)
def test_known_id_numbers_are_valid(number: str) -> None:
    assert is_valid_id_number(number)
    assert id_number_check_char(number[:17]) == number[17]


@pytest.mark.parametrize("number", VALID_IDS)
def test_every_single_character_change_of_an_id_number_is_detected(number: str) -> None:
    corrupted = _substitutions(number, "0123456789X")
    assert len(corrupted) == 18 * 10
    assert not [c for c in corrupted if is_valid_id_number(c)]


@pytest.mark.parametrize("number", VALID_IDS)
def test_adjacent_transpositions_of_an_id_number_are_detected(number: str) -> None:
    swapped = _transpositions(number)
    assert swapped
    assert not [c for c in swapped if is_valid_id_number(c)]


@pytest.mark.parametrize(
    ("number", "why"),
    [
        ("11010519491231002x", "lower-case x"),
        ("11010519491231002", "17 characters"),
        ("11010519491231002X0", "19 characters"),
        ("１1010519491231002X", "full-width digit"),
        ("", "empty"),
    ],
)
def test_malformed_id_numbers_are_invalid(number: str, why: str) -> None:
    assert not is_valid_id_number(number), why


@pytest.mark.parametrize(
    ("first17", "why"),
    [
        ("00010519491231002", "province 00 does not exist"),
        ("11010519490230000", "30 February"),
        ("11010517990101000", "born before 1800"),
    ],
)
def test_id_numbers_with_a_correct_check_but_bad_content_are_invalid(
    first17: str, why: str
) -> None:
    assert not is_valid_id_number(first17 + id_number_check_char(first17)), why


@given(
    region=st.sampled_from(["110105", "370102", "370203", "440524", "650102"]),
    born=st.dates(min_value=date(1900, 1, 1), max_value=date(2030, 12, 31)),
    order=st.integers(min_value=0, max_value=999),
)
def test_any_payload_with_its_check_character_is_valid(region: str, born: date, order: int) -> None:
    first17 = f"{region}{born:%Y%m%d}{order:03d}"
    check = id_number_check_char(first17)
    assert check in "0123456789X"
    assert is_valid_id_number(first17 + check)


@pytest.mark.parametrize("payload", ["1101051949123100", "1101051949123100a", "１" * 17])
def test_id_check_char_rejects_malformed_payloads(payload: str) -> None:
    with pytest.raises(ValueError, match="17 ASCII digits"):
        id_number_check_char(payload)


@pytest.mark.parametrize("code", VALID_CREDIT_CODES)
def test_known_credit_codes_are_valid(code: str) -> None:
    assert is_valid_credit_code(code)
    assert credit_code_check_char(code[:17]) == code[17]
    assert is_valid_organization_code(code[8:17])


@pytest.mark.parametrize("code", VALID_CREDIT_CODES)
def test_every_single_character_change_of_a_credit_code_is_detected(code: str) -> None:
    corrupted = _substitutions(code, CREDIT_CODE_CHARSET)
    assert len(corrupted) == 18 * 30
    assert not [c for c in corrupted if is_valid_credit_code(c)]


def test_credit_code_charset_excludes_the_misreadable_letters() -> None:
    assert len(CREDIT_CODE_CHARSET) == 31
    assert not set("IOZSV") & set(CREDIT_CODE_CHARSET)
    # The excluded letters make an otherwise well-formed code invalid.
    assert not is_valid_credit_code("91350100M000100I43")
    assert not is_valid_credit_code("91350100m000100Y43")
    # Positions 3-8 are an administrative division code: digits only.
    payload = "913501A0M000100Y4"
    assert not is_valid_credit_code(payload + credit_code_check_char(payload))


def test_credit_code_check_char_rejects_malformed_payloads() -> None:
    with pytest.raises(ValueError, match="17 characters"):
        credit_code_check_char("91350100M000100I4")
    with pytest.raises(ValueError, match="17 characters"):
        credit_code_check_char("91350100M000100")


def test_credit_check_value_zero_is_written_0() -> None:
    # Find a payload whose weighted sum is a multiple of 31: its check must be '0', not a
    # 32nd character.
    for n in range(10_000):
        payload = f"9137010{n:04d}MA000000"[:17]
        if credit_code_check_char(payload) == "0":
            assert is_valid_credit_code(payload + "0")
            return
    pytest.fail("no payload with check value 0 found")


def test_organization_code_check_chars() -> None:
    assert organization_code_check_char("M000100Y") == "4"
    assert is_valid_organization_code("192203821")
    assert not is_valid_organization_code("192203822")
    # Values 10 and 11 are written X and 0.
    checks = {organization_code_check_char(f"MA{n:06d}") for n in range(200)}
    assert {"X", "0"} <= checks
    with pytest.raises(ValueError, match="8 ASCII"):
        organization_code_check_char("ma000000")


def test_luhn_check_digit_of_the_standard_example() -> None:
    assert luhn_check_digit("7992739871") == "3"
    assert luhn_check_digit("0") == "0"
    with pytest.raises(ValueError, match="ASCII digits"):
        luhn_check_digit("")
    with pytest.raises(ValueError, match="ASCII digits"):
        luhn_check_digit("1234 5678")


@pytest.mark.parametrize("card", VALID_CARDS)
def test_known_bank_cards_are_valid(card: str) -> None:
    assert is_valid_bank_card(card)
    assert luhn_check_digit(card[:-1]) == card[-1]


@pytest.mark.parametrize("card", VALID_CARDS)
def test_every_single_digit_change_of_a_bank_card_is_detected(card: str) -> None:
    corrupted = _substitutions(card, "0123456789")
    assert len(corrupted) == len(card) * 9
    assert not [c for c in corrupted if is_valid_bank_card(c)]


@pytest.mark.parametrize(
    "card", ["79927398713", "41111111111111111111", "4111-1111-1111-1111", "4111111111111111 "]
)
def test_bank_card_length_and_characters(card: str) -> None:
    # 11 digits pass Luhn but are no card length; 20 digits are too long; separators fail.
    assert not is_valid_bank_card(card)
