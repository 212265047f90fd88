"""`hushdrop send -` reads standard input on a thread of its own (cli/standard_input.py)."""

from __future__ import annotations

import asyncio
import errno
import os

import pytest
from hushdrop.cli.standard_input import StandardInput


def test_a_read_cancelled_while_the_producer_is_idle_keeps_its_bytes_for_the_next():
    async def scenario() -> None:
        read_end, write_end = os.pipe()
        with open(read_end, "rb", buffering=0) as pipe:
            source = StandardInput(pipe)
            waiting = asyncio.ensure_future(source.read(5))
            await asyncio.sleep(0.05)  # the reader thread now blocks on the idle pipe
            assert not waiting.done()  # and the event loop still runs
            waiting.cancel()
            os.write(write_end, b"hello, world")
            assert bytes(await source.read(5)) == b"hello"
            assert bytes(await source.read(5)) == b", wor"
            os.close(write_end)
            assert bytes(await source.read(5)) == b"ld"
            assert bytes(await source.read(5)) == b""

    asyncio.run(scenario())


class FailingInput:
    """An input whose reading fails, as a terminal that went away does (EIO)."""

    def readinto(self, buffer) -> int:
        raise OSError(errno.EIO, "Input/output error")


def test_a_read_error_reaches_the_caller():
    async def scenario() -> None:
        with pytest.raises(OSError) as raised:
            await StandardInput(FailingInput()).read(5)
        assert raised.value.errno == errno.EIO

    asyncio.run(scenario())
