"""`logstore demo storage`: a narrated tour of the storage layer on a throw-away directory.

Steps: create a topic, append keyed records in batches (segments roll, indexes fill), read by
offset and by timestamp, kill -9 a child process in the middle of durable appends and show that
recovery keeps every acknowledged record, damage a byte and watch `verify` find it and recovery
cut it, and dump a few batches the way kafka-dump-log would.

Everything happens under a temporary directory (or --dir), removed at the end unless --keep.
Thread-safety: a command-line program; single-threaded.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from logstore import check, record_batch
from logstore.log import CLEAN_SHUTDOWN_FILE, Log
from logstore.partitioner import partition_for_key
from logstore.store import LogStore

RECORDS = 200_000
BATCH = 1_000
PARTITIONS = 3
WRITER = """
import sys
from logstore.log import Log
log = Log.open(sys.argv[1], {"flush.messages": 1, "segment.bytes": 65536})
i = 0
while True:
    info = log.append([b"order-%d" % (i + k) for k in range(10)])
    print(info.last_offset, flush=True)       # acknowledged: fsynced before this line
    i += 10
"""


def say(text: str = "") -> None:
    print(text, flush=True)


def step(number: int, title: str) -> None:
    say(f"\n== {number}. {title}")


def produce(store: LogStore) -> None:
    step(1, f"append {RECORDS:,} keyed records to 'events' ({PARTITIONS} partitions)")
    store.create_topic("events", PARTITIONS, {"segment.bytes": 1 << 20})
    pending: dict[int, tuple[list, list]] = {p: ([], []) for p in range(PARTITIONS)}
    keys_by_customer = [b"customer-%d" % c for c in range(97)]
    partition_of = {key: partition_for_key(key, PARTITIONS) for key in keys_by_customer}
    started = time.perf_counter()
    for i in range(RECORDS):
        key = keys_by_customer[i % 97]
        partition = partition_of[key]
        keys, values = pending[partition]
        keys.append(key)
        values.append(b'{"event": %d, "amount": %d}' % (i, i % 500))
        if len(values) == BATCH:
            store.log("events", partition).append(values, keys)
            pending[partition] = ([], [])
    for partition, (keys, values) in pending.items():
        if values:
            store.log("events", partition).append(values, keys)
    store.flush()
    elapsed = time.perf_counter() - started
    say(f"   {RECORDS / elapsed:,.0f} records/s, then one fsync per partition")
    for partition in range(PARTITIONS):
        log = store.log("events", partition)
        say(f"   events-{partition}: offsets [{log.log_start_offset}, {log.log_end_offset}) in "
            f"{len(log.segments)} segment(s), {log.size_in_bytes:,} bytes")


def read_back(store: LogStore) -> None:
    step(2, "read by offset and by timestamp")
    log = store.log("events", 0)
    middle = log.log_end_offset // 2
    batch = next(log.read(middle, max_bytes=1).batches())
    record = next(r for r in batch.records() if r.offset == middle)
    say(f"   offset {middle}: key={record.key.decode()} value={record.value.decode()}")
    say(f"   (returned the whole batch [{batch.base_offset}, {batch.last_offset}] holding it, "
        "as Kafka does)")
    found = log.offset_for_timestamp(record.timestamp)
    say(f"   first record at or after timestamp {record.timestamp}: offset {found[0]}")


def crash_and_recover(root: str) -> None:
    step(3, "kill -9 a writer in the middle of durable appends")
    path = os.path.join(root, "orders-0")
    proc = subprocess.Popen([sys.executable, "-c", WRITER, path], stdout=subprocess.PIPE,
                            text=True)
    acked = [int(proc.stdout.readline()) for _ in range(50)]
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate()
    acked += [int(line) for line in out.split()]
    say(f"   the writer acknowledged offsets up to {acked[-1]} and was killed")
    with Log.open(path) as log:
        report = log.recovery_report
        offsets = [r.offset for b in log.batches() for r in b.records()]
        say(f"   reopened: {len(report.segments_recovered)} segment(s) recovered, "
            f"{report.truncated_bytes} torn bytes cut, log end offset {log.log_end_offset}")
    assert offsets == list(range(len(offsets))) and offsets[-1] >= acked[-1]
    say(f"   every acknowledged record is there: {len(offsets):,} records, no gaps")


def damage_and_verify(root: str) -> None:
    step(4, "flip one byte on disk: verify finds it, recovery cuts it")
    path = os.path.join(root, "orders-0")
    log_file = os.path.join(path, sorted(n for n in os.listdir(path) if n.endswith(".log"))[-1])
    size = os.path.getsize(log_file)
    with open(log_file, "r+b") as f:
        f.seek(size - 5)
        byte = f.read(1)[0]
        f.seek(size - 5)
        f.write(bytes([byte ^ 0x40]))
    for problem in check.check(path):
        say(f"   verify: {problem}")
    os.unlink(os.path.join(path, CLEAN_SHUTDOWN_FILE))     # as after a crash: recover on open
    with Log.open(path) as log:
        report = log.recovery_report
        say(f"   recovery cut {report.truncated_bytes} bytes ({report.truncation_reason}); "
            f"log end offset now {log.log_end_offset}")
    say(f"   verify after recovery: {len(check.check(path))} problem(s)")


def dump_some(store_path: str) -> None:
    step(5, "the files are Kafka's: a dump of the first batches of events-0")
    segment = os.path.join(store_path, "events-0", f"{0:020d}.log")
    with open(segment, "rb") as f:
        data = f.read()
    for batch in list(record_batch.iter_batches(data))[:3]:
        say(f"   baseOffset: {batch.base_offset} lastOffset: {batch.last_offset} count: "
            f"{batch.records_count} size: {batch.size} magic: 2 crc: {batch.crc} "
            f"isvalid: {batch.is_valid()}")
    say(f"   (try: logstore dump {segment} --records | head)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="logstore demo storage",
                                     description="A narrated tour of the storage layer.")
    parser.add_argument("--dir", help="work here instead of a temporary directory")
    parser.add_argument("--keep", action="store_true", help="keep the directory afterwards")
    args = parser.parse_args(argv)
    root = args.dir or tempfile.mkdtemp(prefix="logstore-demo-", dir=os.getcwd())
    say(f"logstore storage demo in {root}")
    try:
        store_path = os.path.join(root, "store")
        with LogStore(store_path) as store:
            produce(store)
            read_back(store)
        crash_and_recover(root)
        damage_and_verify(root)
        dump_some(store_path)
        say("\ndone.")
    finally:
        if not args.keep and not args.dir:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
