"""Names and reasons from the peer: Windows device names, Unicode spellings, terminal codes."""

from __future__ import annotations

import unicodedata

import pytest
from hushdrop.protocol.errors import UnsafePathError
from hushdrop.protocol.paths import sanitize_all, sanitize_path
from hushdrop.protocol.text import peer_text, printable


@pytest.mark.parametrize(
    ("name", "saved"),
    [
        ("CONIN$", "_CONIN$"),
        ("conout$.txt", "_conout$.txt"),
        ("CLOCK$", "_CLOCK$"),
        ("con .txt", "_con .txt"),
        ("nul.tar.gz", "_nul.tar.gz"),
        ("Aux...", "_Aux"),
        ("lpt¹", "_lpt¹"),
        ("console.txt", "console.txt"),
        ("conin.txt", "conin.txt"),
    ],
)
def test_windows_device_names_are_prefixed(name, saved):
    assert sanitize_path(name) == (saved,)


def test_nfc_and_nfd_spellings_of_one_name_collide():
    nfc, nfd = (unicodedata.normalize(form, "Ångström/é.txt") for form in ("NFC", "NFD"))
    with pytest.raises(UnsafePathError, match="Unicode"):
        sanitize_all([nfc, nfd])


def test_names_that_differ_in_more_than_spelling_stay_distinct():
    assert len(sanitize_all(["é", "e", "e\u0300", "ß", "s"])) == 5


def test_terminal_escape_sequences_and_bidi_overrides_are_neutralised():
    shown = printable("ok\x1b[2J\x1b]0;title\x07\x9b31m\u202edone\r\n")
    assert shown == "ok\ufffd[2J\ufffd]0;title\ufffd31m\ufffddone\ufffd"


def test_peer_text_is_decoded_leniently_and_capped():
    assert peer_text(b"\xff bad") == "\ufffd bad"
    long = peer_text(b"x" * 10_000)
    assert len(long) == 300 and long.endswith("…")
