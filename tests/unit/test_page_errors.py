"""What the page says for an error: a catalog message, in the person's language, for every error
a peer or a mistyped code causes (page/errors.py is pure Python: no browser needed)."""

from __future__ import annotations

import pytest
from hushdrop.page.errors import error_message
from hushdrop.page.messages import t
from hushdrop.protocol.codes import parse_code
from hushdrop.protocol.constants import MAX_TEXT_BYTES
from hushdrop.protocol.errors import (
    CodeFormatError,
    DeclinedError,
    GuessLeftError,
    PeerCancelledError,
)
from hushdrop.protocol.link import LINK_ENDED_REASON
from hushdrop.protocol.manifest import TextError, text_bytes


def code_error(typed: str) -> CodeFormatError:
    with pytest.raises(CodeFormatError) as caught:
        parse_code(typed)
    return caught.value


def test_a_link_closed_by_a_failed_guess_is_told_to_its_other_receivers_from_the_catalog():
    told = error_message(PeerCancelledError(LINK_ENDED_REASON), sender=False)
    assert told == t("error.link-ended")


def test_a_guesser_who_left_during_the_key_exchange_is_told_from_the_catalog():
    assert error_message(GuessLeftError(), sender=True) == t("error.guess-left")


@pytest.mark.parametrize(
    "words", ["", "they said no.", "they chose not to download them.", "they chose not to see it."]
)
def test_a_plain_decline_is_the_catalogs_declined_message(words):
    assert error_message(DeclinedError(words), sender=True) == t("error.declined")


def test_a_decline_with_the_receivers_own_reason_keeps_it():
    told = error_message(DeclinedError("the disk is full."), sender=True)
    assert told == t("error.declined.reason", reason="the disk is full.")


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("   ", t("error.code.empty")),
        ("123", t("error.code.room")),
        ("123456-foo-bar-baz", t("error.code.word", word="foo")),
        ("123456-apple", t("error.code.word-count", expected=3, given=1)),
        ("ftp://x#123456-AAAAAAAAAAAAAAAAAAAAAA", t("error.code.link-scheme")),
        ("https://x/#123456-AAAA", t("error.code.link-secret")),
    ],
)
def test_a_mistyped_code_is_explained_from_the_catalog(typed, message):
    assert error_message(code_error(typed), sender=False) == message


def test_a_text_over_the_limit_is_told_in_exact_bytes():
    with pytest.raises(TextError) as caught:
        text_bytes("x" * (MAX_TEXT_BYTES + 1))
    told = error_message(caught.value, sender=True)
    assert told == t("error.text.too-large", size=MAX_TEXT_BYTES + 1, limit=MAX_TEXT_BYTES)
