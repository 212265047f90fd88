"""Constants and helpers shared by the browser tests (imported by name: pytest puts this folder on
sys.path; the folder has no __init__.py so it never shadows the `playwright` package)."""

from __future__ import annotations

PYTHON_READY_TIMEOUT = 90_000  # ms; a cold Pyodide start on a loaded 2-core machine
