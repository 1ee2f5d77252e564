"""Fixtures of the crash tests: no fault and no power-cut journal outlives a test.

The fault table and the journal are process-wide (csrc/io.c, csrc/io_journal.c); a test that
fails halfway would otherwise leave the next test with a disk that is "dead" or recorded.
"""

from __future__ import annotations

import pytest

from logstore import _ffi


@pytest.fixture(autouse=True)
def clean_io_table():
    _ffi.io_fault_clear()
    _ffi.io_journal_stop()
    yield
    _ffi.io_fault_clear()
    _ffi.io_journal_stop()
