"""The browser page (Pyodide): drives the same sender and receiver sessions as the CLI.

Modules: `main` (start-up, routing what the user asks for), `send` and `receive` (the drivers,
mirroring `hushdrop.cli.send`/`receive`), `send_link` (a link's several receivers, one row each),
`options` (the link options: lifetime and receivers), `files` (the selection kept by app.js),
`download` (what is saved: one file or a zip streamed on the fly), `jsbridge` (download sinks
in app.js), `ui` (the DOM), and the pure helpers `humanize`, `links` and `context`. `download`,
`humanize`, `links` and `context` import no `js` and also run (and are tested) under CPython.
"""
