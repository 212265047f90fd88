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


async def key_material_check(backend: WebCryptoBackend) -> tuple[str, bool, str]:
    """Imported keys are non-extractable; the backend must not keep their raw bytes either,
    nor a handle for every key it ever saw."""
    keys = [backend.random_bytes(32) for _ in range(40)]
    for key in keys:
        await backend.seal(key, bytes(12), b"x")
        await backend.hmac_sha512(key, b"x")
    held = backend.held_key_material()
    leaked = sum(1 for key in keys if any(key in item for item in held))
    passed = leaked == 0 and len(held) <= 16
    return "WebCrypto keeps no raw key material", passed, f"{leaked} raw keys, {len(held)} held"


async def main() -> None:
    summary = document.getElementById("summary")
    try:
        backend = WebCryptoBackend()
        results = await run_known_answer_tests(backend, await load_vectors())
        results.append(await key_material_check(backend))
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
