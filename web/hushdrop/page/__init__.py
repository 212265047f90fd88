"""The browser page: drives the sender and receiver sessions from the DOM (Pyodide only)."""
