"""Names and reasons from the peer: Windows device names, Unicode spellings, terminal codes."""

from __future__ import annotations

import unicodedata

import pytest
from hushdrop.protocol.errors import UnsafePathError
from hushdrop.protocol.paths import sanitize_all, sanitize_path
from hushdrop.protocol.text import peer_text, printable, visible_text


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


def test_visible_text_marks_bidi_overrides_and_invisible_characters():
    shown, marked = visible_text("invoice_\u202efdp.exe \u2066x\u2069 a\u200bb \x1b[0m \ufeff")
    assert shown == ("invoice_⟨U+202E⟩fdp.exe ⟨U+2066⟩x⟨U+2069⟩ a⟨U+200B⟩b ⟨U+001B⟩[0m ⟨U+FEFF⟩")
    assert marked == 6


def test_visible_text_keeps_line_breaks_tabs_and_ordinary_text_of_every_script():
    text = "Grüße\tשלום עולם\r\nمرحبا 你好 👋🏽\n"
    assert visible_text(text) == (text, 0)


def test_visible_text_keeps_joiners_inside_emoji_and_words_but_not_between_latin_letters():
    family, persian = "👨\u200d👩\u200d👧", "نمی\u200cخواهم"
    assert visible_text(family) == (family, 0)
    assert visible_text(persian) == (persian, 0)
    assert visible_text("pay\u200dpal") == ("pay⟨U+200D⟩pal", 1)
    assert visible_text("\u200dstart") == ("⟨U+200D⟩start", 1)
