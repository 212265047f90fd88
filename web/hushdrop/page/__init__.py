"""The browser page (Pyodide): drives the same sender and receiver sessions as the CLI.

Modules: `main` (start-up, routing), `send` and `receive` (the drivers, mirroring
`hushdrop.cli.send`/`receive`), `files` (the selection kept by app.js), `download` (what is saved:
one file or a streamed zip), `jsbridge` (download sinks), `ui` (the DOM), and the pure helpers
`humanize`, `links` and `context`. `download`, `humanize`, `links` and `context` import no `js`
and run under CPython too.
"""
