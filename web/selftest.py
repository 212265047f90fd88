"""Self-test page: the known-answer tests of hushdrop.crypto.kat against the WebCrypto backend."""

import json

from hushdrop.crypto.kat import run_known_answer_tests
from hushdrop.crypto.webcrypto import WebCryptoBackend
from pyodide.http import pyfetch
from pyscript import document


async def load_vectors() -> dict[str, object]:
    names = await (await pyfetch("selftest/vectors/index.json")).json()
    vectors = {}
    for name in names:
        response = await pyfetch(f"selftest/vectors/{name}")
        vectors[name.removesuffix(".json")] = json.loads(await response.string())
    return vectors


async def main() -> None:
    summary = document.getElementById("summary")
    try:
        results = await run_known_answer_tests(WebCryptoBackend(), await load_vectors())
    except Exception as exc:  # shown on the page: this is a diagnostic tool
        summary.textContent = f"Self-test could not run: {exc!r}"
        document.body.dataset.selftest = "error"
        raise
    body = document.querySelector("#results tbody")
    for name, passed, detail in results:
        row = document.createElement("tr")
        for text in (name, "pass" if passed else f"FAIL: {detail}"):
            cell = document.createElement("td")
            cell.textContent = text
            row.append(cell)
        body.append(row)
    failed = sum(1 for _, passed, _ in results if not passed)
    summary.textContent = f"{len(results) - failed} passed, {failed} failed"
    document.body.dataset.selftest = "pass" if failed == 0 and results else "fail"


await main()  # PyScript runs page scripts with top-level await
