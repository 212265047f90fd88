"""The Hushdrop protocol as I/O-free state machines: codes, framing, handshake, transfer."""
