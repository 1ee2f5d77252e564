"""The `logstore` command line: topics, produce, consume, dump, verify, recover, errors.

Method: most tests call `logstore.cli.main(argv)` in-process with stdin, stdout and stderr
replaced by byte buffers; the error-format, console-script and lock tests run the installed
console script (`.venv/bin/logstore`) in a real subprocess. Data is checked through the storage
API (LogStore, Log), not only through the CLI's own output, and keyed partitioning is checked
against kafka-python's independent murmur2. Every store is closed cleanly (or recovered, or
deleted after being damaged on purpose) so the autouse checker passes.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import shutil
import struct
import subprocess
import sys
import textwrap
from typing import NamedTuple

import pytest
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from logstore import _ffi, cli, record_batch, txn_index
from logstore.log import CLEAN_SHUTDOWN_FILE, Log
from logstore.store import LogStore

CONSOLE_SCRIPT = os.path.join(os.path.dirname(sys.executable), "logstore")
CODECS = ("none", "gzip", "snappy", "lz4", "zstd")


class Result(NamedTuple):
    code: int
    out: bytes
    err: str

    @property
    def text(self) -> str:
        return self.out.decode()

    def json_lines(self) -> list:
        return [json.loads(line) for line in self.out.splitlines()]


@pytest.fixture
def data_dir(tmp_path) -> str:
    return str(tmp_path / "data")


@pytest.fixture
def damaged(tmp_path) -> str:
    """A directory for data damaged on purpose: removed before the autouse checker runs,
    even when the test fails half-way."""
    path = tmp_path / "damaged"
    path.mkdir()
    yield str(path)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def run(monkeypatch):
    """run(*argv, stdin=b"") -> Result, calling cli.main in-process."""
    def invoke(*argv: str, stdin: bytes = b"") -> Result:
        stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
        stderr = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        monkeypatch.setattr(sys, "stdout", stdout)
        monkeypatch.setattr(sys, "stderr", stderr)
        code = cli.main(list(argv))
        stdout.flush()
        stderr.flush()
        return Result(code, stdout.buffer.getvalue(), stderr.buffer.getvalue().decode())
    return invoke


def run_script(*argv: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    assert os.path.exists(CONSOLE_SCRIPT), "the console script is not installed: make venv"
    return subprocess.run([CONSOLE_SCRIPT, *argv], input=stdin, capture_output=True,
                          timeout=120)


def records_in(path: str, topic: str, partition: int) -> list[record_batch.Record]:
    with LogStore(path, background=False) as store:
        return [r for b in store.log(topic, partition).batches() if not b.is_control
                for r in b.records()]


def log_files(partition_dir: str) -> list[str]:
    return sorted(os.path.join(partition_dir, n) for n in os.listdir(partition_dir)
                  if n.endswith(".log"))


def assert_one_error_line(err: str, starts: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"logstore: error: {starts}"), err
    assert "Traceback" not in err


# ------------------------------------------------------------------------------------------------
# topics


def test_topics_create_list_and_describe(run, data_dir):
    assert run("topics", "create", "orders", "--partitions", "3", "--config",
               "segment.bytes=4096", "--config", "retention.ms=1000", "--dir", data_dir).code == 0
    assert run("topics", "create", "audit", "--dir", data_dir).text == "Created topic audit.\n"
    listed = run("topics", "list", "--dir", data_dir)
    assert (listed.code, listed.text) == (0, "audit\norders\n")
    assert run("topics", "list", "--json", "--dir", data_dir).json_lines() == [["audit",
                                                                               "orders"]]
    run("produce", "orders", "--partition", "1", "--dir", data_dir, stdin=b"a\nb\n")

    text = run("topics", "describe", "orders", "--dir", data_dir).text
    assert "Topic: orders" in text and "PartitionCount: 3" in text
    assert "retention.ms=1000" in text and "segment.bytes=4096" in text
    assert "Partition: 1\tLogStartOffset: 0\tLogEndOffset: 2\tSegments: 1\tSize: " in text
    [described] = run("topics", "describe", "orders", "--json", "--dir", data_dir).json_lines()
    [topic] = described
    assert topic["partition_count"] == 3 and topic["topic_id"]
    assert topic["config"] == {"retention.ms": "1000", "segment.bytes": "4096"}
    sizes = {p["partition"]: (p["log_end_offset"], p["segments"], p["size_bytes"] > 0)
             for p in topic["partitions"]}
    assert sizes == {0: (0, 1, False), 1: (2, 1, True), 2: (0, 1, False)}
    everything = run("topics", "describe", "--json", "--dir", data_dir).json_lines()[0]
    assert [t["topic"] for t in everything] == ["audit", "orders"]
    with LogStore(data_dir, background=False) as store:
        assert store.topic("orders").config.segment_bytes == 4096


def test_topic_errors_name_the_kafka_error_and_exit_1(run, data_dir):
    run("topics", "create", "t", "--dir", data_dir)
    again = run("topics", "create", "t", "--dir", data_dir)
    assert again.code == 1
    assert_one_error_line(again.err, "TOPIC_ALREADY_EXISTS: ")
    assert run("topics", "create", "t", "--if-not-exists", "--dir", data_dir).code == 0
    unknown = run("topics", "describe", "x", "--dir", data_dir)
    assert unknown.code == 1
    assert_one_error_line(unknown.err, "UNKNOWN_TOPIC_OR_PARTITION: unknown topic 'x'")
    bad_config = run("topics", "create", "u", "--config", "segment.bytez=1", "--dir", data_dir)
    assert bad_config.code == 1
    assert_one_error_line(bad_config.err, "INVALID_CONFIG: ")
    bad_name = run("topics", "create", "has space", "--dir", data_dir)
    assert bad_name.code == 1
    assert_one_error_line(bad_name.err, "INVALID_TOPIC_EXCEPTION: ")
    with LogStore(data_dir, background=False) as store:
        assert set(store.topics()) == {"t"}


def test_usage_errors_exit_2_with_one_line(run, data_dir):
    for argv in (("topics", "create", "t", "--partitions", "0", "--dir", data_dir),
                 ("consume",), ("consume", "t", "--offset", "1", "--from-beginning"),
                 ("no-such-command",), ("consume", "t", "--bogus")):
        result = run(*argv)
        assert result.code == 2, argv
        assert_one_error_line(result.err, "")


def test_commands_other_than_create_want_an_existing_data_dir(run, tmp_path):
    missing = str(tmp_path / "nowhere")
    for argv in (("topics", "list"), ("consume", "t"), ("verify",), ("recover",),
                 ("produce", "t")):
        result = run(*argv, "--dir", missing)
        assert result.code == 1, argv
        assert_one_error_line(result.err, f"no data directory at {missing}")
    assert not os.path.exists(missing)
    (tmp_path / "random").mkdir()
    result = run("topics", "list", "--dir", str(tmp_path / "random"))
    assert result.code == 1 and "not a logstore data directory" in result.err
    assert os.listdir(tmp_path / "random") == []


def test_the_data_dir_defaults_to_the_environment_variable(run, data_dir, monkeypatch):
    monkeypatch.setenv("LOGSTORE_DIR", data_dir)
    assert run("topics", "create", "env-topic").code == 0
    assert os.path.isdir(os.path.join(data_dir, "env-topic-0"))
    assert run("topics", "list").text == "env-topic\n"


# ------------------------------------------------------------------------------------------------
# produce and consume


def test_produce_then_consume_round_trip_with_keys_and_raw_bytes(run, data_dir):
    run("topics", "create", "t", "--dir", data_dir)
    lines = [b"k1:hello", b"k2:with\ttab:and colon", b":empty key", b"k4:", b"k5:\xff\xfe raw",
             b"k6:crlf\r"]
    produced = run("produce", "t", "--key-separator", ":", "--dir", data_dir,
                   stdin=b"\n".join(lines))          # the last line has no newline
    assert produced.code == 0
    assert "produced 6 records to topic 't' (partition 0: offsets 0-5)" in produced.err
    stored = records_in(data_dir, "t", 0)
    assert [(r.key, r.value) for r in stored] == [tuple(line.split(b":", 1)) for line in lines]

    plain = run("consume", "t", "--dir", data_dir)
    assert plain.code == 0
    assert plain.out == b"".join(line.replace(b":", b"\t", 1) + b"\n" for line in lines)
    assert "consumed 6 records" in plain.err
    rows = run("consume", "t", "--json", "--dir", data_dir).json_lines()
    assert [r["offset"] for r in rows] == list(range(6))
    assert rows[0] == {"topic": "t", "partition": 0, "offset": 0,
                       "timestamp": stored[0].timestamp, "timestamp_type": "CreateTime",
                       "key": "k1", "value": "hello", "headers": []}
    assert rows[4]["value"] == {"base64": base64.b64encode(b"\xff\xfe raw").decode()}
    assert (rows[2]["key"], rows[3]["value"], rows[5]["value"]) == ("", "", "crlf\r")


def test_keyless_lines_and_empty_lines_become_values(run, data_dir):
    run("topics", "create", "t", "--dir", data_dir)
    assert run("produce", "t", "--dir", data_dir, stdin=b"one\n\nthree\n").code == 0
    assert [(r.key, r.value) for r in records_in(data_dir, "t", 0)] == [
        (None, b"one"), (None, b""), (None, b"three")]
    assert run("consume", "t", "--dir", data_dir).out == b"one\n\nthree\n"


@pytest.mark.parametrize("codec", CODECS)
def test_every_compression_codec_round_trips(run, data_dir, codec):
    run("topics", "create", "t", "--dir", data_dir)
    lines = [f"record {i} ".encode() * 5 for i in range(300)]
    assert run("produce", "t", "--compression", codec, "--dir", data_dir,
               stdin=b"\n".join(lines) + b"\n").code == 0
    assert run("consume", "t", "--dir", data_dir).out == b"".join(v + b"\n" for v in lines)
    dumped = run("dump", os.path.join(data_dir, "t-0")).text
    assert f"compresscodec: {codec} " in dumped and "isvalid: true" in dumped


def test_the_topics_compression_type_is_the_default_codec(run, data_dir):
    run("topics", "create", "t", "--config", "compression.type=gzip", "--dir", data_dir)
    run("produce", "t", "--dir", data_dir, stdin=b"x\ny\n")
    assert "compresscodec: gzip " in run("dump", os.path.join(data_dir, "t-0")).text


def test_produced_data_is_flushed_and_the_store_closed_cleanly(run, data_dir):
    run("topics", "create", "t", "--dir", data_dir)
    run("produce", "t", "--dir", data_dir, stdin=b"a\nb\nc\n")
    assert os.path.exists(os.path.join(data_dir, CLEAN_SHUTDOWN_FILE))
    with open(os.path.join(data_dir, "recovery-point-offset-checkpoint")) as f:
        assert "t 0 3" in f.read()


def test_consume_offset_and_max(run, data_dir):
    run("topics", "create", "t", "--dir", data_dir)
    run("produce", "t", "--dir", data_dir, stdin=b"".join(b"v%d\n" % i for i in range(30)))
    assert run("consume", "t", "--offset", "25", "--dir", data_dir).out == b"v25\nv26\nv27\n" \
        b"v28\nv29\n"
    assert run("consume", "t", "--offset", "3", "--max", "2", "--dir",
               data_dir).out == b"v3\nv4\n"
    assert run("consume", "t", "--max", "1", "--from-beginning", "--dir",
               data_dir).out == b"v0\n"
    assert run("consume", "t", "--max", "0", "--dir", data_dir).out == b""
    assert run("consume", "t", "--offset", "30", "--dir", data_dir).out == b""
    with LogStore(data_dir, background=False) as store:
        store.log("t", 0).delete_records_before(10)
    below = run("consume", "t", "--offset", "5", "--dir", data_dir)
    assert below.code == 1
    assert_one_error_line(below.err, "OFFSET_OUT_OF_RANGE: ")
    assert run("consume", "t", "--max", "1", "--dir", data_dir).out == b"v10\n"


def test_consume_reads_every_partition_in_order_and_skips_control_batches(run, data_dir):
    run("topics", "create", "t", "--partitions", "2", "--dir", data_dir)
    with LogStore(data_dir, background=False) as store:
        store.log("t", 1).append([b"p1-a"])
        store.log("t", 0).append([b"p0-a", b"p0-b"], producer_id=4, producer_epoch=0,
                                 base_sequence=0, transactional=True)
        marker = record_batch.build_control_batch(record_batch.COMMIT, 4, 0, 1, 1_000)
        store.log("t", 0).append_batch(marker, validate=False)
        store.log("t", 0).append([b"p0-c"])
    rows = run("consume", "t", "--json", "--dir", data_dir).json_lines()
    assert [(r["partition"], r["offset"], r["value"]) for r in rows] == [
        (0, 0, "p0-a"), (0, 1, "p0-b"), (0, 3, "p0-c"), (1, 0, "p1-a")]
    assert run("consume", "t", "--partition", "1", "--dir", data_dir).out == b"p1-a\n"
    unknown = run("consume", "t", "--partition", "2", "--dir", data_dir)
    assert unknown.code == 1
    assert_one_error_line(unknown.err, "UNKNOWN_TOPIC_OR_PARTITION: ")


def test_keyed_records_go_where_kafkas_default_partitioner_puts_them(run, data_dir):
    run("topics", "create", "t", "--partitions", "5", "--dir", data_dir)
    keys = [f"customer-{i}".encode() for i in range(60)]
    stdin = b"".join(k + b"=" + b"v-" + k + b"\n" for k in keys)
    assert run("produce", "t", "--key-separator", "=", "--dir", data_dir, stdin=stdin).code == 0
    rows = run("consume", "t", "--json", "--dir", data_dir).json_lines()
    assert sorted(r["key"].encode() for r in rows) == sorted(keys)
    for row in rows:
        expected = (kafka_python_murmur2(row["key"].encode()) & 0x7FFFFFFF) % 5
        assert row["partition"] == expected, row
    assert len({r["partition"] for r in rows}) > 1
    per_partition = {}
    for row in rows:        # order within a partition is the input order
        per_partition.setdefault(row["partition"], []).append(keys.index(row["key"].encode()))
    assert all(order == sorted(order) for order in per_partition.values())


def test_explicit_partition_overrides_the_key(run, data_dir):
    run("topics", "create", "t", "--partitions", "3", "--dir", data_dir)
    run("produce", "t", "--partition", "2", "--key-separator", "=", "--dir", data_dir,
        stdin=b"a=1\nb=2\nc=3\n")
    assert [r.key for r in records_in(data_dir, "t", 2)] == [b"a", b"b", b"c"]


def test_keyless_batches_rotate_over_the_partitions(run, data_dir):
    run("topics", "create", "t", "--partitions", "3", "--dir", data_dir)
    lines = b"".join(b"%d\n" % i for i in range(2500))      # three batches of <= 1000 lines
    result = run("produce", "t", "--dir", data_dir, stdin=lines)
    assert result.code == 0 and "produced 2500 records" in result.err
    counts = sorted(len(records_in(data_dir, "t", p)) for p in range(3))
    assert counts == [500, 1000, 1000]


def test_a_line_without_the_key_separator_is_an_error(run, data_dir):
    run("topics", "create", "t", "--dir", data_dir)
    result = run("produce", "t", "--key-separator", "=", "--dir", data_dir,
                 stdin=b"a=1\nb=2\nno separator\nc=3\n")
    assert result.code == 1
    assert "produced 2 records to topic 't' (partition 0: offsets 0-1)" in result.err
    assert "logstore: error: line 3 has no key separator '='; the 2 lines before it were " \
           "written" in result.err
    assert "Traceback" not in result.err
    assert [(r.key, r.value) for r in records_in(data_dir, "t", 0)] == [(b"a", b"1"),
                                                                        (b"b", b"2")]


def test_batches_too_large_for_the_topic_are_split_and_a_huge_line_is_refused(
        run, data_dir, monkeypatch):
    run("topics", "create", "t", "--config", "max.message.bytes=2000", "--dir", data_dir)
    monkeypatch.setattr(cli, "RECORD_OVERHEAD_MAX", 0)     # make the size estimate too low
    lines = [b"%03d" % i + b"x" * 97 for i in range(40)]
    assert run("produce", "t", "--dir", data_dir, stdin=b"\n".join(lines)).code == 0
    assert [r.value for r in records_in(data_dir, "t", 0)] == lines
    huge = run("produce", "t", "--dir", data_dir, stdin=b"y" * 5000 + b"\n")
    assert huge.code == 1
    assert "logstore: error: MESSAGE_TOO_LARGE: " in huge.err
    assert len(records_in(data_dir, "t", 0)) == 40


# ------------------------------------------------------------------------------------------------
# dump


def write_transactional_partition(path: str) -> None:
    """A standalone partition: a transactional batch, its COMMIT marker, an aborted one, its
    ABORT marker, then a plain batch with headers."""
    with Log.open(path) as log:
        log.append([b"a", b"b", b"c"], keys=[b"k0", b"k1", b"k2"], producer_id=42,
                   producer_epoch=3, base_sequence=7, transactional=True)
        log.append_batch(record_batch.build_control_batch(record_batch.COMMIT, 42, 3, 5, 1_000),
                         validate=False)
        log.append([b"x"], producer_id=42, producer_epoch=3, base_sequence=10,
                   transactional=True, compression=4)
        log.append_batch(record_batch.build_control_batch(record_batch.ABORT, 42, 3, 6, 2_000),
                         validate=False)
        log.append([b"plain"], headers=[[("h", b"v"), ("bin", b"\x00\xff")]],
                   timestamps=[1_700_000_000_000])


def test_dump_prints_transactional_and_control_batches_with_their_markers(run, tmp_path):
    part = str(tmp_path / "txn-0")
    write_transactional_partition(part)
    result = run("dump", part, "--records")
    assert result.code == 0
    lines = result.text.splitlines()
    batches = [line for line in lines if line.startswith("baseOffset:")]
    assert len(batches) == 5
    assert batches[0].startswith("baseOffset: 0 lastOffset: 2 count: 3 baseSequence: 7 "
                                 "lastSequence: 9 producerId: 42 producerEpoch: 3 ")
    assert "isTransactional: true isControl: false position: 0 CreateTime: " in batches[0]
    assert "magic: 2 compresscodec: none crc: " in batches[0] and "isvalid: true" in batches[0]
    assert "isTransactional: true isControl: true" in batches[1]
    assert "compresscodec: zstd" in batches[2]
    assert "| offset: 1 CreateTime: " in result.text
    assert "keySize: 2 valueSize: 1 sequence: 8 headers: [] key: k1 payload: b" in result.text
    assert "endTxnMarker: COMMIT coordinatorEpoch: 5" in result.text
    assert "endTxnMarker: ABORT coordinatorEpoch: 6" in result.text
    assert ("| offset: 6 CreateTime: 1700000000000 keySize: -1 valueSize: 5 sequence: -1 "
            "headers: [h=v, bin=base64:AP8=] payload: plain") in result.text
    assert "Offset index " in result.text and "Time index " in result.text


def test_dump_json_has_every_header_field(run, tmp_path):
    part = str(tmp_path / "txn-0")
    write_transactional_partition(part)
    events = run("dump", part, "--records", "--json").json_lines()
    batches = [e for e in events if e["type"] == "batch"]
    first, commit = batches[0], batches[1]
    with open(log_files(part)[0], "rb") as f:
        raw = f.read()
    expected = record_batch.RecordBatch(raw)
    assert {k: first[k] for k in ("base_offset", "last_offset", "count", "producer_id",
                                  "producer_epoch", "base_sequence", "last_sequence",
                                  "partition_leader_epoch", "is_transactional", "is_control",
                                  "position", "size", "crc", "crc_valid", "compression",
                                  "timestamp_type", "max_timestamp")} == {
        "base_offset": 0, "last_offset": 2, "count": 3, "producer_id": 42,
        "producer_epoch": 3, "base_sequence": 7, "last_sequence": 9,
        "partition_leader_epoch": -1, "is_transactional": True, "is_control": False,
        "position": 0, "size": expected.size, "crc": expected.crc, "crc_valid": True,
        "compression": "none", "timestamp_type": "CreateTime",
        "max_timestamp": expected.max_timestamp}
    assert [r["value"] for r in first["records"]] == ["a", "b", "c"]
    assert commit["position"] == expected.size and commit["is_control"]
    assert commit["records"][0]["control_type"] == "COMMIT"
    assert commit["records"][0]["coordinator_epoch"] == 5
    headers = batches[4]["records"][0]["headers"]
    assert headers == [{"key": "h", "value": "v"}, {"key": "bin", "value": {"base64": "AP8="}}]
    kinds = {e["type"] for e in events}
    assert {"directory", "segment", "segment_end", "offset_index", "time_index"} <= kinds


def test_dump_reports_a_partial_tail_and_a_bad_crc_without_a_traceback(run, damaged):
    part = os.path.join(damaged, "broken-0")
    with Log.open(part) as log:
        for i in range(3):
            log.append([b"value-%d" % i] * 4)
        infos = list(log.batch_infos())
    path = log_files(part)[0]
    with open(path, "r+b") as f:
        f.seek(infos[0].position + infos[0].size - 2)     # inside the first batch's records
        f.write(b"\xee")
        f.truncate(infos[2].position + infos[2].size - 5)  # tear the last batch
    result = run("dump", path, "--records")
    assert result.code == 0, result.err
    assert "Traceback" not in result.err
    batches = [line for line in result.text.splitlines() if line.startswith("baseOffset:")]
    assert len(batches) == 2
    assert "isvalid: false computedCrc: " in batches[0] and "isvalid: true" in batches[1]
    assert (f"Found {infos[2].size - 5} invalid bytes at position {infos[2].position} of "
            f"{path}: partial batch") in result.text
    events = run("dump", path, "--json").json_lines()
    [corrupt] = [e for e in events if e["type"] == "corrupt"]
    assert corrupt["position"] == infos[2].position
    assert corrupt["bytes"] == infos[2].size - 5
    [end] = [e for e in events if e["type"] == "segment_end"]
    assert (end["batches"], end["valid_bytes"]) == (2, infos[2].position)
    with open(path, "ab") as f:                          # garbage that cannot be a batch
        f.write(b"\x00" * 40)
    garbage = run("dump", part)
    assert garbage.code == 0 and "invalid bytes at position" in garbage.text


def test_dump_works_on_a_directory_another_owner_has_open(run, data_dir):
    run("topics", "create", "t", "--dir", data_dir)
    with LogStore(data_dir, background=False) as store:
        store.log("t", 0).append([b"live"])
        result = run("dump", os.path.join(data_dir, "t-0"), "--records")
        assert result.code == 0
        assert "payload: live" in result.text
        whole_store = run("dump", data_dir).text          # a data directory: every partition
        assert f"Partition directory {os.path.join(data_dir, 't-0')}: 1 segment(s)" in whole_store
        locked = run("topics", "list", "--dir", data_dir)
        assert locked.code == 1 and "is locked by" in locked.err


def test_dump_of_index_files_lists_their_entries(run, tmp_path):
    part = str(tmp_path / "idx-0")
    with Log.open(part, {"index.interval.bytes": 100}) as log:
        for i in range(6):
            log.append([b"v" * 120], timestamps=[1_000 + i])
    prefix = os.path.join(part, "00000000000000000000")
    offsets = run("dump", prefix + ".index").text.splitlines()
    assert offsets[0].startswith(f"Offset index {prefix}.index: 5 entries")
    assert offsets[1].startswith("offset: 1 position: ")
    assert len(offsets) == 6
    times = run("dump", prefix + ".timeindex").text.splitlines()
    assert "timestamp: 1001 offset: 1" in times


def test_dump_summarises_txn_index_and_producer_snapshot(run, tmp_path):
    part = str(tmp_path / "txn-0")
    write_transactional_partition(part)       # offsets 4 (data) and 5 (ABORT) are the abort
    with open(os.path.join(part, "00000000000000000000.txnindex"), "wb") as f:
        f.write(txn_index.AbortedTxn(42, 4, 5, 6).encode())
    entry = struct.pack(">qhiqiqiq", 42, 3, 10, 4, 0, 1_000, 6, -1)
    body = struct.pack(">i", 1) + entry
    snapshot = struct.pack(">hI", 1, _ffi.crc32c(body)) + body
    with open(os.path.join(part, "00000000000000000007.snapshot"), "wb") as f:
        f.write(snapshot)
    text = run("dump", part).text
    assert "1 aborted transaction(s)" in text
    assert ("version: 0 producerId: 42 firstOffset: 4 lastOffset: 5 lastStableOffset: 6"
            in text)
    assert "offset 7 version 1 crc: " in text and "isvalid: true producers: 1" in text
    assert ("producerId: 42 producerEpoch: 3 lastSequence: 10 lastOffset: 4 offsetDelta: 0 "
            "timestamp: 1000 coordinatorEpoch: 6 currentTxnFirstOffset: -1") in text
    [snap] = [e for e in run("dump", part, "--json").json_lines() if e["type"] == "snapshot"]
    assert snap["crc_valid"] and snap["producers"][0]["producer_id"] == 42


def test_dump_errors(run, tmp_path):
    missing = run("dump", str(tmp_path / "nope.log"))
    assert missing.code == 1
    assert_one_error_line(missing.err, "no such file or directory")
    (tmp_path / "notes.txt").write_text("hi")
    wrong = run("dump", str(tmp_path / "notes.txt"))
    assert wrong.code == 1
    assert_one_error_line(wrong.err, "cannot dump")


# ------------------------------------------------------------------------------------------------
# verify and recover


def test_verify_passes_on_a_clean_store(run, data_dir):
    run("topics", "create", "t", "--partitions", "2", "--dir", data_dir)
    run("produce", "t", "--dir", data_dir, stdin=b"a\nb\n")
    result = run("verify", "--dir", data_dir)
    assert result.code == 0
    # Partition 1 was never written, so it has no segment file yet.
    assert result.text.startswith(f"OK: {data_dir}: 2 partitions, 1 segments, 1 batches")
    summary = run("verify", "--json", "--dir", data_dir).json_lines()[0]
    assert summary["ok"] is True and summary["problems"] == []
    assert (summary["partitions"], summary["segments"], summary["batches"]) == (2, 1, 1)


def test_verify_fails_naming_file_and_byte_then_recover_full_repairs(run, data_dir):
    run("topics", "create", "t", "--dir", data_dir)
    for i in range(3):
        run("produce", "t", "--dir", data_dir, stdin=b"line-%d\n" % i * 5)
    part = os.path.join(data_dir, "t-0")
    path = log_files(part)[0]
    with open(path, "rb") as f:
        batches = list(record_batch.iter_batches(f.read()))
    second = batches[0].size
    with open(path, "r+b") as f:                   # damage the second batch's records
        f.seek(second + record_batch.HEADER_SIZE + 3)
        f.write(b"\xff")
    result = run("verify", "--dir", data_dir)
    assert result.code == 1
    assert f"{path} @ byte {second}: invalid batch" in result.text
    assert "FAILED: " in result.text
    problems = run("verify", "--json", "--dir", data_dir).json_lines()[0]["problems"]
    assert {"file": path, "position": second} == {k: problems[0][k] for k in ("file",
                                                                              "position")}
    # A clean shutdown hides the damage from a normal open; --full recovers every segment.
    plain = run("recover", "--dir", data_dir)
    assert plain.code == 0 and "nothing to recover (clean shutdown)" in plain.text
    repaired = run("recover", "--full", "--dir", data_dir)
    assert repaired.code == 0
    assert f"t-0: recovered 1 segment(s) from offset 0; cut {batches[1].size * 2} bytes at " \
           f"byte {second} of {os.path.basename(path)}" in repaired.text
    assert run("verify", "--dir", data_dir).code == 0
    assert [r.value for r in records_in(data_dir, "t", 0)] == [b"line-0"] * 5


def test_recover_after_a_crash_cuts_the_torn_tail(run, data_dir):
    run("topics", "create", "t", "--partitions", "2", "--dir", data_dir)
    store = LogStore(data_dir, background=False)
    log = store.log("t", 0)
    log.append([b"kept"] * 3)
    last = log.append([b"torn"] * 3)
    store.log("t", 1).append([b"other"])
    store.abandon()                                   # what kill -9 leaves
    path = log_files(os.path.join(data_dir, "t-0"))[-1]
    os.truncate(path, os.path.getsize(path) - 4)
    unclean = run("verify", "--dir", data_dir)
    assert unclean.code == 1 and "run `logstore recover`" in unclean.text
    result = run("recover", "--dir", data_dir)
    assert result.code == 0, result.err
    assert (f"t-0: recovered 1 segment(s) from offset 0; cut {last.size - 4} bytes at byte "
            f"{os.path.getsize(path)} of 00000000000000000000.log") in result.text
    assert "log offsets 0-3" in result.text
    assert "t-1: recovered 1 segment(s) from offset 0; nothing cut; log offsets 0-1" in result.text
    assert "2 partition(s), 2 needed recovery" in result.text
    [entry0, entry1] = run("recover", "--json", "--dir", data_dir).json_lines()[0]
    assert entry0["segments_recovered"] == [] and entry0["clean_shutdown"] is True
    assert os.path.exists(os.path.join(data_dir, CLEAN_SHUTDOWN_FILE))
    assert run("verify", "--dir", data_dir).code == 0
    assert [r.value for r in records_in(data_dir, "t", 0)] == [b"kept"] * 3


def test_recover_and_verify_take_a_partition_directory(run, tmp_path):
    part = str(tmp_path / "solo-0")
    log = Log.open(part)
    log.append([b"a", b"b"])
    log.abandon()
    assert run("verify", "--dir", part).code == 1
    result = run("recover", "--dir", part)
    assert result.code == 0
    assert result.text.startswith("solo-0: recovered 1 segment(s) from offset 0; nothing cut")
    assert run("verify", "--dir", part).text.startswith(f"OK: {part}: 1 partitions")


def test_verify_shows_progress_when_stderr_is_a_terminal(run, data_dir, monkeypatch):
    run("topics", "create", "t", "--dir", data_dir)
    run("produce", "t", "--dir", data_dir, stdin=b"a\n")
    monkeypatch.setattr(cli, "_isatty", lambda stream: True)
    result = run("verify", "--dir", data_dir)
    assert result.code == 0
    assert "\r\x1b[Kverify: 100% " in result.err and "t-0/00000000000000000000.log" in result.err
    monkeypatch.setattr(cli, "_isatty", lambda stream: False)
    assert run("verify", "--dir", data_dir).err == ""


# ------------------------------------------------------------------------------------------------
# The console script, subcommand registry, errors


def test_console_script_errors_are_one_line_without_traceback(tmp_path):
    data = str(tmp_path / "data")
    created = run_script("topics", "create", "t", "--dir", data)
    assert created.returncode == 0, created.stderr
    produced = run_script("produce", "t", "--key-separator", ",", "--dir", data,
                          stdin=b"k,v\n")
    assert produced.returncode == 0
    assert run_script("consume", "t", "--dir", data).stdout == b"k\tv\n"
    unknown = run_script("consume", "nope", "--dir", data)
    assert unknown.returncode == 1
    assert_one_error_line(unknown.stderr.decode(),
                          "UNKNOWN_TOPIC_OR_PARTITION: unknown topic 'nope'")
    usage = run_script("consume", "--dir", data)
    assert usage.returncode == 2
    assert_one_error_line(usage.stderr.decode(), "the following arguments are required")
    helped = run_script("consume", "--help")
    assert helped.returncode == 0 and b"beginning" in helped.stdout


def test_a_second_process_on_a_locked_dir_is_told_who_holds_it(tmp_path):
    data = str(tmp_path / "data")
    with LogStore(data, background=False) as store:
        store.create_topic("t")
        result = run_script("consume", "t", "--dir", data)
    assert result.returncode == 1
    err = result.stderr.decode()
    assert_one_error_line(err, "KAFKA_STORAGE_ERROR: ")
    assert f"locked by pid {os.getpid()} on " in err


def test_demo_and_bench_are_registered_exactly_when_their_modules_exist(run):
    names = [name for name, _, _ in cli.available_external_commands()]
    for name, target, _ in cli.EXTERNAL_COMMANDS:
        module = target.partition(":")[0].split(".")
        present = any(os.path.exists(os.path.join(root, *module) + ".py")
                      for root in sys.path + [cli.SOURCE_ROOT] if root)
        assert (name in names) == present, name
        if not present:
            assert run(name).code == 2


def test_external_commands_are_imported_lazily_and_get_the_rest_of_the_line(
        run, tmp_path, monkeypatch):
    (tmp_path / "fake_cli_ext.py").write_text(textwrap.dedent("""
        CALLS = []
        def main(argv):
            CALLS.append(list(argv))
            return 7
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(cli, "EXTERNAL_COMMANDS",
                        cli.EXTERNAL_COMMANDS + (("fake", "fake_cli_ext:main", "a test"),
                                                 ("ghost", "no_such_module_x:main", "absent")))
    assert "fake_cli_ext" not in sys.modules
    result = run("fake", "--quick", "x")
    assert result.code == 7
    assert sys.modules["fake_cli_ext"].CALLS == [["--quick", "x"]]
    assert run("ghost").code == 2
    sys.modules.pop("fake_cli_ext", None)


def test_external_commands_are_found_in_the_source_checkout(run, tmp_path, monkeypatch):
    # bench/ sits next to logstore/ in a checkout but is not an installed package.
    (tmp_path / "checkout" / "fake_bench_ext").mkdir(parents=True)
    (tmp_path / "checkout" / "fake_bench_ext" / "run.py").write_text(
        "def main(argv):\n    return 40 + len(argv)\n")
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(cli, "SOURCE_ROOT", str(tmp_path / "checkout"))
    monkeypatch.setattr(cli, "EXTERNAL_COMMANDS",
                        (("fakebench", "fake_bench_ext.run:main", "a test"),))
    assert [n for n, _, _ in cli.available_external_commands()] == ["fakebench"]
    assert run("fakebench", "--quick").code == 41
    assert sys.path[-1] == str(tmp_path / "checkout")
    for name in ("fake_bench_ext", "fake_bench_ext.run"):
        sys.modules.pop(name, None)


def test_storage_warnings_go_to_stderr_and_logging_is_left_as_found(run, data_dir):
    run("topics", "create", "t", "--dir", data_dir)
    store = LogStore(data_dir, background=False)
    store.log("t", 0).append([b"a"] * 3)
    store.abandon()
    path = log_files(os.path.join(data_dir, "t-0"))[0]
    os.truncate(path, os.path.getsize(path) - 1)
    logger = logging.getLogger("logstore")
    before = (logger.propagate, logger.level, list(logger.handlers))
    result = run("consume", "t", "--dir", data_dir)     # opening the log recovers it
    assert result.code == 0 and result.out == b""
    assert "logstore: WARNING: " in result.err and "recovery cut" in result.err
    assert (logger.propagate, logger.level, list(logger.handlers)) == before


def test_an_unexpected_internal_error_is_one_line(run, data_dir, monkeypatch):
    def broken(args):
        raise TypeError("boom")
    run("topics", "create", "t", "--dir", data_dir)
    monkeypatch.setattr(cli, "cmd_topics_list", broken)
    result = run("topics", "list", "--dir", data_dir)
    assert result.code == 1
    assert_one_error_line(result.err, "internal error: TypeError: boom")
