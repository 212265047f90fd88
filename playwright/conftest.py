"""Browser-test fixtures: a freshly built site, a real relay, and three engines from Debian's
packages: Chromium via Playwright; Firefox over WebDriver BiDi and WebKitGTK over WebDriver
(`open_tab`, see enginetools.py).

Never downloads a browser: the browsers come from the system (`make test` installs the Debian
packages when they are missing). Every Chromium page's console errors and failed requests are
collected so a test can show them when it fails. Every browser, driver, X server and CLI process a
test starts is stopped at its end, whatever happened.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.conftest import REPO_ROOT, RelayProcess

sys.path.insert(0, str(REPO_ROOT / "web"))
import build_site  # web/build_site.py
from enginetools import Tab
from firefox_bidi import Firefox
from pagetools import CHROMIUM_FLAGS
from webkit_webdriver import WebKit, Xvfb

from tests.integration.cli import CliProcess


def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("Debian's chromium is not installed: run `make test` (it installs it).")
    return path


RESUME_WINDOW = 8


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The static site built from the current sources, as `make site` would.

    Pages give up reconnecting after RESUME_WINDOW seconds instead of minutes, so a closed tab
    that could not say goodbye ends the other page's transfer within a test's patience.
    """
    out = build_site.build(tmp_path_factory.mktemp("site") / "site")
    config_path = out / "config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "resumeWindow": RESUME_WINDOW}))
    return out


@pytest.fixture(scope="session")
def web_relay(site: Path) -> Iterator[RelayProcess]:
    """One relay process serving the built site for the whole browser session."""
    process = RelayProcess(["--site-dir", str(site)])
    process.wait_ready()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        yield instance
        instance.close()


class PageLog:
    """Console messages and failed requests of one page, for assertions and failure output."""

    def __init__(self, page: Page) -> None:
        self.console: list[str] = []
        self.failed: list[str] = []
        self.requests: list[str] = []
        page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        page.on("requestfailed", lambda r: self.failed.append(f"{r.url} {r.failure}"))
        page.on("request", lambda r: self.requests.append(r.url))

    def __str__(self) -> str:
        return "\n".join(self.console + ["failed: " + f for f in self.failed])


NewPage = Callable[..., tuple[Page, PageLog]]


@pytest.fixture
def new_page(browser: Browser) -> Iterator[NewPage]:
    """Open a page in a fresh browser context (separate storage, like another person)."""
    contexts: list[BrowserContext] = []

    def open_page(url: str | None = None, **context_options) -> tuple[Page, PageLog]:
        # English unless a test asks for another language, whatever the machine's locale.
        context_options.setdefault("locale", "en-US")
        context = browser.new_context(accept_downloads=True, **context_options)
        contexts.append(context)
        page = context.new_page()
        log = PageLog(page)
        if url is not None:
            page.goto(url)
        return page, log

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture(scope="session")
def firefox() -> Iterator[Firefox]:
    """One Firefox for the session; each person gets a user context of their own."""
    instance = Firefox()
    yield instance
    instance.stop()


@pytest.fixture(scope="session")
def webkit() -> Iterator[WebKit]:
    """A private X server for the session; each person gets a MiniBrowser of their own on it."""
    display = Xvfb()
    try:
        instance = WebKit(display.display)
        yield instance
        instance.stop()
    finally:
        display.stop()


OpenTab = Callable[..., Tab]


@pytest.fixture
def open_tab(request: pytest.FixtureRequest) -> Iterator[OpenTab]:
    """`open_tab("firefox" | "webkit", url=None)`: a page for a new person in that engine."""
    tabs: list[Tab] = []

    def open_(engine: str, url: str | None = None) -> Tab:
        tab = request.getfixturevalue(engine).person()
        tabs.append(tab)
        if url is not None:
            tab.goto(url)
        return tab

    yield open_
    for tab in tabs:
        tab.close()


@pytest.fixture
def processes() -> Iterator[list[CliProcess]]:
    """CLI processes started by a test; all stopped at its end, whatever happened."""
    started: list[CliProcess] = []
    yield started
    for process in started:
        process.stop()
