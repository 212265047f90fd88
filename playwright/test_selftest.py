"""The core's known-answer tests run inside Chromium against the WebCrypto backend."""

from __future__ import annotations

import re

from pagetools import PYTHON_READY_TIMEOUT
from playwright.sync_api import expect


def test_all_known_answer_vectors_pass_with_webcrypto(web_relay, new_page):
    page, log = new_page(f"{web_relay.url}/selftest.html")
    summary = page.locator("#summary")
    expect(summary).to_have_text(
        re.compile(r"^\d+ passed, \d+ failed$"), timeout=PYTHON_READY_TIMEOUT
    )
    passed, failed = map(int, re.findall(r"\d+", summary.inner_text()))
    failures = [row for row in page.locator("#results td").all_inner_texts() if "FAIL" in row]
    assert failed == 0, failures
    assert passed >= 150, f"too few known-answer tests ran ({passed})\n{log}"
    assert page.locator("body").get_attribute("data-selftest") == "pass"
