"""RecordBatch.records() builds Record objects in C; records_python() decodes through numpy
columns in Python. Both must agree on arbitrary batches of every codec and timestamp type."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from logstore import record_batch

header_lists = st.lists(st.tuples(st.text(max_size=8), st.one_of(st.none(), st.binary(max_size=8))),
                        max_size=3)


@given(st.lists(st.tuples(st.one_of(st.none(), st.binary(max_size=60)),
                          st.one_of(st.none(), st.binary(max_size=200)), header_lists,
                          st.integers(-10_000, 10_000)), min_size=1, max_size=60),
       st.sampled_from([0, 1, 2, 3, 4]), st.sampled_from([0, 1]), st.integers(0, 2**40))
def test_c_object_builder_agrees_with_the_python_decoder(rows, codec, ts_type, base_offset):
    keys = [r[0] for r in rows]
    values = [r[1] for r in rows]
    headers = [r[2] for r in rows]
    timestamps = [1_700_000_000_000 + r[3] for r in rows]
    batch = record_batch.RecordBatch(record_batch.build_batch(
        values, keys, headers, timestamps, compression=codec, timestamp_type=ts_type,
        base_offset=base_offset, now_ms=1_800_000_000_000))
    built = batch.records()
    assert built == batch.records_python()
    assert [r.value for r in built] == values and [r.key for r in built] == keys
    assert [r.headers for r in built] == headers
    assert [r.offset for r in built] == list(range(base_offset, base_offset + len(rows)))
    expected_ts = [1_800_000_000_000] * len(rows) if ts_type else timestamps
    assert [r.timestamp for r in built] == expected_ts
