"""The browser page's engine (Pyodide, in a Web Worker): drives the same sender and receiver
sessions as the CLI.

Modules: `main` (start-up, routing what the user asks for), `send` and `receive` (the drivers,
mirroring `hushdrop.cli.send`/`receive`), `send_link` (a link's several receivers, one row each),
`options` (the link options: lifetime and receivers), `files` (the selection the page handed
over), `download` (what is saved: one file or a zip streamed on the fly), `jsbridge` (download
sinks in engine-worker.js), `ui` (the page's interface, driven by operations posted to it), and
the pure helpers `humanize`, `links` and `context`. `download`,
`humanize`, `links` and `context` import no `js` and also run (and are tested) under CPython.
"""
