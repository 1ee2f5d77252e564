"""Fuzzing every decoder of bytes that can come from disk or a client.

Goal: any input gives a clear error (a logstore/Kafka-named exception: LogstoreError) or a
result, never a crash of the process, a hang, or a stray IndexError/struct.error/ValueError.
Method: hypothesis generates random bytes and, more usefully, valid encodings with bytes
flipped, cut, repeated or spliced; the decoders run on them. The C decoders also run under
ASan/UBSan in `make test-asan`, which turns any out-of-bounds read into a failure.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from logstore import _ffi, check, checkpoint, compression, record_batch
from logstore.errors import LogstoreError
from logstore.log import CLEAN_SHUTDOWN_FILE
from logstore.store import META_FILE, TOPICS_FILE, LogStore
from txn import consumer_protocol, offsets_log, txn_log
from txn.producer_state import ProducerStateEntry, decode_snapshot, encode_snapshot

FUZZ = settings(max_examples=300, deadline=None)


@st.composite
def mutated(draw, valid: bytes):
    """A valid encoding damaged the ways disks and networks damage bytes."""
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "extend", "splice", "zero"]))
        if kind == "flip" and data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "cut" and data:
            data = data[: draw(st.integers(0, len(data) - 1))]
        elif kind == "extend":
            data += draw(st.binary(min_size=1, max_size=40))
        elif kind == "splice" and data:
            i = draw(st.integers(0, len(data)))
            data[i:i] = draw(st.binary(min_size=1, max_size=12))
        elif kind == "zero" and data:
            i = draw(st.integers(0, len(data) - 1))
            data[i: i + draw(st.integers(1, 8))] = bytes(min(8, len(data) - i))
    return bytes(data)


def batch_bytes(codec: int) -> bytes:
    return bytes(record_batch.build_batch(
        [b"value-%d" % i for i in range(5)], [b"k%d" % i for i in range(5)],
        headers=[[("h", b"v"), ("n", None)]] * 5, compression=codec, producer_id=7,
        producer_epoch=1, base_sequence=3, now_ms=1_700_000_000_000))


BATCHES = [batch_bytes(c) for c in range(5)]
SEGMENT = b"".join(bytes(record_batch.build_batch([b"x" * (i + 1)], base_offset=i,
                                                  now_ms=1_700_000_000_000 + i))
                   for i in range(20))


def decode_everything(data: bytes) -> None:
    """Every way a reader may look at a record batch."""
    for batch in record_batch.iter_batches(data):
        batch.is_valid()
        batch.records()
        if batch.is_control:
            batch.control_record()


@FUZZ
@given(st.one_of(st.binary(max_size=300),
                 *[mutated(b) for b in BATCHES]))
def test_record_batch_decoders(data):
    for check in (decode_everything,
                  lambda d: record_batch.validate_for_append(bytearray(d), 1 << 20)):
        try:
            check(data)
        except LogstoreError:
            pass


@FUZZ
@given(st.one_of(st.binary(max_size=500), mutated(SEGMENT)))
def test_segment_scanner_stops_cleanly(data):
    state = _ffi.new_scan_state(0)
    index = bytearray(8 * 8)
    times = bytearray(12 * 8)
    infos = _ffi.new_batch_infos(8)
    for _ in range(100):                           # bounded: each call consumes or stops
        rc = _ffi.scan_segment(data, 0, 16, state, index_out=index, time_index_out=times,
                               infos=infos, infos_cap=8)
        if rc != _ffi.SCAN_OUTPUT_FULL:
            break
        index = bytearray(8 * 8)
        times = bytearray(12 * 8)
    assert 0 <= state.position <= len(data)
    assert state.error == 0 or state.position < len(data) or len(data) == 0
    for start in (0, len(data) // 2):
        for read in (lambda: _ffi.find_offset(data, start, 5),
                     lambda: _ffi.find_timestamp(data, start, 1_700_000_000_005),
                     lambda: _ffi.read_extent(data, start, 100, 1 << 40)):
            try:
                read()
            except LogstoreError:
                pass


@FUZZ
@given(st.binary(max_size=400), st.integers(-5, 1 << 40), st.integers(-5, 1 << 40))
def test_index_readers(data, target, upper):
    for size, lookup in ((8, lambda raw, n: _ffi.offset_index_lookup(raw, n, 0, target)),
                         (12, lambda raw, n: _ffi.time_index_lookup(raw, n, 0, target))):
        n = len(data) // size
        lookup(data[: n * size], n)
    _ffi.offset_index_check(data[: len(data) // 8 * 8], len(data) // 8, 1 << 20)
    _ffi.time_index_check(data[: len(data) // 12 * 12], len(data) // 12)
    try:
        _ffi.txn_index_collect(data[: len(data) // 34 * 34], target, upper)
    except LogstoreError:
        pass
    _ffi.txn_index_check(data[: len(data) // 34 * 34], 0)


SNAPSHOT = bytes(encode_snapshot([ProducerStateEntry(7, 1, 2, 1_700_000_000_000, -1),
                                   ProducerStateEntry(9, 0, 0, 1_700_000_000_001, 40)]))


@FUZZ
@given(st.one_of(st.binary(max_size=200), mutated(SNAPSHOT)))
def test_snapshot_reader(data):
    try:
        decode_snapshot(data)
    except LogstoreError:
        pass


def _txn_value(version: int) -> bytes:
    return txn_log.encode_value(txn_log.TransactionLogValue(
        5, 2, 60000, 1, txn_log.group_partitions([("orders", 0), ("orders", 1)]), 1, 1),
        version)


TXN_VALUE_V0, TXN_VALUE_V1 = _txn_value(0), _txn_value(1)


@FUZZ
@given(st.one_of(st.binary(max_size=120), mutated(TXN_VALUE_V0), mutated(TXN_VALUE_V1),
                 mutated(txn_log.encode_key("order-service"))))
def test_transaction_log_readers(data):
    for decode in (txn_log.decode_key, txn_log.decode_value):
        try:
            decode(data)
        except LogstoreError:
            pass


OFFSET_KEY = offsets_log.encode_offset_commit_key("group", "orders", 3)
OFFSET_VALUE = offsets_log.encode_offset_commit_value(
    offsets_log.OffsetCommitValue(offset=42, metadata="m", commit_timestamp=1))


@FUZZ
@given(st.one_of(st.binary(max_size=120), mutated(OFFSET_KEY), mutated(OFFSET_VALUE)))
def test_offsets_log_readers(data):
    for decode in (offsets_log.decode_key, offsets_log.decode_offset_commit_value):
        try:
            decode(data)
        except LogstoreError:
            pass


SUBSCRIPTION = consumer_protocol.encode_subscription(
    consumer_protocol.Subscription(topics=["a", "b"], user_data=b"u"))
ASSIGNMENT = consumer_protocol.encode_assignment(
    consumer_protocol.Assignment(partitions=[("a", 0), ("b", 1)], user_data=b""))


@FUZZ
@given(st.one_of(st.binary(max_size=120), mutated(SUBSCRIPTION), mutated(ASSIGNMENT)))
def test_consumer_protocol_readers(data):
    for decode in (consumer_protocol.decode_subscription, consumer_protocol.decode_assignment):
        try:
            decode(data)
        except LogstoreError:
            pass


COMPRESSED = {codec: compression.compress(codec, b"hello fuzz " * 40) for codec in (1, 2, 3, 4)}


@FUZZ
@given(st.sampled_from([1, 2, 3, 4]), st.data())
def test_decompressors(codec, data):
    payload = data.draw(st.one_of(st.binary(max_size=200), mutated(COMPRESSED[codec])))
    try:
        compression.decompress(codec, payload, 1 << 16)
    except LogstoreError:
        pass


@FUZZ
@given(st.text(max_size=200))
def test_checkpoint_parser(text):
    try:
        checkpoint.parse_checkpoint(text)
    except LogstoreError:
        pass


CHECKPOINT = checkpoint.format_checkpoint({("orders", 0): 42, ("orders", 1): 7})


@FUZZ
@given(st.one_of(st.binary(max_size=120), mutated(CHECKPOINT)))
def test_checkpoint_reader_on_any_bytes(tmp_path_factory, data):
    """Regression: bytes that are not UTF-8 escaped as UnicodeDecodeError, not as the
    CorruptCheckpoint that makes the store recover everything."""
    path = tmp_path_factory.getbasetemp() / "checkpoint-fuzz"
    path.write_bytes(data)
    try:
        checkpoint.read_checkpoint(str(path))
    except LogstoreError:
        pass


STORE_FILES = {
    TOPICS_FILE: b'{"orders": {"config": {"retention.ms": 1000}, "partitions": 2, '
                 b'"topic_id": "Zm9vYmFyYmF6cXV4MTIzNA"}}',
    META_FILE: b"version=1\ncluster.id=Zm9vYmFyYmF6cXV4MTIzNA\nnode.id=0\n"}


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(sorted(STORE_FILES)), st.data())
def test_store_metadata_readers(tmp_path_factory, name, data):
    """Regression: a topics.json that was not a JSON object of topics, or a meta.properties
    that was not UTF-8, escaped the store as JSONDecodeError, AttributeError, KeyError or
    UnicodeDecodeError, and the checker crashed on a JSON list; a topic with an impossible
    partition count was accepted (an unclean open would create every directory)."""
    root = tmp_path_factory.mktemp("store")
    (root / CLEAN_SHUTDOWN_FILE).write_bytes(b"")
    (root / name).write_bytes(data.draw(st.one_of(st.binary(max_size=120),
                                                  mutated(STORE_FILES[name]))))
    try:
        LogStore(str(root), background=False).close()
    except LogstoreError:
        pass
    check.check(str(root))                   # problems are reported, never raised
