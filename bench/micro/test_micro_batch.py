"""Building a batch of 1000 records (C gather encoder + CRC into a reused buffer) against
b"".join of the same values (what any writer of those records must at least do)."""

from __future__ import annotations

import pytest

from logstore import record_batch



@pytest.fixture(scope="module", params=["100 B", "1 KiB"])
def values(request, values_100, values_1k):
    return request.param, values_100 if request.param == "100 B" else values_1k


def test_build_batch_into_scratch(benchmark, mark, values):
    label, vals = values
    mark(f"build 1000 × {label}", "subject")
    scratch = bytearray(2 << 20)
    view = benchmark(record_batch.build_batch, vals, out=scratch)
    assert record_batch.RecordBatch(view).records_count == len(vals)


def test_build_batch_new_buffer(benchmark, mark, values):
    label, vals = values
    mark(f"build 1000 × {label}", "subject")
    benchmark(record_batch.build_batch, vals)


def test_build_baseline_join(benchmark, mark, values):
    label, vals = values
    mark(f"build 1000 × {label}", "baseline")
    benchmark(b"".join, vals)


def test_decode_records(benchmark, mark, values):
    label, vals = values
    mark(f"decode 1000 × {label}", "subject")
    batch = record_batch.RecordBatch(record_batch.build_batch(vals))
    assert len(benchmark(batch.records)) == len(vals)


def test_decode_baseline_split(benchmark, mark, values):
    """The strongest simple decode of fixed-size records: slice a bytes object."""
    label, vals = values
    mark(f"decode 1000 × {label}", "baseline")
    data = b"".join(vals)
    size = len(vals[0])

    def split():
        return [data[i:i + size] for i in range(0, len(data), size)]
    benchmark(split)
