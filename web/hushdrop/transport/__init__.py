"""Transports that move protocol messages between a peer and the relay (CPython, asyncio)."""
