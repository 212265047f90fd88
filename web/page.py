"""Page entry point run by PyScript (index.html): start the Hushdrop page driver."""

import traceback

import js

try:
    from hushdrop.page.main import main
except Exception as exc:  # a broken deployment: tell the user instead of spinning forever
    js.console.error(traceback.format_exc())
    js.hushdrop.engineFailed(repr(exc))
else:
    await main()  # PyScript runs page scripts with top-level await
