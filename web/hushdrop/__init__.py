"""Hushdrop: end-to-end encrypted file transfer.

The package is shared by the command-line client (CPython) and the browser client (Pyodide). Only
`hushdrop.cli` and `hushdrop.transport` and `hushdrop.crypto.pyca` are CPython-only; everything in
`hushdrop.protocol` and the rest of `hushdrop.crypto` runs unchanged in both runtimes.
"""

__version__ = "0.1.0"
