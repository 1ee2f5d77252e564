"""CRC-32C: the C core's hardware (SSE4.2) and software paths, against the `crc32c` package
(a C extension with its own SSE4.2 path) and zlib.crc32 (a different polynomial, same job)."""

from __future__ import annotations

import zlib

import crc32c
import pytest

from logstore import _ffi


SIZES = {"100 B": 100, "1 MiB": 1 << 20}


@pytest.fixture(scope="module", params=list(SIZES))
def data(request, rng):
    return request.param, rng.randbytes(SIZES[request.param])


def test_crc_hw(benchmark, mark, data):
    label, buf = data
    if not _ffi.crc32c_hw_available():
        pytest.skip("no SSE4.2 on this CPU")
    mark(f"crc32c {label}", "subject")
    assert benchmark(_ffi.crc32c_hw, buf) == crc32c.crc32c(buf)


def test_crc_sw(benchmark, mark, data):
    label, buf = data
    mark(f"crc32c {label}", "subject")
    assert benchmark(_ffi.crc32c_sw, buf) == crc32c.crc32c(buf)


def test_crc_dispatching(benchmark, mark, data):
    label, buf = data
    mark(f"crc32c {label}", "subject")
    assert benchmark(_ffi.crc32c, buf) == crc32c.crc32c(buf)


def test_crc_baseline_crc32c_package(benchmark, mark, data):
    label, buf = data
    mark(f"crc32c {label}", "baseline")
    benchmark(crc32c.crc32c, buf)


def test_crc_reference_zlib_crc32(benchmark, mark, data):
    label, buf = data
    mark(f"crc32c {label}", "reference")
    benchmark(zlib.crc32, buf)
