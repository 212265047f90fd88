"""The receiver's check that padding is zeros (PROTOCOL.md §6, §7.1)."""

from __future__ import annotations

import pytest
from hushdrop.protocol.padding import all_zeros


@pytest.mark.parametrize("size", [0, 1, 65535, 65536, 65537, 3 * 1024 * 1024 + 5])
def test_zero_padding_of_any_length_is_accepted(size):
    assert all_zeros(memoryview(bytearray(size)))


@pytest.mark.parametrize("where", [0, 65535, 65536, 1024 * 1024, 3 * 1024 * 1024 + 4])
def test_one_nonzero_byte_anywhere_in_the_padding_is_found(where):
    padding = bytearray(3 * 1024 * 1024 + 5)
    padding[where] = 0x80
    assert not all_zeros(memoryview(padding))
