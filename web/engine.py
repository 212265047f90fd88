"""The engine worker's entry point, run by PyScript in the worker index.html asks it for
(`<script type="py" worker name="engine">`): start the Hushdrop engine.

PyScript has imported engine-worker.js here already (pyscript.json's js_modules.worker): it set up
`js.hushdrop`, the engine's interface to the page.
"""

import traceback

import js

try:
    from hushdrop.page.main import main
except Exception as exc:  # a broken deployment: tell the user instead of spinning forever
    js.console.error(traceback.format_exc())
    js.hushdrop.engineFailed(repr(exc))
else:
    await main()  # PyScript runs a worker's script with top-level await too
