"""The gather encoder (csrc/pyobjects.c): C reads keys and values straight from Python lists of
bytes, holding the GIL. Method: compare with the copying path byte for byte, check the fallback
for other item types, and mutate the list from another thread while batches are built."""

from __future__ import annotations

import threading

from hypothesis import given
from hypothesis import strategies as st

from logstore import _ffi, record_batch

NOW = 1_700_000_000_000
fields = st.lists(st.one_of(st.none(), st.binary(max_size=300)), min_size=1, max_size=50)


def copying(values, keys, **kw):
    """Force the copying path: bytearray items are not taken by the gather encoder."""
    values = [None if v is None else bytearray(v) for v in values]
    keys = None if keys is None else [None if k is None else bytearray(k) for k in keys]
    return record_batch.build_batch(values, keys, now_ms=NOW, **kw)


@given(fields, st.booleans(), st.sampled_from([0, 1, 2, 3, 4]))
def test_gather_and_copy_paths_build_identical_batches(values, with_keys, codec):
    keys = [bytes(reversed(v)) if v else None for v in values] if with_keys else None
    gathered = record_batch.build_batch(values, keys, now_ms=NOW, compression=codec)
    assert _ffi.sequences_size(keys, values, len(values)) is not None   # really the fast path
    if codec in (0, 4, 3):  # deterministic codecs: compare bytes; others compare records
        assert bytes(gathered) == bytes(copying(values, keys, compression=codec))
    records = record_batch.RecordBatch(gathered).records()
    assert [r.value for r in records] == values
    assert [r.key for r in records] == (keys or [None] * len(values))


def test_tuples_and_scratch_output_work_too():
    values = (b"a", b"bb", None)
    scratch = bytearray(16)                       # too small: grown on demand
    view = record_batch.build_batch(values, now_ms=NOW, out=scratch)
    assert isinstance(view, memoryview)
    assert bytes(view) == bytes(copying(list(values), None))
    assert len(scratch) >= len(view)


def test_other_item_types_fall_back_to_the_copying_path():
    values = [b"a", memoryview(b"bc"), bytearray(b"d")]
    assert _ffi.sequences_size(None, values, 3) is None
    batch = record_batch.build_batch(values, now_ms=NOW)
    assert [r.value for r in record_batch.RecordBatch(batch).records()] == [b"a", b"bc", b"d"]


def test_wrong_types_still_get_a_clear_error():
    import pytest
    with pytest.raises(TypeError, match="value 1"):
        record_batch.build_batch([b"a", 5], now_ms=NOW)


def test_mutating_the_list_from_another_thread_is_safe():
    values = [b"x" * 100 for _ in range(2000)]
    stop = threading.Event()

    def mutate():
        while not stop.is_set():
            values.append(b"y")
            values.pop()
            values[0] = b"z" * 50
            values[0] = b"x" * 100
    thread = threading.Thread(target=mutate)
    thread.start()
    try:
        for _ in range(300):
            try:
                batch = record_batch.build_batch(values, now_ms=NOW)
            except ValueError:
                continue                  # the length changed between len() and the build
            record_batch.RecordBatch(batch).validate()
    finally:
        stop.set()
        thread.join()
