"""Segment scan (recovery's inner loop: header checks, CRC of every batch, offsets, index
entries) over ~64 MiB in memory, against the CRC alone (crc32c package) and a plain copy."""

from __future__ import annotations

import crc32c

from logstore import _ffi


GROUP = "scan 64 MiB of 1 KiB-record batches"


def _scan(region, verify_crc: bool):
    state = _ffi.new_scan_state(0)
    rc = _ffi.scan_segment(region, 0, 4096, state, verify_crc=verify_crc)
    assert rc == _ffi.SCAN_END and state.position == len(region)
    return state


def test_scan_with_crc(benchmark, mark, segment_region):
    mark(GROUP, "subject")
    benchmark(_scan, segment_region, True)


def test_scan_headers_only(benchmark, mark, segment_region):
    mark(GROUP, "subject")
    benchmark(_scan, segment_region, False)


def test_scan_baseline_crc32c_package(benchmark, mark, segment_region):
    mark(GROUP, "baseline")
    benchmark(crc32c.crc32c, segment_region)


def test_scan_reference_copy(benchmark, mark, segment_region):
    """Memory bandwidth: one copy of the region into a buffer allocated (and touched) once."""
    mark(GROUP, "reference")
    target = memoryview(bytearray(len(segment_region)))

    def copy():
        target[:] = segment_region
    benchmark(copy)
