"""Properties of CRC-32C in the C core.

Goal: for any bytes, the software path, the hardware path (when the CPU has it), the dispatcher
and the `crc32c` PyPI package agree, and a running value splits anywhere.
Method: hypothesis-generated data, split points, starting values and slice alignments.
"""

from __future__ import annotations

import crc32c as oracle
from hypothesis import given, settings
from hypothesis import strategies as st

from logstore import _ffi

HW = _ffi.crc32c_hw_available()

# Long enough to cross the 3 x 256-byte lanes of the hardware path in most examples.
DATA = st.binary(min_size=0, max_size=5000)


@settings(max_examples=300, deadline=None)
@given(DATA)
def test_all_paths_agree_with_oracle(data):
    expected = oracle.crc32c(data)
    assert _ffi.crc32c_sw(data) == expected
    assert _ffi.crc32c(data) == expected
    if HW:
        assert _ffi.crc32c_hw(data) == expected


@settings(max_examples=200, deadline=None)
@given(DATA, st.integers(min_value=0, max_value=2**32 - 1))
def test_running_value_from_any_start(data, start):
    expected = oracle.crc32c(data, start)
    assert _ffi.crc32c_sw(data, start) == expected
    assert _ffi.crc32c(data, start) == expected
    if HW:
        assert _ffi.crc32c_hw(data, start) == expected


@settings(max_examples=200, deadline=None)
@given(DATA, st.data())
def test_incremental_equals_one_shot(data, draw):
    cuts = sorted(draw.draw(st.lists(st.integers(0, len(data)), max_size=5)))
    crc = 0
    previous = 0
    for cut in [*cuts, len(data)]:
        crc = _ffi.crc32c(data[previous:cut], crc)
        previous = cut
    assert crc == _ffi.crc32c(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=3000), st.integers(0, 15))
def test_alignment_does_not_matter(data, align):
    padded = memoryview(bytes(align) + data)[align:]
    assert _ffi.crc32c_sw(padded) == _ffi.crc32c(data)
    if HW:
        assert _ffi.crc32c_hw(padded) == _ffi.crc32c(data)
