"""The page steps of pagetools.py for browsers driven through W3C WebDriver instead of Playwright:
Firefox over WebDriver BiDi (firefox_bidi.py) and WebKitGTK over classic WebDriver
(webkit_webdriver.py). Both hand out a `Tab`, one person's page, and every helper here works on
any Tab, finding things by their labels and button names as a person (or a screen reader) would.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
from pagetools import PYTHON_READY_TIMEOUT, STEP_TIMEOUT, TRANSFER_TIMEOUT

# Seconds, from pagetools' Playwright milliseconds.
READY_S = PYTHON_READY_TIMEOUT / 1000
STEP_S = STEP_TIMEOUT / 1000
TRANSFER_S = TRANSFER_TIMEOUT / 1000
POLL_S = 0.2


class PageScriptError(Exception):
    """A script run in the page threw, or a finder found no element."""


@dataclass(frozen=True)
class Download:
    """One finished browser download: where it was saved, and why it failed (None: it did not)."""

    path: Path | None
    suggested_filename: str
    failure: str | None


class Tab(Protocol):
    """One person's page in a browser driven through WebDriver."""

    engine: str  # "firefox" or "webkit"
    console: list[str]  # console messages, where the protocol reports them

    def goto(self, url: str) -> None: ...

    def call(self, function: str, *args: Any) -> Any:
        """Run a JavaScript function (source text) with JSON arguments; its awaited JSON result."""

    def click(self, finder: str, *args: Any) -> None:
        """Click, with the engine's pointer input, the element `finder(*args)` returns."""

    def set_files(self, paths: list[Path], finder: str, *args: Any) -> None:
        """Choose files in the file input `finder(*args)` returns, as the file dialog would."""

    def next_download(self, timeout: float) -> Download:
        """The next download this tab finished (saved or failed)."""

    def close(self) -> None: ...


def ensure_program(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run `make test` (it installs the browsers).")
    return path


# Prepended to every finder: the element a person means by a button's name or a field's label.
_FIND = """
const visible = (el) => Boolean(el && el.isConnected && !el.closest("[hidden]")
  && el.getClientRects().length);
const words = (text) => (text || "").replace(/\\s+/g, " ").trim();
const button = (name) => [...document.querySelectorAll("button")].find(
  (b) => visible(b) && words(b.getAttribute("aria-label") || b.textContent) === name) || null;
const labelled = (text) => {
  for (const label of document.querySelectorAll("label")) {
    if (words(label.textContent) === text && label.control) return label.control;
  }
  return [...document.querySelectorAll("[aria-label]")].find(
    (el) => el.getAttribute("aria-label") === text) || null;
};
"""
BUTTON = f"(name) => {{ {_FIND} return button(name); }}"
LABELLED = f"(text) => {{ {_FIND} return labelled(text); }}"


def wait_for(tab: Tab, function: str, *args: Any, timeout: float, what: str) -> Any:
    """Poll `function(*args)` in the page until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = tab.call(function, *args)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{tab.engine}: {what} (waited {timeout:.0f} s)\n{describe(tab)}")
        time.sleep(POLL_S)


def describe(tab: Tab) -> str:
    """What the page shows and logged, for a failure message."""
    try:
        text = tab.call("() => document.body.innerText")
    except Exception as error:  # the page is gone: say so rather than hide the real failure
        text = f"(page text unavailable: {error})"
    return f"--- page text ---\n{text}\n--- console ---\n" + "\n".join(tab.console[-40:])


def expect_text(tab: Tab, text: str, timeout: float = STEP_S) -> None:
    """`text` is shown (part of the page's rendered text)."""
    wait_for(
        tab,
        "(text) => document.body.innerText.includes(text)",
        text,
        timeout=timeout,
        what=f"{text!r} never showed",
    )


def expect_sent(tab: Tab, summary: str) -> None:
    expect_text(tab, f"Sent {summary}", TRANSFER_S)


def expect_received(tab: Tab, summary: str) -> None:
    expect_text(tab, f"Received {summary}", TRANSFER_S)


def wait_until_ready(tab: Tab) -> None:
    """Python has started: the button that needs it is enabled ("Create link" also needs
    files)."""
    wait_for(
        tab,
        "() => { const b = document.getElementById('receive-button'); return b && !b.disabled; }",
        timeout=READY_S,
        what="the secure engine never became ready",
    )


def fill(tab: Tab, label: str, value: str) -> None:
    tab.call(
        f"""(label, value) => {{ {_FIND}
          const field = labelled(label);
          field.focus();
          field.value = value;
          field.dispatchEvent(new Event("input", {{bubbles: true}}));
          field.dispatchEvent(new Event("change", {{bubbles: true}}));
        }}""",
        label,
        value,
    )


def create_link(
    tab: Tab, files: list[Path], password: str | None = None, short_code: bool = False
) -> tuple[str, str]:
    """Choose files, create the link; return (share link, typed code): the typed code only with
    `short_code` (the page shows it, and accepts it, only when asked), else ""."""
    tab.set_files(files, LABELLED, "Choose files")
    if password:
        fill(tab, "Password", password)
    wait_until_ready(tab)
    tab.click(BUTTON, "Create link")
    link = wait_for(
        tab,
        f"""() => {{ {_FIND}
          const field = labelled("Share link");
          return field && /#\\d{{6}}-/.test(field.value) ? field.value : null;
        }}""",
        timeout=STEP_S,
        what="no share link appeared",
    )
    if not short_code:
        return link, ""
    tab.click(BUTTON, "Show a short code")
    code = tab.call("() => document.querySelector('code.code').textContent")
    return link, code


def verification_code(tab: Tab) -> str:
    """The verification code the page shows, once it shows one (`FD79-FDBB`)."""
    return wait_for(
        tab,
        f"""() => {{ {_FIND}
          const text = (labelled("Verification code") || {{}}).textContent || "";
          return /^[0-9A-F]{{4}}-[0-9A-F]{{4}}$/.test(text) ? text : null;
        }}""",
        timeout=STEP_S,
        what="no verification code showed",
    )


def shows_button(tab: Tab, name: str) -> bool:
    return tab.call(f"(name) => {{ {_FIND} return Boolean(button(name)); }}", name)


def wait_for_offer(tab: Tab) -> None:
    """The offer shows, with its Download button."""
    wait_for(
        tab,
        f"(name) => {{ {_FIND} return Boolean(button(name)); }}",
        "Download",
        timeout=READY_S,
        what="the offer's Download button never showed",
    )


def accept_download(tab: Tab) -> Download:
    """Click Download once the offer shows; the browser download, once the page says it ended."""
    wait_for_offer(tab)
    tab.click(BUTTON, "Download")
    ended = wait_for(
        tab,
        """() => {
          const alert = document.querySelector("[role=alert]").textContent.trim();
          return alert ? `alert: ${alert}` : document.body.innerText.includes("Received ");
        }""",
        timeout=TRANSFER_S,
        what="the transfer never ended",
    )
    assert ended is True, f"{ended}\n{describe(tab)}"
    download = tab.next_download(STEP_S)
    assert download.failure is None, f"{download.failure}\n{describe(tab)}"
    assert download.path is not None and download.path.is_file(), download
    return download
