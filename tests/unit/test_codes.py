"""Typed codes and links: generation, parsing, normalisation, and what a bad one says."""

from __future__ import annotations

import os

import pytest
from hushdrop.protocol.codes import new_sender_secrets, pake_secret, parse_code
from hushdrop.protocol.constants import FORM_LINK, FORM_WORDS
from hushdrop.protocol.errors import CodeFormatError
from hushdrop.protocol.wordlist import WORDS


def secrets(password: bool = False):
    return new_sender_secrets("123456", os.urandom, password)


def test_typed_code_has_room_and_three_list_words():
    code = secrets().typed
    room, *words = code.split("-")
    assert room == "123456" and len(words) == 3 and all(w in WORDS for w in words)


def test_typed_code_round_trips():
    sender = secrets()
    code = parse_code(sender.typed)
    assert (code.room, code.form, code.secret) == (
        "123456",
        FORM_WORDS,
        sender.secret_for(FORM_WORDS),
    )


@pytest.mark.parametrize(
    "typed",
    [
        "123456-abandon-ability-able",
        "  123456 ABANDON Ability able ",
        "123456_aban_abil_able",
        "123456-abandn-abilty-able",  # typos after the four letters that decide
    ],
)
def test_typed_code_forgives_case_separators_and_abbreviations(typed):
    assert parse_code(typed).secret == b"abandon-ability-able"


def test_link_round_trips_with_site_and_password_mark():
    sender = secrets(password=True)
    link = sender.link("https://drop.example/")
    assert link.startswith("https://drop.example/#123456-") and link.endswith(".pw")
    code = parse_code(link)
    assert code.form == FORM_LINK and code.secret == sender.link_secret
    assert code.password_required and code.site == "https://drop.example"


def test_link_secret_has_128_bits_and_no_password_mark_by_default():
    sender = secrets()
    assert len(sender.link_secret) == 16 and not sender.link("http://h").endswith(".pw")


def test_bare_fragment_is_accepted():
    sender = secrets()
    fragment = sender.link("http://h").split("#", 1)[1]
    assert parse_code(fragment).secret == sender.link_secret
    assert parse_code(fragment).site is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("abandon-ability-able", "6-digit"),
        ("123456-abandon-ability", "3 words"),
        ("123456-abandon-ability-able-zoo", "3 words"),
        ("123456-qqqq-ability-able", "'qqqq' is not one of the code words"),
        ("ftp://h/#123456-AAAAAAAAAAAAAAAAAAAAAA", "http"),
        ("http://h/#123456-short", "damaged"),
        ("http://h/#12345-AAAAAAAAAAAAAAAAAAAAAA", "incomplete"),
    ],
)
def test_bad_codes_say_what_is_wrong(text, message):
    with pytest.raises(CodeFormatError, match=message):
        parse_code(text)


def test_pake_secret_binds_form_secret_and_normalised_password():
    assert pake_secret(FORM_WORDS, b"a-b-c", "") != pake_secret(FORM_LINK, b"a-b-c", "")
    assert pake_secret(FORM_WORDS, b"a-b-c", "caf\u00e9") == pake_secret(
        FORM_WORDS, b"a-b-c", "cafe\u0301"
    )
    assert pake_secret(FORM_WORDS, b"a-b-c", "x") != pake_secret(FORM_WORDS, b"a-b-cx", "")


def test_room_from_relay_must_be_six_digits():
    with pytest.raises(CodeFormatError):
        new_sender_secrets("12345", os.urandom, False)
