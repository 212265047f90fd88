"""The page in every language it speaks: chosen from the browser's languages (a German browser gets
German without anyone touching anything, in Chromium, Firefox and WebKitGTK), switched with the
language control on every view at once and in place (nothing lost) and remembered after a reload;
numbers, sizes and plural forms as each language writes them; and every language's texts fit on
the main views at desktop and phone width. (test_accessibility runs axe-core in every language.)
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from enginetools import READY_S, wait_for
from firefox_bidi import Firefox
from pagetools import (
    BLOCK_ICE,
    PYTHON_READY_TIMEOUT,
    STEP_TIMEOUT,
    MiB,
    create_link,
    expect_received,
    expect_sent,
    random_file,
    wait_until_ready,
)
from playwright.sync_api import Page, expect

from tests.conftest import REPO_ROOT

LANGUAGES = sorted(path.stem for path in (REPO_ROOT / "web" / "locales").glob("*.json"))
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
# Text that says the page speaks German: the home screen's button, and Python's "ready" line.
GERMAN_BUTTON = "Link erstellen"
GERMAN_READY = "Bereit."


def language_control(page: Page):
    # Found by the English word in every language: "Sprache (Language)", "Мова (Language)"…
    return page.get_by_label(re.compile(r"\bLanguage\b"))


def choose(page: Page, code: str) -> None:
    language_control(page).select_option(code)
    expect(page.locator("html")).to_have_attribute("lang", code)


def test_a_german_chromium_gets_german_without_touching_anything(web_relay, new_page):
    page, log = new_page(web_relay.url, locale="de-DE")
    expect(page.locator("html")).to_have_attribute("lang", "de")
    expect(page.get_by_role("button", name=GERMAN_BUTTON)).to_be_visible()
    expect(page.get_by_label("Sprache (Language)")).to_have_value("de")
    expect(page.locator("#engine-text")).to_have_text(GERMAN_READY, timeout=PYTHON_READY_TIMEOUT)
    assert page.title() == "Hushdrop — private Dateiübertragung"
    assert page.evaluate("navigator.language") == "de-DE", log


def test_an_english_browser_gets_english(web_relay, new_page):
    page, _ = new_page(web_relay.url)  # the suite's browsers speak en-US
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_label("Language", exact=True)).to_have_value("en")


def test_a_browser_without_our_languages_gets_english(web_relay, new_page):
    page, _ = new_page(web_relay.url, locale="ja-JP")
    expect(page.get_by_label("Language", exact=True)).to_have_value("en")
    expect(page.get_by_role("button", name="Create link")).to_be_visible()


@pytest.fixture(scope="module")
def german_firefox() -> Iterator[Firefox]:
    """A Firefox whose languages (intl.accept_languages) are German, like a German install."""
    instance = Firefox(prefs={"intl.accept_languages": "de-DE, de, en"})
    yield instance
    instance.stop()


def test_a_german_firefox_gets_german_without_touching_anything(web_relay, german_firefox):
    tab = german_firefox.person()
    try:
        tab.goto(web_relay.url)
        wait_for(
            tab,
            "(text) => document.getElementById('engine-text').textContent === text",
            GERMAN_READY,
            timeout=READY_S,
            what="the page never said it was ready in German",
        )
        shown = tab.call(
            """() => ({lang: document.documentElement.lang,
                       button: document.getElementById('create-link').textContent.trim(),
                       languages: navigator.languages})"""
        )
        assert shown == {"lang": "de", "button": GERMAN_BUTTON, "languages": ["de-DE", "de", "en"]}
    finally:
        tab.close()


def german_locale(folder: Path) -> dict[str, str]:
    """The environment of a German system: WebKitGTK's languages follow the C library's locale,
    compiled here with localedef (the machine may have none but C)."""
    localedef = shutil.which("localedef")
    if localedef is None:
        pytest.fail("localedef is missing (Debian's libc-bin): it compiles the German locale.")
    subprocess.run(
        [localedef, "-i", "de_DE", "-f", "UTF-8", str(folder / "de_DE.UTF-8")],
        check=True,
        capture_output=True,
    )
    return {"LOCPATH": str(folder), "LC_ALL": "de_DE.UTF-8", "LANG": "de_DE.UTF-8"}


def test_a_german_webkit_gets_german_without_touching_anything(web_relay, webkit, tmp_path):
    tab = webkit.person(env=german_locale(tmp_path))
    try:
        tab.goto(web_relay.url)
        wait_for(
            tab,
            "(text) => document.getElementById('engine-text').textContent === text",
            GERMAN_READY,
            timeout=READY_S,
            what="the page never said it was ready in German",
        )
        assert tab.call("() => document.documentElement.lang") == "de"
    finally:
        tab.close()


def test_switching_the_language_repaints_in_place_and_is_remembered(web_relay, new_page, tmp_path):
    page, _ = new_page(web_relay.url)
    wait_until_ready(page)
    files = [random_file(tmp_path / f"{name}.txt", 100) for name in ("a", "b", "c")]
    page.get_by_label("Choose files").set_input_files(files)
    expect(page.locator("#selection-summary")).to_have_text("3 files, 300 B")
    page.get_by_label("Password").fill("kept")

    choose(page, "uk")
    # Static text, the selection painted by app.js and Python's status line all changed …
    expect(page.get_by_role("button", name="Створити посилання")).to_be_enabled()
    expect(page.locator("#selection-summary")).to_have_text("3 файли, 300 Б")
    expect(page.locator("#engine-text")).to_have_text("Готово.")
    assert page.title() == "Hushdrop — приватна передача файлів"
    # … and nothing was lost: the files and the password are still there.
    expect(page.get_by_role("button", name="Вилучити b.txt")).to_be_visible()
    expect(page.locator("#send-password")).to_have_value("kept")

    page.reload()
    expect(page.locator("html")).to_have_attribute("lang", "uk")
    expect(page.get_by_label("Мова (Language)")).to_have_value("uk")
    choose(page, "en")
    page.reload()
    expect(page.locator("html")).to_have_attribute("lang", "en")


def test_a_running_transfer_changes_language_in_place(web_relay, new_page, tmp_path):
    sender, _ = new_page(web_relay.url)
    link, _ = create_link(sender, [random_file(tmp_path / "a.bin", 1500)])
    choose(sender, "fr")
    expect(sender.get_by_role("heading", name=re.compile("^Envoi"))).to_be_visible()
    expect(sender.get_by_label("Lien de partage")).to_have_value(link)  # the link is kept
    receiver, _ = new_page(link, locale="es-ES")
    expect(receiver.get_by_role("button", name="Descargar")).to_be_visible(
        timeout=PYTHON_READY_TIMEOUT
    )
    expect(receiver.locator("[data-part=offer-summary]")).to_have_text(
        "El remitente ofrece 1 archivo, 1,5 KiB:"
    )
    choose(receiver, "de")
    expect(receiver.locator("[data-part=offer-summary]")).to_have_text(
        "Der Absender bietet 1 Datei, 1,5 KiB an:"
    )
    choose(receiver, "en")
    choose(sender, "en")
    receiver.get_by_role("button", name="Download").click()
    expect_received(receiver, "1 file, 1.5 KiB")
    expect_sent(sender, "1 file, 1.5 KiB")


FORMATS = {
    # language: (1 file, 2 files, 5 files, 21 files, 1.5 KiB)
    "en": ("1 file, 0 B", "2 files, 0 B", "5 files, 0 B", "21 files, 0 B", "1.5 KiB"),
    "de": ("1 Datei, 0 B", "2 Dateien, 0 B", "5 Dateien, 0 B", "21 Dateien, 0 B", "1,5 KiB"),
    "uk": ("1 файл, 0 Б", "2 файли, 0 Б", "5 файлів, 0 Б", "21 файл, 0 Б", "1,5 КіБ"),
    "fr": ("1 fichier, 0 o", "2 fichiers, 0 o", "5 fichiers, 0 o", "21 fichiers, 0 o", "1,5 Kio"),
    "es": ("1 archivo, 0 B", "2 archivos, 0 B", "5 archivos, 0 B", "21 archivos, 0 B", "1,5 KiB"),
}


def test_counts_and_sizes_read_as_each_language_writes_them(web_relay, new_page):
    page, _ = new_page(web_relay.url)
    for code, expected in FORMATS.items():
        page.evaluate("(code) => hushdrop.i18n.use(code)", code)
        shown = page.evaluate(
            """() => [1, 2, 5, 21].map((count) => hushdrop.i18n.format(
                 "files.summary", JSON.stringify({count, size: {$size: 0}})))
               .concat([hushdrop.i18n.formatSize(1536)])"""
        )
        # French puts a no-break space between number and unit; compared as plain spaces.
        assert [text.replace("\u00a0", " ") for text in shown] == list(expected), code
    page.evaluate("() => hushdrop.i18n.use('de')")
    big = page.evaluate(
        """() => [hushdrop.i18n.format("files.summary",
                    JSON.stringify({count: 1234567, size: {$size: 3 * 1024 ** 3}})),
                  hushdrop.i18n.formatDuration(125), hushdrop.i18n.formatDuration(3.24)]"""
    )
    assert big[0] == "1.234.567 Dateien, 3,0 GiB"
    assert re.fullmatch(r"2 Min\.?,? 5 Sek\.?", big[1]), big[1]
    assert big[2].replace("\u00a0", " ") == "3,2 Sek.", big[2]


# What must never be cut off or stick out: controls, their labels, headings and status lines.
OVERFLOW = """() => {
  const shown = (el) => el.getClientRects().length && !el.closest("[hidden], .visually-hidden");
  const selector = "button, label, .button, select, h1, h2, [data-part=status], .tagline";
  const wide = [...document.querySelectorAll(selector)].filter(
    (el) => shown(el) && el.scrollWidth > el.clientWidth + 1);
  const page = document.documentElement.scrollWidth > window.innerWidth;
  return wide.map((el) => `${el.tagName}.${el.className}: ${el.textContent.trim()}`)
    .concat(page ? [`the page is ${document.documentElement.scrollWidth}px wide`] : []);
}"""


def fits(page: Page, state: str, found: list[str]) -> None:
    """Every language fits this state at desktop and phone width (English last)."""
    size = page.viewport_size
    for code in [*(code for code in LANGUAGES if code != "en"), "en"]:
        page.evaluate("(code) => hushdrop.i18n.use(code)", code)
        expect(page.locator("html")).to_have_attribute("lang", code)
        for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(viewport)
            found.extend(f"{state} [{code}, {name}]: {what}" for what in page.evaluate(OVERFLOW))
    page.set_viewport_size(size)


def test_every_language_fits_every_view_at_desktop_and_phone_width(web_relay, new_page, tmp_path):
    found: list[str] = []
    sender, _ = new_page(web_relay.url, viewport=DESKTOP)
    sender.add_init_script(BLOCK_ICE)
    wait_until_ready(sender)
    fits(sender, "home", found)
    long_name = "a-rather-long-file-name-that-someone-really-chose-for-a-report.pdf"
    folder = tmp_path / "Quarterly reports"
    random_file(folder / "q1.pdf", 10)
    sender.get_by_label("Choose files").set_input_files([random_file(tmp_path / long_name, 4000)])
    sender.get_by_label("Choose a folder").set_input_files(folder)
    fits(sender, "home with files", found)
    link, _ = create_link(sender, short_code=True, password="pw")
    fits(sender, "send, link and short code", found)

    receiver, _ = new_page(viewport=DESKTOP)
    receiver.add_init_script(BLOCK_ICE)
    receiver.goto(link)
    password = receiver.get_by_label("Password")
    expect(password).to_be_visible(timeout=PYTHON_READY_TIMEOUT)
    fits(receiver, "receive, password", found)
    password.fill("pw")
    password.press("Enter")
    expect(receiver.get_by_role("button", name="Download")).to_be_visible(timeout=STEP_TIMEOUT)
    fits(receiver, "receive, offer", found)
    fits(sender, "send, verified", found)
    with receiver.expect_download(timeout=STEP_TIMEOUT):
        receiver.get_by_role("button", name="Download").click()
    expect_received(receiver, "2 files")
    expect_sent(sender, "2 files")
    fits(receiver, "receive, done", found)
    fits(sender, "send, done", found)

    # The error view: a sender who cancels while the receiver looks at the offer.
    sender.get_by_role("button", name="Send more files").click()
    link2, _ = create_link(sender, [random_file(tmp_path / "b.bin", 2 * MiB)])
    receiver2, _ = new_page(link2, viewport=DESKTOP)
    expect(receiver2.get_by_role("button", name="Download")).to_be_visible(
        timeout=PYTHON_READY_TIMEOUT
    )
    sender.get_by_role("button", name="Cancel").click()
    expect(receiver2.get_by_role("alert")).to_contain_text("cancel", timeout=STEP_TIMEOUT)
    fits(receiver2, "receive, failed", found)
    fits(sender, "send, cancelled", found)
    assert not found, "\n".join(found)


@pytest.mark.parametrize(
    ("typed", "german"),
    [
        ("123", "Ein Code beginnt mit der 6-stelligen Zahl, die dem Absender angezeigt wurde"),
        ("123456-foo-bar-baz", "„foo“ ist keines der Code-Wörter; prüfen Sie die Schreibweise."),
        ("123456-apple", "Ein Code hat 3 Wörter nach der Zahl; dieser hat 1."),
    ],
)
def test_a_mistyped_code_is_explained_in_the_pages_language(web_relay, new_page, typed, german):
    page, _ = new_page(web_relay.url, locale="de-DE")
    wait_until_ready(page)
    page.locator("#receive-code").fill(typed)
    page.locator("#receive-button").click()
    expect(page.get_by_role("alert")).to_contain_text(german, timeout=STEP_TIMEOUT)


def test_a_text_over_the_limit_is_refused_in_the_pages_language_with_exact_sizes(
    web_relay, new_page
):
    page, _ = new_page(web_relay.url, locale="de-DE")
    page.get_by_label("Zu sendender Text").fill("x" * (1024 * 1024 + 1))
    wait_until_ready(page)
    page.get_by_role("button", name=GERMAN_BUTTON).click()
    expect(page.get_by_role("alert")).to_have_text(  # exact bytes: rounded, both were "1,0 MiB"
        "Der Text hat 1.048.577 Byte; höchstens 1.048.576 Byte Text passen in eine Übertragung. "
        "Senden Sie ihn stattdessen als Datei.",
        timeout=STEP_TIMEOUT,  # a 1 MiB text is measured by a busy page first
    )


def test_a_declining_receiver_of_a_link_for_two_is_reported_in_the_senders_language(
    web_relay, new_page
):
    sender, _ = new_page(web_relay.url, locale="de-DE")
    sender.get_by_label("Zu sendender Text").fill("Treffpunkt um sechs")
    wait_until_ready(sender)
    sender.get_by_label("Empfänger", exact=True).select_option("2")
    sender.get_by_role("button", name=GERMAN_BUTTON).click()
    link = sender.get_by_label("Link zum Teilen")
    expect(link).to_have_value(re.compile(r"#\d{6}-"), timeout=STEP_TIMEOUT)

    receiver, _ = new_page(link.input_value(), locale="de-DE")
    receiver.get_by_role("button", name="Ablehnen").click(timeout=PYTHON_READY_TIMEOUT)

    row = sender.locator(".receiver-row .receiver-state")
    expect(row).to_have_text(
        "Gestoppt: Der Empfänger hat die Übertragung abgelehnt.",
        timeout=PYTHON_READY_TIMEOUT + STEP_TIMEOUT,
    )


def test_german_sentences_about_a_text_agree_with_it(web_relay, new_page):
    page, _ = new_page(web_relay.url)
    page.evaluate("() => hushdrop.i18n.use('de')")
    text = {"$message": "transfer.text", "args": {"size": {"$size": 28}}}
    both = {
        "$message": "transfer.files-and-text",
        "args": {
            "files": {"$message": "files.summary", "args": {"count": 1, "size": {"$size": 9}}},
            "size": {"$size": 28},
        },
    }
    said = page.evaluate(
        """([text, both]) => [
             ["send.title.files", {summary: text}], ["receive.offer.text", {summary: text}],
             ["send.done.text", {summary: text}], ["receive.offer", {summary: both}],
           ].map(([key, args]) => hushdrop.i18n.format(key, JSON.stringify(args)))""",
        [text, both],
    )
    assert said == [
        "28 B Text werden gesendet",
        "Der Absender bietet 28 B Text an.",
        "28 B Text gesendet. Der Empfänger hat ihn erhalten.",
        "Der Absender bietet 1 Datei, 9 B und 28 B Text an:",
    ]
