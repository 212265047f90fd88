"""Cryptography: the backend interface, CPace, C2SP chunked encryption and HKDF."""
